"""A ring-3 strategy in a backtest (kernel/trading/program.py): what running the C program
/bin/mdtaker as the strategy of the OS's `backtest` costs, against a Python strategy on the
same data in the same machine.

A deterministic TradeKernel PC boots with a synthetic ITCH 5.0 session (seeded) of --events
messages on its disk; the shell runs `backtest /bin/mdtaker /data/s.itch -- SYNTH 0` (every top
and trade of SYNTH goes to the program through /dev/market, the replay waiting for each of
its answers) and `backtest momentum /data/s.itch` (the Python sample, on the same books).
Printed per run: wall seconds from Enter to the prompt, replayed events per wall second, the
events the program read (its own count), its answers (reads that found nothing queued: one
turn of the worker thread each, as every write), wall us per answer, and the machine's
virtual ns the program used (its whole CPU time: the sum of its compute, its latency).

Run: .venv/bin/python bench/bench_ring3_backtest.py [--events N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.system.harness import SECOND  # noqa: E402
from tests.system.test_trading import booted  # noqa: E402
from tradekernel.kernel.trading import program as program_module  # noqa: E402
from tradekernel.research.synthetic import SessionSpec, generate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    session, _ = generate(SessionSpec(events=args.events, seed=3))
    turns = [0]
    real_turn = program_module.ProgramBacktest._turn  # noqa: SLF001

    def counted(self, kind: str, at: int, value: object) -> None:  # noqa: ANN001
        if kind == "read":
            turns[0] += 1
        real_turn(self, kind, at, value)

    program_module.ProgramBacktest._turn = counted  # type: ignore[method-assign]  # noqa: SLF001
    print(f"load average {os.getloadavg()[0]:.2f}; session of {args.events} messages")
    with tempfile.TemporaryDirectory() as folder:
        tk = booted(Path(folder), {"/data/s.itch": session})
        for line in ("backtest /bin/mdtaker /data/s.itch -- SYNTH 0",
                     "backtest momentum /data/s.itch"):  # fmt: skip
            turns[0] = 0
            virtual = tk.machine.clock.now_ns()
            started = time.perf_counter()
            out = tk.output(line, 3600 * SECOND)
            wall = time.perf_counter() - started
            head = next(x for x in out if x.startswith("backtest "))
            events = int(head.split(", ")[1].split()[0])
            mine = [x for x in out if x.startswith("mdtaker: events")]
            print(f"{line}\n  {wall:.2f} s wall, {events / wall:,.0f} events/s")
            if mine:
                read = int(mine[0].split()[2])
                used = tk.machine.clock.now_ns() - virtual
                print(f"  program read {read} events in {turns[0]} answers, "
                      f"{wall / max(turns[0], 1) * 1e6:.1f} us wall per answer; "
                      f"machine time used {used} virtual ns")  # fmt: skip


if __name__ == "__main__":
    main()
