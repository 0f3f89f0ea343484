"""The stack's UDP fast path (NetStack._udp_fast) against its general path: for valid datagrams
(unicast, a joined group) and for every mutation hypothesis makes of their bytes, a stack with
the fast path and one without it count, queue, wake and answer exactly the same, and the valid
ones really take the fast path."""

from __future__ import annotations

import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from tests.net.crafted import PEER_IP, PEER_MAC, STACK_IP, Host
from tradekernel.kernel.net.sockets import IP_ADD_MEMBERSHIP, IPPROTO_IP
from tradekernel.kernel.net.wire import checksum

GROUP = "239.1.2.3"
GROUP_MAC = "01:00:5e:01:02:03"
PORT = 5000


def _host(fast: bool) -> tuple[Host, list, list]:
    host = Host()
    sock = host.stack.open("udp")
    sock.bind(("", PORT))
    sock.setsockopt(IPPROTO_IP, IP_ADD_MEMBERSHIP,
                    socket.inet_aton(GROUP) + socket.inet_aton("0.0.0.0"))
    woken: list[int] = []
    sock.set_callback(lambda s: woken.append(s.readiness()))
    taken: list[bool] = []
    general = host.stack._udp_fast
    host.stack._udp_fast = (  # type: ignore[method-assign]
        (lambda frame: taken.append(general(frame)) or taken[-1]) if fast
        else (lambda frame: False))
    host.sent()
    return host, [sock, woken], taken


def _frames() -> list[bytes]:
    unicast = Ether(dst="00:00:00:00:00:00", src=PEER_MAC) / IP(src=PEER_IP, dst=STACK_IP) / UDP(
        sport=7, dport=PORT)
    group = Ether(dst=GROUP_MAC, src=PEER_MAC) / IP(src=PEER_IP, dst=GROUP, ttl=1) / UDP(
        sport=7, dport=PORT)
    return [bytes(unicast / (b"tick" * 16)), bytes(group / b"itch"),
            bytes(unicast / b""), bytes(group / bytes(1400)), bytes(unicast / b"odd")]


def _run(frames: list[bytes], fast: bool) -> tuple[object, ...]:
    """Counters, queued datagrams, wake-ups, frames sent, fast-path answers (an all-zero
    destination MAC stands for the stack's own)."""
    host, (sock, woken), taken = _host(fast)
    mac = bytes.fromhex(host.mac.replace(":", ""))
    for frame in frames:
        host.raw(mac + frame[6:] if frame[:6] == bytes(6) else frame)
    queued = list(sock.queue)
    return host.stack.counters.snapshot(), queued, woken, [bytes(f) for f in host.sent()], taken


def test_valid_datagrams_take_the_fast_path_with_the_general_paths_result() -> None:
    frames = _frames()
    fast = _run(frames, fast=True)
    assert fast[4] == [True] * len(frames)
    assert fast[:4] == _run(frames, fast=False)[:4]
    assert [data for data, _ in fast[1]] == [b"tick" * 16, b"itch", b"", bytes(1400), b"odd"]


def _mutated(frame: bytes, edits: list[tuple[int, int]], fix: bool) -> bytes:
    out = bytearray(frame)
    for offset, value in edits:
        if offset < len(out):
            out[offset] = value
    if fix:  # checksums made right again, so that the header edits themselves are judged
        out[24:26] = bytes(2)
        out[24:26] = checksum(out[14:34]).to_bytes(2, "big")
        out[40:42] = bytes(2)  # no UDP checksum
    return bytes(out)


# One edit per check of the general path (offsets in the frame: Ethernet 0-13, IPv4 14-33,
# UDP 34-41)
HEADER_EDITS = {
    "source MAC multicast": [(6, 0x03)], "ARP ethertype": [(13, 0x06)],
    "IPv6 version": [(14, 0x65)], "IPv4 options": [(14, 0x46)], "TCP": [(23, 6)],
    "more fragments": [(20, 0x20)], "fragment offset": [(21, 1)], "don't fragment": [(20, 0x40)],
    "total length over the frame": [(16, 0x05)], "total length under 28": [(16, 0), (17, 27)],
    "multicast source": [(26, 0xE0)], "broadcast source": [(26, 255), (27, 255), (28, 255),
                                                           (29, 255)],
    "another destination": [(33, 77)], "unjoined group": [(33, 4)], "broadcast": [(33, 255)],
    "port 0": [(36, 0), (37, 0)], "closed port": [(37, 99)],
    "UDP length over IP's": [(38, 0x05)], "UDP length under 8": [(38, 0), (39, 7)],
    "bad IP checksum": [(24, 0)], "bad UDP checksum": [(40, 0x12)],
}


@pytest.mark.parametrize("which", range(5))
@pytest.mark.parametrize("name", sorted(HEADER_EDITS))
def test_each_header_check_matches_the_general_path(which: int, name: str) -> None:
    fix = "checksum" not in name
    frames = [_mutated(_frames()[which], HEADER_EDITS[name], fix)]
    assert _run(frames, fast=True)[:4] == _run(frames, fast=False)[:4]


@settings(max_examples=300, deadline=None)
@given(which=st.integers(0, 4), edits=st.lists(
    st.tuples(st.integers(0, 60), st.integers(0, 255)), min_size=1, max_size=4),
    cut=st.integers(0, 80), fix=st.booleans())
def test_any_mutation_is_handled_as_the_general_path_handles_it(
        which: int, edits: list[tuple[int, int]], cut: int, fix: bool) -> None:
    frame = _mutated(_frames()[which], edits, fix)
    frames = [frame, frame[: len(frame) - cut]]
    assert _run(frames, fast=True)[:4] == _run(frames, fast=False)[:4]
