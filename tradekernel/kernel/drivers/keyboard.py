"""The PS/2 keyboard driver: scancode set 1 bytes from port 0x60 on IRQ1 -> key events.

Contract: the controller translates to set 1 (the 8042's default), so a byte is a make code,
a break code (bit 7 set), or the 0xE0 prefix of an extended key. Modifiers are tracked here;
Caps Lock toggles and its LED is set with the keyboard's 0xED command (whose 0xFA
acknowledgements come back through IRQ1 and are dropped). Each press becomes a `Key`: a
character (after Shift/Caps/Ctrl) or the name of a special key.

Back-pressure: before taking each byte the driver asks `can_take` (the tty's `has_room`); while
it says no, the byte stays in the 8042's output buffer and later keys in the keyboard's FIFO,
so nothing typed is lost, and `drain()` takes them once there is room. A host front end that
feeds keys only when the keyboard's FIFO has room for a key's bytes never overruns it.

Characters beyond the keyboard's keys: Alt held while decimal digits are typed on the numeric
keypad gives, when Alt is released, the character with that Unicode code point (as the Linux
console does in Unicode mode): Alt + keypad 2 3 3 is "é" (U+00E9), Alt + 2 6 0 8 5 is "日".
A number that is no character (past U+10FFFF, a surrogate) gives U+FFFD, which the tty
refuses like any character the console cannot show.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tradekernel.emu.bus import PortBus

DATA_PORT, STATUS_PORT = 0x60, 0x64
OUTPUT_FULL, AUX_DATA = 0x01, 0x20  # status bits: a byte is waiting; it is the mouse's
DRAIN_LIMIT = 16  # bytes taken in one interrupt at most (the keyboard's own FIFO)
ACK, RESEND = 0xFA, 0xFE
SET_LEDS = 0xED
LED_CAPS = 0x04

_PLAIN = {}
_SHIFTED = {}
for _first, _plain, _shifted in (
    (0x02, "1234567890-=", "!@#$%^&*()_+"),
    (0x10, "qwertyuiop[]", "QWERTYUIOP{}"),
    (0x1E, "asdfghjkl;'`", 'ASDFGHJKL:"~'),
    (0x2B, "\\zxcvbnm,./", "|ZXCVBNM<>?"),
):
    for _i, (_p, _s) in enumerate(zip(_plain, _shifted, strict=True)):
        _PLAIN[_first + _i] = _p
        _SHIFTED[_first + _i] = _s
_PLAIN.update({0x39: " ", 0x0F: "\t", 0x1C: "\n", 0x0E: "\b", 0x01: "\x1b"})
_SHIFTED.update({0x39: " ", 0x0F: "\t", 0x1C: "\n", 0x0E: "\b", 0x01: "\x1b"})
_FUNCTION_KEYS = {0x3B + i: f"f{i + 1}" for i in range(10)} | {0x57: "f11", 0x58: "f12"}
_EXTENDED = {
    0x48: "up", 0x50: "down", 0x4B: "left", 0x4D: "right", 0x47: "home", 0x4F: "end",
    0x49: "pageup", 0x51: "pagedown", 0x52: "insert", 0x53: "delete", 0x1C: "\n",
}  # fmt: skip
_LSHIFT, _RSHIFT, _CTRL, _ALT, _CAPS = 0x2A, 0x36, 0x1D, 0x38, 0x3A
# The numeric keypad's digits (set 1, without the E0 prefix the cursor keys carry).
_KEYPAD_DIGITS = {0x52: 0, 0x4F: 1, 0x50: 2, 0x51: 3, 0x4B: 4, 0x4C: 5, 0x4D: 6, 0x47: 7,
                  0x48: 8, 0x49: 9}  # fmt: skip
UNICODE_MAX = 0x10FFFF
NOT_A_CHARACTER = "\ufffd"


@dataclass(frozen=True)
class Key:
    char: str = ""  # the character typed, if any ("\n" for Enter, "\b" for Backspace)
    name: str = ""  # a special key ("up", "f1", "delete", ...)
    ctrl: bool = False
    alt: bool = False
    shift: bool = False  # told only for special keys (a character already carries it)


class KeyboardDriver:
    def __init__(self, ports: PortBus, on_key: Callable[[Key], None]) -> None:
        self._ports = ports
        self._on_key = on_key
        self._extended = False
        self.shift = self.ctrl = self.alt = False
        self.caps_lock = False
        self._pending_led: int | None = None
        self.can_take: Callable[[], bool] = lambda: True  # False: leave bytes in the 8042
        self._alt_code: int | None = None  # keypad digits typed while Alt is held
        self._draining = False

    def on_irq(self, _irq: int) -> None:
        self.drain()

    def drain(self) -> None:
        """Take every keyboard byte waiting, not only the one that raised IRQ1: the rest would
        wait for the next kernel entry (a busy process, a burst of keys). An IRQ1 that finds
        the buffer already drained reads nothing: the data port would repeat its last byte.
        Stops while `can_take` says no; a key handler that makes room calls it again (the
        outer call goes on instead)."""
        if self._draining:
            return
        self._draining = True
        try:
            for _ in range(DRAIN_LIMIT):
                if not self.can_take():
                    return
                if self._ports.read(STATUS_PORT, 1) & (OUTPUT_FULL | AUX_DATA) != OUTPUT_FULL:
                    return
                self._byte(self._ports.read(DATA_PORT, 1))
        finally:
            self._draining = False

    def _byte(self, byte: int) -> None:
        if byte == ACK:
            if self._pending_led is not None:
                self._ports.write(DATA_PORT, 1, self._pending_led)
                self._pending_led = None
            return
        if byte == RESEND:
            return
        if byte == 0xE0:
            self._extended = True
            return
        extended, self._extended = self._extended, False
        release = bool(byte & 0x80)
        code = byte & 0x7F
        if code in (_LSHIFT, _RSHIFT) and not extended:
            self.shift = not release
        elif code == _CTRL:
            self.ctrl = not release
        elif code == _ALT:
            self.alt = not release
            if release and self._alt_code is not None:
                value, self._alt_code = self._alt_code, None
                valid = value <= UNICODE_MAX and not 0xD800 <= value <= 0xDFFF
                self._on_key(Key(char=chr(value) if valid else NOT_A_CHARACTER))
        elif self.alt and not extended and code in _KEYPAD_DIGITS:
            if not release:  # bounded: one digit past the largest code point is enough
                value = (self._alt_code or 0) * 10 + _KEYPAD_DIGITS[code]
                self._alt_code = min(value, UNICODE_MAX + 1)
        elif code == _CAPS and not extended:
            if not release:
                self.caps_lock = not self.caps_lock
                self._set_leds()
        elif not release:
            key = self._translate(code, extended)
            if key is not None:
                self._on_key(key)

    def _translate(self, code: int, extended: bool) -> Key | None:
        if extended:
            name = _EXTENDED.get(code)
            if name == "\n":
                return Key(char="\n", ctrl=self.ctrl, alt=self.alt)
            return Key(name=name, ctrl=self.ctrl, alt=self.alt, shift=self.shift) if name else None
        if code in _FUNCTION_KEYS:
            return Key(name=_FUNCTION_KEYS[code], ctrl=self.ctrl, alt=self.alt)
        plain = _PLAIN.get(code)
        if plain is None:
            return None
        shifted = self.shift
        if plain.isalpha() and self.caps_lock:
            shifted = not shifted
        char = _SHIFTED[code] if shifted else plain
        return Key(char=char, ctrl=self.ctrl, alt=self.alt)

    def _set_leds(self) -> None:
        """0xED, then (after the keyboard's ACK) the LED byte."""
        self._pending_led = LED_CAPS if self.caps_lock else 0
        self._ports.write(DATA_PORT, 1, SET_LEDS)
