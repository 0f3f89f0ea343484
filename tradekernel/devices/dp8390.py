"""The National Semiconductor DP8390D network interface controller core (the chip in an NE2000).

This is the chip, not a card: it owns the register file of pages 0-2, the command register, the
interrupt status/mask logic, the local DMA that stores received frames in the receive ring, the
transmit of a frame from buffer memory, and the remote DMA engine that moves bytes between the
card's memory and the host's data port. The card it sits on (devices/ne2000.py) supplies the
memory bus (`read_memory`/`write_memory`: the card decides what answers at each address), the
wire out (`transmit`) and the interrupt pin (`set_interrupt`). Nothing here knows about ports,
IRQ numbers, channels, the kernel or unicorn.

Behaviour follows the DP8390D datasheet:
  - CR: STP puts the chip offline (ISR.RST set), STA starts it (ISR.RST cleared), TXP sends the
    TBCR bytes at page TPSR and clears itself, RD0-2 select remote read / remote write / send
    packet / abort, PS0-1 select the register page. Page 3 is reserved: reads 0, writes ignored.
  - ISR bits are cleared by writing 1s; the INT pin is (ISR & IMR) != 0 over bits 0-6 (RST never
    interrupts).
  - Remote DMA: RSAR/RBCR set up a transfer; each data-port access moves one byte (DCR.WTS=0) or
    one 16-bit word (DCR.WTS=1, little-endian as with BOS=0; BOS=1 swaps the bytes); the address
    wraps from PSTOP to PSTART as the ring does; ISR.RDC is set when RBCR reaches 0. "Send
    packet" (RD=011) loads RSAR from BNRY and RBCR from the header there, and moves BNRY to that
    header's next-page pointer when the transfer completes. A remote read or write started with
    RBCR = 0 completes at once (RDC).
  - Receive: with the chip started, a frame passes the address filter (PAR0-5 unicast, AB
    broadcast, AM multicast via the MAR0-7 hash of the top 6 bits of the Ethernet CRC32 of the
    destination, PRO everything), is padded to the 60-byte minimum, and is stored at page CURR
    behind a 4-byte header (RSR status, next page, byte count = frame + header, little-endian),
    wrapping from PSTOP to PSTART; CURR advances and ISR.PRX is set. Frames from the host carry no
    frame check sequence, so none is stored and the byte count leaves it out (as other NE2000
    models do); the next-page pointer still leaves room for its 4 bytes, as the chip does, so
    drivers that cross-check it against the count (Linux's 8390.c) accept every length.
    RCR.MON checks and counts frames without storing them.
  - Overflow: if storing a frame would cross into the BNRY page, or CURR has caught up with BNRY
    (equal pointers then mean a full ring, not an empty one), the frame is dropped, ISR.OVW and
    ISR.RST are set and CNTR2 (missed packets) counts it. Writing BNRY frees space and clears
    RST; the datasheet's recovery sequence (STP, loopback, STA, drain, TCR back) also works, but
    is not required.
  - DCR.BOS=1 swaps the two bytes of each word at the data port; NE2000 cards need BOS=0.
  - Loopback (TCR.LB != 0): a transmitted frame goes back into this receiver, not to the wire.
  - Tally counters CNTR0-2 clear when read and saturate at 192; bit 7 set raises ISR.CNT.
    CNTR0 (frame alignment) and CNTR1 (CRC) stay 0: a frame from the host is never malformed.
  - TSR after a transmit reports PTX with no collisions (the link has none); NCR reads 0.
  - Transmit and receive complete at once in virtual time (no 10 Mbit/s wire delay).
Frames longer than MAX_FRAME are truncated on transmit and refused on receive.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

PAGE = 256
MIN_FRAME = 60  # the shortest Ethernet frame without its 4-byte FCS
MAX_FRAME = 1518  # the longest, allowing an 802.1Q tag
HEADER = 4  # receive-ring packet header: status, next page, count low, count high
FCS = 4  # the frame check sequence a real wire delivers after each frame
COUNTER_SATURATE = 192  # the datasheet's tally counter ceiling
COUNTER_INTERRUPT = 0x80  # a tally counter with bit 7 set raises ISR.CNT
MAX_FRAME_PAGES = (HEADER + MAX_FRAME + FCS + PAGE - 1) // PAGE  # ring pages the longest takes

# Command register
CR_STP, CR_STA, CR_TXP = 0x01, 0x02, 0x04
CR_RD_MASK, CR_RD_READ, CR_RD_WRITE, CR_RD_SEND, CR_RD_ABORT = 0x38, 0x08, 0x10, 0x18, 0x20
CR_PS_SHIFT = 6
# Interrupt status / mask
ISR_PRX, ISR_PTX, ISR_RXE, ISR_TXE, ISR_OVW, ISR_CNT, ISR_RDC, ISR_RST = (
    0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80,
)  # fmt: skip
ISR_INTERRUPTS = 0x7F
# Receive configuration / status
RCR_SEP, RCR_AR, RCR_AB, RCR_AM, RCR_PRO, RCR_MON = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
RSR_PRX, RSR_MPA, RSR_PHY, RSR_DIS = 0x01, 0x10, 0x20, 0x40
# Transmit configuration / status
TCR_LB_MASK = 0x06
TSR_PTX = 0x01
# Data configuration
DCR_WTS, DCR_BOS = 0x01, 0x02

BROADCAST = b"\xff" * 6


def multicast_hash_index(destination: bytes) -> int:
    """The MAR bit (0-63) a multicast address selects: the top 6 bits of the Ethernet CRC32 of
    the address as the chip's MSB-first shift register holds it (no final inversion)."""
    register = zlib.crc32(destination[:6]) ^ 0xFFFFFFFF  # LSB-first register, not inverted
    low6 = register & 0x3F
    return int(f"{low6:06b}"[::-1], 2)  # bit-reversed: the top 6 bits MSB-first


class Dp8390:
    """The chip. The card gives it a memory bus, a wire out and an interrupt pin."""

    def __init__(
        self,
        read_memory: Callable[[int, int], bytes],
        write_memory: Callable[[int, bytes], None],
        transmit: Callable[[bytes], None],
        set_interrupt: Callable[[bool], None],
    ) -> None:
        """`read_memory(address, length)` and `write_memory(address, data)` are the card's
        memory bus (16-bit addresses, never asked to cross 0x10000)."""
        self._read_memory = read_memory
        self._write_memory = write_memory
        self._transmit = transmit
        self._set_interrupt = set_interrupt
        self._int_level: bool | None = None  # unknown: the first update drives the pin
        self.power_on()

    def power_on(self) -> None:
        self.cr = CR_STP | CR_RD_ABORT
        self.isr = ISR_RST
        self.imr = 0
        self.dcr = 0
        self.tcr = 0
        self.rcr = 0
        self.tsr = 0
        self.rsr = 0
        self.pstart = 0
        self.pstop = 0
        self.bnry = 0
        self.curr = 0
        self.tpsr = 0
        self.tbcr = 0
        self.rsar = 0
        self.rbcr = 0
        self.crda = 0  # current remote DMA address
        self.clda = 0  # current local DMA address (where the last received frame ended)
        self.rnpp = 0  # remote next packet pointer (page 2, test register)
        self.lnpp = 0  # local next packet pointer (page 2, test register)
        self.send_next = -1  # "send packet": the next-page pointer to load into BNRY at the end
        self.par = bytearray(6)
        self.mar = bytearray(8)
        self.counters = [0, 0, 0]  # CNTR0 frame alignment, CNTR1 CRC, CNTR2 missed packets
        self.overflowed = False
        self.ring_full = False  # CURR caught up with BNRY: equal pointers mean full, not empty
        self._update_interrupt()

    def reset(self) -> None:
        """The card's reset line: the chip goes offline with ISR.RST, as at power-on; the
        address, ring pointers and configuration a driver programmed are re-programmed by it."""
        self.cr = CR_STP | CR_RD_ABORT
        self.isr = ISR_RST
        self.imr = 0
        self.rbcr = 0
        self.send_next = -1
        self._update_interrupt()

    # -- state -------------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return bool(self.cr & CR_STA) and not self.cr & CR_STP

    def _update_interrupt(self) -> None:
        level = bool(self.isr & self.imr & ISR_INTERRUPTS)
        if level != self._int_level:  # the pin only moves on a change: cheap on hot paths
            self._int_level = level
            self._set_interrupt(level)

    def _raise(self, bits: int) -> None:
        self.isr = isr = self.isr | bits
        if bool(isr & self.imr & ISR_INTERRUPTS) != self._int_level:  # _update_interrupt's test
            self._update_interrupt()

    def _count(self, index: int) -> None:
        value = min(COUNTER_SATURATE, self.counters[index] + 1)
        self.counters[index] = value
        if value & COUNTER_INTERRUPT:
            self._raise(ISR_CNT)

    def _advance(self, address: int, count: int) -> int:
        """`address + count`, where a DMA address that moves up to PSTOP continues at PSTART
        (with a sane ring only), and the 16-bit address space wraps."""
        stop, start = self.pstop << 8, self.pstart << 8
        moved = address + count
        if start < stop and address < stop <= moved:
            return start + (moved - stop) % (stop - start)
        return moved & 0xFFFF

    # -- registers ---------------------------------------------------------------------------

    def read_register(self, offset: int) -> int:
        offset &= 0x0F
        return _READERS[self.cr >> CR_PS_SHIFT][offset](self, offset)

    def _read_cr(self, _offset: int) -> int:
        return self.cr

    def _read_clda0(self, _offset: int) -> int:
        return self.clda & 0xFF

    def _read_clda1(self, _offset: int) -> int:
        return self.clda >> 8

    def _read_bnry(self, _offset: int) -> int:
        return self.bnry

    def _read_tsr(self, _offset: int) -> int:
        return self.tsr

    def _read_zero(self, _offset: int) -> int:
        """NCR (no collisions on the link), FIFO (not modelled), reserved registers, page 3."""
        return 0

    def _read_isr(self, _offset: int) -> int:
        return self.isr

    def _read_crda0(self, _offset: int) -> int:
        return self.crda & 0xFF

    def _read_crda1(self, _offset: int) -> int:
        return self.crda >> 8

    def _read_rsr(self, _offset: int) -> int:
        return self.rsr

    def _read_counter(self, offset: int) -> int:
        """CNTR0-2 clear when read."""
        index = offset - 0x0D
        value, self.counters[index] = self.counters[index], 0
        return value

    def _read_par(self, offset: int) -> int:
        return self.par[offset - 1]

    def _read_curr(self, _offset: int) -> int:
        return self.curr

    def _read_mar(self, offset: int) -> int:
        return self.mar[offset - 8]

    def _read_page2(self, offset: int) -> int:
        """Page 2 reads back the page 0 configuration and the local DMA pointers."""
        registers = {
            0x01: self.pstart,
            0x02: self.pstop,
            0x03: self.rnpp,
            0x04: self.tpsr,
            0x05: self.lnpp,
            0x06: self.clda >> 8,  # address counter upper
            0x07: self.clda & 0xFF,  # address counter lower
            0x0C: self.rcr,
            0x0D: self.tcr,
            0x0E: self.dcr,
            0x0F: self.imr,
        }
        return registers.get(offset, 0)

    def write_register(self, offset: int, value: int) -> None:
        """One register write: a table per page (CR at offset 0 on every page; page 3 is
        reserved and ignores the rest). Only ISR and IMR writes, and commands that raise a bit,
        can move the interrupt pin; a write that clears no set ISR bit leaves it alone."""
        offset &= 0x0F
        _WRITERS[self.cr >> CR_PS_SHIFT][offset](self, offset, value & 0xFF)

    def _write_ignored(self, _offset: int, _value: int) -> None:
        pass

    def _write_pstart(self, _offset: int, value: int) -> None:
        self.pstart = value

    def _write_pstop(self, _offset: int, value: int) -> None:
        self.pstop = value

    def _write_bnry(self, _offset: int, value: int) -> None:
        self.bnry = value
        self.ring_full = False
        if self.overflowed:  # the driver freed ring space: the receiver runs again
            self.overflowed = False
            if self.started:
                self.isr &= ~ISR_RST

    def _write_tpsr(self, _offset: int, value: int) -> None:
        self.tpsr = value

    def _write_tbcr0(self, _offset: int, value: int) -> None:
        self.tbcr = (self.tbcr & 0xFF00) | value

    def _write_tbcr1(self, _offset: int, value: int) -> None:
        self.tbcr = (self.tbcr & 0x00FF) | (value << 8)

    def _write_isr(self, _offset: int, value: int) -> None:
        cleared = self.isr & value & ISR_INTERRUPTS  # write 1 to clear; RST is read-only
        if cleared:
            self.isr &= ~cleared
            self._update_interrupt()

    def _write_rsar0(self, _offset: int, value: int) -> None:
        self.rsar = self.crda = (self.rsar & 0xFF00) | value

    def _write_rsar1(self, _offset: int, value: int) -> None:
        self.rsar = self.crda = (self.rsar & 0x00FF) | (value << 8)

    def _write_rbcr0(self, _offset: int, value: int) -> None:
        self.rbcr = (self.rbcr & 0xFF00) | value

    def _write_rbcr1(self, _offset: int, value: int) -> None:
        self.rbcr = (self.rbcr & 0x00FF) | (value << 8)

    def _write_rcr(self, _offset: int, value: int) -> None:
        self.rcr = value & 0x3F

    def _write_tcr(self, _offset: int, value: int) -> None:
        self.tcr = value & 0x1F

    def _write_dcr(self, _offset: int, value: int) -> None:
        self.dcr = value & 0x7F

    def _write_imr(self, _offset: int, value: int) -> None:
        self.imr = value & ISR_INTERRUPTS
        self._update_interrupt()

    def _write_par(self, offset: int, value: int) -> None:
        self.par[offset - 1] = value

    def _write_curr(self, _offset: int, value: int) -> None:
        self.curr = value

    def _write_mar(self, offset: int, value: int) -> None:
        self.mar[offset - 8] = value

    # Page 2 is for diagnostics; the writable test registers are the local DMA pointers.
    def _write_clda0(self, _offset: int, value: int) -> None:
        self.clda = (self.clda & 0xFF00) | value

    def _write_clda1(self, _offset: int, value: int) -> None:
        self.clda = (self.clda & 0x00FF) | (value << 8)

    def _write_rnpp(self, _offset: int, value: int) -> None:
        self.rnpp = value

    def _write_lnpp(self, _offset: int, value: int) -> None:
        self.lnpp = value

    def _write_command(self, _offset: int, value: int) -> None:
        if value & CR_STP:
            self.cr = (value & ~CR_STA & ~CR_TXP) | CR_STP
            self.isr |= ISR_RST
        elif value & CR_STA:
            self.cr = value & ~CR_TXP
            if not self.overflowed:
                self.isr &= ~ISR_RST
        else:  # neither: keep the run state, take the page, DMA and transmit bits
            self.cr = (self.cr & (CR_STP | CR_STA)) | (value & ~(CR_STP | CR_STA | CR_TXP))
        remote = value & CR_RD_MASK
        if remote == CR_RD_SEND:
            self._start_send_packet()
        elif remote & CR_RD_ABORT:
            self.send_next = -1
        elif remote in (CR_RD_READ, CR_RD_WRITE) and self.rbcr == 0:
            self._raise(ISR_RDC)  # nothing to move: the transfer is complete at once
        if value & CR_TXP and self.started:
            self._transmit_buffer()  # PTX (and PRX in loopback) move the pin as they are raised

    # -- transmit ----------------------------------------------------------------------------

    def _transmit_buffer(self) -> None:
        start = self.tpsr << 8
        frame = self._read_memory(start, min(self.tbcr, MAX_FRAME, 0x10000 - start))
        if len(frame) < MIN_FRAME:
            frame += bytes(MIN_FRAME - len(frame))
        self.tsr = TSR_PTX
        if self.tcr & TCR_LB_MASK:
            self.receive(frame)
        else:
            self._transmit(frame)
        self._raise(ISR_PTX)

    # -- remote DMA --------------------------------------------------------------------------

    def _start_send_packet(self) -> None:
        base = self.bnry << 8
        self.rsar = self.crda = base
        header = self._read_memory(base, HEADER)
        self.rbcr = header[2] | (header[3] << 8)
        self.send_next = header[1]

    def _remote_active(self, direction: int) -> bool:
        remote = self.cr & CR_RD_MASK
        return self.rbcr > 0 and (remote == direction or (
            direction == CR_RD_READ and remote == CR_RD_SEND
        ))  # fmt: skip

    def _remote_step(self, count: int) -> None:
        self.crda = self._advance(self.crda, count)
        self.rbcr = max(0, self.rbcr - count)
        if self.rbcr == 0:
            if self.send_next >= 0:
                self.bnry, self.send_next = self.send_next, -1
            self._raise(ISR_RDC)

    def _span(self, address: int, length: int) -> int:
        """How many bytes from `address` before the ring (or the address space) wraps."""
        stop = self.pstop << 8
        limit = stop if self.pstart < self.pstop and address < stop else 0x10000
        return max(1, min(length, limit - address))

    def data_read(self, length: int) -> bytes:
        """`length` bytes of data-port reads of the remote read DMA (even in word mode, where
        each access reads the word at an even address). With no transfer programmed, or past
        its end, the port reads the memory at CRDA without advancing."""
        word = bool(self.dcr & DCR_WTS)
        unit = 2 if word else 1
        if word:
            self.crda &= ~1
        out = bytearray()
        while len(out) < length:
            want = length - len(out)
            if not self._remote_active(CR_RD_READ):
                out += self._read_memory(self.crda, unit) * (want // unit)
                break
            chunk = self._span(self.crda, min(want, self.rbcr))
            chunk += chunk & (unit - 1)  # an odd count still moves a whole last word
            out += self._read_memory(self.crda, chunk)
            self._remote_step(chunk)
        if word and self.dcr & DCR_BOS:
            out[0::2], out[1::2] = out[1::2], out[0::2]
        return bytes(out)

    def data_write(self, data: bytes) -> None:
        """Data-port writes of the remote write DMA (even length in word mode); ignored unless
        one is programmed, and past its end."""
        word = bool(self.dcr & DCR_WTS)
        if word:
            self.crda &= ~1
            if self.dcr & DCR_BOS:
                swapped = bytearray(data)
                swapped[0::2], swapped[1::2] = data[1::2], data[0::2]
                data = bytes(swapped)
        if (self.cr & CR_RD_MASK == CR_RD_WRITE and 0 < len(data) <= self.rbcr
                and self._span(self.crda, len(data)) == len(data)):
            self._write_memory(self.crda, data)  # the common burst: one piece, no copy
            self._remote_step(len(data))
            return
        view = memoryview(data)
        while view and self._remote_active(CR_RD_WRITE):
            chunk = self._span(self.crda, min(len(view), self.rbcr))
            chunk += chunk & 1 if word else 0
            self._write_memory(self.crda, bytes(view[:chunk]))
            view = view[chunk:]
            self._remote_step(chunk)

    # -- receive -----------------------------------------------------------------------------

    def accepts(self, frame: bytes) -> bool:
        """The address filter: PRO takes all; else broadcast needs AB, multicast AM and its hash
        bit, unicast a match with PAR0-5."""
        destination = frame[:6]
        if self.rcr & RCR_PRO:
            return True
        if destination == BROADCAST:
            return bool(self.rcr & RCR_AB)
        if destination[0] & 1:
            if not self.rcr & RCR_AM:
                return False
            index = multicast_hash_index(destination)
            return bool(self.mar[index >> 3] & (1 << (index & 7)))
        return destination == self.par

    def receive(self, frame: bytes) -> bool:
        """A frame arrives from the wire. Returns True if it was stored in the ring."""
        size = len(frame)
        if self.cr & (CR_STA | CR_STP) != CR_STA or size < 6 or size > MAX_FRAME:
            return False  # not started (STA without STP), or no frame a wire carries
        # a frame for our station address (the common case) needs no more filter checks
        if not (frame[:6] == self.par and not frame[0] & 1) and not self.accepts(frame):
            return False
        physical = RSR_PHY if frame[0] & 1 else 0
        if self.rcr & RCR_MON:
            self.rsr = RSR_PRX | RSR_DIS | physical
            self._count(2)
            return False
        if size < MIN_FRAME:
            frame = frame + bytes(MIN_FRAME - size)
            size = MIN_FRAME
        pstart, pstop, curr = self.pstart, self.pstop, self.curr
        if not pstart <= curr < pstop:  # the ring is unusable (PSTART >= PSTOP fails this too)
            return False
        total = size + HEADER
        pages = (total + FCS + PAGE - 1) // PAGE  # room for the FCS the chip would store
        if self.ring_full or self._crosses_boundary(pages):
            self.overflowed = True
            self.rsr = RSR_MPA
            self._count(2)
            self._raise(ISR_OVW | ISR_RST)
            return False
        start = curr << 8
        next_page = curr + pages
        if next_page >= pstop:
            next_page -= pstop - pstart
        self.rsr = rsr = RSR_PRX | physical
        packet = bytes((rsr, next_page, total & 0xFF, total >> 8)) + frame
        if start + total < pstop << 8:  # no wrap, not even to PSTART at the end: one write
            self._write_memory(start, packet)
            address = start + total
        else:
            data, address = memoryview(packet), start
            while data:
                chunk = self._span(address, len(data))
                self._write_memory(address, bytes(data[:chunk]))
                data = data[chunk:]
                address = self._advance(address, chunk)
        self.clda = address
        self.curr = self.lnpp = next_page
        self.ring_full = next_page == self.bnry
        self.isr |= ISR_PRX
        if not self._int_level:  # the pin can only move if it is not up already
            self._update_interrupt()
        return True

    def has_room(self) -> bool:
        """Whether a frame of the longest size would be stored now (not refused for want of
        ring space). A stopped chip or one with a ring it cannot use takes frames only to drop
        them, as on a wire, so it has room too: nothing need wait for it."""
        pstart, pstop = self.pstart, self.pstop
        if self.cr & (CR_STA | CR_STP) != CR_STA or not pstart <= self.curr < pstop:
            return True
        if self.overflowed or self.ring_full:
            return False
        span = pstop - pstart
        bnry = self.bnry
        free = (bnry - self.curr) % span if pstart <= bnry < pstop else span
        return free == 0 or free >= MAX_FRAME_PAGES  # equal pointers: empty (ring_full says full)

    def _crosses_boundary(self, pages: int) -> bool:
        """The local DMA checks each page it moves into against BNRY: the frame would overwrite
        data the driver has not read yet (BNRY among the pages after CURR that it takes)."""
        span = self.pstop - self.pstart
        if pages > span:
            return True
        if not self.pstart <= self.bnry < self.pstop:
            return False  # the pages it walks never meet a BNRY outside the ring
        return 0 < (self.bnry - self.curr) % span < pages

    # -- snapshots ---------------------------------------------------------------------------

    FIELDS = (
        "cr", "isr", "imr", "dcr", "tcr", "rcr", "tsr", "rsr", "pstart", "pstop", "bnry",
        "curr", "tpsr", "tbcr", "rsar", "rbcr", "crda", "clda", "rnpp", "lnpp", "send_next",
        "overflowed",
        "ring_full",
    )  # fmt: skip

    def state(self) -> dict[str, Any]:
        fields: dict[str, Any] = {name: getattr(self, name) for name in self.FIELDS}
        fields.update(par=bytes(self.par), mar=bytes(self.mar), counters=list(self.counters))
        return fields

    def restore(self, state: dict[str, Any]) -> None:
        missing = [n for n in (*self.FIELDS, "par", "mar", "counters") if n not in state]
        if missing:
            raise ValueError(f"dp8390: snapshot lacks {', '.join(missing)}")
        for name in self.FIELDS:
            setattr(self, name, state[name])
        self.par = bytearray(bytes(state["par"])[:6].ljust(6, b"\0"))
        self.mar = bytearray(bytes(state["mar"])[:8].ljust(8, b"\0"))
        self.counters = [int(c) for c in list(state["counters"])[:3]] + [0] * (
            3 - len(state["counters"][:3])
        )
        self._int_level = None
        self._update_interrupt()


# Register files per page (index: CR.PS), one entry per offset; CR sits at 0 on every page.
_R, _W = Dp8390, Dp8390
_READERS: tuple[tuple[Callable[[Dp8390, int], int], ...], ...] = (
    (_R._read_cr, _R._read_clda0, _R._read_clda1, _R._read_bnry, _R._read_tsr, _R._read_zero,
     _R._read_zero, _R._read_isr, _R._read_crda0, _R._read_crda1, _R._read_zero,
     _R._read_zero, _R._read_rsr, _R._read_counter, _R._read_counter, _R._read_counter),
    (_R._read_cr, *[_R._read_par] * 6, _R._read_curr, *[_R._read_mar] * 8),
    (_R._read_cr, *[_R._read_page2] * 15),
    (_R._read_cr, *[_R._read_zero] * 15),
)  # fmt: skip
_WRITERS: tuple[tuple[Callable[[Dp8390, int, int], None], ...], ...] = (
    (_W._write_command, _W._write_pstart, _W._write_pstop, _W._write_bnry,
     _W._write_tpsr, _W._write_tbcr0, _W._write_tbcr1, _W._write_isr, _W._write_rsar0,
     _W._write_rsar1, _W._write_rbcr0, _W._write_rbcr1, _W._write_rcr, _W._write_tcr,
     _W._write_dcr, _W._write_imr),
    (_W._write_command, *[_W._write_par] * 6, _W._write_curr, *[_W._write_mar] * 8),
    (_W._write_command, _W._write_clda0, _W._write_clda1, _W._write_rnpp,
     _W._write_ignored, _W._write_lnpp, _W._write_clda1, _W._write_clda0,
     *[_W._write_ignored] * 8),
    (_W._write_command, *[_W._write_ignored] * 15),
)  # fmt: skip
