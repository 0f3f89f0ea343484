"""The serial console: everything written to the VGA console is mirrored to COM1.

Why: a byte stream is what scripts and logs want (as Linux's console=ttyS0); `tk boot
--headless` piped into a file prints this stream. A polling 16550 driver: 115200 8N1, FIFOs on,
each byte waits for THRE.
"""

from __future__ import annotations

from tradekernel.emu.bus import PortBus

COM1 = 0x3F8
THR, IER, FCR, LCR, MCR, LSR = 0, 1, 2, 3, 4, 5
LSR_THRE = 0x20
LCR_DLAB, LCR_8N1 = 0x80, 0x03
DIVISOR_115200 = 1


class SerialPort:
    def __init__(self, ports: PortBus, base: int = COM1) -> None:
        self._ports = ports
        self._base = base
        ports.write(base + IER, 1, 0x00)
        ports.write(base + LCR, 1, LCR_DLAB)
        ports.write(base + THR, 1, DIVISOR_115200 & 0xFF)
        ports.write(base + IER, 1, DIVISOR_115200 >> 8)
        ports.write(base + LCR, 1, LCR_8N1)
        ports.write(base + FCR, 1, 0xC7)  # enable and clear FIFOs, 14-byte trigger
        ports.write(base + MCR, 1, 0x0B)  # DTR, RTS, OUT2
        # No UART answers with all-ones status: then there is nothing to write to.
        self.present = ports.read(base + LSR, 1) != 0xFF

    def write(self, text: str) -> None:
        if not self.present:
            return
        ports, base = self._ports, self._base
        for byte in text.replace("\n", "\r\n").encode("cp437", "replace"):
            for _ in range(10_000):
                if ports.read(base + LSR, 1) & LSR_THRE:
                    break
            ports.write(base + THR, 1, byte)
