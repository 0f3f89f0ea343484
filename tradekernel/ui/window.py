"""`tk boot`: the TradeKernel PC's monitor and keyboard in a pygame window.

Contract: `run_window(session)` opens a resizable window (720x400 times `scale`) showing the
text screen scaled to fit with its aspect kept (by whole pixels when one fits within 5%; any
factor otherwise, so a 1280-pixel-wide screen gets more than 1x) and centred on black,
repainted up to 60 times a second from VGA memory (only the rows that changed); the title
shows the machine's state and clock mode. The machine runs in a background thread under a
`Supervisor` (whose watchdog ends the process if the machine stops responding), the UI in the
calling thread (SDL wants the main one): the UI only reads guest memory, so a busy guest never
freezes the window. Host key presses and releases go to the PS/2 keyboard as they happen,
paced only if they come faster than its FIFO drains (its typematic makes the repeats, in
virtual time, so SDL's own repeat is off and repeated downs are dropped; on the deterministic
clock a press waits for its release). F12 saves a screenshot instead of reaching the guest
and the title and stderr say where it went; Shift+PgUp/PgDn scroll back through the console's
history (ui/scrollback.py), any other key returns to the live screen. Closing the window
powers the machine off cleanly; a guest that powers off (or a run that times out) closes the
window. Returns the machine's StopInfo.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import pygame  # noqa: E402

from tradekernel.devices.vga import TextScreen  # noqa: E402
from tradekernel.emu.machine import StopInfo  # noqa: E402
from tradekernel.ui.font import GLYPH_HEIGHT  # noqa: E402
from tradekernel.ui.keymap import KeyEvent, pygame_key_event  # noqa: E402
from tradekernel.ui.render import (  # noqa: E402
    SCREEN_WIDTH,
    Renderer,
    fit_scale,
    save_png,
    scale_surface,
    scale_to,
    scaled_size,
)
from tradekernel.ui.scrollback import SERIAL_CHANNEL, Scrollback  # noqa: E402
from tradekernel.ui.session import Session  # noqa: E402
from tradekernel.ui.supervisor import Supervisor  # noqa: E402
from tradekernel.ui.terminal import KeyTypist  # noqa: E402

FRAME_RATE = 60
TITLE = "TradeKernel"
SCREENSHOT_KEY = pygame.KSCAN_F12  # by position, as every key here
SCREENSHOT_DIR = Path("screenshots")
SCROLL_KEYS = {pygame.KSCAN_PAGEUP: -1, pygame.KSCAN_PAGEDOWN: 1}  # with Shift: scrollback
MODIFIER_KEYS = frozenset(
    (pygame.KSCAN_LSHIFT, pygame.KSCAN_RSHIFT, pygame.KSCAN_LCTRL, pygame.KSCAN_RCTRL,
     pygame.KSCAN_LALT, pygame.KSCAN_RALT)
)  # fmt: skip
NOTE_SECONDS = 4.0  # how long a message (a saved screenshot) stays in the title
BORDER = (0, 0, 0)
# Why the machine stopped -> the window title's word for it.
STOP_STATES = {
    "poweroff": "powered off",
    "crash": "crashed",
    "timeout": "timed out",
}
CLOSES_WINDOW = frozenset(("poweroff", "timeout"))  # other ends stay on screen to be read

FrameHook = Callable[[int], None]


def window_title(state: str, deterministic: bool, note: str = "") -> str:
    title = f"{TITLE} — {state}"
    if deterministic:
        title += " (deterministic clock)"
    return f"{title} — {note}" if note else title


def window_size(scale: float) -> tuple[int, int]:
    """The window's opening size for `--scale` (the picture at that factor, no border)."""
    return scaled_size(scale)


def screen_origin(window_size: tuple[int, int]) -> tuple[float, int, int]:
    """(scale, left, top) of the 720x400 picture scaled to fit the window, aspect kept, and
    centred in it."""
    width, height = window_size
    scale = fit_scale(window_size)
    picture_width, picture_height = scaled_size(scale)
    return scale, (width - picture_width) // 2, (height - picture_height) // 2


def present(
    display: pygame.Surface, picture: pygame.Surface, rows: list[int], full: bool
) -> list[pygame.Rect]:
    """Copy the text rows `rows` of the 720x400 `picture` to `display`, scaled and centred, or
    all of it with black borders when `full`. Returns the display areas that changed."""
    scale, left, top = screen_origin(display.get_size())
    if full:
        display.fill(BORDER)
        display.blit(scale_to(picture, display.get_size()), (left, top))
        return [display.get_rect()]
    width = scaled_size(scale)[0]
    changed = []
    for first, count in _row_runs(rows):
        strip = picture.subsurface((0, first * GLYPH_HEIGHT, SCREEN_WIDTH, count * GLYPH_HEIGHT))
        y0 = round(first * GLYPH_HEIGHT * scale)
        y1 = round((first + count) * GLYPH_HEIGHT * scale)
        strip = scale_surface(strip, (width, max(1, y1 - y0)))
        changed.append(display.blit(strip, (left, top + y0)))
    return changed


def _row_runs(rows: list[int]) -> list[tuple[int, int]]:
    """Sorted row numbers as (first, count) runs of neighbours, one blit each."""
    runs: list[tuple[int, int]] = []
    for row in sorted(rows):
        if runs and runs[-1][0] + runs[-1][1] == row:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((row, 1))
    return runs


def screenshot_path(directory: Path, now: datetime) -> Path:
    """screenshots/tradekernel-YYYYmmdd-HHMMSS.png, with -2, -3... if taken within a second."""
    stem = f"tradekernel-{now:%Y%m%d-%H%M%S}"
    path = directory / f"{stem}.png"
    number = 2
    while path.exists():
        path = directory / f"{stem}-{number}.png"
        number += 1
    return path


class _HostKeys:
    """pygame key events -> PS/2 key transitions; only real downs and ups get through.

    With `presses_wait_for_release` (the deterministic clock, which runs far ahead of the wall
    clock while the guest idles) presses are held back until a key is released and then sent
    together with that release, so a human-length press never turns into seconds of typematic
    repeat; modifiers still wrap the keys pressed under them. Holding a key to repeat it is
    what this gives up."""

    def __init__(self, presses_wait_for_release: bool = False) -> None:
        self.held: set[str] = set()
        self.presses_wait_for_release = presses_wait_for_release
        self._waiting: list[KeyEvent] = []

    def translate(self, event: pygame.event.Event) -> list[KeyEvent]:
        key = pygame_key_event(event)
        if key is None:
            return []
        name, pressed = key
        if pressed == (name in self.held):
            return []  # an OS repeat, or the release of a key pressed before we had focus
        if pressed:
            self.held.add(name)
        else:
            self.held.discard(name)
        if not self.presses_wait_for_release:
            return [key]
        self._waiting.append(key)
        if pressed:
            return []
        released, self._waiting = self._waiting, []
        return released


class _Window:
    """The UI loop's state: display, renderer, title, and the machine thread it watches."""

    def __init__(
        self, session: Session, screenshot_dir: Path, supervisor: Supervisor, scale: float | None
    ) -> None:
        self.session = session
        self.supervisor = supervisor
        self.machine = supervisor.machine
        self.screenshot_dir = screenshot_dir
        self.renderer = Renderer()
        self.keys = _HostKeys(presses_wait_for_release=session.options.deterministic)
        self.typist = KeyTypist(session)
        self.history = Scrollback()
        session.machine.channels.listen(SERIAL_CHANNEL, self.history.feed)
        pygame.display.set_mode(window_size(scale or 1), pygame.RESIZABLE)
        self.painted_size = (0, 0)
        self.closing = False
        self.stop: StopInfo | None = None
        self.note = ""
        self.note_until = 0.0
        self.title = ""
        self.started = time.monotonic()

    def handle_events(self) -> None:
        transitions: list[KeyEvent] = []
        for event in pygame.event.get():
            if event.type == pygame.QUIT:
                self.close()
            elif event.type in (pygame.VIDEOEXPOSE, pygame.WINDOWEXPOSED):
                self.painted_size = (0, 0)  # the window system lost our pixels: paint all
            elif event.type in (pygame.KEYDOWN, pygame.KEYUP):
                scancode = getattr(event, "scancode", None)
                if scancode == SCREENSHOT_KEY:
                    if event.type == pygame.KEYDOWN:
                        self.screenshot()
                    continue
                if scancode in SCROLL_KEYS and getattr(event, "mod", 0) & pygame.KMOD_SHIFT:
                    if event.type == pygame.KEYDOWN:
                        self.scroll(SCROLL_KEYS[scancode])
                    continue  # Shift+PgUp/PgDn scroll the window, the guest never sees them
                if event.type == pygame.KEYDOWN and scancode not in MODIFIER_KEYS:
                    self.history.to_live()
                transitions += self.keys.translate(event)
        if not self.closing:
            self.typist.type(transitions)

    def close(self) -> None:
        """The user closed the window: power off (the UI keeps drawing until the loop ends)."""
        self.closing = True
        self.supervisor.request_stop("the window was closed")

    def scroll(self, step: int) -> None:
        if step < 0:
            self.history.page_up()
        else:
            self.history.page_down()

    def screenshot(self) -> None:
        """Save the screen as shown (history too, when scrolled back) and say where it went:
        in the title for a while, and on stderr, which outlives the window."""
        now = time.monotonic()
        try:
            created = not self.screenshot_dir.is_dir()
            self.screenshot_dir.mkdir(parents=True, exist_ok=True)
            path = screenshot_path(self.screenshot_dir, datetime.now()).resolve()
            save_png(self._shown(), str(path), now - self.started)
            self.note = f"saved {path}" + (" (new folder)" if created else "")
        except (OSError, pygame.error) as error:
            self.note = f"screenshot failed: {error}"
        self.note_until = now + NOTE_SECONDS
        print(f"tk: screenshot {self.note}", file=sys.stderr, flush=True)

    def _shown(self) -> TextScreen:
        return self.history.view(self.session.pc.vga.text_screen())

    def paint(self) -> None:
        now = time.monotonic()
        picture = self.renderer.render(self._shown(), now - self.started)
        display = pygame.display.get_surface()  # resized with the window (or by set_mode)
        size = display.get_size()
        changed = present(display, picture, self.renderer.dirty_rows, size != self.painted_size)
        self.painted_size = size
        if changed:
            pygame.display.update(changed)
        self.update_title(now)

    def update_title(self, now: float) -> None:
        if self.stop is not None:
            state = STOP_STATES.get(self.stop.reason, self.stop.reason)
        else:
            state = "powering off" if self.closing else "running"
        if now >= self.note_until:
            self.note = ""
        note = self.note or self.history.status()
        title = window_title(state, self.session.options.deterministic, note)
        if title != self.title:
            pygame.display.set_caption(title)
            self.title = title


def run_window(
    session: Session,
    *,
    max_frames: int | None = None,
    on_frame: FrameHook | None = None,
    screenshot_dir: Path = SCREENSHOT_DIR,
    supervisor: Supervisor | None = None,
    scale: float | None = None,
) -> StopInfo:
    """Run `session` in a window until the machine stops (see the module docstring).

    For tests and benchmarks: `on_frame(frame_number)` is called after each frame is drawn
    (post pygame events from it to drive the UI); after `max_frames` frames the window closes
    as if the user had closed it.
    """
    pygame.display.init()
    try:
        window = _Window(session, screenshot_dir, supervisor or Supervisor(session), scale)
    except BaseException:
        pygame.display.quit()
        raise
    try:
        pygame.key.set_repeat()  # no SDL repeat: the keyboard model has its own typematic
        pygame.key.stop_text_input()  # keys only: no input method composing text
        window.update_title(time.monotonic())
        window.supervisor.start()
        return _loop(window, max_frames, on_frame)
    finally:
        window.supervisor.stop()
        pygame.display.quit()


def _loop(window: _Window, max_frames: int | None, on_frame: FrameHook | None) -> StopInfo:
    """Frames until the machine has stopped and the window should go: at once after a power-off
    or a timeout; after a crash or a halt, its last screen stays up (the title says why) until
    the user closes the window."""
    clock = pygame.time.Clock()
    frame = 0
    while True:
        window.handle_events()
        window.paint()
        if window.stop is None and not window.machine.alive:
            window.stop = window.machine.result()
            window.update_title(time.monotonic())
        if window.stop is not None and (window.stop.reason in CLOSES_WINDOW or window.closing):
            return window.stop
        frame += 1
        if on_frame is not None:
            on_frame(frame)
        if max_frames is not None and frame >= max_frames:
            window.close()
        clock.tick(FRAME_RATE)
