"""A 16550A UART (COM1 by default: ports 0x3F8-0x3FF, IRQ4) with 16-byte FIFOs.

Host side, through named channels: every byte the guest transmits is sent on
f"{channel}-tx" (payload: `bytes` of length 1); bytes the host sends on f"{channel}-rx"
(payload: bytes-like) travel down the wire at the programmed baud rate and frame format and land
in the receive FIFO one character time apart, so a long paste behaves as on a real line: the
guest sees overrun only if it does not keep up in virtual time.

Transmit is instantaneous in virtual time: THR and the shift register are empty again as soon as
a byte is written (THRE and TEMT always read 1), and the THRE interrupt re-arms right away, with a
fresh edge on the IRQ line as a real UART gives when its THR drains.

One clock timer at most: the next character arriving from the host wire, or the FIFO character
timeout (four character times without a byte received or read while the FIFO holds data below
its trigger level).

Interrupt priority as the datasheet: line status > received data / character timeout > THR
empty > modem status. Reading IIR when it reports THRE clears that interrupt. The IRQ line is
gated by MCR OUT2, as on a PC. Loopback (MCR bit 4) sends transmitted bytes straight back to the
receiver, disconnects the host wire both ways, and feeds MCR's DTR/RTS/OUT1/OUT2 back into
MSR's DSR/CTS/RI/DCD. Outside loopback the modem inputs read as a connected terminal
(CTS, DSR and DCD asserted).
"""

from __future__ import annotations

from typing import Any

from tradekernel.devices.base import Board, Device, check_state_version
from tradekernel.emu.bus import Channels, IrqLine
from tradekernel.emu.clock import NS_PER_S, Clock, Timer

UART_CLOCK_BAUD = 115_200  # 1.8432 MHz / 16
FIFO_SIZE = 16
TRIGGER_LEVELS = (1, 4, 8, 14)
TIMEOUT_CHARACTERS = 4

# Register offsets
RBR_THR_DLL, IER_DLM, IIR_FCR, LCR, MCR, LSR, MSR, SCR = range(8)

IER_RDA, IER_THRE, IER_RLS, IER_MSI = 0x01, 0x02, 0x04, 0x08
IIR_NONE, IIR_RLS, IIR_RDA, IIR_TIMEOUT, IIR_THRE, IIR_MSI = 0x01, 0x06, 0x04, 0x0C, 0x02, 0x00
IIR_FIFO_ENABLED = 0xC0
FCR_ENABLE, FCR_CLEAR_RX, FCR_CLEAR_TX = 0x01, 0x02, 0x04
LCR_DLAB, LCR_PARITY, LCR_TWO_STOP = 0x80, 0x08, 0x04
MCR_DTR, MCR_RTS, MCR_OUT1, MCR_OUT2, MCR_LOOP = 0x01, 0x02, 0x04, 0x08, 0x10
LSR_DR, LSR_OE, LSR_THRE, LSR_TEMT = 0x01, 0x02, 0x20, 0x40
LSR_ERRORS = 0x1E  # OE, PE, FE, BI
MSR_CTS, MSR_DSR, MSR_RI, MSR_DCD = 0x10, 0x20, 0x40, 0x80
MSR_TERI = 0x04
MSR_CONNECTED_TERMINAL = MSR_CTS | MSR_DSR | MSR_DCD


class Uart16550(Device):
    """A 16550A on the ISA bus. `channel` names the host channels (e.g. "com1")."""

    name = "uart16550"
    STATE_VERSION = 1

    def __init__(self, base: int = 0x3F8, irq: int = 4, channel: str = "com1") -> None:
        if not 0 <= base <= 0xFFF8:
            raise ValueError(f"uart: base port {base:#x} outside the I/O space")
        if not 0 <= irq <= 15:
            raise ValueError(f"uart: IRQ {irq} is not an ISA IRQ")
        if not channel:
            raise ValueError("uart: channel name must not be empty")
        self.base = base
        self.irq_number = irq
        self.channel = channel
        self.tx_channel = f"{channel}-tx"
        self.rx_channel = f"{channel}-rx"
        self._clock: Clock | None = None
        self._channels: Channels | None = None
        self._irq: IrqLine | None = None
        self._timer: Timer | None = None
        self._power_on()

    def _power_on(self) -> None:
        self.rx_fifo = bytearray()
        self.wire = bytearray()  # host bytes still travelling down the line
        self.next_rx_ns: int | None = None
        self.last_activity_ns = 0
        self.timeout_pending = False
        self.thre_pending = False
        self.last_rx = 0
        self.ier = 0
        self.fcr = 0  # FIFO enable (bit 0) and trigger level (bits 7-6) as last written
        self.lcr = 0
        self.mcr = 0
        self.scr = 0
        self.divisor = 12  # 9600 baud
        self.line_errors = 0
        self.msr_deltas = 0

    def attach(self, board: Board) -> None:
        self._clock = board.clock
        self._channels = board.channels
        self._irq = board.irq(self.irq_number)
        board.ports.claim(self.base, 8, f"{self.name}:{self.channel}", self._read, self._write)
        board.channels.listen(self.rx_channel, self._host_sent)
        self.reset()

    def reset(self) -> None:
        self._power_on()
        if self._clock is not None:
            self.last_activity_ns = self._clock.now_ns()
        self._reschedule()
        self._update_irq()

    # -- derived state ------------------------------------------------------------------------

    def _now(self) -> int:
        if self._clock is None:
            raise RuntimeError(f"uart {self.channel}: used before attach()")
        return self._clock.now_ns()

    @property
    def fifo_enabled(self) -> bool:
        return bool(self.fcr & FCR_ENABLE)

    @property
    def loopback(self) -> bool:
        return bool(self.mcr & MCR_LOOP)

    def character_ns(self) -> int:
        """Time on the wire of one character: start, data, parity and stop bits at the baud rate."""
        data_bits = 5 + (self.lcr & 3)
        bits = 1 + data_bits + (1 if self.lcr & LCR_PARITY else 0)
        bits += 2 if self.lcr & LCR_TWO_STOP else 1
        divisor = self.divisor or 0x10000
        return bits * divisor * NS_PER_S // UART_CLOCK_BAUD

    def _rx_ready(self) -> bool:
        if not self.fifo_enabled:
            return bool(self.rx_fifo)
        return len(self.rx_fifo) >= TRIGGER_LEVELS[self.fcr >> 6]

    def interrupt_identification(self) -> int:
        """IIR without side effects: the highest-priority pending source."""
        ier = self.ier
        if ier & IER_RLS and self.line_errors & LSR_ERRORS:
            source = IIR_RLS
        elif ier & IER_RDA and self._rx_ready():
            source = IIR_RDA
        elif ier & IER_RDA and self.timeout_pending:
            source = IIR_TIMEOUT
        elif ier & IER_THRE and self.thre_pending:
            source = IIR_THRE
        elif ier & IER_MSI and self.msr_deltas:
            source = IIR_MSI
        else:
            source = IIR_NONE
        return source | (IIR_FIFO_ENABLED if self.fifo_enabled else 0)

    def _update_irq(self) -> None:
        if self._irq is not None:
            pending = not self.interrupt_identification() & IIR_NONE
            self._irq.set(pending and bool(self.mcr & MCR_OUT2))

    def _modem_status(self) -> int:
        if not self.loopback:
            return MSR_CONNECTED_TERMINAL
        mcr = self.mcr
        return (
            (MSR_CTS if mcr & MCR_RTS else 0)
            | (MSR_DSR if mcr & MCR_DTR else 0)
            | (MSR_RI if mcr & MCR_OUT1 else 0)
            | (MSR_DCD if mcr & MCR_OUT2 else 0)
        )

    # -- data paths ---------------------------------------------------------------------------

    def _receive(self, byte: int, at_ns: int) -> None:
        capacity = FIFO_SIZE if self.fifo_enabled else 1
        if len(self.rx_fifo) >= capacity:
            self.line_errors |= LSR_OE  # the new character is lost; the FIFO is kept
        else:
            self.rx_fifo.append(byte)
        self.last_activity_ns = at_ns
        self.timeout_pending = False

    def _transmit(self, byte: int) -> None:
        self.thre_pending = False
        self._update_irq()  # THR full: the THRE interrupt drops...
        if self.loopback:
            self._receive(byte, self._now())
            self._reschedule()
        elif self._channels is not None:
            self._channels.send(self.tx_channel, bytes([byte]))
        self.thre_pending = True  # ...and returns as the byte leaves at once

    def _host_sent(self, payload: object) -> None:
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            raise TypeError(f"{self.rx_channel}: payload must be bytes, not {type(payload)}")
        if not payload:
            return
        if not self.wire:
            self.next_rx_ns = self._now() + self.character_ns()
        self.wire.extend(payload)
        self._reschedule()

    def _on_timer(self) -> None:
        self._timer = None
        now = self._now()
        while self.wire and self.next_rx_ns is not None and self.next_rx_ns <= now:
            byte = self.wire.pop(0)
            if not self.loopback:  # in loopback the receiver is cut off from the line
                self._receive(byte, self.next_rx_ns)
            self.next_rx_ns += self.character_ns()
        if not self.wire:
            self.next_rx_ns = None
        if self._timeout_deadline() is not None and now >= self._timeout_deadline():
            self.timeout_pending = True
        self._update_irq()
        self._reschedule()

    def _timeout_deadline(self) -> int | None:
        if not self.fifo_enabled or not self.rx_fifo or self.timeout_pending:
            return None
        return self.last_activity_ns + TIMEOUT_CHARACTERS * self.character_ns()

    def _reschedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadlines = [d for d in (self.next_rx_ns, self._timeout_deadline()) if d is not None]
        if deadlines and self._clock is not None:
            self._timer = self._clock.call_at(min(deadlines), self._on_timer)

    # -- ports --------------------------------------------------------------------------------

    def _read(self, port: int, size: int) -> int:
        offset = port - self.base
        dlab = self.lcr & LCR_DLAB
        if offset == RBR_THR_DLL:
            return self.divisor & 0xFF if dlab else self._read_rbr()
        if offset == IER_DLM:
            return self.divisor >> 8 if dlab else self.ier
        if offset == IIR_FCR:
            value = self.interrupt_identification()
            if value & 0x0F == IIR_THRE:
                self.thre_pending = False
                self._update_irq()
            return value
        if offset == LCR:
            return self.lcr
        if offset == MCR:
            return self.mcr
        if offset == LSR:
            return self._read_lsr()
        if offset == MSR:
            value = self._modem_status() | self.msr_deltas
            self.msr_deltas = 0
            self._update_irq()
            return value
        return self.scr

    def _read_rbr(self) -> int:
        if self.rx_fifo:
            self.last_rx = self.rx_fifo.pop(0)
            self.last_activity_ns = self._now()
            self.timeout_pending = False
            self._reschedule()
            self._update_irq()
        return self.last_rx

    def _read_lsr(self) -> int:
        value = self.line_errors | LSR_THRE | LSR_TEMT | (LSR_DR if self.rx_fifo else 0)
        self.line_errors = 0
        self._update_irq()
        return value

    def _write(self, port: int, size: int, value: int) -> None:
        offset = port - self.base
        value &= 0xFF
        dlab = self.lcr & LCR_DLAB
        if offset == RBR_THR_DLL:
            if dlab:
                self.divisor = (self.divisor & 0xFF00) | value
            else:
                self._transmit(value)
        elif offset == IER_DLM:
            if dlab:
                self.divisor = (self.divisor & 0x00FF) | (value << 8)
            else:
                if value & IER_THRE and not self.ier & IER_THRE:
                    self.thre_pending = True  # THR is empty when ETBEI is switched on
                self.ier = value & 0x0F
        elif offset == IIR_FCR:
            self._write_fcr(value)
        elif offset == LCR:
            self.lcr = value
        elif offset == MCR:
            self._write_mcr(value & 0x1F)
        elif offset == SCR:
            self.scr = value
        # LSR and MSR writes are factory-test only; ignored.
        if offset in (IIR_FCR, LCR, MCR) or (dlab and offset <= IER_DLM):
            self._reschedule()  # FIFO contents or character time changed
        self._update_irq()

    def _write_fcr(self, value: int) -> None:
        if (value ^ self.fcr) & FCR_ENABLE:
            self.rx_fifo.clear()  # changing FIFO mode empties both FIFOs
        if value & FCR_CLEAR_RX:
            self.rx_fifo.clear()
        if not self.rx_fifo:
            self.timeout_pending = False
        self.fcr = value & 0xC1 if value & FCR_ENABLE else 0

    def _write_mcr(self, value: int) -> None:
        before = self._modem_status()
        self.mcr = value
        after = self._modem_status()
        changed = before ^ after
        self.msr_deltas |= (changed >> 4) & 0x0B  # DCTS, DDSR, DDCD
        if before & MSR_RI and not after & MSR_RI:
            self.msr_deltas |= MSR_TERI

    # -- snapshots ----------------------------------------------------------------------------

    _FIELDS = (
        "next_rx_ns",
        "last_activity_ns",
        "timeout_pending",
        "thre_pending",
        "last_rx",
        "ier",
        "fcr",
        "lcr",
        "mcr",
        "scr",
        "divisor",
        "line_errors",
        "msr_deltas",
    )

    def state(self) -> dict[str, Any]:
        fields: dict[str, Any] = {name: getattr(self, name) for name in self._FIELDS}
        fields.update(
            version=self.STATE_VERSION, rx_fifo=bytes(self.rx_fifo), wire=bytes(self.wire)
        )
        return fields

    def restore(self, state: dict[str, Any]) -> None:
        check_state_version(self, state)
        missing = [name for name in (*self._FIELDS, "rx_fifo", "wire") if name not in state]
        if missing:
            raise ValueError(f"{self.name}: snapshot lacks {', '.join(missing)}")
        for name in self._FIELDS:
            setattr(self, name, state[name])
        self.rx_fifo = bytearray(state["rx_fifo"][:FIFO_SIZE])
        self.wire = bytearray(state["wire"])
        self._reschedule()
        self._update_irq()
