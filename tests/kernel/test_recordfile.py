"""A record file (kernel/fs/recordfile.py) with /dev/market's session behind it, without a
machine: real page tables for the user copies and a recording Sleeper. A read with nothing
queued sleeps and is woken with the records as soon as one is queued (poll's watchers told);
O_NONBLOCK makes it EAGAIN; a buffer smaller than one record is EINVAL; a signal ends the
sleep restartably and the next record stays queued; the last close cancels the orders."""

from __future__ import annotations

import errno

import pytest

from tests.kernel.test_vfs import BUFFER, FIRST_FRAME, RAM, Caller
from tests.memory.conftest import PlainMemory
from tradekernel.kernel.fs.recordfile import RecordFile
from tradekernel.kernel.fs.vfs import ERESTARTSYS, O_NONBLOCK, Poll
from tradekernel.kernel.mm.frames import FrameAllocator
from tradekernel.kernel.mm.paging import Paging, copy_from_user
from tradekernel.kernel.trading.book import BUY
from tradekernel.kernel.trading.engine import TradingEngine
from tradekernel.kernel.trading.marketport import (
    COMMAND,
    EV_TOP,
    EV_TRADE,
    EVENT,
    MARKET_DEVICE,
    OP_SUBMIT,
    OP_SUBSCRIBE,
    MarketPorts,
)


class Program(Caller):
    name = "algo"
    pid = 7


class Sleeps:
    """A Sleeper that records sleeps and wake-ups."""

    def __init__(self) -> None:
        self.cancel = None
        self.woken: list[int] = []
        self.sleeping = False

    def block(self, process, cancel=None) -> int:  # noqa: ANN001
        self.cancel, self.sleeping = cancel, True
        return 1

    def wake(self, process, token: int, result: int) -> None:  # noqa: ANN001
        self.sleeping = False
        self.woken.append(result)

    def asleep(self, process, token: int) -> bool:  # noqa: ANN001
        return self.sleeping

    def broken_pipe(self, process) -> None:  # noqa: ANN001
        raise AssertionError("no pipes here")


@pytest.fixture
def program() -> Program:
    paging = Paging(PlainMemory(RAM), FrameAllocator(FIRST_FRAME, RAM), kernel_map_end=RAM,
                    invalidate=lambda cr3, vaddr: None)  # fmt: skip
    aspace = paging.create_address_space()
    aspace.map_new(BUFFER)
    return Program(aspace)


def subscribe() -> bytes:
    return COMMAND.pack(OP_SUBSCRIBE, 0, 0, 0, b"AAPL", 0, 0, 0, 0)


def test_a_sleeping_read_is_woken_with_the_records(program: Program) -> None:
    engine = TradingEngine(lambda: 0)
    sleeper = Sleeps()
    ports = MarketPorts(engine)
    file = RecordFile(sleeper, ports.open(), EVENT.size, MARKET_DEVICE).acquire()
    assert file.stat().rdev == MARKET_DEVICE and ports.bound == []  # a stat binds nothing
    assert file.read(program, BUFFER, EVENT.size - 1) == -errno.EINVAL
    assert file.write(program, subscribe()) == COMMAND.size
    assert ports.bound[0].owner == "algo-7"
    assert file.poll() == Poll.IN | Poll.OUT  # the current top waits
    assert file.read(program, BUFFER, 4096) == EVENT.size
    assert EVENT.unpack(copy_from_user(program.aspace, BUFFER, EVENT.size))[0] == EV_TOP
    assert file.poll() == Poll.OUT
    file.status_flags = O_NONBLOCK
    assert file.read(program, BUFFER, 4096) == -errno.EAGAIN
    file.status_flags = 0
    told: list[int] = []
    file.watch(lambda: told.append(1))
    assert file.read(program, BUFFER, 4096) is None and sleeper.sleeping
    engine.record_trade("AAPL", 10_000, 3)
    assert sleeper.woken == [EVENT.size] and told
    trade = EVENT.unpack(copy_from_user(program.aspace, BUFFER, EVENT.size))
    assert (trade[0], trade[8], trade[9]) == (EV_TRADE, 10_000, 3)
    # a signal ends the next sleep; what comes after it waits for the next read
    assert file.read(program, BUFFER, 4096) is None
    assert sleeper.cancel() == -ERESTARTSYS
    sleeper.sleeping = False
    engine.record_trade("AAPL", 10_001, 1)
    assert sleeper.woken == [EVENT.size] and file.poll() & Poll.IN
    file.write(program, COMMAND.pack(OP_SUBMIT, 0, 0, BUY, b"AAPL", 9_000, 1, 0, 0))
    assert len(engine.open_orders("algo-7")) == 1
    file.release()  # the last descriptor: the session ends, its order goes
    assert engine.open_orders("algo-7") == [] and ports.bound == []
