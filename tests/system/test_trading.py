"""The trading desk end to end: orders, books, positions, risk and feeds typed into the booted
OS through the PS/2 keyboard and read back from the console, with the kernel's own start-up
(/etc/instruments.toml from the disk, command registration) and paced feeds on the machine
clock. Assertions are on facts (order ids, quantities, prices, states, positions), not on the
wording around them."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
import simplefix

from tests.system.harness import SECOND, BootedPc
from tradekernel.disktool import create_os_disk, open_volume, write_files

MS = 1_000_000
INSTRUMENTS = b"""
[instruments.TKX]
tick_size = 0.05
lot_size = 10
price_band = [10, 500]
multiplier = 2

[instruments.ESZ6]
tick_size = 0.25
lot_size = 1
price_band = [1000, 20000]
multiplier = 50
"""
# Quotes one virtual second apart (ts_ns relative: a paced replay anchors the first at "now").
QUOTES = b"""ts_ns,symbol,bid,bid_qty,ask,ask_qty
0,ESZ6,5000.00,10,5000.25,12
1000000000,ESZ6,5000.25,3,5000.50,4
2000000000,ESZ6,5001.00,7,5001.25,9
"""


def booted(tmp_path: Path, files: dict[str, bytes]) -> BootedPc:
    disk = tmp_path / "disk.img"
    create_os_disk(disk)
    with open_volume(disk) as fs:
        write_files(fs, files)
    return BootedPc(tmp_path, disk=disk).boot()


def number(text: str) -> Decimal:
    """A figure from a table cell, whatever the money formatting ("-1,234.50", "$10")."""
    return Decimal(text.replace(",", "").replace("$", ""))


def table(lines: list[str]) -> list[list[str]]:
    """The rows under a header line, split on blanks."""
    return [line.split() for line in lines[1:] if line.strip()]


def orders(tk: BootedPc) -> dict[int, dict[str, object]]:
    """Open orders by id: owner, symbol, side, qty, filled, price, state (columns found by
    their headings, so a new column does not shift them)."""
    printed = tk.output("orders all")
    heading = printed[0].split()
    if "ID" not in heading:  # "no open orders"
        return {}
    at = {name: heading.index(name) for name in
          ("ID", "OWNER", "SYM", "SIDE", "QTY", "FILLED", "PRICE", "STATE")}  # fmt: skip
    return {
        int(r[at["ID"]]): {"owner": r[at["OWNER"]], "sym": r[at["SYM"]], "side": r[at["SIDE"]],
                           "qty": int(r[at["QTY"]]), "filled": int(r[at["FILLED"]]),
                           "price": number(r[at["PRICE"]]), "state": r[at["STATE"]]}
        for r in table(printed)
    }  # fmt: skip


def positions(tk: BootedPc) -> dict[tuple[str, str], int]:
    """(owner, symbol) -> quantity."""
    return {(r[0], r[1]): int(r[2]) for r in table(tk.output("pos all")) if len(r) == 4}


def average_prices(tk: BootedPc) -> dict[tuple[str, str], Decimal]:
    """(owner, symbol) -> average price, for open positions."""
    rows = table(tk.output("pos all"))
    return {(r[0], r[1]): number(r[3]) for r in rows if len(r) == 4 and int(r[2])}


def order_id(printed: list[str]) -> int:
    """The id an order command gave its order ("#12 shell buy ...")."""
    match = re.match(r"#(\d+) ", printed[0])
    assert match, printed
    return int(match.group(1))


def state(printed: list[str]) -> str:
    """The order's state word in an order command's reply (FILLED, ACCEPTED, ...)."""
    words = re.findall(r"\b[A-Z][A-Z_]{4,}\b", "\n".join(printed[1:]))
    assert words, printed
    return words[-1]


def book(tk: BootedPc, symbol: str) -> dict[str, tuple[Decimal, int]]:
    """Best ask and bid from `book SYM 1`: side -> (price, size)."""
    rows = table(tk.output(f"book {symbol} 1"))
    return {r[0]: (number(r[1]), int(r[2])) for r in rows if r[0] in ("ask", "bid")}


def test_instruments_come_from_the_disk(tmp_path: Path) -> None:
    """/etc/instruments.toml on the disk replaces the defaults at boot: its ticks and lots
    are what orders typed at the shell are held to."""
    tk = booted(tmp_path, {"/etc/instruments.toml": INSTRUMENTS})
    commands = {line.split()[0] for line in tk.output("help") if line.strip()}
    desk = {"instruments", "book", "buy", "sell", "cancel", "replace", "orders", "trades", "pos",
            "pnl", "risk", "kill-switch", "feed"}  # fmt: skip
    assert desk <= commands, desk - commands  # registered with the shell at boot
    rows = table(tk.output("instruments"))
    assert [(r[0], number(r[1]), number(r[2]), number(r[3])) for r in rows] == [
        ("TKX", Decimal("0.05"), 10, 2), ("ESZ6", Decimal("0.25"), 1, 50),
    ]  # fmt: skip
    assert not tk.output("buy AAPL 1 @100")[0].startswith("#")  # AAPL is unknown now
    assert order_id(tk.output("sell TKX 100 @20.05 -o mm")) == 1
    for refused in ("buy TKX 5 @20.05", "buy TKX 10 @20.03", "buy TKX 10 @600"):
        printed = tk.output(refused)  # off the lot, off the tick, outside the band
        assert not any(line.startswith("#") for line in printed), (refused, printed)
    assert list(orders(tk)) == [1]
    printed = tk.output("buy TKX 30 @20.05")
    assert state(printed) == "FILLED"
    assert positions(tk) == {("mm", "TKX"): -30, ("shell", "TKX"): 30}
    assert average_prices(tk) == {
        ("mm", "TKX"): Decimal("20.05"),
        ("shell", "TKX"): Decimal("20.05"),
    }


def test_a_bad_instruments_file_falls_back_to_the_defaults(tmp_path: Path) -> None:
    tk = booted(tmp_path, {"/etc/instruments.toml": b"[instruments.X]\ntick_size = 0.01\n"})
    boot_lines = bytes(tk.serial).decode("cp437").splitlines()
    assert any(line.startswith("trading: /etc/instruments.toml:") for line in boot_lines)
    assert {r[0] for r in table(tk.output("instruments"))} == {"AAPL", "MSFT", "ESZ6", "BTCUSD"}
    assert state(tk.output("buy AAPL 1 @100")) == "ACCEPTED"


def test_an_oversized_instruments_file_is_refused_unread(tmp_path: Path) -> None:
    tk = booted(tmp_path, {"/etc/instruments.toml": b"#" * (64 * 1024 + 1)})
    boot_lines = bytes(tk.serial).decode("cp437").splitlines()
    assert "trading: /etc/instruments.toml: 65537 bytes, more than 65536; using defaults" in (
        boot_lines
    )
    assert state(tk.output("buy AAPL 1 @100")) == "ACCEPTED"


def test_orders_book_positions_pnl_risk_and_the_kill_switch(tmp_path: Path) -> None:
    tk = booted(tmp_path, {})
    # a resting offer, a market buy against it, a limit buy that rests
    assert order_id(tk.output("sell AAPL 10 @189.50 -o mm")) == 1
    printed = tk.output("buy AAPL 4")
    assert order_id(printed) == 2 and state(printed) == "FILLED"
    assert state(tk.output("buy AAPL 10 @189.40")) == "ACCEPTED"
    assert book(tk, "AAPL") == {"ask": (Decimal("189.50"), 6), "bid": (Decimal("189.40"), 10)}
    # a crossing buy larger than the offer: partly filled, the rest rests as the best bid
    printed = tk.output("buy AAPL 8 @189.50")
    assert order_id(printed) == 4 and state(printed).startswith("PARTIAL")
    open_orders = orders(tk)
    assert sorted(open_orders) == [3, 4]
    assert open_orders[3] == {
        "owner": "shell",
        "sym": "AAPL",
        "side": "BUY",
        "qty": 10,
        "filled": 0,
        "price": Decimal("189.40"),
        "state": "ACCEPTED",
    }
    assert {k: v for k, v in open_orders[4].items() if k != "state"} == {
        "owner": "shell",
        "sym": "AAPL",
        "side": "BUY",
        "qty": 8,
        "filled": 6,
        "price": Decimal("189.50"),
    }
    assert str(open_orders[4]["state"]).startswith("PARTIAL")
    # replace #3 (price and quantity), cancel #4
    assert state(tk.output("replace 3 @189.45 6")) == "REPLACED"
    tk.output("cancel 4")
    assert list(orders(tk)) == [3]
    assert orders(tk)[3]["qty"] == 6 and orders(tk)[3]["price"] == Decimal("189.45")
    assert book(tk, "AAPL") == {"bid": (Decimal("189.45"), 6)}
    # shell now holds 10 bought at 189.50; sell them one dollar higher to mm: realised 10
    tk.output("buy AAPL 10 @190.50 -o mm")
    printed = tk.output("sell AAPL 10 @190.50")
    assert state(printed) == "FILLED"
    assert positions(tk) == {("mm", "AAPL"): 0, ("shell", "AAPL"): 0}
    pnl = {r[0]: [number(x) for x in r[1:]] for r in table(tk.output("pnl all"))}
    assert pnl["shell"][0] == 10 and pnl["mm"][0] == -10 and pnl["TOTAL"][0] == 0
    trades = table(tk.output("trades"))
    assert [(r[1], int(r[2]), number(r[3]), r[4]) for r in trades] == [
        ("AAPL", 4, Decimal("189.50"), "shell/mm"), ("AAPL", 6, Decimal("189.50"), "shell/mm"),
        ("AAPL", 10, Decimal("190.50"), "mm/shell"),
    ]  # fmt: skip
    # a pre-trade limit: set it, see it, be refused by it
    tk.output("risk set shell max_order_qty 100")
    limits = {r[0]: r[1] for r in table(tk.output("risk shell")) if len(r) >= 2}
    assert limits["max_order_qty"] == "100"
    printed = tk.output("buy AAPL 101 @189.00")
    assert "rejected" in " ".join(printed).lower() and "max_order_qty" in " ".join(printed)
    assert list(orders(tk)) == [3]
    # the kill switch cancels an owner's orders and blocks new ones until released
    tk.output("sell AAPL 5 @191.00 -o algo")
    tk.output("buy AAPL 5 @188.00 -o algo")
    assert sorted(o["owner"] for o in orders(tk).values()) == ["algo", "algo", "shell"]
    tk.output("kill-switch algo")
    assert [o["owner"] for o in orders(tk).values()] == ["shell"]
    assert "rejected" in " ".join(tk.output("buy AAPL 1 @188.00 -o algo")).lower()
    assert [o["owner"] for o in orders(tk).values()] == ["shell"]
    tk.output("kill-switch algo off")
    assert state(tk.output("buy AAPL 1 @188.00 -o algo")) == "ACCEPTED"


def test_a_paced_feed_follows_the_machine_clock(tmp_path: Path) -> None:
    """`feed --pace` applies each quote at its own time on the machine's clock, while the
    shell goes on taking commands; a shell order then trades against the feed's quote."""
    tk = booted(tmp_path, {"/etc/instruments.toml": INSTRUMENTS, "/data/q.csv": QUOTES})
    tk.output("feed /data/q.csv --pace")
    start = tk.machine.clock.now_ns()
    assert book(tk, "ESZ6") == {"ask": (Decimal("5000.25"), 12), "bid": (Decimal("5000.00"), 10)}
    tk.run_to_stop(start + 990 * MS - tk.machine.clock.now_ns())
    assert book(tk, "ESZ6")["ask"] == (Decimal("5000.25"), 12)  # not yet: 10 ms to go
    tk.run_to_stop(20 * MS)
    assert book(tk, "ESZ6") == {"ask": (Decimal("5000.50"), 4), "bid": (Decimal("5000.25"), 3)}
    tk.run_to_stop(SECOND)
    assert book(tk, "ESZ6") == {"ask": (Decimal("5001.25"), 9), "bid": (Decimal("5001.00"), 7)}
    printed = tk.output("buy ESZ6 3")
    assert state(printed) == "FILLED"
    assert positions(tk) == {("shell", "ESZ6"): 3, ("csv", "ESZ6"): -3}
    assert average_prices(tk)[("shell", "ESZ6")] == Decimal("5001.25")
    last = table(tk.output("trades"))[-1]
    assert (last[1], int(last[2]), number(last[3])) == ("ESZ6", 3, Decimal("5001.25"))
    assert 2.0 < float(last[0]) < 2.1  # traded just after the third quote, in virtual seconds


@pytest.mark.parametrize("line", ["feed /data/none.csv", "feed /data/q.csv --pace extra"])
def test_feed_mistakes_are_one_line_and_the_desk_goes_on(tmp_path: Path, line: str) -> None:
    tk = booted(tmp_path, {"/data/q.csv": QUOTES})
    printed = tk.output(line)
    assert printed and not any(row.startswith("#") for row in printed)  # said why, no order
    assert book(tk, "ESZ6") == {}
    assert state(tk.output("buy ESZ6 1 @5000")) == "ACCEPTED"


def test_self_trade_prevention_keeps_an_owner_from_trading_with_itself(tmp_path: Path) -> None:
    """Which of the two orders is cancelled is the STP mode's choice; that no trade happens,
    and that one order stays to trade with someone else, are the facts."""
    tk = booted(tmp_path, {})
    tk.output("sell AAPL 5 @100 -o mm")
    assert order_id(tk.output("buy AAPL 5 @100 -o mm")) == 2
    assert positions(tk) == {} and not any("AAPL" in line for line in tk.output("trades"))
    (left,) = orders(tk).values()
    assert left["owner"] == "mm" and left["qty"] == 5 and left["filled"] == 0
    other_side = "sell" if left["side"] == "BUY" else "buy"
    printed = tk.output(f"{other_side} AAPL 5 @100")  # another owner trades with it
    assert state(printed) == "FILLED"
    assert positions(tk)[("shell", "AAPL")] == (5 if other_side == "buy" else -5)


def fix_messages(*messages: tuple[str, list[tuple[int, object]]]) -> bytes:
    """FIX 4.4 messages as simplefix (an independent implementation) encodes them."""
    out = b""
    for seq, (msg_type, pairs) in enumerate(messages, start=1):
        message = simplefix.FixMessage()
        for tag, value in [(8, "FIX.4.4"), (35, msg_type), (49, "ALGO"), (56, "TK"), (34, seq),
                           (52, f"20260102-09:30:0{seq}.000"), *pairs]:  # fmt: skip
            message.append_pair(tag, value)
        out += message.encode()
    return out


def test_a_fix_file_on_the_disk_feeds_books_and_orders(tmp_path: Path) -> None:
    snapshot = [(55, "MSFT"), (268, 2), (269, 0), (270, "410.10"), (271, 300),
                (269, 1), (270, "410.12"), (271, 200)]  # fmt: skip
    order = [(11, "c1"), (55, "MSFT"), (54, 1), (38, 50), (40, 2), (44, "410.12"), (59, 3)]
    tk = booted(tmp_path, {"/data/s.fix": fix_messages(("W", snapshot), ("D", order))})
    tk.output("feed /data/s.fix")
    assert book(tk, "MSFT") == {"ask": (Decimal("410.12"), 150), "bid": (Decimal("410.10"), 300)}
    assert positions(tk)[("ALGO", "MSFT")] == 50
