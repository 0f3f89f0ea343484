"""Network path figures for the parts that exist below the guest's stack: the NE2000 model driven
through its ports as a driver drives it, the user-mode NAT carrying TCP and UDP between host
sockets and a minimal in-process "guest" endpoint, ping round trips over a TAP with Linux in a
network namespace as the peer, and, as the ceiling, the same TCP transfer between two Linux
namespaces over a veth pair.

What each figure covers:
  nic rx     frames delivered on the "net0-receive" channel and taken out of the receive ring
             with the register sequence of Linux's 8390 driver (header by remote DMA, frame by
             `rep insw` through the data port, BNRY write): frames/s and MB/s.
  nic tx     frames written by remote DMA and sent with TXP: frames/s and MB/s.
  nic+driver+stack udp rx  64-byte datagrams through the model, the kernel's driver (its
             interrupt handler) and the stack into a UDP socket, 32 at a time: the cost below
             the system call, with no CPU.
  nat tcp    a host TCP socket on 127.0.0.1 <-> the NAT's relay <-> the in-process guest
             endpoint (ACK per segment, 64 KiB window): MB/s each way.
  nat udp    datagrams from a host socket to the guest endpoint: datagrams/s.
  tap ping   ICMP echo to Linux in a namespace through the TAP: RTT median/p99 (wall).
  veth tcp   Linux to Linux over veth between two namespaces: MB/s (the ceiling).
  guest ...  the booted OS (kernel NE2000 driver, its stack, ring-3 sockets) on a real-time PC
             with --net user and --hostfwd, the peers being Python processes on the host: TCP
             MB/s each way between the ring-3 `nettest` program and the peer (host->guest
             timed by the guest from accept to EOF, guest->host by the peer from first byte to
             last), UDP datagrams/s into ring 3: the highest rate a peer offers 64-byte datagrams
             at (5k to 70k/s) that reaches the program without loss (`nettest udprecv`: one
             recv per datagram; `nettest udprecvmm`: recvmmsg, up to 64 per call with
             MSG_WAITFORONE, as market-data handlers read), TCP connections/s from a host
             client to `tcpecho` (connect, one byte echoed, close, in a row), and the shell's
             ping RTT to the gateway.
  guest tap  the same OS on --net tap with Linux in a network namespace as the peer (its own
             TCP/IP): 10 MiB each way between `nettest` and a Python peer in the namespace
             (timed as above), UDP datagrams/s into both `nettest` readers from a blaster there,
             ping RTT median/p99 as Linux's ping measures it to the guest (and the guest
             shell's ping to Linux), and TCP connections/s opened by Linux to `tcpecho`.
  guest udp in-process source (--udp-only)  the same two readers fed by a source inside this
             process in place of the cable's backend, 32 datagrams at each of the guest's idle
             points: datagrams per CPU second of the emulator alone, no host network or peer
             process involved (the figure a loaded host disturbs least).
  reference  the same Python peer code moving 10 MiB over the host's loopback in this run.
The machine is shared: the load average is printed first; wall figures scale with it. Beside
each guest figure: per CPU second of this process (the emulator alone: every peer is another
process, but for the connection loop's thread), which a loaded host disturbs much less.

Run (root for the TAP and veth parts): .venv/bin/python bench/bench_net.py [--quick]
[--guest-only | --udp-only]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.system.harness boots

from tradekernel.devices.ne2000 import Ne2000  # noqa: E402
from tradekernel.emu.bus import Channels, MmioBus, PortBus  # noqa: E402
from tradekernel.emu.clock import Clock  # noqa: E402
from tradekernel.hostnet import packets as pk  # noqa: E402
from tradekernel.hostnet.tap import TapBackend  # noqa: E402
from tradekernel.hostnet.user import GATEWAY, GATEWAY_MAC, GUEST, UserNetwork  # noqa: E402

BASE = 0x300
DATA = BASE + 0x10
MAC = bytes.fromhex("525400123456")
RING_START, RING_STOP, TX_PAGE = 0x46, 0x80, 0x40
FRAME_SIZES = (60, 1514)


class _Memory:
    def read(self, address: int, size: int) -> bytes:
        return bytes(size)

    def write(self, address: int, data: bytes) -> None:
        pass


def _card() -> tuple[Ne2000, PortBus, Channels]:
    from tradekernel.devices.base import Board

    board = Board(PortBus(), MmioBus(), Clock(), Channels(), _Memory())
    card = Ne2000(mac=MAC)
    card.attach(board)
    ports = board.ports
    for reg, value in ((0, 0x21), (0x0E, 0x49), (0x0C, 0x04), (0x0D, 0x00), (0x04, TX_PAGE),
                       (0x01, RING_START), (0x03, RING_START), (0x02, RING_STOP), (0x0F, 0x00),
                       (0, 0x61), (0x07, RING_START + 1), (0, 0x22)):  # fmt: skip
        ports.write(BASE + reg, 1, value)
    for i, byte in enumerate(MAC):
        ports.write(BASE, 1, 0x62)
        ports.write(BASE + 1 + i, 1, byte)
        ports.write(BASE, 1, 0x22)
    return card, ports, board.channels


def _remote(ports: PortBus, address: int, count: int, command: int) -> None:
    for reg, value in ((0x0A, count & 0xFF), (0x0B, count >> 8), (0x08, address & 0xFF),
                       (0x09, address >> 8), (0, command)):  # fmt: skip
        ports.write(BASE + reg, 1, value)


def _drain(ports: PortBus) -> int:
    taken = 0
    while True:
        ports.write(BASE, 1, 0x62)
        curr = ports.read(BASE + 7, 1)
        ports.write(BASE, 1, 0x22)
        page = ports.read(BASE + 3, 1) + 1
        page = RING_START if page >= RING_STOP else page
        if page == curr:
            return taken
        _remote(ports, page << 8, 4, 0x0A)
        header = ports.read_string(DATA, 2, 2)
        count = header[2] | header[3] << 8
        _remote(ports, (page << 8) + 4, count - 4, 0x0A)
        ports.read_string(DATA, 2, (count - 3) // 2)
        ports.write(BASE + 7, 1, 0x40)
        following = header[1]
        ports.write(BASE + 3, 1, following - 1 if following > RING_START else RING_STOP - 1)
        taken += 1


def bench_nic(seconds: float) -> None:
    for size in FRAME_SIZES:
        _, ports, channels = _card()
        frame = MAC + b"\x02" * 6 + b"\x08\x00" + bytes(size - 14)
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for _ in range(8):
                channels.send("net0-receive", frame)
            count += _drain(ports)
        elapsed = time.perf_counter() - start
        print(f"nic rx  {size:5d} B frames: {count / elapsed:10.0f} frames/s "
              f"{count * size / elapsed / 1e6:7.2f} MB/s")  # fmt: skip
    for size in FRAME_SIZES:
        _, ports, channels = _card()
        sent: list[bytes] = []
        channels.listen("net0-send", sent.append)
        frame = b"\x02" * 6 + MAC + b"\x08\x00" + bytes(size - 14)
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            _remote(ports, TX_PAGE << 8, size, 0x12)
            ports.write_string(DATA, 2, frame)
            for reg, value in ((0x05, size & 0xFF), (0x06, size >> 8), (0, 0x26), (0x07, 0x42)):
                ports.write(BASE + reg, 1, value)
            count += 1
        elapsed = time.perf_counter() - start
        assert len(sent) == count
        print(f"nic tx  {size:5d} B frames: {count / elapsed:10.0f} frames/s "
              f"{count * size / elapsed / 1e6:7.2f} MB/s")  # fmt: skip


def bench_rx_path(seconds: float) -> None:
    """Frames through the model, the kernel's NE2000 driver (its interrupt handler, with the
    stack's burst brackets) and the stack into a UDP socket, taken out with recvfrom: the
    per-datagram cost below the system call, with no CPU, trap or copy to user memory."""
    from tests.net.sim import SimClock
    from tradekernel.devices.base import Board
    from tradekernel.kernel.drivers.ne2000 import Ne2000Driver
    from tradekernel.kernel.drivers.portio import PortIo
    from tradekernel.kernel.net import NetStack

    board = Board(PortBus(), MmioBus(), Clock(), Channels(), _Memory())
    Ne2000(mac=MAC).attach(board)
    driver = Ne2000Driver.probe(PortIo(board.ports), BASE, 9)
    assert driver is not None
    clock = SimClock()
    stack = NetStack(driver, clock, clock)
    stack.configure(int.from_bytes(GUEST, "big"), 24)
    driver.on_frame, driver.on_burst_start, driver.on_burst_end = (
        stack.receive, stack.begin_burst, stack.end_burst)
    sock = stack.open("udp")
    sock.bind(("", 5002))
    datagram = pk.Ipv4(GATEWAY, GUEST, pk.PROTO_UDP, pk.Udp(6000, 5002, bytes(64)).build(
        GATEWAY, GUEST)).build()  # fmt: skip
    frame = pk.ethernet(MAC, GATEWAY_MAC, pk.ETHERTYPE_IPV4, datagram)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(UDP_SOURCE_BURST):
            board.channels.send("net0-receive", frame)
        driver.on_irq(9)
        while sock.queue:
            sock.recvfrom()
            count += 1
    elapsed = time.perf_counter() - start
    print(f"nic+driver+stack udp rx: {count / elapsed:10.0f} datagrams/s "
          f"({elapsed / count * 1e6:.1f} us each, bursts of {UDP_SOURCE_BURST})")


class _GuestEndpoint:
    """The guest's side of one TCP connection to the NAT, with no stack behind it: ACKs each
    in-order segment, counts bytes. Frames are handled after the NAT's poll returns, as a guest
    handles them after its interrupt, never from inside the NAT."""

    def __init__(self, nat: UserNetwork, port: int) -> None:
        self.nat, self.port, self.sport = nat, port, 45000
        self.seq, self.ack, self.received = 1000, 0, 0
        self.peer_window, self.peer_ack, self.fin = 0, 0, False
        self.inbox: list[bytes] = []
        nat.start(self.inbox.append)

    def poll(self) -> None:
        self.nat.poll()
        inbox = self.inbox[:]
        self.inbox.clear()  # the NAT holds this list's append: empty it in place
        for frame in inbox:
            self._frame(frame)

    def send(self, flags: int, payload: bytes = b"", mss: int | None = None) -> None:
        segment = pk.Tcp(self.sport, self.port, self.seq, self.ack, flags, 65535, payload, mss)
        ip = pk.Ipv4(GUEST, GATEWAY, pk.PROTO_TCP, segment.build(GUEST, GATEWAY))
        self.nat.send(pk.ethernet(GATEWAY_MAC, MAC, pk.ETHERTYPE_IPV4, ip.build()))
        self.seq += len(payload) + (1 if flags & (pk.SYN | pk.FIN) else 0)

    def _frame(self, frame: bytes) -> None:
        ip = pk.parse_ipv4(frame[14:])
        if ip.protocol != pk.PROTO_TCP:
            return
        tcp = pk.parse_tcp(ip)
        self.peer_window, self.peer_ack = tcp.window, tcp.ack
        if tcp.flags & pk.SYN:
            self.ack = tcp.seq + 1
            return
        if tcp.seq == self.ack and (tcp.payload or tcp.flags & pk.FIN):
            self.received += len(tcp.payload)
            self.ack += len(tcp.payload) + (1 if tcp.flags & pk.FIN else 0)
            self.fin = self.fin or bool(tcp.flags & pk.FIN)
            self.send(pk.ACK)

    def connect(self) -> None:
        self.send(pk.SYN, mss=1460)
        deadline = time.monotonic() + 5
        while not self.ack and time.monotonic() < deadline:
            self.poll()
        self.send(pk.ACK)


def bench_nat_tcp(size: int) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    payload = os.urandom(size)
    got = bytearray()

    def host_sends() -> None:
        conn, _ = server.accept()
        conn.sendall(payload)
        conn.close()

    nat = UserNetwork()
    guest = _GuestEndpoint(nat, server.getsockname()[1])
    threading.Thread(target=host_sends, daemon=True).start()
    start = time.perf_counter()
    guest.connect()
    while not guest.fin and time.perf_counter() - start < 60:
        guest.poll()
    elapsed = time.perf_counter() - start
    print(f"nat tcp host->guest {size >> 20} MiB: {guest.received / elapsed / 1e6:7.2f} MB/s")
    nat.close()

    def host_reads() -> None:
        conn, _ = server.accept()
        while chunk := conn.recv(1 << 16):
            got.extend(chunk)
        conn.close()

    reader = threading.Thread(target=host_reads, daemon=True)
    reader.start()
    nat = UserNetwork()
    guest = _GuestEndpoint(nat, server.getsockname()[1])
    guest.connect()
    start, sent = time.perf_counter(), 0
    while sent < size and time.perf_counter() - start < 60:
        in_flight = guest.seq - guest.peer_ack
        if in_flight + 1460 <= guest.peer_window:
            guest.send(pk.ACK, payload[sent : sent + 1460])
            sent += 1460
        else:
            guest.poll()
    guest.send(pk.FIN | pk.ACK)
    while reader.is_alive() and time.perf_counter() - start < 60:
        guest.poll()
    elapsed = time.perf_counter() - start
    print(f"nat tcp guest->host {size >> 20} MiB: {len(got) / elapsed / 1e6:7.2f} MB/s")
    nat.close()
    server.close()


def bench_nat_udp(count: int) -> None:
    nat = UserNetwork()
    delivered: list[bytes] = []
    nat.start(delivered.append)
    host = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    host.bind(("127.0.0.1", 0))
    ip = pk.Ipv4(GUEST, GATEWAY, pk.PROTO_UDP,
                 pk.Udp(6000, host.getsockname()[1], b"hello").build(GUEST, GATEWAY))  # fmt: skip
    nat.send(pk.ethernet(GATEWAY_MAC, MAC, pk.ETHERTYPE_IPV4, ip.build()))
    _, address = host.recvfrom(100)
    start = time.perf_counter()
    for _ in range(count // 32):
        for _ in range(32):
            host.sendto(b"q" * 32, address)
        nat.poll()
    while len(delivered) < count * 0.95 and time.perf_counter() - start < 10:
        nat.poll()
    elapsed = time.perf_counter() - start
    print(f"nat udp host->guest: {len(delivered) / elapsed:10.0f} datagrams/s "
          f"({len(delivered)}/{count} delivered)")  # fmt: skip
    nat.close()
    host.close()


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, timeout=10, capture_output=True)


def bench_tap_ping(count: int) -> None:
    if os.geteuid() != 0:
        print("tap ping: skipped (needs root)")
        return
    suffix = uuid.uuid4().hex[:6]
    name, ns = f"tkb{suffix}", f"tkbns{suffix}"
    tap = TapBackend(name)
    frames: list[bytes] = []
    tap.start(frames.append)
    _ip("netns", "add", ns)
    try:
        _ip("link", "set", name, "netns", ns)
        _ip("-n", ns, "addr", "add", "10.198.0.1/24", "dev", name)
        _ip("-n", ns, "link", "set", name, "up")
        me, peer = pk.ip_to_bytes("10.198.0.2"), pk.ip_to_bytes("10.198.0.1")
        arp = pk.Arp(1, MAC, me, bytes(6), peer).build()
        tap.send(pk.ethernet(pk.BROADCAST_MAC, MAC, pk.ETHERTYPE_ARP, arp))
        peer_mac = _wait(tap, frames, lambda f: f[12:14] == b"\x08\x06")[6:12]
        rtts = []
        for seq in range(count):
            icmp = bytearray(b"\x08\x00\x00\x00\x00\x01" + seq.to_bytes(2, "big") + bytes(56))
            icmp[2:4] = pk.checksum(bytes(icmp)).to_bytes(2, "big")
            packet = pk.Ipv4(me, peer, pk.PROTO_ICMP, bytes(icmp)).build()
            start = time.perf_counter()
            tap.send(pk.ethernet(peer_mac, MAC, pk.ETHERTYPE_IPV4, packet))
            _wait(tap, frames, lambda f, s=seq: len(f) > 41 and f[23] == pk.PROTO_ICMP
                  and f[34] == 0 and int.from_bytes(f[40:42], "big") == s)  # fmt: skip
            rtts.append((time.perf_counter() - start) * 1e6)
        rtts.sort()
        p99 = rtts[int(len(rtts) * 0.99) - 1]
        print(f"tap ping to Linux in a netns: median {statistics.median(rtts):6.0f} us, "
              f"p99 {p99:6.0f} us ({count} pings, busy-polled)")  # fmt: skip
    finally:
        tap.close()
        _ip("netns", "del", ns)


def _wait(tap: TapBackend, frames: list[bytes], match, timeout: float = 2.0) -> bytes:  # noqa: ANN001
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        tap.poll()
        while frames:
            frame = frames.pop(0)
            if match(frame):
                return frame
    raise SystemExit("tap: no answer from Linux")


def bench_veth(size_mib: int) -> None:
    if os.geteuid() != 0:
        print("veth tcp: skipped (needs root)")
        return
    suffix = uuid.uuid4().hex[:6]
    a, b = f"tkva{suffix}", f"tkvb{suffix}"
    try:
        _ip("netns", "add", a)
        _ip("netns", "add", b)
        _ip("-n", a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", b)
        _ip("-n", a, "addr", "add", "10.197.0.1/24", "dev", "va")
        _ip("-n", b, "addr", "add", "10.197.0.2/24", "dev", "vb")
        _ip("-n", a, "link", "set", "va", "up")
        _ip("-n", b, "link", "set", "vb", "up")
        server = ("import socket,sys;s=socket.socket();s.bind(('10.197.0.1',5001));s.listen(1);"
                  "c,_=s.accept();n=0\nwhile (d:=c.recv(1<<20)): n+=len(d)\nprint(n)")  # fmt: skip
        client = ("import socket,time;s=socket.create_connection(('10.197.0.1',5001));"
                  "b=bytes(1<<20);t=time.perf_counter()\n"
                  f"for _ in range({size_mib}): s.sendall(b)\n"
                  "s.close();print(time.perf_counter()-t)")  # fmt: skip
        receiver = subprocess.Popen(["ip", "netns", "exec", a, sys.executable, "-c", server],
                                    stdout=subprocess.PIPE, text=True)  # fmt: skip
        time.sleep(0.3)
        sender = subprocess.run(["ip", "netns", "exec", b, sys.executable, "-c", client],
                                capture_output=True, text=True, timeout=60)  # fmt: skip
        received = int(receiver.communicate(timeout=60)[0])
        seconds = float(sender.stdout)
        print(f"veth tcp Linux->Linux {size_mib} MiB: {received / seconds / 1e6:8.1f} MB/s "
              "(the ceiling)")
    finally:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)


def _booted_guest(tmp: str, hostfwd: list[str]):  # noqa: ANN202 - tests.system.harness.BootedPc
    from pathlib import Path

    from tests.system.harness import SECOND, BootedPc
    from tradekernel import hostnet

    guest = BootedPc(Path(tmp), net=hostnet.NetOptions("user", hostfwd=hostfwd),
                     deterministic=False).boot()
    guest.run_until(lambda: guest.pc.kernel.net.stack.addr != 0, 20 * SECOND)
    return guest


def _connect_loop(host: str, port: int, count: int, result: list[float]) -> None:
    """`count` connections in a row, each sending one byte and reading its echo before
    closing; appends the seconds they took."""
    start = time.perf_counter()
    try:
        for _ in range(count):
            with socket.create_connection((host, port), timeout=30) as peer:
                peer.sendall(b"x")
                peer.recv(1)
    except OSError as error:
        print(f"connection loop failed: {error}")
        result.append(float("nan"))
        return
    result.append(time.perf_counter() - start)


def _peer(argv: list[str], script: str, *args: str) -> subprocess.Popen[str]:
    """A Python peer process (`argv` runs python3: on the host, or in a namespace)."""
    return subprocess.Popen([*argv, "-c", script, *args], text=True, stdout=subprocess.PIPE)


def _udp_run(guest, port: int, mode: str, blaster, seconds: float, rate: int  # noqa: ANN001
             ) -> tuple[int, int, int, float]:
    """One `nettest MODE` run with a blaster offering `rate` datagrams/s for `seconds`: (seen,
    offered, the program's microseconds first to last, this process's CPU seconds)."""
    from tests.system.harness import SECOND

    ready, done = b"nettest: ready on port %d" % port, b"datagrams in"
    before, finished = guest.serial.count(ready), guest.serial.count(done)
    guest.type(f"nettest {mode} {port} 1000000000 &\n")
    guest.run_until(lambda: guest.serial.count(ready) > before, 10 * SECOND)
    cpu = time.process_time()
    peer = blaster(seconds, rate)
    guest.run_until(lambda: guest.serial.count(done) > finished, 600 * SECOND)
    cpu = time.process_time() - cpu
    assert peer.stdout is not None
    offered = int(peer.stdout.readline() or 0)
    peer.kill()
    peer.wait(timeout=10)
    seen, _, _, micros, _ = _guest_line(guest, b"nettest: received ").split()
    return int(seen), offered, int(micros), cpu


def _ring3_tcp_send(guest, sink: subprocess.Popen[str], address: str, port: int,  # noqa: ANN001
                    size: int) -> tuple[float, float]:
    """`nettest tcpsend` of `size` bytes from ring 3 to `sink`, a peer process that prints the
    bytes it took and its seconds from first to last: (MB/s as the peer timed it, MB per CPU
    second of this process)."""
    from tests.system.harness import SECOND

    assert sink.stdout is not None
    cpu = time.process_time()
    guest.type(f"nettest tcpsend {address} {port} {size >> 10}\n")
    guest.run_until(lambda: sink.poll() is not None or b"nettest: sent" in guest.serial,
                    600 * SECOND)  # fmt: skip
    guest.run_until(lambda: sink.poll() is not None, 60 * SECOND)
    cpu = time.process_time() - cpu
    total, taken = sink.stdout.read().split()
    return int(total) / float(taken) / 1e6, size / cpu / 1e6


def _udp_into_ring3(guest, port: int, blaster, seconds: float, where: str) -> None:  # noqa: ANN001
    """UDP datagrams/s into ring 3, read one per recv and then up to 64 per recvmmsg: the
    highest offered rate of UDP_RATES at which at least UDP_DELIVERED of the datagrams reach
    the program (RFC 2544's throughput, with a loss allowance for the first and last
    datagrams' timing), each rate offered by `blaster(seconds, rate)` (64-byte datagrams, then
    empty ones, which end the count). Beside it: the datagrams the program saw over its own
    time from first to last (virtual = wall here), per CPU second of this process, and what
    reached it at the next rate up (the overload)."""
    for mode, how in (("udprecv", "recv, one per call"),
                      ("udprecvmm", "recvmmsg, up to 64 per call, MSG_WAITFORONE")):
        best = None
        for rate in UDP_RATES:
            seen, offered, micros, cpu = _udp_run(guest, port, mode, blaster, seconds, rate)
            if seen < offered * UDP_DELIVERED:
                over = f"at {rate}/s offered {seen} of {offered} arrived"
                break
            best = (rate, seen, micros, cpu)
        else:
            over = "no loss at any rate tried"
        if best is None:
            print(f"guest udp {where}->ring 3 ({how}): loss already at {UDP_RATES[0]}/s ({over})")
            continue
        rate, seen, micros, cpu = best
        print(f"guest udp {where}->ring 3 ({how}): {rate:6d} datagrams/s without loss "
              f"({seen / max(1, micros) * 1e6:6.0f}/s as the program timed it, "
              f"{seen / cpu:6.0f} per CPU second); {over}")


class _UdpSource:
    """The far end of the cable, in this process: `count` copies of `frame` for the guest,
    `burst` of them at each poll (the guest's idle points), then `ender` at every poll. No host
    network and no peer process: what it measures is the emulator's own cost per datagram, at
    the most it can take (each burst comes as soon as the guest has dealt with the last)."""

    name = "source"

    def __init__(self, frame: bytes, ender: bytes, count: int, burst: int) -> None:
        self.frame, self.ender, self.left, self.burst = frame, ender, count, burst
        self._deliver = None

    def start(self, deliver) -> None:  # noqa: ANN001 - hostnet.link.Deliver
        self._deliver = deliver

    def send(self, frame: bytes) -> None:
        pass

    def poll(self) -> None:
        assert self._deliver is not None
        if not self.left:
            self._deliver(self.ender)
            return
        for _ in range(min(self.burst, self.left)):
            self._deliver(self.frame)
        self.left -= min(self.burst, self.left)

    def filenos(self) -> list[int]:
        return []

    def next_timeout(self) -> float | None:
        return None

    def close(self) -> None:
        pass


def _udp_source_run(guest, mode: str, source: _UdpSource) -> tuple[int, float, float]:  # noqa: ANN001
    """One `nettest MODE` run fed by `source` instead of the cable's backend: (datagrams the
    program counted, CPU seconds of this process, wall seconds)."""
    from tests.system.harness import SECOND

    ready, done = b"nettest: ready on port 5002", b"datagrams in"
    before, finished = guest.serial.count(ready), guest.serial.count(done)
    guest.type(f"nettest {mode} 5002 1000000000 &\n")
    guest.run_until(lambda: guest.serial.count(ready) > before, 10 * SECOND)
    old = guest.link.replace_backend(source)
    cpu, wall = time.process_time(), time.perf_counter()
    guest.run_until(lambda: guest.serial.count(done) > finished, 600 * SECOND)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    guest.link.replace_backend(old)
    return int(_guest_line(guest, b"nettest: received ").split()[0]), cpu, wall


def bench_guest_source(count: int, burst: int) -> None:
    """UDP into ring 3 from an in-process source (see _UdpSource): datagrams per CPU second of
    this process, for both `nettest` readers."""
    import tempfile

    from tests.system.harness import close_pc

    guest = _booted_guest(tempfile.mkdtemp(prefix="tk-bench-src-"), [])
    try:
        mac, me = guest.pc.kernel.net.driver.mac, GUEST
        datagram = pk.Ipv4(GATEWAY, me, pk.PROTO_UDP, pk.Udp(6000, 5002, bytes(64)).build(
            GATEWAY, me)).build()  # fmt: skip
        empty = pk.Ipv4(GATEWAY, me, pk.PROTO_UDP, pk.Udp(6000, 5002, b"").build(GATEWAY, me))
        frame = pk.ethernet(mac, GATEWAY_MAC, pk.ETHERTYPE_IPV4, datagram)
        ender = pk.ethernet(mac, GATEWAY_MAC, pk.ETHERTYPE_IPV4, empty.build())
        for mode, how in (("udprecv", "recv, one per call"),
                          ("udprecvmm", "recvmmsg, up to 64 per call, MSG_WAITFORONE")):
            source = _UdpSource(frame, ender, count, burst)
            seen, cpu, wall = _udp_source_run(guest, mode, source)
            print(f"guest udp in-process source->ring 3 ({how}): {seen / cpu:6.0f} datagrams "
                  f"per CPU second, {seen / wall:6.0f}/s wall ({seen} of {count} in bursts of "
                  f"{burst}; the emulator alone)")
    finally:
        close_pc(guest)


def bench_guest(size_kib: int, seconds: float, pings: int, connections: int,
                udp_only: bool = False) -> None:
    """The booted OS end to end (see the module docstring); only the UDP figures if
    `udp_only`."""
    import tempfile

    from tests.system.harness import SECOND, close_pc

    tmp = tempfile.mkdtemp(prefix="tk-bench-net-")
    guest = _booted_guest(tmp, ["tcp:0-:5001", "udp:0-:5002", "tcp:0-:5004"])
    host = [sys.executable]
    try:
        tcp_port = guest.link.backend.forwards[0].bound_port
        udp_port = guest.link.backend.forwards[1].bound_port
        blaster = lambda t, r: _peer(host, UDP_BLAST, "127.0.0.1", str(udp_port),  # noqa: E731
                                     str(t), str(r))
        if udp_only:
            _udp_into_ring3(guest, 5002, blaster, seconds, "host")
            return
        size = size_kib * 1024
        # host -> guest: the peer process sends; the guest times accept to EOF
        guest.type("nettest tcprecv 5001 &\n")
        guest.run_until(lambda: b"ready on port 5001" in guest.serial, 10 * SECOND)
        cpu = time.process_time()
        source = _peer(host, LINUX_TCP_SOURCE, "127.0.0.1", str(tcp_port), str(size))
        guest.run_until(lambda: b"nettest: received " in guest.serial, 600 * SECOND)
        cpu = time.process_time() - cpu
        source.communicate(timeout=60)
        got, _, _, micros, _ = _guest_line(guest, b"nettest: received ").split()
        stats = guest.pc.kernel.net.driver.stats
        counters = guest.pc.kernel.net.stack.counters
        print(f"guest tcp host->ring 3 {size_kib} KiB: {int(got) / int(micros):7.2f} MB/s, "
              f"{size / cpu / 1e6:5.1f} MB per CPU second (ring overflows {stats['overflows']}, "
              f"frames {stats['rx_frames']}, tcp retransmitted segments "
              f"{counters['tcp.retrans_segs']})")
        # guest -> host: the peer process times first byte to last
        sink = _peer(host, LINUX_TCP_SINK, "127.0.0.1", "0")
        assert sink.stdout is not None
        sink_port = int(sink.stdout.readline().split()[1])
        rate, per_cpu = _ring3_tcp_send(guest, sink, "10.0.2.2", sink_port, size)
        print(f"guest tcp ring 3->host {size_kib} KiB: {rate:7.2f} MB/s, {per_cpu:5.1f} MB "
              f"per CPU second")
        _udp_into_ring3(guest, 5002, blaster, seconds, "host")
        # connections per second: a host client opening, echoing one byte and closing
        conns_port = guest.link.backend.forwards[2].bound_port
        guest.type(f"tcpecho 5004 {connections} &\n")
        guest.run_until(lambda: b"listening on port 5004" in guest.serial, 10 * SECOND)
        opened: list[float] = []
        worker = threading.Thread(target=_connect_loop, daemon=True,
                                  args=("127.0.0.1", conns_port, connections, opened))
        worker.start()
        guest.run_until(lambda: bool(opened), 600 * SECOND)
        worker.join(10)
        print(f"guest tcp connections from the host (hostfwd): {connections / opened[0]:8.0f} /s "
              f"(connect, 1-byte echo, close; {connections} in a row)")
        # ping
        lines = guest.output(f"ping 10.0.2.2 -c {pings}", (pings + 5) * SECOND)
        rtt = [line for line in lines if line.startswith("rtt")]
        print(f"guest ping 10.0.2.2 x{pings}: {rtt[0] if rtt else 'no replies'} (virtual = wall)")
    finally:
        close_pc(guest)


LINUX_TCP_SINK = """
import socket, sys, time
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], int(sys.argv[2])))
srv.listen(1)
print("ready", srv.getsockname()[1], flush=True)
conn, _ = srv.accept()
total, first = 0, None
while chunk := conn.recv(1 << 16):
    first = first or time.perf_counter()
    total += len(chunk)
print(total, time.perf_counter() - first, flush=True)
"""
LINUX_TCP_SOURCE = """
import socket, sys
data = bytes(int(sys.argv[3]))
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=60) as peer:
    peer.sendall(data)
"""
LINUX_CONNECT_LOOP = """
import socket, sys, time
start = time.perf_counter()
for _ in range(int(sys.argv[3])):
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30) as peer:
        peer.sendall(b"x")
        peer.recv(1)
print(time.perf_counter() - start, flush=True)
"""
UDP_BLAST = """
import socket, sys, time
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
target, payload = (sys.argv[1], int(sys.argv[2])), bytes(64)
sent, now = 0, time.monotonic()
end, interval, due = now + float(sys.argv[3]), 64 / float(sys.argv[4]), now
while time.monotonic() < end:
    for _ in range(64):
        try:
            sock.sendto(payload, target)
            sent += 1
        except OSError:  # ENOBUFS: the receiver's queue is full, as it is meant to be
            pass
    due += interval  # paced: a sender flat out would take a core from the emulator
    time.sleep(max(0.0, due - time.monotonic()))
print(sent, flush=True)
for _ in range(3000):  # empty datagrams end the receiver's count
    sock.sendto(b"", target)
    time.sleep(0.01)
"""
UDP_RATES = (5_000, 10_000, 15_000, 20_000, 30_000, 40_000, 50_000, 70_000)  # offered, /s
UDP_SOURCE_BURST = 32  # datagrams the in-process source hands over at each idle point
UDP_DELIVERED = 0.99  # the share that must reach the program for a rate to count as carried


def reference_loopback(size: int) -> None:
    """The same Python sender and receiver as the Linux peers below, over the host's loopback:
    the most those peers can move, measured in this run."""
    server = socket.create_server(("127.0.0.1", 0))
    result: list[float] = []

    def sink() -> None:
        conn, _ = server.accept()
        total, first = 0, 0.0
        while chunk := conn.recv(1 << 16):
            first = first or time.perf_counter()
            total += len(chunk)
        result.append(total / (time.perf_counter() - first))

    thread = threading.Thread(target=sink, daemon=True)
    thread.start()
    with socket.create_connection(server.getsockname()) as peer:
        peer.sendall(bytes(size))
    thread.join(60)
    server.close()
    print(f"reference: Python TCP over host loopback {size >> 20} MiB: "
          f"{result[0] / 1e6:8.1f} MB/s")  # fmt: skip


def _guest_line(guest, marker: bytes) -> str:  # noqa: ANN001 - tests.system.harness.BootedPc
    return bytes(guest.serial).decode("cp437").split(marker.decode())[-1].splitlines()[0]


def _ping_figures(output: str) -> str:
    """Median and p99 of the per-reply times Linux's ping printed (milliseconds)."""
    times = sorted(float(word[5:]) for word in output.split() if word.startswith("time="))
    if not times:
        return "no replies"
    p99 = times[max(0, int(len(times) * 0.99) - 1)]
    return (f"median {statistics.median(times) * 1000:6.0f} us, p99 {p99 * 1000:6.0f} us "
            f"({len(times)} replies)")


def bench_guest_tap(size: int, seconds: float, pings: int, connections: int,
                    udp_only: bool = False) -> None:
    """The booted OS on a TAP whose far end is Linux in a network namespace: TCP each way
    between ring-3 `nettest` and a Python peer there, UDP datagrams/s into `nettest udprecv`
    and `nettest udprecvmm` (only those if `udp_only`)."""
    if os.geteuid() != 0 or not os.path.exists("/dev/net/tun"):
        print("guest over tap: skipped (needs root and /dev/net/tun)")
        return
    import tempfile

    from tests.system.harness import SECOND, BootedPc, close_pc
    from tradekernel import hostnet

    suffix = uuid.uuid4().hex[:6]
    ns, tap = f"tkbg{suffix}", f"tkbgt{suffix}"
    linux, me = "10.196.0.1", "10.196.0.2"
    guest = BootedPc(Path(tempfile.mkdtemp(prefix="tk-bench-tap-")),
                     net=hostnet.NetOptions(f"tap:{tap}"), deterministic=False)  # fmt: skip
    procs: list[subprocess.Popen[str]] = []

    def spawn(*argv: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(["ip", "netns", "exec", ns, "python3", "-c", *argv], text=True,
                                stdout=subprocess.PIPE)  # fmt: skip
        procs.append(proc)
        return proc

    try:
        _ip("netns", "add", ns)
        _ip("link", "set", tap, "netns", ns)
        _ip("-n", ns, "addr", "add", f"{linux}/24", "dev", tap)
        _ip("-n", ns, "link", "set", tap, "up")
        guest.boot()
        guest.command(f"ifconfig eth0 {me}/24")
        blaster = lambda t, r: spawn(UDP_BLAST, me, "5002", str(t), str(r))  # noqa: E731
        if udp_only:
            _udp_into_ring3(guest, 5002, blaster, seconds, "Linux(netns)")
            return
        # Linux -> ring 3
        guest.type("nettest tcprecv 5001 &\n")
        guest.run_until(lambda: b"ready on port 5001" in guest.serial, 10 * SECOND)
        cpu = time.process_time()
        spawn(LINUX_TCP_SOURCE, me, "5001", str(size))
        guest.run_until(lambda: b"nettest: received " in guest.serial, 600 * SECOND)
        cpu = time.process_time() - cpu
        got, _, _, micros, _ = _guest_line(guest, b"nettest: received ").split()
        stats = guest.pc.kernel.net.driver.stats
        print(f"guest tcp Linux(netns)->ring 3 {size >> 20} MiB: "
              f"{int(got) / int(micros):7.2f} MB/s, {size / cpu / 1e6:5.1f} MB per CPU second "
              f"(tap; ring overflows {stats['overflows']}, "
              f"retransmitted segments {guest.pc.kernel.net.stack.counters['tcp.retrans_segs']})")
        # ring 3 -> Linux
        sink = spawn(LINUX_TCP_SINK, linux, "5003")
        assert sink.stdout is not None and sink.stdout.readline().startswith("ready")
        rate, per_cpu = _ring3_tcp_send(guest, sink, linux, 5003, size)
        print(f"guest tcp ring 3->Linux(netns) {size >> 20} MiB: {rate:7.2f} MB/s, "
              f"{per_cpu:5.1f} MB per CPU second (tap)")
        _udp_into_ring3(guest, 5002, blaster, seconds, "Linux(netns)")
        # Linux's ping to the guest's kernel, and the guest shell's ping to Linux
        pinger = subprocess.Popen(["ip", "netns", "exec", ns, "ping", "-n", "-c", str(pings),
                                   "-i", "0.01", me], text=True, stdout=subprocess.PIPE)
        procs.append(pinger)
        guest.run_until(lambda: pinger.poll() is not None, (pings + 30) * SECOND)
        assert pinger.stdout is not None
        print(f"ping Linux(netns)->guest over tap: {_ping_figures(pinger.stdout.read())} (wall)")
        lines = guest.output(f"ping {linux} -c {min(pings, 20)}", (pings + 5) * SECOND)
        rtt = [line for line in lines if line.startswith("rtt")]
        print(f"ping guest->Linux(netns) over tap: {rtt[0] if rtt else 'no replies'} "
              f"(virtual = wall)")
        # connections per second opened by Linux
        guest.type(f"tcpecho 5004 {connections} &\n")
        guest.run_until(lambda: b"listening on port 5004" in guest.serial, 10 * SECOND)
        looper = spawn(LINUX_CONNECT_LOOP, me, "5004", str(connections))
        guest.run_until(lambda: looper.poll() is not None, 600 * SECOND)
        assert looper.stdout is not None
        seconds = float(looper.stdout.read().split()[0])
        print(f"guest tcp connections from Linux(netns): {connections / seconds:8.0f} /s "
              f"(connect, 1-byte echo, close; {connections} in a row; tap)")
    finally:
        for proc in procs:
            proc.kill()
            proc.communicate(timeout=10)
        close_pc(guest)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (2 MiB transfers)")
    parser.add_argument("--guest-only", action="store_true",
                        help="only the booted-OS figures and their loopback reference")  # fmt: skip
    parser.add_argument("--udp-only", action="store_true",
                        help="only the booted OS's UDP-into-ring-3 figures (NAT and TAP)")
    args = parser.parse_args()
    quick = args.quick
    size = (2 if quick else 10) << 20
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    if args.udp_only:
        bench_rx_path(0.5 if quick else 2.0)
        bench_guest_source(20_000 if quick else 100_000, UDP_SOURCE_BURST)
        bench_guest(0, 1.0 if quick else 2.0, 0, 0, udp_only=True)
        bench_guest_tap(0, 1.0 if quick else 2.0, 0, 0, udp_only=True)
        return
    if not args.guest_only:
        bench_nic(0.5 if quick else 2.0)
        bench_rx_path(0.5 if quick else 2.0)
        bench_nat_tcp((4 if quick else 16) << 20)
        bench_nat_udp(5_000 if quick else 50_000)
        bench_tap_ping(200 if quick else 2000)
        bench_veth(64 if quick else 512)
    reference_loopback(size)
    connections = 50 if quick else 500
    blast = 1.0 if quick else 2.0  # seconds each UDP blaster sends (at each rate)
    bench_guest(size >> 10, blast, 5 if quick else 20, connections)
    bench_guest_tap(size, blast, 200 if quick else 1000, connections)


if __name__ == "__main__":
    main()
