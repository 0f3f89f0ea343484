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

Turns. run_backtest is one call that runs the whole replay, and the program runs on the
machine's CPU, which the kernel cannot run from inside a call. So the replay runs in a greenlet
of its own (a coroutine with its own stack, on the kernel's thread: no host thread), and the
kernel and the replay take turns strictly: the kernel switches into it with a request and
waits in that call until it switches back; the order of every step follows the program's CPU
time alone, so a run is deterministic. The replay stops ("parks") only in a gate, a callback
on the replay's scheduler, and it carries out the kernel's requests itself (commands, a read
that found nothing queued, stop), each once the replay has reached the program's time: one
turn per request. A turn is two greenlet switches, about 1 us each; an answer's cost is the
program's system calls and the replay's own work (bench/bench_ring3_backtest.py --split).
No thread sleeps and wakes per turn: a 20,000-message run makes about a thousand context
switches of the host's, where a hand-off between threads made about 37,000.
The kernel's calls come from inside the machine's hypercall hook, in the middle of Unicorn's
emu_start (the idle loop's deferred work starts the replay; system calls and a process's end
resume it), at various depths of the C stack: greenlet saves and restores the stack slices
the two share, so the depth does not matter, and the replay parks back to whichever greenlet
resumed it (made its parent at every turn). Every call must come from the thread that called
start (a greenlet lives on one thread).

CPU watchdog. The replay's strategy host times its callbacks on this thread's CPU clock
(strategy.CpuWatchdog, the one the kernel's live strategies on the thread use too), which
counts whatever the thread runs. So a switch never happens inside strategy code: the replay
parks only in gates, and the kernel never resumes it from a callback; every turn checks both
(`CpuWatchdog.busy`). The budget then counts the replay's own callbacks, never the program's
emulation, and a StrategyOverrun can only land in the callback it is meant for.

Letting go. While parked, the replay holds nothing of the kernel's (the program's session is
lent to it for each turn): a suspended greenlet is never collected as part of a cycle, so the
kernel's side (ProgramBacktest) holds the greenlet and the greenlet's frames hold only the
replay's side (`_Replay`). A backtest dropped mid-run (a machine thrown away) is then garbage:
collecting it drops the greenlet, which unwinds with GreenletExit (run_backtest's cleanup,
the collector's thresholds, runs) and is freed with the machine. Nothing is left behind.

Ending. When the program ends (exit, crash, kill) or lets go of /dev/market, `stop(reason)`
stops the strategy as a raising Python strategy is stopped: its live orders cancelled, the
result STOPPED with `reason` (an exit with status 0 gives no reason: an ordinary end), the
replay run to the end of the data and the result kept. A replay that raises (bad data) comes
back to the kernel as `error` and ends the run.

Imports: trading only (strategy, backtest, events) and greenlet; the kernel glue is
shell/strategy.py.
"""

from __future__ import annotations

import errno as E
from collections.abc import Callable
from typing import TYPE_CHECKING

import greenlet

from tradekernel.kernel.trading import events as ev
from tradekernel.kernel.trading.backtest import (
    BacktestResult,
    FillModel,
    RiskLimits,
    SimVenue,
    run_backtest,
)
from tradekernel.kernel.trading.feed import FeedError
from tradekernel.kernel.trading.strategy import Context, CpuWatchdog, Strategy

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
    link: _Replay  # set by the ProgramBacktest it runs in, before the run

    def on_start(self, ctx: Context) -> None:
        self.link.started(ctx)

    def on_stop(self, ctx: Context) -> None:
        self.link.strategy_ended()

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
        return self.venue.next_order_id


class _Replay:
    """The replay's side of a ProgramBacktest: run_backtest and its gates, on the replay's
    greenlet. It holds nothing of the kernel's while it is parked (the program's session is
    lent to it for each turn only): the kernel's side is then garbage as soon as the kernel
    lets go of it, and takes the greenlet with it."""

    def __init__(self, strategy: ProgramStrategy,
                 run_args: tuple[str, bytes, FillModel, RiskLimits, str]) -> None:  # fmt: skip
        self.strategy = strategy
        strategy.link = self
        self.run_args = run_args
        self.port: MarketPort | None = None  # the program's session, during a turn
        self.result: BacktestResult | None = None
        self.error: str | None = None  # the replay could not run (bad data)
        # strategy stops run_backtest reported (a callback here raised), for the kernel log
        self.stopped: list[tuple[str, BaseException | None]] = []
        self.finished = False  # run_backtest has returned (or raised)
        self.ended = False  # the data is done or the strategy stopped: no more commands
        self.reply = 0  # what the last commands gave
        self.t0 = 0  # replay time of the record that ended the program's last wait
        self.woken = False  # its last wait ended with a record (not the end of the data)
        self.ctx: Context | None = None
        self.venue: SimVenue | None = None
        self._gate_token = 0
        self._waiting = False  # the program waits for a record: the replay runs free

    def main(self) -> None:
        """The greenlet's body: the whole replay. Only what the kernel must see leaves it;
        GreenletExit (its greenlet dropped mid-run) just unwinds it."""
        data_name, data, model, limits, code_hash = self.run_args
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
            self.finished = True
            self.ended = True

    # ---- ProgramStrategy's callbacks (never park: see CpuWatchdog.busy) ---------------------

    def started(self, ctx: Context) -> None:
        """on_start: the replay's first gate, before anything else happens."""
        self.ctx = ctx
        self.venue = ctx.host.engine  # type: ignore[assignment]
        self._gate_at(0, None)

    def strategy_ended(self) -> None:
        """on_stop: the data is done or the strategy was stopped."""
        self.ended = True

    def market(self, event: ev.Event) -> None:
        port = self.port
        if port is not None:
            port.on_market(event)
            self._queued(port)

    def own(self, event: ev.Event) -> None:
        port = self.port
        if port is not None:
            port.on_own(event)
            self._queued(port)

    def _queued(self, port: MarketPort) -> None:
        """A record may be waiting for a program that waits for one: its answer starts now."""
        if self._waiting and len(port.queue):
            self._waiting = False
            self.woken = True
            assert self.venue is not None
            self.t0 = self.venue.clock.now
            self._gate_at(self.t0, None)

    # ---- the gates ------------------------------------------------------------------------

    def _gate_at(self, when: int, request: tuple[str, int, object] | None) -> None:
        """Park at `when` (after what is due by then), first carrying out `request`."""
        self._gate_token += 1
        token = self._gate_token
        assert self.venue is not None
        self.venue.clock.call_at(when, lambda: self._gate(token, request))

    def _gate(self, token: int, request: tuple[str, int, object] | None) -> None:
        """Carry out the kernel's requests here, parking between them, until one lets the
        replay move on: to a later time, or free (the program waits, the strategy stopped)."""
        if token != self._gate_token:
            return  # superseded
        now = self.venue.clock.now  # type: ignore[union-attr]
        while True:
            if request is None:  # park: back to the kernel, until its next request
                request = greenlet.getcurrent().parent.switch()
            kind, at, value = request  # type: ignore[misc]
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
            if not self.ended and port is not None:
                self.reply = port.handle_commands(value)  # type: ignore[arg-type]
            return False
        if kind == "read":
            if port is not None and len(port.queue):
                return False  # records came while it computed: they are its answer
            self._waiting = not self.ended  # at the end, the replay just runs out
            return True
        assert self.ctx is not None  # "stop"
        self.ctx.host.stop(str(value))
        return True


class ProgramBacktest:
    """One backtest of one ring-3 program (see the module docstring): the kernel's side. The
    kernel calls start, attach, read, write, closed, stop and silent_ns, always from the thread
    that called start; each call that needs the replay runs it in its greenlet (`_resume`)."""

    def __init__(self, strategy: ProgramStrategy, data_name: str, data: bytes, model: FillModel,
                 limits: RiskLimits, code_hash: str, cpu_ns: Callable[[], int],
                 why_closed: Callable[[], str], on_end: Callable[[], None]) -> None:  # fmt: skip
        self.strategy = strategy
        self._replay = _Replay(strategy, (data_name, data, model, limits, code_hash))
        self._runner: greenlet.greenlet | None = None  # the replay's, while it runs
        self._watchdog = CpuWatchdog.for_this_thread()  # the replay's host uses this one too
        self._cpu_ns = cpu_ns  # the program's CPU time so far (virtual ns)
        self._why_closed = why_closed  # why its session closed: "" for an exit with status 0
        self._on_end = on_end  # told once the replay has ended
        self.port: MarketPort | None = None
        self._ending = False  # the kernel asked to run to the end
        # the program's clock: replay time t0 at its CPU time cpu0 (set when a read is answered)
        self._cpu0 = cpu_ns()
        self._read_cpu = self._cpu0  # its CPU time when it last read

    @property
    def finished(self) -> bool:
        return self._replay.finished

    @property
    def result(self) -> BacktestResult | None:
        return self._replay.result

    @property
    def error(self) -> str | None:
        return self._replay.error

    @property
    def stopped(self) -> list[tuple[str, BaseException | None]]:
        return self._replay.stopped

    def start(self) -> None:
        """Run the replay up to its first gate (time 0, before the program's first step)."""
        self._runner = greenlet.greenlet(self._replay.main)
        self._resume()

    def attach(self, port: MarketPort) -> tuple[VenueView, str] | None:
        """A session of the program's is bound: the view of the venue it trades on and the
        strategy's owner name, or None if the program has one already (a second session gets
        EBUSY and end of file)."""
        replay = self._replay
        if self.port is not None or replay.venue is None or replay.ctx is None:
            return None
        self.port = port
        return VenueView(replay.venue), replay.ctx.owner

    def program_ns(self) -> int:
        """The program's present on the replay's clock."""
        return self._replay.t0 + self._cpu_ns() - self._cpu0

    def silent_ns(self) -> int:
        """CPU time the program has used since it last read /dev/market."""
        return self._cpu_ns() - self._read_cpu

    def read(self, port: MarketPort, count: int) -> bytes:
        """Up to `count` records for the program; b"" at the end of the data."""
        if port is not self.port:
            return b""
        cpu = self._read_cpu = self._cpu_ns()
        replay = self._replay
        if not len(port.queue) and not replay.finished:
            replay.woken = False
            self._turn("read", replay.t0 + cpu - self._cpu0, None)  # its present (program_ns)
            if replay.woken:  # it waited: its answer starts at the record's time
                self._cpu0 = cpu
        return port.take_records(count)

    def write(self, port: MarketPort, data: bytes) -> int:
        """Commands from the program, carried out at its present time."""
        if port is not self.port:
            return -E.EBUSY
        replay = self._replay
        if replay.ended or replay.finished:
            return -E.EPIPE  # the backtest is over for it
        replay.reply = -E.EPIPE  # unless the data still runs at its time
        self._turn("commands", self.program_ns(), data)
        return replay.reply

    def closed(self, port: MarketPort) -> None:
        """The program let go of its session (or died): the strategy stops."""
        if port is self.port:
            self.stop(self._why_closed())
            if self._replay.finished:
                self._on_end()  # (again, if the replay had ended before: the program now has)

    def stop(self, reason: str) -> None:
        """Stop the strategy at the program's present time ("" for an ordinary end) and run
        the replay to the end of the data."""
        if self._replay.finished or self._ending:
            return
        self._ending = True
        self._turn("stop", self.program_ns(), reason)

    def _turn(self, kind: str, at: int, value: object) -> None:
        """Hand the replay a request to carry out once it has reached `at` (the program's
        time), and run it until it parks again (or ends)."""
        if not self._replay.finished:
            self._resume((kind, at, value))

    def _resume(self, *request: tuple[str, int, object]) -> None:
        """Switch to the replay's greenlet, lending it the session, until it parks (back here:
        it parks to its parent, made the caller's greenlet each time) or ends."""
        runner = self._runner
        assert runner is not None
        here = greenlet.getcurrent()
        if runner.parent is not here:
            runner.parent = here
        assert not self._watchdog.busy, "a ring-3 backtest resumed from inside strategy code"
        replay = self._replay
        replay.port = self.port
        try:
            runner.switch(*request)
        finally:
            replay.port = None
        assert not self._watchdog.busy, "a ring-3 backtest parked inside strategy code"
        if replay.finished:
            self._runner = None
            self._on_end()
