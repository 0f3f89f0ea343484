"""The seam between a /dev/market session and a backtest (kernel/trading/program.py), driven
from the host as the kernel drives it, with a CPU clock the test advances by hand: the replay
waits for the program, a command enters the venue at the program's own time (its compute time
is its tick-to-order latency, exactly), a read at the end of the data is end of file, and a
stopped program's strategy ends STOPPED with what ran kept."""

from __future__ import annotations

import errno

from tradekernel.kernel.trading.backtest import FillModel, RiskLimits
from tradekernel.kernel.trading.book import BUY, IOC
from tradekernel.kernel.trading.marketport import (
    COMMAND,
    EV_FILL,
    EV_TOP,
    EVENT,
    F_ASK,
    F_BID,
    OP_SUBMIT,
    OP_SUBSCRIBE,
    MarketPort,
)
from tradekernel.kernel.trading.program import ProgramBacktest, ProgramStrategy
from tradekernel.research.synthetic import SessionSpec, generate

SESSION, _ = generate(SessionSpec(events=1500, seed=5))
MODEL = FillModel()
PID = 7
COMPUTE_NS = 777


class Program:
    """A program's view: its CPU clock, its session, what it read."""

    def __init__(self, data_name: str = "s.itch", data: bytes = SESSION,
                 why: str = "") -> None:  # fmt: skip
        self.cpu = 0
        self.ends = 0
        strategy = ProgramStrategy()
        strategy.name = "prog"
        strategy.params = {"args": "", "silence_limit_ms": 100}  # type: ignore[attr-defined]
        self.link = ProgramBacktest(strategy, data_name, data, MODEL, RiskLimits(), "hash",
                                    lambda: self.cpu, lambda: why, self._ended)  # fmt: skip
        self.link.start()
        self.port = self.session()

    def _ended(self) -> None:
        self.ends += 1

    def session(self) -> MarketPort:
        port = MarketPort(None, [], {PID: self.link})  # type: ignore[arg-type]
        port.bind("prog", PID)
        return port

    def command(self, op: int, side: int = 0, price: int = 0, qty: int = 0, tif: int = 0,
                port: MarketPort | None = None) -> int:  # fmt: skip
        return (port or self.port).handle(COMMAND.pack(op, 0, 0, side, b"SYNTH", price, qty,
                                                       tif, 0))  # fmt: skip

    def read(self) -> list[tuple]:
        data = self.port.take(1)
        return [EVENT.unpack_from(data, i) for i in range(0, len(data), EVENT.size)]


def test_a_command_enters_the_venue_at_the_programs_own_time() -> None:
    program = Program()
    program.cpu = 1_000
    assert program.command(OP_SUBSCRIBE) == COMMAND.size
    (top,) = program.read()  # the top at subscribe time, stamped with the program's time
    assert top[0] == EV_TOP and top[2] == 1_000
    sent = None
    while True:
        while len(program.port.queue):  # what came while it "computed" (it did not)
            program.read()
        got = program.read()  # nothing queued: the replay runs until the next record
        if not got:
            break  # end of file
        kind, flags = got[0][0], got[0][1]
        if sent is None and kind == EV_TOP and flags & (F_BID | F_ASK) == F_BID | F_ASK:
            program.cpu += COMPUTE_NS  # it thinks, then takes the ask
            assert program.command(OP_SUBMIT, BUY, got[0][10], 100, IOC) == COMMAND.size
            sent = got[0]
    assert sent is not None and program.read() == []  # still the end
    assert program.command(OP_SUBSCRIBE) == -errno.EPIPE
    result = program.link.result
    assert result is not None and result.strategy_error is None and program.ends == 1
    assert result.tick_to_order_ns == [MODEL.md_latency_ns + COMPUTE_NS]
    (fill,) = result.fills
    assert fill[0] == sent[2] + MODEL.md_latency_ns + COMPUTE_NS + MODEL.order_latency_ns
    assert fill[3] == BUY and fill[4] == sent[10]


def test_the_program_sees_its_fill_and_a_second_session_is_refused() -> None:
    program = Program()
    other = program.session()
    assert program.command(OP_SUBSCRIBE, port=other) == -errno.EBUSY
    assert other.take(1) == b""
    program.command(OP_SUBSCRIBE)
    kinds = []
    while got := program.read():
        kinds.append(got[0][0])
        if got[0][0] == EV_TOP and got[0][1] & F_ASK and OP_SUBMIT not in kinds:
            kinds.append(OP_SUBMIT)
            program.command(OP_SUBMIT, BUY, got[0][10], 1, IOC)
    assert EV_FILL in kinds[kinds.index(OP_SUBMIT):]


def test_a_program_that_dies_stops_its_strategy_and_keeps_what_ran() -> None:
    program = Program(why="prog[7] died: segmentation fault")
    program.command(OP_SUBSCRIBE)
    for _ in range(50):
        program.read()
    program.cpu += 5_000
    program.port.close()
    result = program.link.result
    assert result is not None and result.strategy_error == "prog[7] died: segmentation fault"
    assert result.events > 0 and program.ends >= 1


def test_data_that_cannot_be_read_ends_the_run_at_its_start() -> None:
    program = Program("session.bin", SESSION)
    assert program.link.finished and program.link.result is None and program.ends == 1
    assert program.link.error == "session.bin: unknown feed format (expected .itch, .fix or .csv)"
    assert program.port.take(1) == b""
