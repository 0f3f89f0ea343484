"""The sender's fast paths in tcp.py against what they shortcut: pure ACKs taken by header
prediction leave exactly what the general path leaves, a writer blocked on a full buffer is
woken once per third of it acknowledged (Linux's rule, also what poll reports), and a
retransmission timer restarted by ACKs fires RTO after the last restart, not when first set."""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, TCP

from tests.net.crafted import PEER_IP, STACK_IP, Host
from tests.net.test_tcp import PEER_ISN, accepted, payload, seg, tcp_out
from tradekernel.kernel.net import POLLOUT, params
from tradekernel.kernel.net.tcp import TcpSocket

SECOND, MS = params.SECOND, params.MS
PREDICTED_ACK = TcpSocket._predicted_ack

# The peer's pure ACKs: (bytes newly acknowledged, window it advertises (scaled by 4)),
# growing, shrinking, and one that acknowledges nothing new (the general path's business).
ACKS = [(1460, 16000), (2920, 16000), (2920, 12000), (0, 12000), (4380, 20000), (1460, 20000),
        (5840, 8000), (2920, 30000), (8760, 30000)]


def _ack_run(monkeypatch: pytest.MonkeyPatch, predict: bool) -> tuple[list, list, int]:
    """What the sender emitted and kept after ACKS, with prediction on or off; and how many
    ACKs prediction took."""
    taken = 0

    def counted(self: TcpSocket, s) -> bool:  # noqa: ANN001
        nonlocal taken
        if not predict:
            return False
        result = PREDICTED_ACK(self, s)
        taken += result
        return result

    monkeypatch.setattr(TcpSocket, "_predicted_ack", counted)
    h = Host()
    _, conn, iss1 = accepted(h, wscale=2, window=4000)  # 16000: the ACKs below grow it
    conn.send(bytes(range(256)) * 200)
    sent = [(s.seq, s.flags.value, s.window, len(payload(s))) for s in tcp_out(h)]
    acked = iss1
    for step, (more, window) in enumerate(ACKS):
        h.advance(10 * MS)
        acked += more
        h.inject(seg("A", PEER_ISN + 1, acked, window=window))
        sent += [(step, s.seq, s.flags.value, s.window, len(payload(s))) for s in tcp_out(h)]
    state = [conn.snd_una, conn.snd_nxt, conn.snd_max, conn.snd_wnd, conn.max_snd_wnd,
             conn.snd_wl1, conn.snd_wl2, conn.cwnd, conn.ssthresh, conn.srtt, conn.rto,
             len(conn.sndbuf), conn.buf_seq, conn.dupacks, conn.readiness()]
    h.advance(5 * SECOND)  # and the retransmission that follows, at the same moment
    sent += [(h.clock.now_ns(), s.seq, len(payload(s))) for s in tcp_out(h)]
    return sent, state, taken


def test_predicted_pure_acks_leave_what_the_general_path_leaves(
        monkeypatch: pytest.MonkeyPatch) -> None:
    general = _ack_run(monkeypatch, predict=False)
    predicted = _ack_run(monkeypatch, predict=True)
    assert predicted[2] >= len(ACKS) - 1  # all but the duplicate took the short path
    assert predicted[:2] == general[:2]


def test_a_writer_blocked_on_a_full_buffer_wakes_once_a_third_is_acknowledged() -> None:
    h = Host()
    _, conn, iss1 = accepted(h, wscale=7, window=65535)  # a window of 8 MiB: cwnd limits
    wakes = []
    conn.set_callback(lambda s: wakes.append(s.readiness() & POLLOUT))
    assert conn.send(bytes(params.TCP_SNDBUF)) == params.TCP_SNDBUF
    assert not conn.readiness() & POLLOUT
    acked, woken_at = iss1, None
    for _ in range(200):
        out = tcp_out(h)
        if not out:
            break
        acked = out[-1].seq + len(payload(out[-1]))
        h.inject(seg("A", PEER_ISN + 1, acked, window=65535))
        if wakes and woken_at is None:
            woken_at = len(conn.sndbuf)
    assert woken_at is not None and wakes == [POLLOUT] * len(wakes)
    assert len(wakes) == 1  # one wake-up for the whole drain, not one per ACK
    free = params.TCP_SNDBUF - woken_at
    assert free >= woken_at // 2 and free - 20 * 1460 < woken_at // 2  # at the threshold


def test_a_restarted_retransmission_timer_fires_rto_after_the_last_ack() -> None:
    h = Host()
    _, conn, iss1 = accepted(h)
    conn.send(bytes(4 * 1460))
    first = tcp_out(h)
    assert len(first) == 4 and conn.rto == params.TCP_RTO_INITIAL
    h.advance(600 * MS)
    h.inject(seg("A", PEER_ISN + 1, iss1 + 1460))  # restarts the timer at 0.6 s
    start = h.clock.now_ns()
    rto = conn.rto
    assert rto > 600 * MS
    h.advance(rto - 1 * MS)
    assert tcp_out(h) == []  # not at 1 s, when it was first set
    h.advance(2 * MS)
    (again,) = [f for f in h.sent() if TCP in f]
    assert again[TCP].seq == iss1 + 1460 and again.at == start + rto
    assert again[IP].src == STACK_IP and again[IP].dst == PEER_IP
