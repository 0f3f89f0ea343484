"""System Control Port A (0x92): the "fast A20" gate and fast reset of PS/2-era chipsets.

Bit 1 drives the A20 gate through the board (`signals.set_a20`) and reads back the board's real
A20 state (the 8042 can change it too). Bit 0 pulses the CPU reset line on a 0 -> 1 write, as the
chipset does; it reads back as written. The other bits are plain storage (bit 3 would be the
CMOS password lock, meaningless here).
"""

from __future__ import annotations

from typing import Any

from tradekernel.devices.base import Board, Device, SystemSignals, check_state_version

PORT = 0x92
FAST_RESET = 0x01
FAST_A20 = 0x02


class Port92(Device):
    name = "port92"
    STATE_VERSION = 1

    def __init__(self) -> None:
        self.value = 0  # last byte written, minus the A20 bit the board owns
        self._signals: SystemSignals | None = None

    def attach(self, board: Board) -> None:
        self._signals = board.signals
        board.ports.claim(PORT, 1, self.name, self._read, self._write)

    def reset(self) -> None:
        self.value = 0

    def _read(self, port: int, size: int) -> int:
        a20 = self._signals is not None and self._signals.a20_enabled()
        return (self.value & ~FAST_A20) | (FAST_A20 if a20 else 0)

    def _write(self, port: int, size: int, value: int) -> None:
        value &= 0xFF
        previous = self.value
        self.value = value & ~FAST_A20
        if self._signals is None:
            return
        self._signals.set_a20(bool(value & FAST_A20))
        if value & FAST_RESET and not previous & FAST_RESET:
            self._signals.reset()

    def state(self) -> dict[str, Any]:
        return {"version": self.STATE_VERSION, "value": self.value}

    def restore(self, state: dict[str, Any]) -> None:
        check_state_version(self, state)
        if not isinstance(state.get("value"), int):
            raise ValueError(f"{self.name}: snapshot lacks an integer 'value'")
        self.value = state["value"] & 0xFF & ~FAST_A20
