"""The disk's network programs make the direct socket system calls (images/programs/lib/net.h),
not socketcall (102): `nettest` receives datagrams a host peer sends through --hostfwd udp,
and the kernel's per-number counts say which calls it made."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.system.harness import SECOND, BootedPc, close_pc
from tradekernel import hostnet

SOCKETCALL, SOCKET, BIND, RECVFROM, RECVMMSG = 102, 359, 361, 371, 337


@pytest.mark.parametrize(("mode", "receive"), [("udprecv", RECVFROM), ("udprecvmm", RECVMMSG)])
def test_nettest_receives_over_direct_calls(tmp_path: Path, mode: str, receive: int) -> None:
    booted = BootedPc(tmp_path, net=hostnet.NetOptions("user", hostfwd=["udp:0-:5002"]),
                      deterministic=False).boot()  # fmt: skip
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        counts = booted.pc.kernel.syscall_entry.syscalls.counts
        before = dict(counts)
        booted.type(f"nettest {mode} 5002 3 &\n")
        booted.run_until(lambda: b"nettest: ready on port 5002" in booted.serial, 10 * SECOND)
        address = ("127.0.0.1", booted.link.backend.forwards[0].bound_port)
        for _ in range(3):
            peer.sendto(b"tick" * 16, address)
        booted.run_until(lambda: b"nettest: received 3 datagrams" in booted.serial, 10 * SECOND)
        made = {n: counts[n] - before.get(n, 0) for n in (SOCKETCALL, SOCKET, BIND, receive)}
        assert made[SOCKETCALL] == 0, made
        assert made[SOCKET] >= 1 and made[BIND] >= 1 and made[receive] >= 1, made
    finally:
        peer.close()
        close_pc(booted)
