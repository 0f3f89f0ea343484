"""The system profiler: where guest time goes (sampled EIP per process, symbolised from each
program's ELF symbols) and how long the kernel's Python services take (each system call, IRQ
handler and kernel-entry hypercall, timed on the host).

Sampling: while running, a kernel timer fires every SAMPLE_PERIOD_NS of virtual time; the PIT
interrupt it causes enters the kernel from whatever the CPU was doing, and the timer's work
(deferred work, which runs on the way out of that very entry, before the scheduler picks who
runs next) reads the interrupted context: the current process and the EIP in its trap frame,
or, with no process, the kernel's idle loop. So samples are taken at timer ticks only: no
per-instruction or per-block hook, and the tickless timer is armed only while profiling.

Service timing: `start` swaps each entry of the system-call table, each IRQ handler and the
INTERRUPT and IDLE hypercalls for a timing wrapper, and `stop` puts the originals back; nested
services (a system call inside the INTERRUPT hypercall) are charged self and total time, so
the folded stacks nest the same way. Off, the profiler costs nothing: no wrapper, no timer.

Output: `report()` is a text table in the manner of `perf report` (overhead, samples, command,
symbol), then the services by self time; `speedscope()` is a speedscope JSON document (two
sampled profiles: guest samples, and service time in host nanoseconds) and `folded()` the
folded-stack text flamegraph.pl and speedscope both read.

Reaches into the kernel for: the timer list (`call_at`), the current process and its trap frame,
the system-call table (proc/syscalls.py `Syscalls.table`), the IRQ handler table and the
hypercall handlers main.py registered, and `read_file` for the programs' ELF symbols.
"""

from __future__ import annotations

import json
import posixpath
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from tradekernel.hypercall import Hypercall
from tradekernel.kernel.arch.trapframe import TrapFrame
from tradekernel.kernel.obs.symbols import Symbols

SAMPLE_PERIOD_NS = 1_000_000  # one sample per millisecond of virtual time (1 kHz)
MAX_KEYS = 65536  # distinct (process, address) pairs kept; later ones count as [other]
MAX_ELF_BYTES = 16 * 1024 * 1024  # a program file larger than this is not read for symbols
IDLE = "[idle]"
SPEEDSCOPE_SCHEMA = "https://www.speedscope.app/file-format-schema.json"


@dataclass
class ServiceTime:
    calls: int = 0
    total_ns: int = 0
    self_ns: int = 0


@dataclass(frozen=True)
class GuestRow:
    samples: int
    pid: int
    command: str
    symbol: str


class Profiler:
    def __init__(self, kernel) -> None:  # noqa: ANN001 - kernel.main.Kernel
        self.kernel = kernel
        self.running = False
        self.samples: Counter[tuple[int, str, str, int]] = Counter()  # (pid, name, exe, eip)
        self.services: dict[tuple[str, ...], ServiceTime] = {}  # by nesting path
        self.started_ns = self.stopped_ns = 0
        self.wall_s = 0.0
        self._wall_start = 0.0
        self._path: list[str] = []
        self._child_ns: list[int] = []
        self._restore: list[Callable[[], None]] = []
        self._symbols: dict[str, Symbols | None] = {}

    # ---- on and off -------------------------------------------------------------------
    def start(self) -> None:
        """Clear the last profile and start sampling and timing."""
        if self.running:
            return
        self.samples.clear()
        self.services.clear()
        self.running = True
        self.started_ns = self.kernel.clock.now_ns()
        self._wall_start = time.perf_counter()
        self._install()
        self.kernel.call_at(self.started_ns + SAMPLE_PERIOD_NS, self._tick)

    def stop(self) -> None:
        if not self.running:
            return
        self.running = False
        self.stopped_ns = self.kernel.clock.now_ns()
        self.wall_s = time.perf_counter() - self._wall_start
        for restore in reversed(self._restore):
            restore()
        self._restore.clear()

    def _tick(self) -> None:
        if not self.running:
            return  # the last armed timer after `stop`: it does not re-arm
        self._sample()
        now = self.kernel.clock.now_ns()
        self.kernel.call_at(now + SAMPLE_PERIOD_NS, self._tick)

    def _sample(self) -> None:
        process = self.kernel.processes.current if self.kernel.processes else None
        if process is None or not process.frame:
            key = (0, IDLE, "", 0)
        else:
            frame = TrapFrame(self.kernel.memory, process.frame)
            key = (process.pid, process.name, _program_path(process), frame.eip)
        if key in self.samples or len(self.samples) < MAX_KEYS:
            self.samples[key] += 1
        else:
            self.samples[(key[0], key[1], "", 0)] += 1

    # ---- service timing ---------------------------------------------------------------
    def _install(self) -> None:
        kernel = self.kernel
        syscalls = kernel.syscall_entry.syscalls if kernel.syscall_entry else None
        if syscalls is not None:
            table = syscalls.table
            original = dict(table)
            for number, (name, handler) in original.items():
                table[number] = (name, self._timed(f"syscall {name}", handler))
            self._restore.append(lambda: table.update(original))
        handlers = kernel._irq_handlers  # main.py's table: IRQ line -> handler
        saved_irqs = dict(handlers)
        for irq, handler in saved_irqs.items():
            name = getattr(handler, "__qualname__", "handler").rsplit(".", 1)[-1]
            handlers[irq] = self._timed(f"irq {irq} {name}", handler)
        self._restore.append(lambda: handlers.update(saved_irqs))
        register = kernel.platform.register_hypercall
        for number, name, handler in (
            (Hypercall.INTERRUPT, "kernel entry", kernel._on_interrupt),
            (Hypercall.IDLE, "idle", kernel._on_idle),
        ):
            register(number, self._timed(f"hypercall {name}", handler))
            self._restore.append(lambda n=number, h=handler: register(n, h))

    def _timed(self, name: str, handler: Callable) -> Callable:
        path, child_ns, services = self._path, self._child_ns, self.services
        clock = time.perf_counter_ns

        def timed(*args: object) -> object:
            path.append(name)
            child_ns.append(0)
            start = clock()
            try:
                return handler(*args)
            finally:
                elapsed = clock() - start
                key = tuple(path)
                path.pop()
                children = child_ns.pop()
                if child_ns:
                    child_ns[-1] += elapsed
                stat = services.get(key)
                if stat is None:
                    stat = services[key] = ServiceTime()
                stat.calls += 1
                stat.total_ns += elapsed
                stat.self_ns += elapsed - children

        return timed

    # ---- results ------------------------------------------------------------------------
    def _symbolise(self, exe: str, eip: int) -> str:
        if not exe:
            return "" if eip == 0 else f"{eip:#010x}"
        if exe not in self._symbols:
            self._symbols[exe] = self._load_symbols(exe)
        symbols = self._symbols[exe]
        name = symbols.function(eip) if symbols is not None else None
        return name or f"[unknown] {eip:#010x}"

    def _load_symbols(self, exe: str) -> Symbols | None:
        fs = self.kernel.fs
        try:
            if fs is None or fs.stat(exe).size > MAX_ELF_BYTES:
                return None
            return Symbols.from_elf(self.kernel.read_file(exe))
        except OSError:
            return None

    def guest_rows(self) -> list[GuestRow]:
        """Samples by (process, function), most first."""
        rows: Counter[tuple[int, str, str]] = Counter()
        for (pid, name, exe, eip), count in self.samples.items():
            symbol = IDLE if pid == 0 else self._symbolise(exe, eip) or "[other]"
            rows[(pid, name, symbol)] += count
        ordered = sorted(rows.items(), key=lambda item: (-item[1], item[0]))
        return [GuestRow(count, pid, name, symbol) for (pid, name, symbol), count in ordered]

    def service_rows(self) -> list[tuple[str, ServiceTime]]:
        """Each service with its calls, total and self time over every path, most self first."""
        merged: dict[str, ServiceTime] = {}
        for path, stat in self.services.items():
            row = merged.setdefault(path[-1], ServiceTime())
            row.calls += stat.calls
            row.self_ns += stat.self_ns
            if path[-1] not in path[:-1]:  # a recursive call is inside its own total already
                row.total_ns += stat.total_ns
        return sorted(merged.items(), key=lambda item: (-item[1].self_ns, item[0]))

    def report(self, limit: int = 20) -> list[str]:
        """The text tables (perf report's layout), `limit` rows each."""
        total = sum(self.samples.values())
        seconds = max(0, (self.stopped_ns if not self.running else self.kernel.clock.now_ns())
                      - self.started_ns) / 1e9  # fmt: skip
        lines = [f"# {total} samples in {seconds:.3f} s of virtual time "
                 f"(every {SAMPLE_PERIOD_NS / 1e6:g} ms)",
                 "# Overhead  Samples    PID  Command          Symbol"]  # fmt: skip
        for row in self.guest_rows()[:limit]:
            share = 100 * row.samples / total if total else 0.0
            lines.append(f"{share:9.2f}%  {row.samples:7d}  {row.pid:5d}  "
                         f"{row.command[:15]:<15}  {row.symbol}")  # fmt: skip
        services = self.service_rows()
        busy = sum(stat.self_ns for _, stat in services)
        lines += ["", f"# kernel services: {busy / 1e6:.1f} ms of host time in Python handlers",
                  "#   Self%   Self ms  Total ms    Calls  Mean us  Service"]  # fmt: skip
        for name, stat in services[:limit]:
            share = 100 * stat.self_ns / busy if busy else 0.0
            lines.append(f"{share:8.2f}%  {stat.self_ns / 1e6:8.2f}  {stat.total_ns / 1e6:8.2f}  "
                         f"{stat.calls:7d}  {stat.total_ns / max(1, stat.calls) / 1e3:7.1f}  "
                         f"{name}")  # fmt: skip
        return lines

    def folded(self) -> str:
        """Folded stacks: `guest;PROCESS[PID];FUNCTION SAMPLES` and `kernel;...;SERVICE NS`."""
        lines = []
        for row in self.guest_rows():
            frames = ["guest", IDLE] if row.pid == 0 else ["guest", f"{row.command}[{row.pid}]",
                                                           row.symbol]  # fmt: skip
            lines.append(f"{';'.join(_fold(f) for f in frames)} {row.samples}")
        for path, stat in sorted(self.services.items()):
            if stat.self_ns > 0:
                lines.append(f"{';'.join(['kernel', *(_fold(p) for p in path)])} {stat.self_ns}")
        return "\n".join(lines) + "\n"

    def speedscope(self, name: str = "TradeKernel") -> str:
        """A speedscope file: one sampled profile of guest samples, one of host service time."""
        frames: list[dict[str, str]] = []
        index: dict[str, int] = {}

        def frame(label: str) -> int:
            if label not in index:
                index[label] = len(frames)
                frames.append({"name": label})
            return index[label]

        guest_stacks, guest_weights = [], []
        for row in self.guest_rows():
            labels = [IDLE] if row.pid == 0 else [f"{row.command}[{row.pid}]", row.symbol]
            guest_stacks.append([frame(label) for label in labels])
            guest_weights.append(row.samples)
        kernel_stacks, kernel_weights = [], []
        for path, stat in sorted(self.services.items()):
            if stat.self_ns > 0:
                kernel_stacks.append([frame(label) for label in path])
                kernel_weights.append(stat.self_ns)

        def profile(title: str, unit: str, stacks: list, weights: list[int]) -> dict:
            return {"type": "sampled", "name": title, "unit": unit, "startValue": 0,
                    "endValue": sum(weights), "samples": stacks, "weights": weights}  # fmt: skip

        document = {
            "$schema": SPEEDSCOPE_SCHEMA,
            "name": name,
            "exporter": "TradeKernel profiler",
            "activeProfileIndex": 0,
            "shared": {"frames": frames},
            "profiles": [
                profile("guest CPU (samples of EIP)", "none", guest_stacks, guest_weights),
                profile("kernel services (host time)", "nanoseconds", kernel_stacks,
                        kernel_weights),
            ],
        }  # fmt: skip
        return json.dumps(document, indent=1)


def _program_path(process) -> str:  # noqa: ANN001 - proc.task.Process
    """Where the process's program came from: its argv[0] if that is a path, else /bin."""
    first = process.argv[0] if process.argv else process.name
    if "/" in first:
        return posixpath.normpath(posixpath.join(process.cwd, first))
    return f"/bin/{process.name}"


def _fold(label: str) -> str:
    """A frame name safe in a folded line (`;` separates frames, the last space the count)."""
    return label.replace(";", ":").replace(" ", "_")
