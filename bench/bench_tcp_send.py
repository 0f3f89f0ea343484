"""Guest -> host TCP throughput alone (issue 18's ring 3 -> peer figure), repeated in one boot.

`nettest tcpsend` in ring 3 sends SIZE MiB to a Python sink process, REPEAT times on one booted
PC, over `--net user` (the sink on the host's 127.0.0.1, reached as 10.0.2.2) and, as root,
over `--net tap` with the sink in a network namespace (Linux's TCP/IP as the peer). Each run
prints MB/s as the sink timed it (first byte to last) and MB per CPU second of this process
(the emulator alone; the sink is another process), which a loaded, shared host disturbs much
less than the wall figure, and per CPU second of the thread that runs the machine (the
process's other threads, timers and wakers, spend more the longer a run takes). The helpers
that boot the guest and time one transfer are bench_net.py's, so the figures are the same
measurement as its "guest tcp ring 3->..." lines.

--profile FILE writes a cProfile of the last user-NAT run (pstats format) for inspection.
--parts times, without a guest, two pieces of each segment's path alone (best of 5 rounds):
the NE2000 driver's transmit of a full frame through the device model (port writes, remote
DMA, transmit) and NetStack.ip_output of a full TCP segment to a routed peer.

Run: .venv/bin/python bench/bench_tcp_send.py [--size MIB] [--repeat N] [--no-tap] [--parts]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench_net, tests.system

from bench import bench_net as bn  # noqa: E402


def run_user(size: int, repeat: int, profile: str | None) -> None:
    from tests.system.harness import close_pc

    guest = bn._booted_guest(tempfile.mkdtemp(prefix="tk-bench-tcpsend-"), [])
    try:
        for i in range(repeat):
            sink = bn._peer([sys.executable], bn.LINUX_TCP_SINK, "127.0.0.1", "0")
            assert sink.stdout is not None
            port = int(sink.stdout.readline().split()[1])
            prof = cProfile.Profile() if profile and i == repeat - 1 else None
            if prof:
                prof.enable()
            thread = time.thread_time()
            rate, per_cpu = bn._ring3_tcp_send(guest, sink, "10.0.2.2", port, size)
            thread = time.thread_time() - thread
            if prof:
                prof.disable()
                prof.dump_stats(profile)
            print(f"user nat ring 3->host {size >> 20} MiB: {rate:7.2f} MB/s, "
                  f"{per_cpu:5.1f} MB per CPU second ({size / thread / 1e6:5.1f} per CPU "
                  "second of the machine's thread)", flush=True)
    finally:
        close_pc(guest)


def run_tap(size: int, repeat: int) -> None:
    if os.geteuid() != 0 or not os.path.exists("/dev/net/tun"):
        print("tap: skipped (needs root and /dev/net/tun)")
        return
    from tests.system.harness import BootedPc, close_pc
    from tradekernel import hostnet

    suffix = uuid.uuid4().hex[:6]
    ns, tap = f"tkts{suffix}", f"tktst{suffix}"
    linux, me = "10.197.0.1", "10.197.0.2"
    guest = BootedPc(Path(tempfile.mkdtemp(prefix="tk-bench-tcpsend-tap-")),
                     net=hostnet.NetOptions(f"tap:{tap}"), deterministic=False)  # fmt: skip
    try:
        bn._ip("netns", "add", ns)
        bn._ip("link", "set", tap, "netns", ns)
        bn._ip("-n", ns, "addr", "add", f"{linux}/24", "dev", tap)
        bn._ip("-n", ns, "link", "set", tap, "up")
        guest.boot()
        guest.command(f"ifconfig eth0 {me}/24")
        for i in range(repeat):
            port = 5100 + i
            sink = bn._peer(["ip", "netns", "exec", ns, "python3"], bn.LINUX_TCP_SINK, linux,
                            str(port))  # fmt: skip
            assert sink.stdout is not None and sink.stdout.readline().startswith("ready")
            thread = time.thread_time()
            rate, per_cpu = bn._ring3_tcp_send(guest, sink, linux, port, size)
            thread = time.thread_time() - thread
            print(f"tap ring 3->Linux(netns) {size >> 20} MiB: {rate:7.2f} MB/s, "
                  f"{per_cpu:5.1f} MB per CPU second ({size / thread / 1e6:5.1f} per CPU "
                  "second of the machine's thread)", flush=True)
    finally:
        close_pc(guest)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)


PARTS_FRAMES = 20_000  # frames (and segments) per timed round of --parts
PARTS_ROUNDS = 5


def _best_us(work: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(PARTS_ROUNDS):
        start = time.perf_counter()
        for _ in range(PARTS_FRAMES):
            work()
        best = min(best, time.perf_counter() - start)
    return best / PARTS_FRAMES * 1e6


def run_parts() -> None:
    from tests.net.crafted import PEER_IP, Host
    from tradekernel.devices.base import Board
    from tradekernel.devices.ne2000 import Ne2000
    from tradekernel.emu.bus import Channels, MmioBus, PortBus
    from tradekernel.emu.clock import Clock
    from tradekernel.kernel.drivers.ne2000 import Ne2000Driver
    from tradekernel.kernel.drivers.portio import PortIo
    from tradekernel.kernel.net.ipv4 import PROTO_TCP
    from tradekernel.kernel.net.wire import ip_to_int

    class _Memory:  # guest memory: the card never touches it
        def read(self, address: int, size: int) -> bytes:
            return bytes(size)

        def write(self, address: int, data: bytes) -> None:
            pass

    board = Board(PortBus(), MmioBus(), Clock(), Channels(), _Memory())
    Ne2000().attach(board)
    board.channels.listen("net0-send", lambda frame: None)
    driver = Ne2000Driver.probe(PortIo(board.ports), 0x300, 9)
    assert driver is not None
    frame = bytes(1514)
    print(f"driver transmit through the NE2000 model: {_best_us(lambda: driver.send(frame)):6.2f}"
          " us per 1514-byte frame", flush=True)
    stack = Host().stack
    stack.link.send = lambda frame: None  # type: ignore[method-assign]
    peer, segment = ip_to_int(PEER_IP), bytes(1480)
    print(f"ip_output: {_best_us(lambda: stack.ip_output(peer, PROTO_TCP, segment)):6.2f} us "
          "per 1480-byte segment", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8, help="MiB per transfer")
    parser.add_argument("--repeat", type=int, default=3, help="transfers per network")
    parser.add_argument("--no-tap", action="store_true", help="only --net user")
    parser.add_argument("--profile", help="cProfile of the last user-NAT run to this file")
    parser.add_argument("--parts", action="store_true",
                        help="only time the driver's transmit and ip_output alone")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    if args.parts:
        run_parts()
        return
    run_user(args.size << 20, args.repeat, args.profile)
    if not args.no_tap:
        run_tap(args.size << 20, args.repeat)


if __name__ == "__main__":
    main()
