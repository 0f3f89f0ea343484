"""The system's counters in one place: what `vmstat`, `top` and a /proc listing show.

`sample(kernel)` reads every cumulative counter the services keep (interrupts per IRQ line,
context switches, system calls, page faults by kind, kernel log entries, network packets and
bytes, memory in use) into a plain, immutable `Counters`; `rates(earlier, later)` turns two
samples into per-second figures over the virtual time between them. Reading costs a few
attribute loads and the memory statistics: nothing is counted here, so nothing is paid while
nobody looks.

Counters come from: the kernel's IRQ counts (main.py), the process manager's context switches,
the system-call table's per-number counts (proc/syscalls.py), the paging layer's fault counts
(mm/paging.py), the heap and frame allocators, the network stack's interface counters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class Counters:
    time_ns: int  # virtual time of the sample
    interrupts: dict[int, int] = field(default_factory=dict)  # IRQ line -> taken since boot
    context_switches: int = 0
    syscalls: int = 0
    page_faults: dict[str, int] = field(default_factory=dict)  # kind -> count
    log_entries: int = 0
    rx_packets: int = 0
    rx_bytes: int = 0
    tx_packets: int = 0
    tx_bytes: int = 0
    heap_used: int = 0
    heap_total: int = 0
    frames_used: int = 0
    frames_total: int = 0
    processes: int = 0
    running: int = 0  # ready or running

    @property
    def total_interrupts(self) -> int:
        return sum(self.interrupts.values())

    @property
    def total_page_faults(self) -> int:
        return sum(self.page_faults.values())

    def lines(self) -> list[str]:
        """Every counter since boot, one a line, as `vmstat -s` lists them (and a /proc file
        could: the counters come by a callable, since fs must not import kernel/obs)."""
        lines = [f"{self.time_ns / 1e9:14.3f} seconds since boot (virtual)"]
        lines += [f"{count:14d} interrupts on IRQ {irq}"
                  for irq, count in self.interrupts.items() if count]  # fmt: skip
        lines += [
            f"{self.total_interrupts:14d} interrupts",
            f"{self.context_switches:14d} context switches",
            f"{self.syscalls:14d} system calls",
        ]
        lines += [f"{count:14d} page faults: {kind}" for kind, count in self.page_faults.items()]
        lines += [
            f"{self.total_page_faults:14d} page faults",
            f"{self.log_entries:14d} kernel log entries",
            f"{self.rx_packets:14d} packets received",
            f"{self.rx_bytes:14d} bytes received",
            f"{self.tx_packets:14d} packets sent",
            f"{self.tx_bytes:14d} bytes sent",
            f"{self.heap_used // 1024:14d} KiB kernel heap used",
            f"{self.heap_total // 1024:14d} KiB kernel heap total",
            f"{self.frames_used:14d} page frames used",
            f"{self.frames_total:14d} page frames total",
            f"{self.processes:14d} processes",
        ]
        return lines


@dataclass(frozen=True)
class Rates:
    """Per second of virtual time between two samples."""

    seconds: float
    interrupts: float
    context_switches: float
    syscalls: float
    page_faults: float
    rx_packets: float
    rx_bytes: float
    tx_packets: float
    tx_bytes: float


def sample(kernel) -> Counters:  # noqa: ANN001 - kernel.main.Kernel
    """Every counter now (services that are not up yet count as zero)."""
    values: dict[str, object] = {
        "time_ns": kernel.clock.now_ns(),
        "interrupts": dict(enumerate(kernel.irq_counts)),
        "log_entries": sum(kernel.klog.counts.values()),
    }
    processes = kernel.processes
    if processes is not None:
        values["context_switches"] = processes.context_switches
        values["processes"] = len(processes.table)
        values["running"] = processes.scheduler.ready_count() + (processes.current is not None)
    if kernel.syscall_entry is not None:
        values["syscalls"] = sum(kernel.syscall_entry.syscalls.counts.values())
    if kernel.mm is not None:
        heap = kernel.mm.heap.memstats()
        paging = kernel.mm.paging.pgstats()
        values.update(
            heap_used=heap.used, heap_total=heap.total, page_faults=dict(paging.faults),
            frames_used=paging.frames_used, frames_total=paging.frames_total,
        )  # fmt: skip
    stack = getattr(getattr(kernel, "net", None), "stack", None)
    if stack is not None:
        interface = stack.interface()
        for name in ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes"):
            values[name] = interface[name]
    return Counters(**values)  # type: ignore[arg-type]


def rates(earlier: Counters, later: Counters) -> Rates:
    seconds = max(1, later.time_ns - earlier.time_ns) / NS_PER_S

    def per_second(a: int, b: int) -> float:
        return max(0, b - a) / seconds

    return Rates(
        seconds=seconds,
        interrupts=per_second(earlier.total_interrupts, later.total_interrupts),
        context_switches=per_second(earlier.context_switches, later.context_switches),
        syscalls=per_second(earlier.syscalls, later.syscalls),
        page_faults=per_second(earlier.total_page_faults, later.total_page_faults),
        rx_packets=per_second(earlier.rx_packets, later.rx_packets),
        rx_bytes=per_second(earlier.rx_bytes, later.rx_bytes),
        tx_packets=per_second(earlier.tx_packets, later.tx_packets),
        tx_bytes=per_second(earlier.tx_bytes, later.tx_bytes),
    )
