"""Wire helpers shared by the protocol modules: the Internet checksum (RFC 1071), address
conversions, and sequence-number arithmetic mod 2**32 (RFC 9293 3.4).

Pure functions over bytes and ints; standard library only.
"""

from __future__ import annotations

from functools import lru_cache


class Malformed(Exception):
    """A received packet is not what its headers claim; carries the counter name to bump."""

    def __init__(self, counter: str) -> None:
        super().__init__(counter)
        self.counter = counter


def checksum(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """The 16-bit one's complement of the one's complement sum (RFC 1071).

    The sum of 16-bit words modulo 0xFFFF is the number's value modulo 0xFFFF (2**16 = 1 mod
    0xFFFF), so one big-integer conversion replaces a loop; a nonzero multiple of 0xFFFF is
    the one's complement "negative zero", 0xFFFF."""
    if len(data) & 1:
        data = bytes(data) + b"\0"
    total = int.from_bytes(data, "big") + initial
    folded = total % 0xFFFF
    if folded == 0 and total:
        folded = 0xFFFF
    return ~folded & 0xFFFF


def pseudo_header_sum(src: int, dst: int, proto: int, length: int) -> int:
    """The unfolded sum of the IPv4 pseudo header that UDP and TCP checksums cover."""
    return (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF) + proto + length


def ip_to_int(text: str) -> int:
    parts = text.split(".")
    if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
        raise ValueError(f"not an IPv4 address: {text!r}")
    return int.from_bytes(bytes(int(p) for p in parts), "big")


@lru_cache(maxsize=1024)  # every received datagram names its sender: a few peers, many times
def ip_str(addr: int) -> str:
    return ".".join(str(b) for b in addr.to_bytes(4, "big"))


def mac_str(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def mac_from_str(text: str) -> bytes:
    parts = text.split(":")
    if len(parts) != 6:
        raise ValueError(f"not a MAC address: {text!r}")
    return bytes(int(p, 16) for p in parts)


def prefix_mask(prefix_len: int) -> int:
    return (0xFFFFFFFF << (32 - prefix_len)) & 0xFFFFFFFF if prefix_len else 0


MOD = 1 << 32


def seq_add(a: int, n: int) -> int:
    return (a + n) % MOD


def seq_diff(a: int, b: int) -> int:
    """a - b as a signed distance in sequence space."""
    d = (a - b) % MOD
    return d - MOD if d >= 1 << 31 else d


def seq_lt(a: int, b: int) -> bool:
    return seq_diff(a, b) < 0


def seq_le(a: int, b: int) -> bool:
    return seq_diff(a, b) <= 0
