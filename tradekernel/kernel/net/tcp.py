"""TCP (RFC 9293) with RTO per RFC 6298, window scaling (RFC 7323), Reno congestion control
(RFC 5681) and the RFC 5961 defences against blind resets and SYNs.

Every state of RFC 9293's machine is here: the segment arrival rules of its section 3.10.7
run in its order (sequence check, RST, SYN, ACK, data, FIN). One TcpSocket is one TCB; a
listener keeps a bounded SYN queue of half-open children and an accept queue of at most
`backlog` established ones (SYN floods fill the first and are counted, never grow memory).
Sending: a byte buffer from SND.UNA, segments up to the peer's MSS within min(cwnd, peer
window), Nagle unless TCP_NODELAY, go-back-N on timeout with exponential backoff, fast
retransmit on the third duplicate ACK, zero-window probes while the peer's window is shut;
a writer is woken (and POLLOUT reported) once free space is half of what is queued, as
Linux does. Header prediction (BSD) takes in-order data and pure ACKs of new data without
the general path, whose result they equal.
Receiving: an in-order buffer bounded by TCP_RCVBUF, an out-of-order queue bounded in
segments (overlaps trimmed to what is new), delayed ACKs (every second full segment or
TCP_DELACK), receiver-side silly window avoidance. Keepalive, TIME_WAIT (2 MSL), an orphan
FIN_WAIT_2 timeout and a global TCB limit bound the rest. Standard library and this package.
"""

from __future__ import annotations

import enum
import errno
import struct
from collections import deque
from dataclasses import dataclass

from tradekernel.kernel.net import params
from tradekernel.kernel.net.api import (
    POLLERR,
    POLLHUP,
    POLLIN,
    POLLOUT,
    POLLRDHUP,
    SocketError,
    Stack,
    TimerHandle,
)
from tradekernel.kernel.net.ipv4 import PROTO_TCP, IPHeader, is_multicast
from tradekernel.kernel.net.sockets import (
    IPPROTO_TCP,
    SHUT_RD,
    SHUT_RDWR,
    SHUT_WR,
    SO_KEEPALIVE,
    SO_REUSEADDR,
    SOL_SOCKET,
    TCP_KEEPCNT,
    TCP_KEEPIDLE,
    TCP_KEEPINTVL,
    TCP_MAXSEG,
    TCP_NODELAY,
    Address,
    Socket,
)
from tradekernel.kernel.net.wire import (
    Malformed,
    checksum,
    ip_str,
    ip_to_int,
    pseudo_header_sum,
    seq_add,
    seq_diff,
    seq_le,
    seq_lt,
)

FIN, SYN, RST, PSH, ACK, URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
MAX_WSCALE = 14
Key = tuple[int, int, int, int]  # local ip, local port, remote ip, remote port


class State(enum.Enum):
    CLOSED = "CLOSED"
    LISTEN = "LISTEN"
    SYN_SENT = "SYN_SENT"
    SYN_RECEIVED = "SYN_RECV"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN_WAIT1"
    FIN_WAIT_2 = "FIN_WAIT2"
    CLOSE_WAIT = "CLOSE_WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST_ACK"
    TIME_WAIT = "TIME_WAIT"


SYNCHRONIZED = {
    State.ESTABLISHED,
    State.FIN_WAIT_1,
    State.FIN_WAIT_2,
    State.CLOSE_WAIT,
    State.CLOSING,
    State.LAST_ACK,
    State.TIME_WAIT,
}
CAN_RECEIVE = {State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2}
CAN_SEND = {State.ESTABLISHED, State.CLOSE_WAIT}
CAN_OUTPUT = {State.ESTABLISHED, State.CLOSE_WAIT, State.FIN_WAIT_1, State.CLOSING, State.LAST_ACK}


@dataclass(slots=True)
class Segment:
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    wnd: int
    data: bytes
    mss: int | None = None
    wscale: int | None = None

    @property
    def length(self) -> int:
        return len(self.data) + (1 if self.flags & SYN else 0) + (1 if self.flags & FIN else 0)


def parse_segment(hdr: IPHeader, payload: bytes) -> Segment:
    if len(payload) < 20:
        raise Malformed("tcp.truncated")
    sport, dport, seq, ack, off_flags, wnd, _ck, _urg = struct.unpack_from("!HHIIHHHH", payload)
    doff = (off_flags >> 12) * 4
    if doff < 20 or doff > len(payload):
        raise Malformed("tcp.bad_header_length")
    if checksum(payload, pseudo_header_sum(hdr.src, hdr.dst, PROTO_TCP, len(payload))):
        raise Malformed("tcp.bad_checksum")
    if sport == 0 or dport == 0:
        raise Malformed("tcp.bad_port")
    seg = Segment(sport, dport, seq, ack, off_flags & 0x3F, wnd, payload[doff:])
    opts, i = payload[20:doff], 0
    while i < len(opts):
        kind = opts[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(opts) or opts[i + 1] < 2 or i + opts[i + 1] > len(opts):
            raise Malformed("tcp.bad_options")
        size = opts[i + 1]
        if kind == 2 and size == 4:
            seg.mss = int.from_bytes(opts[i + 2 : i + 4], "big")
        elif kind == 3 and size == 3:
            seg.wscale = min(opts[i + 2], MAX_WSCALE)
        i += size
    return seg


_HEADER = struct.Struct("!HHIIHHHH")


def build_segment(
    src: int,
    dst: int,
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    wnd: int,
    data: bytes | bytearray | memoryview = b"",
    options: bytes = b"",
) -> bytes:
    """The segment with its checksum: the header is packed twice (its words summed from the
    first packing, which has the even length the sums need) so the data is summed where it
    lies and copied once, into the result."""
    off_flags = ((20 + len(options)) // 4) << 12 | flags
    header = _HEADER.pack(sport, dport, seq, ack, off_flags, wnd, 0, 0) + options
    total = pseudo_header_sum(src, dst, PROTO_TCP, len(header) + len(data))
    total += int.from_bytes(header, "big")
    return _HEADER.pack(sport, dport, seq, ack, off_flags, wnd, checksum(data, total), 0) + \
        options + data


class Tcp:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.conns: dict[Key, TcpSocket] = {}
        self.listeners: dict[int, TcpSocket] = {}
        self.bound: dict[int, list[TcpSocket]] = {}

    # -- receive
    def input(self, hdr: IPHeader, payload: bytes) -> None:
        c = self.stack.counters
        seg = parse_segment(hdr, payload)
        key = (hdr.dst, seg.dport, hdr.src, seg.sport)
        sock = self.conns.get(key)
        # a connection's local address is a unicast one of ours: only a miss needs the test
        if sock is None and (is_multicast(hdr.dst) or self.stack.is_broadcast(hdr.dst)):
            raise Malformed("tcp.broadcast")
        c.counts["tcp.in_segs"] += 1
        if (
            sock is not None
            and sock.state is State.TIME_WAIT
            and seg.flags & SYN
            and not seg.flags & (ACK | RST)
            and seq_lt(sock.rcv_nxt, seg.seq)
            and seg.dport in self.listeners
        ):
            sock.destroy()  # RFC 6191: a new incarnation
            sock = None
        if sock is None:
            listener = self.listeners.get(seg.dport)
            if listener is not None and listener.local_ip in (0, hdr.dst):
                listener.listen_input(hdr, seg)
            else:
                c.inc("tcp.no_port")
                self.reset_for(hdr, seg)
            return
        sock.segment_arrives(seg)

    def reset_for(self, hdr: IPHeader, seg: Segment) -> None:
        """RFC 9293 3.10.7.1: the RST that answers a segment for no connection."""
        if seg.flags & RST:
            return
        if seg.flags & ACK:
            seq, ack, flags = seg.ack, 0, RST
        else:
            seq, ack, flags = 0, seq_add(seg.seq, seg.length), RST | ACK
        self.stack.ip_output(
            hdr.src,
            PROTO_TCP,
            build_segment(hdr.dst, hdr.src, seg.dport, seg.sport, seq, ack, flags, 0),
        )
        self.stack.counters.inc("tcp.out_rsts")

    def icmp_error(self, icmp_type: int, code: int, src: int, dst: int, head: bytes) -> None:
        sport, dport, seq = struct.unpack_from("!HHI", head)
        sock = self.conns.get((src, sport, dst, dport))
        self.stack.counters.inc("tcp.icmp_errors")
        if sock is None or not (seq_le(sock.snd_una, seq) and seq_lt(seq, sock.snd_max)):
            return
        hard = icmp_type == 3 and code in (2, 3, 4)  # RFC 1122 4.2.3.9
        err = errno.ECONNREFUSED if hard else errno.EHOSTUNREACH
        if sock.state is State.SYN_SENT and (hard or code == 1):
            sock.abort(err)
        else:
            sock.soft_error = err

    # -- ports
    def bind(self, sock: TcpSocket, ip: int, port: int) -> int:
        if port == 0:
            span = params.EPHEMERAL_LAST - params.EPHEMERAL_FIRST + 1
            start = self.stack.rng.randrange(span)
            for i in range(span):
                candidate = params.EPHEMERAL_FIRST + (start + i) % span
                if candidate not in self.bound:
                    port = candidate
                    break
            else:
                raise SocketError(errno.EADDRINUSE, "no free TCP port")
        for other in self.bound.get(port, ()):
            reuse = sock.options.get((SOL_SOCKET, SO_REUSEADDR)) and other.state is not State.LISTEN
            if (
                not reuse
                and other.state is not State.TIME_WAIT
                and (other.local_ip in (0, ip) or ip == 0)
            ):
                raise SocketError(errno.EADDRINUSE, f"TCP port {port} in use")
        self.bound.setdefault(port, []).append(sock)
        return port

    def unbind(self, sock: TcpSocket) -> None:
        users = self.bound.get(sock.local_port, [])
        if sock in users:
            users.remove(sock)
        if not users:
            self.bound.pop(sock.local_port, None)

    def make_room(self) -> bool:
        """Room for one more TCB, evicting the oldest TIME_WAIT if need be."""
        if len(self.conns) < params.TCP_MAX_CONNECTIONS:
            return True
        for sock in self.conns.values():
            if sock.state is State.TIME_WAIT:
                sock.destroy()
                self.stack.counters.inc("tcp.time_wait_recycled")
                return True
        return False

    def isn(self) -> int:
        return self.stack.rng.getrandbits(32)

    def sockets(self) -> list[TcpSocket]:
        """Every TCB and listener, for netstat."""
        return list(self.listeners.values()) + list(self.conns.values())


class TcpSocket(Socket):
    kind = "tcp"

    def __init__(self, stack: Stack) -> None:
        super().__init__(stack)
        self.tcp = stack.tcp
        self.state = State.CLOSED
        self.local_ip = self.local_port = 0
        self.remote_ip = self.remote_port = 0
        self.soft_error = 0
        # listener
        self.backlog = 0
        self.syn_queue: dict[Key, TcpSocket] = {}
        self.accept_queue: deque[TcpSocket] = deque()
        self.parent: TcpSocket | None = None
        # send side
        self.iss = self.snd_una = self.snd_nxt = self.snd_max = 0
        self.snd_wnd = self.snd_wl1 = self.snd_wl2 = self.max_snd_wnd = 0
        self.snd_wscale = self.rcv_wscale = 0
        self.snd_wscale_ok = False
        self.sndbuf = bytearray()
        self.buf_seq = 0  # sequence number of sndbuf[0]
        self.fin_queued = self.fin_acked = False
        self.mss = params.TCP_MSS_DEFAULT
        self.cwnd = self.ssthresh = 0
        self.dupacks = 0
        self.recover = 0
        self.in_recovery = False
        # receive side
        self.irs = self.rcv_nxt = self.rcv_adv = 0
        self.rcvbuf = bytearray()
        self.ooo: dict[int, tuple[bytes, bool]] = {}  # seq -> (data, fin)
        self.fin_received = False
        self.read_shut = self.write_shut = False
        self.ack_pending = 0
        # timers and RTT (RFC 6298)
        self.srtt: int | None = None
        self.rttvar = 0
        self.rto = params.TCP_RTO_INITIAL
        self.backoff = 0
        self.rtt_seq: int | None = None
        self.rtt_start = 0
        self.retries = 0
        self.rexmit_timer: TimerHandle | None = None
        self.rexmit_due = 0  # when the retransmission timer is really due (see _arm_rexmit)
        self.delack_timer: TimerHandle | None = None
        self.persist_timer: TimerHandle | None = None
        self.keepalive_timer: TimerHandle | None = None
        self.wait_timer: TimerHandle | None = None  # TIME_WAIT / orphan FIN_WAIT_2
        self.keep_probes = 0
        self.last_recv = 0
        self.orphan = False

    # ------------------------------------------------------------------ socket calls
    def bind(self, addr: Address) -> None:
        self.check_open()
        if self.local_port:
            raise SocketError(errno.EINVAL, "already bound")
        ip = ip_to_int(addr[0]) if addr[0] else 0
        if ip and ip != self.stack.addr:
            raise SocketError(errno.EADDRNOTAVAIL, f"{addr[0]} is not ours")
        self.local_port = self.tcp.bind(self, ip, addr[1])
        self.local_ip = ip

    def listen(self, backlog: int = 16) -> None:
        self.check_open()
        if self.state not in (State.CLOSED, State.LISTEN):
            raise SocketError(errno.EINVAL, "socket is connected")
        if not self.local_port:
            self.bind(("", 0))
        other = self.tcp.listeners.get(self.local_port)
        if other is not None and other is not self:
            raise SocketError(errno.EADDRINUSE, "port already has a listener")
        self.backlog = max(1, min(backlog, params.TCP_MAX_BACKLOG))
        self.state = State.LISTEN
        self.tcp.listeners[self.local_port] = self

    def accept(self) -> TcpSocket:
        self.check_open()
        if self.state is not State.LISTEN:
            raise SocketError(errno.EINVAL, "not listening")
        if not self.accept_queue:
            raise SocketError(errno.EAGAIN)
        child = self.accept_queue.popleft()
        child.parent = None
        return child

    def connect(self, addr: Address) -> None:
        self.check_open()
        if self.state is State.SYN_SENT:
            raise SocketError(errno.EALREADY)
        if self.state in SYNCHRONIZED or self.state is State.SYN_RECEIVED:
            raise SocketError(errno.EISCONN)
        if self.error:
            raise SocketError(self.take_error())
        if self.state is State.LISTEN:
            raise SocketError(errno.EINVAL, "socket is listening")
        dst = ip_to_int(addr[0])
        if not 0 < addr[1] < 65536 or is_multicast(dst) or self.stack.is_broadcast(dst):
            raise SocketError(errno.EINVAL, "bad peer address")
        src = self.stack.source_for(dst)
        if not self.tcp.make_room():
            raise SocketError(errno.ENOBUFS, "too many TCP connections")
        if not self.local_port:
            self.bind(("", 0))
        key = (src, self.local_port, dst, addr[1])
        if key in self.tcp.conns:
            raise SocketError(errno.EADDRNOTAVAIL, "that connection already exists")
        self.local_ip, self.remote_ip, self.remote_port = src, dst, addr[1]
        self.tcp.conns[key] = self
        self._start_send(self.tcp.isn())
        self.state = State.SYN_SENT
        self.rcv_wscale = self._our_wscale()
        self._send_syn()
        raise SocketError(errno.EINPROGRESS)

    def send(self, data: bytes) -> int:
        self.check_open()
        if self.error:
            raise SocketError(self.take_error())
        if self.write_shut or self.state in (
            State.FIN_WAIT_1,
            State.FIN_WAIT_2,
            State.CLOSING,
            State.LAST_ACK,
            State.TIME_WAIT,
        ):
            raise SocketError(errno.EPIPE, "sending side is shut")
        if self.state not in CAN_SEND:
            if self.state in (State.SYN_SENT, State.SYN_RECEIVED):
                raise SocketError(errno.EAGAIN)
            raise SocketError(errno.ENOTCONN)
        room = params.TCP_SNDBUF - len(self.sndbuf)
        if room <= 0:
            raise SocketError(errno.EAGAIN)
        taken = bytes(data[:room])
        self.sndbuf += taken
        self.output()
        return len(taken)

    def send_room(self) -> int:
        """Bytes a send would queue now (what send's checks allow; 0 if it would fail)."""
        if self.closed or self.error or self.write_shut or self.state not in CAN_SEND:
            return 0
        return max(0, params.TCP_SNDBUF - len(self.sndbuf))

    def recv(self, maxlen: int = 65536) -> bytes:
        self.check_open()
        if self.rcvbuf:
            data = bytes(self.rcvbuf[:maxlen])
            del self.rcvbuf[: len(data)]
            self._maybe_window_update()
            return data
        if self.error:
            raise SocketError(self.take_error())
        if self.state is State.LISTEN or (self.state is State.CLOSED and not self.remote_port):
            raise SocketError(errno.ENOTCONN)
        if self.fin_received or self.read_shut or self.state is State.CLOSED:
            return b""
        raise SocketError(errno.EAGAIN)

    def shutdown(self, how: int) -> None:
        self.check_open()
        if self.state not in SYNCHRONIZED and self.state is not State.SYN_RECEIVED:
            raise SocketError(errno.ENOTCONN)
        if how in (SHUT_RD, SHUT_RDWR):
            self.read_shut = True
        if how in (SHUT_WR, SHUT_RDWR):
            self._queue_fin()
        self.notify()

    def close(self) -> None:
        """Release the socket; a connection finishes its close on its own (an orphan), or is
        reset at once if unread data would be lost (RFC 2525 2.17, as Linux does)."""
        if self.closed:
            return
        self.closed = True
        self._callback = None
        if self.state is State.LISTEN:
            del self.tcp.listeners[self.local_port]
            for child in list(self.syn_queue.values()) + list(self.accept_queue):
                child.abort(0, send_rst=True)
            self.syn_queue.clear()
            self.accept_queue.clear()
            self.state = State.CLOSED
            self.tcp.unbind(self)
            return
        if self.state in (State.CLOSED, State.SYN_SENT):
            self.destroy()
            return
        if self.rcvbuf or self.ooo:
            self.stack.counters.inc("tcp.reset_on_close")
            self.abort(0, send_rst=True)
            return
        self.orphan = True
        if self.state in (State.SYN_RECEIVED, State.ESTABLISHED, State.CLOSE_WAIT):
            self._queue_fin()
        if self.state is State.FIN_WAIT_2:
            self._arm_wait(params.TCP_FIN_TIMEOUT)

    def readiness(self) -> int:
        if self.state is State.LISTEN:
            return POLLIN if self.accept_queue else 0
        flags = 0
        if self.rcvbuf or self.fin_received or self.read_shut or self.error:
            flags |= POLLIN
        if self.fin_received:
            flags |= POLLRDHUP
        if self.state in CAN_SEND and self._writable():
            flags |= POLLOUT
        if self.error:
            flags |= POLLERR
        if self.state is State.CLOSED and self.remote_port:
            flags |= POLLHUP | POLLOUT | POLLIN
        elif self.fin_received and (self.write_shut or self.fin_queued):
            flags |= POLLHUP
        return flags

    def _writable(self) -> bool:
        """Room worth a writer's wake-up, as Linux's sk_stream_is_writeable: free space at
        least half of what is queued (a buffer at most two thirds full). A writer blocked on
        a full buffer is woken once per third of it acknowledged, not once per ACK."""
        queued = len(self.sndbuf)
        return params.TCP_SNDBUF - queued >= queued >> 1

    def setsockopt(self, level: int, name: int, value: int | bytes) -> None:
        super().setsockopt(level, name, value)
        if (level, name) == (IPPROTO_TCP, TCP_MAXSEG) and isinstance(value, int):
            self.options[(level, name)] = max(88, min(value, self.stack.mtu - 40))
        if (level, name) == (SOL_SOCKET, SO_KEEPALIVE):
            self._arm_keepalive()
        if level == IPPROTO_TCP and name == TCP_NODELAY and value:
            self.output()

    def getsockname(self) -> Address:
        return ip_str(self.local_ip or self.stack.addr), self.local_port

    def getpeername(self) -> Address:
        if not self.remote_port or self.state in (State.CLOSED, State.LISTEN):
            raise SocketError(errno.ENOTCONN)
        return ip_str(self.remote_ip), self.remote_port

    def info(self) -> dict[str, object]:
        """One netstat row."""
        return {
            "state": self.state.value,
            "recv_q": len(self.rcvbuf),
            "send_q": len(self.sndbuf),
            "local": f"{ip_str(self.local_ip)}:{self.local_port}",
            "peer": f"{ip_str(self.remote_ip)}:{self.remote_port}" if self.remote_port else "*:*",
            "rto_ms": self.rto // params.MS,
            "cwnd": self.cwnd,
        }

    # ------------------------------------------------------------------ connection setup
    def _our_wscale(self) -> int:
        shift = 0
        while (65535 << shift) < params.TCP_RCVBUF and shift < MAX_WSCALE:
            shift += 1
        return shift

    def _our_mss(self) -> int:
        return self.options.get((IPPROTO_TCP, TCP_MAXSEG)) or self.stack.mtu - 40

    def _start_send(self, iss: int) -> None:
        self.iss = self.snd_una = self.snd_nxt = self.snd_max = iss
        self.buf_seq = seq_add(iss, 1)
        self.last_recv = self.stack.now()

    def _send_syn(self) -> None:
        if self.state is State.SYN_SENT:
            opts = struct.pack("!BBHBBBB", 2, 4, self._our_mss(), 1, 3, 3, self.rcv_wscale)
        else:
            opts = self._synack_options()
        if self.retries == 0:
            self.rtt_start = self.stack.now()
        flags = SYN | (ACK if self.state is State.SYN_RECEIVED else 0)
        wnd = min(self._free_space(), 65535, self.stack.window_cap or 65535)
        if flags & ACK:
            self.rcv_adv = seq_add(self.rcv_nxt, wnd)
        self._emit(self.iss, flags, b"", opts, window=wnd)
        self.snd_nxt = self.snd_max = seq_add(self.iss, 1)
        self._arm_rexmit()

    def listen_input(self, hdr: IPHeader, seg: Segment) -> None:
        c = self.stack.counters
        if seg.flags & RST:
            return
        if seg.flags & ACK:
            self.tcp.reset_for(hdr, seg)
            return
        if not seg.flags & SYN:
            c.inc("tcp.listen_drop_nonsyn")
            return
        if len(self.syn_queue) >= params.TCP_MAX_SYN_QUEUE:
            c.inc("tcp.syn_queue_overflow")
            return
        if len(self.accept_queue) >= self.backlog:
            c.inc("tcp.listen_overflows")
            return
        if not self.tcp.make_room():
            c.inc("tcp.conn_limit_drops")
            return
        child = TcpSocket(self.stack)
        child.options = {k: v for k, v in self.options.items()}
        child.local_ip, child.local_port = hdr.dst, self.local_port
        child.remote_ip, child.remote_port = hdr.src, seg.sport
        child.parent = self
        child.state = State.SYN_RECEIVED
        child.irs, child.rcv_nxt = seg.seq, seq_add(seg.seq, 1)
        child._take_syn_options(seg)
        child.snd_wnd = child.max_snd_wnd = seg.wnd
        child.snd_wl1, child.snd_wl2 = seg.seq, 0
        key = (hdr.dst, self.local_port, hdr.src, seg.sport)
        self.tcp.conns[key] = child
        self.tcp.bound.setdefault(self.local_port, []).append(child)
        self.syn_queue[key] = child
        child._start_send(self.tcp.isn())
        child._send_syn()
        c.inc("tcp.passive_opens")

    def _take_syn_options(self, seg: Segment) -> None:
        self.mss = min(seg.mss or params.TCP_MSS_DEFAULT, self._our_mss())
        if seg.wscale is not None:
            self.snd_wscale_ok = True
            self.snd_wscale = seg.wscale
            if self.state is not State.SYN_SENT:
                self.rcv_wscale = self._our_wscale()
        else:
            self.snd_wscale = self.rcv_wscale = 0
        self.cwnd = params.TCP_INITIAL_CWND_SEGMENTS * self.mss
        self.ssthresh = 1 << 30

    # ------------------------------------------------------------------ segment arrival
    def segment_arrives(self, seg: Segment) -> None:
        if self.keepalive_timer is not None:  # only keepalive asks how long the peer was idle
            self.last_recv = self.stack.now()
        self.keep_probes = 0
        if self.state is State.SYN_SENT:
            self._syn_sent_input(seg)
        elif self._predicted_ack(seg):
            return  # it notifies only when the writer has room again
        elif not self._predicted_data(seg):
            self._synchronized_input(seg)
        if not self.closed or self.orphan:
            self.notify()

    def _predicted_data(self, seg: Segment) -> bool:
        """Header prediction (as BSD's tcp_input): the next in-order data of an established
        connection, acknowledging nothing new, the window unchanged and fitting in ours, is
        taken here without the general path's steps, each of which would leave it as it is.
        False: not that case, nothing done."""
        data = seg.data
        if (
            self.state is not State.ESTABLISHED
            or seg.flags & ~PSH != ACK
            or not data
            or seg.seq != self.rcv_nxt
            or seg.ack != self.snd_una
            or self.ooo
            or self.read_shut
            or seg.wnd << self.snd_wscale != self.snd_wnd
            or len(data) > seq_diff(self.rcv_adv, self.rcv_nxt)
        ):
            return False
        self.snd_wl1, self.snd_wl2 = seg.seq, seg.ack
        self.rcvbuf += data
        self.rcv_nxt = seq_add(self.rcv_nxt, len(data))
        self.stack.counters.inc("tcp.in_data_bytes", len(data))
        self._acknowledge_data(len(data))
        return True

    def _predicted_ack(self, seg: Segment) -> bool:
        """Header prediction's other case (BSD's tcp_input): a pure ACK of an established
        connection, in sequence, acknowledging new data we sent and updating the window (RFC
        9293's SND.WL1/WL2 test), outside recovery, with no FIN of ours queued and no persist
        timer, is the general path's ACK processing alone (the sequence check passes, nothing
        to trim or receive): the acknowledgement, the window, then output. Of what poll
        reports only POLLOUT can change, so waiters hear of it only when it does. False: not
        that case, nothing done."""
        ack = seg.ack
        if (
            self.state is not State.ESTABLISHED
            or seg.flags != ACK
            or seg.data
            or seg.seq != self.rcv_nxt
            or self.in_recovery
            or self.fin_queued
            or self.persist_timer is not None
            or not (seq_lt(self.snd_una, ack) and seq_le(ack, self.snd_max))
            or not (seq_lt(self.snd_wl1, seg.seq)
                    or (self.snd_wl1 == seg.seq and seq_le(self.snd_wl2, ack)))
        ):  # fmt: skip
            return False
        writable = self._writable()
        self._new_ack(ack)
        wnd = seg.wnd << self.snd_wscale
        self.snd_wnd, self.snd_wl1, self.snd_wl2 = wnd, seg.seq, ack
        if wnd > self.max_snd_wnd:
            self.max_snd_wnd = wnd
        self.output()
        if not writable and self._writable():
            self.notify()  # nothing else a waiter could want changes with a pure ACK
        return True

    def _syn_sent_input(self, seg: Segment) -> None:
        if seg.flags & ACK and (seq_le(seg.ack, self.iss) or seq_lt(self.snd_max, seg.ack)):
            if not seg.flags & RST:
                self._emit_raw(seg.ack, 0, RST)
            return
        if seg.flags & RST:
            if seg.flags & ACK:
                self.abort(errno.ECONNREFUSED)
            return
        if not seg.flags & SYN:
            return
        self.irs, self.rcv_nxt = seg.seq, seq_add(seg.seq, 1)
        self._take_syn_options(seg)
        if not self.snd_wscale_ok:
            self.rcv_wscale = 0
        if seg.flags & ACK:
            self.snd_una = seg.ack
            self._rtt_sample_syn()
            self.state = State.ESTABLISHED
            self.snd_wnd = self.max_snd_wnd = seg.wnd  # never scaled in a SYN
            self.snd_wl1, self.snd_wl2 = seg.seq, seg.ack
            self._stop_rexmit()
            self.stack.counters.inc("tcp.active_opens")
            self._send_ack()
            self._arm_keepalive()
            self.output()
        else:  # simultaneous open
            self.state = State.SYN_RECEIVED
            self.snd_wnd = seg.wnd
            self._send_syn()

    def _rtt_sample_syn(self) -> None:
        """The handshake's RTT sample, unless the SYN was retransmitted (Karn); then RTO
        restarts from 3 s (RFC 6298 5.7) instead of the backed-off value."""
        if self.retries == 0:
            self._rtt_update(self.stack.now() - self.rtt_start)
        elif self.srtt is None:
            self.rto = params.TCP_RTO_AFTER_SYN_LOSS
        self.retries = 0
        self.backoff = 0

    def _acceptable(self, seg: Segment) -> bool:
        wnd = max(0, seq_diff(self.rcv_adv, self.rcv_nxt))
        seq, n = seg.seq, seg.length
        if n == 0:
            if wnd == 0:
                return seg.seq == self.rcv_nxt
            return seq_le(self.rcv_nxt, seq) and seq_lt(seq, seq_add(self.rcv_nxt, wnd))
        if wnd == 0:
            return False
        end = seq_add(seq, n - 1)
        right = seq_add(self.rcv_nxt, wnd)
        return (seq_le(self.rcv_nxt, seq) and seq_lt(seq, right)) or (
            seq_le(self.rcv_nxt, end) and seq_lt(end, right)
        )

    def _synchronized_input(self, seg: Segment) -> None:
        c = self.stack.counters
        # 1. sequence number
        if not self._acceptable(seg):
            if seg.flags & RST:
                return
            if seg.data and seq_le(self.rcv_nxt, seg.seq):
                c.inc("tcp.out_of_window")
            self._send_ack()
            if self.state is State.TIME_WAIT and seg.flags & FIN:
                self._arm_wait(2 * params.TCP_MSL)
            return
        # 2. RST (RFC 5961 3.2: only the exact next sequence number resets)
        if seg.flags & RST:
            if seg.seq != self.rcv_nxt:
                c.inc("tcp.challenge_acks")
                self._send_ack()
                return
            c.inc("tcp.in_rsts")
            if self.state is State.SYN_RECEIVED and self.parent is not None:
                self.destroy()
            elif self.state in (State.CLOSING, State.LAST_ACK, State.TIME_WAIT):
                self.destroy()
            else:
                self.abort(errno.ECONNRESET)
            return
        # 3. SYN in a synchronized state (RFC 5961 4.2)
        if seg.flags & SYN:
            if self.state is State.SYN_RECEIVED and seg.seq == self.irs:
                self._emit(self.iss, SYN | ACK, b"", self._synack_options())
                return
            c.inc("tcp.challenge_acks")
            self._send_ack()
            return
        # 4. ACK
        if not seg.flags & ACK:
            return
        if self.state is State.SYN_RECEIVED:
            if not (seq_lt(self.snd_una, seg.ack) and seq_le(seg.ack, self.snd_max)):
                self._emit_raw(seg.ack, 0, RST)
                return
            if self.parent is not None:
                parent = self.parent
                if len(parent.accept_queue) >= parent.backlog:
                    c.inc("tcp.listen_overflows")
                    return
                parent.syn_queue.pop(self.key(), None)
                parent.accept_queue.append(self)
            self.state = State.ESTABLISHED
            self.snd_una = seg.ack
            self._rtt_sample_syn()
            self._stop_rexmit()
            self.snd_wnd = self.max_snd_wnd = seg.wnd << self.snd_wscale
            self.snd_wl1, self.snd_wl2 = seg.seq, seg.ack
            self._arm_keepalive()
            if self.parent is not None:
                self.parent.notify()
            if self.fin_queued:
                self.state = State.FIN_WAIT_1
        self._process_ack(seg)
        if self.state is State.CLOSED:
            return
        # 6. data
        self._trim_to_window(seg)
        if seg.data or seg.flags & FIN:
            if self.state in CAN_RECEIVE:
                self._receive_data(seg)
            elif self.state is State.TIME_WAIT and seg.flags & FIN:
                self._send_ack()
                self._arm_wait(2 * params.TCP_MSL)
        self.output()

    def _trim_to_window(self, seg: Segment) -> None:
        if seq_lt(seg.seq, self.rcv_nxt):
            skip = seq_diff(self.rcv_nxt, seg.seq)
            if seg.flags & SYN:
                seg.flags &= ~SYN
                skip -= 1
            seg.data = seg.data[skip:]
            seg.seq = self.rcv_nxt
        room = max(0, seq_diff(self.rcv_adv, seg.seq))
        if len(seg.data) > room:
            seg.data = seg.data[:room]
            seg.flags &= ~FIN
            self.stack.counters.inc("tcp.trimmed_beyond_window")

    def _process_ack(self, seg: Segment) -> None:
        c = self.stack.counters
        ack = seg.ack
        if seq_lt(self.snd_max, ack):
            c.inc("tcp.ack_too_new")
            self._send_ack()
            return
        if seq_lt(ack, self.snd_una):
            return  # old duplicate
        wnd = seg.wnd << self.snd_wscale
        if ack == self.snd_una:
            outstanding = seq_diff(self.snd_max, self.snd_una) > 0
            if outstanding and not seg.data and not seg.flags & (SYN | FIN) and wnd == self.snd_wnd:
                self.dupacks += 1
                c.inc("tcp.dup_acks")
                if self.dupacks == params.TCP_DUPACK_THRESHOLD:
                    self._fast_retransmit()
                elif self.in_recovery:
                    self.cwnd += self.mss  # each dup ACK: one left the net
        else:
            self._new_ack(ack)
        if seq_lt(self.snd_wl1, seg.seq) or (self.snd_wl1 == seg.seq and seq_le(self.snd_wl2, ack)):
            opened = wnd > self.snd_wnd
            self.snd_wnd, self.snd_wl1, self.snd_wl2 = wnd, seg.seq, ack
            self.max_snd_wnd = max(self.max_snd_wnd, wnd)
            if wnd and self.persist_timer:
                self.persist_timer.cancel()
                self.persist_timer = None
                self.backoff = 0
            if opened:
                self.notify()
        if self.fin_acked:
            if self.state is State.FIN_WAIT_1:
                self.state = State.FIN_WAIT_2
                if self.orphan:
                    self._arm_wait(params.TCP_FIN_TIMEOUT)
            elif self.state is State.CLOSING:
                self._enter_time_wait()
            elif self.state is State.LAST_ACK:
                self.destroy()

    def _new_ack(self, ack: int) -> None:
        acked = seq_diff(ack, self.snd_una)
        data_acked = max(0, min(seq_diff(ack, self.buf_seq), len(self.sndbuf)))
        del self.sndbuf[:data_acked]
        self.buf_seq = seq_add(self.buf_seq, data_acked)
        if self.fin_queued and seq_lt(self.buf_seq, ack):
            self.fin_acked = True
        self.snd_una = ack
        if seq_lt(self.snd_nxt, ack):
            self.snd_nxt = ack
        if self.rtt_seq is not None and seq_lt(self.rtt_seq, ack):
            self._rtt_update(self.stack.now() - self.rtt_start)
            self.rtt_seq = None
        # NewReno (RFC 6582): a partial ACK retransmits the next hole; a full one deflates
        if self.in_recovery:
            if seq_le(self.recover, ack):
                self.in_recovery = False
                self.cwnd = self.ssthresh
            else:
                self._retransmit_head()
                self.cwnd = max(self.cwnd - acked + self.mss, self.mss)
        elif self.cwnd < self.ssthresh:
            self.cwnd += min(acked, self.mss)
        else:
            self.cwnd += max(1, self.mss * self.mss // max(self.cwnd, 1))
        self.dupacks = 0
        self.retries = 0
        self.backoff = 0
        if self.snd_una == self.snd_max:
            self._stop_rexmit()
        else:
            self._arm_rexmit(restart=True)

    def _receive_data(self, seg: Segment) -> None:
        c = self.stack.counters
        fin = bool(seg.flags & FIN)
        if seg.seq != self.rcv_nxt:
            if len(self.ooo) >= params.TCP_OOO_MAX_SEGMENTS and seg.seq not in self.ooo:
                c.inc("tcp.ooo_drops")
            elif seg.data or fin:
                old = self.ooo.get(seg.seq)
                if old is None or len(old[0]) < len(seg.data):
                    self.ooo[seg.seq] = (seg.data, fin)
                c.inc("tcp.ooo_segments")
            self._send_ack()  # duplicate ACK at once (RFC 5681)
            return
        if seg.data and not self.read_shut:
            self.rcvbuf += seg.data
        self.rcv_nxt = seq_add(self.rcv_nxt, len(seg.data))
        c.inc("tcp.in_data_bytes", len(seg.data))
        had_ooo = bool(self.ooo)
        fin = self._drain_ooo(fin)
        if fin:
            self.rcv_nxt = seq_add(self.rcv_nxt, 1)
            self.fin_received = True
            self._send_ack()
            if self.state is State.ESTABLISHED:
                self.state = State.CLOSE_WAIT
            elif self.state is State.FIN_WAIT_1:
                if self.fin_acked:
                    self._enter_time_wait()
                else:
                    self.state = State.CLOSING
            elif self.state is State.FIN_WAIT_2:
                self._enter_time_wait()
            return
        if had_ooo:
            self._send_ack()
        else:
            self._acknowledge_data(len(seg.data))

    def _acknowledge_data(self, size: int) -> None:
        """In-order data taken: an ACK every second full segment (at the end of a receive
        burst), else by the delayed-ACK timer."""
        self.ack_pending += max(1, size)  # bytes not yet acknowledged
        if self.ack_pending >= 2 * self.mss:
            if self.stack.in_burst:
                self.stack.defer_ack(self)  # one ACK for the whole burst (see NetStack)
            else:
                self._send_ack()
        elif self.delack_timer is None:
            self.delack_timer = self.stack.timers.after(params.TCP_DELACK, self._delack_fire)

    def _drain_ooo(self, fin: bool) -> bool:
        while self.ooo and not fin:
            progressed = False
            for seq in list(self.ooo):
                data, seg_fin = self.ooo[seq]
                end = seq_add(seq, len(data))
                if seq_lt(self.rcv_nxt, seq):
                    continue
                del self.ooo[seq]
                if seq_le(end, self.rcv_nxt) and not (seg_fin and end == self.rcv_nxt):
                    continue  # wholly old: overlap dropped
                new = data[seq_diff(self.rcv_nxt, seq) :]
                self.stack.counters.inc("tcp.in_data_bytes", len(new))
                if not self.read_shut:
                    self.rcvbuf += new
                self.rcv_nxt = seq_add(self.rcv_nxt, len(new))
                fin = seg_fin
                progressed = True
                break
            if not progressed:
                break
        if fin:
            self.ooo.clear()
        return fin

    def flush_ack(self) -> None:
        """The ACK deferred to the end of a receive burst, if still owed."""
        if self.ack_pending and self.state in CAN_RECEIVE:
            self._send_ack()

    def _delack_fire(self) -> None:
        self.delack_timer = None
        if self.ack_pending:
            self._send_ack()

    # ------------------------------------------------------------------ sending
    def _free_space(self) -> int:
        return max(
            0, params.TCP_RCVBUF - len(self.rcvbuf) - sum(len(d) for d, _ in self.ooo.values())
        )

    def _window(self) -> int:
        """The window to advertise: never shrinking the right edge, and opening it only by a
        worthwhile amount (RFC 1122 4.2.3.3 receiver SWS avoidance)."""
        space = self._free_space()
        edge = seq_add(self.rcv_nxt, space)
        threshold = min(params.TCP_RCVBUF // 2, self.mss)
        current = max(0, seq_diff(self.rcv_adv, self.rcv_nxt))
        if seq_diff(edge, self.rcv_adv) >= threshold or space >= current + threshold:
            wnd = space
        else:
            wnd = current
        wnd = min(wnd, 65535 << self.rcv_wscale)
        if self.stack.window_cap is not None:
            wnd = min(wnd, self.stack.window_cap)
        wnd = (wnd >> self.rcv_wscale) << self.rcv_wscale
        return wnd

    def _maybe_window_update(self) -> None:
        if self.state not in CAN_RECEIVE:
            return
        current = max(0, seq_diff(self.rcv_adv, self.rcv_nxt))
        if self._free_space() - current >= min(params.TCP_RCVBUF // 2, 2 * self.mss):
            self._send_ack()

    def _send_ack(self) -> None:
        self._emit(self.snd_nxt, ACK, b"", b"")

    def _emit(
        self, seq: int, flags: int, data: bytes, options: bytes, window: int | None = None
    ) -> None:
        """A segment of this connection, carrying our window (and the ACK, when set)."""
        wnd = self._window() if window is None else window
        if flags & SYN:
            field = min(wnd, 65535)  # never scaled in a SYN
        else:
            self.rcv_adv = seq_add(self.rcv_nxt, wnd)
            field = wnd >> self.rcv_wscale
        ack = 0
        if flags & ACK:
            ack = self.rcv_nxt
            self.ack_pending = 0
            if self.delack_timer:
                self.delack_timer.cancel()
                self.delack_timer = None
        self._emit_raw(seq, ack, flags, field, data, options)

    def _emit_raw(
        self,
        seq: int,
        ack: int,
        flags: int,
        window: int = 0,
        data: bytes = b"",
        options: bytes = b"",
    ) -> None:
        try:
            self.stack.ip_output(
                self.remote_ip,
                PROTO_TCP,
                build_segment(
                    self.local_ip,
                    self.remote_ip,
                    self.local_port,
                    self.remote_port,
                    seq,
                    ack,
                    flags,
                    window,
                    data,
                    options,
                ),
            )
        except SocketError as exc:
            self.soft_error = exc.errno
            return
        c = self.stack.counters
        c.inc("tcp.out_segs")
        if flags & RST:
            c.inc("tcp.out_rsts")

    def output(self) -> None:
        """Send what the windows, Nagle and the buffer allow (RFC 9293 3.8.6.2). The window we
        advertise is computed once: nothing received changes it between these segments."""
        if self.state not in CAN_OUTPUT:
            return
        nodelay = self.options.get((IPPROTO_TCP, TCP_NODELAY))
        sndbuf, mss = self.sndbuf, self.mss
        wnd: int | None = None
        sent = 0
        while True:
            in_flight = seq_diff(self.snd_nxt, self.snd_una)
            offset = seq_diff(self.snd_nxt, self.buf_seq)
            if offset < 0:
                offset = 0
            avail = len(sndbuf) - offset
            usable = min(self.snd_wnd, self.cwnd) - in_flight
            n = max(0, min(avail, usable, mss))
            fin_now = self.fin_queued and (
                not self.fin_acked
                and offset + n == len(sndbuf)
                and seq_le(self.snd_nxt, seq_add(self.buf_seq, len(sndbuf)))
                and (n > 0 or self.snd_nxt == seq_add(self.buf_seq, len(sndbuf)))
            )
            if n == 0 and not fin_now:
                break
            if n < mss and in_flight and n:
                if n < avail and n < self.max_snd_wnd // 2:
                    break  # the window, not the data, limits: sender SWS avoidance
                if n == avail and not nodelay and not fin_now:
                    break  # Nagle
            flags = ACK | (PSH if n and offset + n == len(sndbuf) else 0) | (FIN if fin_now else 0)
            if self.rtt_seq is None and self.snd_nxt == self.snd_max and n:
                self.rtt_seq, self.rtt_start = self.snd_nxt, self.stack.now()
            if wnd is None:
                wnd = self._window()
            self._emit(self.snd_nxt, flags, sndbuf[offset : offset + n], b"", window=wnd)
            self.snd_nxt = seq_add(self.snd_nxt, n + (1 if fin_now else 0))
            if seq_lt(self.snd_max, self.snd_nxt):
                self.snd_max = self.snd_nxt
            sent += n
            if self.rexmit_timer is None:
                self._arm_rexmit()
            if fin_now:
                break
        if sent:
            self.stack.counters.inc("tcp.out_data_bytes", sent)
        if (
            self.snd_wnd == 0
            and len(sndbuf) > max(0, seq_diff(self.snd_nxt, self.buf_seq))
            and self.snd_una == self.snd_max
            and self.persist_timer is None
        ):
            self.persist_timer = self.stack.timers.after(self._backed_off_rto(), self._persist)

    def _queue_fin(self) -> None:
        if self.fin_queued:
            return
        self.fin_queued = True
        self.write_shut = True
        if self.state is State.ESTABLISHED:
            self.state = State.FIN_WAIT_1
        elif self.state is State.CLOSE_WAIT:
            self.state = State.LAST_ACK
        self.output()

    # ------------------------------------------------------------------ timers
    def _backed_off_rto(self) -> int:
        return min(self.rto << self.backoff, params.TCP_RTO_MAX)

    def _rtt_update(self, r: int) -> None:
        r = max(r, 1)
        if self.srtt is None:
            self.srtt, self.rttvar = r, r // 2
        else:
            self.rttvar = (3 * self.rttvar + abs(self.srtt - r)) // 4
            self.srtt = (7 * self.srtt + r) // 8
        self.rto = min(
            max(self.srtt + max(params.MS, 4 * self.rttvar), params.TCP_RTO_MIN), params.TCP_RTO_MAX
        )

    def _arm_rexmit(self, restart: bool = False) -> None:
        """Start the retransmission timer (restart: from now, even if it runs). A restart to
        a later time only moves `rexmit_due`; the timer, when it comes, runs again for the
        rest, so an ACK stream does not cancel and push a timer per ACK."""
        timer = self.rexmit_timer
        if timer is not None and not restart:
            return
        due = self.stack.now() + self._backed_off_rto()
        self.rexmit_due = due
        if timer is not None:
            if due >= timer.deadline:
                return
            timer.cancel()
        self.rexmit_timer = self.stack.timers.at(due, self._rexmit_fire)

    def _stop_rexmit(self) -> None:
        if self.rexmit_timer is not None:
            self.rexmit_timer.cancel()
            self.rexmit_timer = None

    def _rexmit_fire(self) -> None:
        self.rexmit_timer = None
        if self.stack.now() < self.rexmit_due:  # restarted since it was set: not due yet
            self.rexmit_timer = self.stack.timers.at(self.rexmit_due, self._rexmit_fire)
            return
        c = self.stack.counters
        if self.state in (State.CLOSED, State.LISTEN, State.TIME_WAIT):
            return
        limit = (
            params.TCP_SYN_RETRIES
            if self.state is State.SYN_SENT
            else params.TCP_SYNACK_RETRIES
            if self.state is State.SYN_RECEIVED
            else params.TCP_MAX_RETRIES
        )
        if self.retries >= limit:
            c.inc("tcp.timeouts_abort")
            if self.state is State.SYN_RECEIVED and self.parent is not None:
                self.destroy()
            else:
                self.abort(self.soft_error or errno.ETIMEDOUT, send_rst=self.state in SYNCHRONIZED)
            return
        self.retries += 1
        self.backoff = min(self.backoff + 1, 10)
        self.rtt_seq = None  # Karn's algorithm
        c.inc("tcp.retrans_timeouts")
        if self.state in (State.SYN_SENT, State.SYN_RECEIVED):
            self.snd_nxt = self.iss
            self._send_syn() if self.state is State.SYN_SENT else self._emit(
                self.iss, SYN | ACK, b"", self._synack_options()
            )
            self.snd_nxt = seq_add(self.iss, 1)
            self._arm_rexmit()
            return
        flight = seq_diff(self.snd_max, self.snd_una)
        self.ssthresh = max(flight // 2, 2 * self.mss)
        self.cwnd = self.mss
        self.dupacks = 0
        self.in_recovery = False
        self.snd_nxt = self.snd_una  # go back N
        before = self.stack.counters["tcp.out_segs"]
        self.output()
        c.inc("tcp.retrans_segs", self.stack.counters["tcp.out_segs"] - before)
        self._arm_rexmit()

    def _synack_options(self) -> bytes:
        opts = struct.pack("!BBH", 2, 4, self._our_mss())
        if self.snd_wscale_ok:
            opts += struct.pack("!BBBB", 1, 3, 3, self.rcv_wscale)
        return opts

    def _fast_retransmit(self) -> None:
        """RFC 5681 3.2 on the third duplicate ACK, once per window (RFC 6582's `recover`)."""
        if self.in_recovery:
            return
        flight = seq_diff(self.snd_max, self.snd_una)
        self.ssthresh = max(flight // 2, 2 * self.mss)
        self.recover = self.snd_max
        self.in_recovery = True
        self.stack.counters.inc("tcp.fast_retransmits")
        self._retransmit_head()
        self.cwnd = self.ssthresh + params.TCP_DUPACK_THRESHOLD * self.mss

    def _retransmit_head(self) -> None:
        """Resend one MSS from SND.UNA (with the FIN if it ends there)."""
        self.rtt_seq = None
        offset = max(0, seq_diff(self.snd_una, self.buf_seq))
        data = bytes(self.sndbuf[offset : offset + self.mss])
        fin = (
            FIN
            if self.fin_queued
            and offset + len(data) == len(self.sndbuf)
            and seq_lt(seq_add(self.buf_seq, len(self.sndbuf)), self.snd_max)
            else 0
        )
        if not data and not fin:
            return
        self._emit(self.snd_una, ACK | fin, data, b"")
        self.stack.counters.inc("tcp.retrans_segs")
        self._arm_rexmit(restart=True)

    def _persist(self) -> None:
        """Zero-window probe: an old sequence number makes the peer answer with its window."""
        self.persist_timer = None
        if self.state not in CAN_SEND and self.state is not State.FIN_WAIT_1:
            return
        if self.snd_wnd:
            self.output()
            return
        self.stack.counters.inc("tcp.window_probes")
        self._emit(seq_add(self.snd_una, -1), ACK, b"", b"")
        self.backoff = min(self.backoff + 1, 10)
        self.persist_timer = self.stack.timers.after(self._backed_off_rto(), self._persist)

    def _arm_keepalive(self) -> None:
        if self.keepalive_timer:
            self.keepalive_timer.cancel()
            self.keepalive_timer = None
        if self.options.get((SOL_SOCKET, SO_KEEPALIVE)) and self.state in SYNCHRONIZED:
            # idle is counted from now at the latest: the first probe waits a full
            # TCP_KEEPIDLE, as Linux's timer does when keepalive is switched on
            self.last_recv = max(self.last_recv, self.stack.now())
            self.keepalive_timer = self.stack.timers.after(
                self._keep(TCP_KEEPIDLE), self._keepalive_fire
            )

    def _keep(self, name: int) -> int:
        default = {
            TCP_KEEPIDLE: params.TCP_KEEPIDLE,
            TCP_KEEPINTVL: params.TCP_KEEPINTVL,
            TCP_KEEPCNT: params.TCP_KEEPCNT,
        }[name]
        value = self.options.get((IPPROTO_TCP, name))
        if not value:
            return default
        return value if name == TCP_KEEPCNT else value * params.SECOND

    def _keepalive_fire(self) -> None:
        self.keepalive_timer = None
        if self.state not in (State.ESTABLISHED, State.CLOSE_WAIT) or not self.options.get(
            (SOL_SOCKET, SO_KEEPALIVE)
        ):
            return
        idle = self.stack.now() - self.last_recv
        if idle < self._keep(TCP_KEEPIDLE) and self.keep_probes == 0:
            self.keepalive_timer = self.stack.timers.after(
                self._keep(TCP_KEEPIDLE) - idle, self._keepalive_fire
            )
            return
        if self.keep_probes >= self._keep(TCP_KEEPCNT):
            self.stack.counters.inc("tcp.keepalive_aborts")
            self.abort(errno.ETIMEDOUT, send_rst=True)
            return
        self.keep_probes += 1
        self.stack.counters.inc("tcp.keepalive_probes")
        self._emit(seq_add(self.snd_una, -1), ACK, b"", b"")
        self.keepalive_timer = self.stack.timers.after(
            self._keep(TCP_KEEPINTVL), self._keepalive_fire
        )

    def _arm_wait(self, delay: int) -> None:
        if self.wait_timer:
            self.wait_timer.cancel()
        self.wait_timer = self.stack.timers.after(delay, self.destroy)

    def _enter_time_wait(self) -> None:
        self.state = State.TIME_WAIT
        self._stop_rexmit()
        if self.keepalive_timer:
            self.keepalive_timer.cancel()
        self._arm_wait(2 * params.TCP_MSL)
        self.notify()

    # ------------------------------------------------------------------ teardown
    def key(self) -> Key:
        return (self.local_ip, self.local_port, self.remote_ip, self.remote_port)

    def abort(self, err: int, send_rst: bool = False) -> None:
        """Drop the connection, telling the application `err` (0: nothing to tell)."""
        if send_rst and self.state in SYNCHRONIZED | {State.SYN_RECEIVED}:
            self._emit_raw(self.snd_nxt, 0, RST)
        if err:
            self.error = err
        self.destroy()

    def destroy(self) -> None:
        """Forget the TCB: timers, tables, buffers; the socket reads as CLOSED."""
        for timer in (
            self.rexmit_timer,
            self.delack_timer,
            self.persist_timer,
            self.keepalive_timer,
            self.wait_timer,
        ):
            if timer:
                timer.cancel()
        self.rexmit_timer = self.delack_timer = self.persist_timer = None
        self.keepalive_timer = self.wait_timer = None
        if self.tcp.conns.get(self.key()) is self:
            del self.tcp.conns[self.key()]
        if self.parent is not None:
            self.parent.syn_queue.pop(self.key(), None)
            if self in self.parent.accept_queue:
                self.parent.accept_queue.remove(self)
            self.parent = None
        if self.state is not State.LISTEN:
            self.tcp.unbind(self)
        self.state = State.CLOSED
        self.sndbuf.clear()
        self.ooo.clear()
        if self.closed:
            self.rcvbuf.clear()
        self.notify()
