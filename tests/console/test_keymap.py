"""Host keys and terminal characters to the keyboard's key names."""

from __future__ import annotations

import os

os.environ["SDL_VIDEODRIVER"] = "dummy"

import pygame  # noqa: E402
import pytest  # noqa: E402

from tradekernel.devices.base import Board  # noqa: E402
from tradekernel.devices.i8042 import I8042, KEY_NAMES  # noqa: E402
from tradekernel.ui.keymap import (  # noqa: E402
    TerminalKeyDecoder,
    mapped_key_names,
    pygame_key_event,
    text_to_key_events,
)


def test_every_mapped_name_is_a_keyboard_key() -> None:
    assert mapped_key_names() <= KEY_NAMES


def test_pygame_events_by_scancode() -> None:
    down = pygame.event.Event(pygame.KEYDOWN, key=pygame.K_a, scancode=4)
    up = pygame.event.Event(pygame.KEYUP, key=pygame.K_UP, scancode=82)
    assert pygame_key_event(down) == ("a", True)
    assert pygame_key_event(up) == ("up", False)
    assert pygame_key_event(pygame.event.Event(pygame.KEYDOWN, scancode=225)) == ("lshift", True)
    assert pygame_key_event(pygame.event.Event(pygame.KEYDOWN, scancode=999)) is None
    assert pygame_key_event(pygame.event.Event(pygame.MOUSEMOTION)) is None


def test_characters() -> None:
    assert text_to_key_events("a") == [("a", True), ("a", False)]
    assert text_to_key_events("A") == [
        ("lshift", True),
        ("a", True),
        ("a", False),
        ("lshift", False),
    ]
    assert text_to_key_events("?")[1] == ("slash", True)
    assert (
        text_to_key_events("\n")
        == text_to_key_events("\r")
        == [
            ("enter", True),
            ("enter", False),
        ]
    )
    assert text_to_key_events("\x7f") == text_to_key_events("\b")
    assert text_to_key_events("\t")[0] == ("tab", True)
    assert text_to_key_events("\x03") == [
        ("lctrl", True),
        ("c", True),
        ("c", False),
        ("lctrl", False),
    ]


def test_escape_sequences() -> None:
    names = [name for name, pressed in text_to_key_events("\x1b[A\x1bOB\x1b[3~\x1b[15~") if pressed]
    assert names == ["up", "down", "delete", "f5"]
    assert text_to_key_events("\x1b") == [("esc", True), ("esc", False)]
    assert [n for n, p in text_to_key_events("\x1bx") if p] == ["esc", "x"]


def test_escape_split_across_reads() -> None:
    decoder = TerminalKeyDecoder()
    assert decoder.feed("\x1b[") == []
    assert decoder.feed("D") == [("left", True), ("left", False)]
    assert decoder.feed("\x1b") == []
    assert decoder.flush() == [("esc", True), ("esc", False)]


def test_unsupported_characters() -> None:
    with pytest.raises(ValueError):
        text_to_key_events("é")
    decoder = TerminalKeyDecoder()
    assert decoder.feed("éa") == [("a", True), ("a", False)]
    assert decoder.unsupported == ["é"]


def test_typed_text_reaches_the_controller_as_set1(board: Board) -> None:
    kbc = I8042()
    kbc.attach(board)
    for event in text_to_key_events("Hi"):
        board.channels.send("keyboard-key", event)
    out = []
    while board.ports.read(0x64) & 1:
        out.append(board.ports.read(0x60))
    assert out == [0x2A, 0x23, 0xA3, 0xAA, 0x17, 0x97]
