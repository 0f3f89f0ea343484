"""The user-mode NAT against real peers: host sockets on 127.0.0.1 at one end, scapy-built and
scapy-parsed frames (an independent TCP/IP implementation) standing in for the guest."""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable

import pytest
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether

from tradekernel.hostnet.user import UserNetwork, parse_hostfwd

from .conftest import GATEWAY_MAC, GUEST_MAC, Guest, is_icmp, is_tcp, is_udp

BROADCAST = "ff:ff:ff:ff:ff:ff"


def dhcp_options(packet) -> dict:  # noqa: ANN001
    return {o[0]: o[1:] for o in packet[DHCP].options if isinstance(o, tuple)}


def test_dhcp_discover_offer_request_ack(user: Guest) -> None:
    mac = bytes.fromhex(GUEST_MAC.replace(":", ""))
    base = Ether(src=GUEST_MAC, dst=BROADCAST) / IP(src="0.0.0.0", dst="255.255.255.255")
    base /= UDP(sport=68, dport=67)
    user.send(base / BOOTP(chaddr=mac, xid=0x1234, flags=0x8000)
              / DHCP(options=[("message-type", "discover"), "end"]))  # fmt: skip
    offer = user.take(lambda p: DHCP in p)
    assert offer[Ether].dst == BROADCAST and offer[IP].dst == "255.255.255.255"
    assert offer[BOOTP].yiaddr == "10.0.2.15" and offer[BOOTP].xid == 0x1234
    options = dhcp_options(offer)
    assert options["message-type"] == (2,)  # OFFER
    assert options["server_id"] == ("10.0.2.2",)
    assert options["subnet_mask"] == ("255.255.255.0",)
    assert options["router"] == ("10.0.2.2",)
    assert options["name_server"] == ("10.0.2.3",)
    assert options["lease_time"] == (86400,)
    user.send(base / BOOTP(chaddr=mac, xid=0x1235)
              / DHCP(options=[("message-type", "request"), ("requested_addr", "10.0.2.15"),
                              ("server_id", "10.0.2.2"), "end"]))  # fmt: skip
    ack = user.take(lambda p: DHCP in p)
    assert dhcp_options(ack)["message-type"] == (5,)  # ACK
    assert ack[Ether].dst == GUEST_MAC and ack[IP].dst == "10.0.2.15"  # unicast: no flag
    user.send(base / BOOTP(chaddr=mac, xid=0x1236)
              / DHCP(options=[("message-type", "request"), ("requested_addr", "10.0.2.99"),
                              "end"]))  # fmt: skip
    assert dhcp_options(user.take(lambda p: DHCP in p))["message-type"] == (6,)  # NAK


def test_arp_and_ping_gateway_and_dns(user: Guest) -> None:
    for address in ("10.0.2.2", "10.0.2.3"):
        user.send(Ether(src=GUEST_MAC, dst=BROADCAST)
                  / ARP(op=1, hwsrc=GUEST_MAC, psrc="10.0.2.15", pdst=address))  # fmt: skip
        reply = user.take(lambda p: ARP in p)
        assert reply[ARP].op == 2 and reply[ARP].psrc == address
        assert reply[ARP].hwsrc == GATEWAY_MAC and reply[ARP].pdst == "10.0.2.15"
        user.ip(ICMP(type=8, id=7, seq=3) / b"payload-123", dst=address)
        echo = user.take(is_icmp(0))
        assert echo[IP].src == address and echo[ICMP].id == 7 and echo[ICMP].seq == 3
        assert bytes(echo[ICMP].payload) == b"payload-123"
        rebuilt = IP(bytes(echo[IP]))
        del rebuilt[ICMP].chksum, rebuilt[IP].chksum
        assert IP(bytes(rebuilt))[ICMP].chksum == echo[ICMP].chksum  # scapy agrees
    user.send(Ether(src=GUEST_MAC, dst=BROADCAST)
              / ARP(op=1, hwsrc=GUEST_MAC, psrc="10.0.2.15", pdst="10.0.2.77"))  # fmt: skip
    user.pump(0.05)
    assert user.frames == []


def test_dns_query_answered_from_host_resolver(user: Guest) -> None:
    user.ip(UDP(sport=5353, dport=53) / DNS(id=99, rd=1, qd=DNSQR(qname="localhost")),
            dst="10.0.2.3")  # fmt: skip
    answer = user.take(is_udp(5353))
    assert answer[IP].src == "10.0.2.3" and answer[UDP].sport == 53
    dns = answer[DNS]
    assert dns.id == 99 and dns.qr == 1 and dns.rcode == 0 and dns.ancount >= 1
    assert dns.an[0].rdata == "10.0.2.2"  # the host's loopback, as the guest reaches it


def test_dns_nxdomain_from_resolver() -> None:
    backend = UserNetwork(resolver=lambda name, gateway: (3, []))
    guest = Guest(backend)
    try:
        guest.ip(UDP(sport=4000, dport=53) / DNS(id=5, qd=DNSQR(qname="nowhere.invalid")),
                 dst="10.0.2.3")  # fmt: skip
        assert guest.take(is_udp(4000))[DNS].rcode == 3
    finally:
        backend.close()


@pytest.fixture
def echo_server() -> tuple[int, list[bytes]]:
    """A host TCP server on 127.0.0.1 that records what it gets, answers 'reply:'+data, and
    closes after the client does."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(5)
    got: list[bytes] = []

    def serve() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        conn.settimeout(5)
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                got.append(data)
                conn.sendall(b"reply:" + data)
        server.close()

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1], got
    server.close()


class GuestTcp:
    """The guest's half of one TCP connection, written out segment by segment."""

    def __init__(self, guest: Guest, sport: int, dst: str, dport: int) -> None:
        self.guest, self.sport, self.dst, self.dport = guest, sport, dst, dport
        self.seq = random.getrandbits(32)
        self.ack = 0

    def segment(self, flags: str, payload: bytes = b"", window: int = 65535) -> None:
        tcp = TCP(sport=self.sport, dport=self.dport, flags=flags, seq=self.seq, ack=self.ack,
                  window=window)  # fmt: skip
        self.guest.ip(tcp / payload if payload else tcp, dst=self.dst)
        self.seq = (self.seq + len(payload) + (1 if "S" in flags or "F" in flags else 0)) % 2**32

    def expect(self, flags: str) -> TCP:
        packet = self.guest.take(
            lambda p: TCP in p and p[TCP].dport == self.sport and str(p[TCP].flags) == flags
        )
        tcp = packet[TCP]
        length = len(bytes(tcp.payload)) + (1 if "S" in flags or "F" in flags else 0)
        self.ack = (tcp.seq + length) % 2**32
        return tcp


def test_tcp_to_host_server_through_nat(user: Guest, echo_server) -> None:  # noqa: ANN001
    port, got = echo_server
    conn = GuestTcp(user, 40000, "10.0.2.2", port)
    conn.segment("S")
    synack = conn.expect("SA")
    assert synack.ack == conn.seq and dict(synack.options)["MSS"] == 1460
    conn.segment("A")
    conn.segment("PA", b"hello host")
    ack = conn.expect("A")
    assert ack.ack == conn.seq
    data = conn.expect("PA")
    assert bytes(data.payload) == b"reply:hello host"
    conn.segment("A")
    conn.segment("FA")
    fin = user.take(lambda p: TCP in p and "F" in str(p[TCP].flags))
    assert fin[TCP].ack == conn.seq
    conn.ack = (fin[TCP].seq + 1) % 2**32
    conn.segment("A")
    assert got == [b"hello host"]
    user.pump(0.05)
    assert user.backend.tcp == {}  # both FINs acknowledged: the relay is gone


def test_tcp_refused_port_gets_rst(user: Guest) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    conn = GuestTcp(user, 40001, "10.0.2.2", port)
    conn.segment("S")
    rst = user.take(lambda p: TCP in p and "R" in str(p[TCP].flags))
    assert rst[TCP].ack == conn.seq


def test_tcp_bulk_host_to_guest_with_window_and_retransmit(user: Guest) -> None:
    """300 KB from a host server to the guest, the guest's window 8 KB, and the first data
    segment 'lost': everything arrives in order, retransmitted after the RTO."""
    payload = bytes(random.Random(1).randbytes(300_000))
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def serve() -> None:
        conn, _ = server.accept()
        conn.sendall(payload)
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    conn = GuestTcp(user, 40002, "10.0.2.2", server.getsockname()[1])
    conn.segment("S", window=8192)
    conn.expect("SA")
    conn.segment("A", window=8192)
    received = bytearray()
    dropped_one = False
    for _ in range(5000):
        packet = user.take(lambda p: TCP in p and p[TCP].dport == 40002, timeout=5)
        tcp = packet[TCP]
        data = bytes(tcp.payload)
        assert len(data) <= 1460
        if data and not dropped_one:
            dropped_one = True
            continue  # lost on the wire
        if tcp.seq == conn.ack and data:
            received += data
            conn.ack = (conn.ack + len(data)) % 2**32
        if "F" in str(tcp.flags) and tcp.seq == conn.ack:
            conn.ack = (conn.ack + 1) % 2**32
            conn.segment("A", window=8192)
            break
        conn.segment("A", window=8192)
    assert bytes(received) == payload
    server.close()


def test_udp_to_host_and_back(user: Guest) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(5)
    user.ip(UDP(sport=3333, dport=server.getsockname()[1]) / b"ping over udp")
    data, client = server.recvfrom(2048)
    assert data == b"ping over udp"
    server.sendto(b"pong", client)
    reply = user.take(is_udp(3333))
    assert reply[IP].src == "10.0.2.2" and bytes(reply[UDP].payload) == b"pong"
    server.close()


def test_hostfwd_tcp_into_guest() -> None:
    backend = UserNetwork(hostfwd=["tcp:127.0.0.1:0-:8080"])
    guest = Guest(backend)
    port = backend.forwards[0].bound_port
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        # Before the guest has spoken, the NAT asks for its MAC address.
        who_has = guest.take(lambda p: ARP in p)
        assert who_has[ARP].pdst == "10.0.2.15"
        guest.send(Ether(src=GUEST_MAC, dst=GATEWAY_MAC)
                   / ARP(op=2, hwsrc=GUEST_MAC, psrc="10.0.2.15", hwdst=GATEWAY_MAC,
                         pdst="10.0.2.2"))  # fmt: skip
        syn = guest.take(is_tcp("S"))
        assert syn[IP].src == "10.0.2.2" and syn[TCP].dport == 8080
        conn = GuestTcp(guest, 8080, "10.0.2.2", syn[TCP].sport)
        conn.ack = (syn[TCP].seq + 1) % 2**32
        conn.segment("SA")
        conn.expect("A")
        client.sendall(b"GET / HTTP/1.0\r\n\r\n")
        request = conn.expect("PA")
        assert bytes(request.payload) == b"GET / HTTP/1.0\r\n\r\n"
        conn.segment("PA", b"HTTP/1.0 200 OK\r\n\r\nhi")
        conn.segment("FA")
        assert client.recv(100) == b"HTTP/1.0 200 OK\r\n\r\nhi"
        guest.pump(0.05)
        assert client.recv(100) == b""  # the guest's FIN reached the host client
    finally:
        client.close()
        backend.close()


def test_hostfwd_udp_into_guest_and_reply() -> None:
    backend = UserNetwork(hostfwd=["udp:0-:5000"])
    guest = Guest(backend)
    guest.ip(ICMP(type=8) / b"x")  # the guest speaks first: its MAC is known
    guest.take(is_icmp(0))
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(5)
    try:
        client.sendto(b"quote?", ("127.0.0.1", backend.forwards[0].bound_port))
        datagram = guest.take(is_udp(5000))
        assert bytes(datagram[UDP].payload) == b"quote?"
        guest.ip(UDP(sport=5000, dport=datagram[UDP].sport) / b"101.25")
        assert client.recvfrom(100)[0] == b"101.25"
    finally:
        client.close()
        backend.close()


def test_hostfwd_spec_errors() -> None:
    assert parse_hostfwd("tcp:8080-:80").guest_port == 80
    assert parse_hostfwd("udp:0.0.0.0:53-10.0.2.15:53").host_address == "0.0.0.0"
    for bad in ("tcp:8080", "icmp:1-:1", "tcp:x-:80", "tcp:80-10.0.2.9:80", "tcp:1-:0"):
        with pytest.raises(ValueError, match="--hostfwd"):
            parse_hostfwd(bad)


def test_hostile_frames_are_counted_and_dropped(user: Guest) -> None:
    rng = random.Random(3)
    hostile = [
        b"",
        b"\x00" * 13,
        bytes(Ether(src=GUEST_MAC) / IP(dst="10.0.2.2", ihl=15) / b"x"),
        bytes(Ether(src=GUEST_MAC) / IP(dst="10.0.2.2", len=9000) / UDP()),
        bytes(Ether(src=GUEST_MAC) / IP(dst="10.0.2.2", chksum=1) / UDP()),
        bytes(Ether(src=GUEST_MAC) / IP(dst="10.0.2.2") / UDP(dport=53, chksum=7) / b"abc"),
        bytes(Ether(src=GUEST_MAC) / IP(dst="10.0.2.3") / UDP(dport=53) / (b"\x00" * 12 + b"\x3f")),
        bytes(Ether(src=GUEST_MAC) / IP(dst="10.0.2.2", frag=5) / UDP()),
        bytes(Ether(src=GUEST_MAC) / IP(dst="10.0.2.2") / TCP(dataofs=15)),
        bytes(Ether(src=GUEST_MAC) / IP(dst="10.0.2.2") / TCP(options=[(2, b"\x05")])),
        bytes(Ether(src=GUEST_MAC, dst=BROADCAST) / IP(src="0.0.0.0", dst="255.255.255.255")
              / UDP(sport=68, dport=67) / (b"\x01\x01\x06" + b"\x00" * 300)),  # fmt: skip
    ]
    for _ in range(300):
        base = bytearray(bytes(Ether(src=GUEST_MAC) / IP(dst="10.0.2.2") / TCP(flags="S")))
        for _ in range(rng.randrange(1, 6)):
            base[rng.randrange(len(base))] = rng.randrange(256)
        hostile.append(bytes(base[: rng.randrange(len(base) + 1)]))
    for frame in hostile:
        user.backend.send(frame)
    user.pump(0.05)
    assert user.backend.counters["malformed"] >= 9


def open_to_host(user: Guest, sport: int, port: int, window: int = 65535) -> GuestTcp:
    conn = GuestTcp(user, sport, "10.0.2.2", port)
    conn.segment("S", window=window)
    conn.expect("SA")
    conn.segment("A", window=window)
    return conn


def test_guest_rst_resets_the_host_connection(user: Guest) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(5)
    conn = open_to_host(user, 40010, server.getsockname()[1])
    host_side, _ = server.accept()
    host_side.settimeout(5)
    conn.segment("R")
    user.pump(0.02)
    with pytest.raises(ConnectionResetError):
        host_side.recv(10)  # SO_LINGER 0: the host peer sees RST, not a quiet FIN
    assert user.backend.tcp == {}
    host_side.close()
    server.close()


def test_zero_window_is_respected_then_probed_and_reopened(user: Guest) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(5)
    conn = open_to_host(user, 40011, server.getsockname()[1], window=0)
    host_side, _ = server.accept()
    host_side.sendall(b"x" * 5000)
    user.pump(0.1)
    assert [f for f in user.frames if TCP in Ether(f) and bytes(Ether(f)[TCP].payload)] == []
    probe = user.take(lambda p: TCP in p and len(bytes(p[TCP].payload)) == 1, timeout=3)
    assert probe[TCP].seq == conn.ack  # one byte just beyond the closed window
    conn.segment("A", window=65535)  # window opens; the probe byte is not acknowledged
    received = bytearray()
    while len(received) < 5000:
        tcp = user.take(
            lambda p: TCP in p and p[TCP].dport == 40011 and len(bytes(p[TCP].payload)) > 0
        )
        if tcp[TCP].seq == conn.ack:
            received += bytes(tcp[TCP].payload)
            conn.ack = (conn.ack + len(bytes(tcp[TCP].payload))) % 2**32
            conn.segment("A")
    assert bytes(received) == b"x" * 5000
    host_side.close()
    server.close()


def test_bulk_guest_to_host_within_the_advertised_window(user: Guest) -> None:
    payload = random.Random(2).randbytes(400_000)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    got = bytearray()

    def serve() -> None:
        host_side, _ = server.accept()
        with host_side:
            while chunk := host_side.recv(65536):
                got.extend(chunk)

    reader = threading.Thread(target=serve, daemon=True)
    reader.start()
    conn = open_to_host(user, 40012, server.getsockname()[1])
    window, acked, sent = 65535, conn.seq, 0
    while sent < len(payload):
        in_flight = (conn.seq - acked) % 2**32
        if in_flight + 1460 <= window:
            conn.segment("A", payload[sent : sent + 1460])
            sent += 1460
            continue
        reply = user.take(lambda p: TCP in p and p[TCP].dport == 40012)
        acked, window = reply[TCP].ack, reply[TCP].window
        assert (conn.seq - acked) % 2**32 <= 1460 + 65535  # never acked beyond what was sent
    conn.segment("FA")
    user.take(lambda p: TCP in p and p[TCP].ack == conn.seq)
    reader.join(5)
    assert bytes(got) == payload
    server.close()


def test_hostfwd_guest_refusing_closes_the_host_client() -> None:
    backend = UserNetwork(hostfwd=["tcp:0-:9999"])
    guest = Guest(backend)
    guest.ip(ICMP(type=8) / b"x")
    guest.take(is_icmp(0))
    client = socket.create_connection(("127.0.0.1", backend.forwards[0].bound_port), timeout=5)
    try:
        syn = guest.take(is_tcp("S"))
        guest.ip(TCP(sport=9999, dport=syn[TCP].sport, flags="RA", seq=0, ack=syn[TCP].seq + 1))
        guest.pump(0.02)
        with pytest.raises((ConnectionResetError, AssertionError)):
            assert client.recv(10) != b""
        assert backend.tcp == {}
    finally:
        client.close()
        backend.close()


def test_guest_data_is_acknowledged_every_second_segment_or_after_the_delay(user: Guest) -> None:
    """RFC 5681 4.2 for the relay: two full segments get one ACK at once; a lone one is
    acknowledged by the delayed-ACK timer (ACK_DELAY), and a PSH at once."""
    from tradekernel.hostnet import tcprelay

    sink = socket.create_server(("127.0.0.1", 0))
    conn = open_to_host(user, 40100, sink.getsockname()[1])
    peer, _ = sink.accept()
    user.pump(0.02)
    user.frames.clear()
    conn.segment("A", b"a" * 1460)
    assert user.frames == []  # the first waits for a second
    conn.segment("A", b"b" * 1460)
    assert len(user.frames) == 1 and Ether(user.frames[0])[TCP].ack == conn.seq
    user.frames.clear()
    conn.segment("A", b"c" * 1460)
    assert user.frames == []
    relay = next(iter(user.backend.tcp.values()))
    assert relay.next_deadline is not None
    time.sleep(tcprelay.ACK_DELAY * 2)
    user.backend.poll()
    assert [Ether(f)[TCP].ack for f in user.frames] == [conn.seq]
    user.frames.clear()
    conn.segment("PA", b"d")
    assert [Ether(f)[TCP].ack for f in user.frames] == [conn.seq]
    peer.close()
    sink.close()


def test_guest_data_reaches_the_host_in_batches_at_psh_or_after_the_delay(user: Guest) -> None:
    """Segments without PSH are gathered: one host write per HOST_WRITE_BATCH bytes, the rest
    by HOST_WRITE_DELAY after it waited; a PSH segment goes out at once with what was gathered."""
    from tradekernel.hostnet import tcprelay

    sink = socket.create_server(("127.0.0.1", 0))
    conn = open_to_host(user, 40101, sink.getsockname()[1])
    peer, _ = sink.accept()
    peer.setblocking(False)
    user.pump(0.02)
    relay = next(iter(user.backend.tcp.values()))
    writes: list[int] = []
    send = relay.sock.send

    def counted(data: bytes) -> int:
        writes.append(len(data))
        return send(data)

    relay.sock = _CountingSocket(relay.sock, counted)
    segments = tcprelay.HOST_WRITE_BATCH // 1000 + 2
    for i in range(segments):
        conn.segment("A", bytes([i]) * 1000)
    assert writes == [tcprelay.HOST_WRITE_BATCH // 1000 * 1000 + 1000]  # one write, not 18
    assert relay.next_deadline is not None
    user.backend.poll()
    assert writes[1:] == []  # the remainder waits for more ...
    time.sleep(tcprelay.HOST_WRITE_DELAY * 2)
    user.backend.poll()
    assert writes[1:] == [1000]  # ... until the delay is over
    conn.segment("PA", b"now")
    assert writes[2:] == [3]
    time.sleep(0.05)
    assert peer.recv(1 << 20) == b"".join(bytes([i]) * 1000 for i in range(segments)) + b"now"
    peer.close()
    sink.close()


class _CountingSocket:
    """A relay's host socket with its sends seen by the test."""

    def __init__(self, sock: socket.socket, send: Callable[[bytes], int]) -> None:
        self._sock, self.send = sock, send

    def __getattr__(self, name: str) -> object:
        return getattr(self._sock, name)
