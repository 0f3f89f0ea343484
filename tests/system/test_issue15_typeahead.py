"""Issue 15 item 10: type-ahead beyond the tty's 256 keys is neither lost nor unbounded. While
a program runs, 800 keys are typed as a front end types them (each once the 8042 took the
last); the tty holds at most TYPEAHEAD_LIMIT of them, the rest wait in the keyboard
controller (back-pressure), and every line still runs once the shell reads again."""

from __future__ import annotations

from pathlib import Path

from tests.system.harness import SECOND, BootedPc
from tradekernel.kernel.drivers.tty import TYPEAHEAD_LIMIT
from tradekernel.ui.keymap import text_to_key_events


def test_typeahead_is_held_in_the_controller_and_the_tty_stays_bounded(tmp_path: Path) -> None:
    tk = BootedPc(tmp_path).boot()
    tty, i8042 = tk.pc.kernel.tty, tk.pc.keyboard
    lines = [f"echo line {n}" for n in range(1, 61)]
    events = [text_to_key_events(char) for char in "nap 300\n" + "".join(f"{x}\n" for x in lines)]
    held = []  # keys the tty held at each idle point

    def feed() -> bool:
        held.append(len(tty._typeahead))  # noqa: SLF001 - the bound under test
        if not events or i8042.keyboard.fifo or i8042.output is not None:
            return False
        for keycode, pressed in events.pop(0):
            i8042.press(keycode, pressed)
        return True

    tk.machine.feed_when_idle(feed)
    tk.run_until(lambda: b"\r\nline 60\r\n" in tk.serial, 20 * SECOND)
    serial = bytes(tk.serial).decode("cp437")
    assert [n for n in range(1, 61) if f"\r\nline {n}\r\n" not in serial] == []
    assert max(held) == TYPEAHEAD_LIMIT  # reached, never passed: the rest waited in the 8042
