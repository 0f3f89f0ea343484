"""Machine core figures: guest MIPS against QEMU in the same run, process start to kernel banner,
hypercall round trips, port I/O exits and interrupt deliveries per second.

1. Guest MIPS: one boot sector (bench/images/loop.asm) enters protected mode, marks the loop
   start on POST port 0x80, runs `dec ecx; jnz` a known number of times and powers off. Our PC
   boots it through its BIOS and is timed from the POST mark to power-off; qemu-system-i386 boots
   the same sector through SeaBIOS and exits on isa-debug-exit, timed as a whole process minus
   the median run of the same image with a 1-iteration loop (startup and teardown). Real-time
   mode is compared with QEMU TCG, deterministic mode with QEMU `-icount shift=0`.
2. Boot to banner: wall time from spawning a fresh interpreter to the line it prints once the
   kernel has run KERNEL_INIT (banner checked on the VGA text screen), median of several runs,
   with a warm bytecode cache and again in the environment as inherited.
3-5. On a bare Machine with the program at 0x10000 and the count in ECX: BENCH_NOP hypercalls
   (checked result), reads of PIT port 0x40, software `int 0x30` through an IDT, and PIT IRQ0
   deliveries through the 8259 and the IDT, the handler re-arming the PIT as a one-shot and
   sending EOI (so the rate is the machine's, not the timer's), in both clock modes.

Each count is scaled from a probe run so one timed run lasts about the target time.

Run: /tmp/venv/bin/python bench/bench_machine.py [--quick] [--json] [--only mips|banner|bare]
A/B: bench/bench_machine.py --against TREE runs the bare section (3-5) from this checkout and
from TREE (another checkout of the project, e.g. `git worktree add /tmp/main main`) in turn,
AB_ROUNDS times each in separate interpreters, and prints both per CPU second with their ratio.
Needs nasm; QEMU is optional (without it the ratios are left out and the reason is printed).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from tradekernel.devices.pic import PicPair
from tradekernel.devices.pit import Pit
from tradekernel.devices.power import PowerControl
from tradekernel.disktool import create_os_disk
from tradekernel.emu.cpu import ECX, EIP
from tradekernel.emu.machine import Machine, MachineConfig
from tradekernel.emu.pc import Pc, PcConfig
from tradekernel.hypercall import Hypercall

BENCH_DIR = Path(__file__).resolve().parent
IMAGE_SOURCES = BENCH_DIR / "images"
QEMU = "qemu-system-i386"
QEMU_ACCELS = {"tcg": ["-accel", "tcg"], "icount": ["-icount", "shift=0"]}
QEMU_DEBUG_EXIT_STATUS = (0x10 << 1) | 1  # loop.asm writes 0x10 to isa-debug-exit
LOOP_START_MARK = 0xB0  # the POST code loop.asm writes just before its loop
MAX_LOOPS = 0xFFFFFFFF  # ECX
BARE_CODE_BASE = 0x10000  # CODE_BASE in images/flat32.inc
BANNER_TEXT = "TradeKernel"
RUN_TIMEOUT_S = 120.0
AB_ROUNDS = 2  # --against: runs of each tree, alternated so a change in load hits both
AB_TIMEOUT_S = 900.0
PER_CPU_SECOND = re.compile(r"([\d,]+) per CPU second")  # in a bare figure's detail

# Targets from the issue.
TARGET_QEMU_TCG_RATIO = 0.7
TARGET_QEMU_ICOUNT_RATIO = 0.5
TARGET_BANNER_S = 0.3
TARGET_HYPERCALLS_PER_S = 500_000
TARGET_SOFT_INTS_PER_S = 250_000  # issue 16 part 3
TARGET_IRQS_PER_S = 100_000


class BenchError(Exception):
    """A benchmark run did not finish the way its program says it must."""


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    detail: str = ""
    target: str = ""
    met: bool | None = None


@dataclass
class Settings:
    target_s: float  # how long one timed loop should last
    repeats: int  # timed runs per figure (the median is reported)
    banner_runs: int
    qemu_startup_runs: int


# ---- images ---------------------------------------------------------------------------------
class Assembler:
    """nasm into a private temporary folder; each (source, defines) is built once."""

    def __init__(self, out_dir: Path) -> None:
        nasm = shutil.which("nasm")
        if nasm is None:
            raise BenchError("nasm not found: it builds the bench images (apt-get install nasm)")
        self.nasm = nasm
        self.out_dir = out_dir
        self._built: dict[tuple[str, tuple[tuple[str, int], ...]], Path] = {}

    def build(self, source: str, **defines: int) -> Path:
        key = (source, tuple(sorted(defines.items())))
        if key in self._built:
            return self._built[key]
        suffix = "".join(f"-{name}{value}" for name, value in key[1])
        output = self.out_dir / f"{Path(source).stem}{suffix}.bin"
        command = [self.nasm, "-f", "bin", f"-I{IMAGE_SOURCES}/"]
        command += [f"-D{name}={value}" for name, value in key[1]]
        command += [str(IMAGE_SOURCES / source), "-o", str(output)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BenchError(f"nasm failed on {source}: {result.stderr.strip()}")
        self._built[key] = output
        return output


def scaled_count(measure: Callable[[int], float], probe: int, target_s: float) -> int:
    """The loop count that makes `measure(count)` (seconds) last about `target_s`: probe runs
    grow tenfold until one lasts long enough to time, then the count is scaled linearly."""
    count = probe
    while True:
        seconds = measure(count)
        if seconds >= min(0.1, target_s / 4) or count * 10 > MAX_LOOPS:
            break
        count *= 10
    return max(1, min(MAX_LOOPS, int(count * target_s / max(seconds, 1e-6))))


def loop_instructions(loops: int) -> int:
    """Instructions in loop.asm's timed part (the few around it are left out)."""
    return 1 + 2 * loops  # mov ecx, then dec + jnz per iteration


# ---- 1. guest MIPS ---------------------------------------------------------------------------
@dataclass
class LoopTimer:
    """One side of the MIPS comparison: loop.asm with a count sized for the target time."""

    loop_s: Callable[[int], float]  # seconds the loop itself takes with that many iterations
    loops: int

    def mips(self) -> float:
        seconds = self.loop_s(self.loops)
        if seconds <= 0:
            raise BenchError("the startup time varied by more than the loop lasted; run again")
        return loop_instructions(self.loops) / seconds / 1e6


def qemu_run_s(image: Path, accel: str) -> float:
    command = [QEMU, *QEMU_ACCELS[accel], "-display", "none", "-nodefaults", "-no-reboot"]
    command += ["-drive", f"file={image},format=raw,if=ide"]
    command += ["-device", "isa-debug-exit,iobase=0xf4,iosize=4"]
    start = time.perf_counter()
    try:
        result = subprocess.run(command, capture_output=True, timeout=RUN_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"QEMU ({accel}) did not finish in {RUN_TIMEOUT_S:.0f} s") from exc
    elapsed = time.perf_counter() - start
    if result.returncode != QEMU_DEBUG_EXIT_STATUS:
        raise BenchError(
            f"QEMU ({accel}) exited with {result.returncode}, not the debug-exit status "
            f"{QEMU_DEBUG_EXIT_STATUS}: {result.stderr.decode(errors='replace').strip()}"
        )
    return elapsed


def qemu_loop_timer(
    assembler: Assembler, accel: str, settings: Settings
) -> tuple[LoopTimer, float]:
    """QEMU's loop time is its whole run minus the median run of a 1-iteration loop."""
    empty = assembler.build("loop.asm", LOOPS=1)
    startup_s = statistics.median(
        qemu_run_s(empty, accel) for _ in range(settings.qemu_startup_runs)
    )

    def loop_s(loops: int) -> float:
        return qemu_run_s(assembler.build("loop.asm", LOOPS=loops), accel) - startup_s

    return LoopTimer(loop_s, scaled_count(loop_s, 50_000_000, settings.target_s)), startup_s


def pc_loop_s(image: Path, deterministic: bool) -> float:
    """Boot `image` through our BIOS; seconds from the loop's POST mark to power-off."""
    pc = Pc(PcConfig(disk=image, deterministic=deterministic, read_only=True))
    machine = pc.machine
    marks: list[float] = []
    machine.channels.listen(
        "post", lambda code: marks.append(time.perf_counter()) if code == LOOP_START_MARK else None
    )
    try:
        info = machine.run(wall_timeout_s=RUN_TIMEOUT_S)
        end = time.perf_counter()
    finally:
        machine.close()
    if info.reason != "poweroff" or not marks:
        raise BenchError(f"loop image stopped with {info.reason!r}, no power-off: {info.report}")
    return end - marks[0]


def pc_loop_timer(assembler: Assembler, deterministic: bool, settings: Settings) -> LoopTimer:
    def loop_s(loops: int) -> float:
        return pc_loop_s(assembler.build("loop.asm", LOOPS=loops), deterministic)

    return LoopTimer(loop_s, scaled_count(loop_s, 5_000_000, settings.target_s))


def mips_figures(assembler: Assembler, settings: Settings) -> list[Figure]:
    """Our runs and QEMU's alternate, and the ratio is the median of the pairs' ratios, so a
    change in the host's load during the bench moves both sides of a pair alike."""
    with_qemu = shutil.which(QEMU) is not None
    figures = []
    for deterministic, accel, threshold in (
        (False, "tcg", TARGET_QEMU_TCG_RATIO),
        (True, "icount", TARGET_QEMU_ICOUNT_RATIO),
    ):
        mode = "deterministic" if deterministic else "real-time"
        ours = pc_loop_timer(assembler, deterministic, settings)
        if not with_qemu:
            rate = statistics.median(ours.mips() for _ in range(settings.repeats))
            detail = f"{loop_instructions(ours.loops):,} instructions; no ratio: {QEMU} not found"
            figures.append(Figure(f"guest MIPS, {mode}", rate, "MIPS", detail))
            continue
        theirs, startup_s = qemu_loop_timer(assembler, accel, settings)
        pairs = [(ours.mips(), theirs.mips()) for _ in range(settings.repeats)]
        ratio = statistics.median(our_rate / their_rate for our_rate, their_rate in pairs)
        qemu_args = " ".join(QEMU_ACCELS[accel])
        figures += [
            Figure(
                f"guest MIPS, {mode}",
                statistics.median(pair[0] for pair in pairs),
                "MIPS",
                f"{loop_instructions(ours.loops):,} instructions",
            ),
            Figure(
                f"  QEMU {qemu_args}",
                statistics.median(pair[1] for pair in pairs),
                "MIPS",
                f"{loop_instructions(theirs.loops):,} instructions, "
                f"startup {startup_s * 1000:.0f} ms",
            ),
            Figure(
                f"  ratio, {mode} / QEMU {accel}",
                ratio,
                "x",
                f"median of {len(pairs)} alternating pairs",
                target=f">= {threshold}",
                met=ratio >= threshold,
            ),
        ]
    return figures


# ---- 2. process start to kernel banner ------------------------------------------------------
BANNER_CHILD = """
import json, sys, time
started = time.perf_counter()
from tradekernel import memmap
from tradekernel.emu.pc import PcConfig
from tradekernel.ui.session import make_pc
imported = time.perf_counter()
pc = make_pc(PcConfig(disk=sys.argv[1]))
built = time.perf_counter()
info = pc.machine.run(wall_timeout_s=10, until=lambda: pc.kernel is not None)
booted = time.perf_counter()
size = memmap.VGA_TEXT_COLUMNS * memmap.VGA_TEXT_ROWS * 2
cells = pc.machine.memory.read(memmap.VGA_TEXT_BASE, size)
screen = bytes(cells[0::2]).decode("latin-1")
print(json.dumps({"reason": info.reason, "screen": screen, "import_s": imported - started,
                  "build_s": built - imported, "boot_s": booted - built}), flush=True)
"""


def banner_run(disk: Path, environment: dict[str, str]) -> tuple[float, dict]:
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", BANNER_CHILD, str(disk)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    line = child.stdout.readline() if child.stdout else ""
    elapsed = time.perf_counter() - start
    _, errors = child.communicate(timeout=RUN_TIMEOUT_S)
    if not line:
        raise BenchError(f"the boot child printed nothing: {errors.strip()}")
    report = json.loads(line)
    if report["reason"] != "until" or BANNER_TEXT not in report["screen"]:
        raise BenchError(f"no kernel banner on the screen (stop: {report['reason']})")
    return elapsed, report


def interpreter_start_s(environment: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True, env=environment)
    return time.perf_counter() - start


def banner_figure(name: str, environment: dict[str, str], scratch: Path, runs: int) -> Figure:
    """Median of `runs` boots, each on a fresh copy of the disk, after one uncounted run that
    fills the bytecode cache if the environment has one."""
    timed = []
    for index in range(runs + 1):
        disk = scratch / f"disk{index}.img"
        create_os_disk(disk)
        timed.append(banner_run(disk, environment))
        disk.unlink()
    timed = sorted(timed[1:], key=lambda run: run[0])
    elapsed, report = timed[len(timed) // 2]
    python_s = statistics.median(interpreter_start_s(environment) for _ in range(runs))
    detail = (
        f"median of {len(timed)}; python start {python_s * 1000:.0f} ms, imports "
        f"{report['import_s'] * 1000:.0f} ms, Pc() {report['build_s'] * 1000:.0f} ms, "
        f"BIOS to banner {report['boot_s'] * 1000:.0f} ms"
    )
    return Figure(name, elapsed, "s", detail)


def banner_figures(settings: Settings) -> list[Figure]:
    """Twice: with a warm bytecode cache (how an installed package starts, the figure the
    target is for), and in this process's own environment (PYTHONDONTWRITEBYTECODE=1 makes
    every start compile the project's modules)."""
    with tempfile.TemporaryDirectory(prefix="bench-machine-") as scratch_name:
        scratch = Path(scratch_name)
        cached = {
            key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"
        }
        cached["PYTHONPYCACHEPREFIX"] = str(scratch / "pycache")
        warm = banner_figure(
            "process start to kernel banner", cached, scratch, settings.banner_runs
        )
        warm.detail = "bytecode cached; " + warm.detail
        warm.target = f"< {TARGET_BANNER_S}"
        warm.met = warm.value < TARGET_BANNER_S
        inherited = os.environ.get("PYTHONDONTWRITEBYTECODE", "")
        as_is = banner_figure(
            f"  same, PYTHONDONTWRITEBYTECODE={inherited!r} as here",
            dict(os.environ),
            scratch,
            settings.banner_runs,
        )
    return [warm, as_is]


# ---- 3-5. exits and interrupts on a bare machine -------------------------------------------
@dataclass(frozen=True)
class BareProgram:
    label: str
    source: str
    unit: str
    probe: int
    target: int | None = None


BARE_PROGRAMS = (
    BareProgram(
        "hypercall round trips (BENCH_NOP)",
        "hypercall.asm",
        "calls/s",
        20_000,
        TARGET_HYPERCALLS_PER_S,
    ),
    BareProgram("port I/O exits (in al, 0x40 -> PIT)", "portio.asm", "reads/s", 20_000),
    BareProgram(
        "software int 0x30 via IDT + iretd",
        "softint.asm",
        "ints/s",
        5_000,
        TARGET_SOFT_INTS_PER_S,
    ),
    BareProgram("PIT one-shot IRQ0 via 8259 + IDT", "irq.asm", "irqs/s", 2_000, TARGET_IRQS_PER_S),
)


def bare_machine(deterministic: bool) -> Machine:
    """A machine with only what the programs touch: PIC, PIT, power control, BENCH_NOP."""
    machine = Machine(MachineConfig(deterministic=deterministic))
    machine.add(PicPair(bios_initialised=False))
    machine.add(Pit(bios_initialised=False))
    machine.add(PowerControl())
    machine.register_hypercall(Hypercall.BENCH_NOP, lambda registers: registers.arg0() + 1)
    return machine


def bare_run_s(code: bytes, iterations: int, deterministic: bool) -> tuple[float, float]:
    """(wall s, CPU s of this process) for one run: on a loaded host the CPU time is steadier."""
    machine = bare_machine(deterministic)
    machine.cpu.ram[BARE_CODE_BASE : BARE_CODE_BASE + len(code)] = code
    machine.cpu.write(EIP, BARE_CODE_BASE)
    machine.cpu.write(ECX, iterations)
    start, start_cpu = time.perf_counter(), time.process_time()
    try:
        info = machine.run(wall_timeout_s=RUN_TIMEOUT_S)
    finally:
        machine.close()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    if info.reason != "poweroff":
        raise BenchError(f"bench program stopped with {info.reason!r}: {info.report}")
    return elapsed, cpu


def bare_figure(
    program: BareProgram, code: bytes, deterministic: bool, settings: Settings
) -> Figure:
    mode = "deterministic" if deterministic else "real-time"
    run = functools.partial(bare_run_s, code, deterministic=deterministic)
    count = scaled_count(lambda n: run(n)[0], program.probe, settings.target_s)
    runs = [run(count) for _ in range(settings.repeats)]
    rate = statistics.median(count / wall for wall, _ in runs)
    cpu_rate = statistics.median(count / cpu for _, cpu in runs)
    figure = Figure(
        f"{program.label}, {mode}",
        rate,
        program.unit,
        f"{count:,} per run; {cpu_rate:,.0f} per CPU second",
    )
    if program.target is not None:
        figure.target = f">= {program.target:,}"
        figure.met = rate >= program.target
    return figure


def bare_figures(assembler: Assembler, settings: Settings) -> list[Figure]:
    figures = []
    for program in BARE_PROGRAMS:
        code = assembler.build(program.source).read_bytes()
        for deterministic in (False, True):
            figures.append(bare_figure(program, code, deterministic, settings))
    return figures


# ---- output -------------------------------------------------------------------------------
def format_value(figure: Figure) -> str:
    if figure.unit == "x":
        return f"{figure.value:.2f}x"
    if figure.unit == "s":
        return f"{figure.value:.3f} s"
    if figure.unit == "MIPS":
        return f"{figure.value:.1f} MIPS"
    return f"{figure.value:,.0f} {figure.unit}"


NAME_WIDTH = 56


def print_table(figures: list[Figure]) -> None:
    for figure in figures:
        verdict = "" if figure.met is None else ("  met" if figure.met else "  MISSED")
        target = f"  target {figure.target}{verdict}" if figure.target else ""
        detail = f"  ({figure.detail})" if figure.detail else ""
        print(f"{figure.name:<{NAME_WIDTH}} {format_value(figure):>18}{target}{detail}", flush=True)


def host_summary() -> str:
    """CPU count and load at the start, because other work on the host moves every figure."""
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    return f"{os.cpu_count()} CPUs, load average {load}"


SECTIONS = ("mips", "banner", "bare")


def tree_rates(tree: Path, quick: bool) -> dict[str, tuple[float, float]]:
    """The bare section's figures (name -> (per CPU second, per wall second)), from
    bench_machine.py of the checkout `tree` run in a fresh interpreter with that tree's package
    first on the path. The CPU rate is read from each figure's detail, which older checkouts
    print too; the wall rate is the figure's value."""
    command = [sys.executable, str(tree / "bench" / "bench_machine.py"), "--only", "bare"]
    command += ["--json"] + (["--quick"] if quick else [])
    environment = dict(os.environ, PYTHONPATH=str(tree))
    try:
        result = subprocess.run(
            command, cwd=tree, env=environment, capture_output=True, text=True,
            timeout=AB_TIMEOUT_S, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{tree}: the bench did not finish in {AB_TIMEOUT_S:.0f} s") from exc
    if result.returncode != 0:
        raise BenchError(f"{tree}: the bench failed: {result.stderr.strip()[-500:]}")
    rates = {}
    for figure in json.loads(result.stdout)["figures"]:
        found = PER_CPU_SECOND.search(figure.get("detail", ""))
        if found:
            rates[figure["name"]] = (float(found.group(1).replace(",", "")), figure["value"])
    return rates


def ab_figures(other: Path, quick: bool) -> list[Figure]:
    """This checkout against `other`, AB_ROUNDS runs each, alternated; the median of each,
    per CPU second (the ratio) and per wall second (in the detail)."""
    here = BENCH_DIR.parent
    runs: dict[Path, list[dict[str, tuple[float, float]]]] = {here: [], other: []}
    for _ in range(AB_ROUNDS):
        for tree in (here, other):
            runs[tree].append(tree_rates(tree, quick))
    figures = []
    for name in runs[here][0]:
        theirs = [run[name] for run in runs[other] if name in run]
        if not theirs:
            continue
        ours = [run[name] for run in runs[here]]
        ours_cpu, ours_wall = (statistics.median(rates[i] for rates in ours) for i in (0, 1))
        their_cpu, their_wall = (statistics.median(rates[i] for rates in theirs) for i in (0, 1))
        detail = (
            f"{their_cpu:,.0f} from {other}; ratio {ours_cpu / their_cpu:.2f}x; "
            f"wall {ours_wall:,.0f} against {their_wall:,.0f}"
        )
        figures.append(Figure(f"{name}, per CPU s", ours_cpu, "per CPU s", detail))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (about 20 s in all)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--only",
        choices=SECTIONS,
        action="append",
        help="run only this section (repeatable): mips (1), banner (2), bare (3-5)",
    )
    parser.add_argument(
        "--against",
        type=Path,
        metavar="TREE",
        help="A/B: the bare section from here and from the checkout TREE, alternated",
    )
    args = parser.parse_args()
    if args.against is not None:
        try:
            print_table(ab_figures(args.against.resolve(), args.quick))
        except BenchError as error:
            sys.exit(f"bench_machine: {error}")
        return
    settings = (
        Settings(target_s=0.4, repeats=1, banner_runs=3, qemu_startup_runs=3)
        if args.quick
        else Settings(target_s=1.5, repeats=3, banner_runs=5, qemu_startup_runs=5)
    )
    host = host_summary()
    if not args.json:
        print(f"host: {host} (figures from one run share the host: compare ratios, not MIPS)")
    figures: list[Figure] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-machine-") as build_dir:
            assembler = Assembler(Path(build_dir))
            sections = {
                "mips": lambda: mips_figures(assembler, settings),
                "banner": lambda: banner_figures(settings),
                "bare": lambda: bare_figures(assembler, settings),
            }
            for name in args.only or SECTIONS:
                section_figures = sections[name]()
                figures += section_figures
                if not args.json:
                    print_table(section_figures)
    except BenchError as error:
        sys.exit(f"bench_machine: {error}")
    if args.json:
        report = {"host": host, "figures": [asdict(figure) for figure in figures]}
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
