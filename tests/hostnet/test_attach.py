"""The whole cable: an NE2000 driven through its ports, hostnet.attach() wiring it to a backend
the way the PC does, and frames crossing both ways into the receive ring."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import pytest
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from tests.devices.conftest import make_board
from tests.devices.test_ne2000 import MAC, Driver
from tradekernel import hostnet
from tradekernel.devices.ne2000 import Ne2000
from tradekernel.hostnet import NetOptions
from tradekernel.hostnet.link import NoBackend


class Bench:
    """What hostnet.attach() needs of a machine: channels, clock, idle feeders, post()."""

    def __init__(self) -> None:
        self.board = make_board()
        self.channels = self.board.channels
        self.clock = self.board.clock
        self.feeders: list[Callable[[], bool]] = []
        self.posted: deque[Callable[[], None]] = deque()
        self.nic = Ne2000(mac=MAC)
        self.nic.attach(self.board)
        self.driver = Driver(self.board)
        self.driver.init(rcr=0x04)

    def feed_when_idle(self, feeder: Callable[[], bool]) -> None:
        self.feeders.append(feeder)

    def post(self, action: Callable[[], None]) -> None:
        self.posted.append(action)

    def idle(self) -> bool:
        return any([feeder() for feeder in self.feeders])

    def run_posted(self) -> int:
        count = 0
        while self.posted:
            self.posted.popleft()()
            count += 1
        return count


def discover() -> bytes:
    return bytes(
        Ether(src=MAC, dst="ff:ff:ff:ff:ff:ff")
        / IP(src="0.0.0.0", dst="255.255.255.255")
        / UDP(sport=68, dport=67)
        / BOOTP(chaddr=MAC, xid=42, flags=0x8000)
        / DHCP(options=[("message-type", "discover"), "end"])
    )


def test_guest_dhcp_discover_through_the_nic_gets_an_offer_in_the_ring(tmp_path: Path) -> None:
    bench = Bench()
    link = hostnet.attach(bench, NetOptions("user", pcap=str(tmp_path / "a.pcap")), True)
    try:
        bench.clock.advance_to(5_000_000)
        bench.driver.transmit(discover())
        frames = bench.driver.drain()
        assert len(frames) == 1
        offer = Ether(frames[0][1])
        assert offer[BOOTP].yiaddr == "10.0.2.15" and offer[BOOTP].xid == 42
        assert link.frames_out == 1 and link.frames_in == 1
    finally:
        link.close()
    data = (tmp_path / "a.pcap").read_bytes()
    magic, _, _, _, _, _, linktype = struct.unpack("=IHHiIII", data[:24])
    assert magic == 0xA1B2C3D4 and linktype == 1
    seconds, micros, _, _ = struct.unpack("=IIII", data[24:40])
    assert (seconds * 1_000_000 + micros) * 1000 == hostnet.DETERMINISTIC_PCAP_EPOCH_NS + 5_000_000


def test_realtime_waker_asks_the_loop_to_poll_when_a_host_frame_arrives() -> None:
    """A UDP reply from a host socket: the waker thread posts a poll, the loop runs it, and the
    frame lands in the NIC ring; the waker itself never delivers."""
    bench = Bench()
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(5)
    link = hostnet.attach(bench, NetOptions("user"), deterministic=False)
    try:
        bench.driver.transmit(bytes(
            Ether(src=MAC, dst="52:55:0a:00:02:02") / IP(src="10.0.2.15", dst="10.0.2.2")
            / UDP(sport=7000, dport=server.getsockname()[1]) / b"tick"
        ))  # fmt: skip
        data, client = server.recvfrom(100)
        server.sendto(b"tock", client)
        deadline = time.monotonic() + 5
        while not bench.posted and time.monotonic() < deadline:
            time.sleep(0.001)
        assert bench.driver.drain() == []  # nothing reaches the NIC outside the loop
        assert bench.run_posted() >= 1
        ((_, frame),) = bench.driver.drain()
        assert Ether(frame)[Raw].load == b"tock"
    finally:
        link.close()
        server.close()
    assert not any(t.name == "hostnet-waker" for t in threading.enumerate())


def test_none_backend_and_bad_specs() -> None:
    bench = Bench()
    link = hostnet.attach(bench, NetOptions("none"))
    bench.driver.transmit(discover())
    assert isinstance(link.backend, NoBackend) and link.backend.sent == 1
    assert not bench.idle()
    link.close()
    bad = ("carrier-pigeon", "user:x", "socket:", "socket:mcast=10.0.0.1:5", "tap:" + "x" * 20)
    for spec in bad:  # one ValueError each (TapError is one), as the command line reports them
        with pytest.raises(ValueError):
            hostnet.make_backend(spec)
    with pytest.raises(ValueError, match="only with --net user"):
        hostnet.make_backend("none", ["tcp:1-:1"])


class _Broken:
    name = "broken"

    def start(self, deliver: Callable[[bytes], None]) -> None:
        pass

    def send(self, frame: bytes) -> None:
        raise RuntimeError("bug in the backend")

    def poll(self) -> None:
        raise OSError("host error")

    def filenos(self) -> list[int]:
        return []

    def next_timeout(self) -> float | None:
        return None

    def close(self) -> None:
        pass


def test_a_failing_backend_costs_the_frame_not_the_machine() -> None:
    from tradekernel.hostnet.link import Link

    bench = Bench()
    logs: list[object] = []
    bench.channels.listen("log", logs.append)
    link = Link(bench.channels, _Broken(), bench.clock.now_ns)
    bench.driver.transmit(discover())
    assert bench.driver.inb(7) & 0x02  # the transmit still completed
    assert link.poll() is False
    assert link.backend_errors == 2 and len(logs) == 2
    assert "RuntimeError: bug in the backend" in str(logs[0]) and "\n" not in str(logs[0])
