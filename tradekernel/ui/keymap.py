"""Host keys to the PS/2 keyboard's physical key names (see devices.i8042.SET2_MAKE).

Two sources: pygame key events from the window (mapped by SDL scancode, i.e. USB HID usage, so
the key's position counts, not the host's layout), and characters typed into the headless
terminal, which become the US-layout key presses that would type them: 'A' is lshift down,
a down, a up, lshift up; control characters are lctrl plus a key; ANSI/VT escape sequences
(ESC [ A ...) are the arrow, editing and function keys.
"""

from __future__ import annotations

from typing import Any

KeyEvent = tuple[str, bool]  # (key name, pressed): the payload of channel "keyboard-key"

# USB HID keyboard usage (= SDL scancode) -> key name.
_HID_NAMES: dict[int, str] = {
    **{4 + i: chr(ord("a") + i) for i in range(26)},
    **{30 + i: str((i + 1) % 10) for i in range(10)},
    40: "enter", 41: "esc", 42: "backspace", 43: "tab", 44: "space", 45: "minus",
    46: "equals", 47: "lbracket", 48: "rbracket", 49: "backslash", 50: "backslash",
    51: "semicolon", 52: "quote", 53: "backquote", 54: "comma", 55: "period", 56: "slash",
    57: "capslock", **{58 + i: f"f{i + 1}" for i in range(12)},
    70: "printscreen", 71: "scrolllock", 72: "pause", 73: "insert", 74: "home", 75: "pageup",
    76: "delete", 77: "end", 78: "pagedown", 79: "right", 80: "left", 81: "down", 82: "up",
    83: "numlock", 84: "kpslash", 85: "kpstar", 86: "kpminus", 87: "kpplus", 88: "kpenter",
    **{89 + i: f"kp{i + 1}" for i in range(9)}, 98: "kp0", 99: "kpperiod",
    100: "intlbackslash", 101: "menu",
    224: "lctrl", 225: "lshift", 226: "lalt", 227: "lgui",
    228: "rctrl", 229: "rshift", 230: "ralt", 231: "rgui",
}  # fmt: skip

# US layout: the character each key types, unshifted and shifted.
_UNSHIFTED = {
    **{chr(ord("a") + i): chr(ord("a") + i) for i in range(26)},
    **{str(d): str(d) for d in range(10)},
    "-": "minus", "=": "equals", "[": "lbracket", "]": "rbracket", "\\": "backslash",
    ";": "semicolon", "'": "quote", "`": "backquote", ",": "comma", ".": "period",
    "/": "slash", " ": "space",
}  # fmt: skip
_SHIFTED = {
    **{chr(ord("A") + i): chr(ord("a") + i) for i in range(26)},
    "!": "1", "@": "2", "#": "3", "$": "4", "%": "5", "^": "6", "&": "7", "*": "8",
    "(": "9", ")": "0", "_": "minus", "+": "equals", "{": "lbracket", "}": "rbracket",
    "|": "backslash", ":": "semicolon", '"': "quote", "~": "backquote", "<": "comma",
    ">": "period", "?": "slash",
}  # fmt: skip
_PLAIN_CONTROLS = {
    "\t": "tab",
    "\n": "enter",
    "\r": "enter",
    "\b": "backspace",
    "\x7f": "backspace",
}
# Control characters typed as Ctrl + key, beyond Ctrl-A..Ctrl-Z.
_CTRL_EXTRA = {"\x00": "2", "\x1c": "backslash", "\x1d": "rbracket", "\x1e": "6", "\x1f": "minus"}

# Escape sequences after ESC: CSI ("[") final letters, SS3 ("O") letters, CSI n "~" numbers.
_CSI_LETTERS = {"A": "up", "B": "down", "C": "right", "D": "left", "H": "home", "F": "end"}
_SS3_LETTERS = {**_CSI_LETTERS, "P": "f1", "Q": "f2", "R": "f3", "S": "f4"}
_CSI_TILDE = {
    1: "home", 2: "insert", 3: "delete", 4: "end", 5: "pageup", 6: "pagedown", 7: "home",
    8: "end", 11: "f1", 12: "f2", 13: "f3", 14: "f4", 15: "f5", 17: "f6", 18: "f7", 19: "f8",
    20: "f9", 21: "f10", 23: "f11", 24: "f12",
}  # fmt: skip


def mapped_key_names() -> frozenset[str]:
    """Every key name this module can produce (all of them are keys the keyboard has)."""
    names = set(_HID_NAMES.values()) | set(_UNSHIFTED.values()) | set(_SHIFTED.values())
    names |= set(_PLAIN_CONTROLS.values()) | set(_CTRL_EXTRA.values()) | {"esc", "lctrl"}
    names |= set(_SS3_LETTERS.values()) | set(_CSI_TILDE.values()) | {"lshift"}
    return frozenset(names)


def pygame_key_event(event: Any) -> KeyEvent | None:
    """(name, pressed) for a pygame KEYDOWN/KEYUP event, None for other events or keys we
    cannot place (media keys and the like)."""
    import pygame

    if event.type not in (pygame.KEYDOWN, pygame.KEYUP):
        return None
    name = _HID_NAMES.get(getattr(event, "scancode", -1))
    if name is None:
        return None
    return name, event.type == pygame.KEYDOWN


def tap(name: str) -> list[KeyEvent]:
    return [(name, True), (name, False)]


def with_modifier(modifier: str, name: str) -> list[KeyEvent]:
    return [(modifier, True), *tap(name), (modifier, False)]


def char_key_events(char: str) -> list[KeyEvent]:
    """The key presses that type one character on a US keyboard; ValueError if none does."""
    if char in _UNSHIFTED:
        return tap(_UNSHIFTED[char])
    if char in _SHIFTED:
        return with_modifier("lshift", _SHIFTED[char])
    if char in _PLAIN_CONTROLS:
        return tap(_PLAIN_CONTROLS[char])
    if char == "\x1b":
        return tap("esc")
    if "\x01" <= char <= "\x1a":
        return with_modifier("lctrl", chr(ord(char) + 0x60))
    if char in _CTRL_EXTRA:
        return with_modifier("lctrl", _CTRL_EXTRA[char])
    raise ValueError(f"no US keyboard key types {char!r}")


class TerminalKeyDecoder:
    """Turns a terminal's input stream into key events, keeping a split escape sequence
    across `feed` calls. Characters no key types are skipped and listed in `unsupported`."""

    def __init__(self) -> None:
        self._pending = ""
        self.unsupported: list[str] = []

    def feed(self, text: str) -> list[KeyEvent]:
        data = self._pending + text
        self._pending = ""
        events: list[KeyEvent] = []
        i = 0
        while i < len(data):
            char = data[i]
            if char == "\x1b":
                consumed, name = _parse_escape(data, i)
                if consumed == 0:  # incomplete: wait for more input (or flush)
                    self._pending = data[i:]
                    break
                if name is not None:
                    events += tap(name)
                i += consumed
                continue
            try:
                events += char_key_events(char)
            except ValueError:
                self.unsupported.append(char)
            i += 1
        return events

    def flush(self) -> list[KeyEvent]:
        """End of input (or a pause): a lone pending ESC is the Escape key."""
        pending, self._pending = self._pending, ""
        if not pending:
            return []
        return tap("esc") + self.feed(pending[1:])


def _parse_escape(data: str, start: int) -> tuple[int, str | None]:
    """(characters consumed, key name) for the sequence at data[start] == ESC; (0, None) when
    more input is needed. An ESC not followed by '[' or 'O' is the Escape key alone."""
    if start + 1 >= len(data):
        return 0, None
    kind = data[start + 1]
    if kind not in "[O":
        return 1, "esc"
    end = start + 2
    while end < len(data) and (data[end].isdigit() or data[end] == ";"):
        end += 1
    if end >= len(data):
        return 0, None
    final = data[end]
    params = data[start + 2 : end]
    consumed = end - start + 1
    if kind == "O":
        return consumed, _SS3_LETTERS.get(final)
    if final == "~":
        number = params.split(";")[0]
        return consumed, _CSI_TILDE.get(int(number)) if number else None
    return consumed, _CSI_LETTERS.get(final)


def text_to_key_events(text: str) -> list[KeyEvent]:
    """All key events for `text` (a trailing ESC counts as the Escape key); ValueError for
    characters no US key types."""
    decoder = TerminalKeyDecoder()
    events = decoder.feed(text) + decoder.flush()
    if decoder.unsupported:
        raise ValueError(f"no US keyboard key types {decoder.unsupported!r}")
    return events
