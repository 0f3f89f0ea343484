"""The pygame window under SDL's dummy driver: typing reaches the shell, closing powers off,
the guest's shutdown closes the window, F12 saves a screenshot, scaling and key filtering."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pygame
import pytest

from tradekernel.ui.render import SCREEN_HEIGHT, SCREEN_WIDTH, Renderer
from tradekernel.ui.window import (
    _HostKeys,
    present,
    run_window,
    screen_origin,
    screenshot_path,
    window_title,
)

from .conftest import PROMPT, CrashedSession, line_after

MAX_FRAMES = 900  # 15 s at 60 frames/s: only reached if something is wrong
SCANCODES = {" ": pygame.KSCAN_SPACE, "\r": pygame.KSCAN_RETURN}


def post_key(scancode: int) -> None:
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=0, scancode=scancode, mod=0))
    pygame.event.post(pygame.event.Event(pygame.KEYUP, key=0, scancode=scancode, mod=0))


def post_text(text: str) -> None:
    """Key presses for lower-case letters, space and Enter, all within one frame."""
    for char in text:
        post_key(SCANCODES.get(char) or getattr(pygame, f"KSCAN_{char.upper()}"))


class Script:
    """Drives run_window from its frame hook: each step waits for its condition on the
    screen, then acts. Records the frame each step ran in and the window titles seen."""

    def __init__(self, session, steps: list[tuple[Callable[[list[str]], bool], Callable]]):  # noqa: ANN001
        self.session = session
        self.steps = steps
        self.done_at: list[int] = []
        self.titles: set[str] = set()

    def __call__(self, frame: int) -> None:
        self.titles.add(pygame.display.get_caption()[0])
        if len(self.done_at) < len(self.steps):
            condition, action = self.steps[len(self.done_at)]
            if condition(self.session.screen_lines()):
                action()
                self.done_at.append(frame)


def prompt_shown(lines: list[str]) -> bool:
    return any(line.startswith(PROMPT) for line in lines)


def test_typed_command_runs_and_closing_the_window_powers_off(session) -> None:  # noqa: ANN001
    script = Script(
        session,
        [
            (prompt_shown, lambda: post_text("echo hi\r")),
            (
                lambda lines: line_after(lines, f"{PROMPT} echo hi") == "hi",
                lambda: pygame.event.post(pygame.event.Event(pygame.QUIT)),
            ),
        ],
    )
    stop = run_window(session, max_frames=MAX_FRAMES, on_frame=script)
    assert len(script.done_at) == 2, session.screen_lines()
    assert stop.reason == "poweroff"
    assert "TradeKernel — running (deterministic clock)" in script.titles
    assert session.machine.stop_info == stop
    assert not pygame.display.get_init()  # the window is gone


def test_guest_shutdown_closes_the_window_and_f12_takes_a_screenshot(
    session,  # noqa: ANN001
    tmp_path: Path,
) -> None:
    shots = tmp_path / "shots"
    keys_sent: list[object] = []
    session.machine.channels.listen("keyboard-key", keys_sent.append)
    script = Script(
        session,
        [
            (prompt_shown, lambda: post_key(pygame.KSCAN_F12)),
            (lambda _lines: any(shots.glob("*.png")), lambda: post_text("shutdown\r")),
        ],
    )
    stop = run_window(session, max_frames=MAX_FRAMES, on_frame=script, screenshot_dir=shots)
    assert stop.reason == "poweroff"
    assert len(script.done_at) == 2
    (shot,) = shots.glob("tradekernel-*.png")
    assert pygame.image.load(str(shot)).get_size() == (SCREEN_WIDTH, SCREEN_HEIGHT)
    assert any(f"saved {shot} (new folder)" in title for title in script.titles)
    assert [name for name, pressed in keys_sent if pressed] == list("shutdown") + ["enter"]


def test_f12_says_on_stderr_where_the_screenshot_went(session, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    shots = tmp_path / "shots"
    script = Script(
        session,
        [
            (prompt_shown, lambda: post_key(pygame.KSCAN_F12)),
            (lambda _lines: any(shots.glob("*.png")), lambda: post_text("shutdown\r")),
        ],
    )
    run_window(session, max_frames=MAX_FRAMES, on_frame=script, screenshot_dir=shots)
    (shot,) = shots.glob("tradekernel-*.png")
    assert f"tk: screenshot saved {shot.resolve()} (new folder)" in capsys.readouterr().err


def _shift_key(scancode: int) -> None:
    for kind in (pygame.KEYDOWN, pygame.KEYUP):
        pygame.event.post(
            pygame.event.Event(kind, key=0, scancode=scancode, mod=pygame.KMOD_LSHIFT)
        )


def test_shift_page_up_in_the_window_shows_what_scrolled_off(session, monkeypatch) -> None:  # noqa: ANN001
    first_help_row = "bg           continue stopped jobs in the background"
    keys_sent: list[object] = []
    session.machine.channels.listen("keyboard-key", keys_sent.append)
    drawn: list[list[str]] = []  # the rows of every screen the window rendered
    render = Renderer.render

    def recording_render(self, screen, time_s=0.0):  # noqa: ANN001, ANN202
        drawn.append([screen.row_bytes(r)[0::2].decode("cp437").rstrip() for r in range(25)])
        return render(self, screen, time_s)

    monkeypatch.setattr(Renderer, "render", recording_render)

    def page_up() -> None:
        for _ in range(12):  # half-screen steps: past the top of the boot lines and `help`
            _shift_key(pygame.KSCAN_PAGEUP)

    script = Script(
        session,
        [
            (prompt_shown, lambda: post_text("help\r")),
            (lambda lines: lines[-1].rstrip() == PROMPT, page_up),
            (lambda _lines: any(first_help_row in rows for rows in drawn), lambda: None),
            (lambda _lines: True, lambda: pygame.event.post(pygame.event.Event(pygame.QUIT))),
        ],
    )
    run_window(session, max_frames=MAX_FRAMES, on_frame=script)
    assert len(script.done_at) == 4, session.screen_lines()
    assert first_help_row not in session.screen_lines()  # it went off the live screen
    assert any("scrolled back" in title for title in script.titles)
    assert "pageup" not in [name for name, _pressed in keys_sent]  # the guest never saw them


def test_a_crashed_machine_stays_on_screen_until_the_window_is_closed() -> None:
    titles: list[str] = []
    stop = run_window(
        CrashedSession(),
        max_frames=20,
        on_frame=lambda _frame: titles.append(pygame.display.get_caption()[0]),
    )
    assert stop.reason == "crash"
    assert len(titles) == 20  # it waited for the close (max_frames), not the crash
    assert titles[-1] == "TradeKernel — crashed"


def _picture() -> pygame.Surface:
    picture = pygame.Surface((SCREEN_WIDTH, SCREEN_HEIGHT))
    picture.fill((10, 20, 30))
    return picture


def test_present_scales_by_whole_pixels_centred_on_black() -> None:
    display = pygame.Surface((1500, 900))
    display.fill((255, 255, 255))
    assert screen_origin(display.get_size()) == (2, 30, 50)
    (changed,) = present(display, _picture(), [], full=True)
    assert changed == display.get_rect()
    assert display.get_at((29, 450))[:3] == (0, 0, 0)  # left border
    assert display.get_at((30, 50))[:3] == (10, 20, 30)
    assert display.get_at((30 + 1439, 50 + 799))[:3] == (10, 20, 30)
    assert display.get_at((30 + 1440, 50 + 799))[:3] == (0, 0, 0)  # right border
    assert display.get_at((750, 50 + 800))[:3] == (0, 0, 0)  # bottom border


def test_present_copies_only_the_dirty_rows() -> None:
    display = pygame.Surface((1440, 800))
    picture = _picture()
    present(display, picture, [], full=True)
    picture.fill((200, 0, 0))
    changed = present(display, picture, [4, 3, 10], full=False)
    assert [tuple(rect) for rect in changed] == [(0, 3 * 32, 1440, 64), (0, 10 * 32, 1440, 32)]
    assert display.get_at((5, 3 * 32))[:3] == (200, 0, 0)
    assert display.get_at((5, 5 * 32))[:3] == (10, 20, 30)  # row 5 was not dirty
    assert display.get_at((5, 11 * 32 - 1))[:3] == (200, 0, 0)


def test_a_window_smaller_than_the_screen_shows_all_of_it_shrunk() -> None:
    assert screen_origin((700, 300)) == (0.75, 80, 0)  # 540x300, centred


def test_a_1280_wide_window_gets_more_than_1x_with_the_aspect_kept() -> None:
    """Issue 17 item 12: integer scaling needed 1440x800, so a 1280-wide screen got 1x."""
    display = pygame.Surface((1280, 740))
    scale, left, top = screen_origin(display.get_size())
    assert scale == 1280 / 720 and (left, top) == (0, (740 - 711) // 2)
    present(display, _picture(), [], full=True)
    assert display.get_at((0, top))[:3] == (10, 20, 30)
    assert display.get_at((1279, top + 710))[:3] == (10, 20, 30)
    assert display.get_at((640, top + 711))[:3] == (0, 0, 0)


def test_fractional_row_updates_land_where_the_full_picture_has_them() -> None:
    display = pygame.Surface((1080, 600))  # 1.5x
    picture = _picture()
    present(display, picture, [], full=True)
    picture.fill((200, 0, 0), (0, 3 * 16, 720, 16))
    (changed,) = present(display, picture, [3], full=False)
    assert tuple(changed) == (0, 72, 1080, 24)
    assert display.get_at((5, 72))[:3] == (200, 0, 0)
    assert display.get_at((5, 95))[:3] == (200, 0, 0)
    assert display.get_at((5, 96))[:3] == (10, 20, 30)


def test_scale_option_sets_the_window_size(session) -> None:  # noqa: ANN001
    sizes = []
    run_window(
        session,
        scale=1.5,
        max_frames=1,
        on_frame=lambda _frame: sizes.append(pygame.display.get_surface().get_size()),
    )
    assert sizes[0] == (1080, 600)


def _key(kind: int, scancode: int) -> pygame.event.Event:
    return pygame.event.Event(kind, key=0, scancode=scancode, mod=0)


def test_only_real_key_transitions_reach_the_keyboard() -> None:
    keys = _HostKeys()
    assert keys.translate(_key(pygame.KEYUP, pygame.KSCAN_A)) == []  # pressed before focus
    assert keys.translate(_key(pygame.KEYDOWN, pygame.KSCAN_A)) == [("a", True)]
    assert keys.translate(_key(pygame.KEYDOWN, pygame.KSCAN_A)) == []  # an OS repeat
    assert keys.translate(_key(pygame.KEYUP, pygame.KSCAN_A)) == [("a", False)]
    assert keys.translate(_key(pygame.KEYDOWN, 0x0102)) == []  # a key no PC keyboard has


def test_presses_waiting_for_release_keep_modifiers_around_their_keys() -> None:
    keys = _HostKeys(presses_wait_for_release=True)
    assert keys.translate(_key(pygame.KEYDOWN, pygame.KSCAN_LSHIFT)) == []
    assert keys.translate(_key(pygame.KEYDOWN, pygame.KSCAN_A)) == []
    assert keys.translate(_key(pygame.KEYUP, pygame.KSCAN_A)) == [
        ("lshift", True),
        ("a", True),
        ("a", False),
    ]
    assert keys.translate(_key(pygame.KEYUP, pygame.KSCAN_LSHIFT)) == [("lshift", False)]


def test_screenshot_names_do_not_overwrite(tmp_path: Path) -> None:
    when = datetime(2024, 5, 6, 7, 8, 9)
    first = screenshot_path(tmp_path, when)
    assert first.name == "tradekernel-20240506-070809.png"
    first.write_bytes(b"")
    assert screenshot_path(tmp_path, when).name == "tradekernel-20240506-070809-2.png"


@pytest.mark.parametrize(
    ("state", "deterministic", "note", "title"),
    [
        ("running", False, "", "TradeKernel — running"),
        ("halted", True, "", "TradeKernel — halted (deterministic clock)"),
        ("running", False, "saved x.png", "TradeKernel — running — saved x.png"),
    ],
)
def test_window_title(state: str, deterministic: bool, note: str, title: str) -> None:
    assert window_title(state, deterministic, note) == title


def test_a_key_held_for_a_human_moment_types_once_on_the_deterministic_clock(session) -> None:  # noqa: ANN001
    """Idle, the deterministic clock runs far ahead of the wall clock: 100 ms of holding would
    be seconds of typematic repeat if the press went to the keyboard before the release."""
    steps: dict[str, int] = {}

    def on_frame(frame: int) -> None:
        lines = session.screen_lines()
        if "down" not in steps and prompt_shown(lines):
            pygame.event.post(pygame.event.Event(pygame.KEYDOWN, scancode=pygame.KSCAN_X))
            steps["down"] = frame
        elif "down" in steps and "up" not in steps and frame >= steps["down"] + 6:
            pygame.event.post(pygame.event.Event(pygame.KEYUP, scancode=pygame.KSCAN_X))
            steps["up"] = frame
        elif "up" in steps and frame >= steps["up"] + 6:
            pygame.event.post(pygame.event.Event(pygame.QUIT))

    assert run_window(session, max_frames=MAX_FRAMES, on_frame=on_frame).reason == "poweroff"
    assert f"{PROMPT} x" in [line.rstrip() for line in session.screen_lines()]
