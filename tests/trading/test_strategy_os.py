"""Strategies and backtests inside the booted OS, typed at the shell and read back from the
console: the samples and a strategy from the disk run live on the desk's books fed by a paced
ITCH replay; one that loops forever and one that raises are stopped with an oops while the OS
and the others go on; `backtest` inside the OS gives the same figures on every run, and the
same fills as the host's run of the same code; a live session replayed twice in deterministic
mode gives the same orders, trades and P&L."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from tests.system.harness import SECOND, BootedPc
from tests.system.test_trading import booted
from tradekernel.kernel.trading import strategies
from tradekernel.kernel.trading.backtest import run_backtest
from tradekernel.research.config import load
from tradekernel.research.synthetic import SessionSpec, generate

SESSION, _ = generate(SessionSpec(events=6000, seed=3))
LOOPS = b"""from tradekernel.kernel.trading.strategy import Strategy

class Loops(Strategy):
    def on_book(self, ctx, top):
        while True:
            try:
                while True:
                    pass
            except Exception:  # a retry loop: the watchdog's shot is not an Exception
                pass
"""
RAISES = b"""from tradekernel.kernel.trading.strategy import Strategy

class Raises(Strategy):
    def on_trade(self, ctx, trade):
        raise ZeroDivisionError("bad idea")
"""
ONLY_SYNTH = b'[instruments]\nsymbols = ["SYNTH"]\n'
FILES = {"/data/s.itch": SESSION, "/strategies/loops.py": LOOPS,
         "/strategies/loops.toml": ONLY_SYNTH, "/strategies/raises.py": RAISES,
         "/strategies/raises.toml": ONLY_SYNTH}  # fmt: skip


def status(tk: BootedPc) -> dict[str, list[str]]:
    """owner -> [state, pos, net, orders, events] from `strategy status` (CPU left out: it is
    host time)."""
    rows = {}
    for line in tk.output("strategy status")[1:]:
        words = line.split()
        if len(words) == 9 and words[0].isdigit():
            rows[words[1]] = words[2:7]
    return rows


def test_strategies_run_live_and_the_broken_ones_are_stopped_alone(tmp_path: Path) -> None:
    tk = booted(tmp_path, FILES)
    tk.expected_failures = ("oops",)
    listed = {line.split()[0]: line.split()[1] for line in tk.output("strategy list")[1:]}
    assert listed == {"imbalance": "sample", "loops": "/strategies/loops.py",
                      "market_maker": "sample", "momentum": "sample",
                      "raises": "/strategies/raises.py"}  # fmt: skip
    params = tk.output("strategy params market_maker --param size=300")
    assert re.search(r"^size\s+int\s+100\s+300$", "\n".join(params), re.M), params
    assert "unknown parameter" in tk.output("strategy start market_maker --param sise=1")[0]
    tk.output("feed /data/s.itch --pace")
    for name in ("market_maker", "loops", "raises", "imbalance"):
        assert "started" in tk.output(f"strategy start {name}")[0]
    tk.run_to_stop(3 * SECOND)
    rows = status(tk)
    assert rows["loops-2"][0] == "stopped" and rows["raises-3"][0] == "stopped"
    assert rows["market_maker-1"][0] == "running" and rows["imbalance-4"][0] == "running"
    assert int(rows["market_maker-1"][4]) > 100  # events delivered after the others stopped
    lines = tk.output("strategy status")
    text = "\n".join(lines)
    mm_row = next(i for i, line in enumerate(lines) if "market_maker-1" in line)
    assert re.match(r"tick-to-order ns \(\d+ orders\): p50 \d+ p90", lines[mm_row + 1].strip())
    assert "used more than 250 ms of CPU" in text and "ZeroDivisionError: bad idea" in text
    oopses = [line for line in tk.output("dmesg") if "strategy: oops:" in line]
    assert len(oopses) == 2, oopses
    mm_orders = [line for line in tk.output("orders -o market_maker-1") if "market_maker-1" in line]
    assert mm_orders  # it quotes on the live book
    assert tk.output("strategy stop 1") == ["strategy 1 (market_maker-1) stopped"]
    assert not [line for line in tk.output("orders -o market_maker-1") if "market_maker-1" in line]
    assert "no strategy with id 1" in tk.output("strategy stop 1")[0]
    assert tk.output("echo still here") == ["still here"]


def backtest_lines(tk: BootedPc, command: str) -> list[str]:
    return [line for line in tk.output(command, 60 * SECOND) if line.strip()]


def test_backtests_in_the_os_repeat_exactly_and_match_the_host(tmp_path: Path) -> None:
    tk = booted(tmp_path, {"/data/s.itch": SESSION})
    first = backtest_lines(tk, "backtest imbalance /data/s.itch")
    assert first[0].startswith("backtest imbalance on s.itch: ok, ")
    assert backtest_lines(tk, "backtest imbalance /data/s.itch") == first
    fills = re.search(r"fills (\d+) \(sha256 ([0-9a-f]{16})\)", "\n".join(first))
    assert fills and int(fills.group(1)) > 0, first
    # the host runs the same code on the same bytes: the same fills, to the byte
    sample = Path(strategies.__file__).parent / "imbalance.py"
    strategy, config, digest = load(sample)
    result = run_backtest(strategy, "s.itch", SESSION, config.fill, config.risk, digest)
    assert hashlib.sha256(result.fills_csv().encode()).hexdigest()[:16] == fills.group(2)
    assert f"hash {digest[:12]}" in first[0]
    changed = backtest_lines(tk, "backtest imbalance /data/s.itch --param size=200")
    assert changed[0] != first[0]  # another configuration: another hash
    assert "no such strategy" in tk.output("backtest nosuch /data/s.itch")[0]
    assert "cannot read" in tk.output("backtest imbalance /data/none.itch")[0]


def live_session(tmp_path: Path) -> list[str]:
    tmp_path.mkdir()
    tk = booted(tmp_path, FILES)
    tk.output("feed /data/s.itch --pace")
    tk.output("strategy start market_maker")
    tk.output("strategy start imbalance")
    tk.run_to_stop(2 * SECOND)
    rows = status(tk)
    return [*(" ".join(rows[k]) for k in sorted(rows)), *tk.output("orders all"),
            *tk.output("trades 50"), *tk.output("pnl all")]  # fmt: skip


def test_a_live_session_replays_identically(tmp_path: Path) -> None:
    one = live_session(tmp_path / "one")
    two = live_session(tmp_path / "two")
    assert one == two
    assert any("market_maker-1" in line for line in one)
