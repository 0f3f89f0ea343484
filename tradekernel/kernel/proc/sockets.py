"""The socket system calls and poll/select, Linux i386 ABI: socketcall (102) with its 18
sub-calls and recvmmsg's and sendmmsg's (19, 20), the direct calls 359-373, recvmmsg (337) and
sendmmsg (345), poll (168), ppoll (309), select (82, its arguments in a block), _newselect
(142) and pselect6 (308).

`SocketCalls(manager, stack).entries()` returns {number: (name, handler)} for the table in
proc/syscalls.py to merge (one `table.update`). AF_INET SOCK_STREAM / SOCK_DGRAM (and ICMP
datagram "ping" sockets, as Linux's IPPROTO_ICMP SOCK_DGRAM); SOCK_NONBLOCK on socket/accept4,
FIONBIO through ioctl. socketpair makes AF_UNIX SOCK_STREAM pairs (net/unix.py), with or
without a network card. With no network interface (`stack` None) socket() fails with
EAFNOSUPPORT. Every user pointer goes through the mm copies (EFAULT), every length from the
program is bounded before anything is allocated.

poll/select look at any descriptor's readiness (fs.vfs.OpenFile.poll). A sleeping poll or
select watches every file in its set (OpenFile.watch: sockets, pipes and the tty call their
watchers whenever readiness may have changed) and looks again only then, or at its timeout: no
timer re-checks it, so it wakes at the virtual instant the data arrives. sigmask arguments of
ppoll/pselect6 are not applied.

sendmmsg sends up to vlen messages (vlen capped at 1024, as Linux's UIO_MAXIOV), each as
sendmsg would and msg_len set for each; the count sent, or the first message's error if none
went (an error after some is lost, as Linux loses it). A blocking call sleeps only while none
has gone; a stream socket whose buffer takes part of a message ends the call there.

recvmmsg takes up to vlen datagrams in one call, as Linux's: on a blocking socket it sleeps
for the first and, without MSG_WAITFORONE, for each of the rest too; the timeout is looked at
only after a datagram, as Linux does (man recvmmsg, BUGS). msg_len is set for each.

Trials: `TRIAL_CALLS` are the calls the trap fast path may run in the trap (proc/trap.py):
data calls and poll/select, under net.sockfile's `trial()`, where one that would sleep raises
WouldSleep untouched (`_wait` does so before it blocks). socketcall is one of them only for
the data sub-calls (`trial_socketcall`).

Imports: proc (the process manager and record), net (stack, socket files), fs, mm.
"""

from __future__ import annotations

import errno as E
import struct
from collections.abc import Callable

from tradekernel.kernel.fs.vfs import OpenFile, Poll
from tradekernel.kernel.mm.paging import UserMemoryFault, copy_from_user, copy_to_user
from tradekernel.kernel.net.api import POLLERR, POLLIN, SocketError
from tradekernel.kernel.net.sockfile import SocketFile, WouldSleep, in_trial
from tradekernel.kernel.net.stack import NetStack
from tradekernel.kernel.net.unix import UnixStream
from tradekernel.kernel.net.wire import ip_str
from tradekernel.kernel.proc.process import ProcessManager
from tradekernel.kernel.proc.task import Process

Handler = Callable[[Process, tuple[int, ...]], int | None]

AF_UNIX, AF_INET = 1, 2
STREAM_KINDS = ("tcp", "unix")  # byte streams: partial sends, no source address on receive
SOCKADDR_UN_UNNAMED = 2  # an unnamed AF_UNIX address is just its family
SOCK_STREAM, SOCK_DGRAM, SOCK_RAW = 1, 2, 3
SOCK_TYPE_MASK, SOCK_NONBLOCK, SOCK_CLOEXEC = 0xF, 0o4000, 0o2000000
IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP = 1, 6, 17
MSG_PEEK, MSG_DONTWAIT, MSG_NOSIGNAL, MSG_WAITFORONE = 0x2, 0x40, 0x4000, 0x10000
SOCKADDR_IN = 16
MSGHDR_FLAGS, MSGHDR_LEN, MMSGHDR = 24, 28, 32  # i386 mmsghdr: msg_flags, msg_len, size
MAX_IO = 1 << 20
MAX_IOV = 1024
MAX_POLL_FDS = 1024
FD_SETSIZE = 1024
NS = 1_000_000_000
# socketcall(2): sub-call -> (direct number, argument count)
SOCKETCALLS = {
    1: (359, 3), 2: (361, 3), 3: (362, 3), 4: (363, 2), 5: (364, 3), 6: (367, 3), 7: (368, 3),
    8: (360, 4), 9: (369, 4), 10: (371, 4), 11: (369, 6), 12: (371, 6), 13: (373, 2),
    14: (366, 5), 15: (365, 5), 16: (370, 3), 17: (372, 3), 18: (364, 4), 19: (337, 5),
    20: (345, 4),
}  # fmt: skip
# calls the trap may try (see the module docstring); socketcall only for these sub-calls
TRIAL_CALLS = frozenset({82, 102, 142, 168, 308, 309, 337, 345, 369, 370, 371, 372})
SOCKETCALL = 102
TRIAL_SOCKETCALLS = frozenset({9, 10, 11, 12, 16, 17, 19, 20})


_U32 = struct.Struct("<I")
_LEN = struct.Struct("<iI")  # an mmsghdr's msg_flags and msg_len
_MMSG_IOV = struct.Struct("<8xII16x")  # an mmsghdr's msg_iov and msg_iovlen
_IOVEC = struct.Struct("<II")  # iov_base, iov_len
MAX_IOV_BLOCK = 1 << 16  # bytes of iovec arrays recvmmsg reads in one copy (see _IovecBlock)


class _IovecBlock:
    """The iovec arrays of a recvmmsg vector, read with one user copy when they lie together
    within MAX_IOV_BLOCK bytes (a program's array of iovecs, as market-data readers keep), else
    one message at a time, as they are needed; either way a bad pointer fails the message whose
    turn it is, as Linux's per-message reads do."""

    def __init__(self, process: Process, headers: bytearray) -> None:
        self.process, self.headers = process, headers
        self.spans: list[tuple[int, int]] = []  # (msg_iov, msg_iovlen) of each message
        self.block: bytes | None = None
        self.base = 0

    def _read_block(self) -> None:
        """The arrays of all the messages in one copy, if they are close together and every
        count is sane; on any fault, None (each message reads its own)."""
        self.spans = spans = list(_MMSG_IOV.iter_unpack(self.headers))
        bases, counts = zip(*spans, strict=True)
        widest = max(counts)
        if widest > MAX_IOV:
            return
        first = min(bases)
        end = max(bases) + 8 if widest == 1 else max(b + 8 * n for b, n in spans)
        if end - first > MAX_IOV_BLOCK:
            return
        try:
            self.block, self.base = copy_from_user(self.process.aspace, first, end - first), first
        except (UserMemoryFault, OSError):
            self.block = None

    def pieces(self, index: int) -> list[tuple[int, int]]:
        """Message `index`'s buffers as (address, length) pairs."""
        if not self.spans:
            self._read_block()
        iov, iov_count = self.spans[index]
        if iov_count > MAX_IOV:
            raise OSError(E.EMSGSIZE, "too many iovecs")
        if self.block is not None:
            offset = iov - self.base
            raw = self.block[offset : offset + 8 * iov_count]
        else:
            raw = copy_from_user(self.process.aspace, iov, 8 * iov_count)
        if iov_count == 1:
            return [_IOVEC.unpack(raw)]
        return list(_IOVEC.iter_unpack(raw))


def _nothing_waiting(file: SocketFile) -> bool:
    """A UDP socket with no datagram and no error to give: a receive would find EAGAIN."""
    sock = file.sock
    return (sock.kind == "udp" and not sock.closed
            and not sock.readiness() & (POLLIN | POLLERR))


def _signed(value: int) -> int:
    return value - (1 << 32) if value & 0x8000_0000 else value


def _fail(error: SocketError) -> int:
    return -error.errno


class SocketCalls:
    def __init__(self, manager: ProcessManager, stack: NetStack | None) -> None:
        self.manager = manager
        self.stack = stack
        self.clock = manager.kernel.clock
        self.call_at = manager.kernel.call_at
        self._calls = self.entries()  # socketcall's dispatch, built once (not per call)

    def entries(self) -> dict[int, tuple[str, Handler]]:
        return {
            102: ("socketcall", self.sys_socketcall),
            82: ("select", self.sys_old_select),
            142: ("_newselect", self.sys_select),
            168: ("poll", self.sys_poll),
            308: ("pselect6", self.sys_pselect6),
            309: ("ppoll", self.sys_ppoll),
            359: ("socket", self.sys_socket),
            360: ("socketpair", self.sys_socketpair),
            361: ("bind", self.sys_bind),
            362: ("connect", self.sys_connect),
            363: ("listen", self.sys_listen),
            364: ("accept4", self.sys_accept4),
            365: ("getsockopt", self.sys_getsockopt),
            366: ("setsockopt", self.sys_setsockopt),
            367: ("getsockname", lambda p, a: self._name(p, a, peer=False)),
            368: ("getpeername", lambda p, a: self._name(p, a, peer=True)),
            369: ("sendto", self.sys_sendto),
            370: ("sendmsg", self.sys_sendmsg),
            371: ("recvfrom", self.sys_recvfrom),
            372: ("recvmsg", self.sys_recvmsg),
            373: ("shutdown", self.sys_shutdown),
            337: ("recvmmsg", self.sys_recvmmsg),
            345: ("sendmmsg", self.sys_sendmmsg),
        }  # fmt: skip

    @staticmethod
    def trial_socketcall(args: tuple[int, ...]) -> bool:
        """Whether socketcall with these arguments is one the trap may try."""
        return args[0] in TRIAL_SOCKETCALLS

    # -- socketcall -------------------------------------------------------------------------
    def sys_socketcall(self, process: Process, args: tuple[int, ...]) -> int | None:
        call = SOCKETCALLS.get(args[0])
        if call is None:
            return -E.EINVAL
        number, count = call
        values = struct.unpack(f"<{count}I", copy_from_user(process.aspace, args[1], 4 * count))
        if args[0] in (9, 10):  # send/recv: sendto/recvfrom without an address
            values = (*values, 0, 0)
        if args[0] == 5:  # accept: accept4 with no flags
            values = (*values, 0)
        return self._calls[number][1](process, values)

    # -- helpers ----------------------------------------------------------------------------
    @staticmethod
    def _socket(process: Process, fd: int) -> SocketFile:
        file = process.files.get(_signed(fd))
        if not isinstance(file, SocketFile):
            raise OSError(E.ENOTSOCK, f"fd {fd} is not a socket")
        return file

    @staticmethod
    def _address(process: Process, pointer: int, length: int) -> tuple[str, int]:
        if length < 8:
            raise OSError(E.EINVAL, "address too short")
        raw = copy_from_user(process.aspace, pointer, 8)
        family, port = struct.unpack("<HH", raw[:4])
        if family != AF_INET:
            raise OSError(E.EAFNOSUPPORT, "only AF_INET")
        return ip_str(int.from_bytes(raw[4:8], "big")), int.from_bytes(raw[2:4], "big")

    @staticmethod
    def _put_address(process: Process, pointer: int, length_pointer: int,
                     address: tuple[str, int]) -> None:
        if not pointer:
            return
        room = struct.unpack("<i", copy_from_user(process.aspace, length_pointer, 4))[0]
        if room < 0:
            raise OSError(E.EINVAL, "negative address length")
        host = bytes(int(part) for part in (address[0] or "0.0.0.0").split("."))
        packed = struct.pack("<H", AF_INET) + address[1].to_bytes(2, "big") + host + bytes(8)
        copy_to_user(process.aspace, pointer, packed[:room])
        copy_to_user(process.aspace, length_pointer, struct.pack("<i", SOCKADDR_IN))

    def _install(self, process: Process, file: SocketFile) -> int:
        fd = process.files.free()[0]
        process.files.install(fd, file)
        return fd

    # -- the calls --------------------------------------------------------------------------
    def sys_socket(self, process: Process, args: tuple[int, ...]) -> int:
        family, kind, protocol = args[0], args[1] & SOCK_TYPE_MASK, args[2]
        if family != AF_INET:
            return -E.EAFNOSUPPORT
        if self.stack is None:
            return -E.EAFNOSUPPORT  # no network interface
        if kind == SOCK_STREAM and protocol in (0, IPPROTO_TCP):
            name = "tcp"
        elif kind == SOCK_DGRAM and protocol in (0, IPPROTO_UDP):
            name = "udp"
        elif kind == SOCK_DGRAM and protocol == IPPROTO_ICMP:
            name = "icmp"
        else:
            return -E.EPROTONOSUPPORT
        process.files.free()  # EMFILE before a socket exists
        try:
            sock = self.stack.open(name)
        except SocketError as error:
            return _fail(error)
        return self._install(process, SocketFile(sock, self.manager,
                                                 bool(args[1] & SOCK_NONBLOCK)))

    def sys_socketpair(self, process: Process, args: tuple[int, ...]) -> int:
        """AF_UNIX SOCK_STREAM only (Linux refuses AF_INET pairs with EOPNOTSUPP too); the two
        descriptors are stored before they are installed, so a bad `sv` leaves nothing open."""
        family, kind, protocol = args[0], args[1] & SOCK_TYPE_MASK, args[2]
        if family != AF_UNIX:
            return -E.EAFNOSUPPORT if family != AF_INET else -E.EOPNOTSUPP
        if kind != SOCK_STREAM:
            return -E.EOPNOTSUPP  # datagram and seqpacket pairs are not provided
        if protocol != 0:
            return -E.EPROTONOSUPPORT
        if args[1] & ~(SOCK_TYPE_MASK | SOCK_NONBLOCK | SOCK_CLOEXEC):
            return -E.EINVAL
        fds = process.files.free(2)
        copy_to_user(process.aspace, args[3], struct.pack("<ii", *fds))
        nonblocking = bool(args[1] & SOCK_NONBLOCK)
        for fd, end in zip(fds, UnixStream.pair(), strict=True):
            process.files.install(fd, SocketFile(end, self.manager, nonblocking))
        return 0

    def sys_bind(self, process: Process, args: tuple[int, ...]) -> int:
        file = self._socket(process, args[0])
        try:
            file.sock.bind(self._address(process, args[1], args[2]))  # type: ignore[attr-defined]
        except SocketError as error:
            return _fail(error)
        return 0

    def sys_connect(self, process: Process, args: tuple[int, ...]) -> int | None:
        file = self._socket(process, args[0])
        address = self._address(process, args[1], args[2])
        sock = file.sock
        if file.kind != "tcp":
            try:
                sock.connect(address)  # type: ignore[attr-defined]
            except SocketError as error:
                return _fail(error)
            return 0

        def established() -> int:
            ready = sock.readiness()
            if sock.error:
                return -sock.take_error()
            if ready & 0x4:  # POLLOUT: the handshake finished
                return 0
            raise SocketError(E.EINPROGRESS)

        try:
            sock.connect(address)  # type: ignore[attr-defined]
        except SocketError as error:
            if error.errno != E.EINPROGRESS:
                return _fail(error)
        return file.attempt(process, established, cancel=lambda: -E.EINTR)

    def sys_listen(self, process: Process, args: tuple[int, ...]) -> int:
        file = self._socket(process, args[0])
        try:
            file.sock.listen(max(1, min(_signed(args[1]), 128)))  # type: ignore[attr-defined]
        except SocketError as error:
            return _fail(error)
        return 0

    def sys_accept4(self, process: Process, args: tuple[int, ...]) -> int | None:
        file = self._socket(process, args[0])
        flags = args[3] if len(args) > 3 else 0
        if flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC):
            return -E.EINVAL
        process.files.free()

        def operation() -> int:
            child = file.sock.accept()  # type: ignore[attr-defined]
            fd = self._install(process, SocketFile(child, self.manager,
                                                   bool(flags & SOCK_NONBLOCK)))
            self._put_address(process, args[1], args[2], child.getpeername())
            return fd

        return file.attempt(process, operation)

    def sys_shutdown(self, process: Process, args: tuple[int, ...]) -> int:
        file = self._socket(process, args[0])
        shutdown = getattr(file.sock, "shutdown", None)
        if shutdown is None:
            return -E.ENOTCONN
        try:
            shutdown(args[1])
        except SocketError as error:
            return _fail(error)
        return 0

    def sys_getsockopt(self, process: Process, args: tuple[int, ...]) -> int:
        file = self._socket(process, args[0])
        try:
            value = file.sock.getsockopt(args[1], args[2])
        except SocketError as error:
            return _fail(error)
        room = struct.unpack("<i", copy_from_user(process.aspace, args[4], 4))[0]
        if room < 0:
            return -E.EINVAL
        copy_to_user(process.aspace, args[3], struct.pack("<i", value)[: min(room, 4)])
        copy_to_user(process.aspace, args[4], struct.pack("<i", min(room, 4)))
        return 0

    def sys_setsockopt(self, process: Process, args: tuple[int, ...]) -> int:
        file = self._socket(process, args[0])
        length = args[4]
        if length > 256:
            return -E.EINVAL
        raw = copy_from_user(process.aspace, args[3], length)
        value: int | bytes = raw if length > 4 else int.from_bytes(raw.ljust(4, b"\0"), "little")
        try:
            file.sock.setsockopt(args[1], args[2], value)
        except SocketError as error:
            return _fail(error)
        return 0

    def _name(self, process: Process, args: tuple[int, ...], peer: bool) -> int:
        file = self._socket(process, args[0])
        if file.kind == "unix":  # unnamed: the family alone
            if args[1]:
                room = struct.unpack("<i", copy_from_user(process.aspace, args[2], 4))[0]
                if room < 0:
                    return -E.EINVAL
                family = struct.pack("<H", AF_UNIX)
                copy_to_user(process.aspace, args[1], family[: min(room, SOCKADDR_UN_UNNAMED)])
                copy_to_user(process.aspace, args[2], struct.pack("<i", SOCKADDR_UN_UNNAMED))
            return 0
        try:
            address = file.sock.getpeername() if peer else file.sock.getsockname()  # type: ignore[attr-defined]
        except SocketError as error:
            return _fail(error)
        self._put_address(process, args[1], args[2], address)
        return 0

    # -- data -------------------------------------------------------------------------------
    def _send(self, process: Process, file: SocketFile, data: bytes, flags: int,
              address: tuple[str, int] | None) -> int | None:
        sock = file.sock
        if address is not None and file.kind not in STREAM_KINDS:
            send = lambda chunk: sock.sendto(chunk, address)  # type: ignore[attr-defined]  # noqa: E731
        else:
            send = getattr(sock, "send", None) or sock.sendto  # type: ignore[attr-defined]
        if file.kind not in STREAM_KINDS:  # a datagram goes whole or not at all
            return file.attempt(process, lambda: send(data)) if not flags & MSG_DONTWAIT \
                else self._now(lambda: send(data))
        saved = file.nonblocking
        file.nonblocking = saved or bool(flags & MSG_DONTWAIT)
        try:
            result = file.send_all(process, send, data)
        finally:
            file.nonblocking = saved
        if result == -E.EPIPE and not flags & MSG_NOSIGNAL:
            self.manager.broken_pipe(process)  # SIGPIPE, as Linux sends for a stream socket
        return result

    @staticmethod
    def _now(operation: Callable[[], int]) -> int:
        try:
            return operation()
        except SocketError as error:
            return _fail(error)

    def sys_sendto(self, process: Process, args: tuple[int, ...]) -> int | None:
        file = self._socket(process, args[0])
        data = copy_from_user(process.aspace, args[1], min(args[2], MAX_IO))
        address = self._address(process, args[4], args[5]) if len(args) > 4 and args[4] else None
        return self._send(process, file, data, args[3], address)

    @staticmethod
    def _take(process: Process, file: SocketFile, pieces: list[tuple[int, int]]
              ) -> tuple[int, tuple[str, int] | None]:
        """One receive into the user buffers `pieces` ((address, length)): the byte count and,
        for a datagram socket, the sender (SocketError EAGAIN if nothing is there)."""
        total = min(pieces[0][1] if len(pieces) == 1 else sum(n for _, n in pieces), MAX_IO)
        sock = file.sock
        if sock.kind in STREAM_KINDS:
            data, source = sock.recv(total), None  # type: ignore[attr-defined]
        else:
            data, source = sock.recvfrom(total)  # type: ignore[attr-defined]
        if len(pieces) == 1:  # one buffer, as most calls give: one copy
            if data:
                copy_to_user(process.aspace, pieces[0][0], data)
            return len(data), source
        offset = 0
        for pointer, length in pieces:
            if offset >= len(data):
                break
            copy_to_user(process.aspace, pointer, data[offset:offset + length])
            offset += length
        return len(data), source

    def _receive(self, process: Process, file: SocketFile, pieces: list[tuple[int, int]],
                 flags: int, on_address: Callable[[tuple[str, int]], None] | None
                 ) -> int | None:
        """Receive into the user buffers `pieces`; the sender's address goes to `on_address`
        for datagram sockets."""

        def operation() -> int:
            count, source = self._take(process, file, pieces)
            if source is not None and on_address is not None:
                on_address(source)
            return count

        if flags & MSG_DONTWAIT:
            return self._now(operation)
        return file.attempt(process, operation)

    def sys_recvfrom(self, process: Process, args: tuple[int, ...]) -> int | None:
        file = self._socket(process, args[0])
        address, length_pointer = (args[4], args[5]) if len(args) > 4 else (0, 0)
        on_address = (lambda source: self._put_address(process, address, length_pointer, source)
                      ) if address else None
        return self._receive(process, file, [(args[1], args[2])], args[3], on_address)

    def _message(self, process: Process, pointer: int) -> tuple[int, int, list[tuple[int, int]]]:
        """struct msghdr: (name pointer, name length, iovec pieces)."""
        name, name_length, iov, iov_count = struct.unpack(
            "<IIII", copy_from_user(process.aspace, pointer, 16))
        if iov_count > MAX_IOV:
            raise OSError(E.EMSGSIZE, "too many iovecs")
        vector = copy_from_user(process.aspace, iov, 8 * iov_count)
        return name, name_length, [(base, length) for base, length in
                                   struct.iter_unpack("<II", vector)]

    @staticmethod
    def _gather(process: Process, pieces: list[tuple[int, int]]) -> bytes:
        """The bytes of the user buffers `pieces`, MAX_IO in all (not per iovec: 1024 of them)."""
        chunks, room = [], MAX_IO
        for base, length in pieces:
            if take := min(length, room):
                chunks.append(copy_from_user(process.aspace, base, take))
                room -= take
        return b"".join(chunks)

    def sys_sendmsg(self, process: Process, args: tuple[int, ...]) -> int | None:
        file = self._socket(process, args[0])
        name, name_length, pieces = self._message(process, args[1])
        data = self._gather(process, pieces)
        address = self._address(process, name, name_length) if name else None
        return self._send(process, file, data, args[2], address)

    def sys_sendmmsg(self, process: Process, args: tuple[int, ...]) -> int | None:
        """sendmmsg(fd, msgvec, vlen, flags): see the module docstring."""
        file = self._socket(process, args[0])
        vector, count, flags = args[1], min(args[2], MAX_IOV), args[3]
        if not count:
            return 0
        headers = bytearray(copy_from_user(process.aspace, vector, MMSGHDR * count))
        sock, stream, done = file.sock, file.kind in STREAM_KINDS, 0
        send = getattr(sock, "send", None) or sock.sendto  # type: ignore[attr-defined]

        def operation() -> int:
            nonlocal done
            try:
                while done < count:
                    entry = MMSGHDR * done
                    name, name_length, iov, iov_count = struct.unpack_from("<IIII", headers, entry)
                    if iov_count > MAX_IOV:
                        raise OSError(E.EMSGSIZE, "too many iovecs")
                    data = self._gather(process, list(_IOVEC.iter_unpack(
                        copy_from_user(process.aspace, iov, 8 * iov_count))))
                    try:
                        if name and not stream:
                            moved = sock.sendto(  # type: ignore[attr-defined]
                                data, self._address(process, name, name_length))
                        else:
                            moved = send(data)
                    except SocketError:
                        if done:
                            return done  # what went is the answer; the error is lost, as Linux's
                        raise
                    _U32.pack_into(headers, entry + MSGHDR_LEN, moved)
                    done += 1
                    if moved < len(data):
                        break  # a stream's buffer took only part: the rest is the caller's
                return done
            finally:
                if done:
                    copy_to_user(process.aspace, vector, bytes(headers[: MMSGHDR * done]))

        if flags & MSG_DONTWAIT or file.nonblocking:
            result: int | None = self._now(operation)
        else:
            result = file.attempt(process, operation, cancel=lambda: done or -E.EINTR)
        if result == -E.EPIPE and stream and not flags & MSG_NOSIGNAL:
            self.manager.broken_pipe(process)  # SIGPIPE, as for send
        return result

    def sys_recvmsg(self, process: Process, args: tuple[int, ...]) -> int | None:
        file = self._socket(process, args[0])
        name, _, pieces = self._message(process, args[1])

        def on_address(source: tuple[str, int]) -> None:
            if name:  # msg_namelen sits at offset 4 of the msghdr
                self._put_address(process, name, args[1] + 4, source)

        return self._receive(process, file, pieces, args[2], on_address)

    def sys_recvmmsg(self, process: Process, args: tuple[int, ...]) -> int | None:
        """recvmmsg(fd, msgvec, vlen, flags, timeout): see the module docstring."""
        file = self._socket(process, args[0])
        vector, count, flags = args[1], min(args[2], MAX_IOV), args[3]
        if flags & ~(MSG_DONTWAIT | MSG_WAITFORONE):
            return -E.EINVAL
        timeout = self._timespec(process, args[4]) if len(args) > 4 else None
        deadline = None if timeout is None else self.clock.now_ns() + timeout
        if not count:
            return 0
        at_once = bool(flags & MSG_DONTWAIT) or file.nonblocking
        if in_trial() and not (at_once or flags & MSG_WAITFORONE):
            raise WouldSleep  # it could take some and then sleep: the full path does it
        if in_trial() and not at_once and _nothing_waiting(file):
            raise WouldSleep  # it sleeps at once: the full path does it (no copies here)
        received = 0
        # the vector is read once and written back once (msg_len and msg_flags of what came)
        headers = bytearray(copy_from_user(process.aspace, vector, MMSGHDR * count))

        def store() -> None:
            copy_to_user(process.aspace, vector, bytes(headers[: MMSGHDR * received]))

        def operation() -> int:
            nonlocal received
            iovecs = _IovecBlock(process, headers)  # read again at every retry
            if not received and _nothing_waiting(file):
                raise SocketError(E.EAGAIN)  # no need to read the iovecs
            try:
                while received < count:
                    entry = MMSGHDR * received
                    name = _U32.unpack_from(headers, entry)[0]
                    pieces = iovecs.pieces(received)
                    try:
                        size, source = self._take(process, file, pieces)
                    except SocketError:
                        if received and (at_once or flags & MSG_WAITFORONE):
                            return received
                        raise  # sleeps for the first (or, without WAITFORONE, the next) one
                    if name and source is not None:
                        self._put_address(process, name, vector + entry + 4, source)
                        headers[entry + 4 : entry + 8] = copy_from_user(
                            process.aspace, vector + entry + 4, 4)  # what it stored there
                    _LEN.pack_into(headers, entry + MSGHDR_FLAGS, 0, size)
                    received += 1
                    if deadline is not None and self.clock.now_ns() >= deadline:
                        break
                return received
            finally:
                if received:
                    store()

        if at_once:
            return self._now(operation)
        return file.attempt(process, operation, cancel=lambda: received or -E.EINTR)

    # -- poll and select --------------------------------------------------------------------
    def _wait(self, process: Process, files: list[OpenFile], check: Callable[[], int | None],
              timeout_ns: int | None, on_timeout: Callable[[], int]) -> int | None:
        """Sleep until `check()` gives a result (it returns None while nothing is ready), the
        timeout runs out (`on_timeout()`), or a signal (EINTR). `check` runs again only when
        one of `files` reports a change (their watch callbacks)."""
        result = check()
        if result is not None or timeout_ns == 0:
            return result if result is not None else on_timeout()
        if in_trial():
            raise WouldSleep
        watched = list({id(f): f for f in files}.values())
        token = 0

        def stop() -> None:
            for file in watched:
                file.unwatch(look)

        def finish(value: int) -> None:
            stop()
            if self.manager.asleep(process, token):
                self.manager.wake(process, token, value)

        def look() -> None:
            if not self.manager.asleep(process, token):
                stop()  # killed or woken some other way: nothing left to watch for
                return
            found = check()
            if found is not None:
                finish(found)

        def cancel() -> int:
            stop()
            return -E.EINTR

        token = self.manager.block(process, cancel=cancel)
        for file in watched:
            file.watch(look)
        if timeout_ns is not None:
            self.call_at(self.clock.now_ns() + timeout_ns,
                         lambda: self.manager.asleep(process, token) and finish(on_timeout()))
        return None

    def _poll(self, process: Process, pointer: int, count: int, timeout_ns: int | None
              ) -> int | None:
        if count > MAX_POLL_FDS:
            return -E.EINVAL
        raw = copy_from_user(process.aspace, pointer, 8 * count) if count else b""
        entries = [struct.unpack_from("<ihh", raw, 8 * i) for i in range(count)]
        files = [self._open_or_none(process, fd) for fd, _, _ in entries]

        def check() -> int | None:
            out, ready = bytearray(raw), 0
            for i, ((fd, events, _), file) in enumerate(zip(entries, files, strict=True)):
                revents = 0
                if fd >= 0:
                    if file is None:
                        revents = 0x20  # POLLNVAL
                    else:
                        revents = int(file.poll()) & (events | Poll.ERR | Poll.HUP)
                struct.pack_into("<h", out, 8 * i + 6, revents)
                ready += revents != 0
            if not ready:
                return None
            copy_to_user(process.aspace, pointer, bytes(out))
            return ready

        def timed_out() -> int:
            if count:
                out = bytearray(raw)
                for i in range(count):
                    struct.pack_into("<h", out, 8 * i + 6, 0)
                copy_to_user(process.aspace, pointer, bytes(out))
            return 0

        return self._wait(process, [f for f in files if f is not None], check, timeout_ns,
                          timed_out)

    @staticmethod
    def _open_or_none(process: Process, fd: int) -> OpenFile | None:
        """The file behind `fd`, or None (poll reports POLLNVAL for it; a negative fd is
        skipped)."""
        if fd < 0:
            return None
        try:
            return process.files.get(fd)
        except OSError:
            return None

    def sys_poll(self, process: Process, args: tuple[int, ...]) -> int | None:
        timeout = _signed(args[2])
        return self._poll(process, args[0], args[1], None if timeout < 0 else timeout * 1_000_000)

    def _timespec(self, process: Process, pointer: int) -> int | None:
        if not pointer:
            return None
        seconds, nanoseconds = struct.unpack("<iI", copy_from_user(process.aspace, pointer, 8))
        if seconds < 0 or nanoseconds >= NS:
            raise OSError(E.EINVAL, "bad timespec")
        return seconds * NS + nanoseconds

    def sys_ppoll(self, process: Process, args: tuple[int, ...]) -> int | None:
        return self._poll(process, args[0], args[1], self._timespec(process, args[2]))

    def _select(self, process: Process, count: int, pointers: tuple[int, int, int],
                timeout_ns: int | None) -> int | None:
        if count > FD_SETSIZE or _signed(count) < 0:
            return -E.EINVAL
        size = (count + 31) // 32 * 4
        sets = [int.from_bytes(copy_from_user(process.aspace, p, size), "little") if p and size
                else 0 for p in pointers]
        wanted: dict[int, OpenFile] = {}
        for fd in range(count):
            if any(s >> fd & 1 for s in sets):
                wanted[fd] = process.files.get(fd)  # EBADF, as Linux

        def results() -> tuple[list[int], int]:
            out = [0, 0, 0]
            for fd, file in wanted.items():
                ready = file.poll()
                if sets[0] >> fd & 1 and ready & (Poll.IN | Poll.HUP | Poll.ERR):
                    out[0] |= 1 << fd
                if sets[1] >> fd & 1 and ready & (Poll.OUT | Poll.ERR):
                    out[1] |= 1 << fd
            return out, sum(bin(s).count("1") for s in out)

        def store(out: list[int]) -> None:
            for pointer, bits in zip(pointers, out, strict=True):
                if pointer and size:
                    copy_to_user(process.aspace, pointer, bits.to_bytes(size, "little"))

        def check() -> int | None:
            out, ready = results()
            if not ready:
                return None
            store(out)
            return ready

        def timed_out() -> int:
            store([0, 0, 0])
            return 0

        return self._wait(process, list(wanted.values()), check, timeout_ns, timed_out)

    def sys_select(self, process: Process, args: tuple[int, ...]) -> int | None:
        timeout = None
        if args[4]:
            seconds, micros = struct.unpack("<ii", copy_from_user(process.aspace, args[4], 8))
            if seconds < 0 or not 0 <= micros < 1_000_000:
                return -E.EINVAL
            timeout = seconds * NS + micros * 1000
        return self._select(process, args[0], (args[1], args[2], args[3]), timeout)

    def sys_old_select(self, process: Process, args: tuple[int, ...]) -> int | None:
        return self.sys_select(process, struct.unpack(
            "<5I", copy_from_user(process.aspace, args[0], 20)))

    def sys_pselect6(self, process: Process, args: tuple[int, ...]) -> int | None:
        return self._select(process, args[0], (args[1], args[2], args[3]),
                            self._timespec(process, args[4]))



