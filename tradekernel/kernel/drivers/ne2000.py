"""The kernel's NE2000 driver: a DP8390 behind ISA ports, driven the way Linux's ne.c/8390.c and
the datasheet say, through `in`/`out` only (any NE2000-compatible card works, not only ours).

Probe: pulse the reset port and wait (bounded) for ISR.RST; the command register must read back
what was written; the station PROM, read with remote DMA, must carry the NE2000 signature (0x57
in bytes 14-15). No card (an empty bus reads 0xFF) or a failed check: `probe` returns None and
the kernel boots without a network.

Buffer RAM (pages 0x40-0x7F): a transmit buffer of TX_PAGES pages at 0x40, the receive ring
behind it up to 0x80. Receive: on PRX/RXE/OVW every frame between BNRY+1 and CURR is taken in
one interrupt. The whole stretch of ring pages from BNRY+1 up to CURR is read with one remote
DMA (the chip's remote DMA wraps from PSTOP to PSTART as the ring does), then its frames are
split by their 4-byte headers (status, next page, count; a header that points outside the ring
or past CURR, or a count out of bounds, resets the ring, counted as `ring_errors`), and BNRY
moves past them with one write. That is a few port accesses per burst instead of a dozen per
frame (Linux reads each header and frame with its own DMA; the chip does not care). An
overflow (OVW) is cleared by draining the ring and writing BNRY, which restarts the receiver.
Transmit: remote DMA write into the transmit buffer (word mode, completion polled on ISR.RDC,
bounded), then TXP (TBCR written only when the length changes: the chip never alters it);
frames offered while the transmitter is busy wait in a bounded queue sent on PTX/TXE, which
interrupt only while frames wait (IMR): otherwise the next send learns from ISR that the last
transmit is done, so a stream whose transmits finish before the next send raises no transmit
interrupts (each would cost the machine an IRQ line change and a CPU stop). Every
remote DMA moves whole pages (a frame is zero-filled to its last page; TBCR says how much of
it goes out), so a completed one leaves RBCR0 and RSAR0 at 0, as the datasheet's counters
run: the next transfer writes only RBCR1 and RSAR1. ISR.RDC is cleared together with the
PTX acknowledgement of the previous frame, or alone when there was none: five port writes
per frame in a stream (the acknowledgement, RBCR1, RSAR1, the two commands). Frames
go to `on_frame` (the network stack's `receive`) from the IRQ handler, between one
`on_burst_start` and `on_burst_end` per interrupt.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol

CR, ISR, DATA, RESET = 0x00, 0x07, 0x10, 0x1F
# page 0 (write) registers
PSTART, PSTOP, BNRY, TPSR, TBCR0, TBCR1 = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
RSAR0, RSAR1, RBCR0, RBCR1, RCR, TCR, DCR, IMR = 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F
CNTR0, CNTR1, CNTR2 = 0x0D, 0x0E, 0x0F  # page 0 (read) tally counters
PAR0, CURR, MAR0 = 0x01, 0x07, 0x08  # page 1
CR_STP, CR_STA, CR_TXP, CR_RREAD, CR_RWRITE, CR_NODMA, CR_PAGE1 = 1, 2, 4, 0x08, 0x10, 0x20, 0x40
ISR_PRX, ISR_PTX, ISR_RXE, ISR_TXE, ISR_OVW, ISR_CNT, ISR_RDC, ISR_RST = (
    0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80)  # fmt: skip
DCR_WORD_FIFO8 = 0x49  # word transfers, normal operation (LS), FIFO threshold 8 bytes
DCR_BYTE_FIFO8 = 0x48
RCR_BROADCAST_MULTICAST = 0x0C  # AB | AM: broadcasts and hashed multicast
RCR_MONITOR = 0x20
TCR_NORMAL, TCR_LOOPBACK = 0x00, 0x02
IMR_ENABLED = ISR_PRX | ISR_PTX | ISR_RXE | ISR_TXE | ISR_OVW | ISR_CNT
IMR_RECEIVE = IMR_ENABLED & ~(ISR_PTX | ISR_TXE)  # while no frame waits to be transmitted

PAGE = 256
RAM_FIRST_PAGE, RAM_END_PAGE = 0x40, 0x80
TX_PAGES = 6  # one full frame (1536 bytes)
RX_START = RAM_FIRST_PAGE + TX_PAGES
RX_PAGES = RAM_END_PAGE - RX_START
HEADER = 4
MIN_COUNT, MAX_COUNT = HEADER + 60, HEADER + 1518  # header + frame without FCS
MAX_FRAME = 1514
SIGNATURE = 0x57
POLL_LIMIT = 10_000  # ISR reads before a card that never answers is given up on
TX_QUEUE = 64
FRAMES_PER_INTERRUPT = 256  # a flood cannot keep one interrupt forever
BURSTS_PER_INTERRUPT = 64  # ring stretches read in one interrupt (each up to a full ring)
ISR_ROUNDS = 8  # re-reads of ISR within one interrupt


class PortIo(Protocol):
    def inb(self, port: int) -> int: ...

    def outb(self, port: int, value: int) -> None: ...

    def insw(self, port: int, count: int) -> bytes: ...

    def outsw(self, port: int, data: bytes) -> None: ...


class Ne2000Driver:
    """One probed card. `mac` and `send` make it the network stack's Link."""

    def __init__(self, io: PortIo, base: int, irq: int, mac: bytes) -> None:
        self.io, self.base, self.irq, self.mac = io, base, irq, mac
        self._outb, self._inb = io.outb, io.inb  # bound once: every frame costs a few of each
        self.on_frame: Callable[[bytes], None] = lambda frame: None
        # told before and after each interrupt's frames (the stack coalesces its ACKs)
        self.on_burst_start: Callable[[], None] = lambda: None
        self.on_burst_end: Callable[[], None] = lambda: None
        self.tx_queue: deque[bytes] = deque()
        self.tx_busy = False
        self._tx_length = -1  # what TBCR holds (the chip never changes it): rewritten on change
        # RBCR0 and RSAR0 known to be 0 (after a completed whole-page remote DMA), and ISR.RDC
        # known clear (acknowledged since the last DMA): registers _transmit need not write
        self._dma_low_clear = False
        self._rdc_clear = False
        self._tx_interrupts = False
        self.next_page = RX_START  # the ring page the next frame starts at (BNRY + 1)
        self.stats = {"rx_frames": 0, "tx_frames": 0, "tx_dropped": 0, "overflows": 0,
                      "ring_errors": 0, "rx_errors": 0, "tx_errors": 0, "dma_timeouts": 0,
                      "interrupts": 0}  # fmt: skip

    # -- ports ---------------------------------------------------------------------------------
    def _out(self, register: int, value: int) -> None:
        self._outb(self.base + register, value & 0xFF)

    def _in(self, register: int) -> int:
        return self._inb(self.base + register)

    # -- probe and start -----------------------------------------------------------------------
    @classmethod
    def probe(cls, io: PortIo, base: int, irq: int) -> Ne2000Driver | None:
        """The card at `base`, reset and started, or None if there is no NE2000 there."""
        if io.inb(base + CR) == 0xFF:
            return None  # nothing decodes the port
        io.outb(base + RESET, io.inb(base + RESET))
        if not any(io.inb(base + ISR) & ISR_RST for _ in range(POLL_LIMIT)):
            return None
        io.outb(base + ISR, 0xFF)
        io.outb(base + CR, CR_NODMA | CR_STP)
        if io.inb(base + CR) & 0x3F != CR_NODMA | CR_STP:
            return None
        prom = cls._read_prom(io, base)
        if prom is None or prom[14] != SIGNATURE or prom[15] != SIGNATURE:
            return None
        driver = cls(io, base, irq, bytes(prom[:6]))
        driver.start()
        return driver

    @staticmethod
    def _read_prom(io: PortIo, base: int) -> bytes | None:
        """The 16 station-PROM bytes (word mode: each PROM byte sits in the low half of a word)."""
        io.outb(base + DCR, DCR_WORD_FIFO8)
        io.outb(base + RBCR0, 32)
        io.outb(base + RBCR1, 0)
        io.outb(base + RSAR0, 0)
        io.outb(base + RSAR1, 0)
        io.outb(base + CR, CR_RREAD | CR_STA)
        words = io.insw(base + DATA, 16)
        io.outb(base + ISR, ISR_RDC)
        return bytes(words[0::2])

    def start(self) -> None:
        """The datasheet's initialisation order: stopped, loopback while the ring is set up."""
        out = self._out
        out(CR, CR_NODMA | CR_STP)
        out(DCR, DCR_WORD_FIFO8)
        out(RBCR0, 0)
        out(RBCR1, 0)
        out(RCR, RCR_MONITOR)
        out(TCR, TCR_LOOPBACK)
        out(TPSR, RAM_FIRST_PAGE)
        out(PSTART, RX_START)
        out(PSTOP, RAM_END_PAGE)
        out(BNRY, RAM_END_PAGE - 1)
        out(ISR, 0xFF)
        out(IMR, 0)
        out(CR, CR_PAGE1 | CR_NODMA | CR_STP)
        for i, byte in enumerate(self.mac):
            out(PAR0 + i, byte)
        for i in range(8):
            out(MAR0 + i, 0xFF)  # every multicast hash: the stack filters groups itself
        out(CURR, RX_START)
        self.next_page = RX_START
        self._tx_length = -1
        self._dma_low_clear = self._rdc_clear = False
        self.tx_busy = False  # ISR is cleared below: a frame in flight would never say PTX
        self._tx_interrupts = bool(self.tx_queue)  # IMR has PTX/TXE: frames wait for them
        out(CR, CR_NODMA | CR_STA)
        out(ISR, 0xFF)
        out(IMR, IMR_ENABLED if self._tx_interrupts else IMR_RECEIVE)
        out(TCR, TCR_NORMAL)
        out(RCR, RCR_BROADCAST_MULTICAST)

    # -- transmit ------------------------------------------------------------------------------
    def send(self, frame: bytes) -> None:
        """Queue one frame (no FCS) for the wire; it goes at once if the transmitter is idle."""
        if len(frame) > MAX_FRAME:
            self.stats["tx_dropped"] += 1
            return
        if self.tx_busy:
            self._transmit_done()
        if self.tx_busy:
            if len(self.tx_queue) >= TX_QUEUE:
                self.stats["tx_dropped"] += 1
                return
            self.tx_queue.append(frame)
            if not self._tx_interrupts:  # the transmitter's completion must now interrupt
                self._out(IMR, IMR_ENABLED)
                self._tx_interrupts = True
            return
        self._transmit(frame)

    def _transmit(self, frame: bytes) -> None:
        """TPSR stays where start() put it (the chip never moves it); RDC is clear before the
        DMA (acknowledged here or with the last PTX) so that the poll after it sees this
        transfer's completion. The DMA moves whole pages: RBCR0 and RSAR0 stay 0."""
        length = max(len(frame), 60)
        pages = (length + PAGE - 1) // PAGE
        padded = frame.ljust(pages * PAGE, b"\0")
        outb, base = self._outb, self.base
        if not self._rdc_clear:
            outb(base + ISR, ISR_RDC)
        if not self._dma_low_clear:
            outb(base + RBCR0, 0)
            outb(base + RSAR0, 0)
        outb(base + RBCR1, pages)
        outb(base + RSAR1, RAM_FIRST_PAGE)
        outb(base + CR, CR_RWRITE | CR_STA)
        self.io.outsw(base + DATA, padded)
        self._rdc_clear = False
        self._dma_low_clear = self._wait_isr(ISR_RDC)
        if not self._dma_low_clear:
            self.stats["dma_timeouts"] += 1
        if length != self._tx_length:  # a run of full-size frames programs it once
            outb(base + TBCR0, length & 0xFF)
            outb(base + TBCR1, length >> 8)
            self._tx_length = length
        self.tx_busy = True
        outb(base + CR, CR_NODMA | CR_TXP | CR_STA)
        self.stats["tx_frames"] += 1

    def _transmit_done(self) -> None:
        """Whether the last transmit finished (PTX/TXE seen and acknowledged here, so a burst
        of sends need not wait for the interrupt). The same write clears RDC for the next
        DMA (a 1 written to a clear ISR bit changes nothing)."""
        status = self._in(ISR) & (ISR_PTX | ISR_TXE)
        if status:
            if status & ISR_TXE:
                self.stats["tx_errors"] += 1
            self._out(ISR, status | ISR_RDC)
            self._rdc_clear = True
            self.tx_busy = False

    def _wait_isr(self, bits: int) -> bool:
        inb, port = self._inb, self.base + ISR
        for _ in range(POLL_LIMIT):
            if inb(port) & bits:
                return True
        return False

    # -- receive -------------------------------------------------------------------------------
    def _remote_read(self, page: int, pages: int) -> bytes:
        """`pages` whole pages of card memory from `page` (the ring's wrap keeps the address
        page-aligned: RBCR0 and RSAR0 are 0 when it is done). RDC is left set: only _transmit
        waits on it and clears it first."""
        outb, base = self._outb, self.base
        self._rdc_clear = False
        if not self._dma_low_clear:
            outb(base + RBCR0, 0)
            outb(base + RSAR0, 0)
            self._dma_low_clear = True
        outb(base + RBCR1, pages)
        outb(base + RSAR1, page)
        outb(base + CR, CR_RREAD | CR_STA)
        return self.io.insw(base + DATA, pages * PAGE // 2)

    def _current(self) -> int:
        self._out(CR, CR_PAGE1 | CR_NODMA | CR_STA)
        current = self._in(CURR)
        self._out(CR, CR_NODMA | CR_STA)
        return current

    def _drain(self) -> None:
        """Take every frame in the ring (at most FRAMES_PER_INTERRUPT), a stretch of pages at a
        time, moving BNRY after each stretch (which lets the card take more)."""
        frames = 0
        for _ in range(BURSTS_PER_INTERRUPT):
            current = self._current()
            pages = (current - self.next_page) % RX_PAGES
            if not pages or frames >= FRAMES_PER_INTERRUPT:
                return
            stretch = self._remote_read(self.next_page, pages)
            frames += self._split(stretch, current)
            boundary = self.next_page - 1 if self.next_page > RX_START else RAM_END_PAGE - 1
            self._out(BNRY, boundary)

    def _split(self, stretch: bytes, current: int) -> int:
        """Hand the frames in `stretch` (ring pages from next_page up to CURR) to the stack;
        the count taken. A header that does not fit the stretch resets the ring."""
        page, offset, taken = self.next_page, 0, 0
        while page != current:
            status, next_page, low, high = stretch[offset : offset + HEADER]
            count = low | high << 8
            used = (next_page - page) % RX_PAGES  # pages this frame occupies
            if not (
                RX_START <= next_page < RAM_END_PAGE
                and MIN_COUNT <= count <= MAX_COUNT
                and count <= used * PAGE
                and offset + used * PAGE <= len(stretch)
            ):
                self.stats["ring_errors"] += 1
                self._reset_ring()
                return taken
            if status & 0x01:  # PRX: received intact
                self.stats["rx_frames"] += 1
                taken += 1
                self.on_frame(stretch[offset + HEADER : offset + count])
            else:
                self.stats["rx_errors"] += 1
            offset += used * PAGE
            page = self.next_page = next_page
        return taken

    def _reset_ring(self) -> None:
        """A corrupt header: drop everything in the ring and start it afresh."""
        current = self._current()
        self.next_page = current
        self._out(BNRY, current - 1 if current > RX_START else RAM_END_PAGE - 1)

    # -- interrupt -----------------------------------------------------------------------------
    def on_irq(self, _irq: int) -> None:
        """IRQ: receive, transmit completions, overflow and counters, until ISR is quiet. The
        stack hears of one receive burst for the whole interrupt, however many ring stretches
        and ISR rounds it took (TCP then sends one ACK per connection at its end)."""
        self.stats["interrupts"] += 1
        self.on_burst_start()
        try:
            self._service()
        finally:
            self.on_burst_end()

    def _service(self) -> None:
        for _ in range(ISR_ROUNDS):
            status = self._in(ISR) & IMR_ENABLED
            if not status:
                return
            if status & ISR_OVW:
                self.stats["overflows"] += 1
            if status & (ISR_PRX | ISR_RXE | ISR_OVW):
                self._out(ISR, status & (ISR_PRX | ISR_RXE))
                self._drain()
                if status & ISR_OVW:
                    self._out(ISR, ISR_OVW)
            if status & ISR_CNT:
                for register in (CNTR0, CNTR1, CNTR2):
                    self._in(register)  # reading clears the tally counters
                self._out(ISR, ISR_CNT)
            if status & (ISR_PTX | ISR_TXE):
                self._transmit_done()
                if self.tx_queue and not self.tx_busy:
                    self._transmit(self.tx_queue.popleft())
                if not self.tx_queue and self._tx_interrupts:
                    self._out(IMR, IMR_RECEIVE)
                    self._tx_interrupts = False
