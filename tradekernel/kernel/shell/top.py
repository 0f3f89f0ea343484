"""`top`: the processes and their share of the CPU, refreshed live, full screen.

Every REFRESH_NS of virtual time the table is redrawn with each process's CPU share over the
last interval (its CPU time delta over the wall delta), the state and scheduling class, and
the share of PID 0, the kernel's own context, shown as idle: it is the entry stub's `hlt`
loop (kernel work done for a process, its system calls and faults, is charged to that
process; the deferred work PID 0 also runs costs next to nothing in virtual time). `q` (or
Esc, or Ctrl-C) leaves and puts the screen back. It runs from the kernel's timer list and
deferred work, so it never holds the CPU between refreshes.
"""

from __future__ import annotations

from tradekernel.kernel.drivers.console import COLUMNS, ROWS
from tradekernel.kernel.drivers.keyboard import Key
from tradekernel.kernel.shell.shell import Output, UsageError, plural

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
        self._draw({}, 0)
        self.kernel.call_at(self.kernel.clock.now_ns() + REFRESH_NS, self._refresh)
        return 0

    def _sample(self) -> None:
        processes = self.kernel.processes
        self._last_ns = self.kernel.clock.now_ns()
        self._last_cpu = {pid: p.cpu_ns for pid, p in processes.table.items()}
        self._last_kernel_ns = processes.kernel_cpu_ns

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
        self._sample()
        self._draw(shares, kernel_share)
        self.kernel.call_at(now + REFRESH_NS, self._refresh)

    def _draw(self, shares: dict[int, float], kernel_share: float) -> None:
        console, processes = self.console, self.kernel.processes
        console.clear()
        uptime = self.kernel.clock.uptime_ns() / 1e9
        busy = sum(shares.values())
        console.write(
            f"top - up {uptime:.1f} s, {plural(len(processes.table), 'process')}, "
            f"refresh {REFRESH_NS // 1_000_000} ms, q to leave\n"
            f"cpu: {busy:.1f}% processes, {kernel_share:.1f}% idle\n"
        )
        console.write(f"{'PID':>5} {'PPID':>5} S {'CLS PRI':<7} {'CPU%':>6} CMD".ljust(COLUMNS),
                      HEADER_ATTR)  # fmt: skip
        console.write(f"{0:>5} {0:>5} I {'-':<7} {kernel_share:>6.1f} [idle]\n", KERNEL_ATTR)
        ordered = sorted(processes.table.values(), key=lambda p: -shares.get(p.pid, 0.0))
        for process in ordered[: ROWS - 5]:
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
