"""TCP: RFC 9293's state machine, RFC 6298's timer, RFC 7323 scaling, RFC 5681 fast
retransmit, Nagle, delayed ACKs, keepalive, TIME_WAIT and the hostile cases, against segments
scapy crafts (one stack) and between two stacks on a simulated wire (losses included)."""

from __future__ import annotations

import errno

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import ARP
from scapy.packet import Raw

from tests.net.crafted import PEER_IP, PEER_MAC, STACK_IP, Host
from tests.net.sim import pair
from tradekernel.kernel.net import POLLIN, POLLOUT, SocketError, params
from tradekernel.kernel.net.sockets import (
    IPPROTO_TCP,
    SO_KEEPALIVE,
    SOL_SOCKET,
    TCP_KEEPCNT,
    TCP_KEEPIDLE,
    TCP_KEEPINTVL,
    TCP_NODELAY,
)
from tradekernel.kernel.net.tcp import State, TcpSocket
from tradekernel.kernel.net.wire import ip_to_int

SECOND, MS = params.SECOND, params.MS
PEER_ISN = 5000


def seg(flags: str, seq: int, ack: int = 0, data: bytes = b"", sport: int = 40000,
        dport: int = 80, window: int = 65535, options: list | None = None) -> IP:
    pkt = IP(src=PEER_IP, dst=STACK_IP) / TCP(sport=sport, dport=dport, flags=flags, seq=seq,
                                             ack=ack, window=window, options=options or [])
    return pkt / Raw(data) if data else pkt


def payload(s: TCP) -> bytes:
    return s[Raw].load if Raw in s else b""


def tcp_out(h: Host) -> list[TCP]:
    return [f[TCP] for f in h.sent() if TCP in f]


def accepted(h: Host, wscale: int | None = 2, mss: int = 1460, window: int = 65535
             ) -> tuple[TcpSocket, TcpSocket, int]:
    """A listener on 80 and the connection the crafted peer opened; returns our ISS + 1."""
    listener = h.stack.open("tcp")
    listener.bind(("", 80))
    listener.listen(8)
    opts = [("MSS", mss)] + ([("WScale", wscale)] if wscale is not None else [])
    h.inject(seg("S", PEER_ISN, window=window, options=opts))
    (synack,) = tcp_out(h)
    assert synack.flags == "SA" and synack.ack == PEER_ISN + 1
    h.inject(seg("A", PEER_ISN + 1, synack.seq + 1, window=window))
    conn = listener.accept()
    assert conn.state is State.ESTABLISHED
    return listener, conn, synack.seq + 1


def test_passive_open_options_and_scaled_window() -> None:
    h = Host()
    listener = h.stack.open("tcp")
    listener.bind(("", 80))
    listener.listen(8)
    h.inject(seg("S", PEER_ISN, options=[("MSS", 1000), ("WScale", 3)]))
    (synack,) = tcp_out(h)
    opts = dict(synack.options)
    assert opts["MSS"] == 1460 and "WScale" in opts
    assert synack.window <= 65535                      # never scaled in a SYN
    h.inject(seg("A", PEER_ISN + 1, synack.seq + 1, window=1000))   # 1000 << 3 = 8000
    conn = listener.accept()
    assert conn.getpeername() == (PEER_IP, 40000)
    conn.send(bytes(20000))
    out = tcp_out(h)
    assert [len(payload(s)) for s in out] == [1000] * 8          # MSS 1000, window 8000
    assert conn.snd_wnd == 8000
    h.inject(seg("A", PEER_ISN + 1, synack.seq + 1 + 8000, window=1000))
    assert len(tcp_out(h)) == 8


def test_no_window_scale_when_the_peer_offers_none() -> None:
    h = Host()
    _, conn, _ = accepted(h, wscale=None)
    assert conn.rcv_wscale == 0 and conn.snd_wscale == 0
    h.inject(seg("A", PEER_ISN + 1, conn.snd_nxt, b"x" * 10))
    h.advance(params.TCP_DELACK)
    (ack,) = tcp_out(h)
    assert ack.window == min(params.TCP_RCVBUF - 10, 65535)


def test_syn_retransmissions_back_off_then_time_out() -> None:
    h = Host()
    h.stack.arp.cache[ip_to_int(PEER_IP)].expires = 10 ** 15   # only TCP's timer at work here
    sock = h.stack.open("tcp")
    with pytest.raises(SocketError) as info:
        sock.connect((PEER_IP, 80))
    assert info.value.errno == errno.EINPROGRESS
    with pytest.raises(SocketError) as info:
        sock.connect((PEER_IP, 80))
    assert info.value.errno == errno.EALREADY
    h.advance(300 * SECOND)
    syns = [f for f in h.sent() if TCP in f]
    assert len(syns) == params.TCP_SYN_RETRIES + 1
    gaps = [(b.at - a.at) // SECOND for a, b in zip(syns, syns[1:], strict=False)]
    assert gaps == [1, 2, 4, 8, 16, 32]
    assert dict(syns[0][TCP].options)["WScale"] >= 2
    assert sock.state is State.CLOSED and sock.take_error() == errno.ETIMEDOUT


def test_rto_is_three_seconds_after_a_lost_syn() -> None:
    h = Host()
    sock = h.stack.open("tcp")
    with pytest.raises(SocketError):
        sock.connect((PEER_IP, 80))
    h.advance(1 * SECOND + MS)
    syn = tcp_out(h)[-1]
    h.inject(seg("SA", 900, syn.seq + 1, sport=80, dport=syn.sport))
    assert sock.state is State.ESTABLISHED and sock.srtt is None
    assert sock.rto == 3 * SECOND and sock.backoff == 0


def test_active_open_refused_by_rst() -> None:
    h = Host()
    sock = h.stack.open("tcp")
    with pytest.raises(SocketError):
        sock.connect((PEER_IP, 81))
    (syn,) = tcp_out(h)
    h.inject(seg("RA", 0, syn.seq + 1, sport=81, dport=syn.sport))
    assert sock.state is State.CLOSED
    assert sock.readiness() & POLLOUT
    with pytest.raises(SocketError) as info:
        sock.connect((PEER_IP, 81))
    assert info.value.errno == errno.ECONNREFUSED


def test_rto_follows_rfc6298_and_backs_off() -> None:
    h = Host()
    _, conn, iss1 = accepted(h)
    conn.send(b"a" * 100)
    (first,) = tcp_out(h)
    h.advance(300 * MS)
    h.inject(seg("A", PEER_ISN + 1, iss1 + 100))
    # SRTT from the handshake (0) and this sample (300 ms): RTO clamps to the 1 s minimum
    assert conn.srtt is not None and conn.rto == params.TCP_RTO_MIN
    conn.send(b"b" * 100)
    tcp_out(h)
    h.advance(8 * SECOND)
    rexmits = [f for f in h.sent() if TCP in f]
    gaps = [round((b.at - a.at) / SECOND) for a, b in zip(rexmits, rexmits[1:], strict=False)]
    assert all(payload(f[TCP])[:1] == b"b" for f in rexmits)
    assert gaps == [2, 4]                                       # 1 s, then doubled each time
    assert first.seq == iss1


def test_fast_retransmit_on_third_duplicate_ack() -> None:
    h = Host()
    _, conn, iss1 = accepted(h)
    conn.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)
    conn.send(bytes(1460 * 5))
    assert len(tcp_out(h)) == 5
    for _ in range(2):
        h.inject(seg("A", PEER_ISN + 1, iss1))
    assert tcp_out(h) == []
    h.inject(seg("A", PEER_ISN + 1, iss1))
    (again,) = tcp_out(h)
    assert again.seq == iss1 and len(payload(again)) == 1460
    assert h.stack.counters["tcp.fast_retransmits"] == 1


def test_nagle_holds_small_segments_unless_nodelay() -> None:
    h = Host()
    _, conn, iss1 = accepted(h)
    conn.send(b"one")
    conn.send(b"two")
    conn.send(b"three")
    assert [payload(s) for s in tcp_out(h)] == [b"one"]
    h.inject(seg("A", PEER_ISN + 1, iss1 + 3))
    assert [payload(s) for s in tcp_out(h)] == [b"twothree"]
    conn.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)
    conn.send(b"x")
    conn.send(b"y")
    assert [payload(s) for s in tcp_out(h)] == [b"x", b"y"]


def test_delayed_ack_every_second_segment_or_after_the_delay() -> None:
    h = Host()
    _, conn, iss1 = accepted(h)
    h.inject(seg("A", PEER_ISN + 1, iss1, b"q" * 100))
    assert tcp_out(h) == []
    h.advance(params.TCP_DELACK - MS)
    assert tcp_out(h) == []
    h.advance(2 * MS)
    (ack,) = tcp_out(h)
    assert ack.ack == PEER_ISN + 101
    h.inject(seg("A", PEER_ISN + 101, iss1, b"r" * 1460))
    h.inject(seg("A", PEER_ISN + 1561, iss1, b"s" * 1460))
    (ack,) = tcp_out(h)
    assert ack.ack == PEER_ISN + 3021
    assert conn.recv(5000) == b"q" * 100 + b"r" * 1460 + b"s" * 1460


def test_one_ack_for_a_receive_burst_at_its_end() -> None:
    """Segments the driver hands over in one burst (begin_burst .. end_burst) get one ACK at
    the end instead of one per two segments, as Linux's GRO merges them; an out-of-order one
    is still answered at once."""
    h = Host()
    _, conn, iss1 = accepted(h)
    base = PEER_ISN + 1
    h.stack.begin_burst()
    for i in range(6):
        h.inject(seg("A", base + 1460 * i, iss1, b"b" * 1460))
    assert tcp_out(h) == []
    h.stack.end_burst()
    (ack,) = tcp_out(h)
    assert ack.ack == base + 6 * 1460
    h.stack.begin_burst()
    for i in range(6, 8):
        h.inject(seg("A", base + 1460 * i, iss1, b"b" * 1460))
    h.inject(seg("A", base + 1460 * 9, iss1, b"gap"))
    (dup,) = tcp_out(h)  # at once, and it acknowledges everything in order so far
    assert dup.ack == base + 8 * 1460
    h.stack.end_burst()
    assert tcp_out(h) == []  # nothing owed any more
    assert conn.recv(20000) == b"b" * 8 * 1460


def test_header_prediction_takes_only_the_plain_in_order_case(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """In-order data with nothing new acknowledged and the window unchanged skips the general
    path; a window change, a FIN, a segment beyond our window or one out of order takes it."""
    h = Host()
    _, conn, iss1 = accepted(h)
    general: list[int] = []
    full = conn._synchronized_input

    def counted(segment) -> None:  # noqa: ANN001
        general.append(segment.seq)
        full(segment)

    monkeypatch.setattr(conn, "_synchronized_input", counted)
    base = PEER_ISN + 1
    for i in range(4):
        h.inject(seg("A", base + 1000 * i, iss1, b"p" * 1000))
    assert general == []
    assert [a.ack for a in tcp_out(h)] == [base + 3000]  # every second segment's ACK still goes
    h.inject(seg("A", base + 4000, iss1, b"w" * 10, window=1000))  # the window changed
    h.inject(seg("A", base + 9000, iss1, b"x" * 10))  # out of order
    h.inject(seg("FA", base + 4010, iss1, b"f"))  # a FIN
    assert general == [base + 4000, base + 9000, base + 4010]
    assert conn.recv(10000) == b"p" * 4000 + b"w" * 10 + b"f"


def test_out_of_order_overlapping_and_out_of_window_segments() -> None:
    h = Host()
    _, conn, iss1 = accepted(h)
    base = PEER_ISN + 1
    data = bytes(range(200)) * 10
    h.inject(seg("A", base + 1000, iss1, data[1000:1500]))
    h.inject(seg("A", base + 1400, iss1, data[1400:2000]))       # overlaps the one before
    acks = tcp_out(h)
    assert [a.ack for a in acks] == [base, base]                  # immediate duplicate ACKs
    assert conn.readiness() & POLLIN == 0
    h.inject(seg("A", base, iss1, data[:1100]))
    (ack,) = tcp_out(h)
    assert ack.ack == base + 2000
    assert conn.recv(5000) == data
    h.inject(seg("A", base + 2000 + 10 ** 6, iss1, b"far away"))  # beyond the window
    (ack,) = tcp_out(h)
    assert ack.ack == base + 2000 and h.stack.counters["tcp.out_of_window"] == 1
    for i in range(params.TCP_OOO_MAX_SEGMENTS + 10):             # bounded queue
        h.inject(seg("A", base + 3000 + 20 * i, iss1, b"z" * 10))
    assert len(conn.ooo) == params.TCP_OOO_MAX_SEGMENTS
    assert h.stack.counters["tcp.ooo_drops"] == 10


def test_rst_must_hit_the_next_sequence_number() -> None:
    h = Host()
    _, conn, iss1 = accepted(h)
    h.inject(seg("R", PEER_ISN + 1 + 10 ** 6))                    # outside: ignored
    assert tcp_out(h) == [] and conn.state is State.ESTABLISHED
    h.inject(seg("R", PEER_ISN + 100))                            # in window: challenge ACK
    (challenge,) = tcp_out(h)
    assert challenge.flags == "A" and conn.state is State.ESTABLISHED
    h.inject(seg("S", PEER_ISN + 7))                              # SYN: challenge ACK
    assert tcp_out(h)[0].flags == "A" and conn.state is State.ESTABLISHED
    h.inject(seg("R", PEER_ISN + 1))
    assert conn.state is State.CLOSED
    with pytest.raises(SocketError) as info:
        conn.recv(10)
    assert info.value.errno == errno.ECONNRESET


def test_segments_for_no_connection_get_rst_and_listener_ignores_junk() -> None:
    h = Host()
    h.inject(seg("A", 1234, 999, dport=9))
    (rst,) = tcp_out(h)
    assert rst.flags == "R" and rst.seq == 999
    h.inject(seg("S", 1234, dport=9, data=b"hi"))
    (rst,) = tcp_out(h)
    assert rst.flags == "RA" and rst.ack == 1234 + 1 + 2
    h.inject(seg("R", 1, dport=9))
    assert tcp_out(h) == []


def test_syn_flood_is_bounded_and_backlog_respected() -> None:
    h = Host()
    listener = h.stack.open("tcp")
    listener.bind(("", 80))
    listener.listen(2)
    for port in range(1024, 1024 + 2000):
        h.inject(seg("S", port * 7, sport=port))
    assert len(listener.syn_queue) == params.TCP_MAX_SYN_QUEUE
    assert h.stack.counters["tcp.syn_queue_overflow"] == 2000 - params.TCP_MAX_SYN_QUEUE
    assert len(h.stack.tcp.conns) <= params.TCP_MAX_CONNECTIONS
    h.advance(200 * SECOND)                                       # SYN-ACKs retried, then gone
    assert not listener.syn_queue and not h.stack.tcp.conns
    synacks = [f for f in h.sent() if TCP in f]
    assert len(synacks) == params.TCP_MAX_SYN_QUEUE * (1 + params.TCP_SYNACK_RETRIES)
    # backlog 2: with two connections waiting for accept, a third SYN is dropped (as Linux)
    h.inject(ARP(op=2, hwsrc=PEER_MAC, psrc=PEER_IP, hwdst=h.mac, pdst=STACK_IP))
    for port in (2000, 2001):
        h.inject(seg("S", 100, sport=port))
        (synack,) = tcp_out(h)
        h.inject(seg("A", 101, synack.seq + 1, sport=port))
    assert len(listener.accept_queue) == 2
    h.inject(seg("S", 100, sport=2002))
    assert tcp_out(h) == [] and h.stack.counters["tcp.listen_overflows"] == 1
    listener.accept()
    h.inject(seg("S", 100, sport=2002))
    assert tcp_out(h)[0].flags == "SA"


def test_active_close_time_wait_lasts_two_msl() -> None:
    h = Host()
    _, conn, iss1 = accepted(h)
    conn.close()
    (fin,) = tcp_out(h)
    assert fin.flags == "FA" and conn.state is State.FIN_WAIT_1
    h.inject(seg("A", PEER_ISN + 1, iss1 + 1))
    assert conn.state is State.FIN_WAIT_2
    h.inject(seg("FA", PEER_ISN + 1, iss1 + 1))
    (ack,) = tcp_out(h)
    assert ack.ack == PEER_ISN + 2 and conn.state is State.TIME_WAIT
    h.inject(seg("FA", PEER_ISN + 1, iss1 + 1))                  # retransmitted FIN re-ACKed
    assert tcp_out(h)[0].ack == PEER_ISN + 2
    h.advance(2 * params.TCP_MSL - SECOND)
    assert conn.state is State.TIME_WAIT
    h.advance(2 * SECOND)
    assert conn.state is State.CLOSED and not h.stack.tcp.conns


def test_passive_close_and_simultaneous_close() -> None:
    h = Host()
    _, conn, iss1 = accepted(h)
    h.inject(seg("FA", PEER_ISN + 1, iss1))
    assert conn.state is State.CLOSE_WAIT and conn.recv(10) == b""
    assert tcp_out(h)[0].ack == PEER_ISN + 2
    conn.close()
    (fin,) = tcp_out(h)
    assert fin.flags == "FA" and conn.state is State.LAST_ACK
    h.inject(seg("A", PEER_ISN + 2, iss1 + 1))
    assert conn.state is State.CLOSED and not h.stack.tcp.conns
    # both ends close at once: FIN_WAIT_1 -> CLOSING -> TIME_WAIT
    h2 = Host()
    _, conn, iss1 = accepted(h2)
    conn.shutdown(1)
    tcp_out(h2)
    h2.inject(seg("FA", PEER_ISN + 1, iss1))                     # their FIN, ours not acked
    assert conn.state is State.CLOSING
    h2.inject(seg("A", PEER_ISN + 2, iss1 + 1))
    assert conn.state is State.TIME_WAIT


def test_simultaneous_open() -> None:
    h = Host()
    sock = h.stack.open("tcp")
    sock.bind(("", 5555))
    with pytest.raises(SocketError):
        sock.connect((PEER_IP, 6666))
    (syn,) = tcp_out(h)
    h.inject(seg("S", 777, sport=6666, dport=5555, options=[("MSS", 1400)]))
    assert sock.state is State.SYN_RECEIVED
    (synack,) = tcp_out(h)
    assert synack.flags == "SA" and synack.seq == syn.seq and synack.ack == 778
    h.inject(seg("A", 778, syn.seq + 1, sport=6666, dport=5555))
    assert sock.state is State.ESTABLISHED


def test_close_with_unread_data_resets() -> None:
    h = Host()
    _, conn, iss1 = accepted(h)
    h.inject(seg("A", PEER_ISN + 1, iss1, b"unread"))
    tcp_out(h)
    conn.close()
    (rst,) = tcp_out(h)
    assert rst.flags == "R" and not h.stack.tcp.conns


def test_keepalive_probes_then_gives_up() -> None:
    h = Host()
    _, conn, _ = accepted(h)
    conn.setsockopt(IPPROTO_TCP, TCP_KEEPIDLE, 10)
    conn.setsockopt(IPPROTO_TCP, TCP_KEEPINTVL, 2)
    conn.setsockopt(IPPROTO_TCP, TCP_KEEPCNT, 3)
    conn.setsockopt(SOL_SOCKET, SO_KEEPALIVE, 1)
    h.advance(9 * SECOND)
    assert tcp_out(h) == []
    h.advance(2 * SECOND)
    (probe,) = tcp_out(h)
    assert probe.seq == conn.snd_una - 1 and len(payload(probe)) == 0
    h.inject(seg("A", PEER_ISN + 1, conn.snd_una))                # the peer answers: idle again
    h.advance(9 * SECOND)
    assert tcp_out(h) == []
    h.advance(20 * SECOND)
    sent = tcp_out(h)
    assert [s.flags for s in sent] == ["A", "A", "A", "R"]
    assert conn.state is State.CLOSED and conn.take_error() == errno.ETIMEDOUT


def test_zero_window_probes_until_the_window_opens() -> None:
    h = Host()
    _, conn, iss1 = accepted(h)
    conn.send(bytes(3000))
    tcp_out(h)
    h.inject(seg("A", PEER_ISN + 1, iss1 + 2920, window=0))
    h.advance(10 * SECOND)
    probes = tcp_out(h)
    assert probes and all(len(payload(p)) == 0 and p.seq == iss1 + 2919 for p in probes)
    assert h.stack.counters["tcp.window_probes"] == len(probes)
    h.inject(seg("A", PEER_ISN + 1, iss1 + 2920, window=1000))
    (rest,) = tcp_out(h)
    assert rest.seq == iss1 + 2920 and len(payload(rest)) == 80


def _transfer(size: int, drop_every: int = 0, seed: int = 0) -> tuple[bytes, list[bytes], dict]:
    count = [0]

    def drop(frame: bytes) -> bool:
        if not drop_every or len(frame) < 1000:
            return False
        count[0] += 1
        return count[0] % drop_every == 0

    clock, a, b = pair(drop=drop)
    srv = b.open("tcp")
    srv.bind(("", 9000))
    srv.listen(1)
    cli = a.open("tcp")
    with pytest.raises(SocketError):
        cli.connect(("10.0.0.2", 9000))
    clock.run(lambda: bool(srv.accept_queue))
    conn = srv.accept()
    data = bytes((i * 7 + seed) & 0xFF for i in range(size))
    got = bytearray()
    sent = 0

    def step() -> bool:
        nonlocal sent
        while sent < len(data):
            try:
                sent += cli.send(data[sent:sent + 50000])
            except SocketError:
                break
        if sent == len(data) and not cli.fin_queued:
            cli.shutdown(1)
        while True:
            try:
                chunk = conn.recv(1 << 16)
            except SocketError:
                return False
            if not chunk:
                return True
            got.extend(chunk)

    clock.run(step, limit_ns=600 * SECOND)
    assert bytes(got) == data
    for sock in (cli, conn, srv):
        sock.close()
    clock.run(limit_ns=3 * params.TCP_MSL)
    for stack in (a, b):                               # nothing left behind: no TCB, no port,
        assert not stack.tcp.conns and not stack.tcp.bound and not stack.tcp.listeners
        assert stack.timers.next_deadline() is None     # no timer still pending
    return bytes(got), a.link.sent + b.link.sent, a.counters.snapshot()  # type: ignore


def test_transfer_with_losses_recovers_exactly() -> None:
    _, _, counters = _transfer(1 << 20, drop_every=40)
    assert counters["tcp.retrans_segs"] > 0
    assert counters.get("tcp.fast_retransmits", 0) > 0


def test_same_inputs_give_byte_identical_packets() -> None:
    _, frames1, _ = _transfer(200_000, drop_every=25)
    _, frames2, _ = _transfer(200_000, drop_every=25)
    assert frames1 == frames2


def test_netstat_and_ifconfig_views() -> None:
    h = Host()
    listener, conn, _ = accepted(h)
    udp = h.stack.open("udp")
    udp.bind(("", 53))
    rows = {(r["proto"], r["local"], r["state"]) for r in h.stack.socket_table()}
    assert ("tcp", "0.0.0.0:80", "LISTEN") in rows
    assert ("tcp", f"{STACK_IP}:80", "ESTABLISHED") in rows and ("udp", "0.0.0.0:53", "") in rows
    info = h.stack.interface()
    assert info["addr"] == STACK_IP and info["prefix_len"] == 24 and info["mtu"] == 1500
    assert info["rx_packets"] >= 3 and info["tx_bytes"] > 0


def test_new_syn_reopens_a_time_wait_connection() -> None:
    h = Host()
    listener, conn, iss1 = accepted(h)
    conn.close()
    tcp_out(h)
    h.inject(seg("FA", PEER_ISN + 1, iss1 + 1))
    assert conn.state is State.TIME_WAIT
    tcp_out(h)
    h.inject(seg("S", PEER_ISN + 100000, options=[("MSS", 1460)]))   # same ports, later seq
    (synack,) = tcp_out(h)
    assert synack.flags == "SA" and synack.ack == PEER_ISN + 100001
    assert conn.state is State.CLOSED and len(listener.syn_queue) == 1
    h.inject(seg("S", PEER_ISN - 5, sport=40001))                    # unrelated ports: normal
    assert tcp_out(h)[0].flags == "SA"
