"""The 8042 keyboard controller and the PS/2 keyboard behind it.

Ports: 0x60 data (read: the output buffer; write: to the keyboard, or a controller command's
parameter), 0x64 status on read and controller command on write. Status bits: 0 OBF, 1 IBF
(always clear: we take each byte at once), 2 SYS (command byte bit 2), 3 A2 (the last write was
to 0x64), 4 keyboard not inhibited, 5 AUX data in the output buffer, 6 time-out.

The keyboard speaks scan code set 2 (or set 1 if asked); bytes wait in its 16-byte FIFO and move
to the controller's single output byte when that is empty. When command byte bit 6 is set (the
default, as a PC BIOS leaves it) the controller translates set 2 into set 1: each byte through
the IBM table, and an F0 break prefix folded into bit 7 of the next byte. IRQ1 follows "output
buffer holds keyboard-side data and command byte bit 0": its rising edge is what the edge-
triggered PIC sees, and reading 0x60 lowers it.

Host side: the channel "keyboard-key" takes (keycode, pressed), keycode naming a physical key
(see SET2_MAKE); LED changes go out on "keyboard-leds" as a bitmask (bit0 scroll, bit1 num,
bit2 caps). Typematic repeat runs in virtual time on the board's clock. There is no mouse:
commands for the AUX port are accepted and report the device missing (time-out, 0xFE).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from tradekernel.devices.base import Board, Device, check_state_version
from tradekernel.emu.bus import IrqLine
from tradekernel.emu.clock import Timer

log = logging.getLogger(__name__)

DATA_PORT = 0x60
STATUS_PORT = 0x64  # status on read, command on write
KEY_CHANNEL = "keyboard-key"
LED_CHANNEL = "keyboard-leds"

# Status register bits.
ST_OBF = 0x01
ST_IBF = 0x02
ST_SYS = 0x04
ST_A2 = 0x08
ST_UNINHIBITED = 0x10
ST_AUX = 0x20
ST_TIMEOUT = 0x40

# Command byte bits.
CB_KBD_IRQ = 0x01
CB_AUX_IRQ = 0x02
CB_SYS = 0x04
CB_KBD_DISABLED = 0x10
CB_AUX_DISABLED = 0x20
CB_TRANSLATE = 0x40
DEFAULT_COMMAND_BYTE = CB_KBD_IRQ | CB_SYS | CB_AUX_DISABLED | CB_TRANSLATE  # 0x65

# Output port bits (0xD0/0xD1).
OP_RESET_DEASSERTED = 0x01
OP_A20 = 0x02
OP_KBD_OBF = 0x10
OP_AUX_OBF = 0x20

# Keyboard replies.
ACK = 0xFA
RESEND = 0xFE
BAT_OK = 0xAA
ECHO = 0xEE
KEYBOARD_ID = (0xAB, 0x83)
OVERRUN_SET2 = 0x00  # set 1's 0xFF, once translated
FIFO_SIZE = 16
DEFAULT_TYPEMATIC = 0x2B  # 500 ms delay, 10.9 characters per second
NATIVE_SETS = (1, 2)

# Scan code set 2 make codes of the physical keys the host can press (US 104-key layout).
# Extended keys carry the E0 prefix; a break inserts F0 before the last byte.
SET2_MAKE: dict[str, bytes] = {
    "esc": b"\x76", "f1": b"\x05", "f2": b"\x06", "f3": b"\x04", "f4": b"\x0c",
    "f5": b"\x03", "f6": b"\x0b", "f7": b"\x83", "f8": b"\x0a", "f9": b"\x01",
    "f10": b"\x09", "f11": b"\x78", "f12": b"\x07",
    "backquote": b"\x0e", "1": b"\x16", "2": b"\x1e", "3": b"\x26", "4": b"\x25",
    "5": b"\x2e", "6": b"\x36", "7": b"\x3d", "8": b"\x3e", "9": b"\x46", "0": b"\x45",
    "minus": b"\x4e", "equals": b"\x55", "backspace": b"\x66",
    "tab": b"\x0d", "q": b"\x15", "w": b"\x1d", "e": b"\x24", "r": b"\x2d", "t": b"\x2c",
    "y": b"\x35", "u": b"\x3c", "i": b"\x43", "o": b"\x44", "p": b"\x4d",
    "lbracket": b"\x54", "rbracket": b"\x5b", "backslash": b"\x5d",
    "capslock": b"\x58", "a": b"\x1c", "s": b"\x1b", "d": b"\x23", "f": b"\x2b",
    "g": b"\x34", "h": b"\x33", "j": b"\x3b", "k": b"\x42", "l": b"\x4b",
    "semicolon": b"\x4c", "quote": b"\x52", "enter": b"\x5a",
    "lshift": b"\x12", "z": b"\x1a", "x": b"\x22", "c": b"\x21", "v": b"\x2a",
    "b": b"\x32", "n": b"\x31", "m": b"\x3a", "comma": b"\x41", "period": b"\x49",
    "slash": b"\x4a", "rshift": b"\x59", "intlbackslash": b"\x61",
    "lctrl": b"\x14", "lgui": b"\xe0\x1f", "lalt": b"\x11", "space": b"\x29",
    "ralt": b"\xe0\x11", "rgui": b"\xe0\x27", "menu": b"\xe0\x2f", "rctrl": b"\xe0\x14",
    "insert": b"\xe0\x70", "home": b"\xe0\x6c", "pageup": b"\xe0\x7d",
    "delete": b"\xe0\x71", "end": b"\xe0\x69", "pagedown": b"\xe0\x7a",
    "up": b"\xe0\x75", "left": b"\xe0\x6b", "down": b"\xe0\x72", "right": b"\xe0\x74",
    "numlock": b"\x77", "scrolllock": b"\x7e",
    "kpslash": b"\xe0\x4a", "kpstar": b"\x7c", "kpminus": b"\x7b", "kpplus": b"\x79",
    "kpenter": b"\xe0\x5a", "kpperiod": b"\x71",
    "kp0": b"\x70", "kp1": b"\x69", "kp2": b"\x72", "kp3": b"\x7a", "kp4": b"\x6b",
    "kp5": b"\x73", "kp6": b"\x74", "kp7": b"\x6c", "kp8": b"\x75", "kp9": b"\x7d",
    "printscreen": b"\xe0\x12\xe0\x7c",
}  # fmt: skip
# Pause has no break code and never repeats.
PAUSE_MAKE_SET2 = b"\xe1\x14\x77\xe1\xf0\x14\xf0\x77"
KEY_NAMES: frozenset[str] = frozenset(SET2_MAKE) | {"pause"}

# The 8042's set 2 -> set 1 translation (IBM PC/AT): one row per 16 input bytes for 0x00-0x7F;
# 0x80-0xFF pass unchanged except 0x83 (F7 in set 2), which becomes set 1's 0x41.
_TRANSLATE_ROWS = (
    "ff 43 41 3f 3d 3b 3c 58 64 44 42 40 3e 0f 29 59",
    "65 38 2a 70 1d 10 02 5a 66 71 2c 1f 1e 11 03 5b",
    "67 2e 2d 20 12 05 04 5c 68 39 2f 21 14 13 06 5d",
    "69 31 30 23 22 15 07 5e 6a 72 32 24 16 08 09 5f",
    "6b 33 25 17 18 0b 0a 60 6c 34 35 26 27 19 0c 61",
    "6d 73 28 74 1a 0d 62 6e 3a 36 1c 1b 75 2b 63 76",
    "55 56 77 78 79 7a 0e 7b 7c 4f 7d 4b 47 7e 7f 6f",
    "52 53 50 4c 4d 48 01 45 57 4e 51 4a 37 49 46 54",
)
SET2_TO_SET1 = (
    bytes.fromhex(" ".join(_TRANSLATE_ROWS)) + bytes(range(0x80, 0x83)) + b"\x41"
    + bytes(range(0x84, 0x100))
)  # fmt: skip


def typematic_timing_ns(value: int) -> tuple[int, int]:
    """(delay, period) in ns for a 0xF3 parameter: delay (n+1)*250 ms, period per the PS/2 spec
    (8 + bits 0-2) * 2**bits 3-4 * 4.17 ms (30 cps down to 2 cps)."""
    delay_ns = ((value >> 5) & 3) * 250_000_000 + 250_000_000
    period_ns = (8 + (value & 7)) * (1 << ((value >> 3) & 3)) * 4_170_000
    return delay_ns, period_ns


def set1_make(set2_make: bytes) -> bytes:
    """A key's set 1 make code: its set 2 bytes through the controller's table (E0/E1 pass)."""
    return bytes(SET2_TO_SET1[b] for b in set2_make)


class PS2Keyboard:
    """The keyboard's own microcontroller: scan code generation, its FIFO, its command set.

    It hands bytes to the controller through `fifo`; `wake` is called when bytes were added.
    """

    def __init__(self, board: Board, wake: Callable[[], None]) -> None:
        self._board = board
        self._wake = wake
        self.fifo: deque[int] = deque()
        self._repeat_timer: Timer | None = None
        self.reset()

    def reset(self) -> None:
        """Power-on / 0xFF state: set 2, default typematic, scanning on, LEDs off."""
        self.fifo.clear()
        self.scan_set = 2
        self.typematic = DEFAULT_TYPEMATIC
        self.scanning = True
        self.leds = 0
        self.expecting: int | None = None  # command waiting for its parameter byte
        self.last_sent = 0
        self.held: set[str] = set()
        self._stop_repeat()
        self.repeat_key: str | None = None
        self.repeat_deadline = 0

    # -- host side ---------------------------------------------------------------------------

    def key(self, keycode: str, pressed: bool) -> None:
        """A physical key went down or up; unknown names raise ValueError."""
        if keycode not in KEY_NAMES:
            raise ValueError(f"unknown key name {keycode!r}")
        if pressed == (keycode in self.held):
            return  # host auto-repeat or a duplicate release: typematic is ours to do
        if pressed:
            self.held.add(keycode)
        else:
            self.held.discard(keycode)
        if not self.scanning:
            return
        if keycode == "pause":
            if pressed:
                self._send(PAUSE_MAKE_SET2 if self.scan_set == 2 else b"\xe1\x1d\x45\xe1\x9d\xc5")
            return
        self._send(self._code(keycode, pressed))
        if pressed:
            self._start_repeat(keycode)
        elif keycode == self.repeat_key:
            self._stop_repeat()

    def _code(self, keycode: str, pressed: bool) -> bytes:
        make = SET2_MAKE[keycode]
        if keycode == "printscreen":
            if self.scan_set == 1:
                return b"\xe0\x2a\xe0\x37" if pressed else b"\xe0\xb7\xe0\xaa"
            return make if pressed else b"\xe0\xf0\x7c\xe0\xf0\x12"
        if self.scan_set == 1:
            code = set1_make(make)
            return code if pressed else code[:-1] + bytes([code[-1] | 0x80])
        return make if pressed else make[:-1] + b"\xf0" + make[-1:]

    def _start_repeat(self, keycode: str) -> None:
        self._stop_repeat()
        delay_ns, _ = typematic_timing_ns(self.typematic)
        self.repeat_key = keycode
        self._schedule_repeat(self._board.clock.now_ns() + delay_ns)

    def _schedule_repeat(self, deadline: int) -> None:
        self.repeat_deadline = deadline
        self._repeat_timer = self._board.clock.call_at(deadline, self._repeat)

    def _stop_repeat(self) -> None:
        if self._repeat_timer is not None:
            self._repeat_timer.cancel()
        self._repeat_timer = None
        self.repeat_key = None

    def _repeat(self) -> None:
        key = self.repeat_key
        if key is None or key not in self.held or not self.scanning:
            self._repeat_timer = None
            self.repeat_key = None
            return
        self._send(self._code(key, True))
        _, period_ns = typematic_timing_ns(self.typematic)
        self._schedule_repeat(self.repeat_deadline + period_ns)

    # -- controller side ---------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        """Queue one whole sequence, or the overrun code if it does not fit."""
        if len(self.fifo) + len(data) <= FIFO_SIZE:
            self.fifo.extend(data)
        elif self.fifo and self.fifo[-1] != OVERRUN_SET2 and len(self.fifo) < FIFO_SIZE:
            self.fifo.append(OVERRUN_SET2 if self.scan_set == 2 else 0xFF)
        self._wake()

    def _reply(self, *data: int) -> None:
        if data:
            self.last_sent = data[-1]
        self.fifo.extend(data)
        self._wake()

    def command(self, value: int) -> None:
        """A byte from the host (port 0x60 write)."""
        if self.expecting is not None and value < 0x80:
            self._parameter(self.expecting, value)
            return
        self.expecting = None
        if value == 0xED or value == 0xF3 or value == 0xF0:
            self.expecting = value
            self._reply(ACK)
        elif value == 0xEE:
            self._reply(ECHO)
        elif value == 0xF2:
            self._reply(ACK, *KEYBOARD_ID)
        elif value == 0xF4:
            self.fifo.clear()
            self.scanning = True
            self._reply(ACK)
        elif value in (0xF5, 0xF6):
            self.fifo.clear()
            self.scan_set, self.typematic = 2, DEFAULT_TYPEMATIC
            self.scanning = value == 0xF6
            self._stop_repeat()
            self._reply(ACK)
        elif value == 0xFE:
            self._reply(self.last_sent)
        elif value == 0xFF:
            self.reset()
            self._board.channels.send(LED_CHANNEL, 0)
            self._reply(ACK, BAT_OK)
        else:
            self._reply(RESEND)

    def _parameter(self, command: int, value: int) -> None:
        self.expecting = None
        if command == 0xED:
            self.leds = value & 0x07
            self._board.channels.send(LED_CHANNEL, self.leds)
            self._reply(ACK)
        elif command == 0xF3:
            self.typematic = value & 0x7F
            self._reply(ACK)
        elif value == 0:
            self._reply(ACK, self.scan_set)
        elif value in NATIVE_SETS:
            self.scan_set = value
            self._reply(ACK)
        else:
            self._reply(RESEND)  # set 3 is not implemented by this keyboard

    def state(self) -> dict[str, Any]:
        return {
            "fifo": bytes(self.fifo),
            "scan_set": self.scan_set,
            "typematic": self.typematic,
            "scanning": self.scanning,
            "leds": self.leds,
            "expecting": -1 if self.expecting is None else self.expecting,
            "last_sent": self.last_sent,
            "held": sorted(self.held),
            "repeat_key": self.repeat_key or "",
            "repeat_deadline": self.repeat_deadline,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self._stop_repeat()
        self.fifo = deque(state["fifo"])
        self.scan_set = int(state["scan_set"])
        self.typematic = int(state["typematic"])
        self.scanning = bool(state["scanning"])
        self.leds = int(state["leds"])
        self.expecting = None if state["expecting"] < 0 else int(state["expecting"])
        self.last_sent = int(state["last_sent"])
        self.held = {k for k in state["held"] if k in KEY_NAMES}
        if state["repeat_key"]:
            self.repeat_key = state["repeat_key"]
            self._schedule_repeat(int(state["repeat_deadline"]))


class I8042(Device):
    """The keyboard controller (ports 0x60/0x64, IRQ1, A20 and reset lines) with its keyboard."""

    name = "i8042"
    STATE_VERSION = 1

    def __init__(self) -> None:
        self._board: Board | None = None
        self.keyboard: PS2Keyboard | None = None

    def attach(self, board: Board) -> None:
        self._board = board
        self._kbd_irq: IrqLine = board.irq(1)
        self._aux_irq: IrqLine = board.irq(12)
        board.ports.claim(DATA_PORT, 1, self.name, self._read_data, self._write_data)
        board.ports.claim(STATUS_PORT, 1, self.name, self._read_status, self._write_command)
        board.channels.listen(KEY_CHANNEL, self._on_host_key)
        self.keyboard = PS2Keyboard(board, self._refill)
        self.reset()

    def reset(self) -> None:
        self.ram = bytearray(32)  # byte 0 is the command byte
        self.ram[0] = DEFAULT_COMMAND_BYTE
        self.output: int | None = None
        self.output_aux = False
        self.controller_queue: deque[tuple[int, bool]] = deque()  # (byte, is AUX data)
        self.last_was_command = False
        self.timeout = False
        self.pending_command: int | None = None  # controller command waiting for its data
        self.break_prefix = False  # translation saw F0: the next byte gets bit 7
        self.last_read = 0
        self._keyboard().reset()
        self._update_irqs()

    # -- helpers -----------------------------------------------------------------------------

    def _keyboard(self) -> PS2Keyboard:
        if self.keyboard is None:
            raise RuntimeError("i8042 used before attach()")
        return self.keyboard

    @property
    def command_byte(self) -> int:
        return self.ram[0]

    def _on_host_key(self, payload: object) -> None:
        """Channel entry: a malformed event is logged and dropped, never raised into the UI."""
        try:
            keycode, pressed = payload  # type: ignore[misc]
            self._keyboard().key(str(keycode), bool(pressed))
        except (TypeError, ValueError) as exc:
            log.warning("i8042: dropped host key event %r: %s", payload, exc)

    def press(self, keycode: str, pressed: bool = True) -> None:
        """Direct entry for tests and harnesses; unknown keys raise ValueError."""
        self._keyboard().key(keycode, pressed)

    def _respond(self, value: int, aux: bool = False) -> None:
        self.controller_queue.append((value & 0xFF, aux))
        self._refill()

    def _refill(self) -> None:
        """Move the next byte into the output buffer if it is free."""
        if self.output is None:
            if self.controller_queue:
                self.output, self.output_aux = self.controller_queue.popleft()
            elif not self.ram[0] & CB_KBD_DISABLED:
                self._take_from_keyboard()
        self._update_irqs()

    def _take_from_keyboard(self) -> None:
        fifo = self._keyboard().fifo
        while fifo:
            byte = fifo.popleft()
            if not self.ram[0] & CB_TRANSLATE:
                self.output, self.output_aux = byte, False
                return
            if byte == 0xF0:
                self.break_prefix = True
                continue
            translated = SET2_TO_SET1[byte]
            if self.break_prefix:
                translated |= 0x80
                self.break_prefix = False
            self.output, self.output_aux = translated, False
            return

    def _update_irqs(self) -> None:
        full = self.output is not None
        self._kbd_irq.set(full and not self.output_aux and bool(self.ram[0] & CB_KBD_IRQ))
        self._aux_irq.set(full and self.output_aux and bool(self.ram[0] & CB_AUX_IRQ))

    def _output_port(self) -> int:
        board = self._board
        a20 = board is not None and board.signals.a20_enabled()
        full = self.output is not None
        return (
            OP_RESET_DEASSERTED
            | (OP_A20 if a20 else 0)
            | (OP_KBD_OBF if full and not self.output_aux else 0)
            | (OP_AUX_OBF if full and self.output_aux else 0)
            | 0xC0  # keyboard clock and data lines idle high
        )

    def _write_output_port(self, value: int) -> None:
        board = self._board
        if board is None:
            return
        board.signals.set_a20(bool(value & OP_A20))
        if not value & OP_RESET_DEASSERTED:
            board.signals.reset()

    # -- port handlers -----------------------------------------------------------------------

    def _read_status(self, port: int, size: int) -> int:
        full = self.output is not None
        return (
            (ST_OBF if full else 0)
            | (ST_SYS if self.ram[0] & CB_SYS else 0)
            | (ST_A2 if self.last_was_command else 0)
            | ST_UNINHIBITED
            | (ST_AUX if full and self.output_aux else 0)
            | (ST_TIMEOUT if self.timeout else 0)
        )

    def _read_data(self, port: int, size: int) -> int:
        """Reading takes the byte (an empty buffer repeats the last one, as the chip does)."""
        value = self.output
        if value is None:
            return self.last_read
        self.last_read = value
        self.output = None
        self.timeout = False
        self._update_irqs()  # the line drops, so a following byte makes a fresh edge
        self._refill()
        return value

    def _write_data(self, port: int, size: int, value: int) -> None:
        self.last_was_command = False
        command = self.pending_command
        self.pending_command = None
        if command is None:
            self._keyboard().command(value)
        elif 0x60 <= command <= 0x7F:
            self.ram[command - 0x60] = value
            self._refill()
        elif command == 0xD1:
            self._write_output_port(value)
        elif command == 0xD2:
            self._respond(value)
        elif command == 0xD3:
            self._respond(value, aux=True)
        elif command == 0xD4:
            self.timeout = True  # no mouse answers
            self._respond(RESEND, aux=True)

    def _write_command(self, port: int, size: int, value: int) -> None:
        self.last_was_command = True
        self.pending_command = None
        if 0x20 <= value <= 0x3F:
            self._respond(self.ram[value - 0x20])
        elif 0x60 <= value <= 0x7F or value in (0xD1, 0xD2, 0xD3, 0xD4):
            self.pending_command = value
        elif value == 0xA7:
            self.ram[0] |= CB_AUX_DISABLED
        elif value == 0xA8:
            self.ram[0] &= ~CB_AUX_DISABLED
        elif value == 0xAA:
            self._respond(0x55)
        elif value == 0xAB:
            self._respond(0x00)
        elif value == 0xAD:
            self.ram[0] |= CB_KBD_DISABLED
        elif value == 0xAE:
            self.ram[0] &= ~CB_KBD_DISABLED
            self._refill()
        elif value == 0xD0:
            self._respond(self._output_port())
        elif value in (0xDD, 0xDF) and self._board is not None:
            self._board.signals.set_a20(value == 0xDF)
        elif value >= 0xF0:
            if not value & 0x01:  # pulse output port bit 0: the reset line
                if self._board is not None:
                    self._board.signals.reset()
        else:
            log.debug("i8042: ignored controller command %#04x", value)

    # -- snapshots ---------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "version": self.STATE_VERSION,
            "ram": bytes(self.ram),
            "output": -1 if self.output is None else self.output,
            "output_aux": self.output_aux,
            "controller_queue": [[b, aux] for b, aux in self.controller_queue],
            "last_was_command": self.last_was_command,
            "timeout": self.timeout,
            "pending_command": -1 if self.pending_command is None else self.pending_command,
            "break_prefix": self.break_prefix,
            "last_read": self.last_read,
            "keyboard": self._keyboard().state(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        check_state_version(self, state)
        try:
            self.ram = bytearray(state["ram"])
            if len(self.ram) != 32:
                raise ValueError("ram must be 32 bytes")
            self.output = None if state["output"] < 0 else int(state["output"])
            self.output_aux = bool(state["output_aux"])
            self.controller_queue = deque((int(b), bool(a)) for b, a in state["controller_queue"])
            self.last_was_command = bool(state["last_was_command"])
            self.timeout = bool(state["timeout"])
            pending = int(state["pending_command"])
            self.pending_command = None if pending < 0 else pending
            self.break_prefix = bool(state["break_prefix"])
            self.last_read = int(state["last_read"])
            self._keyboard().restore(state["keyboard"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{self.name}: malformed snapshot: {exc}") from exc
        self._update_irqs()
