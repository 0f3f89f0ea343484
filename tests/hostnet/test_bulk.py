"""10 MiB each way through the booted OS, compared by SHA-256: random bytes from a host peer to
the ring-3 `tcpecho` server and back, over --net user with --hostfwd (the NAT's TCP relay is
the peer) and over --net tap with Linux's own TCP/IP in a network namespace as the peer. Every
byte crosses the NE2000 model, the kernel's driver, its TCP and the socket calls twice; a lost,
repeated or altered byte anywhere changes the digest. The Link's queue must not drop a frame
and the card's ring must never overflow (back-pressure)."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from tests.system.harness import SECOND, BootedPc, close_pc
from tradekernel import hostnet

SIZE = 10 << 20
ECHO_PORT = 7000
LINUX_IP, GUEST_IP = "10.195.0.1", "10.195.0.2"
LINUX_CLIENT = """
import hashlib, os, socket, sys, threading
data = os.urandom(int(sys.argv[2]))
back = hashlib.sha256()
with socket.create_connection((sys.argv[1], int(sys.argv[3])), timeout=120) as peer:
    def send():
        peer.sendall(data)
        peer.shutdown(socket.SHUT_WR)
    threading.Thread(target=send, daemon=True).start()
    total = 0
    while chunk := peer.recv(1 << 16):
        back.update(chunk)
        total += len(chunk)
print(hashlib.sha256(data).hexdigest(), back.hexdigest(), total)
"""


def echo_through(client: socket.socket, data: bytes, digest: list[str]) -> None:
    """Send `data` and read the echo concurrently; the echo's SHA-256 and length go in
    `digest`."""
    back = hashlib.sha256()
    total = 0

    def send() -> None:
        client.sendall(data)
        client.shutdown(socket.SHUT_WR)

    threading.Thread(target=send, daemon=True).start()
    while chunk := client.recv(1 << 16):
        back.update(chunk)
        total += len(chunk)
    digest += [back.hexdigest(), str(total)]


def check_card(booted: BootedPc) -> None:
    assert booted.pc.kernel.net.driver.stats["overflows"] == 0
    assert booted.link.dropped_in == 0


def test_ten_mib_each_way_through_the_user_nat_arrive_intact(tmp_path: Path) -> None:
    booted = BootedPc(tmp_path, net=hostnet.NetOptions("user", hostfwd=[f"tcp:0-:{ECHO_PORT}"]),
                      deterministic=False).boot()  # fmt: skip
    try:
        port = booted.link.backend.forwards[0].bound_port
        booted.type(f"tcpecho {ECHO_PORT}\n")
        booted.run_until(lambda: b"listening on port" in booted.serial, 10 * SECOND)
        data = os.urandom(SIZE)
        digest: list[str] = []
        client = socket.create_connection(("127.0.0.1", port), timeout=120)
        reader = threading.Thread(target=echo_through, args=(client, data, digest), daemon=True)
        reader.start()
        booted.run_until(lambda: b"echoed" in booted.serial, 300 * SECOND)
        booted.run_until(lambda: not reader.is_alive(), 30 * SECOND)
        client.close()
        assert digest == [hashlib.sha256(data).hexdigest(), str(SIZE)]
        assert booted.pc.kernel.net.stack.counters["tcp.in_data_bytes"] == SIZE
        assert booted.pc.kernel.net.stack.counters["tcp.out_data_bytes"] == SIZE
        check_card(booted)
    finally:
        close_pc(booted)


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/dev/net/tun"),
                    reason="needs root and /dev/net/tun")  # fmt: skip
def test_ten_mib_each_way_with_linux_over_tap_arrive_intact(tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:6]
    namespace, tap = f"tkbk{suffix}", f"tkbkt{suffix}"
    booted = BootedPc(tmp_path, net=hostnet.NetOptions(f"tap:{tap}"), deterministic=False)
    client = None
    try:
        for args in (("netns", "add", namespace), ("link", "set", tap, "netns", namespace),
                     ("-n", namespace, "addr", "add", f"{LINUX_IP}/24", "dev", tap),
                     ("-n", namespace, "link", "set", tap, "up")):  # fmt: skip
            subprocess.run(["ip", *args], check=True, timeout=10, capture_output=True)
        booted.boot()
        assert booted.output(f"ifconfig eth0 {GUEST_IP}/24") == [f"eth0: {GUEST_IP}/24"]
        booted.type(f"tcpecho {ECHO_PORT}\n")
        booted.run_until(lambda: b"listening on port" in booted.serial, 10 * SECOND)
        client = subprocess.Popen(["ip", "netns", "exec", namespace, "python3", "-c",
                                   LINUX_CLIENT, GUEST_IP, str(SIZE), str(ECHO_PORT)],
                                  stdout=subprocess.PIPE, text=True)  # fmt: skip
        booted.run_until(lambda: client.poll() is not None, 300 * SECOND)
        sent, echoed, total = client.communicate(timeout=10)[0].split()
        assert echoed == sent and int(total) == SIZE
        assert booted.pc.kernel.net.stack.counters["tcp.in_data_bytes"] == SIZE
        check_card(booted)
    finally:
        if client is not None and client.poll() is None:
            client.kill()
            client.communicate(timeout=10)
        close_pc(booted)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=10)
