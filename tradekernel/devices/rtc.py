"""The MC146818 real-time clock and its 128 bytes of CMOS RAM (index 0x70, data 0x71).

Time is never ticked: the clock is `base_seconds` (Unix time, taken as the RTC's local time) at
virtual `base_ns`, plus whole seconds of virtual time since; the update cycle happens at
`base_ns + k * 1 s` and the update-in-progress bit (A bit 7) reads 1 for the 244 us before each
one. The time registers are encoded on read in the current format (BCD or binary per B bit 2,
24 h or 12 h with the PM flag in bit 7 per B bit 1), so switching format never corrupts the time.

Interrupt flags in register C (PF, AF, UF) are computed lazily over the virtual time elapsed
since they were last looked at, and IRQ8 is the level of IRQF. A clock timer runs only while
IRQ8 is low and an enabled interrupt can come: one per periodic period (rate from register A),
per update (UIE) or for the next alarm (AIE). Reading C clears the flags and lowers IRQ8, which
is what lets the next interrupt through, as on real hardware.

Setting the clock: while B.SET is 1 updates stop and writes to the time registers build the new
time; clearing SET starts it, the first update one second later. A write with SET clear takes
effect at once and keeps the second's phase. Divider values 110/111 in A hold the divider in
reset (no updates, no periodic interrupts); leaving reset puts the first update 500 ms later.
Any other divider value runs the clock at the normal rate.

A `reset()` (the chip's RESET pin) clears PIE/AIE/UIE/SQWE and the flags; the time and CMOS RAM,
battery-backed, survive it. The CMOS is filled at construction with the memory-size bytes a BIOS
and OS read, the equipment byte and a valid checksum at 0x2E/0x2F over 0x10-0x2D.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tradekernel.devices.base import Board, Device, check_state_version
from tradekernel.emu.bus import IrqLine
from tradekernel.emu.clock import NS_PER_S, Clock, Timer
from tradekernel.memmap import DEFAULT_RAM_MIB

INDEX_PORT = 0x70
DATA_PORT = 0x71
IRQ = 8
CMOS_SIZE = 128

REG_SECONDS, REG_ALARM_SECONDS, REG_MINUTES, REG_ALARM_MINUTES = 0x00, 0x01, 0x02, 0x03
REG_HOURS, REG_ALARM_HOURS, REG_WEEKDAY, REG_DAY, REG_MONTH, REG_YEAR = 4, 5, 6, 7, 8, 9
REG_A, REG_B, REG_C, REG_D = 0x0A, 0x0B, 0x0C, 0x0D
REG_EQUIPMENT = 0x14
REG_BASE_KIB = 0x15
REG_EXTENDED_KIB = 0x17
REG_CHECKSUM = 0x2E
REG_EXTENDED_KIB_COPY = 0x30
REG_CENTURY = 0x32
REG_ABOVE_16M = 0x34
CHECKSUM_FIRST, CHECKSUM_LAST = 0x10, 0x2D

A_UIP = 0x80
A_DIVIDER_RESET = (6, 7)  # DV2-0 values that hold the divider chain in reset
B_SET, B_PIE, B_AIE, B_UIE, B_SQWE, B_DM, B_24H = 0x80, 0x40, 0x20, 0x10, 0x08, 0x04, 0x02
C_IRQF, C_PF, C_AF, C_UF = 0x80, 0x40, 0x20, 0x10
D_VRT = 0x80

UIP_WINDOW_NS = 244_000
DIVIDER_RESTART_NS = 500_000_000
OSCILLATOR_HZ = 32_768
SECONDS_PER_DAY = 86_400
KIB = 1024
MIB = 1024 * KIB

# Indices of the broken-down time held while the clock is stopped.
SECOND, MINUTE, HOUR, WEEKDAY, DAY, MONTH, YEAR = range(7)
_TIME_REGISTERS = {
    REG_SECONDS: SECOND,
    REG_MINUTES: MINUTE,
    REG_HOURS: HOUR,
    REG_WEEKDAY: WEEKDAY,
    REG_DAY: DAY,
    REG_MONTH: MONTH,
    REG_YEAR: YEAR,
    REG_CENTURY: YEAR,
}


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date; out-of-range months and days carry
    over arithmetically, so whatever a guest writes into the registers gives some date."""
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def civil_from_days(days: int) -> tuple[int, int, int]:
    """(year, month, day) of a day count since 1970-01-01."""
    days += 719468
    era = days // 146097
    day_of_era = days - era * 146097
    year_of_era = (
        day_of_era - day_of_era // 1460 + day_of_era // 36524 - day_of_era // 146096
    ) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    shifted_month = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * shifted_month + 2) // 5 + 1
    month = shifted_month + (3 if shifted_month < 10 else -9)
    return year_of_era + era * 400 + (month <= 2), month, day


def _epoch_of(start_time: datetime | int | float | None) -> tuple[int, int]:
    """(whole seconds, nanoseconds into that second) of the requested start time."""
    if start_time is None:
        start_time = time.time()
    if isinstance(start_time, datetime):
        if start_time.tzinfo is not None:
            start_time = start_time.astimezone(UTC)
        seconds = calendar.timegm(start_time.timetuple())
        return seconds, start_time.microsecond * 1000
    if isinstance(start_time, bool) or not isinstance(start_time, (int, float)):
        raise TypeError(f"rtc: start_time must be a datetime or epoch seconds, not {start_time!r}")
    whole = int(start_time // 1)
    return whole, int((start_time - whole) * NS_PER_S)


def _periodic_shift(rate: int) -> int | None:
    """Register A rate select -> log2 of the period in oscillator cycles (None: off)."""
    if rate == 0:
        return None
    return rate + 6 if rate < 3 else rate - 1


class Rtc(Device):
    """MC146818 RTC + CMOS RAM. `start_time` is the RTC time at virtual time 0 (or at attach)."""

    name = "rtc"
    STATE_VERSION = 1

    def __init__(
        self,
        start_time: datetime | int | float | None = None,
        ram_bytes: int = DEFAULT_RAM_MIB * MIB,
        floppy_drives: int = 0,
    ) -> None:
        if ram_bytes < 0:
            raise ValueError(f"rtc: ram_bytes must be >= 0, not {ram_bytes}")
        if not 0 <= floppy_drives <= 4:
            raise ValueError(f"rtc: floppy_drives must be 0-4, not {floppy_drives}")
        self._start_seconds, self._start_fraction_ns = _epoch_of(start_time)
        self.cmos = bytearray(CMOS_SIZE)
        self._fill_cmos(ram_bytes, floppy_drives)
        self.index = 0
        self.nmi_disabled = False  # bit 7 of the last index write: the PC's NMI mask
        self._base_seconds = self._start_seconds
        self._base_ns = -self._start_fraction_ns
        self._divider_start_ns = self._base_ns
        self._frozen: list[int] | None = None  # the time while updates are stopped
        self._divider_was_running = True
        self._weekday_offset = 4  # 1970-01-01 was a Thursday; Sunday reads as 1
        self._flags = 0
        self._checked_ns = 0
        self._clock: Clock | None = None
        self._irq: IrqLine | None = None
        self._timer: Timer | None = None

    def _fill_cmos(self, ram_bytes: int, floppy_drives: int) -> None:
        cmos = self.cmos
        cmos[REG_A] = 0x26  # 32.768 kHz divider, 1024 Hz periodic rate
        cmos[REG_B] = B_24H  # BCD, 24-hour
        equipment = 0x02 | 0x04  # maths coprocessor, PS/2 mouse; display bits 00 = VGA
        if floppy_drives:
            equipment |= 0x01 | ((floppy_drives - 1) << 6)
        cmos[REG_EQUIPMENT] = equipment
        base_kib = min(640, ram_bytes // KIB)
        extended_kib = min(0xFFFF, max(0, ram_bytes - MIB) // KIB)
        above_16m = min(0xFFFF, max(0, ram_bytes - 16 * MIB) // (64 * KIB))
        for register, value in (
            (REG_BASE_KIB, base_kib),
            (REG_EXTENDED_KIB, extended_kib),
            (REG_EXTENDED_KIB_COPY, extended_kib),
            (REG_ABOVE_16M, above_16m),
        ):
            cmos[register] = value & 0xFF
            cmos[register + 1] = value >> 8
        checksum = sum(cmos[CHECKSUM_FIRST : CHECKSUM_LAST + 1])
        cmos[REG_CHECKSUM] = (checksum >> 8) & 0xFF
        cmos[REG_CHECKSUM + 1] = checksum & 0xFF

    def attach(self, board: Board) -> None:
        self._clock = board.clock
        self._irq = board.irq(IRQ)
        now = board.clock.now_ns()
        self._base_ns = now - self._start_fraction_ns
        self._divider_start_ns = self._base_ns
        self._checked_ns = now
        board.ports.claim(INDEX_PORT, 2, self.name, self._read, self._write)
        self.reset()

    def reset(self) -> None:
        self.cmos[REG_B] &= ~(B_PIE | B_AIE | B_UIE | B_SQWE)
        self._flags = 0
        if self._clock is not None:
            self._checked_ns = self._clock.now_ns()
            self._settle()

    # -- time keeping -------------------------------------------------------------------------

    def _now(self) -> int:
        if self._clock is None:
            raise RuntimeError("rtc: used before attach()")
        return self._clock.now_ns()

    def _divider_running(self) -> bool:
        return (self.cmos[REG_A] >> 4) & 7 not in A_DIVIDER_RESET

    def _updating(self) -> bool:
        """Whether update cycles run (divider out of reset and SET clear)."""
        return self._frozen is None

    def _seconds_at(self, now: int) -> int:
        return self._base_seconds + (now - self._base_ns) // NS_PER_S

    def _fields(self, now: int) -> list[int]:
        if self._frozen is not None:
            return list(self._frozen)
        seconds = self._seconds_at(now)
        days, second_of_day = divmod(seconds, SECONDS_PER_DAY)
        year, month, day = civil_from_days(days)
        weekday = (days + self._weekday_offset) % 7 + 1
        hour, rest = divmod(second_of_day, 3600)
        return [rest % 60, rest // 60, hour, weekday, day, month, year]

    def _start_from(self, fields: list[int], now: int, first_update_ns: int) -> None:
        """Run the clock from broken-down `fields`, the first update `first_update_ns` ahead."""
        days = days_from_civil(fields[YEAR], fields[MONTH], fields[DAY])
        self._base_seconds = (
            days * SECONDS_PER_DAY + fields[HOUR] * 3600 + fields[MINUTE] * 60 + fields[SECOND]
        )
        self._weekday_offset = (fields[WEEKDAY] - 1 - days) % 7
        self._base_ns = now + first_update_ns - NS_PER_S
        self._frozen = None

    def _set_running(self, now: int) -> None:
        """Freeze or restart the clock after SET or the divider changed."""
        should_run = self._divider_running() and not self.cmos[REG_B] & B_SET
        if should_run and self._frozen is not None:
            first = NS_PER_S
            if not self._divider_was_running:
                first = DIVIDER_RESTART_NS
                self._divider_start_ns = now
            self._start_from(self._frozen, now, first)
        elif not should_run and self._frozen is None:
            self._frozen = self._fields(now)
        self._divider_was_running = self._divider_running()

    # -- register encoding --------------------------------------------------------------------

    def _encode(self, value: int) -> int:
        if self.cmos[REG_B] & B_DM:
            return value & 0xFF
        return ((value // 10 % 10) << 4) | (value % 10)

    def _decode(self, raw: int) -> int:
        if self.cmos[REG_B] & B_DM:
            return raw
        return (raw >> 4) * 10 + (raw & 0x0F)

    def _encode_hour(self, hour: int) -> int:
        if self.cmos[REG_B] & B_24H:
            return self._encode(hour)
        return self._encode(hour % 12 or 12) | (0x80 if hour >= 12 else 0)

    def _decode_hour(self, raw: int) -> int:
        if self.cmos[REG_B] & B_24H:
            return self._decode(raw)
        return self._decode(raw & 0x7F) % 12 + (12 if raw & 0x80 else 0)

    def _read_time_register(self, register: int, now: int) -> int:
        fields = self._fields(now)
        if register == REG_HOURS:
            return self._encode_hour(fields[HOUR])
        if register == REG_YEAR:
            return self._encode(fields[YEAR] % 100)
        if register == REG_CENTURY:
            return self._encode(fields[YEAR] // 100 % 100)
        return self._encode(fields[_TIME_REGISTERS[register]])

    def _write_time_register(self, register: int, raw: int, now: int) -> None:
        fields = self._fields(now)
        if register == REG_HOURS:
            fields[HOUR] = self._decode_hour(raw)
        elif register == REG_YEAR:
            fields[YEAR] = fields[YEAR] // 100 * 100 + self._decode(raw)
        elif register == REG_CENTURY:
            fields[YEAR] = self._decode(raw) * 100 + fields[YEAR] % 100
        else:
            fields[_TIME_REGISTERS[register]] = self._decode(raw)
        if self._frozen is not None:
            self._frozen = fields
        else:
            phase = (now - self._base_ns) % NS_PER_S
            self._start_from(fields, now, NS_PER_S - phase)

    # -- alarm and interrupt flags ------------------------------------------------------------

    def _alarm_candidates(
        self, register: int, decode: Callable[[int], int], limit: int
    ) -> list[int]:
        raw = self.cmos[register]
        if raw & 0xC0 == 0xC0:  # "don't care": matches every value
            return list(range(limit))
        value = decode(raw)
        return [value] if 0 <= value < limit else []

    def _next_alarm_after(self, seconds: int) -> int | None:
        """The first Unix second after `seconds` whose time of day matches the alarm."""
        hours = self._alarm_candidates(REG_ALARM_HOURS, self._decode_hour, 24)
        minutes = self._alarm_candidates(REG_ALARM_MINUTES, self._decode, 60)
        secs = self._alarm_candidates(REG_ALARM_SECONDS, self._decode, 60)
        day_start = seconds - seconds % SECONDS_PER_DAY
        of_day = seconds - day_start
        for day in (0, 1):
            for hour in hours:
                for minute in minutes:
                    start = day * SECONDS_PER_DAY + hour * 3600 + minute * 60
                    if start + 59 <= of_day:
                        continue
                    for second in secs:
                        if start + second > of_day:
                            return day_start + start + second
        return None

    def _period_ns(self, rate: int) -> tuple[int, int] | None:
        """(numerator, denominator) of the periodic period in ns, or None when off."""
        shift = _periodic_shift(rate)
        if shift is None:
            return None
        return (1 << shift) * NS_PER_S, OSCILLATOR_HZ

    def _periods_at(self, now: int, period: tuple[int, int]) -> int:
        return (now - self._divider_start_ns) * period[1] // period[0]

    def _refresh_flags(self, now: int) -> None:
        """Set PF/UF/AF for whatever happened between the last look and `now`."""
        before = self._checked_ns
        if now <= before:
            return
        period = self._period_ns(self.cmos[REG_A] & 0x0F)
        if period is not None and self._divider_running():
            if self._periods_at(now, period) > self._periods_at(before, period):
                self._flags |= C_PF
        if self._updating():
            first = self._seconds_at(before)
            last = self._seconds_at(now)
            if last > first:
                self._flags |= C_UF
                alarm = self._next_alarm_after(first)
                if alarm is not None and alarm <= last:
                    self._flags |= C_AF
        self._checked_ns = now

    def _irqf(self) -> bool:
        return bool(self._flags & self.cmos[REG_B] & (C_PF | C_AF | C_UF))

    def _settle(self) -> None:
        """Bring flags up to now, drive IRQ8 from IRQF and arm the next timer if needed."""
        now = self._now()
        self._refresh_flags(now)
        irqf = self._irqf()
        if self._irq is not None:
            self._irq.set(irqf)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = None if irqf else self._next_event(now)
        if deadline is not None and self._clock is not None:
            self._timer = self._clock.call_at(deadline, self._settle)

    def _next_event(self, now: int) -> int | None:
        control = self.cmos[REG_B]
        deadlines = []
        period = self._period_ns(self.cmos[REG_A] & 0x0F)
        if control & B_PIE and period is not None and self._divider_running():
            next_index = self._periods_at(now, period) + 1
            deadlines.append(self._divider_start_ns - (-next_index * period[0] // period[1]))
        if self._updating():
            if control & B_UIE:
                next_second = (now - self._base_ns) // NS_PER_S + 1
                deadlines.append(self._base_ns + next_second * NS_PER_S)
            elif control & B_AIE:
                alarm = self._next_alarm_after(self._seconds_at(now))
                if alarm is not None:
                    deadlines.append(self._base_ns + (alarm - self._base_seconds) * NS_PER_S)
        return min(deadlines, default=None)

    # -- ports --------------------------------------------------------------------------------

    def _read(self, port: int, size: int) -> int:
        if port == INDEX_PORT:
            return 0xFF  # the index register is write-only
        return self.read_register(self.index)

    def _write(self, port: int, size: int, value: int) -> None:
        value &= 0xFF
        if port == INDEX_PORT:
            self.index = value & 0x7F
            self.nmi_disabled = bool(value & 0x80)
        else:
            self.write_register(self.index, value)

    def read_register(self, register: int) -> int:
        now = self._now()
        if register in _TIME_REGISTERS:
            return self._read_time_register(register, now)
        if register == REG_A:
            uip = self._updating() and (now - self._base_ns) % NS_PER_S >= NS_PER_S - UIP_WINDOW_NS
            return (self.cmos[REG_A] & 0x7F) | (A_UIP if uip else 0)
        if register == REG_C:
            self._refresh_flags(now)
            value = self._flags | (C_IRQF if self._irqf() else 0)
            self._flags = 0
            self._settle()
            return value
        if register == REG_D:
            return D_VRT
        return self.cmos[register & 0x7F]

    def write_register(self, register: int, value: int) -> None:
        now = self._now()
        self._refresh_flags(now)
        if register in _TIME_REGISTERS:
            self._write_time_register(register, value, now)
        elif register == REG_A:
            self.cmos[REG_A] = value & 0x7F
            self._set_running(now)
        elif register == REG_B:
            if value & B_SET:
                value &= ~B_UIE
            self.cmos[REG_B] = value
            self._set_running(now)
        elif register in (REG_C, REG_D):
            return  # read-only
        else:
            self.cmos[register & 0x7F] = value
        self._settle()

    # -- snapshots ----------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        if self._clock is not None:
            self._refresh_flags(self._now())  # lazy catch-up, so equal machines snapshot equal
        return {
            "version": self.STATE_VERSION,
            "cmos": bytes(self.cmos),
            "index": self.index,
            "nmi_disabled": self.nmi_disabled,
            "base_seconds": self._base_seconds,
            "base_ns": self._base_ns,
            "divider_start_ns": self._divider_start_ns,
            "divider_was_running": self._divider_was_running,
            "frozen": None if self._frozen is None else list(self._frozen),
            "weekday_offset": self._weekday_offset,
            "flags": self._flags,
            "checked_ns": self._checked_ns,
        }

    def restore(self, state: dict[str, Any]) -> None:
        check_state_version(self, state)
        try:
            cmos = bytes(state["cmos"])
            if len(cmos) != CMOS_SIZE:
                raise ValueError(f"{self.name}: CMOS snapshot of {len(cmos)} bytes")
            self.cmos = bytearray(cmos)
            self.index = int(state["index"]) & 0x7F
            self.nmi_disabled = bool(state["nmi_disabled"])
            self._base_seconds = int(state["base_seconds"])
            self._base_ns = int(state["base_ns"])
            self._divider_start_ns = int(state["divider_start_ns"])
            self._divider_was_running = bool(state["divider_was_running"])
            frozen = state["frozen"]
            self._frozen = None if frozen is None else [int(v) for v in frozen]
            self._weekday_offset = int(state["weekday_offset"])
            self._flags = int(state["flags"])
            self._checked_ns = int(state["checked_ns"])
        except (KeyError, TypeError) as error:
            raise ValueError(f"{self.name}: malformed snapshot ({error})") from error
        if self._frozen is not None and len(self._frozen) != 7:
            raise ValueError(f"{self.name}: frozen time needs 7 fields")
        if self._clock is not None:
            self._settle()
