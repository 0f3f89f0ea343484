"""The Bochs/QEMU debug console at port 0xE9: the cheapest way out of a guest for a log line.

Each byte written is sent at once on channel "debugcon" as `bytes` of length one (wider writes
use their low byte, as QEMU's byte-wide port does). Reading returns 0xE9, which is how software
detects that the port is there.
"""

from __future__ import annotations

from typing import Any

from tradekernel.devices.base import Board, Device, check_state_version
from tradekernel.emu.bus import Channels

PORT = 0xE9
CHANNEL = "debugcon"
SIGNATURE = 0xE9


class DebugCon(Device):
    name = "debugcon"
    STATE_VERSION = 1

    def __init__(self) -> None:
        self._channels: Channels | None = None

    def attach(self, board: Board) -> None:
        self._channels = board.channels
        board.ports.claim(PORT, 1, self.name, self._read, self._write)

    def reset(self) -> None:
        """Nothing to reset: the port has no state."""

    def _read(self, port: int, size: int) -> int:
        return SIGNATURE

    def _write(self, port: int, size: int, value: int) -> None:
        if self._channels is not None:
            self._channels.send(CHANNEL, bytes([value & 0xFF]))

    def state(self) -> dict[str, Any]:
        return {"version": self.STATE_VERSION}

    def restore(self, state: dict[str, Any]) -> None:
        check_state_version(self, state)
