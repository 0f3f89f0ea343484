"""The NAT's header-predicted path for a guest's upload (UserNetwork._tcp_data and
TcpRelay.guest_data) against the general one it shortcuts: the same frames back to the guest,
the same bytes to the host, and a data segment with a wrong TCP or IPv4 checksum dropped and
counted on either path (the short one verifies both sums too)."""

from __future__ import annotations

import socket
import threading

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from tests.hostnet.conftest import GATEWAY_MAC, GUEST_MAC, Guest
from tests.hostnet.test_user import GuestTcp
from tradekernel.hostnet.tcprelay import TcpRelay
from tradekernel.hostnet.user import UserNetwork

GUEST_DATA = TcpRelay.guest_data
CHUNKS = [bytes([i]) * (700 + 97 * i) for i in range(12)]


def _sink() -> tuple[socket.socket, list[bytes], threading.Thread]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    got: list[bytes] = []

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            while chunk := conn.recv(65536):
                got.append(chunk)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server, got, thread


def _corrupt(conn: GuestTcp, data: bytes, layer: str) -> None:
    """A data segment at the next sequence number whose `layer` checksum is wrong."""
    ip = IP(src="10.0.2.15", dst="10.0.2.2", chksum=0xBEEF if layer == "ip" else None)
    tcp = TCP(sport=conn.sport, dport=conn.dport, flags="A", seq=conn.seq, ack=conn.ack,
              window=65535, chksum=0xDEAD if layer == "tcp" else None)  # fmt: skip
    conn.guest.send(Ether(src=GUEST_MAC, dst=GATEWAY_MAC) / ip / tcp / data)


def _upload(monkeypatch: pytest.MonkeyPatch, predict: bool) -> tuple[list, bytes, dict, int]:
    """CHUNKS uploaded with two corrupt copies among them, then FIN: the NAT's frames to the
    guest (flags, seq, ack, window), what the host read, the drop counters, and how many
    segments the short path took."""
    taken = 0

    def counted(self: TcpRelay, *args: object) -> bool:
        nonlocal taken
        result = predict and GUEST_DATA(self, *args)  # type: ignore[arg-type]
        taken += bool(result)
        return result

    monkeypatch.setattr(TcpRelay, "guest_data", counted)
    server, got, thread = _sink()
    backend = UserNetwork(seed=7)
    guest = Guest(backend)
    try:
        conn = GuestTcp(guest, 40100, "10.0.2.2", server.getsockname()[1])
        conn.seq = 1_000_000
        conn.segment("S")
        conn.expect("SA")
        conn.segment("A")
        for i, chunk in enumerate(CHUNKS):
            if i == 4:
                _corrupt(conn, b"X" * len(chunk), "tcp")
            if i == 7:
                _corrupt(conn, b"Y" * len(chunk), "ip")
            conn.segment("A", chunk)
        conn.segment("FA")
        thread.join(timeout=5)
        guest.pump(0.05)
        frames = [(str(p[TCP].flags), p[TCP].seq, p[TCP].ack, p[TCP].window)
                  for p in (Ether(f) for f in guest.frames) if TCP in p]  # fmt: skip
        drops = {k: v for k, v in backend.counters.items() if k.startswith("malformed")}
        return frames, b"".join(got), drops, taken
    finally:
        backend.close()
        server.close()


def test_the_short_path_leaves_what_the_general_path_leaves(
        monkeypatch: pytest.MonkeyPatch) -> None:
    general = _upload(monkeypatch, predict=False)
    short = _upload(monkeypatch, predict=True)
    assert general[3] == 0 and short[3] == len(CHUNKS)
    assert short[:3] == general[:3]
    frames, host, drops, _ = short
    assert host == b"".join(CHUNKS)
    assert drops == {"malformed": 2, "malformed: TCP": 1, "malformed: IPv4": 1}
    acks = [f for f in frames if f[0] == "A"]
    assert len(acks) >= len(CHUNKS) // 2  # every second segment at least (RFC 5681 4.2)
