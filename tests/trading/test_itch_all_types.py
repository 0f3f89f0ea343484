"""Every TotalView-ITCH 5.0 message type (NASDAQ's spec: 23 types and their lengths), encoded
here byte by byte from the spec's field tables, independently of the parser's Structs; and a
`feed` of a real-exchange-shaped session: every type applied or skipped as its meaning says,
the skipped ones counted by type, exit status 0."""

from __future__ import annotations

import pytest

from tests.trading.test_commands import make_desk, run
from tests.trading.test_parsers import alpha, frame, head, u
from tradekernel.kernel.trading import itch

TS = 34_200_000_000_000  # 09:30:00


def msg(kind: str, ts: int, body: bytes, locate: int = 1) -> bytes:
    return head(kind.encode(), locate, 0, ts) + body


# spec length of each type (the 11-byte common head included)
SPEC_LENGTHS = {"S": 12, "R": 39, "H": 25, "Y": 20, "L": 26, "V": 35, "W": 12, "K": 28, "J": 35,
                "h": 21, "A": 36, "F": 40, "E": 31, "C": 36, "X": 23, "D": 19, "U": 35, "P": 44,
                "Q": 40, "B": 19, "I": 50, "N": 20, "O": 48}  # fmt: skip

STOCK = alpha("ZVZZT", 8)
BODIES = {
    "S": b"O",
    "R": STOCK + b"Q" + b"N" + u(100, 4) + b"N" + b"C" + b"Z " + b"P" + b"N" + b"N" + b"1"
    + b"N" + u(0, 4) + b"N",
    "H": STOCK + b"T" + b" " + alpha("", 4),
    "Y": STOCK + b"0",
    "L": b"GSCO" + STOCK + b"Y" + b"N" + b"A",
    "V": u(1_000_00000000, 8) + u(900_00000000, 8) + u(800_00000000, 8),
    "W": b"1",
    "K": STOCK + u(34_200, 4) + b"A" + u(100_0000, 4),
    "J": STOCK + u(10_0000, 4) + u(11_0000, 4) + u(9_0000, 4) + u(1, 4),
    "h": STOCK + b"Q" + b"H",
    "A": u(1, 8) + b"B" + u(300, 4) + STOCK + u(10_0000, 4),
    "F": u(2, 8) + b"S" + u(200, 4) + STOCK + u(10_0100, 4) + b"GSCO",
    "E": u(1, 8) + u(100, 4) + u(501, 8),
    "C": u(1, 8) + u(50, 4) + u(502, 8) + b"Y" + u(10_0000, 4),
    "X": u(2, 8) + u(50, 4),
    "U": u(2, 8) + u(3, 8) + u(120, 4) + u(10_0200, 4),
    "P": u(0, 8) + b"B" + u(10, 4) + STOCK + u(10_0050, 4) + u(503, 8),
    "Q": u(5000, 8) + STOCK + u(10_0010, 4) + u(504, 8) + b"O",
    "B": u(503, 8),
    "I": u(4000, 8) + u(1000, 8) + b"B" + STOCK + u(10_0100, 4) + u(10_0050, 4) + u(10_0000, 4)
    + b"O" + b"L",
    "N": STOCK + b"B",
    "O": STOCK + b"Y" + u(9_0000, 4) + u(11_0000, 4) + u(10_0000, 4) + u(TS, 8) + u(9_5000, 4)
    + u(10_5000, 4),
    "D": u(1, 8),
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(SPEC_LENGTHS))
def test_each_type_has_the_spec_length_and_round_trips(kind):
    data = msg(kind, TS, BODIES[kind])
    assert len(data) == SPEC_LENGTHS[kind]
    assert itch.SIZES[kind.encode()] == SPEC_LENGTHS[kind]
    raw = itch.parse_one(data)
    assert itch.encode(raw) == data
    named = itch.decode(raw)
    assert named.timestamp == TS and named.locate == 1
    assert list(itch.iter_messages(frame(data))) == [named]


def test_decoded_fields_of_informational_types():
    halt = itch.decode(itch.parse_one(msg("H", TS, BODIES["H"])))
    assert (halt.stock, halt.trading_state) == ("ZVZZT", "T")
    noii = itch.decode(itch.parse_one(msg("I", TS, BODIES["I"])))
    assert (noii.paired_shares, noii.imbalance_shares, noii.imbalance_direction) == (
        4000,
        1000,
        "B",
    )
    assert noii.far_price == 10_0100 and noii.cross_type == "O"
    cross = itch.decode(itch.parse_one(msg("Q", TS, BODIES["Q"])))
    assert (cross.shares, cross.price, cross.cross_type) == (5000, 10_0010, "O")
    dlcr = itch.decode(itch.parse_one(msg("O", TS, BODIES["O"])))
    assert dlcr.near_execution_time == TS and dlcr.upper_price_range_collar == 10_5000


# a session in the order an exchange sends it: directory and state first, then the day
SESSION = ["S", "R", "H", "Y", "L", "V", "K", "J", "h", "A", "F", "E", "C", "X", "U", "P", "Q",
           "B", "I", "N", "O", "W", "D"]  # fmt: skip


def session_file() -> bytes:
    out = b""
    for i, kind in enumerate(SESSION):
        out += frame(msg(kind, TS + i * 1000, BODIES[kind]))
    return out + frame(msg("S", TS + 10**9, b"C"))


@pytest.mark.parametrize("paced", [False, True])
def test_feed_of_a_real_exchange_shaped_session_exits_0(paced):
    desk, clock = make_desk({"day.itch": session_file()})
    status, sink = run(desk, "feed day.itch" + (" --pace" if paced else ""))
    clock.run()
    assert status == 0, sink.text
    book = desk.engine.book("ZVZZT")
    # A 300 @10 bought 100 (E) and 50 (C); F 200 @10.01 cut by 50 (X), replaced by 120 @10.02
    # (U); the delete (D) then removes what is left of the bid
    assert book.l1() == (None, 0, 100200, 120)
    # prints: E 100 + C 50 + P 10 + cross Q 5000 (the broken trade B is counted, not unwound)
    assert book.volume == 5160
    if not paced:
        text = sink.text
        assert "10 messages applied" in text and "0 errors" in text
        names = ["system event 2", "trading action 1", "Reg SHO 1", "participant 1",
                 "MWCB decline 1", "MWCB status 1", "IPO quoting 1", "LULD collar 1",
                 "operational halt 1", "broken trade 1", "NOII 1", "RPII 1", "DLCR 1"]  # fmt: skip
        for name in names:
            assert name in text, (name, text)
        assert max(len(line) for line in text.splitlines()) <= 80
    else:
        feed = desk.feeds[0]
        assert feed.done and not feed.errors
        assert sum(feed.skipped.values()) == 14 and feed.applied == 10
