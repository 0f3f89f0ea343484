"""Frame time of the `tk boot` window's loop with the machine thread running: an idle guest
(cursor blink only), a busy one (`help` typed 30 times a second, the screen scrolling every
frame, the kernel's Python busy with keys and console output), the same window scaled 2x, and
the deterministic clock (the machine loop never sleeps: it jumps through virtual time).

Figures per case: paint (render the dirty rows from VGA memory, scale, update the display,
title; wall time, and the UI thread's CPU time, which leaves out waiting for the GIL or a
core while the machine thread runs), the interval between frames (16.7 ms at 60 frames/s:
more is a late frame), and the share of frames where all 25 rows changed. Target: paint
under 16 ms at p99.

Run: SDL_VIDEODRIVER=dummy /tmp/venv/bin/python bench/bench_window.py
"""

from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import pygame  # noqa: E402

from tradekernel.ui import window  # noqa: E402
from tradekernel.ui.keymap import text_to_key_events  # noqa: E402
from tradekernel.ui.session import BootOptions, Session  # noqa: E402
from tradekernel.ui.terminal import KeyTypist  # noqa: E402

WARMUP_FRAMES = 60  # boot to the prompt before measuring
MEASURED_FRAMES = 300
MAX_FRAMES = 3000  # a guest that never shows its prompt ends the case
PROMPT = "tk:/>"


class PaintTimer:
    """Times the window's paint step (wrapped in place for the run)."""

    def __init__(self) -> None:
        self.times_ms: list[float] = []
        self.cpu_ms: list[float] = []  # the UI thread's own CPU time: paint minus waiting
        self.dirty_rows: list[int] = []
        self._paint = window._Window.paint

    def __enter__(self) -> PaintTimer:
        original = self._paint

        def timed(self_window: window._Window) -> None:
            start, cpu_start = time.perf_counter(), time.thread_time()
            original(self_window)
            self.times_ms.append((time.perf_counter() - start) * 1000)
            self.cpu_ms.append((time.thread_time() - cpu_start) * 1000)
            self.dirty_rows.append(len(self_window.renderer.dirty_rows))

        window._Window.paint = timed
        return self

    def __exit__(self, *_exc: object) -> None:
        window._Window.paint = self._paint


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def measure(name: str, deterministic: bool, busy: bool, size: tuple[int, int] = (720, 400)) -> None:
    session = Session(BootOptions(deterministic=deterministic, timeout_s=120))
    typist = KeyTypist(session)
    frame_starts: list[float] = []
    ready: list[int] = []

    def on_frame(frame: int) -> None:
        if frame == 1 and size != (720, 400):
            pygame.display.set_mode(size, pygame.RESIZABLE)
        if not ready:
            if frame >= WARMUP_FRAMES and any(
                line.startswith(PROMPT) for line in session.screen_lines()
            ):
                ready.append(frame)
            return
        frame_starts.append(time.perf_counter())
        if frame == ready[0] + MEASURED_FRAMES:
            pygame.event.post(pygame.event.Event(pygame.QUIT))
        elif busy and frame % 2 == 0:
            typist.type(text_to_key_events("help\r"))

    with PaintTimer() as timer:
        stop = window.run_window(session, max_frames=MAX_FRAMES, on_frame=on_frame)
    session.close()
    if len(frame_starts) < MEASURED_FRAMES:
        raise SystemExit(f"{name}: the guest never showed its prompt ({stop.reason})")
    paints = timer.times_ms[-len(frame_starts) :]
    paint_cpu = timer.cpu_ms[-len(frame_starts) :]
    full_share = timer.dirty_rows[-len(frame_starts) :].count(25) / len(frame_starts)
    intervals = [(b - a) * 1000 for a, b in zip(frame_starts, frame_starts[1:], strict=False)]
    print(
        f"{name:<46} paint median {statistics.median(paints):5.2f} ms  "
        f"p99 {percentile(paints, 0.99):5.2f} ms (CPU p99 {percentile(paint_cpu, 0.99):5.2f}) | "
        f"interval median "
        f"{statistics.median(intervals):5.2f} ms  p99 {percentile(intervals, 0.99):5.2f} ms  "
        f"max {max(intervals):5.2f} ms | all rows {full_share:4.0%} of frames  ({stop.reason})"
    )


def main() -> None:
    measure("idle guest, real time", deterministic=False, busy=False)
    measure("busy guest (help x30/s, scrolling), real time", deterministic=False, busy=True)
    measure("busy guest, window 1440x800 (2x)", deterministic=False, busy=True, size=(1440, 800))
    measure("idle guest, deterministic clock", deterministic=True, busy=False)
    measure("busy guest, deterministic clock", deterministic=True, busy=True)


if __name__ == "__main__":
    main()
