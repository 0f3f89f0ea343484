"""Snapshots (emu/snapshot.py): a deterministic PC saved mid-session (a background job asleep on
a kernel timer, a file written) and loaded into a new machine runs on exactly as the one that
never stopped: same screen, state hash, instruction count and virtual time after the same
input. Damaged, foreign, other-version and other-installation files are refused with one line
before anything is unpickled, and a snapshot that does not fit leaves the new machine as built."""

from __future__ import annotations

import io
import pickle
import shutil
import struct
from dataclasses import replace
from pathlib import Path

import pytest

from tests.system.harness import BootedPc, close_pc
from tradekernel import hostnet
from tradekernel.emu import snapshot
from tradekernel.emu.record import screen_hash, state_hash
from tradekernel.emu.snapshot import SnapshotError
from tradekernel.hostnet.link import NoBackend


@pytest.fixture(autouse=True)
def installation_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    key = tmp_path / "installation" / "snapshot.key"
    monkeypatch.setenv(snapshot.KEY_ENV, str(key))
    return key


def _saved(tmp_path: Path) -> tuple[BootedPc, Path, Path]:
    """A booted PC in the middle of things, its snapshot, and its disk as it was then."""
    booted = BootedPc(tmp_path).boot()
    booted.command("echo written before the snapshot > /before.txt")
    booted.command("nap 200 3 &")  # asleep on a kernel timer across the snapshot
    path, disk = tmp_path / "state.tksnap", tmp_path / "at-save.img"
    snapshot.save(booted.pc, path)
    shutil.copy(booted.disk, disk)
    return booted, path, disk


def _fresh(tmp_path: Path, disk: Path, name: str = "loaded", ram_mib: int = 32) -> BootedPc:
    folder = tmp_path / name
    folder.mkdir()
    copy = folder / "disk.img"
    shutil.copy(disk, copy)
    return BootedPc(folder, disk=copy, ram_mib=ram_mib)


def test_a_loaded_snapshot_runs_on_exactly_as_the_machine_that_never_stopped(
    tmp_path: Path,
) -> None:
    original, path, disk = _saved(tmp_path)
    loaded = _fresh(tmp_path, disk)
    snapshot.load(loaded.pc, path)
    a, b = original.machine, loaded.machine
    assert a.cpu.all_registers() == b.cpu.all_registers()
    assert bytes(a.cpu.ram) == bytes(b.cpu.ram)
    assert (a.instructions, a.clock.now_ns()) == (b.instructions, b.clock.now_ns())
    try:
        for booted in (original, loaded):
            booted.command("cat /before.txt")
            booted.command("wait", virtual_ns=5_000_000_000)  # the job's timers fire after
            booted.command("echo after > /after.txt")
            booted.command("ls -l /")
        assert a.instructions == b.instructions > 0
        assert a.clock.now_ns() == b.clock.now_ns()
        assert state_hash(original.pc) == state_hash(loaded.pc)
        assert screen_hash(original.pc) == screen_hash(loaded.pc)
        text = loaded.text()
        assert "written before the snapshot" in text and "after.txt" in text
        assert loaded.serial.count(b"nap: ") == 3  # the job slept on in the loaded machine
    finally:
        close_pc(original)
        close_pc(loaded)


def _bad_file(tmp_path: Path, name: str, content: bytes) -> Path:
    bad = tmp_path / name
    bad.write_bytes(content)
    return bad


def test_damaged_foreign_and_other_version_files_are_refused_with_one_line(
    tmp_path: Path, installation_key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original, path, disk = _saved(tmp_path)
    close_pc(original)
    data = path.read_bytes()
    middle = len(data) // 2
    cases = {
        "flipped": (data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1 :], "HMAC"),
        "truncated": (data[:-100], "HMAC"),
        "version": (data[:7] + struct.pack("<H", 99) + data[9:], "format version 99"),
        "foreign": (b"\x7fELF" + data[4:], "not a TradeKernel snapshot"),
    }
    loaded = _fresh(tmp_path, disk)
    before = bytes(loaded.machine.cpu.ram)
    for name, (content, message) in cases.items():
        with pytest.raises(SnapshotError) as caught:
            snapshot.load(loaded.pc, _bad_file(tmp_path, name, content))
        assert message in str(caught.value) and "\n" not in str(caught.value)
    # another installation's key: the same file is not trusted
    other = tmp_path / "other.key"
    other.write_bytes(bytes(32))
    monkeypatch.setenv(snapshot.KEY_ENV, str(other))
    with pytest.raises(SnapshotError, match="not made by this installation"):
        snapshot.load(loaded.pc, path)
    monkeypatch.setenv(snapshot.KEY_ENV, str(tmp_path / "missing.key"))
    with pytest.raises(SnapshotError, match="no snapshot key"):
        snapshot.load(loaded.pc, path)
    assert bytes(loaded.machine.cpu.ram) == before and loaded.machine.instructions == 0
    close_pc(loaded)


def test_a_snapshot_that_does_not_fit_leaves_the_new_machine_untouched(tmp_path: Path) -> None:
    original, path, disk = _saved(tmp_path)
    close_pc(original)
    small = _fresh(tmp_path, disk, "small", ram_mib=16)
    with pytest.raises(SnapshotError, match="16 MiB"):
        snapshot.load(small.pc, path)
    assert small.machine.instructions == 0 and small.pc.kernel is None
    close_pc(small)
    other_disk = _fresh(tmp_path, disk, "other-disk")
    with open(other_disk.disk, "r+b") as image:
        image.seek(1 << 20)
        image.write(b"not the saved disk")
    before = bytes(other_disk.machine.cpu.ram)
    with pytest.raises(SnapshotError, match="disk image other than the one saved"):
        snapshot.load(other_disk.pc, path)
    assert bytes(other_disk.machine.cpu.ram) == before
    close_pc(other_disk)
    slower = _fresh(tmp_path, disk, "slower")  # a virtual CPU of another speed: another time base
    slower.pc.config = replace(slower.pc.config, ns_per_instruction=2)
    with pytest.raises(SnapshotError, match="1 ns per instruction, this machine's takes 2"):
        snapshot.load(slower.pc, path)
    close_pc(slower)


class _Hostile:
    """Unpickling this writes a file: what a crafted snapshot would try."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (Path.write_text, (self.marker, "code ran"))


def test_a_crafted_pickle_never_runs_without_this_installations_key(tmp_path: Path) -> None:
    """A file with a valid layout whose kernel section is a hostile pickle, sealed with some
    other key (an attacker does not have ours): refused by the HMAC, the pickle never loaded."""
    original, path, disk = _saved(tmp_path)
    close_pc(original)
    data = path.read_bytes()[:-32]
    marker = tmp_path / "pwned.txt"
    payload = io.BytesIO()
    pickle.dump(_Hostile(marker), payload)
    # rebuild the three sections with the hostile one last
    header_len = struct.unpack_from("<I", data, len(snapshot.MAGIC) + 2)[0]
    offset = len(snapshot.MAGIC) + 6 + header_len
    sections = []
    for _ in range(3):
        (length,) = struct.unpack_from("<Q", data, offset)
        sections.append(data[offset + 8 : offset + 8 + length])
        offset += 8 + length
    import zlib

    sections[2] = zlib.compress(payload.getvalue())
    crafted = data[: len(snapshot.MAGIC) + 6 + header_len] + b"".join(
        struct.pack("<Q", len(s)) + s for s in sections
    )
    import hashlib
    import hmac

    sealed = crafted + hmac.new(b"attacker" * 4, crafted, hashlib.sha256).digest()
    loaded = _fresh(tmp_path, disk)
    with pytest.raises(SnapshotError, match="HMAC"):
        snapshot.load(loaded.pc, _bad_file(tmp_path, "crafted.tksnap", sealed))
    assert not marker.exists()
    close_pc(loaded)


class HandBackend(NoBackend):
    """The far end of the cable, handing the Link frames when the test says so."""

    def start(self, deliver) -> None:  # noqa: ANN001
        self.deliver = deliver


def test_frames_waiting_in_the_network_link_survive_a_snapshot(tmp_path: Path) -> None:
    """The NIC's ring is full (it said so on net0-ready), so frames from the host wait in the
    Link. A snapshot keeps them and the NIC's word: the loaded machine's Link holds the same
    frames and hands them to the NIC, in order, once it has room. A machine without a
    network card does not take that snapshot."""
    booted = BootedPc(tmp_path, net=hostnet.NetOptions("user")).boot()
    backend = HandBackend()
    booted.link.replace_backend(backend).close()
    booted.machine.channels.send("net0-ready", False)
    frames = [b"\xff" * 6 + bytes([2, 0, 0, 0, 0, n]) + b"\x88\xb5" + bytes([n]) * 46
              for n in range(3)]  # fmt: skip
    for frame in frames:
        backend.deliver(frame)
    assert booted.link.waiting == 3
    path, disk = tmp_path / "state.tksnap", tmp_path / "at-save.img"
    snapshot.save(booted.pc, path)
    shutil.copy(booted.disk, disk)
    close_pc(booted)
    folder = tmp_path / "loaded"
    folder.mkdir()
    shutil.copy(disk, folder / "disk.img")
    loaded = BootedPc(folder, disk=folder / "disk.img", net=hostnet.NetOptions("user"))
    try:
        snapshot.load(loaded.pc, path)
        assert loaded.link.waiting == 3
        seen: list[bytes] = []
        loaded.link.add_tap(lambda _now, way, frame: seen.append(frame) if way == "in" else None)
        loaded.machine.channels.send("net0-ready", True)
        assert seen == frames
    finally:
        close_pc(loaded)
    bare = _fresh(tmp_path, disk, "bare")
    try:
        with pytest.raises(SnapshotError, match="does not fit this machine"):
            snapshot.load(bare.pc, path)
    finally:
        close_pc(bare)


def test_the_shell_saves_a_snapshot_to_the_host_and_the_restored_copy_knows_it(
    tmp_path: Path,
) -> None:
    """`snapshot save NAME` asks the host through the snapshot port; the file, in --save-state's
    format, lands in the host's directory and loads into a new machine, whose own `snapshot`
    command then ends saying it is the restored copy; the shell goes on from there. A bad
    name, and a machine with no host end (no --snapshot-dir), get one line."""
    folder = tmp_path / "snapshots"
    folder.mkdir()
    original = BootedPc(tmp_path).boot()
    try:
        snapshot.SnapshotRequests(original.pc, folder)
        original.command("echo before the snapshot > /b.txt")
        assert original.output("snapshot save first") == [
            "snapshot first: saved (first.tksnap on the host)"
        ]
        assert any("saved the machine to" in line for line in original.log)
        disk = tmp_path / "at-save.img"
        shutil.copy(original.disk, disk)
        assert original.output("snapshot save ../up") == [
            "snapshot: '../up': a name is up to 64 letters, digits, '.', '_', '-'",
            "usage: snapshot save NAME",
        ]
    finally:
        close_pc(original)
    assert (folder / "first.tksnap").is_file() and not (tmp_path / "up.tksnap").exists()
    loaded = _fresh(tmp_path, disk)
    try:
        snapshot.load(loaded.pc, folder / "first.tksnap")
        loaded.wait_for("snapshot first: this machine was restored from it")
        assert loaded.output("cat /b.txt") == ["before the snapshot"]
        assert loaded.output("snapshot save again") == [
            "snapshot: this machine takes no snapshots (tk boot --snapshot-dir DIR)"
        ]
    finally:
        close_pc(loaded)
