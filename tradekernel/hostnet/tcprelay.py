"""One guest TCP connection terminated in the user-mode NAT and relayed to a host TCP socket.

The NAT is the guest's TCP peer (RFC 9293 basics): three-way handshake either way (the guest
connecting out, or a --hostfwd connection coming in), sequence and acknowledgement numbers,
the guest's advertised window respected and ours advertised from free buffer space, the guest's
MSS honoured, FIN both ways (half-close carried to the host socket with shutdown), RST both ways,
retransmission on timeout with an RTT estimate and backoff per RFC 6298 (minimum RTO 200 ms),
fast retransmit after three duplicate ACKs, and zero-window probes. Out-of-order segments from
the guest are not queued: they are answered with a duplicate ACK and the guest resends.
Data from the guest is acknowledged every second segment, at once on PSH, FIN or a gap, else
after ACK_DELAY (RFC 1122 4.2.3.2's delayed ACK, with a much shorter timer). Data from the
guest is written to the host socket in pieces of at least HOST_WRITE_BATCH bytes (one send
for a couple of dozen segments, not one each: each send to a local peer costs a wake-up of
it), at once on PSH or FIN (the end of what the guest's program wrote), and otherwise
HOST_WRITE_DELAY after the first byte waited (`next_deadline`); the data is acknowledged to
the guest as it arrives all the same. Only
a host socket that refused part of a write is watched for writability (`wants_write`), so the
selector interest does not flip per segment. Reading the host socket pauses when `outgoing` is
full and resumes only when it is half empty, so the selector interest does not flip with every
ACK.

Timers run on host time (time.monotonic via the `now` argument): the NAT is outside the guest.
Sizes are bounded: at most RELAY_BUFFER bytes wait in either direction, which is also the most
the NAT advertises as its window. A connection that gives up (too many retransmissions, host
socket error) sends RST to the guest and closes its host socket; nothing raises out of here.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable

from tradekernel.hostnet.packets import ACK, FIN, PSH, RST, SYN, Tcp

RELAY_BUFFER = 65535  # bytes waiting per direction; our advertised window (no scaling)
OUR_MSS = 1460
DEFAULT_GUEST_MSS = 536  # RFC 9293 default when the SYN carries no MSS option
RTO_INITIAL, RTO_MIN, RTO_MAX = 1.0, 0.2, 60.0
MAX_RETRANSMITS = 8
DUPACK_THRESHOLD = 3
READ_CHUNK = 65536
CONNECT_TIMEOUT = 30.0  # seconds a host connect may take before the guest gets RST
ACK_EVERY = 2  # full segments from the guest per ACK (RFC 5681 4.2)
ACK_DELAY = 0.001  # seconds an ACK may wait for a second segment (RFC 1122: < 0.5 s)
HOST_WRITE_BATCH = 32768  # guest bytes gathered before a host send (the rest: HOST_WRITE_DELAY)
HOST_WRITE_DELAY = 0.005  # seconds gathered guest data may wait without PSH (its ACK does not)

SendSegment = Callable[[Tcp], None]


def seq_lt(a: int, b: int) -> bool:
    return ((a - b) & 0xFFFFFFFF) > 0x7FFFFFFF


def seq_le(a: int, b: int) -> bool:
    return a == b or seq_lt(a, b)


class TcpRelay:
    """States: "connecting" (guest SYN held while the host socket connects), "syn_sent" (we
    opened towards the guest for a hostfwd), "syn_received", "established", "closed"."""

    def __init__(
        self,
        sock: socket.socket,
        guest_port: int,
        remote_port: int,
        emit: SendSegment,
        iss: int,
    ) -> None:
        self.sock = sock
        self.guest_port = guest_port
        self.remote_port = remote_port  # the port the guest sees on the far side
        self._emit = emit
        self.state = "closed"
        self.iss = iss & 0xFFFFFFFF  # initial send sequence number, chosen by the NAT
        self.snd_una = self.snd_nxt = self.snd_max = self.iss
        self.snd_wnd = 0
        self.guest_mss = DEFAULT_GUEST_MSS
        self.rcv_nxt = 0
        self.outgoing = bytearray()  # from the host, for the guest: starts at snd_una
        self.to_host = bytearray()  # from the guest, not yet written to the host socket
        self.host_eof = False  # host socket read EOF: a FIN is due after `outgoing`
        self.fin_sent = False  # our FIN is out (at snd_nxt - 1)
        self.fin_acked = False
        self.guest_fin = False  # the guest sent FIN: shut the host socket's write side
        self.host_shut = False
        self.host_full = False  # the host socket took only part of the last write
        self.flush_due: float | None = None  # gathered guest data goes to the host by then
        self.rto = RTO_INITIAL
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.retransmits = 0
        self.deadline: float | None = None
        self.ack_due: float | None = None  # a delayed ACK goes out then
        self.unacked = 0  # guest segments taken since our last ACK
        self.reading = True  # host socket read while `outgoing` has room (see wants_read)
        self.timing: tuple[int, float] | None = None  # (seq, sent at) of one timed segment
        self.dupacks = 0

    # -- opening ---------------------------------------------------------------------------

    def guest_syn(self, segment: Tcp, now: float) -> None:
        """The guest's SYN for an outbound connection; the host socket is connecting."""
        self.rcv_nxt = (segment.seq + 1) & 0xFFFFFFFF
        self.snd_wnd = segment.window
        self.guest_mss = max(64, min(segment.mss or DEFAULT_GUEST_MSS, OUR_MSS))
        self.state = "connecting"
        self.deadline = now + CONNECT_TIMEOUT

    def host_connected(self, now: float) -> None:
        self.state = "syn_received"
        self._send_syn(now)

    def open_to_guest(self, now: float) -> None:
        """A hostfwd connection: SYN to the guest's port."""
        self.state = "syn_sent"
        self._send_syn(now)

    def _send_syn(self, now: float) -> None:
        flags = SYN | (ACK if self.state == "syn_received" else 0)
        self._segment(self.iss, flags, b"", mss=OUR_MSS)
        self.snd_nxt = self.snd_max = (self.iss + 1) & 0xFFFFFFFF
        self.timing = (self.iss, now)
        self._arm(now)

    # -- segments from the guest -----------------------------------------------------------

    def guest_segment(self, segment: Tcp, now: float) -> None:
        if segment.flags & RST:
            if self.state in ("syn_sent",) or self._in_window(segment.seq):
                self.abort(send_rst=False)
            return
        if self.state == "syn_sent":
            self._syn_sent(segment, now)
            return
        if segment.flags & SYN:
            if self.state in ("connecting", "syn_received") and segment.seq + 1 == self.rcv_nxt:
                if self.state == "syn_received":
                    self._segment(self.iss, SYN | ACK, b"", mss=OUR_MSS)  # our SYN-ACK was lost
                return
            self._ack_now()  # a SYN inside a connection: answer with an ACK (RFC 9293 3.10.7.4)
            return
        if self.state == "connecting" or not segment.flags & ACK:
            return
        self._process_ack(segment, now)
        if self.state == "closed":
            return
        self._process_data(segment, now)
        self._data_taken(segment.flags, now)

    def guest_data(self, seq: int, ack: int, flags: int, window: int,
                   payload: bytes | memoryview, now: float) -> bool:
        """Header prediction (as BSD's tcp_input, and tcp.py's for the guest's own stack): the
        next in-order data of an established connection (ACK, maybe PSH, no other flag),
        acknowledging nothing new and fitting the buffer, is taken here without the general
        path's steps, each of which would leave it as it is (the ACK equals SND.UNA, so it
        neither advances nor counts as a duplicate with data aboard; no FIN). False: not that
        case, nothing done (the caller takes the general path)."""
        if (
            self.state != "established"
            or seq != self.rcv_nxt
            or ack != self.snd_una
            or self.guest_fin
            or len(payload) > RELAY_BUFFER - len(self.to_host)
        ):
            return False
        self.snd_wnd = window
        self.to_host += payload
        self.rcv_nxt = (seq + len(payload)) & 0xFFFFFFFF
        self._acknowledge(flags, True, now)
        self._data_taken(flags, now)
        return True

    def _data_taken(self, flags: int, now: float) -> None:
        """After a segment's data: the host write when a batch is gathered (or the guest
        pushed or finished), then what the guest's window now lets us send."""
        if len(self.to_host) >= HOST_WRITE_BATCH or self.guest_fin or flags & PSH:
            self.flush_to_host()
        elif self.to_host and self.flush_due is None:
            self.flush_due = now + HOST_WRITE_DELAY
        if self.outgoing or self.host_eof:
            self.pump(now)

    def _syn_sent(self, segment: Tcp, now: float) -> None:
        if segment.flags & (SYN | ACK) != SYN | ACK or segment.ack != self.snd_nxt:
            if segment.flags & ACK and segment.ack != self.snd_nxt:
                self._segment(segment.ack, RST, b"")
            return
        self.rcv_nxt = (segment.seq + 1) & 0xFFFFFFFF
        self.snd_una = self.snd_nxt
        self.snd_wnd = segment.window
        self.guest_mss = max(64, min(segment.mss or DEFAULT_GUEST_MSS, OUR_MSS))
        self.state = "established"
        self._sample_rtt(segment.ack, now)
        self._disarm()
        self._ack_now()
        self.pump(now)

    def _in_window(self, seq: int) -> bool:
        return seq_le(self.rcv_nxt, seq) and seq_lt(seq, self.rcv_nxt + max(1, self._window()))

    def _process_ack(self, segment: Tcp, now: float) -> None:
        ack = segment.ack
        if seq_lt(self.snd_max, ack):
            self._ack_now()  # acknowledges something never sent
            return
        if seq_lt(self.snd_nxt, ack):
            self.snd_nxt = ack  # after a go-back-N rewind: the guest had those bytes already
        if self.state == "syn_received":
            if ack != self.snd_nxt:
                return
            self.state = "established"
        advanced = seq_lt(self.snd_una, ack)
        if advanced:
            acked = (ack - self.snd_una) & 0xFFFFFFFF
            self._sample_rtt(ack, now)
            syn = 1 if self.snd_una == self.iss else 0
            acked -= syn  # the SYN's sequence number
            data_end = (self.snd_una + syn + len(self.outgoing)) & 0xFFFFFFFF
            if self.host_eof and ack == (data_end + 1) & 0xFFFFFFFF:
                acked -= 1  # the FIN's
                self.fin_acked = self.fin_sent = True
            del self.outgoing[: max(0, acked)]
            self.snd_una = ack
            self.retransmits = 0
            self.dupacks = 0
            if self.snd_una == self.snd_nxt:
                self._disarm()
            else:
                self._arm(now)
        elif (
            ack == self.snd_una
            and not segment.payload
            and segment.window == self.snd_wnd
            and self.snd_una != self.snd_nxt
        ):
            self.dupacks += 1
            if self.dupacks == DUPACK_THRESHOLD:
                self._retransmit_first()
        self.snd_wnd = segment.window
        if self._finished():
            self.close()

    def _process_data(self, segment: Tcp, now: float) -> None:
        payload = segment.payload
        seq = segment.seq
        if payload and seq_lt(seq, self.rcv_nxt):  # partly old: keep the new part
            skip = (self.rcv_nxt - seq) & 0xFFFFFFFF
            payload = payload[skip:] if skip < len(payload) else b""
            seq = self.rcv_nxt
        if seq != self.rcv_nxt:
            if payload or segment.flags & FIN:
                self._ack_now()  # out of order: duplicate ACK, the guest resends
            return
        taken = 0
        if payload and not self.guest_fin:
            room = RELAY_BUFFER - len(self.to_host)
            taken = min(room, len(payload))
            self.to_host += payload[:taken]
            self.rcv_nxt = (self.rcv_nxt + taken) & 0xFFFFFFFF
        if segment.flags & FIN and taken == len(payload) and not self.guest_fin:
            self.guest_fin = True
            self.rcv_nxt = (self.rcv_nxt + 1) & 0xFFFFFFFF
        if payload or segment.flags & FIN:
            self._acknowledge(segment.flags, taken == len(payload), now)

    def _acknowledge(self, flags: int, whole: bool, now: float) -> None:
        """The ACK for data (or a FIN) just taken: at once on PSH, FIN or data left over (the
        window update matters), else every ACK_EVERY segments or after ACK_DELAY."""
        if flags & (FIN | PSH) or not whole:
            self._ack_now()
            return
        self.unacked += 1
        if self.unacked >= ACK_EVERY:
            self._ack_now()
        elif self.ack_due is None:
            self.ack_due = now + ACK_DELAY

    # -- host side -------------------------------------------------------------------------

    def flush_to_host(self) -> None:
        self.flush_due = None
        if self.to_host and not self.host_shut:
            try:
                written = self.sock.send(self.to_host)
            except (BlockingIOError, InterruptedError):
                written = 0
            except OSError:
                self.abort(send_rst=True)
                return
            was_full = len(self.to_host) >= RELAY_BUFFER - OUR_MSS
            del self.to_host[:written]
            self.host_full = bool(self.to_host)
            if written and was_full:
                self._ack_now()  # window update: space opened
        if self.guest_fin and not self.to_host and not self.host_shut:
            self.host_shut = True
            try:
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            if self._finished():
                self.close()

    def host_readable(self, now: float) -> None:
        """Read what the host sent, as far as our buffer allows, and send it on."""
        if self.host_eof or self.state == "closed":
            return
        room = RELAY_BUFFER - len(self.outgoing)
        if room > 0:
            try:
                data = self.sock.recv(min(room, READ_CHUNK))
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                self.abort(send_rst=True)
                return
            if data == b"":
                self.host_eof = True
            elif data:
                self.outgoing += data
        self.pump(now)

    def wants_read(self) -> bool:
        if len(self.outgoing) >= RELAY_BUFFER:
            self.reading = False
        elif len(self.outgoing) <= RELAY_BUFFER // 2:
            self.reading = True
        return (
            self.state in ("established", "syn_received", "syn_sent")
            and not self.host_eof
            and self.reading
        )

    def wants_write(self) -> bool:
        """Only after the host socket refused part of a write: gathered data that was never
        tried goes out by its timer (`flush_due`), without a selector change."""
        return self.host_full and bool(self.to_host) and not self.host_shut

    # -- sending to the guest --------------------------------------------------------------

    def _window(self) -> int:
        return RELAY_BUFFER - len(self.to_host)

    def _segment(self, seq: int, flags: int, payload: bytes, mss: int | None = None) -> None:
        ack = self.rcv_nxt if flags & ACK else 0
        if flags & ACK:
            self.unacked, self.ack_due = 0, None  # this segment carries the acknowledgement
        self._emit(
            Tcp(self.remote_port, self.guest_port, seq, ack, flags, self._window(), payload, mss)
        )

    def _ack_now(self) -> None:
        self._segment(self.snd_nxt, ACK, b"")

    def pump(self, now: float) -> None:
        """Send what the guest's window allows from `outgoing`, then our FIN when due."""
        if self.state != "established":
            return
        sent_offset = (self.snd_nxt - self.snd_una) & 0xFFFFFFFF
        if self.snd_una == self.iss:
            sent_offset -= 1
        while sent_offset < len(self.outgoing):
            in_flight = sent_offset
            room = self.snd_wnd - in_flight
            if room <= 0:
                if in_flight == 0 and self.deadline is None:
                    self._arm(now)  # zero window: the persist timer probes it
                break
            size = min(self.guest_mss, room, len(self.outgoing) - sent_offset)
            chunk = bytes(self.outgoing[sent_offset : sent_offset + size])
            last = sent_offset + size == len(self.outgoing)
            self._segment(self.snd_nxt, ACK | (PSH if last else 0), chunk)
            if self.timing is None:
                self.timing = (self.snd_nxt, now)
            self.snd_nxt = (self.snd_nxt + size) & 0xFFFFFFFF
            self._sent_up_to(self.snd_nxt)
            sent_offset += size
            if self.deadline is None:
                self._arm(now)
        if (
            self.host_eof
            and not self.fin_sent
            and not self.fin_acked
            and sent_offset == len(self.outgoing)
        ):
            self._segment(self.snd_nxt, FIN | ACK, b"")
            self.snd_nxt = (self.snd_nxt + 1) & 0xFFFFFFFF
            self._sent_up_to(self.snd_nxt)
            self.fin_sent = True
            self._arm(now)

    def _sent_up_to(self, seq: int) -> None:
        if seq_lt(self.snd_max, seq):
            self.snd_max = seq

    def _retransmit_first(self) -> None:
        if self.state in ("syn_sent", "syn_received"):
            flags = SYN | (ACK if self.state == "syn_received" else 0)
            self._segment(self.iss, flags, b"", mss=OUR_MSS)
            return
        size = min(self.guest_mss, len(self.outgoing))
        if size:
            self._segment(self.snd_una, ACK, bytes(self.outgoing[:size]))
        elif self.fin_sent:
            self._segment(self.snd_una, FIN | ACK, b"")
        self.timing = None  # Karn: no RTT sample from a retransmitted segment

    # -- timers ----------------------------------------------------------------------------

    def _arm(self, now: float) -> None:
        self.deadline = now + self.rto

    def _disarm(self) -> None:
        self.deadline = None

    def _sample_rtt(self, ack: int, now: float) -> None:
        if self.timing is None or not seq_lt(self.timing[0], ack):
            return
        sample = max(0.0, now - self.timing[1])
        self.timing = None
        if self.srtt is None:
            self.srtt, self.rttvar = sample, sample / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - sample)
            self.srtt = 0.875 * self.srtt + 0.125 * sample
        self.rto = min(RTO_MAX, max(RTO_MIN, self.srtt + 4 * self.rttvar))

    @property
    def next_deadline(self) -> float | None:
        """The earliest of the retransmission/persist timer, a delayed ACK and a gathered
        host write."""
        due = self.deadline
        for other in (self.ack_due, self.flush_due):
            if other is not None and (due is None or other < due):
                due = other
        return due

    def on_timer(self, now: float) -> None:
        if self.flush_due is not None and now >= self.flush_due:
            self.flush_to_host()
        if self.ack_due is not None and now >= self.ack_due and self.state != "closed":
            self._ack_now()
        if self.deadline is None or now < self.deadline or self.state == "closed":
            return
        if self.state == "connecting":
            self.abort(send_rst=True)  # the host never answered: refuse the guest
            return
        in_flight = self.snd_una != self.snd_nxt
        if not in_flight and self.state == "established" and self.outgoing:
            # persist: probe a zero window with one byte beyond it
            self._segment(self.snd_nxt, ACK, bytes(self.outgoing[:1]))
            self.snd_nxt = (self.snd_nxt + 1) & 0xFFFFFFFF
            self._sent_up_to(self.snd_nxt)
            self.rto = min(RTO_MAX, self.rto * 2)
            self._arm(now)
            return
        if not in_flight:
            self.deadline = None
            return
        self.retransmits += 1
        if self.retransmits > MAX_RETRANSMITS:
            self.abort(send_rst=True)
            return
        self.rto = min(RTO_MAX, self.rto * 2)
        if self.state != "established":
            self._retransmit_first()
            self._arm(now)
            return
        # Go back N: everything after snd_una is sent again as the window allows.
        self.snd_nxt = self.snd_una
        self.fin_sent = False
        self.timing = None  # Karn: no RTT sample from retransmitted data
        self.deadline = None
        self.pump(now)

    # -- closing ---------------------------------------------------------------------------

    def _finished(self) -> bool:
        return self.fin_acked and self.guest_fin and self.host_shut

    def abort(self, send_rst: bool) -> None:
        if self.state == "closed":
            return
        if send_rst and self.state != "connecting":
            self._segment(self.snd_nxt, RST | ACK, b"")
        elif send_rst:
            self._segment(0, RST | ACK, b"")
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass  # the host peer sees RST rather than FIN where the socket allows
        self.close()

    def close(self) -> None:
        self.state = "closed"
        self.deadline = None
        try:
            self.sock.close()
        except OSError:
            pass
