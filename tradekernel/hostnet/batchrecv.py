"""Many datagrams from one UDP socket in one system call (Linux recvmmsg(2) through ctypes).

Contract: `DatagramBatch.receive(sock)` reads up to `count` datagrams waiting on a non-blocking
IPv4 UDP socket, without blocking, into fixed slots of one preallocated buffer: datagram i's
payload lies at `slot_offset(i) + headroom`, its first `capacity` bytes (a longer one is cut
there, which the caller sees as a size of `capacity`: sizes up to capacity - 1 are whole),
with `headroom` bytes free in front for the caller's headers. `size(i)` is its length and
`peer(i)` the sender's port and address as the 6 bytes of a sockaddr_in (network order),
which is what a header needs. Python's socket module has no recvmmsg; where the C library
lacks it (not Linux), the same slots are filled by a loop of recvfrom_into, so callers see one
interface. Nothing here allocates per datagram. Errors the socket reports for earlier
datagrams (ICMP port unreachable) are consumed and reading goes on; no exception escapes for
them. Uses only the standard library (ctypes, socket, struct).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import socket
import struct

MSG_DONTWAIT = 0x40
_SOCKADDR_IN = 16
_MAX_ERRORS = 8  # socket errors consumed in one receive() before it gives up until next time


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("length", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_void_p),
        ("namelen", ctypes.c_uint32),
        ("iov", ctypes.POINTER(_Iovec)),
        ("iovlen", ctypes.c_size_t),
        ("control", ctypes.c_void_p),
        ("controllen", ctypes.c_size_t),
        ("flags", ctypes.c_int),
    ]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("header", _Msghdr), ("length", ctypes.c_uint)]


def _recvmmsg():  # noqa: ANN202 - the C function, or None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        function = libc.recvmmsg
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.POINTER(_Mmsghdr), ctypes.c_uint, ctypes.c_int,
                         ctypes.c_void_p]  # fmt: skip
    function.restype = ctypes.c_int
    return function


_RECVMMSG = _recvmmsg()


class DatagramBatch:
    def __init__(self, count: int, capacity: int, headroom: int,
                 native: bool | None = None) -> None:
        """`native`: use recvmmsg (None: wherever the C library has it)."""
        self.count, self.capacity, self.headroom = count, capacity, headroom
        self.slot = headroom + capacity
        self.buffer = bytearray(count * self.slot)
        self._names = bytearray(count * _SOCKADDR_IN)
        self._sizes = [0] * count
        self._messages = (_Mmsghdr * count)()
        self._iovecs = (_Iovec * count)()
        base = ctypes.addressof(ctypes.c_char.from_buffer(self.buffer))
        names = ctypes.addressof(ctypes.c_char.from_buffer(self._names))
        for i in range(count):
            self._iovecs[i].base = base + i * self.slot + headroom
            self._iovecs[i].length = capacity
            header = self._messages[i].header
            header.name = names + i * _SOCKADDR_IN
            header.iov = ctypes.pointer(self._iovecs[i])
            header.iovlen = 1
            header.namelen = _SOCKADDR_IN
        self._view = memoryview(self.buffer)
        self.native = _RECVMMSG is not None if native is None else native and bool(_RECVMMSG)
        # the messages as 32-bit words: each one's received length and name length in place
        self._words = memoryview(self._messages).cast("B").cast("I")  # type: ignore[arg-type]
        stride = ctypes.sizeof(_Mmsghdr) // 4
        self._length_at = [i * stride + _Mmsghdr.length.offset // 4 for i in range(count)]
        self._namelen_at = [i * stride + _Msghdr.namelen.offset // 4 for i in range(count)]
        self._names_now = b""
        self._last = 0

    def slot_offset(self, index: int) -> int:
        return index * self.slot

    def size(self, index: int) -> int:
        return self._words[self._length_at[index]] if self.native else self._sizes[index]

    def peer(self, index: int) -> bytes:
        """The sender's port and IPv4 address, 6 bytes in network order."""
        start = index * _SOCKADDR_IN
        return self._names_now[start + 2 : start + 8]

    def receive(self, sock: socket.socket) -> int:
        """How many datagrams were read into the slots (0: none waiting)."""
        got = self._receive_native(sock) if self.native else self._receive_loop(sock)
        self._names_now = bytes(self._names[: got * _SOCKADDR_IN])
        return got

    def _receive_native(self, sock: socket.socket) -> int:
        assert _RECVMMSG is not None
        messages, fd, words = self._messages, sock.fileno(), self._words
        for _ in range(_MAX_ERRORS):
            for i in range(self._last):  # the kernel wrote the name lengths of those
                words[self._namelen_at[i]] = _SOCKADDR_IN
            got = _RECVMMSG(fd, messages, self.count, MSG_DONTWAIT, None)
            self._last = max(got, 0)
            if got >= 0:
                return got
            error = ctypes.get_errno()
            if error in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EBADF):
                return 0
            # EINTR, or an error reported for an earlier datagram (its ICMP), which the
            # call consumed: read on
        return 0

    def _receive_loop(self, sock: socket.socket) -> int:
        got = errors = 0
        while got < self.count and errors < _MAX_ERRORS:
            start = got * self.slot + self.headroom
            try:
                size, (address, port) = sock.recvfrom_into(
                    self._view[start : start + self.capacity]
                )
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                errors += 1
                continue
            self._sizes[got] = size
            name = got * _SOCKADDR_IN
            self._names[name + 2 : name + 8] = struct.pack("!H", port) + socket.inet_aton(address)
            got += 1
        return got
