"""LOBSTER message files: good lines read, bad ones reported by line and skipped, and the
same day replayed through the kernel's `feed` after conversion to ITCH 5.0."""

from __future__ import annotations

import pytest

from tests.trading.test_commands import make_desk, run
from tradekernel.kernel.trading import lobster

# the marketable-order example of LOBSTER's documentation, around a small book
SAMPLE = b"""34200.000000001,1,11,100,200000,-1
34200.000000002,1,12,100,200000,-1
34200.000000003,1,13,100,200100,-1
34200.000000004,1,21,300,199900,1
34200.5,4,11,100,200000,-1
34200.5,4,12,100,200000,-1
34200.5,5,0,500,200000,1
34200.5,4,13,100,200100,-1
34200.500000001,1,31,200,200100,1
34201.25,2,21,100,199900,1
34202,7,0,0,-1,-1
34203,7,0,0,1,-1
34204,6,0,1000,200050,1
34205,3,31,200,200100,1
"""


def test_read_sample():
    messages = list(lobster.read(SAMPLE))
    assert len(messages) == 14
    first = messages[0]
    assert (first.ts_ns, first.kind, first.order_id, first.size, first.price, first.direction) == (
        34_200_000_000_001,
        lobster.SUBMIT,
        11,
        100,
        200000,
        -1,
    )
    assert messages[4].ts_ns == 34_200_500_000_000
    assert [m.kind for m in messages[10:12]] == [lobster.HALT, lobster.HALT]


BAD = (
    b"""34200.1,1,1,100,200000,1
not,a,line
34200.2,9,1,100,200000,1
34200.3,1,2,100,200000,0
99999.0,1,3,100,200000,1
34200.4,1,4,"""
    + b"9" * 5000
    + b""",200000,1
34200.5,1,5,100,-5,1
34200.0000000001,1,6,100,1,1
34200.6,1,7,100,200000
34200.7,1,8,100,200100,-1
"""
)


def test_bad_lines_are_reported_by_line_and_skipped():
    errors: list[lobster.LobsterError] = []
    good = list(lobster.read(BAD, errors))
    assert [m.order_id for m in good] == [1, 8]
    assert [e.line for e in errors] == [2, 3, 4, 5, 6, 7, 8, 9]
    assert all(len(str(e)) < 120 for e in errors)
    with pytest.raises(lobster.LobsterError, match="line 2"):
        list(lobster.read(BAD))


def test_converted_day_replays_through_feed():
    data = lobster.to_itch(lobster.read(SAMPLE), "ZVZZT")
    desk, _ = make_desk({"zvzzt.itch": data})
    status, sink = run(desk, "feed zvzzt.itch")
    assert status == 0, sink.text
    assert "trading action 2" in sink.text
    book = desk.engine.book("ZVZZT")
    # left: nothing on the ask side (11, 12, 13 executed), bid 21 cut to 200; 31 deleted
    assert book.l1() == (199900, 200, None, 0)
    assert book.volume == 100 + 100 + 500 + 100 + 1000  # E, E, hidden P, E, cross Q


def test_bad_symbol_refused():
    with pytest.raises(ValueError):
        lobster.to_itch([], "WAY-TOO-LONG")
