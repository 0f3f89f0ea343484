"""The kernel network stack (tradekernel/kernel/net/) on the host CPU, before any NIC model:

    .venv/bin/python bench/bench_netstack.py [--mib N] [--no-linux]

In memory: TCP throughput between two of our stacks on a simulated wire (both ends' cost),
UDP datagrams per second through one stack's receive path into a socket, and the echo
round trip's CPU cost. Over a TAP with Linux's stack in a network namespace as the peer (root,
ip, python3): TCP throughput each way, ping RTT median/p99 as Linux's ping measures it, TCP
connections per second opened by Linux to us; beside them, the same transfer between two
Linux namespaces over a veth pair, as the ceiling. Wall-clock figures on a shared host: the
load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from tempfile import TemporaryDirectory

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.net.linux import LINUX_IP, PREFIX, STACK_IP, LinuxPeer, sh  # noqa: E402
from tests.net.sim import pair  # noqa: E402
from tradekernel.kernel.net import SocketError  # noqa: E402
from tradekernel.kernel.net.wire import ip_to_int  # noqa: E402

MIB = 1 << 20


def sim_tcp(size: int) -> float:
    clock, a, b = pair()
    srv = b.open("tcp")
    srv.bind(("", 9000))
    srv.listen(1)
    cli = a.open("tcp")
    try:
        cli.connect(("10.0.0.2", 9000))
    except SocketError:
        pass
    clock.run(lambda: bool(srv.accept_queue))
    conn = srv.accept()
    data = bytes(size)
    sent = got = 0
    start = time.perf_counter()
    while got < size:
        while sent < size:
            try:
                sent += cli.send(data[sent:sent + 65536])
            except SocketError:
                break
        while True:
            try:
                chunk = conn.recv(1 << 16)
            except SocketError:
                break
            got += len(chunk)
        clock.step()
    return size / MIB / (time.perf_counter() - start)


def sim_udp(count: int) -> float:
    clock, a, b = pair()
    sock = b.open("udp")
    sock.bind(("", 7000))
    sender = a.open("udp")
    sender.sendto(b"warm", ("10.0.0.2", 7000))
    clock.run(lambda: bool(sock.queue))
    sock.recvfrom()
    frames: list[bytes] = []
    a.link.deliver = frames.append                                  # type: ignore[attr-defined]
    for i in range(64):
        sender.sendto(i.to_bytes(4, "big") + bytes(60), ("10.0.0.2", 7000))
    start = time.perf_counter()
    for i in range(count):
        b.receive(frames[i % 64])
        sock.recvfrom()
    return count / (time.perf_counter() - start)


def sim_ping(count: int) -> float:
    clock, a, b = pair(latency=0)
    sock = a.open("icmp")
    start = time.perf_counter()
    for seq in range(count):
        sock.sendto(b"\x08\0\0\0\0\0" + (seq & 0xFFFF).to_bytes(2, "big") + bytes(56),
                    ("10.0.0.2", 0))
        clock.run(lambda: bool(sock.queue))
        sock.recvfrom()
    return (time.perf_counter() - start) / count * 1e6


def py(code: str) -> list[str]:
    return ["python3", "-c", textwrap.dedent(code)]


def linux_figures(tmp: Path, size: int) -> None:
    peer = LinuxPeer(tmp, "b")
    try:
        peer.stack.configure(ip_to_int(STACK_IP), PREFIX, ip_to_int(LINUX_IP))
        stack = peer.stack
        # Linux -> stack
        listener = stack.open("tcp")
        listener.bind(("", 5001))
        listener.listen(64)
        client = peer.spawn(*py(f"""
            import socket
            s = socket.create_connection(("{STACK_IP}", 5001))
            s.sendall(bytes({size}))
            s.close()
        """))
        peer.run(lambda: bool(listener.accept_queue), 10, "connection")
        conn = listener.accept()
        got = 0
        start = time.perf_counter()

        def drain() -> bool:
            nonlocal got
            while True:
                try:
                    chunk = conn.recv(1 << 16)
                except SocketError:
                    return False
                if not chunk:
                    return True
                got += len(chunk)

        peer.run(drain, 300, "Linux -> stack")
        down = got / MIB / (time.perf_counter() - start)
        conn.close()
        peer.wait_proc(client, 30, "client")
        # stack -> Linux
        server = peer.spawn(*py(f"""
            import socket
            srv = socket.socket(); srv.bind(("{LINUX_IP}", 5002)); srv.listen(1)
            print("ready", flush=True)
            c, _ = srv.accept()
            n = 0
            while chunk := c.recv(1 << 16):
                n += len(chunk)
            print(n)
        """))
        assert server.stdout is not None and server.stdout.readline() == b"ready\n"
        sock = stack.open("tcp")
        try:
            sock.connect((LINUX_IP, 5002))
        except SocketError:
            pass
        data = bytes(size)
        sent = 0
        start = time.perf_counter()

        def push() -> bool:
            nonlocal sent
            while sent < size:
                try:
                    sent += sock.send(data[sent:sent + 65536])
                except SocketError:
                    return False
            return True

        peer.run(push, 300, "stack -> Linux")
        sock.close()
        out, _ = peer.wait_proc(server, 300, "server")
        up = size / MIB / (time.perf_counter() - start)
        assert int(out.split()[-1]) == size
        # ping as Linux measures it
        out, _ = peer.wait_proc(peer.spawn("ping", "-c", "200", "-i", "0.002", "-q", "-n",
                                           STACK_IP), 60, "ping")
        summary = next(line for line in out.decode().splitlines() if line.startswith("rtt"))
        rtts = summary.split("=")[1].split()[0].split("/")
        # connections per second from Linux
        conns = 300
        client = peer.spawn(*py(f"""
            import socket, time
            t = time.perf_counter()
            for _ in range({conns}):
                s = socket.create_connection(("{STACK_IP}", 5001)); s.close()
            print(time.perf_counter() - t)
        """))

        def accept_all(_sock: object) -> None:
            while listener.accept_queue:                       # as a woken accept() would
                listener.accept().close()

        listener.set_callback(accept_all)
        peer.run(lambda: client.poll() is not None, 120, "connections")
        out, _ = client.communicate()
        cps = conns / float(out.split()[-1])
        print(f"TAP, Linux -> stack TCP      {down:8.1f} MB/s   ({size // MIB} MiB)")
        print(f"TAP, stack -> Linux TCP      {up:8.1f} MB/s")
        print(f"TAP, ping RTT (Linux ping)   min/avg/max {rtts[0].strip()}/{rtts[1]}/{rtts[2]} ms")
        print(f"TAP, connections/s from Linux {cps:7.0f}")
    finally:
        peer.close()
    ceiling(size)


def ceiling(size: int) -> None:
    tag = str(os.getpid())
    a, b = f"tkba{tag}", f"tkbb{tag}"
    sh("ip", "netns", "add", a)
    sh("ip", "netns", "add", b)
    try:
        sh("ip", "link", "add", "tkv0" + tag[-4:], "netns", a, "type", "veth", "peer", "name",
           "tkv1" + tag[-4:], "netns", b)
        sh("ip", "-n", a, "addr", "add", "10.78.0.1/24", "dev", "tkv0" + tag[-4:])
        sh("ip", "-n", b, "addr", "add", "10.78.0.2/24", "dev", "tkv1" + tag[-4:])
        sh("ip", "-n", a, "link", "set", "tkv0" + tag[-4:], "up")
        sh("ip", "-n", b, "link", "set", "tkv1" + tag[-4:], "up")
        server = subprocess.Popen(["ip", "netns", "exec", b, *py("""
            import socket
            srv = socket.socket(); srv.bind(("10.78.0.2", 5002)); srv.listen(1)
            print("ready", flush=True)
            c, _ = srv.accept()
            while c.recv(1 << 16):
                pass
        """)], stdout=subprocess.PIPE)
        assert server.stdout is not None and server.stdout.readline() == b"ready\n"
        out = subprocess.run(["ip", "netns", "exec", a, *py(f"""
            import socket, time
            s = socket.create_connection(("10.78.0.2", 5002))
            t = time.perf_counter(); s.sendall(bytes({size})); s.close()
            print(time.perf_counter() - t)
        """)], capture_output=True, text=True, timeout=120, check=True).stdout
        server.wait(timeout=60)
        print(f"ceiling: Linux veth namespace to namespace {size / MIB / float(out):8.1f} MB/s")
    finally:
        sh("ip", "netns", "del", a, check=False)
        sh("ip", "netns", "del", b, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=8)
    parser.add_argument("--no-linux", action="store_true")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    random.seed(0)
    print(f"in memory, TCP between two stacks    {sim_tcp(args.mib * MIB):8.1f} MB/s")
    print(f"in memory, UDP datagrams received    {sim_udp(100_000):8.0f} /s")
    rtts = [sim_ping(500) for _ in range(3)]
    print(f"in memory, echo round trip CPU       {statistics.median(rtts):8.1f} us")
    if not args.no_linux:
        with TemporaryDirectory() as tmp:
            linux_figures(Path(tmp), args.mib * MIB)


if __name__ == "__main__":
    main()
