"""Costs of observability (issue 21): what the audit log adds to order entry, what the
persistent kernel log costs per entry, and what the profiler costs while on (and, off, that
it costs nothing: the same runs with it never started).

1. Order entry: a TradingEngine fed a stream of resting and crossing orders, bare (nobody
   listening: the engine builds no events), with the audit log attached but its records
   dropped (building the order events, submitted to filled, and encoding them alone: the
   audit log does not listen to book events, so the engine builds none), and with its
   records written through kernel/obs/rotating.py to a FAT16 volume in memory, one flush
   per batch of BATCH orders (as deferred work batches them in the OS).
2. Kernel log entries per second into /var/log/kern.log (same volume), written in batches.
3. On the booted OS (tests' harness, real-time clock): `spin N` wall time and `sysbench
   getpid N` (system calls through the trap fast path) with the profiler off, then on.

Run: .venv/bin/python bench/bench_obs.py [--orders N]
Wall-clock figures: on a shared host note the load average it prints.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.system.harness import BootedPc  # noqa: E402
from tradekernel.kernel.drivers.blockdev import MemoryBlockDevice  # noqa: E402
from tradekernel.kernel.fs.fat import FatFs, mkfs  # noqa: E402
from tradekernel.kernel.log import KernelLog  # noqa: E402
from tradekernel.kernel.obs.persist import PersistentLog  # noqa: E402
from tradekernel.kernel.obs.rotating import RotatingFile  # noqa: E402
from tradekernel.kernel.trading.audit import AUDIT_BYTES, AUDIT_KEEP, AUDIT_PATH, AuditLog  # noqa: E402
from tradekernel.kernel.trading.book import BUY, SELL  # noqa: E402
from tradekernel.kernel.trading.engine import TradingEngine  # noqa: E402

BATCH = 10  # orders per deferred flush of the audit log
VOLUME_BYTES = 64 * 1024 * 1024


def volume() -> FatFs:
    device = MemoryBlockDevice(VOLUME_BYTES)
    mkfs(device, fat_type=16)
    return FatFs(device)


def order_stream(engine: TradingEngine, count: int, after_batch) -> float:  # noqa: ANN001
    start = time.perf_counter()
    for n in range(count):
        side = BUY if n % 2 else SELL
        price = 10_000 + (n % 7) - 3
        engine.submit("alice" if n % 3 else "bob", "AAPL", side, 1 + n % 5, price)
        if n % BATCH == BATCH - 1:
            after_batch()
    return count / (time.perf_counter() - start)


class NullStore:
    """Takes records and drops them: what event building and encoding cost alone."""

    broken = None

    def append(self, data: bytes) -> bool:
        return True

    def sync(self) -> None:
        pass


def audited_rate(store, count: int) -> tuple[float, AuditLog]:  # noqa: ANN001
    deferred: list = []
    audit = AuditLog(store, deferred.append, print)
    engine = TradingEngine(lambda: 0)
    audit.attach(engine.bus)

    def run_deferred() -> None:
        while deferred:
            deferred.pop()()

    rate = order_stream(engine, count, run_deferred)
    run_deferred()
    return rate, audit


def bench_orders(count: int) -> None:
    bare = order_stream(TradingEngine(lambda: 0), count, lambda: None)
    encoded, _ = audited_rate(NullStore(), count)
    fs = volume()
    audited, audit = audited_rate(RotatingFile(fs, AUDIT_PATH, AUDIT_BYTES, AUDIT_KEEP), count)
    print(f"order entry, {count} orders: bare {bare:,.0f}/s; audit records built and encoded "
          f"but not written {encoded:,.0f}/s ({bare / encoded:.1f}x the bare cost); audited "
          f"to a FAT volume in memory {audited:,.0f}/s ({bare / audited:.1f}x; {audit.written} "
          f"records, one write and flush per {BATCH} orders)")  # fmt: skip


def bench_klog(count: int) -> None:
    fs = volume()
    deferred: list = []
    klog = KernelLog(lambda: 0, lambda text: None)
    persistent = PersistentLog(fs, klog, deferred.append)
    persistent.start("boot", 0)
    start = time.perf_counter()
    for n in range(count):
        klog.info("bench", f"entry {n} with some text to it")
        if n % BATCH == BATCH - 1:
            while deferred:
                deferred.pop()()
    rate = count / (time.perf_counter() - start)
    print(f"kernel log to /var/log/kern.log: {rate:,.0f} entries/s (batches of {BATCH}, "
          f"{persistent.file.rotations} rotations)")  # fmt: skip


def timed_command(tk: BootedPc, line: str) -> float:
    """CPU seconds of this process (the machine's threads included) for one command: steadier
    than wall time on a shared host."""
    start = time.process_time()
    tk.command(line, 600 * 10**9)
    return time.process_time() - start


def bench_profiler() -> None:
    with tempfile.TemporaryDirectory() as folder:
        tk = BootedPc(Path(folder), deterministic=False).boot()
        profiler = tk.pc.kernel.obs.profiler
        figures = {}
        for state in ("off", "on", "off again"):
            if state == "on":
                profiler.start()
            spin = timed_command(tk, "spin 50")
            calls = timed_command(tk, "sysbench getpid 100000")
            if state == "on":
                profiler.stop()
                samples = sum(profiler.samples.values())
            figures[state] = (spin, calls)
            print(f"profiler {state:9}: spin 50 (5e7 loop iterations) {spin:.2f} CPU s, "
                  f"sysbench getpid 100000 {calls:.2f} CPU s")  # fmt: skip
        print(f"  ({samples} samples while on; the sampling timer and the wrappers are gone "
              "once stopped)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=50_000)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    bench_orders(args.orders)
    bench_klog(args.orders // 5)
    bench_profiler()


if __name__ == "__main__":
    main()
