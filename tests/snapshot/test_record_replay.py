"""Record and replay (emu/record.py): a session with keys and network traffic from a real host
HTTP server is recorded, then replayed on a fresh machine with no server and no keyboard: every
slice boundary, state hash and the end compare equal. A changed key, a byte of RAM poked during
the replay, a damaged file, another format version and another disk image are each caught."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import shutil
import struct
import threading
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.system.harness import SECOND, BootedPc, close_pc
from tradekernel import hostnet
from tradekernel.disktool import create_os_disk
from tradekernel.emu import record
from tradekernel.emu.pc import Pc, PcConfig
from tradekernel.emu.record import Recorder, Recording, RecordingError, Replayer, check_images
from tradekernel.ui.session import make_pc

CHECK_EVERY = 20_000  # instructions between state hashes (the OS boots in a few thousand)
# ...in the network session, whose guest retires only a few thousand between its network events
NET_CHECK_EVERY = 1_000
PAGE_LINES = 6_000  # the served page: ~60 KB, more than the NE2000's receive ring holds
HOST_ANSWER_WAIT_S = 10.0  # wall time the machine waits for the host server's answer at most


def _record(
    tmp_path: Path,
    script,  # noqa: ANN001
    net: hostnet.NetOptions | None = None,
    check_every: int = CHECK_EVERY,
    after=None,  # noqa: ANN001
) -> Path:
    """Run `script(booted)` on a recorded deterministic PC; keep a pristine copy of its disk.
    `after(booted)` looks at the machine once the recording has ended: a host-side look at
    the guest's files goes through the kernel's disk driver (ATA commands, page cache), an
    input no recording holds, so during the recording it would make the replay diverge."""
    disk = tmp_path / "disk.img"
    create_os_disk(disk)
    shutil.copy(disk, tmp_path / "pristine.img")
    booted = BootedPc(tmp_path, disk=disk, net=net)
    recorder = Recorder(booted.pc, check_interval=check_every)
    try:
        script(booted)
        stop = booted.machine.run(until=lambda: True)  # the host's stop, as a closed window
        path = tmp_path / "run.tkrec"
        recorder.finish(stop).save(path)
        (tmp_path / "screen.txt").write_text(booted.text())
        if after is not None:
            after(booted)
    finally:
        close_pc(booted)
    return path


def _replayer(tmp_path: Path, path: Path, net: str = "none") -> Replayer:
    replay_disk = tmp_path / "replay.img"
    shutil.copy(tmp_path / "pristine.img", replay_disk)
    recording = Recording.load(path)
    check_images(recording, replay_disk, None)
    pc = make_pc(PcConfig(disk=replay_disk, deterministic=True, net=net))
    return Replayer(pc, recording)


def _typing(booted: BootedPc) -> None:
    booted.boot()
    booted.command("echo recorded")
    booted.command("ls -l /bin")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *_args: object) -> None:
        pass


class _HeldHost:
    """Forces the timing the network session needs, whatever the host's speed. The server holds
    every answer back until the machine lets it go: at the guest's first idle once both GETs
    are out (an idle feeder, after the Link's poll), which then waits until the server has
    written both whole answers and says the loop should come round at once. So the Link's
    next idle poll, at the same instant, finds two TCP windows waiting ('f' records): more
    than the NIC's receive ring holds (one alone fits), so frames wait in the Link and reach
    the NIC inside the driver's port writes; the ACKs the guest sends then get more data
    inside their transmit ('F' records, as the NAT's ARP, DHCP and ping answers). A
    deterministic machine does not wait for the host by itself: an idle guest with a timer
    armed jumps to it, so without this the data could come at any point."""

    GETS = 2

    def __init__(self) -> None:
        self.gets_sent = 0  # GETs the guest sent (the machine's thread)
        self.answered = 0  # answers the server wrote whole
        self.released = threading.Event()
        self.state = threading.Condition()

    def tap(self, _now: int, direction: str, frame: bytes) -> None:
        if direction == "out" and b"GET /page.txt" in frame:
            self.gets_sent += 1

    def idle(self) -> bool:
        """An idle feeder: the first idle with every GET out lets the answers go."""
        if self.gets_sent < self.GETS or self.released.is_set():
            return False
        self.released.set()
        with self.state:
            self.state.wait_for(lambda: self.answered == self.GETS, HOST_ANSWER_WAIT_S)
        return True

    def serve(self, answer: Callable[[], None]) -> None:
        """In the server's handler thread: `answer()` once the machine lets it."""
        self.released.wait(HOST_ANSWER_WAIT_S)
        try:
            answer()
        finally:
            with self.state:
                self.answered += 1
                self.state.notify_all()


@pytest.fixture(scope="module")
def http_session(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[bool]]:
    """A recorded session: DHCP and ping (answered inside the guest's transmit), two downloads
    at once of a page from a host HTTP server on 127.0.0.1 (frames at idle polls and inside the
    ACKs' transmits), more than the NIC's receive ring holds: frames wait in the Link and reach
    the NIC inside the driver's port writes (_HeldHost). Also returns what the NIC said on its
    ready channel during the recording."""
    tmp_path = tmp_path_factory.mktemp("http")
    www = tmp_path / "www"
    www.mkdir()
    page = b"".join(b"line %d\n" % i for i in range(PAGE_LINES))
    (www / "page.txt").write_bytes(page)
    held = _HeldHost()

    class Handler(_QuietHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            held.serve(super().do_GET)

    handler = functools.partial(Handler, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ready: list[bool] = []

    def script(booted: BootedPc) -> None:
        assert booted.link is not None
        booted.link.add_tap(held.tap)
        booted.machine.feed_when_idle(held.idle)
        booted.machine.channels.listen(f"{booted.link.channel}-ready", ready.append)
        booted.boot()
        booted.run_until(lambda: booted.pc.kernel.net.stack.addr != 0, 20 * SECOND)
        booted.output("ping 10.0.2.2 -c 2", 10 * SECOND)
        port = server.server_address[1]
        booted.command(f"httpget 10.0.2.2 {port} /page.txt > /page2.out &", 5 * SECOND)
        booted.command(f"httpget 10.0.2.2 {port} /page.txt > /page.out", 30 * SECOND)
        booted.command("wait", 30 * SECOND)
        booted.command("wc /page.out")

    def downloaded(booted: BootedPc) -> None:
        for name in ("/page.out", "/page2.out"):
            assert booted.pc.kernel.fs.read_file(name) == page

    try:
        path = _record(tmp_path, script, hostnet.NetOptions("user"), NET_CHECK_EVERY, downloaded)
        return path, ready
    finally:
        server.shutdown()


def test_a_session_with_keys_and_host_network_traffic_replays_exactly(
    http_session: tuple[Path, list[bool]],
) -> None:
    path, ready = http_session
    assert False in ready  # the NIC's ring was full: frames for the guest waited in the Link
    events = Recording.load(path).events()
    tags = {event[0] for event in events}
    assert {"B", "K", "C", "E", "F", "f"} <= tags  # keys, both kinds of frames, checks
    replayer = _replayer(path.parent, path, net="user")
    result = replayer.run(wall_timeout_s=300)
    assert result.divergence is None
    assert result.checks >= 5 and result.boundaries > 100
    screen = "\n".join(line.rstrip() for line in _screen(replayer.pc))
    assert screen == (path.parent / "screen.txt").read_text()
    page = b"".join(b"line %d\n" % i for i in range(PAGE_LINES))
    wc = f"{PAGE_LINES} {2 * PAGE_LINES} {len(page)} /page.out"
    assert wc in screen  # wc of the served page, with no server now


def _screen(pc: Pc) -> list[str]:
    from tradekernel.ui.ansi import screen_text

    return screen_text(pc.vga.text_screen())


def _rewrite(path: Path, change) -> Path:  # noqa: ANN001
    """The recording at `path` with its body changed by `change(bytearray)`, validly sealed."""
    recording = Recording.load(path)
    body = bytearray(recording.body)
    change(body)
    out = path.with_name("changed.tkrec")
    Recording(recording.header, bytes(body)).save(out)
    return out


def test_a_host_that_drives_a_device_between_runs_is_refused(tmp_path: Path) -> None:
    """The host reading the guest's files through the kernel during a recording issues ATA
    commands and fills the page cache, none of it in the recording: that is what made the
    network session's replay diverge (registers and RAM agreed, the IDE registers did not,
    where the recording had read its downloaded files back between two commands)."""

    def script(booted: BootedPc) -> None:
        booted.boot()
        booted.command("echo recorded > /seen.txt")
        assert booted.pc.kernel.fs.read_file("/seen.txt") == b"recorded\n"
        booted.command("ls -l /bin")

    with pytest.raises(RecordingError, match=r"^the host changed device ide0 between runs"):
        _record(tmp_path, script)


def test_a_changed_key_is_reported_as_a_divergence(tmp_path: Path) -> None:
    path = _record(tmp_path, _typing)
    events = Recording.load(path).events()
    first_r = next(e for e in events if e[0] == "K" and e[2][0] == "r")  # "echo recorded"

    def change(body: bytearray) -> None:
        at = body.index(b"K" + struct.pack("<QQI", *first_r[1]))
        name = at + 1 + record._K.size
        assert body[name : name + 1] == b"r"
        body[name : name + 1] = b"x"

    result = _replayer(tmp_path, _rewrite(path, change)).run(wall_timeout_s=120)
    assert result.divergence is not None and "\n" not in result.divergence
    assert result.divergence.startswith("replay diverged at instruction ")
    at = int(result.divergence.split()[4])
    assert at >= first_r[1][0]  # not before the changed key went in


def test_a_byte_of_ram_changed_during_replay_is_caught_by_the_state_hash(tmp_path: Path) -> None:
    path = _record(tmp_path, _typing)
    replayer = _replayer(tmp_path, path)
    poke_at = 3_000
    passes = replayer.passes
    check = passes.before

    def before(position: tuple[int, int, int]) -> None:
        if position[0] >= poke_at and not poked:
            poked.append(position)
            top = replayer.pc.machine.cpu.ram_bytes - 1  # a byte nothing looks at
            replayer.pc.machine.memory.write(top, b"\x5a")
        check(position)

    poked: list[tuple[int, int, int]] = []
    passes.before = before
    result = replayer.run(wall_timeout_s=120)
    assert poked, "the poke never happened"
    assert result.divergence is not None
    assert "state hash" in result.divergence
    assert int(result.divergence.split()[4]) >= poked[0][0]


def test_an_unchanged_replay_of_typing_agrees_and_replay_until_stops_there(tmp_path: Path) -> None:
    path = _record(tmp_path, _typing)
    assert _replayer(tmp_path, path).run(wall_timeout_s=120).divergence is None
    replayer = _replayer(tmp_path, path)
    result = replayer.run(until_ns=3_500, wall_timeout_s=120)
    assert result.stop.reason == "until" and result.divergence is None
    assert 3_500 <= result.position[1] < 4_000  # left at that instant for a debugger


def test_damaged_truncated_and_foreign_files_are_refused_with_one_line(tmp_path: Path) -> None:
    path = _record(tmp_path, _typing)
    data = path.read_bytes()
    cases = {
        "flipped": data[:100] + bytes([data[100] ^ 1]) + data[101:],
        "truncated": data[: len(data) // 2],
        "version": data[:6] + struct.pack("<H", 99) + data[8:],
        "foreign": b"PK\x03\x04" + data[4:],
    }
    messages = {}
    for name, content in cases.items():
        bad = tmp_path / f"{name}.tkrec"
        bad.write_bytes(content)
        with pytest.raises(RecordingError) as caught:
            Recording.load(bad)
        messages[name] = str(caught.value)
        assert "\n" not in messages[name]
    assert "checksum" in messages["flipped"]
    assert "version 99" in messages["version"]
    assert "not a TradeKernel recording" in messages["foreign"]
    # a body that does not parse, sealed with a valid checksum, is refused the same way
    broken = _rewrite(path, lambda body: body.__setitem__(0, ord("Z")))
    with pytest.raises(RecordingError, match="damaged recording body"):
        Recording.load(broken).events()


def test_another_disk_image_is_refused(tmp_path: Path) -> None:
    path = _record(tmp_path, _typing)
    other = tmp_path / "other.img"
    shutil.copy(tmp_path / "disk.img", other)  # the disk after the run: it was written
    with open(other, "r+b") as image:
        image.seek(4096)
        image.write(b"changed")
    with pytest.raises(RecordingError, match="not the recorded one"):
        check_images(Recording.load(path), other, None)
    with pytest.raises(RecordingError, match="recorded with a disk"):
        check_images(Recording.load(path), None, None)


def test_recording_needs_deterministic_time(tmp_path: Path) -> None:
    disk = tmp_path / "disk.img"
    create_os_disk(disk)
    pc = make_pc(PcConfig(disk=disk, deterministic=False, net="none"))
    try:
        with pytest.raises(RecordingError, match="deterministic"):
            Recorder(pc)
    finally:
        pc.close()
        pc.machine.close()


def test_a_malformed_header_is_refused_with_one_line_not_a_traceback(tmp_path: Path) -> None:
    # the file's digest is no seal: anyone can write a header that parses as JSON
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(512))
    with pytest.raises(RecordingError, match="damaged recording header"):
        check_images(Recording({"disk": "disk.img"}, b""), image, None)
    header = {"ram_mib": float("inf"), "mac": "525400123456", "disk": None, "floppy": None}
    with pytest.raises(RecordingError, match="damaged recording header"):
        record.replay_config(Recording(header, b""), None, None)


def _sealed(path: Path, header: dict, compressed: bytes) -> Path:
    """A recording file with this header and compressed body and a valid digest (which is no
    seal: anyone can compute it)."""
    text = json.dumps(header).encode()
    data = b"".join([record.MAGIC, struct.pack("<HI", record.FORMAT_VERSION, len(text)), text,
                     struct.pack("<Q", len(compressed)), compressed])  # fmt: skip
    path.write_bytes(data + hashlib.sha256(data).digest())
    return path


def test_a_zip_bomb_is_refused_without_inflating_it(tmp_path: Path) -> None:
    """200 MB of zeros in a ~200 KB body: declared as 1 KB, it is refused at the first byte
    past the declaration, and loading never holds more than a few MB; declared as more than
    MAX_RECORDS, or more than deflate can make of the body, it is refused before inflating."""
    bomb = zlib.compress(bytes(200 << 20), 9)
    small = _sealed(tmp_path / "small.tkrec", {"body_bytes": 1024}, bomb)
    tracemalloc.start()
    try:
        with pytest.raises(RecordingError, match="beyond the 1024 bytes its header declares"):
            Recording.load(small)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, peak  # the file is read and inflated a chunk at a time
    huge = _sealed(tmp_path / "huge.tkrec", {"body_bytes": 200 << 30}, bomb)
    with pytest.raises(RecordingError, match="at most"):
        Recording.load(huge)
    ratio = _sealed(tmp_path / "ratio.tkrec", {"body_bytes": 10 << 20}, zlib.compress(b"x"))
    with pytest.raises(RecordingError, match="at most"):
        Recording.load(ratio)
    short = _sealed(tmp_path / "short.tkrec", {"body_bytes": 5}, zlib.compress(b"abc"))
    with pytest.raises(RecordingError, match="cut short: 3 of 5"):
        Recording.load(short)
    undeclared = _sealed(tmp_path / "old.tkrec", {}, zlib.compress(b"abc"))
    with pytest.raises(RecordingError, match=r"damaged recording \(header\)"):
        Recording.load(undeclared)
    exact = _sealed(tmp_path / "exact.tkrec", {"body_bytes": 3}, zlib.compress(b"abc"))
    assert Recording.load(exact).body == b"abc"
