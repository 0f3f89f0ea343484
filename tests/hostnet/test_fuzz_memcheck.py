"""Nothing leaks after hostile packets: a booted OS (--net user, deterministic) with ring-3
programs holding a TCP listener and a UDP socket takes a seeded burst of scapy-crafted frames
through the NE2000 (a SYN flood, overlapping and never-completed fragments, bad checksums and
lying lengths, out-of-window and stray TCP segments, ARP from strangers, echo requests,
garbage and truncations); then the programs are killed and the machine runs past every
protocol timeout (SYN-RECEIVED retries, reassembly, ARP).

Asserted, as tests/fuzz/test_hostile_programs.py does for system calls: the shell's
`memcheck` reports OK, nothing is left on the kernel heap and every page frame is free again,
no oops; and the stack is back where it started: no TCB, listener, reassembly queue or
unanswered ARP request, no UDP port but the kernel's own, no more pending timers than before."""

from __future__ import annotations

import random
import re
from pathlib import Path

from scapy.layers.inet import ICMP, IP, TCP, UDP, fragment
from scapy.layers.l2 import ARP, Ether

from tests.system.harness import SECOND, BootedPc, close_pc
from tradekernel import hostnet

OURS, PEER = "52:54:00:12:34:56", "52:55:0a:00:02:02"
GUEST, GATEWAY = "10.0.2.15", "10.0.2.2"
QUIET_S = 200  # virtual seconds past the burst: beyond every SYN-RECEIVED, reassembly, ARP timer


def hostile_frames(seed: int) -> list[bytes]:
    rng = random.Random(seed)
    eth = Ether(src=PEER, dst=OURS)
    ip = IP(src=GATEWAY, dst=GUEST)
    frames = [bytes(eth / ip / TCP(sport=rng.randrange(1024, 65535), dport=7000, flags="S",
                                   seq=rng.randrange(1 << 32))) for _ in range(300)]  # SYN flood
    frames += [bytes(eth / ip / TCP(sport=rng.randrange(1024, 65535), dport=7000, flags="A",
                                    seq=rng.randrange(1 << 32), ack=rng.randrange(1 << 32))
                     / rng.randbytes(rng.randrange(0, 1400))) for _ in range(100)]  # stray data
    for ident in range(40):  # overlapping pieces, and datagrams whose last piece never comes
        pieces = fragment(IP(src=GATEWAY, dst=GUEST, id=1000 + ident) / UDP(dport=9000)
                          / rng.randbytes(3000), fragsize=rng.choice((256, 512, 1024)))
        if ident % 2:
            pieces = pieces[:-1]
        else:
            pieces = pieces + [pieces[0].copy()]
            pieces[-1].frag += 1  # overlaps its neighbour with different bytes
        frames += [bytes(eth / piece) for piece in pieces]
    frames += [bytes(eth / IP(src=GATEWAY, dst=GUEST, chksum=0xBEEF) / UDP(dport=9000) / b"x"),
               bytes(eth / ip / UDP(dport=9000, chksum=0x1234) / b"bad checksum"),
               bytes(eth / IP(src=GATEWAY, dst=GUEST, len=60000) / UDP(dport=9000) / b"lie"),
               bytes(eth / IP(src=GATEWAY, dst=GUEST, ihl=15) / b"short options"),
               bytes(eth / ip / TCP(dport=7000, flags="A", dataofs=15) / b"bad offset")]
    frames += [bytes(eth / ip / UDP(sport=rng.randrange(1, 65535), dport=9000)
                     / rng.randbytes(rng.randrange(0, 1400))) for _ in range(200)]  # for nettest
    frames += [bytes(eth / ip / UDP(dport=rng.randrange(1, 65535)) / b"closed port")
               for _ in range(50)]
    frames += [bytes(Ether(src=f"02:00:00:00:00:{i:02x}", dst="ff:ff:ff:ff:ff:ff")
                     / ARP(op=rng.choice((1, 2)), hwsrc=f"02:00:00:00:00:{i:02x}",
                           psrc=f"10.0.2.{100 + i}", pdst=rng.choice((GUEST, "10.0.2.77"))))
               for i in range(100)]  # strangers' ARP
    frames += [bytes(eth / ip / ICMP(id=i, seq=i) / rng.randbytes(56)) for i in range(50)]
    garbage = [bytes.fromhex(OURS.replace(":", "")) + rng.randbytes(rng.randrange(0, 1500))
               for _ in range(200)]
    frames += garbage + [frame[: rng.randrange(1, len(frame))] for frame in frames[:300]]
    rng.shuffle(frames)
    return frames


def test_hostile_packets_leave_no_kernel_memory_or_stack_state_behind(tmp_path: Path) -> None:
    tk = BootedPc(tmp_path, net=hostnet.NetOptions("user"))
    try:
        tk.boot()
        kernel = tk.pc.kernel
        stack = kernel.net.stack
        tk.run_until(lambda: stack.addr != 0, 20 * SECOND)
        tk.output("hello")  # the first program's page tables and caches, before the baseline
        tk.output("echo settled")  # (and hello's frames released by a later kernel entry)
        free_frames = kernel.mm.frames.free_count
        ports = {port: len(users) for port, users in stack.udp.ports.items()}
        timers = sum(not entry[2].cancelled for entry in stack.timers._heap)
        tk.type("tcpecho 7000 &\n")
        tk.run_until(lambda: b"listening on port 7000" in tk.serial, 10 * SECOND)
        tk.type("nettest udprecv 9000 100000 &\n")
        tk.run_until(lambda: b"ready on port 9000" in tk.serial, 10 * SECOND)
        frames = hostile_frames(18)
        for start in range(0, len(frames), 100):  # 100 at once overflows the card's ring
            for frame in frames[start:start + 100]:
                tk.machine.channels.send("net0-receive", frame)
            idle = tk.machine.idle_count
            tk.run_until(lambda idle=idle: tk.machine.idle_count > idle, SECOND)
        assert stack.counters["tcp.in_segs"] > 100 and stack.counters["udp.in_datagrams"] > 50
        assert stack.reasm.queues  # the unfinished datagrams wait for their last piece
        tk.output("kill %1 %2")
        clock = tk.machine.clock
        quiet = clock.now_ns() + QUIET_S * SECOND
        tk.run_until(lambda: clock.now_ns() >= quiet, (QUIET_S + 10) * SECOND)

        assert not kernel.processes.table, [(p.name, p.state) for p in
                                            kernel.processes.table.values()]
        assert any(re.match(r"memcheck: .*: OK$", line) for line in tk.output("memcheck"))
        assert kernel.mm.heap.memstats().live == 0  # no kernel stack or socket state kept
        assert kernel.mm.frames.free_count == free_frames
        assert kernel.klog.oopses == 0 and stack.counters["stack.internal_errors"] == 0
        assert not stack.tcp.conns and not stack.tcp.listeners and not stack.tcp.bound
        assert not stack.reasm.queues and stack.reasm.memory == 0
        assert {port: len(users) for port, users in stack.udp.ports.items()} == ports
        assert not [entry for entry in stack.arp.cache.values() if getattr(entry, "queue", None)]
        assert sum(not entry[2].cancelled for entry in stack.timers._heap) <= timers
        assert "2 received" in "\n".join(tk.output(f"ping {GATEWAY} -c 2", 10 * SECOND))
    finally:
        close_pc(tk)
