"""`--pcap`: a whole NAT session (DHCP, ARP, ping, DNS, TCP, UDP) written through the Link's
tap and read back by tshark: every frame there, zero malformed, no TCP analysis warnings."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether

from tests.peers import peer
from tradekernel.emu.bus import Channels
from tradekernel.hostnet.link import Link
from tradekernel.hostnet.pcap import PcapWriter
from tradekernel.hostnet.user import UserNetwork

from .conftest import GUEST_MAC, Guest
from .test_user import GuestTcp


@pytest.fixture(autouse=True)
def _tshark() -> None:
    peer("tshark")


class CabledGuest(Guest):
    """A Guest whose frames travel over a Link (so its taps see them) instead of straight in."""

    def __init__(self, channels: Channels, link: Link) -> None:
        self.backend = link.backend
        self.frames = []
        self._channels = channels
        channels.listen("net0-receive", self.frames.append)

    def send(self, packet) -> None:  # noqa: ANN001
        self._channels.send("net0-send", bytes(packet))


CHECKSUMS = [f"-o{proto}.check_checksum:TRUE" for proto in ("ip", "udp", "tcp")]


def tshark(path: Path, *args: str) -> list[str]:
    """tshark with checksum validation on (off by default), so a bad checksum is a finding."""
    result = subprocess.run(["tshark", *CHECKSUMS, "-r", str(path), *args], capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line.strip()]


def test_nat_session_capture_reads_clean_in_tshark(tmp_path: Path) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"hello " + conn.recv(100))

    threading.Thread(target=serve, daemon=True).start()
    channels = Channels()
    backend = UserNetwork()
    start = time.monotonic_ns()
    link = Link(channels, backend, lambda: time.monotonic_ns() - start)
    capture = tmp_path / "session.pcap"
    writer = PcapWriter(capture, epoch_ns=1_700_000_000 * 10**9)
    link.add_tap(writer)
    guest = CabledGuest(channels, link)
    try:
        guest.send(Ether(src=GUEST_MAC, dst="ff:ff:ff:ff:ff:ff")
                   / IP(src="0.0.0.0", dst="255.255.255.255") / UDP(sport=68, dport=67)
                   / BOOTP(chaddr=bytes.fromhex(GUEST_MAC.replace(":", "")), xid=9)
                   / DHCP(options=[("message-type", "discover"), "end"]))  # fmt: skip
        guest.take(lambda p: DHCP in p)
        guest.send(Ether(src=GUEST_MAC, dst="ff:ff:ff:ff:ff:ff")
                   / ARP(op=1, hwsrc=GUEST_MAC, psrc="10.0.2.15", pdst="10.0.2.2"))  # fmt: skip
        guest.take(lambda p: ARP in p)
        guest.ip(ICMP(type=8, id=1, seq=1) / (b"p" * 56))
        guest.take(lambda p: ICMP in p)
        guest.ip(UDP(sport=5353, dport=53) / DNS(rd=1, qd=DNSQR(qname="localhost")),
                 dst="10.0.2.3")  # fmt: skip
        guest.take(lambda p: DNS in p)
        conn = GuestTcp(guest, 41000, "10.0.2.2", server.getsockname()[1])
        conn.segment("S")
        conn.expect("SA")
        conn.segment("A")
        conn.segment("PA", b"world")
        conn.expect("A")
        assert bytes(conn.expect("PA").payload) == b"hello world"
        conn.segment("A")
        fin = guest.take(lambda p: TCP in p and "F" in str(p[TCP].flags))
        conn.ack = (fin[TCP].seq + 1) % 2**32
        conn.segment("FA")
        guest.take(lambda p: TCP in p and str(p[TCP].flags) == "A")
    finally:
        link.close()
        writer.close()
        server.close()
    frames = tshark(capture, "-T", "fields", "-e", "frame.number")
    assert len(frames) == writer.frames == link.frames_in + link.frames_out
    bad = " || ".join(["_ws.malformed", "_ws.expert.severity >= warning",
                       *(f"{p}.checksum.status == 2" for p in ("ip", "udp", "tcp"))])  # fmt: skip
    assert tshark(capture, "-Y", bad) == []
    assert tshark(capture, "-Y", "tcp.analysis.flags && !tcp.analysis.window_update") == []
    protocols = " ".join(tshark(capture, "-T", "fields", "-e", "frame.protocols"))
    for name in ("dhcp", "arp", "icmp", "dns", "tcp"):
        assert name in protocols


def test_provoked_retransmission_is_what_tshark_flags(tmp_path: Path) -> None:
    """The guest ignores the NAT's first data segment: tshark sees exactly that retransmission
    and nothing malformed."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"market data" * 10)
            try:
                conn.recv(10)
            except ConnectionResetError:
                pass  # the NAT closing at the end of the test resets the connection

    threading.Thread(target=serve, daemon=True).start()
    channels = Channels()
    start = time.monotonic_ns()
    link = Link(channels, UserNetwork(), lambda: time.monotonic_ns() - start)
    capture = tmp_path / "retransmit.pcap"
    writer = PcapWriter(capture)
    link.add_tap(writer)
    guest = CabledGuest(channels, link)
    try:
        conn = GuestTcp(guest, 41001, "10.0.2.2", server.getsockname()[1])
        conn.segment("S")
        conn.expect("SA")
        conn.segment("A")
        first = guest.take(lambda p: TCP in p and len(bytes(p[TCP].payload)) > 0)  # "lost"
        again = guest.take(lambda p: TCP in p and len(bytes(p[TCP].payload)) > 0, timeout=5)
        assert again[TCP].seq == first[TCP].seq and bytes(again[TCP].payload) == b"market data" * 10
        conn.ack = (again[TCP].seq + len(bytes(again[TCP].payload))) % 2**32
        conn.segment("A")
        guest.pump(0.05)
    finally:
        link.close()
        writer.close()
        server.close()
    bad = " || ".join(["_ws.malformed", "_ws.expert.severity >= error",
                       *(f"{p}.checksum.status == 2" for p in ("ip", "udp", "tcp"))])  # fmt: skip
    assert tshark(capture, "-Y", bad) == []
    flagged = tshark(capture, "-Y", "tcp.analysis.retransmission", "-T", "fields", "-e", "tcp.seq")
    assert len(flagged) == 1
