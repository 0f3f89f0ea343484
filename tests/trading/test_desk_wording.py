"""Issue 17 items 11, 13, 14 on the trading desk: self-trade prevention that trades against
other owners and says why it stopped, money to the instrument's precision in aligned columns,
settable firm-wide risk defaults, `-o all`, conflicting order words, and help that reads right
once the kernel splits each COMMANDS entry into usage and description."""

from __future__ import annotations

import pytest

from tests.trading.test_commands import make_desk, run
from tradekernel.kernel.trading.commands import COMMANDS, DETAILS

# ---- self-trade prevention (item 13) -----------------------------------------------------------


def test_stp_market_order_trades_other_owners_liquidity_at_the_same_price():
    desk, _ = make_desk()
    run(desk, "buy AAPL 10 @100")  # own order first in the queue
    run(desk, "buy AAPL 10 @100 -o other")
    status, sink = run(desk, "sell AAPL 15")
    assert status == 0 and "filled 10 avg 100" in sink.text, sink.text
    assert "own order #1 cancelled (self-trade prevention)" in sink.text
    assert desk.engine.portfolio.position_qty("other", "AAPL") == 10
    # the default mode cancelled the owner's own resting bid and kept the rest of the sell
    assert desk.engine.open_orders("shell") == []


def test_stp_cancel_incoming_mode_says_so_and_keeps_the_resting_order():
    desk, _ = make_desk()
    assert run(desk, "stp shell cancel-incoming")[0] == 0
    run(desk, "buy AAPL 10 @100 -o other")
    run(desk, "buy AAPL 10 @100")
    status, sink = run(desk, "sell AAPL 15")
    assert "filled 10 avg 100" in sink.text
    assert "CANCELLED (self-trade prevention)" in sink.text
    assert [o.qty for o in desk.engine.open_orders("shell")] == [10]
    status, sink = run(desk, "sell AAPL 5 @100 ioc")
    assert "CANCELLED (self-trade prevention)" in sink.text and "IOC" in sink.text


def test_stp_command_shows_and_sets_modes():
    desk, _ = make_desk()
    status, sink = run(desk, "stp")
    assert status == 0 and "default: cancel-resting" in sink.text
    assert run(desk, "stp default cancel-both")[0] == 0
    assert run(desk, "stp algo cancel-incoming")[0] == 0
    status, sink = run(desk, "stp")
    assert "default: cancel-both" in sink.text and "algo: cancel-incoming" in sink.text
    assert run(desk, "stp algo default")[0] == 0
    assert "algo" not in run(desk, "stp")[1].text
    status, sink = run(desk, "stp algo sideways")
    assert status == 2 and "cancel-resting" in sink.text


# ---- money and columns (item 14) ------------------------------------------------------------


def test_pnl_all_prints_money_to_the_instruments_precision_in_aligned_columns():
    desk, _ = make_desk()
    run(desk, "buy AAPL 3 @100.01 -o a")
    run(desk, "sell AAPL 3 -o b")
    run(desk, "buy AAPL 1 @100.02 -o c")
    run(desk, "sell AAPL 1 -o a")
    status, sink = run(desk, "pnl all")
    text = sink.text
    assert "E-" not in text and "0E" not in text
    lines = text.splitlines()
    # a: bought 3 @100.01, sold 1 @100.02, marked at 100.02; b short 3 @100.01; c long 1 @100.02
    assert lines[-1].split() == ["TOTAL", "0.01", "-0.01", "0.00", "0.00"], text
    assert len({len(line) for line in lines}) == 1, text  # every column right-aligned
    for line in lines[1:]:
        for cell in line.split()[1:]:
            assert len(cell.rpartition(".")[2]) == 2, line


def test_pnl_of_a_finer_instrument_keeps_its_places():
    desk, _ = make_desk()
    run(desk, "buy BTCUSD 0.0003 @50000.5 -o a")
    run(desk, "sell BTCUSD 0.0003 -o b")
    run(desk, "sell BTCUSD 0.0001 @50001 -o a")
    run(desk, "buy BTCUSD 0.0001 -o b")
    text = run(desk, "pnl -o a")[1].text
    assert "0.00005" in text.splitlines()[1], text  # tick value 0.5 x 0.0001 = 0.00005


# ---- firm-wide risk defaults, -o all, conflicting words (item 14) ----------------------------


@pytest.mark.parametrize("name", ["default", "(default)"])
def test_risk_defaults_are_settable(name):
    desk, _ = make_desk()
    run(desk, "risk set algo max_position 100")
    status, sink = run(desk, f"risk set {name} max_order_qty 5")
    assert status == 0 and "firm-wide" in sink.text
    assert run(desk, "buy AAPL 6 @100")[0] == 1  # an owner without limits of its own
    assert run(desk, "buy AAPL 6 @100 -o algo")[0] == 1  # and one with others of its own
    assert run(desk, "buy AAPL 5 @100")[0] == 0
    run(desk, "risk set algo max_order_qty 50")  # an owner's own rule wins over the default
    assert run(desk, "buy AAPL 6 @100 -o algo")[0] == 0
    run(desk, "risk set algo max_order_qty default")  # back to the firm-wide value
    assert run(desk, "buy AAPL 6 @100 -o algo")[0] == 1
    assert "max_order_qty        5" in run(desk, "risk default")[1].text


@pytest.mark.parametrize("command", ["orders", "pos", "pnl"])
def test_owner_all_means_all(command):
    desk, _ = make_desk()
    run(desk, "buy AAPL 5 @100 -o a")
    run(desk, "sell AAPL 2 -o b")
    run(desk, "buy MSFT 1 @300 -o c")
    everyone = run(desk, f"{command} all")[1].text
    assert run(desk, f"{command} -o all")[1].text == everyone
    names = everyone.split()
    assert "a" in names and ("b" in names or "c" in names), everyone


@pytest.mark.parametrize("owner", ["all", "default", "(default)"])
def test_reserved_owner_names_are_refused_for_orders(owner):
    desk, _ = make_desk()
    status, sink = run(desk, f"buy AAPL 1 @100 -o {owner}")
    assert status == 2 and "reserved" in sink.text


@pytest.mark.parametrize(
    "line, reason",
    [("buy MSFT 10 @300 ioc fok", "ioc and fok conflict"),
     ("sell MSFT 10 @300 post ioc", "post and ioc conflict"),
     ("buy MSFT 10 @300 @301", "two prices")],
)  # fmt: skip
def test_conflicting_order_words_are_named(line, reason):
    desk, _ = make_desk()
    status, sink = run(desk, line)
    assert status == 2 and reason in sink.text, sink.text


# ---- wording (item 11) --------------------------------------------------------------------


def test_counts_are_singular_or_plural():
    desk, _ = make_desk({"a.csv": b"ts_ns,symbol,price,qty\n1,AAPL,1,x\n"})
    run(desk, "buy AAPL 1 @100 -o algo")
    assert "1 order cancelled" in run(desk, "kill-switch algo")[1].text
    assert "1 error\n" in run(desk, "feed a.csv")[1].text


def test_empty_book_says_no_bids_and_no_asks():
    desk, _ = make_desk()
    assert "no bids, no asks" in run(desk, "book AAPL")[1].text
    run(desk, "buy AAPL 1 @100")
    text = run(desk, "book AAPL")[1].text
    assert "no asks" in text and "no bids" not in text


def split(name: str) -> tuple[str, str]:
    """What the kernel does with a COMMANDS entry (tradekernel/kernel/main.py)."""
    usage, _, description = COMMANDS[name][1].partition(": ")
    return usage, description


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_usage_and_description(name):
    usage, description = split(name)
    assert usage.split()[0] == name, usage
    assert description and description != usage and "usage" not in description
    assert len(f"usage: {usage}") <= 80 and len(description) + 2 <= 80


@pytest.mark.parametrize("name", ["cancel", "replace", "buy", "sell", "orders", "pos", "pnl"])
def test_owner_option_in_usage(name):
    assert "-o OWNER" in split(name)[0]


def test_help_feed_explains_formats():
    details = DETAILS["feed"]
    assert ".itch" in details and ".fix" in details and ".csv" in details
    for header in ("ts_ns,symbol,price,qty", "ts_ns,symbol,bid,bid_qty,ask,ask_qty",
                   "ts_ns,symbol,open,high,low,close,volume"):  # fmt: skip
        assert header in details
    assert all(len(line) <= 78 for line in details.splitlines())
    desk, _ = make_desk()
    assert "ts_ns,symbol,price,qty" in run(desk, "feed")[1].text
