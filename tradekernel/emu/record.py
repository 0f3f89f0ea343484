"""Record and replay: every input from outside a deterministic machine, and the run again.

Contract. A deterministic machine (emu/machine.py) given the same inputs at the same points runs
the same bit for bit. `Recorder` writes down every input from outside, where it entered:
  - keys: each transition on the "keyboard-key" channel, sent between CPU slices (a UI's posted
    work, a typist's timer);
  - network frames for the guest: each frame a backend hands the Link (`Link.on_input`), either
    inside the guest's transmit (the user NAT answers ARP and DHCP there: tagged with the guest
    frame's number) or at an idle poll. That is where they enter the machine, not always where
    they reach the NIC: while the NIC's ring is full the Link holds them and passes them on
    inside the guest driver's port write that frees room (hostnet/link.py). The Link and the
    NIC are deterministic, so a replay that hands the Link each frame at its recorded point
    sees every held frame reach the NIC at the same instruction as in the recording;
  - the machine's identity: RAM size, the RTC's start instant (the host clock's seed), and the
    size and sha256 of the disk and diskette images as they were at power-on; a run that
    started from a snapshot (`tk boot --load-state`) names the snapshot file the same way, and
    its replay loads that file before the first pass (a loaded snapshot runs on exactly as
    the machine that was saved: emu/snapshot.py);
  - the host's stop (a window closed, end of piped input, --timeout): the end of the run.
Nothing else may reach the machine. A host that drives a device itself between runs of the
machine loop (a test reading the guest's files through the kernel: ATA commands, a page cache
filled, none of it in the recording) would make any replay diverge, so the recorder compares
every device's state where one `machine.run` returned with where the next one starts, and
`finish` refuses the recording with one line naming the device the host changed.
A pass of the machine loop (between slices) is at a position (instructions retired, virtual
ns, S): S is twice the number of running (not halted) passes at that instant before this one,
plus one for a halted pass that is not the first at its point. The passes a halted machine makes
while it waits on the host clock, which no replay can repeat, are all alike: they count once.
A key is sent at a pass either before its due timers (work posted by a UI), among them (a
typist's timer) or in the idle feeders after it (a test harness); a replay sends it at the same
place.

It also writes what a replay must reproduce and what checks it: every slice boundary (position
and a CRC of the general registers and EIP), a state hash (CPU registers, RAM, every device's
state) and a screen hash every CHECK_INTERVAL_INSTRUCTIONS or CHECK_INTERVAL_NS of virtual
time, whichever comes first, and both at the end. Host
timers (an input pacer's polls, a typist's retries) end slices too: a replay does not run them,
so the recording notes the earliest host timer's deadline whenever it changes and the replay
keeps a timer that does nothing there: every slice gets the same instruction budget, and the
slices come out the same (Unicorn's count is not always exact after an I/O hook, so a replay
must give the same budgets rather than aim at the recorded boundaries).

`Replayer` builds the machine again, checks the images' identity, feeds each input at its
position (keys at the loop pass, frames from a replay backend in the Link's place, which go
through the Link's back-pressure as they did in the recording) and compares every boundary,
check and the end. The first difference stops the replay; `divergence` holds one line naming
the first instruction count where it was seen and the last one known to agree.

Where it hooks in, without costing a run that records nothing: the recorder and the replayer
wrap the clock's `run_due` (called once per pass of the machine loop, between slices) and
listen on the key channel; the recorder listens on the Link (frames the guest sends, frames a
backend hands it, the end of each guest transmit) and the replayer replaces the Link's backend;
the recorder also wraps `clock.call_at` to tell host timers from devices' and holds the
machine's earlier-deadline listener back while a host timer is set. Recording needs
deterministic time. `Replayer.run(until_ns=T)` stops at the first boundary at or after virtual
time T and leaves the machine there (the hook for a debugger such as the GDB stub).

File: MAGIC, format version (u16), header length (u32), JSON header, body length (u64),
zlib-compressed body of tagged records, then the SHA-256 of everything before it. The header's
"body_bytes" is the records' length once decompressed. A file of another version, or one whose
digest, lengths or records do not hold, is refused whole with one `RecordingError` line before
anything is built. Loading streams the file (the digest and the inflation read it in CHUNK
pieces, never the whole file at once) and bounds what it allocates by the header: at most
"body_bytes" of records, which may not pass MAX_RECORDS nor what zlib could make of the body
(ZLIB_MAX_RATIO); a body that inflates to more is refused at the first byte beyond, so a
hostile file (a zip bomb) costs at most what it declared.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from tradekernel.emu.clock import Timer
from tradekernel.emu.cpu import EFLAGS
from tradekernel.emu.machine import Machine, StopInfo
from tradekernel.emu.pc import Pc, PcConfig
from tradekernel.hostnet.link import MAX_FRAME

MAGIC = b"TKREC\n"
FORMAT_VERSION = 2  # 2: the header says the records' decompressed length (body_bytes)
# A state hash every this many instructions (an idle guest adds none): hashing 32 MiB of RAM
# takes ~30 ms, ~2% of the ~1.2 s a deterministic machine needs to run them.
CHECK_INTERVAL_INSTRUCTIONS = 100_000_000
# ...or every this much virtual time: the OS is Python behind hypercalls, so an interactive
# session retires few guest instructions (bench/bench_record.py: ~10 s virtual per 2 s wall).
CHECK_INTERVAL_NS = 5_000_000_000
KEY_CHANNEL = "keyboard-key"
DEVICE_MODULES = "tradekernel.devices."  # timers whose callbacks live here are the machine's
MAX_HEADER = 1 << 20  # a header longer than this is a damaged file, not read
MAX_BODY = 1 << 34  # compressed body bound (16 GiB)
# Records a recording may declare: 1 GiB is hours of typing or ~15 min of a busy network.
MAX_RECORDS = 1 << 30
ZLIB_MAX_RATIO = 1032  # deflate's best case: no honest body inflates by more
CHUNK = 1 << 20  # bytes read (and inflated) at a time when loading
DIGEST = 32  # the file's SHA-256
HASH = 20  # state and screen hashes (SHA-1: a divergence check, not a defence)

# Record tags and their fixed parts (little endian): N = instructions, T = virtual ns, S above.
_B = struct.Struct("<QQI")  # boundary: N, T, CRC of the registers
_D = struct.Struct("<Q")  # the earliest host timer's deadline from this pass on (NO_DEADLINE)
NO_DEADLINE = (1 << 64) - 1
_K = struct.Struct("<QQIBB")  # key: N, T, S, flags (KEY_*), name length
_FI = struct.Struct("<QQIH")  # frame at an idle poll: N, T, S, length
_FS = struct.Struct("<QQQH")  # frame inside guest transmit number k: k, N, T, length
_C = struct.Struct("<QQI20s20s")  # check: N, T, S, state hash, screen hash
_E = struct.Struct("<QQI20s20sB")  # end: N, T, S, state, screen, reason length
_REGS = struct.Struct("<9I")
KEY_PRESSED, KEY_FROM_TIMER, KEY_AT_IDLE = 1, 2, 4


class RecordingError(Exception):
    """A recording that cannot be used: one line saying why."""


Position = tuple[int, int, int]


# ---- what is compared ---------------------------------------------------------------------
def register_crc(machine: Machine) -> int:
    """The general registers and EIP: cheap enough for every slice boundary."""
    cpu = machine.cpu
    return zlib.crc32(_REGS.pack(*cpu.gprs32(), cpu.eip()))


def state_hash(pc: Pc) -> bytes:
    """A digest of the CPU registers, guest RAM and every device's state."""
    machine = pc.machine
    digest = hashlib.sha1()
    registers = machine.cpu.all_registers()
    digest.update(repr(sorted(registers.items())).encode())
    digest.update(repr(machine.cpu.read(EFLAGS)).encode())
    # RAM by CRC-32: half the time of SHA-1 over 32 MiB, and any change of up to 32 bits
    # (a poked byte, a wrong word) always shows; this detects divergence, it is no defence.
    digest.update(zlib.crc32(machine.cpu.ram).to_bytes(4, "little"))
    for device in machine.devices:
        digest.update(device.name.encode())
        digest.update(repr(device.state()).encode())
    return digest.digest()


def device_digests(machine: Machine) -> dict[str, bytes]:
    """Each device's state by name, digested (what the host must not change between runs)."""
    return {device.name: hashlib.sha1(repr(device.state()).encode()).digest()
            for device in machine.devices}  # fmt: skip


def screen_hash(pc: Pc) -> bytes:
    screen = pc.vga.text_screen()
    return hashlib.sha1(
        screen.cells + bytes((screen.cursor_row, screen.cursor_col, screen.cursor_visible))
    ).digest()


def image_identity(path: str | os.PathLike[str] | None) -> dict[str, Any] | None:
    """Size and SHA-256 of a disk image: what a replay must be given again."""
    if path is None:
        return None
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as image:
        while chunk := image.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return {"name": Path(path).name, "size": size, "sha256": digest.hexdigest()}


# ---- the loop pass ----------------------------------------------------------------------------
class _Passes:
    """Positions of the machine loop's passes, from a wrapper around `clock.run_due` (called
    once per pass, between slices). `before` runs ahead of the due timers, `after` behind them."""

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self.last: Position = (-1, -1, 0)
        self.new_instant = False  # the last pass was the first at its (instructions, ns)
        self.idle_at_pass = 0  # machine.idle_count at the last pass
        self.in_pass = False  # inside run_due: timers of this pass are firing
        self.slice_start: tuple[int, int] = (0, 0)
        clock = machine.clock
        inner = clock.run_due
        self.before: Callable[[Position], None] = lambda _pos: None
        self.after: Callable[[Position], None] = lambda _pos: None

        def run_due() -> int:
            position = self.upcoming()
            self.new_instant = position[:2] != self.last[:2]
            self.last = position
            self.idle_at_pass = machine.idle_count
            self.slice_start = position[:2]
            self.before(position)
            self.in_pass = True
            try:
                return inner()
            finally:
                self.in_pass = False
                self.after(position)

        clock.run_due = run_due  # type: ignore[method-assign]

    def upcoming(self) -> Position:
        """The position of the pass about to run (or running: then the same as `last`)."""
        if self.in_pass:
            return self.last
        machine = self.machine
        point = (machine.instructions, machine.clock.now_ns())
        last = self.last
        if point != last[:2]:
            return (*point, 0)
        if machine.halted:
            return (*point, last[2] | 1)
        return (*point, (last[2] | 1) + 1)

    def live(self) -> tuple[int, int]:
        """(instructions, virtual ns) now, in the middle of a slice too (from a CPU hook)."""
        now = self.machine.clock.now_ns()
        n0, t0 = self.slice_start
        return n0 + max(0, now - t0) // self.machine.config.ns_per_instruction, now


# ---- the file ---------------------------------------------------------------------------------
@dataclass
class Recording:
    header: dict[str, Any]
    body: bytes

    def save(self, path: str | os.PathLike[str]) -> None:
        header = json.dumps({**self.header, "body_bytes": len(self.body)}, sort_keys=True)
        header = header.encode()
        body = zlib.compress(self.body, 6)
        data = b"".join([
            MAGIC, struct.pack("<HI", FORMAT_VERSION, len(header)), header,
            struct.pack("<Q", len(body)), body,
        ])  # fmt: skip
        tmp = Path(f"{path}.tmp")
        tmp.write_bytes(data + hashlib.sha256(data).digest())
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Recording:
        """The recording at `path`, read as a stream (see the module docstring)."""
        try:
            with open(path, "rb") as file:
                return cls._load(file, str(path))
        except OSError as error:
            raise RecordingError(f"{path}: {error.strerror or error}") from error

    @classmethod
    def _load(cls, file: BinaryIO, path: str) -> Recording:
        size = os.fstat(file.fileno()).st_size
        fixed = len(MAGIC) + 6
        prefix = file.read(fixed)
        if not prefix.startswith(MAGIC[: len(prefix)]) or not prefix:
            raise RecordingError(f"{path}: not a TradeKernel recording")
        if size < fixed + 8 + DIGEST:
            raise RecordingError(f"{path}: damaged recording (truncated)")
        version, header_len = struct.unpack_from("<HI", prefix, len(MAGIC))
        if version != FORMAT_VERSION:
            raise RecordingError(
                f"{path}: recording format version {version}, this tk reads {FORMAT_VERSION}"
            )
        digest = hashlib.sha256(prefix)
        for chunk in _chunks(file, size - DIGEST - fixed):
            digest.update(chunk)
        if digest.digest() != file.read(DIGEST):
            raise RecordingError(f"{path}: damaged recording (checksum mismatch)")
        if header_len > MAX_HEADER or fixed + header_len + 8 > size - DIGEST:
            raise RecordingError(f"{path}: damaged recording (header length)")
        file.seek(fixed)
        header_data = file.read(header_len)
        (body_len,) = struct.unpack("<Q", file.read(8))
        start = fixed + header_len + 8
        if body_len > MAX_BODY or start + body_len != size - DIGEST:
            raise RecordingError(f"{path}: damaged recording (body length)")
        try:
            header = json.loads(header_data)
        except ValueError as error:
            raise RecordingError(f"{path}: damaged recording (header: {error})") from error
        declared = header.get("body_bytes") if isinstance(header, dict) else None
        if not isinstance(header, dict) or type(declared) is not int or declared < 0:
            raise RecordingError(f"{path}: damaged recording (header)")
        if declared > MAX_RECORDS or declared > body_len * ZLIB_MAX_RATIO:
            raise RecordingError(f"{path}: damaged recording (declares {declared} bytes of "
                                 f"records from a {body_len}-byte body; at most "
                                 f"{MAX_RECORDS} are read)")  # fmt: skip
        return cls(header, _inflate(file, body_len, declared, path))

    def events(self) -> list[tuple]:
        """The body as tagged tuples, in order; RecordingError if a record does not parse."""
        body, offset, out = self.body, 0, []
        try:
            while offset < len(body):
                tag = body[offset : offset + 1]
                offset += 1
                if tag == b"B":
                    n, t, crc = _B.unpack_from(body, offset)
                    offset += _B.size
                    out.append(("B", (n, t), crc))
                elif tag == b"D":
                    (deadline,) = _D.unpack_from(body, offset)
                    offset += _D.size
                    out.append(("D", None if deadline == NO_DEADLINE else deadline))
                elif tag == b"K":
                    n, t, s, flags, length = _K.unpack_from(body, offset)
                    offset += _K.size
                    name = body[offset : offset + length].decode("ascii")
                    if len(name) != length:
                        raise ValueError("key name cut short")
                    offset += length
                    out.append(("K", (n, t, s), (name, bool(flags & KEY_PRESSED)),
                                flags & (KEY_FROM_TIMER | KEY_AT_IDLE)))  # fmt: skip
                elif tag == b"f":
                    n, t, s, length = _FI.unpack_from(body, offset)
                    offset += _FI.size
                    frame = body[offset : offset + length]
                    offset += length
                    out.append(("f", (n, t, s), frame))
                elif tag == b"F":
                    k, n, t, length = _FS.unpack_from(body, offset)
                    offset += _FS.size
                    frame = body[offset : offset + length]
                    offset += length
                    out.append(("F", k, (n, t), frame))
                elif tag in (b"C", b"E"):
                    layout = _C if tag == b"C" else _E
                    n, t, s, state, screen, *rest = layout.unpack_from(body, offset)
                    offset += layout.size
                    reason = ""
                    if rest:
                        reason = body[offset : offset + rest[0]].decode("ascii")
                        offset += rest[0]
                    out.append((tag.decode(), (n, t, s), state, screen, reason))
                else:
                    raise ValueError(f"unknown record tag {tag!r} at byte {offset - 1}")
                if offset > len(body):
                    raise ValueError("last record cut short")
        except (struct.error, ValueError, UnicodeDecodeError) as error:
            raise RecordingError(f"damaged recording body: {error}") from error
        return out


def _chunks(file: BinaryIO, length: int) -> Iterator[bytes]:
    """`length` bytes of `file` from where it stands, CHUNK at a time."""
    while length > 0:
        chunk = file.read(min(CHUNK, length))
        if not chunk:
            raise RecordingError(f"{file.name}: damaged recording (truncated)")
        length -= len(chunk)
        yield chunk


def _inflate(file: BinaryIO, body_len: int, declared: int, path: str) -> bytes:
    """The records: the next `body_len` bytes of `file` inflated, which must come to exactly
    `declared` bytes; never more than one byte past it is produced."""
    inflater = zlib.decompressobj()
    body = bytearray()
    try:
        for chunk in _chunks(file, body_len):
            body += inflater.decompress(chunk, declared - len(body) + 1)
            if len(body) > declared:
                raise ValueError(f"records beyond the {declared} bytes its header declares")
        if not inflater.eof or inflater.unused_data or len(body) != declared:
            raise ValueError(f"records cut short: {len(body)} of {declared} bytes")
    except (ValueError, zlib.error) as error:
        raise RecordingError(f"{path}: damaged recording ({error})") from error
    return bytes(body)


# ---- recording ------------------------------------------------------------------------------
class Recorder:
    """Records a deterministic `Pc` from power-on, or from the snapshot it was just loaded
    from; `finish(stop)` then `save(path)`."""

    def __init__(
        self,
        pc: Pc,
        check_interval: int = CHECK_INTERVAL_INSTRUCTIONS,
        scratch_disk: bool = False,
        check_interval_ns: int = CHECK_INTERVAL_NS,
        snapshot: str | os.PathLike[str] | None = None,
    ) -> None:
        """`scratch_disk`: the disk is a fresh OS disk made for this run (`tk boot` without
        --disk); a replay without --disk makes another, the same byte for byte. `snapshot`:
        the file `pc` was loaded from (its identity goes in the header)."""
        if not pc.config.deterministic:
            raise RecordingError("recording needs deterministic time (--deterministic)")
        self.pc = pc
        machine = self.machine = pc.machine
        config = pc.config
        start = config.start_time
        self.header: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "ram_mib": config.ram_mib,
            "start_time": None if start is None else start.isoformat(),
            "disk": image_identity(config.disk),
            "scratch_disk": scratch_disk,
            "floppy": image_identity(config.floppy),
            "snapshot": image_identity(snapshot),
            "read_only": config.read_only,
            "nic": pc.nic is not None,
            "mac": config.mac.hex(),
            "check_interval_instructions": check_interval,
            "check_interval_ns": check_interval_ns,
        }
        self.body = bytearray()
        self.interval = (check_interval, check_interval_ns)
        self._next_check = self.interval
        self.frames_sent = 0
        self.in_transmit = False
        self._idle_feeders_done = False
        self.passes = _Passes(machine)
        self.passes.before = self._pass
        self.passes.after = self._host_deadline
        self._host_timers: list[tuple[int, int, Timer]] = []
        self._host_order = itertools.count()
        self._mirrored: int | None = None
        clock = machine.clock
        self._call_at = clock.call_at
        self._earlier = clock._on_earlier  # the machine's: a sooner timer ends the slice
        clock.call_at = self._timer  # type: ignore[method-assign]
        machine.channels.listen(KEY_CHANNEL, self._key)
        machine.feed_when_idle(self._after_idle_feeders)
        self._devices_left: dict[str, bytes] | None = None  # where the last run returned
        self.host_change: str | None = None  # the first device the host changed between runs
        inner_run = machine.run

        def run(wall_timeout_s: float | None = None,
                until: Callable[[], bool] | None = None) -> StopInfo:  # fmt: skip
            self._devices_untouched()
            try:
                return inner_run(wall_timeout_s=wall_timeout_s, until=until)
            finally:
                self._devices_left = device_digests(machine)

        machine.run = run  # type: ignore[method-assign]
        if pc.net is not None:
            pc.net.add_tap(self._guest_frame)
            pc.net.on_input(self._frame)
            pc.net.on_guest_frame(self._transmit_done)

    def _devices_untouched(self) -> None:
        """At the start of a run: no device changed since the last one returned."""
        left = self._devices_left
        if left is None or self.host_change is not None:
            return
        now = device_digests(self.machine)
        changed = [name for name, digest in now.items() if left.get(name) != digest]
        if changed:
            machine = self.machine
            self.host_change = (
                f"the host changed device {changed[0]} between runs of the machine (at "
                f"instruction {machine.instructions}, virtual {machine.clock.now_ns()} ns): "
                "an input no recording holds, a replay would diverge"
            )

    def _pass(self, position: Position) -> None:
        body = self.body
        self._idle_feeders_done = False
        if self.passes.new_instant:
            body += b"B" + _B.pack(position[0], position[1], register_crc(self.machine))
        if position[0] >= self._next_check[0] or position[1] >= self._next_check[1]:
            self._next_check = (position[0] + self.interval[0], position[1] + self.interval[1])
            body += b"C" + _C.pack(*position, state_hash(self.pc), screen_hash(self.pc))

    def _timer(self, deadline: int, callback: Callable[[], None]) -> Timer:
        """`clock.call_at`, telling host timers (a pacer's, a typist's, a harness's: whatever
        is not a device's) from the machine's. A replay has no host timers: it mirrors the
        earliest one's deadline, which is what shapes the slices (`_host_deadline`). A host
        timer set inside a CPU hook does not end the slice early (a replay could not stop at
        that hook): it fires at the next boundary instead."""
        if getattr(callback, "__module__", "").startswith(DEVICE_MODULES):
            return self._call_at(deadline, callback)
        clock = self.machine.clock
        clock.on_earlier(_ignore_deadline)
        try:
            timer = self._call_at(deadline, callback)
        finally:
            clock.on_earlier(self._earlier)
        heapq.heappush(self._host_timers, (deadline, next(self._host_order), timer))
        return timer

    def _host_deadline(self, _position: Position) -> None:
        """After a pass's timers: the earliest pending host timer, written when it changes."""
        timers = self._host_timers
        while timers and timers[0][2].cancelled:
            heapq.heappop(timers)
        deadline = timers[0][0] if timers else None
        if deadline != self._mirrored:
            self._mirrored = deadline
            self.body += b"D" + _D.pack(NO_DEADLINE if deadline is None else deadline)

    def _key(self, event: object) -> None:
        name, pressed = event  # type: ignore[misc]
        raw = str(name).encode("ascii")
        passes = self.passes
        flags = KEY_PRESSED if pressed else 0
        if passes.in_pass:
            flags |= KEY_FROM_TIMER
            position = passes.last
        elif self.machine.idle_count > passes.idle_at_pass and not self._idle_feeders_done:
            flags |= KEY_AT_IDLE  # from an idle feeder registered before this recorder
            position = passes.last
        else:
            position = passes.upcoming()
        self.body += b"K" + _K.pack(*position, flags, len(raw)) + raw

    def _after_idle_feeders(self) -> bool:
        """The last idle feeder: keys after it come from work posted for the next pass."""
        self._idle_feeders_done = True
        return False

    def _guest_frame(self, _now: int, direction: str, _frame: bytes) -> None:
        """A Link tap: a guest frame goes to the backend (it may answer inside its `send` and
        the poll right after it: the transmit lasts until `_transmit_done`)."""
        if direction == "out":
            self.frames_sent += 1
            self.in_transmit = True

    def _transmit_done(self) -> None:
        self.in_transmit = False

    def _frame(self, frame: bytes) -> None:
        """A frame a backend handed the Link: only in its `send` or `poll`, both called from
        the machine loop (inside a guest transmit, or at a pass's idle poll)."""
        if len(frame) > MAX_FRAME:
            # The Link drops it; recorded cut to one byte too long, the replay's Link drops it
            frame = frame[: MAX_FRAME + 1]
        if self.in_transmit:
            n, t = self.passes.live()
            self.body += b"F" + _FS.pack(self.frames_sent, n, t, len(frame)) + frame
        else:
            self.body += b"f" + _FI.pack(*self.passes.last, len(frame)) + frame

    def finish(self, stop: StopInfo) -> Recording:
        """The end: where the host stopped the machine (or it stopped itself) and its state;
        RecordingError if the host changed a device between runs (see the module docstring)."""
        self._devices_untouched()
        if self.host_change is not None:
            raise RecordingError(self.host_change)
        reason = stop.reason.encode("ascii")[:255]
        position = self.passes.last
        self.body += (
            b"E"
            + _E.pack(*position, state_hash(self.pc), screen_hash(self.pc), len(reason))
            + reason
        )
        return Recording(dict(self.header), bytes(self.body))


# ---- replay ---------------------------------------------------------------------------------
@dataclass
class ReplayResult:
    stop: StopInfo
    divergence: str | None
    checks: int  # state hashes compared and equal
    boundaries: int  # slice boundaries compared and equal
    position: tuple[int, int] = (0, 0)  # (instructions, virtual ns) where the replay ended


class _ReplayBackend:
    """In the Link's place: hands the guest the recorded frames at their points and drops
    what the guest sends (the other end answered it in the recording)."""

    name = "replay"

    def __init__(self, replayer: Replayer) -> None:
        self._replayer = replayer

    def start(self, deliver: Callable[[bytes], None]) -> None:
        self._replayer.deliver = deliver

    def send(self, frame: bytes) -> None:
        replayer = self._replayer
        replayer.frames_sent += 1
        replayer.in_transmit = True
        replayer.transmit_frames()

    def poll(self) -> None:
        if self._replayer.in_transmit:  # the Link's poll right after a guest frame
            self._replayer.transmit_frames()
        else:
            self._replayer.idle_frames()

    def filenos(self) -> list[int]:
        return []

    def next_timeout(self) -> float | None:
        return None

    def close(self) -> None:
        pass


def check_images(recording: Recording, disk: Path | None, floppy: Path | None,
                 snapshot: Path | None = None) -> None:  # fmt: skip
    """The images (and the snapshot the run started from) given for a replay must be the
    recorded ones, byte for byte."""
    for what, path in (("disk", disk), ("floppy", floppy), ("snapshot", snapshot)):
        wanted = recording.header.get(what)
        if (wanted is None) != (path is None):
            need = "was recorded with" if wanted else "was recorded without"
            kind = "a snapshot to start from (--load-state)" if what == "snapshot" else \
                f"a {what} image"  # fmt: skip
            raise RecordingError(f"the run {need} {kind}")
        if wanted is None:
            continue
        if not isinstance(wanted, dict):
            raise RecordingError(f"damaged recording header ({what}: {wanted!r:.40})")
        have = image_identity(path)
        assert have is not None
        if (have["size"], have["sha256"]) != (wanted.get("size"), wanted.get("sha256")):
            raise RecordingError(
                f"{what} image {path} is not the recorded one ({wanted.get('name')}: "
                f"{wanted.get('size')} bytes, sha256 {str(wanted.get('sha256'))[:16]}...)"
            )


def replay_config(recording: Recording, disk: Path | None, floppy: Path | None,
                  snapshot: Path | None = None) -> PcConfig:  # fmt: skip
    """The machine the recording was made on, with these (checked) images in it (and the
    snapshot, checked, that the caller loads into it before the Replayer)."""
    check_images(recording, disk, floppy, snapshot)
    header = recording.header
    try:
        start = header.get("start_time")
        return PcConfig(
            disk=disk,
            floppy=floppy,
            ram_mib=int(header["ram_mib"]),
            deterministic=True,
            read_only=bool(header.get("read_only")),
            start_time=None if start is None else datetime.fromisoformat(start),
            net="user" if header.get("nic") else "none",  # its backend is replaced at once
            mac=bytes.fromhex(header["mac"]),
        )
    except (KeyError, TypeError, ValueError, OverflowError) as error:  # int(Infinity)
        raise RecordingError(f"damaged recording header ({error})") from error


class Replayer:
    """Feeds a recording into a freshly built deterministic `Pc` and checks it as it runs."""

    def __init__(self, pc: Pc, recording: Recording) -> None:
        if not pc.config.deterministic:
            raise RecordingError("a replay runs on deterministic time")
        self.pc = pc
        self.machine = pc.machine
        self.events = recording.events()
        self.cursor = 0
        self._mirror: Timer | None = None  # a do-nothing timer at the host's earliest deadline
        self.frames_sent = 0
        self.in_transmit = False  # inside a guest transmit (the backend's send and poll after)
        self.deliver: Callable[[bytes], None] = _nothing_delivered  # the Link's, once attached
        self.divergence: str | None = None
        self.checks = self.boundaries = 0
        self._agreed = (0, 0)  # the last (instructions, ns) where everything compared equal
        self._timer_keys: list[tuple[str, bool]] = []
        self.ended = False
        self.passes = _Passes(self.machine)
        self.passes.before = self._pass
        self.passes.after = self._after_timers
        self.machine.feed_when_idle(self._idle_has_work)
        if pc.net is not None:
            pc.net.replace_backend(_ReplayBackend(self)).close()
            pc.net.on_guest_frame(self._transmit_done)
        elif recording.header.get("nic"):
            raise RecordingError("the run was recorded with a network card; this machine has none")

    # ---- divergence --------------------------------------------------------------------
    def _diverge(self, what: str, at: tuple[int, int]) -> None:
        if self.divergence is None:
            n, t = at
            good_n, good_t = self._agreed
            self.divergence = (
                f"replay diverged at instruction {n} (virtual {t} ns): {what}; "
                f"last agreement at instruction {good_n} ({good_t} ns)"
            )
        self.machine.request_power_off()

    def _head(self) -> tuple | None:
        return self.events[self.cursor] if self.cursor < len(self.events) else None

    # ---- the loop pass -------------------------------------------------------------------
    def _pass(self, position: Position) -> None:
        if self.divergence is not None:
            self.machine.request_power_off()
            return
        channels = self.machine.channels
        boundary_due = self.passes.new_instant  # its boundary was recorded
        while (head := self._head()) is not None:
            tag = head[0]
            if tag == "B":
                if not boundary_due or head[1] != position[:2]:
                    if boundary_due or _before(head[1], position[:2]):
                        self._diverge(
                            f"a slice boundary was recorded at instruction {head[1][0]} "
                            f"({head[1][1]} ns), the replay is at {position[0]} "
                            f"({position[1]} ns)",
                            position[:2],
                        )
                    return
                if head[2] != register_crc(self.machine):
                    self._diverge("the CPU registers differ from the recording", position[:2])
                    return
                self.boundaries += 1
                self._agreed = position[:2]
                boundary_due = False
            elif tag == "D":
                return  # after this pass's timers
            elif tag in ("K", "C", "E", "f"):
                if head[1] != position:
                    if _before(head[1], position):
                        self._diverge(f"a recorded {_NAMES[tag]} was never reached", position[:2])
                    return
                if tag == "f":
                    return  # the idle poll of this pass takes it
                if tag == "K":
                    if head[3] & KEY_AT_IDLE:
                        return  # the idle feeders of this pass send it
                    if head[3] & KEY_FROM_TIMER:
                        self._timer_keys.append(head[2])
                    else:
                        channels.send(KEY_CHANNEL, head[2])
                elif tag == "C":
                    if not self._compare(head, position):
                        return
                else:
                    self.ended = True
                    self.cursor += 1
                    self.machine.request_power_off()
                    return
            else:  # "F": the guest's transmit takes it, unless virtual time went past it
                if head[2][1] < position[1]:
                    self._diverge(
                        f"the guest never made transmit {head[1]}, which got a frame at "
                        f"instruction {head[2][0]}", position[:2])  # fmt: skip
                return
            self.cursor += 1

    def _after_timers(self, position: Position) -> None:
        keys, self._timer_keys = self._timer_keys, []
        for key in keys:
            self.machine.channels.send(KEY_CHANNEL, key)
        while (head := self._head()) is not None and head[0] == "D":
            self._mirror_host_deadline(head[1])
            self.cursor += 1
        if head is not None and head[0] == "E" and head[1] == position:
            self.ended = True
            self.cursor += 1
            self.machine.request_power_off()

    def _compare(self, head: tuple, position: Position) -> bool:
        if head[2] != state_hash(self.pc):
            self._diverge("the state hash (registers, RAM, devices) differs", position[:2])
            return False
        if head[3] != screen_hash(self.pc):
            self._diverge("the screen differs", position[:2])
            return False
        self.checks += 1
        self._agreed = position[:2]
        return True

    def _mirror_host_deadline(self, deadline: int | None) -> None:
        """The recording's earliest host timer moved: so does the replay's stand-in, so every
        slice gets the budget (and the idle machine the jump) it had."""
        if self._mirror is not None:
            self._mirror.cancel()
        clock = self.machine.clock
        self._mirror = None if deadline is None else clock.call_at(deadline, _nothing)

    def _idle_has_work(self) -> bool:
        """An idle feeder (after the Link's poll, as a harness's is): sends the keys recorded
        at this pass's idle; True, so the loop goes round at once, when something was recorded
        for the next pass at this very instant (no replay waits on the host clock)."""
        if self.divergence is not None:
            return False
        position = self.passes.last
        sent = False
        while (head := self._head()) is not None and head[0] == "K" and head[1] == position:
            if not head[3] & KEY_AT_IDLE:
                break
            self.machine.channels.send(KEY_CHANNEL, head[2])
            self.cursor += 1
            sent = True
        upcoming = self.passes.upcoming()
        return sent or (head is not None and head[0] in "KCEf" and head[1] == upcoming)

    # ---- frames ------------------------------------------------------------------------------
    def _transmit_done(self) -> None:
        self.in_transmit = False

    def transmit_frames(self) -> None:
        while (head := self._head()) is not None and head[0] == "F" and head[1] <= self.frames_sent:
            live = self.passes.live()
            if head[1] < self.frames_sent or head[2] != live:
                self._diverge(
                    f"a frame recorded in guest transmit {head[1]} at instruction "
                    f"{head[2][0]} came at transmit {self.frames_sent}", live)  # fmt: skip
                return
            self.cursor += 1
            self.deliver(head[3])  # to the Link: it waits there while the NIC is full

    def idle_frames(self) -> None:
        position = self.passes.last
        while (head := self._head()) is not None and head[0] == "f" and head[1] == position:
            self.cursor += 1
            self.deliver(head[2])  # the Link's poll counts it (or it waits, as recorded)

    # ---- running -------------------------------------------------------------------------
    def run(self, until_ns: int | None = None, wall_timeout_s: float | None = None) -> ReplayResult:
        """Replay to the recorded end, then compare the end; or to virtual time `until_ns`, where
        the machine is left stopped (between slices, at the first boundary at or after it) for a
        debugger to look at: `self.machine` can then be inspected, or run on with `run()`."""
        machine = self.machine
        # No timer of its own at `until_ns` (that would end a slice the recording did not):
        # the replay stops at the first recorded slice boundary at or after it.
        until = None if until_ns is None else (lambda: machine.clock.now_ns() >= until_ns)
        stop = machine.run(wall_timeout_s=wall_timeout_s, until=until)
        where = (machine.instructions, machine.clock.now_ns())
        if self.divergence is None and stop.reason not in ("until", "timeout"):
            head = self._head()
            if not self.ended and head is not None:
                self._diverge(
                    f"the machine stopped ({stop.reason}) before the recording's end", where
                )
            elif head is not None and head[0] == "E":
                self.cursor += 1
            if self.divergence is None and self.cursor:
                end = self.events[self.cursor - 1]
                if end[0] == "E":
                    self._compare(end, (*where, 0))
        return ReplayResult(stop, self.divergence, self.checks, self.boundaries, where)


_NAMES = {"K": "key", "C": "state check", "E": "end", "f": "frame"}


def _before(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Position `a` is strictly earlier than `b` (virtual time first, then instructions)."""
    return (a[1], a[0], *a[2:]) < (b[1], b[0], *b[2:])


def _nothing_delivered(_frame: bytes) -> None:
    """No Link attached yet."""


def _nothing() -> None:
    """The stand-in host timer's callback: it only ends the slice."""


def _ignore_deadline(_deadline: int) -> None:
    """While a host timer is set: no slice ends early for it."""
