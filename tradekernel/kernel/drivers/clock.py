"""Kernel time: virtual nanoseconds from the paravirtual clock, wall time from the CMOS RTC.

Both are read through ports like any driver would: pvclock at 0x5B00 (low dword latches, high
dword at +4), the MC146818 through index 0x70 / data 0x71 (waiting out update-in-progress,
decoding BCD or binary and 12/24-hour mode as status register B says).
"""

from __future__ import annotations

from datetime import UTC, datetime

from tradekernel.emu.bus import PortBus

PVCLOCK_PORT = 0x5B00
RTC_INDEX, RTC_DATA = 0x70, 0x71


class KernelClock:
    def __init__(self, ports: PortBus) -> None:
        self._ports = ports
        self.boot_ns = self.now_ns()

    def now_ns(self) -> int:
        low = self._ports.read(PVCLOCK_PORT, 4)
        high = self._ports.read(PVCLOCK_PORT + 4, 4)
        return (high << 32) | low

    def uptime_ns(self) -> int:
        return self.now_ns() - self.boot_ns

    def _cmos(self, index: int) -> int:
        self._ports.write(RTC_INDEX, 1, index)
        return self._ports.read(RTC_DATA, 1)

    def wall_time(self) -> datetime:
        """The RTC's date and time (UTC, as this machine keeps it)."""
        for _ in range(1000):  # update-in-progress lasts ~244 us of virtual time
            if not self._cmos(0x0A) & 0x80:
                break
        status_b = self._cmos(0x0B)
        binary, hours24 = bool(status_b & 0x04), bool(status_b & 0x02)

        def value(raw: int) -> int:
            return raw if binary else (raw >> 4) * 10 + (raw & 0x0F)

        raw_hours = self._cmos(0x04)
        hours = value(raw_hours & 0x7F)
        if not hours24:
            hours = hours % 12 + (12 if raw_hours & 0x80 else 0)
        century = value(self._cmos(0x32)) or 20
        return datetime(
            century * 100 + value(self._cmos(0x09)),
            value(self._cmos(0x08)),
            value(self._cmos(0x07)),
            hours,
            value(self._cmos(0x02)),
            value(self._cmos(0x00)),
            tzinfo=UTC,
        )
