"""Boot-to-shell harness: a deterministic TradeKernel PC, typed at through the PS/2 model and
read back from VGA memory, with every wait bounded in virtual time."""

from __future__ import annotations

from collections import deque
from pathlib import Path

from tradekernel.disktool import create_os_disk
from tradekernel.emu.machine import StopInfo
from tradekernel.emu.pc import PcConfig
from tradekernel.ui.ansi import screen_text
from tradekernel.ui.keymap import KeyEvent, text_to_key_events
from tradekernel.ui.session import make_pc

PROMPT = "tk:/> "
SECOND = 1_000_000_000


class WaitTimeout(AssertionError):
    pass


class BootedPc:
    def __init__(self, tmp_path: Path, ram_mib: int = 32, disk: Path | None = None) -> None:
        if disk is None:
            disk = tmp_path / "disk.img"
            create_os_disk(disk)
        self.disk = disk
        self.pc = make_pc(PcConfig(disk=disk, ram_mib=ram_mib, deterministic=True))
        self.machine = self.pc.machine
        self._keys: deque[list[KeyEvent]] = deque()
        self.machine.feed_when_idle(self._feed)
        self.serial = bytearray()
        self.machine.channels.listen("com1-tx", self.serial.extend)
        self.log: list[str] = []
        self.machine.channels.listen("log", self.log.append)
        self.stop: StopInfo | None = None
        self._last_feed_idle = 0

    def _feed(self) -> bool:
        if not self._keys:
            return False
        for event in self._keys.popleft():
            self.machine.channels.send("keyboard-key", event)
        self._last_feed_idle = self.machine.idle_count
        return True

    # ---- the screen -----------------------------------------------------------------------
    def lines(self) -> list[str]:
        return [line.rstrip() for line in screen_text(self.pc.vga.text_screen())]

    def text(self) -> str:
        return "\n".join(self.lines())

    def attribute_at(self, row: int, col: int) -> int:
        return self.pc.vga.text_screen().cell(row, col)[1]

    # ---- driving --------------------------------------------------------------------------
    def _run_to(self, deadline: int, until) -> StopInfo:  # noqa: ANN001
        """Run until `until()`, with a clock event at `deadline`: an idle tickless guest
        arms no timer, and the deterministic clock only jumps to scheduled events."""
        watch = self.machine.clock.call_at(deadline, lambda: None)
        try:
            return self.machine.run(wall_timeout_s=60, until=until)
        finally:
            watch.cancel()

    def run_until(self, predicate, virtual_ns: int = 5 * SECOND) -> None:  # noqa: ANN001
        deadline = self.machine.clock.now_ns() + virtual_ns

        def done() -> bool:
            return predicate() or self.machine.clock.now_ns() >= deadline

        self.stop = self._run_to(deadline, done)
        if self.stop.reason != "until" or not predicate():
            raise WaitTimeout(
                f"gave up after {virtual_ns} virtual ns (stop: {self.stop.reason})\n{self.text()}"
            )

    def wait_for(self, text: str, virtual_ns: int = 5 * SECOND) -> None:
        self.run_until(lambda: text in self.text(), virtual_ns)

    def boot(self) -> BootedPc:
        self.wait_for(PROMPT.rstrip())
        return self

    def press(self, *events: KeyEvent) -> None:
        self._keys.append(list(events))

    def tap(self, key: str, *modifiers: str) -> None:
        """Press and release `key` with `modifiers` held."""
        self.press(
            *[(m, True) for m in modifiers], (key, True), (key, False),
            *[(m, False) for m in reversed(modifiers)],
        )  # fmt: skip

    def type(self, text: str) -> None:
        for char in text:
            self._keys.append(text_to_key_events(char))

    def settle(self) -> None:
        """Run until every queued key has been typed and the guest has gone idle again."""
        self.run_until(lambda: not self._keys and self.machine.idle_count > self._last_feed_idle)

    def prompts_seen(self) -> int:
        """Prompts printed so far, counted on the serial console (it never scrolls away)."""
        return self.serial.count(PROMPT.encode())

    def command(self, line: str, virtual_ns: int = 5 * SECOND) -> None:
        """Type a line, Enter, and wait for the next prompt."""
        before = self.prompts_seen()
        self.type(line + "\n")
        self.run_until(lambda: self.prompts_seen() > before, virtual_ns)

    def run_to_stop(self, virtual_ns: int = 5 * SECOND) -> StopInfo:
        deadline = self.machine.clock.now_ns() + virtual_ns
        self.stop = self._run_to(deadline, lambda: self.machine.clock.now_ns() >= deadline)
        return self.stop
