"""Shared pieces for the front-end tests: a booted session and waiting on its screen."""

from __future__ import annotations

import os

os.environ["SDL_VIDEODRIVER"] = "dummy"  # before pygame opens a display

import pytest  # noqa: E402

from tradekernel.ui.session import BootOptions, Session  # noqa: E402

PROMPT = "tk:/>"
SAFETY_TIMEOUT_S = 30.0  # a wedged guest ends the run instead of hanging the test run


@pytest.fixture
def session():
    booted = Session(BootOptions(deterministic=True, timeout_s=SAFETY_TIMEOUT_S))
    yield booted
    booted.close()


def line_after(lines: list[str], command_line: str) -> str | None:
    """The screen line just below the last line that is `command_line` (trailing spaces
    ignored), or None if there is none yet."""
    stripped = [line.rstrip() for line in lines]
    for index in range(len(stripped) - 2, -1, -1):
        if stripped[index] == command_line:
            return stripped[index + 1]
    return None
