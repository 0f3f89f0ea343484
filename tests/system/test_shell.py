"""Scenarios through the whole path: scancode -> IRQ1 -> kernel -> VGA memory -> screen text."""

from __future__ import annotations

import pytest

from tests.system.harness import PROMPT, BootedPc


def contains_run(lines: list[str], run: list[str]) -> bool:
    """`run` appears in `lines` as consecutive lines."""
    return any(lines[i : i + len(run)] == run for i in range(len(lines) - len(run) + 1))


@pytest.fixture
def tk(tmp_path):  # noqa: ANN001, ANN201
    return BootedPc(tmp_path).boot()


def test_banner_and_prompt(tk: BootedPc) -> None:
    lines = tk.lines()
    assert lines[0].startswith("TradeKernel 0.1.0")
    assert "32 MiB RAM" in lines[0] and "deterministic clock" in lines[0]
    assert lines[1].startswith("disk: FAT16 on partition 1")
    assert lines[2] == "net: no network card"  # the harness's PC has none (--net none)
    assert lines[3] == PROMPT.rstrip()


def test_echo(tk: BootedPc) -> None:
    tk.command('echo hello "big   world"')
    assert contains_run(tk.lines(), ['tk:/> echo hello "big   world"', "hello big   world"])


def test_backspace_and_cursor_editing(tk: BootedPc) -> None:
    tk.type("echo abx\bc")  # Backspace removes the x
    tk.tap("left")
    tk.tap("left")  # the cursor is now before "bc"
    tk.type("Z")
    tk.tap("end")
    tk.command("!")
    assert contains_run(tk.lines(), ["tk:/> echo aZbc!", "aZbc!", "tk:/>"])


def test_history_recall(tk: BootedPc) -> None:
    tk.command("echo first")
    tk.command("echo second")
    tk.tap("up")
    tk.tap("up")
    tk.tap("down")
    tk.tap("up")
    tk.command("")
    assert tk.lines().count("first") == 2
    assert contains_run(tk.lines(), ["tk:/> echo second", "second", "tk:/> echo first", "first"])
    tk.command("history")
    assert any(line.endswith("echo second") for line in tk.lines())


def test_shift_and_caps_lock(tk: BootedPc) -> None:
    leds: list[int] = []
    tk.machine.channels.listen("keyboard-leds", leds.append)
    tk.tap("h", "lshift")
    tk.type("i ")
    tk.tap("capslock")
    tk.type("caps")
    tk.tap("x", "lshift")  # Shift under Caps Lock gives lower case
    tk.tap("capslock")
    tk.command("")
    assert "tk:/> Hi CAPSx" in tk.lines()
    assert "sh: Hi: unknown command (type 'help' for the list)" in tk.lines()
    # The driver set the Caps Lock LED through the keyboard's 0xED command, then cleared it.
    assert leds == [0x04, 0x00]


def test_forty_lines_scroll(tk: BootedPc) -> None:
    for number in range(40):
        tk.command(f"echo line{number:02}")
    lines = tk.lines()
    assert lines[-1] == PROMPT.rstrip()
    assert lines[-2] == "line39" and lines[-3] == "tk:/> echo line39"
    assert lines[0] == "line28" or lines[0] == "tk:/> echo line28"
    echoed = [line for line in lines if line.startswith("line")]
    assert echoed == [f"line{n:02}" for n in range(40 - len(echoed), 40)]


def test_colours_land_in_attribute_bytes(tk: BootedPc) -> None:
    tk.command("nosuchcommand")
    row = tk.lines().index("sh: nosuchcommand: unknown command (type 'help' for the list)")
    assert tk.attribute_at(row, 0) == 0x0C  # errors in light red
    assert tk.attribute_at(0, 0) == 0x0F  # the banner's product name in white
    assert tk.attribute_at(row + 1, 0) == 0x07  # the prompt after it in the default grey


def test_help_lists_every_command(tk: BootedPc) -> None:
    tk.command("help")
    text = tk.serial.decode("cp437").replace("\r", "")  # longer than a screen
    for name in ("clear", "date", "echo", "help", "history", "reboot", "shutdown", "uptime",
                 "version"):  # fmt: skip
        assert f"\n{name} " in text


def test_bad_arguments_are_reported(tk: BootedPc) -> None:
    tk.command("uptime now")
    assert "uptime: unexpected argument 'now'" in tk.text()
    assert "usage: uptime" in tk.text()
    tk.command('echo "unterminated')
    assert "sh: No closing quotation" in tk.text()


def test_ctrl_c_cancels_the_line_and_ctrl_l_clears(tk: BootedPc) -> None:
    tk.type("echo never")
    tk.tap("c", "lctrl")
    tk.settle()
    assert "tk:/> echo never^C" in tk.lines()
    assert "never" not in [line.strip() for line in tk.lines()]
    tk.tap("l", "lctrl")
    tk.settle()
    assert tk.lines()[0] == PROMPT.rstrip() and not any(tk.lines()[1:])


def test_date_and_uptime(tk: BootedPc) -> None:
    tk.command("date")
    assert "Fri 2026-01-02 09:30:0" in tk.text()  # the deterministic epoch
    tk.command("uptime")
    assert "up 0:00:0" in tk.text()


def test_reboot_returns_to_the_prompt(tk: BootedPc) -> None:
    tk.command("echo before")
    tk.type("reboot\n")
    tk.run_until(lambda: "before" not in tk.text() and PROMPT.rstrip() in tk.text(), 10**10)
    assert tk.lines()[0].startswith("TradeKernel")
    tk.command("echo after")
    assert "after" in tk.lines()


def test_shutdown_powers_off(tk: BootedPc) -> None:
    tk.type("shutdown\n")
    stop = tk.run_to_stop()
    assert stop.reason == "poweroff"
    assert "powering off." in tk.text()
