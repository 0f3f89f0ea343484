"""The stack against Linux's TCP/IP over a TAP in a network namespace: ping both ways, TCP
connect and accept with multi-MiB transfers compared byte for byte, UDP both ways, DHCP (with
renewal) and DNS against dnsmasq; tshark then reads the session's pcap and must find no
malformed packet. Each test is bounded in time and removes its namespace."""

from __future__ import annotations

import errno
import hashlib
import random
import socket
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.net.linux import LINUX_IP, PREFIX, STACK_IP, LinuxPeer, sh
from tests.peers import peer as peer_tool
from tradekernel.kernel.net import SocketError
from tradekernel.kernel.net.sockets import (
    IP_ADD_MEMBERSHIP,
    IPPROTO_IP,
    IPPROTO_TCP,
    SO_KEEPALIVE,
    SO_REUSEADDR,
    SOL_SOCKET,
    TCP_KEEPCNT,
    TCP_KEEPIDLE,
    TCP_KEEPINTVL,
)
from tradekernel.kernel.net.tcp import State, TcpSocket
from tradekernel.kernel.net.wire import ip_str, ip_to_int

MIB = 1 << 20


@pytest.fixture
def peer(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[LinuxPeer]:
    p = LinuxPeer(tmp_path, str(abs(hash(request.node.name)) % 1000))
    try:
        yield p
        assert p.tshark("_ws.malformed") == 0, "tshark found malformed packets"
        assert p.stack.counters["stack.internal_errors"] == 0, list(p.stack.log_lines)
    finally:
        p.close()


def configured(p: LinuxPeer) -> LinuxPeer:
    p.stack.configure(ip_to_int(STACK_IP), PREFIX, ip_to_int(LINUX_IP))
    return p


def py(code: str) -> list[str]:
    return ["python3", "-c", textwrap.dedent(code)]


def test_ping_both_ways(peer: LinuxPeer) -> None:
    p = configured(peer)
    out, _ = p.wait_proc(p.spawn("ping", "-c", "3", "-i", "0.2", "-W", "2", STACK_IP), 15,
                         "Linux pinging the stack")
    assert b"3 received" in out
    sock = p.stack.open("icmp")
    for seq in range(1, 4):
        sock.sendto(b"\x08\0\0\0\0\0" + seq.to_bytes(2, "big") + b"tradekernel" * 5,
                    (LINUX_IP, 0))
        p.run(lambda: bool(sock.queue), 5, f"echo reply {seq} from Linux")
        reply, addr = sock.recvfrom()
        assert addr == (LINUX_IP, 0)
        assert reply[0] == 0 and reply[6:8] == seq.to_bytes(2, "big")
        assert reply[8:] == b"tradekernel" * 5
    # an echo larger than the MTU: Linux reassembles our fragments and fragments its reply
    sock.sendto(b"\x08\0\0\0\0\0\0\x09" + bytes(range(256)) * 16, (LINUX_IP, 0))
    p.run(lambda: bool(sock.queue), 5, "reply to a fragmented echo")
    assert sock.recvfrom()[0][8:] == bytes(range(256)) * 16
    assert p.stack.counters["ip.reasm_ok"] == 1


def _drain(sock: TcpSocket, into: bytearray) -> bool:
    """Read what is there; True at end of stream."""
    while True:
        try:
            data = sock.recv(1 << 16)
        except SocketError as exc:
            assert exc.errno == errno.EAGAIN
            return False
        if not data:
            return True
        into += data


def test_tcp_linux_connects_and_sends_then_receives(peer: LinuxPeer, tmp_path: Path) -> None:
    p = configured(peer)
    data = random.Random(1).randbytes(4 * MIB)
    (tmp_path / "up.bin").write_bytes(data)
    reply = random.Random(2).randbytes(2 * MIB)
    listener = p.stack.open("tcp")
    listener.bind(("", 5001))
    listener.listen(4)
    client = p.spawn(*py(f"""
        import socket, hashlib
        s = socket.create_connection(("{STACK_IP}", 5001), timeout=60)
        s.sendall(open("{tmp_path / 'up.bin'}", "rb").read())
        s.shutdown(socket.SHUT_WR)
        got = bytearray()
        while chunk := s.recv(65536):
            got += chunk
        print(hashlib.sha256(got).hexdigest(), len(got))
    """))
    p.run(lambda: bool(listener.accept_queue), 10, "Linux's connection")
    conn = listener.accept()
    assert conn.getpeername()[0] == LINUX_IP
    got = bytearray()
    p.run(lambda: _drain(conn, got), 90, "4 MiB from Linux")
    assert got == data
    assert conn.state is State.CLOSE_WAIT
    sent = 0

    def push() -> bool:
        nonlocal sent
        while sent < len(reply):
            try:
                sent += conn.send(reply[sent:])
            except SocketError:
                return False
        return True

    p.run(push, 90, "2 MiB queued to Linux")
    conn.close()
    out, _ = p.wait_proc(client, 90, "Linux reading our reply")
    assert out.split() == [hashlib.sha256(reply).hexdigest().encode(), str(len(reply)).encode()]
    p.run(lambda: not p.stack.tcp.conns, 10, "LAST_ACK to close")
    listener.close()


def test_tcp_stack_connects_and_sends(peer: LinuxPeer, tmp_path: Path) -> None:
    p = configured(peer)
    data = random.Random(3).randbytes(4 * MIB)
    out_file = tmp_path / "down.bin"
    server = p.spawn(*py(f"""
        import socket
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("{LINUX_IP}", 5002))
        srv.listen(1)
        print("ready", flush=True)
        conn, peer = srv.accept()
        conn.settimeout(60)
        with open("{out_file}", "wb") as f:
            while chunk := conn.recv(65536):
                f.write(chunk)
        conn.sendall(b"thanks")
        conn.close()
    """))
    assert server.stdout is not None and server.stdout.readline() == b"ready\n"
    sock = p.stack.open("tcp")
    with pytest.raises(SocketError) as info:
        sock.connect((LINUX_IP, 5002))
    assert info.value.errno == errno.EINPROGRESS
    p.run(lambda: sock.state is State.ESTABLISHED, 10, "connect to Linux")
    assert sock.take_error() == 0
    sent = 0

    def push() -> bool:
        nonlocal sent
        while sent < len(data):
            try:
                sent += sock.send(data[sent:])
            except SocketError:
                return False
        return True

    p.run(push, 90, "4 MiB to Linux")
    sock.shutdown(1)
    answer = bytearray()
    p.run(lambda: _drain(sock, answer), 90, "Linux's answer and FIN")
    assert answer == b"thanks"
    p.wait_proc(server, 30, "Linux server")
    assert out_file.read_bytes() == data
    assert sock.state is State.TIME_WAIT
    sock.close()
    assert p.tshark("tcp.analysis.zero_window") == 0


def test_tcp_both_ways_over_a_lossy_cable(tmp_path: Path) -> None:
    """Every 25th full-size frame is lost each way: both stacks must recover byte for byte,
    and tshark sees the retransmissions this test provoked (and nothing malformed)."""
    p = configured(LinuxPeer(tmp_path, "L", lose_every=25))
    try:
        up, down = random.Random(5).randbytes(MIB), random.Random(6).randbytes(MIB)
        (tmp_path / "up.bin").write_bytes(up)
        echo = p.spawn(*py(f"""
            import socket, hashlib
            s = socket.create_connection(("{STACK_IP}", 5003), timeout=60)
            s.sendall(open("{tmp_path / 'up.bin'}", "rb").read())
            s.shutdown(socket.SHUT_WR)
            got = bytearray()
            while chunk := s.recv(65536):
                got += chunk
            print(hashlib.sha256(got).hexdigest())
        """))
        listener = p.stack.open("tcp")
        listener.bind(("", 5003))
        listener.listen(1)
        p.run(lambda: bool(listener.accept_queue), 10, "Linux's connection")
        conn = listener.accept()
        got = bytearray()
        sent = 0

        def step() -> bool:
            nonlocal sent
            while sent < len(down):
                try:
                    sent += conn.send(down[sent:])
                except SocketError:
                    break
            if sent == len(down) and not conn.fin_queued:
                conn.shutdown(1)
            return _drain(conn, got) and sent == len(down)

        p.run(step, 120, "1 MiB each way with losses")
        assert got == up
        out, _ = p.wait_proc(echo, 60, "Linux's receive")
        assert out.strip() == hashlib.sha256(down).hexdigest().encode()
        assert p.loss_in.lost > 10 and p.loss_out.lost > 10
        assert p.stack.counters["tcp.retrans_segs"] > 0
        assert p.tshark("tcp.analysis.retransmission || tcp.analysis.fast_retransmission") > 0
        assert p.tshark("_ws.malformed") == 0
        conn.close()
        listener.close()
    finally:
        p.close()


def test_keepalive_probes_answered_by_linux(peer: LinuxPeer) -> None:
    p = configured(peer)
    server = p.spawn(*py(f"""
        import socket
        srv = socket.socket(); srv.bind(("{LINUX_IP}", 5004)); srv.listen(1)
        print("ready", flush=True)
        c, _ = srv.accept()
        print(c.recv(10))
    """))
    assert server.stdout is not None and server.stdout.readline() == b"ready\n"
    sock = p.stack.open("tcp")
    for name, value in ((TCP_KEEPIDLE, 1), (TCP_KEEPINTVL, 1), (TCP_KEEPCNT, 2)):
        sock.setsockopt(IPPROTO_TCP, name, value)
    sock.setsockopt(SOL_SOCKET, SO_KEEPALIVE, 1)
    with pytest.raises(SocketError):
        sock.connect((LINUX_IP, 5004))
    # KEEPCNT is 2: a third probe only happens if Linux answered the ones before
    p.run(lambda: p.stack.counters["tcp.keepalive_probes"] >= 3, 15, "three keepalive probes")
    assert sock.state is State.ESTABLISHED and p.stack.counters["tcp.keepalive_aborts"] == 0
    sock.send(b"bye")
    out, _ = p.wait_proc(server, 10, "server")
    assert out.strip() == b"b'bye'"
    assert p.tshark("tcp.analysis.keep_alive") >= 3


def test_tcp_refused_and_reset(peer: LinuxPeer) -> None:
    p = configured(peer)
    sock = p.stack.open("tcp")
    with pytest.raises(SocketError):
        sock.connect((LINUX_IP, 5999))
    p.run(lambda: sock.state is State.CLOSED, 10, "RST from Linux")
    assert sock.take_error() == errno.ECONNREFUSED
    # and Linux connecting to a closed port of ours is refused by our RST
    out, _ = p.wait_proc(p.spawn(*py(f"""
        import socket
        try:
            socket.create_connection(("{STACK_IP}", 6000), timeout=5)
        except ConnectionRefusedError:
            print("refused")
    """)), 15, "Linux connecting to a closed port")
    assert out.strip() == b"refused"


def test_udp_both_ways(peer: LinuxPeer) -> None:
    p = configured(peer)
    sock = p.stack.open("udp")
    sock.bind(("", 7000))
    client = p.spawn(*py(f"""
        import socket
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(10)
        s.bind(("{LINUX_IP}", 7001))
        for i in range(20):
            s.sendto(b"quote %d " % i + bytes(1000), ("{STACK_IP}", 7000))
            data, addr = s.recvfrom(65536)
            assert data == b"ack %d" % i and addr == ("{STACK_IP}", 7000), (data, addr)
        s.sendto(bytes(range(256)) * 20, ("{STACK_IP}", 7000))     # fragmented
        data, _ = s.recvfrom(65536)
        assert data == bytes(range(256)) * 20
        print("ok")
    """))
    replies = 0

    def serve() -> bool:
        nonlocal replies
        while sock.queue:
            data, addr = sock.recvfrom()
            if data.startswith(b"quote"):
                assert addr == (LINUX_IP, 7001) and data.endswith(bytes(1000))
                sock.sendto(b"ack %d" % int(data.split()[1]), addr)
                replies += 1
            else:
                sock.sendto(data, addr)
                return True
        return False

    p.run(serve, 20, "UDP exchange")
    assert replies == 20
    out, _ = p.wait_proc(client, 10, "Linux UDP client")
    assert out.strip() == b"ok"
    # a datagram to a port nobody holds gets ICMP port unreachable, which Linux reports
    probe = p.spawn(*py(f"""
        import socket
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(5)
        s.connect(("{STACK_IP}", 7999))
        s.send(b"anyone?")
        try:
            s.recv(100)
        except ConnectionRefusedError:
            print("refused")
    """))
    out, _ = p.wait_proc(probe, 15, "UDP to a closed port")
    assert out.strip() == b"refused"


def test_multicast_market_data_from_linux(peer: LinuxPeer) -> None:
    """Linux publishes on a multicast group; our socket joined it (IGMPv2 report on the wire,
    decoded by tshark) receives every datagram; after the leave, nothing more arrives."""
    p = configured(peer)
    sock = p.stack.open("udp")
    sock.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
    sock.bind(("", 30001))
    sock.setsockopt(IPPROTO_IP, IP_ADD_MEMBERSHIP, socket.inet_aton("239.7.7.7") + bytes(4))
    publisher = p.spawn(*py(f"""
        import socket, time
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("{LINUX_IP}"))
        for i in range(50):
            s.sendto(b"ITCH %03d" % i, ("239.7.7.7", 30001))
            time.sleep(0.002)
    """))
    got: list[bytes] = []

    def collect() -> bool:
        while sock.queue:
            got.append(sock.recvfrom()[0])
        return len(got) == 50

    p.run(collect, 20, "50 multicast datagrams")
    assert got == [b"ITCH %03d" % i for i in range(50)]
    p.wait_proc(publisher, 10, "publisher")
    sock.close()
    assert p.tshark("igmp.type == 0x16 && igmp.maddr == 239.7.7.7") >= 1
    assert p.tshark("igmp.type == 0x17 && ip.dst == 224.0.0.2") == 1
    assert p.tshark("igmp.checksum.status == \"Bad\"") == 0


def test_dhcp_lease_renewal_and_dns(peer: LinuxPeer, tmp_path: Path) -> None:
    peer_tool("dnsmasq")
    p = peer
    p.spawn("dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--no-hosts", "--no-resolv",
                      "--no-ping", "--local-ttl=300", f"--interface={p.dev}", "--bind-interfaces",
                      f"--listen-address={LINUX_IP}",
                      "--dhcp-range=10.77.0.50,10.77.0.60,255.255.255.0,2m",
                      f"--dhcp-option=option:router,{LINUX_IP}",
                      f"--dhcp-option=option:dns-server,{LINUX_IP}",
                      "--dhcp-option=option:domain-name,trading.test",
                      "--dhcp-option=option:T1,3", "--dhcp-option=option:T2,100",
                      f"--dhcp-leasefile={tmp_path / 'leases'}",
                      f"--pid-file={tmp_path / 'pid'}",
                      "--host-record=exchange.trading.test,10.77.0.9",
                      "--cname=feed.trading.test,exchange.trading.test")
    p.run(lambda: "67" in sh("ip", "netns", "exec", p.ns, "ss", "-Hlun", "sport = :67").stdout,
          10, "dnsmasq to start")
    dhcp = p.stack.dhcp
    dhcp.start()
    p.run(lambda: dhcp.lease is not None, 30, "a DHCP lease from dnsmasq")
    lease = dhcp.lease
    assert lease is not None
    assert 0x0A4D0032 <= lease.address <= 0x0A4D003C and lease.prefix_len == 24
    assert lease.routers == [ip_to_int(LINUX_IP)] and lease.dns == [ip_to_int(LINUX_IP)]
    assert lease.domain == "trading.test" and lease.lease_ns == 120 * 10**9
    assert p.stack.addr == lease.address
    # the lease renews at T1 (3 s) with a unicast REQUEST
    p.run(lambda: p.stack.counters["dhcp.state_renewing"] == 1 and
          dhcp.state.value == "bound", 15, "lease renewal")
    assert p.stack.counters["dhcp.in_type5"] == 2
    # Linux can reach us at the leased address
    p.wait_proc(p.spawn("ping", "-c", "1", "-W", "2", ip_str(lease.address)), 10,
                "ping to the leased address")
    # DNS through dnsmasq: a CNAME chain, then the cache
    query = p.stack.dns.lookup("feed.trading.test")
    p.run(lambda: query.done, 10, "DNS answer")
    assert query.addresses == ["10.77.0.9"], query.error
    again = p.stack.dns.lookup("FEED.trading.test")
    assert again.done and again.addresses == ["10.77.0.9"]
    assert p.stack.counters["dns.queries"] == 1 and p.stack.counters["dns.cache_hits"] == 1
    assert p.tshark("dhcp") >= 6 and p.tshark("dns") == 2
