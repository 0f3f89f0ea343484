"""The /dev/market session (kernel/trading/marketport.py) against a real TradingEngine: the
records match the C header's layout (checked by gcc -m32), commands are checked field by
field and a malformed one is EINVAL, own-order events carry the program's tag and side, a
refusal carries its reason, an overflowing queue drops and says so, and closing cancels."""

from __future__ import annotations

import errno as E
import shutil
import subprocess
from pathlib import Path

import pytest

from tradekernel.kernel.trading.book import BUY, SELL
from tradekernel.kernel.trading.engine import TradingEngine
from tradekernel.kernel.trading.marketport import (
    COMMAND,
    EV_ACCEPTED,
    EV_CANCELLED,
    EV_ERROR,
    EV_FILL,
    EV_REJECTED,
    EV_TOP,
    EV_TRADE,
    EVENT,
    F_ASK,
    F_LOST,
    OP_CANCEL,
    OP_SUBMIT,
    OP_SUBSCRIBE,
    QUEUE_MAX,
    TIF_MARKET,
    MarketPorts,
)

HEADER = Path(__file__).resolve().parents[2] / "images" / "programs" / "lib" / "market.h"


def cmd(op: int, symbol: bytes = b"AAPL", side: int = 0, price: int = 0, qty: int = 0,
        tif: int = 0, order_id: int = 0, tag: int = 0) -> bytes:  # fmt: skip
    return COMMAND.pack(op, order_id, tag, side, symbol, price, qty, tif, 0)


def records(data: bytes) -> list[tuple]:
    return [EVENT.unpack_from(data, i) for i in range(0, len(data), EVENT.size)]


@pytest.fixture
def setup():  # noqa: ANN201
    engine = TradingEngine(lambda: 7)
    ports = MarketPorts(engine)
    port = ports.open()
    port.bind("prog", 42)
    return engine, ports, port


def test_the_header_and_the_records_agree(tmp_path: Path) -> None:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is needed")
    checks = [("mkt_command", "price", 24), ("mkt_command", "tif", 40),
              ("mkt_event", "ts_ns", 8), ("mkt_event", "side", 32), ("mkt_event", "a", 40),
              ("mkt_event", "d", 64), ("mkt_event", "text", 72)]  # fmt: skip
    source = [f'#include "{HEADER}"', "#include <stddef.h>",
              f"_Static_assert(sizeof(struct mkt_command) == {COMMAND.size}, \"command\");",
              f"_Static_assert(sizeof(struct mkt_event) == {EVENT.size}, \"event\");"]  # fmt: skip
    source += [f"_Static_assert(offsetof(struct {s}, {f}) == {o}, \"{f}\");" for s, f, o in checks]
    (tmp_path / "check.c").write_text("\n".join(source) + "\n")
    subprocess.run([gcc, "-m32", "-fsyntax-only", str(tmp_path / "check.c")], check=True,
                   timeout=60)  # fmt: skip


def test_subscribe_trade_and_see_ones_own_orders(setup) -> None:  # noqa: ANN001
    engine, ports, port = setup
    assert ports.bound == [port] and port.owner == "prog-42"
    engine.submit("mm", "AAPL", SELL, 5, 10_000)
    assert port.handle(cmd(OP_SUBSCRIBE)) == COMMAND.size
    (top,) = records(port.take(10))
    assert top[0] == EV_TOP and top[1] == F_ASK and top[10] == 10_000 and top[11] == 5
    assert port.handle(cmd(OP_SUBMIT, side=BUY, price=10_000, qty=2, tag=77)) == COMMAND.size
    kinds = [(r[0], r[4], r[6]) for r in records(port.take(100))]
    assert (EV_ACCEPTED, 77, BUY) in kinds and (EV_FILL, 77, BUY) in kinds
    assert (EV_TRADE, 0, BUY) in kinds and kinds[-1][0] == EV_TOP
    assert port.latencies[-1] == 0  # the clock stands still here: tick-to-order 0 ns
    port.handle(cmd(OP_SUBMIT, side=SELL, qty=1, tif=TIF_MARKET, tag=5))  # nothing to hit
    kinds = [(r[0], r[4]) for r in records(port.take(100))]
    assert (EV_ACCEPTED, 5) in kinds and (EV_CANCELLED, 5) in kinds


def test_two_sessions_of_one_program_are_two_owners(setup) -> None:  # noqa: ANN001
    engine, ports, port = setup
    other = ports.open()
    other.bind("prog", 42)
    assert other.owner == "prog-42.1" and ports.bound == [port, other]
    other.handle(cmd(OP_SUBMIT, side=BUY, price=9_000, qty=1, tag=1))
    port.handle(cmd(OP_SUBMIT, side=BUY, price=9_000, qty=1, tag=2))
    assert {r[4] for r in records(port.take(10))} == {2}  # only its own order's events
    other.close()
    assert [o.owner for o in engine.open_orders()] == ["prog-42"]


def test_refusals_and_malformed_commands(setup) -> None:  # noqa: ANN001
    engine, _, port = setup
    assert port.handle(b"x" * 47) == -E.EINVAL
    assert port.handle(cmd(OP_SUBSCRIBE, symbol=b"NOPE")) == -E.EINVAL
    assert port.handle(cmd(OP_SUBSCRIBE, symbol=b"AA\0PL\0\0\0")) == -E.EINVAL
    assert port.handle(cmd(99)) == -E.EINVAL
    assert port.handle(cmd(OP_SUBMIT, side=2, price=10_000, qty=1)) == -E.EINVAL
    assert port.handle(cmd(OP_SUBMIT, side=BUY, price=10_000, qty=-1)) == -E.EINVAL
    assert port.handle(cmd(OP_SUBMIT, side=BUY, price=10_000, qty=1, tif=9)) == -E.EINVAL
    # the good command before a bad one is carried out, and counted
    both = cmd(OP_SUBSCRIBE) + cmd(OP_SUBMIT, side=BUY, qty=1, tif=7)
    assert port.handle(both) == COMMAND.size and port.symbols == {"AAPL"}
    port.take(10)
    port.handle(cmd(OP_SUBMIT, side=BUY, price=10**15, qty=1, tag=3))  # outside the band
    (rejected,) = [r for r in records(port.take(10)) if r[0] == EV_REJECTED]
    assert rejected[4] == 3 and rejected[12].startswith(b"price ")
    port.handle(cmd(OP_CANCEL, order_id=12345))
    (error,) = records(port.take(10))
    assert error[0] == EV_ERROR and error[3] == 12345 and b"not live" in error[12]
    assert engine.open_orders("prog-42") == []


def test_a_full_queue_drops_and_says_so_and_close_cancels(setup) -> None:  # noqa: ANN001
    engine, ports, port = setup
    port.handle(cmd(OP_SUBSCRIBE))
    port.handle(cmd(OP_SUBMIT, side=BUY, price=9_000, qty=1))
    for n in range(QUEUE_MAX + 10):
        engine.record_trade("AAPL", 10_000 + n % 3, 1)
    assert len(port.queue) == QUEUE_MAX and port.lost > 0
    assert not any(r[1] & F_LOST for r in records(port.take(QUEUE_MAX)))
    engine.record_trade("AAPL", 10_000, 2)
    (after_gap,) = records(port.take(10))
    assert after_gap[0] == EV_TRADE and after_gap[1] == F_LOST and after_gap[9] == 2
    port.close()
    assert engine.open_orders("prog-42") == [] and ports.bound == []
    engine.record_trade("AAPL", 10_000, 1)
    assert not port.queue  # no longer listening
