"""Ring-3 strategies on /dev/market in the booted OS: the C momentum taker
(images/programs/mdtaker.c, shipped in /bin as build.py builds it; a test checks the shipped
binary is what its source builds to, with gcc against the project's libc) trades a paced ITCH replay
through the kernel's engine, and its own count of fills, lots, position and cash matches the
engine's book of its fills exactly; a copy that segfaults with an order resting dies alone:
its order is cancelled, the engine, the feed and a Python strategy started beside it go on,
and the shell still answers."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.system.harness import SECOND, BootedPc
from tests.system.test_trading import booted
from tradekernel.firmware import user_programs
from tradekernel.kernel.trading.book import GTC
from tradekernel.research.synthetic import SessionSpec, generate

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = ROOT / "images" / "programs"
LIB = PROGRAMS / "lib"
SESSION, _ = generate(SessionSpec(events=6000, seed=3))


def build_mdtaker(tmp_path: Path) -> bytes:
    sys.path.insert(0, str(PROGRAMS))
    from build import COMMON_FLAGS  # type: ignore[import-not-found]

    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is needed to build the ring-3 strategy")
    target = tmp_path / "mdtaker"
    subprocess.run([gcc, *COMMON_FLAGS, "-I", str(LIB), "-T", str(LIB / "user.ld"),
                    str(LIB / "crt0.S"), str(LIB / "libc.c"), str(PROGRAMS / "mdtaker.c"),
                    "-o", str(target)], check=True, timeout=120)  # fmt: skip
    return target.read_bytes()


def test_the_shipped_mdtaker_is_what_its_source_builds_to(tmp_path: Path) -> None:
    assert user_programs()["mdtaker"] == build_mdtaker(tmp_path)


def boot_with_mdtaker(tmp_path: Path) -> BootedPc:
    return booted(tmp_path, {"/data/s.itch": SESSION})  # /bin/mdtaker ships on the OS disk


def engine_fills(tk: BootedPc, owner: str) -> tuple[int, int, int, int]:
    """(fills, lots, position, cash in tick-lots) of `owner` from the engine's own records."""
    engine = tk.pc.kernel.trading
    fills = lots = position = cash = 0
    for order in [*engine.finished, *engine.live.values()]:
        if order.owner == owner and order.filled:
            lots += order.filled
            position += order.side * order.filled
            cash -= order.side * order.notional
    fills = sum(1 for t in engine.trades if owner in (t.buyer, t.seller))
    return fills, lots, position, cash


def test_a_ring3_momentum_taker_trades_the_live_book(tmp_path: Path) -> None:
    tk = boot_with_mdtaker(tmp_path)
    tk.output("feed /data/s.itch --pace")
    tk.command("mdtaker SYNTH 2000 &")
    ports = tk.pc.kernel.market.bound
    tk.run_until(lambda: ports and ports[0].events > 500, 10 * SECOND)
    status = tk.output("strategy status")
    row = next(i for i, line in enumerate(status) if "mdtaker-" in line)
    pid = status[row].split()[0]
    assert status[row].split()[1:3] == [f"mdtaker-{pid[1:]}", "ring3"], status
    latency = re.fullmatch(r"tick-to-order ns \((\d+) orders\): p50 (\d+) p90 \d+ p99 \d+ max "
                           r"(\d+)", status[row + 1].strip())  # fmt: skip
    assert latency and int(latency[1]) > 0 and 0 < int(latency[2]) <= int(latency[3]), status
    tk.run_until(lambda: "mdtaker: events" in tk.text(), 30 * SECOND)
    found = [line for line in tk.lines() if line.startswith("mdtaker:")]
    words = found[0].split()
    figures = dict(zip(words[1::2], (int(w) for w in words[2::2]), strict=True))
    assert figures["events"] >= 2000 and figures["orders"] > 0, figures
    assert figures["fills"] > 0 and abs(figures["position"]) <= 300, figures
    owners = {o.owner for o in [*tk.pc.kernel.trading.finished]}
    owner = next(o for o in owners if o.startswith("mdtaker-"))
    fills, lots, position, cash = engine_fills(tk, owner)
    assert (figures["fills"], figures["lots"], figures["position"], figures["cash"]) == (
        fills, lots, position, cash)


def test_a_ring3_strategy_that_segfaults_dies_alone(tmp_path: Path) -> None:
    tk = boot_with_mdtaker(tmp_path)
    tk.output("feed /data/s.itch --pace")
    assert "started" in tk.output("strategy start imbalance")[0]
    engine = tk.pc.kernel.trading
    tk.command("mdtaker SYNTH 400 crash", 30 * SECOND)
    text = "\n".join(tk.lines())
    assert "segmentation fault at 0x00000000" in text, text
    owner = next(o.owner for o in engine.finished if o.owner.startswith("mdtaker-"))
    rested = [o for o in engine.finished if o.owner == owner and o.tif == GTC]
    assert [o.reason for o in rested] == [f"{owner} closed /dev/market"]
    assert not engine.open_orders(owner)
    events_before = engine.bus.next_seq()
    tk.run_to_stop(2 * SECOND)
    assert engine.bus.next_seq() > events_before + 100  # the feed goes on
    rows = [line for line in tk.output("strategy status") if "imbalance-1" in line]
    assert rows and "running" in rows[0], rows
    assert tk.output("echo still here") == ["still here"]
