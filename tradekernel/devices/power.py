"""ACPI PM1a control register at port 0x604 (16-bit), as QEMU's q35 exposes it: soft-off.

Writing SLP_EN (bit 13) with SLP_TYP (bits 12-10) = 0, the S5 type QEMU's tables declare (the
classic `outw(0x604, 0x2000)`), calls `board.signals.power_off()`. Other sleep types are not
modelled: they are stored but do nothing, as there is no suspend. SLP_EN is write-only and reads
as 0; the other bits (SCI_EN, ...) read back as written. Byte writes to 0x604/0x605 update their
half, so a split write works too.
"""

from __future__ import annotations

from typing import Any

from tradekernel.devices.base import Board, Device, SystemSignals, check_state_version

PORT = 0x604
SLP_EN = 0x2000
SLP_TYP_SHIFT = 10
SLP_TYP_MASK = 0x7
SLP_TYP_S5 = 0


class PowerControl(Device):
    name = "power"
    STATE_VERSION = 1

    def __init__(self) -> None:
        self.control = 0
        self._signals: SystemSignals | None = None

    def attach(self, board: Board) -> None:
        self._signals = board.signals
        board.ports.claim(PORT, 2, self.name, self._read, self._write)

    def reset(self) -> None:
        self.control = 0

    def _read(self, port: int, size: int) -> int:
        return self.control >> (8 * (port - PORT))

    def _write(self, port: int, size: int, value: int) -> None:
        shift = 8 * (port - PORT)
        width_mask = ((1 << (8 * size)) - 1) << shift
        written = ((self.control & ~width_mask) | (value << shift)) & 0xFFFF
        self.control = written & ~SLP_EN
        sleep_type = (written >> SLP_TYP_SHIFT) & SLP_TYP_MASK
        if written & SLP_EN and sleep_type == SLP_TYP_S5 and self._signals is not None:
            self._signals.power_off()

    def state(self) -> dict[str, Any]:
        return {"version": self.STATE_VERSION, "control": self.control}

    def restore(self, state: dict[str, Any]) -> None:
        check_state_version(self, state)
        if not isinstance(state.get("control"), int):
            raise ValueError(f"{self.name}: snapshot lacks an integer 'control'")
        self.control = state["control"] & 0xFFFF & ~SLP_EN
