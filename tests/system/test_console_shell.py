"""Console and shell scenarios on the booted machine: programs by path, builtins in pipelines,
the pager, type-ahead, characters outside ASCII, the input line under asynchronous output."""

from __future__ import annotations

import pytest

from tests.system.harness import SECOND, BootedPc
from tradekernel.kernel.drivers.tty import SCROLL_STEP
from tradekernel.kernel.proc.signals import SIGKILL
from tradekernel.ui.keymap import text_to_key_events

MS = 1_000_000


@pytest.fixture
def tk(tmp_path):  # noqa: ANN001, ANN201
    return BootedPc(tmp_path).boot()


def test_a_path_runs_the_program(tk: BootedPc) -> None:
    assert tk.output("/bin/hello") == ["hello, world"]
    assert tk.output("./bin/hello a") == ["hello, world"]
    tk.output("cd /bin")
    assert tk.output("./hello") == ["hello, world"]
    assert tk.output("../bin/hello") == ["hello, world"]
    assert tk.output("./nothere") == ["sh: ./nothere: no such file or directory"]


def feed_with_back_pressure(tk: BootedPc, text: str) -> None:
    """Type `text` as a host front end must: each key only once the keyboard's FIFO and the
    8042's output buffer are empty, i.e. the kernel has read the previous key."""
    i8042 = tk.pc.keyboard
    events = [text_to_key_events(char) for char in text]

    def feed() -> bool:
        if not events or i8042.keyboard.fifo or i8042.output is not None:
            return False
        for keycode, pressed in events.pop(0):
            i8042.press(keycode, pressed)
        return True

    tk.machine.feed_when_idle(feed)


def test_typeahead_past_the_limit_is_held_in_the_controller_not_lost(tk: BootedPc) -> None:
    lines = [f"echo line {n}" for n in range(1, 61)]  # about 800 keys typed ahead
    feed_with_back_pressure(tk, "nap 300\n" + "".join(line + "\n" for line in lines))
    tk.run_until(lambda: b"\r\nline 60\r\n" in tk.serial, 20 * SECOND)
    serial = bytes(tk.serial).decode("cp437")
    assert [n for n in range(1, 61) if f"\r\nline {n}\r\n" not in serial] == []


def alt_code(char: str) -> list[tuple[str, bool]]:
    """The key events a front end sends for a character no key types: Alt held while the
    code point's decimal digits are typed on the numeric keypad."""
    digits = [event for d in str(ord(char)) for event in ((f"kp{d}", True), (f"kp{d}", False))]
    return [("lalt", True), *digits, ("lalt", False)]


def type_with_alt_codes(tk: BootedPc, text: str) -> None:
    for char in text:
        if char.isascii():
            tk.type(char)
        else:
            for event in alt_code(char):  # one at a time: 5 digits overflow the FIFO at once
                tk.press(event)


def test_characters_in_cp437_are_typed_and_shown(tk: BootedPc) -> None:
    before = tk.prompts_seen()
    type_with_alt_codes(tk, "echo héllo ½ ░\n")
    tk.run_until(lambda: tk.prompts_seen() > before)
    assert "héllo ½ ░" in tk.lines()
    assert "tk:/> echo héllo ½ ░" in tk.lines()


def test_a_character_the_console_cannot_show_refuses_the_line(tk: BootedPc) -> None:
    tk.command("mkdir /home")
    tk.command("mkdir /home/keep")
    before = tk.prompts_seen()
    type_with_alt_codes(tk, "rm -r /home/日本\n")
    tk.run_until(lambda: tk.prompts_seen() > before)
    assert [line for line in tk.lines() if line][-3:] == [
        "tk:/> rm -r /home/??",
        "tty: line not run: U+65E5 cannot be typed (the console's characters are CP437)",
        "tk:/>",
    ]
    assert tk.output("ls /home") == ["keep/"]


def test_a_background_job_s_output_does_not_overwrite_the_line_being_typed(tk: BootedPc) -> None:
    tk.command("nap 200 1 &")
    tk.type("echo typed meanwhile")
    tk.run_until(lambda: "nap: " in tk.text(), 2 * SECOND)
    tk.settle()
    lines = [line for line in tk.lines() if line]
    assert lines[-1] == "tk:/> echo typed meanwhile"
    assert lines[-2].startswith("nap: ")
    tk.command("")
    assert "typed meanwhile" in tk.lines()


def test_no_line_of_help_or_pgstats_wraps(tk: BootedPc) -> None:
    help_lines = tk.output("help")
    assert len(help_lines) >= 53
    assert [line for line in help_lines if len(line) > 79] == []
    run = help_lines.index(next(line for line in help_lines if line.startswith("run ")))
    assert "ring 3" in help_lines[run]
    pgstats = tk.output("pgstats")
    assert [line for line in pgstats if len(line) > 79] == []
    assert any(line.startswith("page faults: cow ") for line in pgstats)


def test_builtins_pipe_into_programs(tk: BootedPc) -> None:
    help_lines = tk.output("help")
    text = "".join(line + "\n" for line in help_lines)
    counts = [len(help_lines), len(text.split()), len(text.encode())]
    assert tk.output("help | wc") == [" ".join(map(str, counts))]
    assert tk.output("help | head -n 2") == help_lines[:2]
    assert tk.output("echo a b | cat") == ["a b"]
    assert tk.output("ps | wc")[0].split()[0] == "2"  # the header and [kernel]
    tk.command("help | cat > /helpcopy")
    assert tk.output("cat /helpcopy") == help_lines
    assert tk.output("echo x | help") == [
        "sh: help: a built-in takes no input (no < and not after a |)"
    ]


def test_help_through_more_pages_and_puts_the_screen_back(tk: BootedPc) -> None:
    tk.command("echo before")
    before = [line for line in tk.lines() if line]
    tk.type("help | more\n")
    tk.settle()
    lines = tk.lines()
    assert lines[-1].startswith("--More-- lines 1-24 of ")
    first_page = lines[:24]
    tk.type(" ")
    tk.settle()
    assert tk.lines()[-1].startswith("--More-- lines 25-48 of ")
    assert tk.lines()[:24] != first_page
    tk.type("b")
    tk.settle()
    assert tk.lines()[:24] == first_page
    tk.type("q")
    tk.settle()
    after = [line for line in tk.lines() if line]
    assert after == [*before[:-1], "tk:/> help | more", "tk:/>"]


def test_shift_page_up_shows_the_top_of_help(tk: BootedPc) -> None:
    help_lines = tk.output("help")
    assert help_lines[0] not in tk.lines()  # scrolled off the 25 rows
    presses = -(-(len(help_lines) + 1) // SCROLL_STEP)  # enough steps to reach the first line
    for _ in range(presses):
        tk.tap("pageup", "lshift")
    tk.settle()
    assert help_lines[0] in tk.lines()
    for _ in range(presses):
        tk.tap("pagedown", "rshift")
    tk.settle()
    assert help_lines[0] not in tk.lines()
    assert [line for line in tk.lines() if line][-1] == "tk:/>"
    tk.type("x")
    tk.settle()
    assert [line for line in tk.lines() if line][-1] == "tk:/> x"


def test_the_prompt_does_not_wait_for_a_foreground_job_s_orphans(tk: BootedPc) -> None:
    tk.type("nap 300 5\n")  # naps 1.5 s in all
    tk.run_until(lambda: len(tk.pc.kernel.processes.table) == 1, SECOND)
    manager = tk.pc.kernel.processes
    (parent,) = manager.table.values()
    tk.run_until(lambda: "nap: " in tk.text(), SECOND)  # asleep in its second nap
    child = manager.table[manager.fork(parent)]  # what its fork(2) would do
    before = tk.prompts_seen()
    manager.signals.send_to(None, [parent], SIGKILL)
    tk.run_until(lambda: tk.prompts_seen() > before, 200 * MS)  # not after the child's naps
    assert child.pid in manager.table and not child.foreground  # the orphan goes on, detached
    assert tk.output("echo at the prompt")[-1] == "at the prompt"  # the orphan may print too
    manager.signals.send_to(None, [child], SIGKILL)


def test_more_shows_a_file(tk: BootedPc) -> None:
    tk.command("echo short > /short.txt")
    assert tk.output("more /short.txt") == ["short"]  # under a screen: simply written
    tk.command("help > /help.txt")
    tk.type("more /help.txt\n")
    tk.settle()
    assert tk.lines()[-1].startswith("--More-- lines 1-24 of ")
    tk.type("q")
    tk.settle()
    assert tk.output("more /nothere") == ["more: /nothere: no such file or directory"]
