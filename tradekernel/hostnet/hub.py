"""`--net socket:...`: a virtual cable or hub between TradeKernel machines on one host, one
Ethernet frame per UDP datagram (as QEMU's -netdev socket).

  socket:mcast=GROUP:PORT[,localaddr=ADDR]   a hub: every machine on the group sees every frame
      another one sends. The datagrams go out on the interface of ADDR (default 127.0.0.1) with
      multicast TTL 0, so they never leave this host; a machine ignores its own frames.
  socket:udp=PEERHOST:PEERPORT,localaddr=HOST:PORT   a cable between two machines: frames go to
      the peer's address and arrive on our bound one.

A datagram larger than an Ethernet frame, or shorter than its header, is dropped and counted.
"""

from __future__ import annotations

import socket
import struct

from tradekernel.hostnet.link import MAX_FRAME, MIN_FRAME, Deliver

MAX_FRAMES_PER_POLL = 256
DEFAULT_LOCALADDR = "127.0.0.1"


def _host_port(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"socket: {what}={text!r} is not HOST:PORT")
    return host or DEFAULT_LOCALADDR, int(port)


class SocketBackend:
    name = "socket"

    def __init__(self, options: str) -> None:
        fields = dict(part.partition("=")[::2] for part in options.split(",") if part)
        unknown = set(fields) - {"mcast", "udp", "localaddr"}
        if unknown or ("mcast" in fields) == ("udp" in fields):
            raise ValueError(
                "socket: give mcast=GROUP:PORT[,localaddr=ADDR] or "
                "udp=HOST:PORT,localaddr=HOST:PORT"
            )
        self._deliver: Deliver | None = None
        self.sent = self.received = self.dropped = 0
        if "mcast" in fields:
            self._open_multicast(fields["mcast"], fields.get("localaddr", DEFAULT_LOCALADDR))
        else:
            if "localaddr" not in fields:
                raise ValueError("socket: udp= needs localaddr=HOST:PORT to receive on")
            self._open_unicast(fields["udp"], fields["localaddr"])

    def _open_multicast(self, group_text: str, localaddr: str) -> None:
        group, port = _host_port(group_text, "mcast")
        try:
            if not socket.inet_aton(group)[0] & 0xF0 == 0xE0:
                raise ValueError(f"socket: {group} is not a multicast group (224.0.0.0/4)")
            local = socket.inet_aton(localaddr)
        except OSError:
            raise ValueError(f"socket: {group_text!r} / {localaddr!r}: bad address") from None
        self.peer = (group, port)
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        receiver.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            receiver.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            receiver.bind((group, port))
            membership = socket.inet_aton(group) + local
            receiver.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
        except OSError as error:
            receiver.close()
            raise ValueError(f"socket: cannot join {group}:{port}: {error.strerror}") from None
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, local)
        sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, struct.pack("b", 0))
        sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        sender.bind((localaddr, 0))
        self._own = sender.getsockname()  # our frames come back from here: ignore them
        receiver.setblocking(False)
        self._receiver, self._sender = receiver, sender

    def _open_unicast(self, peer_text: str, local_text: str) -> None:
        self.peer = _host_port(peer_text, "udp")
        local = _host_port(local_text, "localaddr")
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind(local)
        except OSError as error:
            sock.close()
            raise ValueError(f"socket: cannot bind {local_text}: {error.strerror}") from None
        sock.setblocking(False)
        self._own = None
        self._receiver = self._sender = sock

    def start(self, deliver: Deliver) -> None:
        self._deliver = deliver

    def send(self, frame: bytes) -> None:
        try:
            self._sender.sendto(frame, self.peer)
            self.sent += 1
        except OSError:
            self.dropped += 1  # peer not there (ECONNREFUSED) or buffer full: lost on the wire

    def poll(self) -> None:
        for _ in range(MAX_FRAMES_PER_POLL):
            try:
                frame, source = self._receiver.recvfrom(MAX_FRAME + 1)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # an ICMP error from an earlier send, reported here
            if source == self._own:
                continue
            if not MIN_FRAME <= len(frame) <= MAX_FRAME:
                self.dropped += 1
                continue
            self.received += 1
            if self._deliver is not None:
                self._deliver(frame)

    def filenos(self) -> list[int]:
        return [self._receiver.fileno()]

    def next_timeout(self) -> float | None:
        return None

    def close(self) -> None:
        self._receiver.close()
        self._sender.close()
