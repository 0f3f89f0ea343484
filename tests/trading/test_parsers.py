"""FIX against simplefix both ways, ITCH round trips through an independent encoder, CSV rows."""

from __future__ import annotations

from decimal import Decimal

import pytest
import simplefix

from tradekernel.kernel.trading import csvticks, fix, itch
from tradekernel.kernel.trading.book import BUY, POST, SELL
from tradekernel.kernel.trading.engine import TradingEngine

# ---- FIX --------------------------------------------------------------------------------------


def simplefix_pairs(data: bytes) -> list[tuple[int, str]]:
    parser = simplefix.FixParser()
    parser.append_buffer(data)
    msg = parser.get_message()
    assert msg is not None
    return [(int(tag), value.decode()) for tag, value in msg.pairs]


def engine_messages() -> list[bytes]:
    clock = [5_000_000_123]
    engine = TradingEngine(lambda: clock[0])
    writer = fix.FixWriter("TK", "CLIENT", lambda: clock[0])
    maker = engine.submit("mm", "AAPL", SELL, 5, 10000, POST, client_id="m-1")
    taker = engine.submit("s", "AAPL", BUY, 3, 10001, client_id="c-1")
    aapl = engine.instrument("AAPL")
    bids, asks = engine.book("AAPL").depth(5)
    return [
        writer.logon(),
        writer.heartbeat(),
        writer.execution_report(maker, aapl, fix.EXEC_PARTIAL, 3, 10000),
        writer.execution_report(taker, aapl, fix.EXEC_FILL, 3, 10000, text="done"),
        writer.market_data_snapshot(aapl, bids, asks, last=(10000, 3)),
    ]


def test_every_engine_message_parses_with_simplefix_field_for_field():
    for data in engine_messages():
        ours, end = fix.parse_message(data)
        assert end == len(data)
        assert simplefix_pairs(data) == ours.fields


def test_execution_report_content():
    report, _ = fix.parse_message(engine_messages()[3])
    assert report.msg_type == "8"
    assert report[fix.ORD_STATUS] == "2" and report[fix.LAST_PX] == "100.00"
    assert report[fix.CUM_QTY] == "3" and report[fix.LEAVES_QTY] == "0"
    assert report[fix.AVG_PX] == "100" and report[fix.TEXT] == "done"
    assert report[fix.SENDING_TIME] == "19700101-00:00:05.000"


def simplefix_messages() -> list[bytes]:
    out = []

    def new(msg_type: str, seq: int) -> simplefix.FixMessage:
        msg = simplefix.FixMessage()
        msg.append_pair(8, "FIX.4.4")
        msg.append_pair(35, msg_type)
        msg.append_pair(49, "CLIENT")
        msg.append_pair(56, "TK")
        msg.append_pair(34, seq)
        msg.append_pair(52, "20240102-09:30:00.000")
        return msg

    m = new("A", 1)
    m.append_pair(98, 0)
    m.append_pair(108, 30)
    out.append(m.encode())
    out.append(new("0", 2).encode())
    m = new("D", 3)
    for tag, value in [(11, "o1"), (55, "AAPL"), (54, 1), (38, 100), (40, 2), (44, "189.50"),
                       (59, 0), (60, "20240102-09:30:00.001")]:  # fmt: skip
        m.append_pair(tag, value)
    out.append(m.encode())
    m = new("F", 4)
    for tag, value in [(41, "o1"), (11, "o2"), (55, "AAPL"), (54, 1)]:
        m.append_pair(tag, value)
    out.append(m.encode())
    m = new("8", 5)
    for tag, value in [(37, 7), (17, 9), (150, "F"), (39, 1), (55, "AAPL"), (54, 2),
                       (151, 40), (14, 60), (6, "189.5")]:  # fmt: skip
        m.append_pair(tag, value)
    out.append(m.encode())
    m = new("W", 6)
    m.append_pair(55, "MSFT")
    m.append_pair(268, 2)
    for kind, px, qty in [(0, "410.10", 300), (1, "410.12", 200)]:
        m.append_pair(269, kind)
        m.append_pair(270, px)
        m.append_pair(271, qty)
    out.append(m.encode())
    m = new("X", 7)
    m.append_pair(268, 2)
    for action, kind, px, qty in [(0, 0, "410.11", 100), (2, 1, "410.12", 200)]:
        m.append_pair(279, action)
        m.append_pair(269, kind)
        m.append_pair(55, "MSFT")
        m.append_pair(270, px)
        m.append_pair(271, qty)
    out.append(m.encode())
    return out


def test_every_simplefix_message_parses_here_field_for_field():
    for data in simplefix_messages():
        ours, _ = fix.parse_message(data)
        assert ours.fields == simplefix_pairs(data)


def test_market_data_repeating_groups():
    snapshot, _ = fix.parse_message(simplefix_messages()[5])
    assert snapshot.groups[268] == [
        {269: "0", 270: "410.10", 271: "300"},
        {269: "1", 270: "410.12", 271: "200"},
    ]
    incremental, _ = fix.parse_message(simplefix_messages()[6])
    assert [e[279] for e in incremental.groups[268]] == ["0", "2"]


def test_group_count_mismatch_rejected():
    data = simplefix_messages()[5].replace(b"268=2", b"268=3")
    data = fix_checksum(data)
    with pytest.raises(fix.FixError, match="says 3 entries, found 2"):
        fix.parse_message(data)


def fix_checksum(data: bytes) -> bytes:
    body = data[: data.rindex(b"10=")]
    return body + b"10=%03d\x01" % (sum(body) % 256)


def test_bad_checksum_rejected_with_offset():
    data = simplefix_messages()[1]
    good = int(data[-4:-1])
    bad = data[:-4] + b"%03d\x01" % ((good + 1) % 256)
    with pytest.raises(fix.FixError) as info:
        fix.parse_message(bad)
    assert "CheckSum" in info.value.reason and info.value.offset == len(data) - 7


def test_bad_body_length_rejected():
    data = simplefix_messages()[1]
    start = data.index(b"9=") + 2
    end = data.index(b"\x01", start)
    wrong = data[:start] + str(int(data[start:end]) - 1).encode() + data[end:]
    with pytest.raises(fix.FixError, match="BodyLength"):
        fix.parse_message(wrong)


def test_stream_skips_bad_message_and_continues():
    good = simplefix_messages()
    broken = good[2].replace(b"AAPL", b"AAPX")  # checksum no longer matches
    errors: list[fix.FixError] = []
    parsed = list(fix.parse_stream(good[0] + b"\n" + broken + good[3], errors))
    assert [m.msg_type for m in parsed] == ["A", "F"]
    assert len(errors) == 1  # the offset points at the failing CheckSum field
    assert errors[0].offset == len(good[0]) + 1 + broken.rindex(b"10=")


def test_missing_required_tag_rejected():
    msg = simplefix.FixMessage()
    for tag, value in [(8, "FIX.4.4"), (35, "D"), (49, "C"), (56, "T"), (34, 1), (11, "x")]:
        msg.append_pair(tag, value)
    with pytest.raises(fix.FixError, match="required tag 55"):
        fix.parse_message(msg.encode())


# ---- ITCH: an encoder written here, independent of the parser's Structs --------------------


def head(kind: bytes, locate: int, tracking: int, ts: int) -> bytes:
    return kind + locate.to_bytes(2, "big") + tracking.to_bytes(2, "big") + ts.to_bytes(6, "big")


def u(n: int, width: int) -> bytes:
    return n.to_bytes(width, "big")


def alpha(text: str, width: int) -> bytes:
    return text.ljust(width).encode()


TS = 34_200_000_000_123  # 09:30:00.000000123


SAMPLES = {
    "S": (head(b"S", 0, 1, TS) + b"O", itch.SystemEvent(0, 1, TS, "O")),
    "R": (
        head(b"R", 7, 2, TS)
        + alpha("AAPL", 8)
        + b"Q"
        + b"N"
        + u(100, 4)
        + b"N"
        + b"C"
        + b"Z "
        + b"P"
        + b"N"
        + b"N"
        + b"1"
        + b"N"
        + u(0, 4)
        + b"N",
        itch.StockDirectory(
            7, 2, TS, "AAPL", "Q", "N", 100, "N", "C", "Z", "P", "N", "N", "1", "N", 0, "N"
        ),
    ),  # fmt: skip
    "A": (
        head(b"A", 7, 3, TS) + u(42, 8) + b"B" + u(100, 4) + alpha("AAPL", 8) + u(1895000, 4),
        itch.AddOrder(7, 3, TS, 42, "B", 100, "AAPL", 1895000, None),
    ),
    "F": (
        head(b"F", 7, 4, TS)
        + u(43, 8)
        + b"S"
        + u(50, 4)
        + alpha("AAPL", 8)
        + u(1896000, 4)
        + b"GSCO",
        itch.AddOrder(7, 4, TS, 43, "S", 50, "AAPL", 1896000, "GSCO"),
    ),  # fmt: skip
    "E": (
        head(b"E", 7, 5, TS) + u(42, 8) + u(30, 4) + u(9001, 8),
        itch.OrderExecuted(7, 5, TS, 42, 30, 9001, None, None),
    ),
    "C": (
        head(b"C", 7, 6, TS) + u(42, 8) + u(20, 4) + u(9002, 8) + b"Y" + u(1894900, 4),
        itch.OrderExecuted(7, 6, TS, 42, 20, 9002, "Y", 1894900),
    ),
    "X": (head(b"X", 7, 7, TS) + u(42, 8) + u(10, 4), itch.OrderCancel(7, 7, TS, 42, 10)),
    "D": (head(b"D", 7, 8, TS) + u(42, 8), itch.OrderDelete(7, 8, TS, 42)),
    "U": (
        head(b"U", 7, 9, TS) + u(43, 8) + u(44, 8) + u(60, 4) + u(1895500, 4),
        itch.OrderReplace(7, 9, TS, 43, 44, 60, 1895500),
    ),
    "P": (
        head(b"P", 7, 10, TS)
        + u(0, 8)
        + b"B"
        + u(25, 4)
        + alpha("AAPL", 8)
        + u(1895100, 4)
        + u(9003, 8),
        itch.TradeMessage(7, 10, TS, 0, "B", 25, "AAPL", 1895100, 9003),
    ),  # fmt: skip
}


def frame(message: bytes) -> bytes:
    return len(message).to_bytes(2, "big") + message


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_itch_round_trip_each_type(kind):
    data, expected = SAMPLES[kind]
    raw = itch.parse_one(data)
    assert itch.decode(raw) == expected
    assert itch.encode(raw) == data
    assert list(itch.iter_messages(frame(data))) == [expected]
    assert list(itch.iter_messages(data, framed=False)) == [expected]


def test_itch_stream_of_all_types_framed_and_raw():
    order = sorted(SAMPLES)
    framed = b"".join(frame(SAMPLES[k][0]) for k in order)
    assert list(itch.iter_messages(framed)) == [SAMPLES[k][1] for k in order]
    raw = b"".join(SAMPLES[k][0] for k in order)
    assert list(itch.iter_messages(raw, framed=False)) == [SAMPLES[k][1] for k in order]


def test_itch_unknown_and_wrong_length_skipped_with_offset():
    good_a = frame(SAMPLES["A"][0])
    unknown = frame(b"Z" + bytes(10))
    short_d = frame(SAMPLES["D"][0][:-1])
    data = good_a + unknown + short_d + frame(SAMPLES["X"][0])
    errors: list[itch.ItchError] = []
    msgs = list(itch.iter_messages(data, errors=errors))
    assert msgs == [SAMPLES["A"][1], SAMPLES["X"][1]]
    assert [e.offset for e in errors] == [len(good_a) + 2, len(good_a) + len(unknown) + 2]
    assert "unknown message type" in errors[0].reason and "length says 18" in errors[1].reason


def test_itch_truncated_message_reported():
    data = frame(SAMPLES["A"][0]) + frame(SAMPLES["E"][0])[:-5]
    errors: list[itch.ItchError] = []
    assert len(list(itch.iter_messages(data, errors=errors))) == 1
    assert errors[0].offset == 38 and "truncated" in errors[0].reason
    with pytest.raises(itch.ItchError, match="truncated"):
        list(itch.iter_raw(SAMPLES["A"][0][:-1], framed=False))
    with pytest.raises(itch.ItchError, match="unknown message type"):
        itch.parse_one(b"Z" + bytes(20))


# ---- CSV ---------------------------------------------------------------------------------------


def test_csv_formats_and_bad_rows():
    data = b"ts_ns,symbol,bid,bid_qty,ask,ask_qty\n1,AAPL,189.50,100,189.52,200\n2,AAPL,x,1,2,3\n"
    errors: list[csvticks.CsvError] = []
    rows = list(csvticks.parse(data, errors))
    assert rows == [
        ("quote", 1, "AAPL", (Decimal("189.50"), Decimal(100), Decimal("189.52"), Decimal(200)), 2)
    ]
    assert errors[0].line == 3 and errors[0].offset == data.index(b"2,AAPL")
    with pytest.raises(csvticks.CsvError, match="unknown header"):
        list(csvticks.parse(b"a,b\n1,2\n"))
    bars = b"ts_ns,symbol,open,high,low,close,volume\n5,ESZ6,5000,5001,4999,5000.25,10\n"
    assert next(csvticks.parse(bars))[3][3] == Decimal("5000.25")
