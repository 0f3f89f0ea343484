"""The strategy sandbox on its own: the CPU watchdog stops a callback that never returns (even
one that catches Exception and goes on), leaves a healthy one alone and counts its CPU time;
a raising callback stops only its strategy; the loader refuses code that would catch the
watchdog's shot (a bare except, except BaseException) before any of it runs."""

from __future__ import annotations

import gc
import time

import pytest

from tradekernel.kernel.trading.backtest import run_backtest
from tradekernel.kernel.trading.config import ConfigError, strategy_class
from tradekernel.kernel.trading.strategy import CpuWatchdog, Strategy, StrategyOverrun
from tradekernel.research.synthetic import SessionSpec, generate

SESSION, _ = generate(SessionSpec(events=3000, seed=5))
BUDGET_NS = 20_000_000


def spin() -> None:
    while True:
        try:
            while True:
                pass
        except Exception:  # noqa: BLE001, S110 - the point: it does not catch the watchdog
            pass


def test_the_watchdog_stops_a_loop_and_spares_healthy_work() -> None:
    dog = CpuWatchdog.for_this_thread()
    for _ in range(3):  # and again: a fired run leaves nothing pending for the next
        with pytest.raises(StrategyOverrun):
            dog.run(spin, BUDGET_NS)
    used = dog.run(lambda: sum(range(10_000)), BUDGET_NS)
    assert 0 < used < BUDGET_NS


def test_an_untimed_run_is_still_stopped() -> None:
    """Untimed runs (most deliveries) read no clock on the watched thread: the watchdog thread
    starts counting when it first sees one armed, and still stops a loop, within its budget
    plus about one poll."""
    dog = CpuWatchdog.for_this_thread()
    for _ in range(2):
        start = time.thread_time_ns()
        with pytest.raises(StrategyOverrun):
            dog.run(spin, BUDGET_NS, timed=False)
        assert time.thread_time_ns() - start < 20 * BUDGET_NS
    assert dog.run(lambda: sum(range(10_000)), BUDGET_NS, timed=False) == 0


def test_the_collectors_time_is_not_the_strategys() -> None:
    """A full collection of a large heap inside a callback is not charged to it (in the full
    test run one took more than a budget in a healthy market maker's timer)."""
    heap = [[i] for i in range(1_000_000)]  # a million objects for the collector to walk
    dog = CpuWatchdog.for_this_thread()
    start = time.process_time()
    used = dog.run(lambda: [gc.collect() for _ in range(3)], 1_000_000)  # a 1 ms budget
    assert time.process_time() - start > 0.005  # the collections took more than the budget
    assert used < 1_000_000
    del heap


class Looper(Strategy):
    name = "looper"

    def on_book(self, ctx, top) -> None:  # noqa: ANN001
        if ctx.now_ns > 500_000_000:
            spin()


class SecondBatchLooper(Strategy):
    """Loops in its second delivery batch, one the host does not time (it times one batch in
    CPU_SAMPLE_EVERY, the first)."""

    name = "second"
    books = 0

    def on_book(self, ctx, top) -> None:  # noqa: ANN001
        self.books += 1
        if self.books == 2:
            spin()


def test_a_loop_in_an_untimed_batch_is_stopped() -> None:
    looped = run_backtest(SecondBatchLooper(), "s.itch", SESSION)
    assert looped.strategy_error == "second: on_book used more than 250 ms of CPU for one event"


class Raiser(Strategy):
    name = "raiser"

    def on_trade(self, ctx, trade) -> None:  # noqa: ANN001
        raise KeyError("boom")


class Quiet(Strategy):
    name = "quiet"

    books = 0

    def on_book(self, ctx, top) -> None:  # noqa: ANN001
        self.books += 1


def test_a_looping_or_raising_strategy_is_stopped_and_the_run_completes() -> None:
    heard: list[str] = []
    looped = run_backtest(Looper(), "s.itch", SESSION,
                          on_stopped=lambda message, _: heard.append(message))  # fmt: skip
    assert looped.strategy_error == "looper: on_book used more than 250 ms of CPU for one event"
    assert heard == [looped.strategy_error]
    raised = run_backtest(Raiser(), "s.itch", SESSION)
    assert raised.strategy_error == "raiser: on_trade raised KeyError: 'boom'"
    quiet = Quiet()
    healthy = run_backtest(quiet, "s.itch", SESSION)
    assert healthy.strategy_error is None
    assert looped.events == raised.events == healthy.events  # the replay went to the end
    assert quiet.books > 1000  # every top of book reached it


@pytest.mark.parametrize(
    ("handler", "what"),
    [("except:", "a bare except"), ("except BaseException:", "except BaseException"),
     ("except (ValueError, builtins.BaseException):", "except builtins.BaseException")],
)  # fmt: skip
def test_the_loader_refuses_code_that_catches_everything(handler: str, what: str) -> None:
    source = f"import builtins\ntry:\n    pass\n{handler}\n    pass\n".encode()
    with pytest.raises(ConfigError) as caught:
        strategy_class(source, "s.py")
    assert str(caught.value) == (f"s.py:4: {what} would catch the CPU watchdog's stop; "
                                 "catch Exception instead")  # fmt: skip


class Exiter(Strategy):
    name = "exiter"

    def on_trade(self, ctx, trade) -> None:  # noqa: ANN001
        raise SystemExit(3)


class BadMessage(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no message")


class BadRaiser(Strategy):
    name = "badraiser"

    def on_trade(self, ctx, trade) -> None:  # noqa: ANN001
        raise BadMessage


def test_sys_exit_or_an_unprintable_exception_stops_only_the_strategy() -> None:
    exited = run_backtest(Exiter(), "s.itch", SESSION)
    assert exited.strategy_error == "exiter: on_trade raised SystemExit: 3"
    bad = run_backtest(BadRaiser(), "s.itch", SESSION)
    assert bad.strategy_error == "badraiser: on_trade raised BadMessage: (its message raised)"
    assert exited.events == bad.events == run_backtest(Strategy(), "s.itch", SESSION).events


def test_the_loader_turns_sys_exit_at_import_into_a_config_error() -> None:
    with pytest.raises(ConfigError, match="import raised SystemExit: 2"):
        strategy_class(b"raise SystemExit(2)\n", "s.py")


def test_the_loader_stops_an_import_that_never_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    from tradekernel.kernel.trading import config

    monkeypatch.setattr(config, "LOAD_BUDGET_NS", BUDGET_NS)
    with pytest.raises(ConfigError, match="s.py: its import used more than 20 ms of CPU"):
        strategy_class(b"while True:\n    pass\n", "s.py")
    assert strategy_class(b"from tradekernel.kernel.trading.strategy import Strategy\n"
                          b"class S(Strategy):\n    pass\n", "s.py").__name__ == "S"  # fmt: skip


def test_configure_stops_an_init_that_never_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    from tradekernel.kernel.trading import config

    monkeypatch.setattr(config, "LOAD_BUDGET_NS", BUDGET_NS)

    class Stuck(Strategy):
        def __init__(self) -> None:
            spin()

    with pytest.raises(ConfigError, match="s.toml: the strategy's __init__ used more than 20 ms"):
        config.configure(Stuck, b"", b'[instruments]\nsymbols = ["A"]\n', "s.toml")
