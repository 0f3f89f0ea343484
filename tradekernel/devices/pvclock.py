"""A paravirtual clock: the machine's virtual nanoseconds, readable through two ports.

Why: the kernel timestamps trading events in virtual ns and must do so through a bus, like any
driver. Reading the low dword at PORT latches the whole 64-bit value; the high dword at PORT+4
then belongs to the same instant (the way an HPET driver reads its counter).
"""

from __future__ import annotations

from typing import Any

from tradekernel.devices.base import Board, Device, check_state_version

PORT = 0x5B00


class PvClock(Device):
    name = "pvclock"
    STATE_VERSION = 1

    def __init__(self) -> None:
        self._latched = 0
        self._board: Board | None = None

    def attach(self, board: Board) -> None:
        self._board = board
        board.ports.claim(PORT, 8, self.name, self._read)

    def reset(self) -> None:
        self._latched = 0

    def _read(self, port: int, size: int) -> int:
        assert self._board is not None
        if port == PORT:
            self._latched = self._board.clock.now_ns()
            return self._latched & 0xFFFFFFFF
        if port == PORT + 4:
            return (self._latched >> 32) & 0xFFFFFFFF
        return 0xFFFFFFFF

    def state(self) -> dict[str, Any]:
        return {"version": self.STATE_VERSION, "latched": self._latched}

    def restore(self, state: dict[str, Any]) -> None:
        check_state_version(self, state)
        self._latched = int(state["latched"])
