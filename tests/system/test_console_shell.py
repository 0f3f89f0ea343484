"""Console and shell scenarios on the booted machine: programs by path, builtins in pipelines,
the pager, type-ahead, characters outside ASCII, the input line under asynchronous output."""

from __future__ import annotations

import pytest

from tests.system.harness import SECOND, BootedPc
from tradekernel.ui.keymap import text_to_key_events


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
