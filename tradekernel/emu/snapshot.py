"""Snapshots: the whole machine to a file between two CPU slices, and back into a new one.

Contract. `save(pc, path)` writes, at a point where the machine loop is not running (after
`run()` returned):
  - the CPU as Unicorn's context blob (every register, the segment caches, FPU/SSE, hflags and
    the other state Unicorn keeps only there: docs/UNICORN.md), raw bytes, no pickle;
  - guest RAM, zlib-compressed;
  - every device's `state()` (plain named data with the device's version) as JSON-able data;
  - the run loop's own state (`Machine.run_state`: virtual time, instructions, halted...);
  - the kernel's Python objects (processes, files, sockets, books, strategies) and its
    hypercall and trap handlers, pickled by `cloudpickle` (the kernel holds closures, which
    the standard pickle refuses). Host objects it reaches (the machine, its buses, guest memory,
    registers, channels, clock) are written as names and re-attached to the new machine's on
    load; any other host object (a device, a thread, a file) in the kernel's graph makes the
    save fail with one line instead of being copied;
  - the identity (size, SHA-256) of the disk and diskette images as they are at the save;
  - the network Link's frames for the guest that wait for room in the NIC's ring, and whether
    the NIC said it had room (hostnet/link.py): they already came in from the host and would
    otherwise be lost, and a NIC restored full would be handed frames it must drop.
Host resources are never saved: the disk image is opened again (and must be the same bytes),
the network backend, UI and host timers belong to the new session.

`load(pc, path)` puts a freshly built `Pc` (same board, not yet run) at the saved instant; in
deterministic time it then runs on exactly as the saved machine would have (tests/snapshot).
Everything is read, checked and decoded before the first byte of the new machine changes, so a
refused file leaves it as built; a failure after that (a device refusing its state) leaves it
half-set, and the caller throws that machine away (tk does).

The file: MAGIC, format version (u16), header length (u32), JSON header, then three
length-prefixed (u64) sections (CPU context, compressed RAM, pickled kernel), then an
HMAC-SHA256 over all of it. A hostile file must not run code when loaded: pickle can, so the
HMAC, keyed with a secret kept outside the file (`key_path()`: a per-installation key made on
first use, mode 0600), is checked before anything is parsed, let alone unpickled. A snapshot
thus loads only where it was made (or where that key was copied); another format version, a
different Unicorn, a damaged or foreign file are refused with one `SnapshotError` line.

The guest may ask for one (the shell's `snapshot save NAME`) through `SnapshotRequests`, the
host's end of a paravirtual port pair at SNAPSHOT_PORT (like pvclock's at 0x5B00): the kernel
writes the name byte by byte to NAME_PORT and SAVE to SNAPSHOT_PORT, and reads the status
there (IDLE, BUSY, SAVED, FAILED; 0xFF where no host end is plugged in: an unclaimed port).
The save runs between two slices (Machine.post), in this same format, to
DIRECTORY/NAME.tksnap on the host, never onto the guest's disk: the snapshot names the disk
image by its SHA-256, which a snapshot written onto that disk would change, and it is sealed
with the installation's key, which the guest must not see. The status is host state, not the
machine's: in a machine loaded from that snapshot it reads IDLE, which tells the kernel that
it is the restored copy.
"""

from __future__ import annotations

import ctypes
import hashlib
import hmac
import io
import json
import os
import pickle
import secrets
import struct
import zlib
from pathlib import Path
from typing import Any

import cloudpickle
import unicorn

from tradekernel import __version__
from tradekernel.emu.machine import NS_PER_INSTRUCTION
from tradekernel.emu.pc import Pc
from tradekernel.emu.record import image_identity
from tradekernel.hostnet.link import MAX_FRAME, MIN_FRAME, QUEUE_MAX, Link

MAGIC = b"TKSNAP\n"
FORMAT_VERSION = 2  # 2: the network Link's held frames ("link")
KEY_BYTES = 32
KEY_ENV = "TK_SNAPSHOT_KEY"  # a key file to use instead of the per-installation one (tests)
MAX_HEADER = 1 << 20
MAX_SECTION = 1 << 36  # a section longer than this is damage, not read
SNAPSHOT_PORT, NAME_PORT = 0x5C00, 0x5C01  # status/command; the name's bytes
IDLE, BUSY, SAVED, FAILED = 0, 1, 2, 3  # SNAPSHOT_PORT reads
CLEAR, SAVE = 0, 1  # SNAPSHOT_PORT writes
NAME_CHARACTERS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
MAX_NAME = 64  # bytes of a guest-given snapshot name
SUFFIX = ".tksnap"
HOST_MODULES = ("tradekernel.emu.", "tradekernel.devices.", "tradekernel.hostnet.",
                "tradekernel.ui.", "unicorn", "threading", "_thread", "socket", "select",
                "_io", "io")  # fmt: skip
CARRIED_MODULES = {"tradekernel.emu.platform"}  # the kernel's view of the machine: plain data


class SnapshotError(Exception):
    """A snapshot that cannot be written or used: one line saying why."""


# ---- the key ------------------------------------------------------------------------------
def key_path() -> Path:
    """Where this installation's snapshot key lives ($TK_SNAPSHOT_KEY overrides it)."""
    override = os.environ.get(KEY_ENV)
    if override:
        return Path(override)
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config / "tradekernel" / "snapshot.key"


def _key(create: bool) -> bytes:
    path = key_path()
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        if not create:
            raise SnapshotError(
                f"no snapshot key at {path}: this installation never saved a snapshot, so it "
                "cannot trust one"
            ) from None
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(KEY_BYTES)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(key)
        return key
    except OSError as error:
        raise SnapshotError(f"snapshot key {path}: {error.strerror or error}") from error
    if len(key) != KEY_BYTES:
        raise SnapshotError(f"snapshot key {path} is not {KEY_BYTES} bytes")
    return key


# ---- host objects the kernel reaches ------------------------------------------------------
def _host_objects(pc: Pc) -> dict[str, object]:
    machine = pc.machine
    return {
        "machine": machine,
        "ports": machine.ports,
        "mmio": machine.mmio,
        "memory": machine.memory,
        "registers": machine.registers,
        "channels": machine.channels,
        "clock": machine.clock,
    }


def _reduce_struct(layout: struct.Struct) -> tuple[type, tuple[str]]:
    return struct.Struct, (layout.format,)


# Objects the kernel keeps that pickle refuses but that are plain values, rebuilt from them.
PLAIN_REDUCERS = {struct.Struct: _reduce_struct}


def _ram_view(pc: Pc) -> memoryview:
    return pc.machine.memory.view()


def _address(view: memoryview) -> int:
    return ctypes.addressof(ctypes.c_char.from_buffer(view)) if view.nbytes else 0


class _KernelPickler(cloudpickle.Pickler):
    def __init__(self, out: io.BytesIO, pc: Pc) -> None:
        super().__init__(out, protocol=pickle.HIGHEST_PROTOCOL)
        self._names = {id(obj): name for name, obj in _host_objects(pc).items()}
        ram = _ram_view(pc)
        self._ram_owner, self._ram_base = ram.obj, _address(ram)

    def reducer_override(self, obj: object) -> object:
        reducer = PLAIN_REDUCERS.get(type(obj))
        if reducer is not None:
            return reducer(obj)
        return super().reducer_override(obj)

    def persistent_id(self, obj: object) -> object:
        name = self._names.get(id(obj))
        if name is not None:
            return name
        if isinstance(obj, memoryview) and obj.obj is self._ram_owner:
            # a window on guest RAM (the heap's, the screen's): re-cut from the new RAM
            if not obj.contiguous:
                raise SnapshotError("the kernel holds a strided view of guest RAM")
            return ("ram", _address(obj) - self._ram_base, obj.nbytes, obj.format)
        module = type(obj).__module__ or ""
        if (
            module.startswith(HOST_MODULES)
            and module not in CARRIED_MODULES
            and not isinstance(obj, type)
        ):
            raise SnapshotError(
                f"the kernel holds a host object ({module}.{type(obj).__qualname__}) that a "
                "snapshot cannot carry"
            )
        return None


class _KernelUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, pc: Pc) -> None:
        super().__init__(io.BytesIO(data))
        self._host = _host_objects(pc)
        self._ram = _ram_view(pc)

    def persistent_load(self, pid: object) -> object:
        if isinstance(pid, tuple) and len(pid) == 4 and pid[0] == "ram":
            _tag, offset, size, fmt = pid
            if not (0 <= offset and offset + size <= len(self._ram)):
                raise SnapshotError(f"the snapshot names RAM outside this machine's ({pid!r})")
            window = self._ram[offset : offset + size]
            return window if fmt == "B" else window.cast(fmt)
        if not isinstance(pid, str) or pid not in self._host:
            raise SnapshotError(f"the snapshot names an unknown host object {pid!r}")
        return self._host[pid]  # type: ignore[index]


# ---- saving -------------------------------------------------------------------------------
def save(pc: Pc, path: str | os.PathLike[str]) -> None:
    """Write the machine as it stands (its loop not running) to `path`, atomically."""
    machine = pc.machine
    config = pc.config
    header = {
        "format": FORMAT_VERSION,
        "tradekernel": __version__,
        "unicorn": unicorn.__version__,
        "ram_mib": config.ram_mib,
        "deterministic": config.deterministic,
        "ns_per_instruction": config.ns_per_instruction,
        "start_time": None if config.start_time is None else config.start_time.isoformat(),
        "read_only": config.read_only,
        "nic": pc.nic is not None,
        "mac": config.mac.hex(),
        "disk": image_identity(config.disk),
        "floppy": image_identity(config.floppy),
        "run": machine.run_state(),
        "devices": [[device.name, _plain(device.state())] for device in machine.devices],
        "link": None if pc.net is None else _link_state(pc.net),
    }
    context = bytes(machine.cpu.context_view(machine.cpu.save_context()))
    ram = zlib.compress(machine.cpu.ram, 1)
    kernel = b""
    if pc.kernel is not None:
        hypercalls, traps = machine.kernel_entry_points()
        out = io.BytesIO()
        try:
            _KernelPickler(out, pc).dump(
                {"kernel": pc.kernel, "hypercalls": hypercalls, "traps": traps}
            )
        except (pickle.PicklingError, TypeError, AttributeError) as error:
            raise SnapshotError(f"the kernel's state cannot be saved: {error}") from error
        kernel = zlib.compress(out.getvalue(), 1)
    body = json.dumps(header, sort_keys=True).encode()
    parts = [MAGIC, struct.pack("<HI", FORMAT_VERSION, len(body)), body]
    for section in (context, ram, kernel):
        parts += [struct.pack("<Q", len(section)), section]
    data = b"".join(parts)
    seal = hmac.new(_key(create=True), data, hashlib.sha256).digest()
    tmp = Path(f"{path}.tmp")
    try:
        tmp.write_bytes(data + seal)
        tmp.replace(path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise SnapshotError(f"{path}: {error.strerror or error}") from error


def _link_state(link: Link) -> dict[str, Any]:
    """The Link's frames held for the guest, and the NIC's last word on room."""
    frames, ready = link.held()
    return {"waiting": [frame.hex() for frame in frames], "nic_ready": ready}


def _link_frames(state: Any, path: str | os.PathLike[str]) -> tuple[list[bytes], bool]:
    """The held frames and the NIC's readiness from a header, checked against the Link's own
    bounds."""
    try:
        frames = [bytes.fromhex(text) for text in state["waiting"]]
        ready = state["nic_ready"]
    except (KeyError, TypeError, ValueError) as error:
        raise SnapshotError(f"{path}: damaged snapshot (network link: {error})") from error
    if len(frames) > QUEUE_MAX or any(not MIN_FRAME <= len(f) <= MAX_FRAME for f in frames):
        raise SnapshotError(f"{path}: damaged snapshot (network link frames)")
    return frames, bool(ready)


def _plain(value: Any) -> Any:
    """Device state as JSON: bytes become {"bytes": hex}, tuples lists."""
    if isinstance(value, bytes | bytearray | memoryview):
        return {"bytes": bytes(value).hex()}
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _unplain(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"bytes"} and isinstance(value["bytes"], str):
            return bytes.fromhex(value["bytes"])
        return {key: _unplain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unplain(item) for item in value]
    return value


# ---- loading ------------------------------------------------------------------------------
def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checked header alone: what machine to build before `load` (RAM size, clock)."""
    header, _sections = _read(path)
    return header


def _read(path: str | os.PathLike[str]) -> tuple[dict[str, Any], list[bytes]]:
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise SnapshotError(f"{path}: {error.strerror or error}") from error
    if not data.startswith(MAGIC):
        raise SnapshotError(f"{path}: not a TradeKernel snapshot")
    fixed = len(MAGIC) + 6
    if len(data) < fixed + 24 + 32:
        raise SnapshotError(f"{path}: damaged snapshot (truncated)")
    version, header_len = struct.unpack_from("<HI", data, len(MAGIC))
    if version != FORMAT_VERSION:
        raise SnapshotError(f"{path}: snapshot format version {version}, this tk reads "
                            f"{FORMAT_VERSION}")  # fmt: skip
    body, seal = data[:-32], data[-32:]
    if not hmac.compare_digest(hmac.new(_key(create=False), body, hashlib.sha256).digest(), seal):
        raise SnapshotError(
            f"{path}: damaged snapshot, or not made by this installation (HMAC mismatch)"
        )
    if header_len > MAX_HEADER or fixed + header_len > len(body):
        raise SnapshotError(f"{path}: damaged snapshot (header length)")
    try:
        header = json.loads(body[fixed : fixed + header_len])
    except ValueError as error:
        raise SnapshotError(f"{path}: damaged snapshot header ({error})") from error
    offset, sections = fixed + header_len, []
    for _ in range(3):
        if offset + 8 > len(body):
            raise SnapshotError(f"{path}: damaged snapshot (section table)")
        (length,) = struct.unpack_from("<Q", body, offset)
        offset += 8
        if length > MAX_SECTION or offset + length > len(body):
            raise SnapshotError(f"{path}: damaged snapshot (section length)")
        sections.append(body[offset : offset + length])
        offset += length
    if offset != len(body) or not isinstance(header, dict):
        raise SnapshotError(f"{path}: damaged snapshot (trailing data)")
    if header.get("unicorn") != unicorn.__version__:
        raise SnapshotError(f"{path}: made with Unicorn {header.get('unicorn')}, this tk runs "
                            f"{unicorn.__version__} (its CPU state differs)")  # fmt: skip
    return header, sections


def load(pc: Pc, path: str | os.PathLike[str]) -> dict[str, Any]:
    """Put `pc` (built to the snapshot's header, never run) at the saved instant."""
    header, (context, ram_z, kernel_z) = _read(path)
    machine = pc.machine
    cpu = machine.cpu
    config = pc.config
    problems = []
    if header.get("ram_mib") != config.ram_mib:
        problems.append(
            f"{header.get('ram_mib')} MiB of RAM, this machine has {config.ram_mib} MiB"
        )
    if header.get("deterministic") != config.deterministic:
        problems.append("another clock (deterministic or real time)")
    if header.get("ns_per_instruction", NS_PER_INSTRUCTION) != config.ns_per_instruction:
        problems.append(
            f"a virtual CPU of {header.get('ns_per_instruction')} ns per instruction, this "
            f"machine's takes {config.ns_per_instruction}"
        )
    names = [device.name for device in machine.devices]
    saved_devices = header.get("devices") or []
    if [entry[0] for entry in saved_devices] != names:
        problems.append(f"devices {[e[0] for e in saved_devices]}, this board has {names}")
    for what, image in (("disk", config.disk), ("floppy", config.floppy)):
        wanted, have = header.get(what), image_identity(image)
        same = (
            wanted is None
            or not isinstance(wanted, dict)
            or have is None
            or ((have["size"], have["sha256"]) == (wanted.get("size"), wanted.get("sha256")))
        )
        if (wanted is None) != (have is None) or not same:
            problems.append(f"a {what} image other than the one saved with it")
    link = header.get("link")
    if (link is None) != (pc.net is None):
        problems.append("a network card" if link is not None else "no network card")
    if problems:
        raise SnapshotError(f"{path}: does not fit this machine: {problems[0]}")
    held = None if link is None else _link_frames(link, path)
    blank = cpu.save_context()
    view = cpu.context_view(blank)
    if len(context) != len(view):
        raise SnapshotError(f"{path}: damaged snapshot (CPU context of {len(context)} bytes)")
    try:  # bounded: never more than this machine's RAM (and a byte to notice more)
        ram = zlib.decompressobj().decompress(ram_z, cpu.ram_bytes + 1)
    except zlib.error as error:
        raise SnapshotError(f"{path}: damaged snapshot (RAM: {error})") from error
    if len(ram) != cpu.ram_bytes:
        raise SnapshotError(f"{path}: damaged snapshot (RAM of {len(ram)} bytes)")
    payload = None
    if kernel_z:
        try:
            payload = _KernelUnpickler(zlib.decompress(kernel_z), pc).load()
        except SnapshotError:
            raise
        except Exception as error:  # noqa: BLE001 - any failure of a sealed file is damage
            raise SnapshotError(f"{path}: the kernel's state does not load: {error}") from error
    # Everything is decoded: from here on the new machine changes.
    machine.load_run_state(header["run"])
    cpu.ram[:] = ram
    view[:] = context
    cpu.restore_context(blank)
    for device, (_name, state) in zip(machine.devices, saved_devices, strict=True):
        try:
            device.restore(_unplain(state))
        except (ValueError, KeyError, TypeError) as error:
            raise SnapshotError(f"{path}: device {device.name}: {error}") from error
    if held is not None and pc.net is not None:
        pc.net.restore_held(*held)
    if payload is not None:
        pc.kernel = payload["kernel"]
        for number, handler in payload["hypercalls"].items():
            machine.register_hypercall(number, handler)
        for vector, handler in payload["traps"].items():
            machine.register_trap(vector, handler)
    return header


# ---- the guest's requests -----------------------------------------------------------------
class SnapshotRequests:
    """The host's end of the snapshot port (see the module docstring): saves to `directory`."""

    def __init__(self, pc: Pc, directory: str | os.PathLike[str]) -> None:
        self.pc = pc
        self.directory = Path(directory)
        self.status = IDLE
        self._name = bytearray()
        self._too_long = False
        pc.machine.ports.claim(SNAPSHOT_PORT, 2, "snapshot", self._read, self._write)

    def _read(self, port: int, _size: int) -> int:
        return self.status if port == SNAPSHOT_PORT else 0

    def _write(self, port: int, _size: int, value: int) -> None:
        if port == NAME_PORT:
            if len(self._name) < MAX_NAME:
                self._name.append(value & 0xFF)
            else:
                self._too_long = True
            return
        if self.status == BUSY:
            return  # one save at a time; the name stays the one being saved
        if value == CLEAR:
            self._name.clear()
            self._too_long = False
            self.status = IDLE
        elif value == SAVE:
            name = bytes(self._name)
            if self._too_long or not name or name[:1] == b"." or set(name) - NAME_CHARACTERS:
                self._log(f"refused a snapshot name {name[:MAX_NAME]!r} from the guest")
                self.status = FAILED
                return
            self.status = BUSY
            path = self.directory / f"{name.decode()}{SUFFIX}"
            self.pc.machine.post(lambda: self._save(path))

    def _save(self, path: Path) -> None:
        """Between slices: the disk as the snapshot will name it, then the file."""
        try:
            self.pc.flush()
            save(self.pc, path)
        except (SnapshotError, OSError) as error:
            self._log(f"{path}: not saved: {error}")
            self.status = FAILED
            return
        self._log(f"saved the machine to {path}")
        self.status = SAVED

    def _log(self, text: str) -> None:
        self.pc.machine.channels.send("log", f"snapshot: {text}")
