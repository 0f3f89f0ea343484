"""Kernel heap throughput and fragmentation, from Python, on a bytearray standing in for RAM.

    .venv/bin/python bench/bench_heap.py [--quick]

Figures: kmalloc/kfree pairs per second with the memoryview fast path (what the machine gives:
`memory.view()` is a memoryview over the very buffer Unicorn maps as guest RAM with
mem_map_ptr) and with the plain read/write protocol; a mixed workload's operations per second
and the fragmentation it leaves; the cost of memcheck. A "floor" line times an empty method
pair on this machine so figures from different hosts can be compared. Last, the same pairs
made by guest code through the KMALLOC/KFREE hypercalls of a booted kernel's heap.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import random
import time

from tradekernel.devices.power import PowerControl
from tradekernel.emu.cpu import EIP
from tradekernel.emu.machine import Machine, MachineConfig
from tradekernel.hypercall import HYPERCALL_PORT_BASE, Hypercall
from tradekernel.kernel.mm.heap import KernelHeap, OutOfMemory, format_memstats
from tradekernel.kernel.mm.memory import KernelMemory
from tradekernel.memmap import KERNEL_HEAP_BASE, KERNEL_HEAP_SIZE

RAM = 32 << 20


class PlainRam:
    def __init__(self, size: int) -> None:
        self.data = bytearray(size)

    def read(self, address: int, size: int) -> bytes:
        return bytes(self.data[address : address + size])

    def write(self, address: int, data: bytes) -> None:
        self.data[address : address + len(data)] = data


class ViewRam(PlainRam):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self._view = memoryview(self.data)

    def view(self) -> memoryview:
        return self._view


def best_rate(run, count: int, repeats: int) -> float:
    """Operations per second of the fastest of `repeats` runs (the least disturbed one)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run(count)
        best = min(best, time.perf_counter() - start)
    return count / best


def pairs(heap: KernelHeap, size: int):
    kmalloc, kfree = heap.kmalloc, heap.kfree

    def run(count: int) -> None:
        for _ in range(count):
            kfree(kmalloc(size, "bench"))

    return run


def floor() -> float:
    class Empty:
        def kmalloc(self, size: int, tag: str) -> int:
            return size

        def kfree(self, pointer: int) -> None:
            return None

    empty = Empty()
    kmalloc, kfree = empty.kmalloc, empty.kfree

    def run(count: int) -> None:
        for _ in range(count):
            kfree(kmalloc(64, "bench"))

    return best_rate(run, 200_000, 5)


def mixed_workload(heap: KernelHeap, operations: int, seed: int = 1) -> tuple[float, int]:
    """Random sizes (mostly small, some pages), frees in random order, about 2000 live."""
    rng = random.Random(seed)
    live: list[int] = []
    tags = ["net", "fs", "proc", "tty", "book"]
    sizes = [rng.choice((16, 24, 32, 48, 64, 96, 128, 200, 256, 512, 1500, 4096, 9000))
             for _ in range(operations)]  # fmt: skip
    coins = [rng.random() for _ in range(operations)]
    failures = 0
    start = time.perf_counter()
    for size, coin in zip(sizes, coins, strict=True):
        if live and (coin < 0.45 or len(live) > 2000):
            index = int(coin * 1_000_003) % len(live)
            live[index], live[-1] = live[-1], live[index]
            heap.kfree(live.pop())
        else:
            try:
                live.append(heap.kmalloc(size, tags[size % 5]))
            except OutOfMemory:
                failures += 1
    elapsed = time.perf_counter() - start
    return operations / elapsed, failures


def hypercall_pairs(count: int) -> float:
    """Guest code in a loop: EBX=64, KMALLOC, EBX=result, KFREE; then ACPI power-off."""
    machine = Machine(MachineConfig())
    machine.add(PowerControl())
    memory = KernelMemory(machine.memory, machine.cpu.ram_bytes, lambda: 0, lambda cr3: None)
    machine.register_hypercall(Hypercall.KMALLOC, memory.hypercall_kmalloc)
    machine.register_hypercall(Hypercall.KFREE, memory.hypercall_kfree)
    kmalloc = (HYPERCALL_PORT_BASE + Hypercall.KMALLOC).to_bytes(2, "little")
    kfree = (HYPERCALL_PORT_BASE + Hypercall.KFREE).to_bytes(2, "little")
    body = (
        b"\xbb\x40\x00\x00\x00"
        + b"\x66\xba"
        + kmalloc
        + b"\xed"  # mov ebx,64; in
        + b"\x89\xc3"
        + b"\x66\xba"
        + kfree
        + b"\xed"
        + b"\x49"
    )  # mov ebx,eax; in; dec
    code = (
        b"\xb9"
        + count.to_bytes(4, "little")
        + body
        + b"\x75"
        + bytes([(-(len(body) + 2)) & 0xFF])  # jnz loop
        + b"\x66\xba\x04\x06\x66\xb8\x00\x20\x66\xef\xf4"
    )  # ACPI S5
    machine.cpu.ram[0x10000 : 0x10000 + len(code)] = code  # fmt: skip
    machine.cpu.write(EIP, 0x10000)
    start = time.perf_counter()
    stop = machine.run(wall_timeout_s=120)
    elapsed = time.perf_counter() - start
    machine.close()
    if stop.reason != "poweroff" or memory.heap.memstats().used != 0:
        raise SystemExit(f"hypercall bench went wrong: {stop}")
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    args = parser.parse_args()
    count = 50_000 if args.quick else 300_000
    repeats = 3 if args.quick else 7
    clock = itertools.count().__next__

    print(f"python {platform.python_version()} on {platform.machine()}")
    print(f"floor (empty method pair)        {floor():>12,.0f} pairs/s")
    for label, memory in (("memoryview", ViewRam(RAM)), ("plain read/write", PlainRam(RAM))):
        heap = KernelHeap(memory, clock, KERNEL_HEAP_BASE, KERNEL_HEAP_SIZE)
        for size in (64, 1024):
            rate = best_rate(pairs(heap, size), count, repeats)
            print(f"kmalloc({size})/kfree, {label:<16} {rate:>10,.0f} pairs/s")

    heap = KernelHeap(ViewRam(RAM), clock, KERNEL_HEAP_BASE, KERNEL_HEAP_SIZE)
    operations = 40_000 if args.quick else 200_000
    rate, failures = mixed_workload(heap, operations)
    stats = heap.memstats()
    print(f"mixed workload ({operations} ops, ~2000 live)  {rate:>10,.0f} ops/s, "
          f"{failures} out-of-memory")  # fmt: skip
    for line in format_memstats(stats):
        print(line)
    start = time.perf_counter()
    result = heap.memcheck()
    elapsed_ms = (time.perf_counter() - start) * 1000
    print(f"memcheck over {result.blocks} blocks: {'OK' if result.ok else 'FAILED'} "
          f"in {elapsed_ms:.1f} ms")  # fmt: skip
    rate = hypercall_pairs(count // 3)
    print(f"kmalloc(64)/kfree from guest code via hypercalls {rate:>10,.0f} pairs/s")


if __name__ == "__main__":
    main()
