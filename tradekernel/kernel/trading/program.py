"""Ring-3 strategies in backtests: a program trades through /dev/market exactly as it does live,
while a deterministic backtest (backtest.run_backtest) replays a data file behind its session.

The program is not changed and cannot tell. Its session (marketport.MarketPort) is bound, at
the program's first read or write, to a `ProgramBacktest` instead of the live engine when its
process is one a backtest started (`MarketPorts.claims`): its commands go to the backtest's
SimVenue and the same records come back, made by the same code as live. `ProgramStrategy` is
the Python strategy run_backtest runs: it forwards the events the StrategyHost hands it to
that session, so fills, risk, the fill model and the result are those of any backtest.

Time. The program's virtual time is its own CPU time (counted instructions in deterministic
mode) from the market event that woke it: a program woken at replay time T0 with CPU time C0
is, at CPU time C, at T0 + (C - C0). The replay moves in lockstep with it:
- it never runs past the program's time while the program computes; events due meanwhile
  are queued for its next read, as a live session queues them (MKT_QUEUE_MAX, MKT_F_LOST);
- a command written at CPU time C enters the venue at T0 + (C - C0), after everything due
  before then: the program's compute time is its tick-to-order latency, never skipped;
- a read that finds nothing queued lets the replay run on until the next record for the
  program (its CPU time stands still meanwhile), or to the end of the data: that read, and
  every one after it, returns 0 (end of file). A read never sleeps in a backtest.
A program that computes for ever is the kernel side's to stop (`silent_ns`): shell/strategy.py
kills it past its limit, and the backtest stops as for a crash.

Threads. run_backtest is one call that runs the whole replay, and the program runs on the
machine's CPU, which the kernel cannot run from inside a call. So the replay runs on a worker
thread, and the kernel's thread and the worker take turns strictly (a semaphore each way):
one waits whenever the other runs, and the order of every step follows the program's CPU
time alone, so a run is deterministic. The worker stops ("parks") only in a gate, a callback
on the replay's scheduler, and it carries out the kernel's requests itself (commands, a read
that found nothing queued, stop), each once the replay has reached the program's time: one
turn per request, and every backtest object is touched from the worker's thread only. A turn
costs two thread switches (about 0.1-0.3 ms of wall time on a loaded host:
bench/bench_ring3_backtest.py). Workers are kept for the next run (each thread has its
strategy CPU watchdog, strategy.py); one parked in a machine that is thrown away mid-run
stays parked.

Ending. When the program ends (exit, crash, kill) or lets go of /dev/market, `stop(reason)`
stops the strategy as a raising Python strategy is stopped: its live orders cancelled, the
result STOPPED with `reason` (an exit with status 0 gives no reason: an ordinary end), the
replay run to the end of the data and the result kept. A replay that raises (bad data) comes
back to the kernel's thread as `error` and ends the run.

Imports: trading only (strategy, backtest, events); the kernel glue is shell/strategy.py.
"""

from __future__ import annotations

import errno as E
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from tradekernel.kernel.trading import events as ev
from tradekernel.kernel.trading.backtest import (
    BacktestResult,
    FillModel,
    RiskLimits,
    SimVenue,
    run_backtest,
)
from tradekernel.kernel.trading.feed import FeedError
from tradekernel.kernel.trading.strategy import Context, Strategy

if TYPE_CHECKING:
    from tradekernel.kernel.trading.marketport import MarketPort

ALL_SYMBOLS = "*"  # [instruments] symbols = ["*"]: any instrument the program subscribes to
DEFAULT_CONFIG = b'[instruments]\nsymbols = ["*"]\n'  # a program without a configuration file


class ProgramStrategy(Strategy):
    """The Python face of a ring-3 program in a backtest: every event it is handed goes to the
    program's /dev/market session (`link`). Its parameters: the program's arguments, and the
    CPU it may use between two reads of /dev/market before it is taken for a loop and killed."""

    name = "program"
    PARAMS = {"args": (str, ""), "silence_limit_ms": (int, 100)}
    link: ProgramBacktest  # set by the ProgramBacktest it runs in, before the run

    def on_start(self, ctx: Context) -> None:
        self.link.started(ctx)

    def on_stop(self, ctx: Context) -> None:
        self.link.ended()

    def on_book(self, ctx: Context, top: ev.TopOfBook) -> None:
        self.link.market(top)

    def on_trade(self, ctx: Context, trade: ev.Trade) -> None:
        self.link.market(trade)

    def on_accepted(self, ctx: Context, event: ev.OrderAccepted) -> None:
        self.link.own(event)

    on_rejected = on_fill = on_cancelled = on_accepted  # type: ignore[assignment]


class VenueView:
    """The engine surface MarketPort uses, on a backtest's SimVenue (the rest is the venue's
    own: submit, cancel, replace, open_orders, book(...).l1(), now_ns)."""

    def __init__(self, venue: SimVenue) -> None:
        self.venue = venue
        self.books = venue.market.books
        self.submit = venue.submit
        self.cancel = venue.cancel
        self.replace = venue.replace
        self.open_orders = venue.open_orders
        self.book = venue.book
        self.now_ns = venue.now_ns

    @property
    def next_order_id(self) -> int:
        """The id the venue gives its next order (MarketPort files the program's tag under it)."""
        return self.venue._next_id  # noqa: SLF001 - SimVenue numbers its orders from here


class _Worker:
    """A thread that runs replays one after another (idle ones wait in `_IDLE`)."""

    def __init__(self) -> None:
        self._job: Callable[[], None] | None = None
        self._go = threading.Semaphore(0)
        threading.Thread(target=self._loop, name="tk-backtest-worker", daemon=True).start()

    def _loop(self) -> None:
        while True:
            self._go.acquire()
            job, self._job = self._job, None
            assert job is not None
            job()  # never raises: ProgramBacktest._main contains its replay
            with _IDLE_LOCK:
                _IDLE.append(self)

    @staticmethod
    def run(job: Callable[[], None]) -> None:
        with _IDLE_LOCK:
            worker = _IDLE.pop() if _IDLE else None
        worker = worker or _Worker()
        worker._job = job
        worker._go.release()


_IDLE: list[_Worker] = []
_IDLE_LOCK = threading.Lock()


class ProgramBacktest:
    """One backtest of one ring-3 program (see the module docstring). The kernel's side calls
    start, attach, read, write, closed, stop and silent_ns; the worker's side (ProgramStrategy,
    the gates) the rest."""

    def __init__(self, strategy: ProgramStrategy, data_name: str, data: bytes, model: FillModel,
                 limits: RiskLimits, code_hash: str, cpu_ns: Callable[[], int],
                 why_closed: Callable[[], str], on_end: Callable[[], None]) -> None:  # fmt: skip
        self.strategy = strategy
        strategy.link = self
        self._run_args = (data_name, data, model, limits, code_hash)
        self._cpu_ns = cpu_ns  # the program's CPU time so far (virtual ns)
        self._why_closed = why_closed  # why its session closed: "" for an exit with status 0
        self._on_end = on_end  # told (on the kernel's thread) once the replay has ended
        self.result: BacktestResult | None = None
        self.error: str | None = None  # the replay could not run (bad data)
        # strategy stops run_backtest reported (a callback here raised), for the kernel log
        self.stopped: list[tuple[str, BaseException | None]] = []
        self.port: MarketPort | None = None
        self._to_worker = threading.Semaphore(0)
        self._to_kernel = threading.Semaphore(0)
        self._request: tuple[str, int, object] = ("", 0, None)
        self._reply: int = 0
        self._finished = False  # run_backtest has returned (or raised)
        self._ended = False  # the data is done or the strategy stopped: no more commands
        self._ending = False  # the kernel asked to run to the end
        # the program's clock: replay time t0 at its CPU time cpu0 (set when a read is answered)
        self._t0 = 0
        self._cpu0 = cpu_ns()
        self._read_cpu = self._cpu0  # its CPU time when it last read
        # worker side
        self._ctx: Context | None = None
        self._venue: SimVenue | None = None
        self._gate_token = 0
        self._waiting = False  # the program waits for a record: the replay runs free
        self._woken = False  # that wait ended with a record (not the end of the data)

    # ---- the kernel's side -------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self._finished

    def start(self) -> None:
        """Run the replay up to its first gate (time 0, before the program's first step)."""
        _Worker.run(self._main)
        self._to_kernel.acquire()
        self._after_turn()

    def attach(self, port: MarketPort) -> tuple[VenueView, str] | None:
        """A session of the program's is bound: the view of the venue it trades on and the
        strategy's owner name, or None if the program has one already (a second session gets
        EBUSY and end of file)."""
        if self.port is not None or self._venue is None or self._ctx is None:
            return None
        self.port = port
        return VenueView(self._venue), self._ctx.owner

    def program_ns(self) -> int:
        """The program's present on the replay's clock."""
        return self._t0 + self._cpu_ns() - self._cpu0

    def silent_ns(self) -> int:
        """CPU time the program has used since it last read /dev/market."""
        return self._cpu_ns() - self._read_cpu

    def read(self, port: MarketPort, count: int) -> bytes:
        """Up to `count` records for the program; b"" at the end of the data."""
        if port is not self.port:
            return b""
        cpu = self._read_cpu = self._cpu_ns()
        if not len(port.queue) and not self._finished:
            self._woken = False
            self._turn("read", self.program_ns(), None)
            if self._woken:  # it waited: its answer starts at the record's time
                self._cpu0 = cpu
        return port.take_records(count)

    def write(self, port: MarketPort, data: bytes) -> int:
        """Commands from the program, carried out at its present time."""
        if port is not self.port:
            return -E.EBUSY
        if self._ended or self._finished:
            return -E.EPIPE  # the backtest is over for it
        self._reply = -E.EPIPE  # unless the data still runs at its time
        self._turn("commands", self.program_ns(), data)
        return self._reply

    def closed(self, port: MarketPort) -> None:
        """The program let go of its session (or died): the strategy stops."""
        if port is self.port:
            self.stop(self._why_closed())
            if self._finished:
                self._on_end()  # (again, if the replay had ended before: the program now has)

    def stop(self, reason: str) -> None:
        """Stop the strategy at the program's present time ("" for an ordinary end) and run
        the replay to the end of the data."""
        if self._finished or self._ending:
            return
        self._ending = True
        self._turn("stop", self.program_ns(), reason)

    def _turn(self, kind: str, at: int, value: object) -> None:
        """Hand the worker a request to carry out once the replay has reached `at` (the
        program's time), and wait until it parks again (or ends)."""
        if self._finished:
            return
        self._request = (kind, at, value)
        self._to_worker.release()
        self._to_kernel.acquire()
        self._after_turn()

    def _after_turn(self) -> None:
        if self._finished:
            self._on_end()

    # ---- the worker's side -------------------------------------------------------------------

    def _main(self) -> None:
        data_name, data, model, limits, code_hash = self._run_args
        try:
            self.result = run_backtest(
                self.strategy, data_name, data, model, limits, code_hash,
                on_stopped=lambda message, err: self.stopped.append((message, err)),
            )  # fmt: skip
        except FeedError as err:
            self.error = str(err)
        except Exception as err:  # noqa: BLE001 - a replay fault ends this run, not the kernel
            self.error = f"the replay failed: {type(err).__name__}: {err}"
        finally:
            self._finished = True
            self._ended = True
            self._to_kernel.release()

    def started(self, ctx: Context) -> None:
        """on_start: the replay's first gate, before anything else happens."""
        self._ctx = ctx
        self._venue = ctx.host.engine  # type: ignore[assignment]
        self._gate_at(0, None)

    def ended(self) -> None:
        """on_stop: the data is done or the strategy was stopped."""
        self._ended = True

    def market(self, event: ev.Event) -> None:
        port = self.port
        if port is not None:
            port.on_market(event)
            self._queued()

    def own(self, event: ev.Event) -> None:
        port = self.port
        if port is not None:
            port.on_own(event)
            self._queued()

    def _queued(self) -> None:
        """A record may be waiting for a program that waits for one: its answer starts now."""
        if self._waiting and self.port is not None and len(self.port.queue):
            self._waiting = False
            self._woken = True
            assert self._venue is not None
            self._t0 = self._venue.clock.now
            self._gate_at(self._t0, None)

    def _gate_at(self, when: int, request: tuple[str, int, object] | None) -> None:
        """Park at `when` (after what is due by then), first carrying out `request`."""
        self._gate_token += 1
        token = self._gate_token
        assert self._venue is not None
        self._venue.clock.call_at(when, lambda: self._gate(token, request))

    def _gate(self, token: int, request: tuple[str, int, object] | None) -> None:
        """Carry out the kernel's requests here, parking between them, until one lets the
        replay move on: to a later time, or free (the program waits, the strategy stopped)."""
        if token != self._gate_token:
            return  # superseded
        now = self._venue.clock.now  # type: ignore[union-attr]
        while True:
            if request is None:
                self._to_kernel.release()  # park
                self._to_worker.acquire()
                request = self._request
            kind, at, value = request
            request = None
            if at > now:
                self._gate_at(at, (kind, at, value))
                return
            if self._act(kind, value):
                self._gate_token += 1  # no gate: the replay runs until a record or its end
                return

    def _act(self, kind: str, value: object) -> bool:
        """Carry out one request at the program's time; True if the replay runs free now."""
        port = self.port
        if kind == "commands":
            if not self._ended and port is not None:
                self._reply = port.handle_commands(value)  # type: ignore[arg-type]
            return False
        if kind == "read":
            if port is not None and len(port.queue):
                return False  # records came while it computed: they are its answer
            self._waiting = not self._ended  # at the end, the replay just runs out
            return True
        assert self._ctx is not None  # "stop"
        self._ctx.host.stop(str(value))
        return True
