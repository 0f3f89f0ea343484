"""The user-mode NAT's cost per datagram it carries from a host UDP socket to the guest:

    .venv/bin/python bench/bench_nat_udp_in.py [--rounds N]

A host socket on 127.0.0.1 sends 64-byte datagrams, 32 at a time, through `--hostfwd udp`
and as replies to a flow the guest opened; between bursts `UserNetwork.poll()` reads them and
frames them for the guest (the frames go to a list, no NIC). Timed: poll() alone, so the
figure is the NAT's own microseconds per datagram (socket read, headers, checksums, the
frame's copy), not the sender's. Wall-clock on a shared host: the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tradekernel.hostnet import packets as pk  # noqa: E402
from tradekernel.hostnet.user import GATEWAY, GATEWAY_MAC, GUEST, UserNetwork  # noqa: E402

GUEST_MAC = bytes.fromhex("525400123456")
BURST = 32
PAYLOAD = bytes(64)


def run(hostfwd: bool, rounds: int) -> float:
    """Microseconds of poll() per datagram delivered."""
    nat = UserNetwork(hostfwd=["udp:0-:5002"])
    frames: list[bytes] = []
    nat.start(frames.append)
    host = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    host.bind(("127.0.0.1", 0))
    try:
        if hostfwd:
            nat.guest_mac = GUEST_MAC  # as once the guest has spoken
            address = ("127.0.0.1", nat.forwards[0].bound_port)
        else:
            udp = pk.Udp(6000, host.getsockname()[1], b"hello").build(GUEST, GATEWAY)
            ip = pk.Ipv4(GUEST, GATEWAY, pk.PROTO_UDP, udp).build()
            nat.send(pk.ethernet(GATEWAY_MAC, GUEST_MAC, pk.ETHERTYPE_IPV4, ip))
            _, address = host.recvfrom(100)
        spent = 0.0
        for _ in range(rounds):
            for _ in range(BURST):
                host.sendto(PAYLOAD, address)
            start = time.perf_counter()
            nat.poll()
            spent += time.perf_counter() - start
        end = time.perf_counter() + 5
        while len(frames) < rounds * BURST and time.perf_counter() < end:
            start = time.perf_counter()
            nat.poll()
            spent += time.perf_counter() - start
        assert len(frames) == rounds * BURST, f"{len(frames)} of {rounds * BURST} delivered"
        return spent / len(frames) * 1e6
    finally:
        host.close()
        nat.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000, help="bursts of 32 datagrams")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    for hostfwd, what in ((True, "hostfwd udp"), (False, "replies to a guest flow")):
        micros = run(hostfwd, args.rounds)
        print(f"nat udp host->guest, {what}: {micros:5.2f} us per datagram in poll() "
              f"({1e6 / micros:8.0f} datagrams per second of poll() time)")


if __name__ == "__main__":
    main()
