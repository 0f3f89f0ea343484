"""The kernel's timer: the 8254's channel 0 programmed one-shot (tickless), through its ports.

Mode 0 (interrupt on terminal count): a control word 0x30 (channel 0, low then high byte, mode
0, binary) and a 16-bit count; OUT rises once when the count runs out, which is one IRQ0 edge,
and stays high until the next control word. At 1 193 182 Hz the longest one-shot is 65536
counts, 54.9 ms: a farther deadline takes an IRQ0 every 54.9 ms on the way, re-armed each time
(the hardware's limit; nothing is due at those and they cost only the re-arm). With nothing
to wait for the counter is stopped and IRQ0 stays quiet.

Time itself never comes from counting IRQ0s: the kernel reads the paravirtual clock, so a
late, early or missing interrupt changes only when work happens, not what time it is.
"""

from __future__ import annotations

from tradekernel.emu.bus import PortBus

PIT_HZ = 1_193_182
CHANNEL0, CONTROL = 0x40, 0x43
ONE_SHOT = 0x30  # channel 0, lobyte/hibyte, mode 0, binary
MAX_COUNT = 0x10000  # written as 0
NS = 1_000_000_000


class OneShotTimer:
    def __init__(self, ports: PortBus) -> None:
        self._write = ports.write
        self.armed: int | None = None  # when the programmed IRQ0 comes (virtual ns)
        self.stop()

    def program(self, deadline: int | None, now: int) -> None:
        """An IRQ0 at `deadline` (never before it), or none at all for None. An IRQ0 already
        due earlier is kept: the kernel programs again when it comes."""
        armed = self.armed
        if deadline is None:
            if armed is not None:
                self.stop()
            return
        if armed is not None and now < armed <= deadline:
            return
        count = min(MAX_COUNT, max(1, -(-(deadline - now) * PIT_HZ // NS)))
        self._write(CONTROL, 1, ONE_SHOT)
        self._write(CHANNEL0, 1, count & 0xFF)
        self._write(CHANNEL0, 1, (count >> 8) & 0xFF)
        self.armed = now + count * NS // PIT_HZ

    def stop(self) -> None:
        """A control word alone: the counter waits for a count that never comes."""
        self._write(CONTROL, 1, ONE_SHOT)
        self.armed = None

    def fired(self) -> None:
        """IRQ0 came: nothing is armed now."""
        self.armed = None
