"""The POST code port 0x80, where BIOS and boot code write progress bytes for a diagnostic card.

The last code is kept and read back (as on boards with a POST display latch) and each write is
sent on channel "post" as an `int`. Linux also writes here as a short I/O delay, which costs one
channel send with no listener.
"""

from __future__ import annotations

from typing import Any

from tradekernel.devices.base import Board, Device, check_state_version
from tradekernel.emu.bus import Channels

PORT = 0x80
CHANNEL = "post"


class PostCode(Device):
    name = "postcode"
    STATE_VERSION = 1

    def __init__(self) -> None:
        self.last_code = 0
        self._channels: Channels | None = None

    def attach(self, board: Board) -> None:
        self._channels = board.channels
        board.ports.claim(PORT, 1, self.name, self._read, self._write)

    def reset(self) -> None:
        self.last_code = 0

    def _read(self, port: int, size: int) -> int:
        return self.last_code

    def _write(self, port: int, size: int, value: int) -> None:
        self.last_code = value & 0xFF
        if self._channels is not None:
            self._channels.send(CHANNEL, self.last_code)

    def state(self) -> dict[str, Any]:
        return {"version": self.STATE_VERSION, "last_code": self.last_code}

    def restore(self, state: dict[str, Any]) -> None:
        check_state_version(self, state)
        if not isinstance(state.get("last_code"), int):
            raise ValueError(f"{self.name}: snapshot lacks an integer 'last_code'")
        self.last_code = state["last_code"] & 0xFF
