"""A ring-3 strategy in a backtest (kernel/trading/program.py): what running the C program
/bin/mdtaker as the strategy of the OS's `backtest` costs, against a Python strategy on the
same data in the same machine.

A deterministic TradeKernel PC boots with a synthetic ITCH 5.0 session (seeded) of --events
messages on its disk; the shell runs `backtest /bin/mdtaker /data/s.itch -- SYNTH 0` (every top
and trade of SYNTH goes to the program through /dev/market, the replay waiting for each of
its answers) and `backtest momentum /data/s.itch` (the Python sample, on the same books).
Printed per run: wall seconds from Enter to the prompt, replayed events per wall second, the
process's CPU seconds and context switches (voluntary, involuntary) meanwhile, the events the
program read (its own count), its answers (reads that found nothing queued: one turn of the
replay each, as every write), wall and CPU us per answer (everything the machine does for it:
the program, its system calls, the replay, the hand-offs), and the machine's virtual ns the
program used (its whole CPU time: the sum of its compute, its latency).

--against REF also runs program.py as it is at git revision REF (loaded from `git show`, in
place of today's for those runs only), in the same machine, the two taking turns for
--rounds rounds (ABBA order), so both meet the same load; it checks that both print the same
figures, and ends with each one's median events/s and wall and CPU us per answer.

--split adds one more run of today's program.py with greenlet.settrace timing each switch,
and prints where an answer's wall time goes: in the replay (run_backtest and its gates, from
the switch into it to the switch out) and in the machine between turns (the program, its
system calls, the kernel). The tracer itself adds a little to both.

--seam first times the seam alone, without a machine: a host loop reads the program's
session as the kernel does (each variant, --rounds rounds, ABBA), wall and CPU us per answer:
what the hand-off and the replay cost with no program and no system calls around them.

Run: .venv/bin/python bench/bench_ring3_backtest.py [--events N] [--against main --rounds 3]
     [--split] [--seam]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import greenlet

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.system.harness import SECOND, BootedPc  # noqa: E402
from tests.system.test_trading import booted  # noqa: E402
from tradekernel.kernel.shell import strategy as shell_strategy  # noqa: E402
from tradekernel.kernel.trading import program as program_module  # noqa: E402
from tradekernel.kernel.trading.backtest import FillModel, RiskLimits  # noqa: E402
from tradekernel.kernel.trading.marketport import COMMAND, OP_SUBSCRIBE, MarketPort  # noqa: E402
from tradekernel.research.synthetic import SessionSpec, generate  # noqa: E402

PROGRAM_LINE = "backtest /bin/mdtaker /data/s.itch -- SYNTH 0"
PYTHON_LINE = "backtest momentum /data/s.itch"
PROGRAM_PATH = "tradekernel/kernel/trading/program.py"
SEAM_READ = 64  # records a read of the seam loop asks for


def program_at(ref: str) -> types.ModuleType:
    """program.py as it is at git revision `ref`, as a module of its own."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:{PROGRAM_PATH}"],
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    module = types.ModuleType(f"program_at_{ref}")
    sys.modules[module.__name__] = module  # (its classes name their module)
    exec(compile(source, f"{ref}:{PROGRAM_PATH}", "exec"), module.__dict__)  # noqa: S102
    return module


def counting(module: types.ModuleType, turns: list[int]) -> None:
    """Count the reads that take a turn of the replay (answers), in `turns[0]`."""
    real_turn = module.ProgramBacktest._turn  # noqa: SLF001

    def counted(self, kind: str, at: int, value: object) -> None:  # noqa: ANN001
        if kind == "read":
            turns[0] += 1
        real_turn(self, kind, at, value)

    module.ProgramBacktest._turn = counted  # noqa: SLF001


def run(tk: BootedPc, line: str, turns: list[int]) -> tuple[list[str], float, float, float]:
    """Print one run's figures; (the lines of its result, events/s, wall and CPU us per
    answer). The CPU time and the context switches are the whole process's (every thread):
    a loaded host's other work stretches the wall time, much less the CPU time."""
    turns[0] = 0
    virtual = tk.machine.clock.now_ns()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    started, cpu_started = time.perf_counter(), time.process_time()
    out = tk.output(line, 3600 * SECOND)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    after = resource.getrusage(resource.RUSAGE_SELF)
    at = next(i for i, x in enumerate(out) if x.startswith("backtest "))
    events = int(out[at].split(", ")[1].split()[0])
    answers = max(turns[0], 1)
    print(f"  {wall:.2f} s wall, {events / wall:,.0f} events/s ({cpu:.2f} s CPU; context "
          f"switches {after.ru_nvcsw - usage.ru_nvcsw} voluntary, "
          f"{after.ru_nivcsw - usage.ru_nivcsw} involuntary)")  # fmt: skip
    mine = [x for x in out if x.startswith("mdtaker: events")]
    if mine:
        read = int(mine[0].split()[2])
        used = tk.machine.clock.now_ns() - virtual
        print(f"  program read {read} events in {turns[0]} answers, {wall / answers * 1e6:.1f} "
              f"us wall ({cpu / answers * 1e6:.1f} us CPU) per answer; machine time used "
              f"{used} virtual ns")  # fmt: skip
    return out[at:], events / wall, wall / answers * 1e6, cpu / answers * 1e6


def split(tk: BootedPc, turns: list[int]) -> None:
    """One run with every greenlet switch timed: the replay's part of an answer, the rest."""
    kernel = greenlet.getcurrent()
    stamps: list[tuple[bool, int]] = []  # (into the replay?, perf_counter_ns)

    def traced(event: str, args: tuple[greenlet.greenlet, greenlet.greenlet]) -> None:
        if event == "switch":
            stamps.append((args[1] is not kernel, time.perf_counter_ns()))

    print(f"{PROGRAM_LINE}  [program.py: today, every switch timed]")
    previous = greenlet.settrace(traced)
    try:
        run(tk, PROGRAM_LINE, turns)
    finally:
        greenlet.settrace(previous)
    spans = {True: [], False: []}  # span from a switch to the next, by where it ran
    for (into, at), (_, end) in zip(stamps, stamps[1:], strict=False):
        spans[into].append(end - at)
    for name, into in (("in the replay", True), ("in the machine between turns", False)):
        ns = spans[into]
        print(f"  {name}: median {statistics.median(ns) / 1e3:.1f} us, mean "
              f"{statistics.mean(ns) / 1e3:.1f} us, {sum(ns) / 1e9:.2f} s in all")  # fmt: skip


def seam_once(module: types.ModuleType, session: bytes) -> tuple[float, float, int]:
    """The seam alone, no machine: a host loop reads a program's session of `session` as the
    kernel does, its CPU clock moving 100 ns between reads, to the end of the data.
    (wall us, CPU us per answer, answers)."""
    clock = [0]
    strategy = module.ProgramStrategy()
    strategy.name = "seam"
    strategy.params = {"args": "", "silence_limit_ms": 100}
    link = module.ProgramBacktest(strategy, "s.itch", session, FillModel(), RiskLimits(), "",
                                  lambda: clock[0], lambda: "", lambda: None)  # fmt: skip
    link.start()
    port = MarketPort(None, [], {1: link})  # type: ignore[arg-type]
    port.bind("seam", 1)
    port.handle(COMMAND.pack(OP_SUBSCRIBE, 0, 0, 0, b"SYNTH", 0, 0, 0, 0))
    answers = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    while True:
        while len(port.queue):
            port.take(SEAM_READ)
        clock[0] += 100
        answers += 1
        if not port.take(SEAM_READ):
            break
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return wall / answers * 1e6, cpu / answers * 1e6, answers


def seam(variants: dict[str, types.ModuleType], session: bytes, rounds: int) -> None:
    """Print each variant's median wall and CPU us per answer of the seam alone."""
    runs: dict[str, list[tuple[float, float, int]]] = {name: [] for name in variants}
    for round_ in range(rounds):
        order = list(variants.items())
        for name, module in order[::-1] if round_ % 2 else order:
            runs[name].append(seam_once(module, session))
    print(f"the seam alone (no machine), median of {rounds} rounds:")
    for name, figures in runs.items():
        wall, cpu, answers = (statistics.median(column) for column in zip(*figures, strict=True))
        print(f"  program.py {name}: {wall:.1f} us wall, {cpu:.1f} us CPU per answer "
              f"({answers:.0f} answers)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--against", metavar="REF", help="also run program.py as of git REF")
    parser.add_argument("--rounds", type=int, default=1, help="turns of each with --against")
    parser.add_argument("--split", action="store_true", help="time the replay's part apart")
    parser.add_argument("--seam", action="store_true", help="also time the seam alone")
    args = parser.parse_args()
    session, _ = generate(SessionSpec(events=args.events, seed=3))
    turns = [0]
    variants = {"today": program_module}
    if args.against:
        variants[args.against] = program_at(args.against)
    for module in variants.values():
        counting(module, turns)
    print(f"load average {os.getloadavg()[0]:.2f}; session of {args.events} messages")
    if args.seam:
        seam(variants, session, args.rounds)
    figures: dict[str, list[tuple[float, ...]]] = {name: [] for name in variants}
    results: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory() as folder:
        tk = booted(Path(folder), {"/data/s.itch": session})
        for round_ in range(args.rounds if args.against else 1):
            order = list(variants.items())
            for name, module in order[::-1] if round_ % 2 else order:  # ABBA: no one always first
                shell_strategy.ProgramBacktest = module.ProgramBacktest
                shell_strategy.ProgramStrategy = module.ProgramStrategy
                print(f"{PROGRAM_LINE}  [program.py: {name}]")
                result, *measured = run(tk, PROGRAM_LINE, turns)
                figures[name].append(tuple(measured))
                if results.setdefault("first", result) != result:
                    raise SystemExit(f"program.py {name} printed other figures:\n"
                                     + "\n".join(result))  # fmt: skip
            print(PYTHON_LINE)
            run(tk, PYTHON_LINE, turns)
        if args.split:
            shell_strategy.ProgramBacktest = program_module.ProgramBacktest
            shell_strategy.ProgramStrategy = program_module.ProgramStrategy
            split(tk, turns)
    if args.against:
        print(f"median of {args.rounds} rounds (same figures from both):")
        for name, runs in figures.items():
            rate, wall, cpu = (statistics.median(column) for column in zip(*runs, strict=True))
            print(f"  program.py {name}: {rate:,.0f} events/s, {wall:.1f} us wall, {cpu:.1f} us "
                  "CPU per answer")  # fmt: skip


if __name__ == "__main__":
    main()
