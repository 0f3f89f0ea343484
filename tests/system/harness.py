"""Boot-to-shell harness: a deterministic TradeKernel PC, typed at through the PS/2 model and
read back from VGA memory, with every wait bounded in virtual time.

After every run the harness looks at the screen, the serial console and the machine log for
signs of a broken kernel (FAILURE_MARKS: a command that raised, an oops, a Python traceback, a
machine crash report) and fails the scenario, even when the expected text was printed too.
A test that means to provoke one says so with `BootedPc(..., expect=("internal error",))`."""

from __future__ import annotations

import re
from collections import deque
from dataclasses import replace
from pathlib import Path

from tradekernel import hostnet
from tradekernel.disktool import create_os_disk
from tradekernel.emu.machine import StopInfo
from tradekernel.emu.pc import PcConfig
from tradekernel.kernel.drivers.tty import ERASE_BELOW
from tradekernel.ui.ansi import screen_text
from tradekernel.ui.keymap import KeyEvent, text_to_key_events
from tradekernel.ui.session import make_pc

PROMPT = "tk:/> "
ANY_PROMPT = re.compile(rb"tk:[^\r\n>]*> ")  # the prompt in whatever directory
SECOND = 1_000_000_000
# A guard against a hung machine, not a deadline: waits are bounded in virtual time, and on a
# loaded 2-core host a long scenario's slice of virtual time can take minutes of wall time.
WALL_LIMIT_S = 300
# What a healthy run never shows: the shell's and the editor's report of a command that raised,
# a kernel oops, a Python traceback, the machine's crash report.
FAILURE_MARKS = {
    "internal error": re.compile(r"internal error", re.IGNORECASE),
    "oops": re.compile(r"\boops\b", re.IGNORECASE),  # not "loops"
    "Traceback": re.compile(r"Traceback"),
    "MACHINE STOPPED": re.compile(r"MACHINE STOPPED"),
}


class WaitTimeout(AssertionError):
    pass


class KernelFailure(AssertionError):
    """The screen, the serial console or the log showed a failure the test did not expect."""


class BootedPc:
    def __init__(
        self,
        tmp_path: Path,
        ram_mib: int = 32,
        disk: Path | None = None,
        expect: tuple[str, ...] = (),
        net: hostnet.NetOptions | None = None,
        mac: bytes | None = None,
        deterministic: bool = True,
    ) -> None:
        if disk is None:
            disk = tmp_path / "disk.img"
            create_os_disk(disk)
        self.disk = disk
        config = PcConfig(disk=disk, ram_mib=ram_mib, deterministic=deterministic)
        if net is not None:  # what the NE2000's cable plugs into, as tk boot's --net does
            config = replace(config, net=net.spec, hostfwd=tuple(net.hostfwd), pcap=net.pcap)
        if mac is not None:
            config = replace(config, mac=mac)
        self.pc = make_pc(config)
        self.link = self.pc.net
        self.machine = self.pc.machine
        self._keys: deque[list[KeyEvent]] = deque()
        self.machine.feed_when_idle(self._feed)
        self.serial = bytearray()
        self.machine.channels.listen("com1-tx", self.serial.extend)
        self.log: list[str] = []
        self.machine.channels.listen("log", self.log.append)
        self.stop: StopInfo | None = None
        self._last_feed_idle = 0
        unknown = set(expect) - set(FAILURE_MARKS)
        assert not unknown, f"expect takes FAILURE_MARKS names, not {unknown}"
        self.expected_failures = expect  # FAILURE_MARKS this test provokes on purpose
        self._marks_seen: list[tuple[str, str, str]] = []  # (mark, where, line): serial, log
        self._serial_scanned = 0
        self._log_scanned = 0
        self._prompts = FreshPrompts(re.compile(re.escape(PROMPT.encode())))
        self._any_prompts = FreshPrompts(ANY_PROMPT)

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

    # ---- health ---------------------------------------------------------------------------
    def failures_seen(self) -> list[tuple[str, str]]:
        """(where, line) for every line of the screen, serial console or log that carries a
        FAILURE_MARK this test does not declare in `expected_failures`. The serial console and
        the log are scanned once each (from the start of the last line seen), the screen
        every time."""

        def scan(where: str, lines: list[str]) -> list[tuple[str, str, str]]:
            return [
                (name, where, line)
                for line in lines
                for name, rx in FAILURE_MARKS.items()
                if rx.search(line)
            ]

        start = self.serial.rfind(b"\n", 0, self._serial_scanned) + 1
        for found in scan("serial", bytes(self.serial[start:]).decode("cp437").splitlines()):
            if found not in self._marks_seen:
                self._marks_seen.append(found)
        self._serial_scanned = len(self.serial)
        for entry in self.log[self._log_scanned :]:
            self._marks_seen += scan("log", entry.splitlines())
        self._log_scanned = len(self.log)
        return [
            (where, line)
            for name, where, line in self._marks_seen + scan("screen", self.lines())
            if name not in self.expected_failures
        ]

    def check_health(self) -> None:
        failures = self.failures_seen()
        crashed = self.stop is not None and self.stop.reason == "crash"
        if failures or (crashed and "MACHINE STOPPED" not in self.expected_failures):
            seen = "\n".join(f"  {where}: {line}" for where, line in failures)
            raise KernelFailure(f"the kernel reported a failure:\n{seen}\n{self.text()}")

    # ---- driving --------------------------------------------------------------------------
    def _run_to(self, deadline: int, until) -> StopInfo:  # noqa: ANN001
        """Run until `until()`, with a clock event at `deadline`: an idle tickless guest
        arms no timer, and the deterministic clock only jumps to scheduled events. Then
        check that nothing reported a failure."""
        watch = self.machine.clock.call_at(deadline, lambda: None)
        try:
            self.stop = self.machine.run(wall_timeout_s=WALL_LIMIT_S, until=until)
        finally:
            watch.cancel()
        self.check_health()
        return self.stop

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
        """Prompts printed so far, counted on the serial console (it never scrolls away); not
        those the tty draws again after a background job's output (see FreshPrompts)."""
        return len(self._prompts.scan(self.serial))

    def command(self, line: str, virtual_ns: int = 5 * SECOND) -> None:
        """Type a line, Enter, and wait for the next prompt."""
        before = self.prompts_seen()
        self.type(line + "\n")
        self.run_until(lambda: self.prompts_seen() > before, virtual_ns)

    def output(self, line: str, virtual_ns: int = 5 * SECOND) -> list[str]:
        """Type `line` and Enter, wait for the next prompt (whatever the cwd), and return what
        the command printed, read from the serial mirror of the console (it never scrolls)."""
        before = len(self._any_prompts.scan(self.serial))
        start = len(self.serial)
        self.type(line + "\n")
        self.run_until(lambda: len(self._any_prompts.scan(self.serial)) > before, virtual_ns)
        end = self._any_prompts.scan(self.serial)[before]
        text = bytes(self.serial[start:end]).decode("cp437").replace("\r\n", "\n")
        return (text.split("\n", 1)[1] if "\n" in text else "").splitlines()

    def run_to_stop(self, virtual_ns: int = 5 * SECOND) -> StopInfo:
        deadline = self.machine.clock.now_ns() + virtual_ns
        self.stop = self._run_to(deadline, lambda: self.machine.clock.now_ns() >= deadline)
        return self.stop


class FreshPrompts:
    """Where the shell showed a prompt anew on the serial console, scanned as it grows: not
    the prompts the tty draws again after output from elsewhere, which directly follow its
    erase (ERASE_BELOW)."""

    def __init__(self, prompt: re.Pattern[bytes]) -> None:
        self._prompt = prompt
        self._at = 0
        self.starts: list[int] = []

    def scan(self, serial: bytearray) -> list[int]:
        erase = ERASE_BELOW.encode()
        for match in self._prompt.finditer(serial, self._at):
            if serial[max(0, match.start() - len(erase)) : match.start()] != erase:
                self.starts.append(match.start())
            self._at = match.end()
        return self.starts


def close_pc(booted: BootedPc) -> None:
    """Let go of the host side of the cable (sockets, tap) and the machine."""
    booted.pc.close()
    booted.machine.close()
