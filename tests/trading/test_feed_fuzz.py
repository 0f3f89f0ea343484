"""Huge numbers and hostile bytes in feeds and commands (issue 15 item 6): each bad message is
rejected with where it is and why, the rest of the file is replayed, paced or not, and only the
feed's own errors ever come out. The fuzz is seeded and bounded (a fixed number of mutants)."""

from __future__ import annotations

import random

import pytest
import simplefix

from tests.trading.test_commands import itch_file, make_desk, run
from tradekernel.kernel.trading import fix, itch
from tradekernel.kernel.trading.csvticks import CsvError
from tradekernel.kernel.trading.feed import open_feed
from tradekernel.kernel.trading.fix import FixError
from tradekernel.kernel.trading.itch import ItchError


def fix_message(seq: int, msg_type: str, pairs: list[tuple[int, object]]) -> bytes:
    m = simplefix.FixMessage()
    for tag, value in [(8, "FIX.4.4"), (35, msg_type), (49, "ALGO"), (56, "TK"), (34, seq),
                       (52, f"20240102-09:30:{seq:02d}.000"), *pairs]:  # fmt: skip
        m.append_pair(tag, value)
    return m.encode()


def order(seq: int, qty: object = 5, price: object = "410.12") -> bytes:
    return fix_message(
        seq, "D", [(11, f"c{seq}"), (55, "MSFT"), (54, 1), (38, qty), (40, 2), (44, price)]
    )


def snapshot(seq: int, px: object = "410.10", size: object = 300) -> bytes:
    return fix_message(seq, "W", [(55, "MSFT"), (268, 1), (269, 0), (270, px), (271, size)])


def raw_fix(seq: int, body: bytes) -> bytes:
    """A well-framed message with any body (simplefix would not write some of these)."""
    payload = b"35=D\x0149=ALGO\x0156=TK\x0134=%d\x01" % seq + body
    head = b"8=FIX.4.4\x019=%d\x01" % len(payload)
    frame = head + payload
    return frame + b"10=%03d\x01" % (sum(frame) % 256)


FIX_FILE = (
    order(1)
    + order(2, qty="1E+100")
    + order(3, price="1E+100")
    + snapshot(4, px="1E+100")
    + snapshot(5, size="1" + "0" * 60)
    + raw_fix(6, b"9" * 5000 + b"=1\x01")
    + fix_message(7, "W", [(55, "MSFT"), (268, "9" * 5000), (269, 0), (270, "1"), (271, 1)])
    + order(8, qty=7)
)

CSV_FILE = (
    b"ts_ns,symbol,price,qty\n"
    b"100,AAPL,190.00,1e100\n"
    b"200,AAPL,1e60,5\n"
    b"300,AAPL," + b"9" * 5000 + b",5\n"
    b"" + b"9" * 5000 + b",AAPL,190.00,5\n"
    b"400,AAPL,190.01,5\n"
)


def test_fix_huge_numbers_rejected_one_by_one_rest_replayed():
    desk, _ = make_desk({"a.fix": FIX_FILE})
    status, sink = run(desk, "feed a.fix")
    assert status == 1 and "internal error" not in sink.text
    assert "2 messages applied, 6 errors" in sink.text
    assert desk.engine.portfolio.position_qty("ALGO", "MSFT") == 0  # nothing crossed
    assert [o.qty for o in desk.engine.open_orders("ALGO")] == [5, 7]
    feed = desk.feeds[-1] if desk.feeds else None
    assert feed is None  # unpaced feeds are not kept
    assert "offset " in sink.text and "too large" in sink.text


@pytest.mark.parametrize("paced", [False, True])
def test_csv_huge_numbers_each_rejected_with_line(paced):
    desk, clock = make_desk({"t.csv": CSV_FILE})
    status, sink = run(desk, "feed t.csv" + (" --pace" if paced else ""))
    clock.run()
    feed = open_feed(desk.engine, "t.csv", CSV_FILE, paced=False)
    feed.run(0)
    lines = sorted(e.line for e in feed.errors)
    assert lines == [2, 3, 4, 5]
    assert all(isinstance(e, CsvError) for e in feed.errors)
    assert desk.engine.book("AAPL").last_price == 19001
    assert "internal error" not in sink.text


@pytest.mark.parametrize("paced", [False, True])
def test_fix_paced_huge_numbers_do_not_escape_the_timer(paced):
    desk, clock = make_desk({"a.fix": FIX_FILE})
    run(desk, "feed a.fix" + (" --pace" if paced else ""))
    clock.run()  # the timer callbacks replay the whole file; nothing raises out of them
    assert [o.qty for o in desk.engine.open_orders("ALGO")] == [5, 7]


@pytest.mark.parametrize(
    "header", [b"", b"\n", b"ts_ns,symbol\n1,AAPL\n", b"\xff\xfe,,,\n1,2\n", b",,,,\n"]
)
def test_bad_or_empty_csv_header_is_a_feed_error_naming_the_formats(header):
    desk, _ = make_desk({"h.csv": header})
    status, sink = run(desk, "feed h.csv")
    assert status == 1 and "internal error" not in sink.text
    assert "ts_ns,symbol,price,qty" in sink.text and "line 1" in sink.text


def test_itch_apply_errors_say_offset():
    desk, _ = make_desk({"d.itch": itch_file()})
    run(desk, "feed d.itch")
    feed = open_feed(desk.engine, "d.itch", itch_file(), paced=False)
    feed.run(0)
    texts = [str(e) for e in feed.errors]
    assert any("offset" in t and "unknown order reference 99" in t for t in texts), texts


@pytest.mark.parametrize(
    "line",
    ["buy AAPL 1e100", "buy AAPL 10 @1e100", "sell AAPL 1E+100 @100", "buy AAPL " + "9" * 5000,
     "buy AAPL 10 @1e-100"],
)  # fmt: skip
def test_order_commands_with_huge_numbers_give_one_line(line):
    desk, _ = make_desk()
    status, sink = run(desk, line)
    assert status == 2
    assert sink.text.count("\n") == 1 and sink.text.startswith("error: ")
    assert len(sink.text) < 120


def test_replace_with_huge_numbers_gives_one_line():
    desk, _ = make_desk()
    run(desk, "buy AAPL 10 @100")
    for line in ["replace 1 @1e100", "replace 1 1e100", "replace 1 @100 " + "9" * 5000]:
        status, sink = run(desk, line)
        assert status == 2 and sink.text.count("\n") == 1, sink.text
        assert sink.text.startswith("error: ")


# ---- the seeded fuzz ---------------------------------------------------------------------------

_BIG = [b"1E+100", b"1e60", b"9" * 5000, b"-0", b"NaN", b"1e-100", b"\xff", b"", b"0" * 70 + b"1"]
OWN_ERRORS = (ItchError, FixError, CsvError, str)


def _mutate(rng: random.Random, data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        pos = rng.randrange(len(data) + 1)
        choice = rng.random()
        if choice < 0.3 and data:
            data[min(pos, len(data) - 1)] = rng.randrange(256)
        elif choice < 0.6:
            data[pos:pos] = rng.choice(_BIG)
        elif choice < 0.8:
            del data[pos : pos + rng.randint(1, 40)]
        else:
            data[pos:pos] = data[rng.randrange(len(data) + 1) :][: rng.randint(1, 60)]
    return bytes(data)


def _itch_with_big_fields() -> bytes:
    base = itch_file()
    big = itch.frame(itch.encode((b"A", 1, 0, 0, 9_000, 7, b"S", 0xFFFFFFFF, b"AAPL    ",
                                  0xFFFFFFFF)))  # fmt: skip
    return base + big


SEEDS = {
    "f.itch": _itch_with_big_fields(),
    "f.fix": FIX_FILE,
    "f.csv": CSV_FILE
    + b"500,AAPL,190.02,5\n".replace(b"500", b"600")
    + b"ts_ns,symbol,bid,bid_qty,ask,ask_qty\n",
}


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_seeded_feed_fuzz_only_feed_errors_come_out(name):
    rng = random.Random(f"tradekernel-feed-fuzz-{name}")
    for case in range(150):
        data = _mutate(rng, SEEDS[name])
        paced = case % 2 == 1
        desk, clock = make_desk({name: data})
        try:
            status, sink = run(desk, f"feed {name}" + (" --pace" if paced else ""))
            clock.run()
        except Exception as err:  # pragma: no cover - the failure being looked for
            raise AssertionError(f"case {case} ({data[:80]!r}...) raised {err!r}") from err
        assert status in (0, 1), sink.text
        feed = open_feed(desk.engine, name, data, paced=False)
        feed.run(0)
        assert all(isinstance(e, OWN_ERRORS) for e in feed.errors), feed.errors
        assert fix.SOH  # the module under test stays imported for the message checks


def test_extreme_accepted_values_keep_money_arithmetic_inside_its_precision():
    from tradekernel.kernel.trading.book import BUY, SELL
    from tradekernel.kernel.trading.engine import TradingEngine
    from tradekernel.kernel.trading.instruments import InstrumentTable

    config = (
        "[instruments.BIG]\ntick_size = 0.000000000003\nlot_size = 0.000000000007\n"
        "multiplier = 999999999999999\nprice_band = [0.000000000003, 999999999999999]\n"
    )
    engine = TradingEngine(lambda: 0, InstrumentTable.from_toml(config))
    big = engine.instrument("BIG")
    lots = big.qty_to_lots("999999999999.999999999999")
    high, low = big.band_high_ticks, big.band_high_ticks // 3
    engine.submit("a", "BIG", SELL, lots, high)
    engine.submit("b", "BIG", BUY, lots, high)
    engine.submit("a", "BIG", BUY, lots // 2, low)
    engine.submit("b", "BIG", SELL, lots // 2, low)
    for realized, unrealized, fees in engine.pnl().values():
        assert realized.is_finite() and unrealized.is_finite() and fees == 0
