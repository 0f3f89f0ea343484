"""`top`: the processes and their share of the CPU, refreshed live, full screen.

Every REFRESH_NS of virtual time the table is redrawn with each process's CPU share over the
last interval (its CPU time delta over the wall delta), the state and scheduling class, and
the share of PID 0, the kernel's own context, shown as idle: it is the entry stub's `hlt`
loop (kernel work done for a process, its system calls and faults, is charged to that
process; the deferred work PID 0 also runs costs next to nothing in virtual time). Under the CPU
line, memory (kernel heap and page frames in use) and the network's receive and transmit rates
over the interval (kernel/obs/counters.py). `q` (or Esc, or Ctrl-C) leaves and puts the screen
back. It runs from the kernel's timer list and deferred work, so it never holds the CPU between
refreshes.

`vmstat [-s] [DELAY [COUNT]]`, here too because it reads the same counters: a row of rates per
second of virtual time (interrupts, context switches, system calls, page faults, network bytes),
the first since boot, then one every DELAY seconds, COUNT rows (until q without COUNT); `-s`
lists every counter since boot instead, interrupts per IRQ line included.
"""

from __future__ import annotations

from tradekernel.kernel.drivers.console import COLUMNS, ROWS
from tradekernel.kernel.drivers.keyboard import Key
from tradekernel.kernel.obs.counters import Counters, Rates, rates
from tradekernel.kernel.shell.shell import Output, Shell, UsageError, plural

REFRESH_NS = 500_000_000
HEADER_ATTR, ROW_ATTR, KERNEL_ATTR = 0x70, 0x07, 0x08


class Top:
    def __init__(self, kernel) -> None:  # noqa: ANN001 - kernel.main.Kernel
        self.kernel = kernel
        self.console = kernel.console
        self.running = False
        self._saved: list[tuple[int, int]] = []
        self._saved_cursor = (0, 0)
        self._last_ns = 0
        self._last_cpu: dict[int, int] = {}
        self._last_kernel_ns = 0
        self._last_counters: Counters | None = None

    def register(self, shell) -> None:  # noqa: ANN001 - kernel.shell.Shell
        shell.register("top", self._command, "top", "processes by CPU share, live (q leaves)")

    def _command(self, args: list[str], out: Output) -> int:
        if args:
            raise UsageError(f"unexpected argument {args[0]!r}")
        if self.running:
            raise UsageError("top is already running")
        console = self.console
        self._saved = [console.cell(r, c) for r in range(ROWS) for c in range(COLUMNS)]
        self._saved_cursor = (console.row, console.col)
        self.running = True
        self.kernel.shell.suspend_prompt()
        self.kernel.tty.raw_reader = lambda key: self.kernel.defer(lambda: self._key(key))
        self._sample()
        self._draw({}, 0, None)
        self.kernel.call_at(self.kernel.clock.now_ns() + REFRESH_NS, self._refresh)
        return 0

    def _sample(self) -> None:
        processes = self.kernel.processes
        self._last_ns = self.kernel.clock.now_ns()
        self._last_cpu = {pid: p.cpu_ns for pid, p in processes.table.items()}
        self._last_kernel_ns = processes.kernel_cpu_ns
        self._last_counters = self.kernel.obs.counters()

    def _refresh(self) -> None:
        if not self.running:
            return
        processes = self.kernel.processes
        now = self.kernel.clock.now_ns()
        interval = max(1, now - self._last_ns)
        shares = {
            pid: (p.cpu_ns - self._last_cpu.get(pid, 0)) * 100 / interval
            for pid, p in processes.table.items()
        }
        kernel_share = (processes.kernel_cpu_ns - self._last_kernel_ns) * 100 / interval
        earlier = self._last_counters
        self._sample()
        assert earlier is not None and self._last_counters is not None
        self._draw(shares, kernel_share, rates(earlier, self._last_counters))
        self.kernel.call_at(now + REFRESH_NS, self._refresh)

    def _draw(self, shares: dict[int, float], kernel_share: float, rate: Rates | None) -> None:
        console, processes = self.console, self.kernel.processes
        console.clear()
        uptime = self.kernel.clock.uptime_ns() / 1e9
        busy = sum(shares.values())
        console.write(
            f"top - up {uptime:.1f} s, {plural(len(processes.table), 'process')}, "
            f"refresh {REFRESH_NS // 1_000_000} ms, q to leave\n"
            f"cpu: {busy:.1f}% processes, {kernel_share:.1f}% idle\n"
        )
        now = self._last_counters
        assert now is not None
        console.write(
            f"mem: heap {now.heap_used / 1024:.1f}/{now.heap_total // 1024} KiB, frames "
            f"{now.frames_used}/{now.frames_total} (4 KiB each)\n"
        )
        if rate is None:
            console.write("net: measuring...\n")
        else:
            console.write(
                f"net: rx {rate.rx_bytes / 1024:.1f} KiB/s ({rate.rx_packets:.0f} pkt/s), "
                f"tx {rate.tx_bytes / 1024:.1f} KiB/s ({rate.tx_packets:.0f} pkt/s)\n"
            )
        console.write(f"{'PID':>5} {'PPID':>5} S {'CLS PRI':<7} {'CPU%':>6} CMD".ljust(COLUMNS),
                      HEADER_ATTR)  # fmt: skip
        console.write(f"{0:>5} {0:>5} I {'-':<7} {kernel_share:>6.1f} [idle]\n", KERNEL_ATTR)
        ordered = sorted(processes.table.values(), key=lambda p: -shares.get(p.pid, 0.0))
        for process in ordered[: ROWS - 7]:
            console.write(
                f"{process.pid:>5} {process.ppid:>5} {process.letter} "
                f"{process.sched.label():<7} {shares.get(process.pid, 0.0):>6.1f} "
                f"{' '.join(process.argv)[: COLUMNS - 30]}\n",
                ROW_ATTR,
            )

    def _key(self, key: Key) -> None:
        if key.char.lower() == "q" or key.char == "\x1b" or (key.ctrl and key.char == "c"):
            self._leave()

    def _leave(self) -> None:
        self.running = False
        self.kernel.tty.raw_reader = None
        console = self.console
        for index, (char, attr) in enumerate(self._saved):
            console.put_cell(index // COLUMNS, index % COLUMNS, char, attr)
        console.move_cursor(*self._saved_cursor)
        self.kernel.shell.resume()


# ---- vmstat --------------------------------------------------------------------------------
VMSTAT_HEADER = " r procs   heapK frames     in/s    cs/s     sy/s    pf/s   rxK/s   txK/s"
MAX_DELAY_S = 3600


def vmstat_row(counters: Counters, rate: Rates) -> str:
    """One row under VMSTAT_HEADER (79 columns: a full row would wrap on the console)."""
    return (f"{counters.running:2d} {counters.processes:5d} {counters.heap_used // 1024:7d} "
            f"{counters.frames_used:6d} {rate.interrupts:8.0f} {rate.context_switches:7.0f} "
            f"{rate.syscalls:8.0f} {rate.page_faults:7.0f} {rate.rx_bytes / 1024:7.1f} "
            f"{rate.tx_bytes / 1024:7.1f}")  # fmt: skip


class Vmstat:
    def __init__(self, shell: Shell, kernel) -> None:  # noqa: ANN001 - kernel.main.Kernel
        self.shell = shell
        self.kernel = kernel
        self._left = 0  # rows still to print; -1 until q
        self._last: Counters | None = None
        self._delay_ns = 0

    def command(self, args: list[str], out: Output) -> int:
        if args[:1] == ["-s"]:
            if len(args) > 1:
                raise UsageError(f"unexpected argument {args[1]!r}")
            for line in self.kernel.obs.counters().lines():
                out.line(line)
            return 0
        if len(args) > 2 or not all(arg.isdigit() for arg in args):
            raise UsageError("DELAY and COUNT are whole numbers")
        delay = int(args[0]) if args else 0
        count = int(args[1]) if len(args) > 1 else -1
        if args and not 1 <= delay <= MAX_DELAY_S:
            raise UsageError(f"DELAY must be 1-{MAX_DELAY_S} seconds")
        now = self.kernel.obs.counters()
        out.line(VMSTAT_HEADER)
        out.line(vmstat_row(now, rates(Counters(time_ns=0), now)))  # since boot
        if not args or count == 1:
            return 0
        if out is not self.shell.out:
            raise UsageError("a repeating vmstat prints to the console; give COUNT to redirect")
        self._left = count - 1 if count > 0 else -1
        self._last = now
        self._delay_ns = delay * 1_000_000_000
        self.shell.suspend_prompt()
        self.kernel.tty.raw_reader = lambda key: self.kernel.defer(lambda: self._key(key))
        self.kernel.call_at(now.time_ns + self._delay_ns, self._row)
        return 0

    def _row(self) -> None:
        if self._left == 0 or self._last is None:
            return
        now = self.kernel.obs.counters()
        self.shell.out.line(vmstat_row(now, rates(self._last, now)))
        self._last = now
        if self._left > 0:
            self._left -= 1
        if self._left == 0:
            self._end()
        else:
            self.kernel.call_at(now.time_ns + self._delay_ns, self._row)

    def _key(self, key: Key) -> None:
        if key.char.lower() == "q" or key.char == "\x1b" or (key.ctrl and key.char == "c"):
            if self._left != 0:
                self._left = 0
                self._end()

    def _end(self) -> None:
        self.kernel.tty.raw_reader = None
        self.shell.resume()


def register_vmstat(shell: Shell, kernel) -> None:  # noqa: ANN001 - kernel.main.Kernel
    shell.register(
        "vmstat",
        Vmstat(shell, kernel).command,
        "vmstat [-s] [DELAY [COUNT]]",
        "interrupts, switches, system calls, page faults and network per second",
    )
