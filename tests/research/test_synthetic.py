"""The synthetic session generator: the same seed gives the same bytes (in this process and
in another), the flow has the shape the module promises, and the file replays through the
kernel's `feed` into the generator's own final book."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections import Counter

import pytest

from tests.trading.test_commands import make_desk, run
from tradekernel.kernel.trading import itch
from tradekernel.research.synthetic import OPEN_NS, SessionSpec, generate

SPEC = SessionSpec(seed=7, events=6000)


def test_same_seed_same_bytes_different_seed_different():
    data, _ = generate(SPEC)
    assert generate(SPEC)[0] == data
    assert generate(SessionSpec(seed=8, events=6000))[0] != data


def test_same_bytes_in_another_process():
    data, _ = generate(SPEC)
    code = (
        "import hashlib, sys; from tradekernel.research.synthetic import SessionSpec, generate; "
        "sys.stdout.write(hashlib.sha256(generate(SessionSpec(seed=7, events=6000))[0])"
        ".hexdigest())"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, timeout=120).stdout  # fmt: skip
    assert other == hashlib.sha256(data).hexdigest()


def test_flow_has_the_promised_shape():
    data, summary = generate(SPEC)
    messages = list(itch.iter_messages(data))
    kinds = Counter(type(m).__name__ for m in messages)
    flow = summary.adds + summary.cancels + summary.marketable
    assert flow >= SPEC.events  # plus the refills of an empty side and the opening depth
    assert abs(summary.marketable / SPEC.events - SPEC.p_market) < 0.03
    assert abs(summary.cancels / SPEC.events - SPEC.p_cancel) < 0.05
    assert kinds["AddOrder"] == summary.adds and kinds["OrderExecuted"] == summary.executions
    assert kinds["OrderCancel"] + kinds["OrderDelete"] == summary.cancels
    adds = [m for m in messages if type(m).__name__ == "AddOrder"]
    sizes = Counter(m.shares // SPEC.round_lot for m in adds)
    assert all(m.shares % SPEC.round_lot == 0 for m in adds)
    assert sizes[1] > sizes[3] > sizes[8] > 0  # many small orders, a few large ones
    times = [m.timestamp for m in messages]
    assert times == sorted(times) and times[-1] > OPEN_NS
    # most new orders land near the touch, a few far behind it
    assert min(m.price for m in adds) < SPEC.start_price - 50 * SPEC.tick


def test_replays_into_the_generators_book():
    data, summary = generate(SPEC)
    desk, _ = make_desk({"s.itch": data})
    status, sink = run(desk, "feed s.itch")
    assert status == 0 and "0 errors" in sink.text
    book = desk.engine.book(SPEC.symbol)
    assert book.l1() == summary.l1 and not book.is_crossed()
    assert book.volume == summary.traded_shares


@pytest.mark.parametrize(
    "bad", [SessionSpec(events=0), SessionSpec(symbol="TOO-LONG-X"), SessionSpec(p_cancel=0.95),
            SessionSpec(rate_per_s=0), SessionSpec(tick=0)],
)  # fmt: skip
def test_bad_specs_are_refused(bad):
    with pytest.raises(ValueError):
        generate(bad)
