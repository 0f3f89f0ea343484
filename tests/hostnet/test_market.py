"""Two booted TradeKernel machines on one --net socket hub: an exchange publishing its books as ITCH
5.0 over UDP multicast (MoldUDP64) and taking FIX 4.4 orders over TCP, and a trader mirroring
the feed and sending orders. The trader's mirrored book must equal the exchange's book after
every step, and the fills the trader is told of over FIX must be the exchange's trades. Both
run on the real-time clock; while the trader talks TCP to the exchange, the exchange's machine
runs on a second thread (two PCs at once, as two `tk boot` would)."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.system.harness import SECOND, BootedPc, close_pc
from tradekernel import hostnet

GROUP = "239.1.2.3:5000"


def book(machine: BootedPc) -> list[str]:
    return machine.output("book AAPL 10")


def depth(machine: BootedPc) -> tuple:
    book = machine.pc.kernel.trading.book("AAPL")
    return book.depth(10), book.last_price, book.volume


def mirrored(exchange: BootedPc, trader: BootedPc) -> None:
    trader.run_until(lambda: depth(trader) == depth(exchange), 20 * SECOND)
    assert book(trader) == book(exchange)


@contextmanager
def running(machine: BootedPc) -> Iterator[None]:
    """`machine` runs on its own thread for the duration."""
    stop = threading.Event()
    thread = threading.Thread(target=machine.machine.run, kwargs={"until": stop.is_set},
                              daemon=True)  # fmt: skip
    thread.start()
    try:
        yield
    finally:
        stop.set()
        machine.machine.post(lambda: None)  # wakes an idle loop to look at `until`
        thread.join(10)
        assert not thread.is_alive()
    machine.check_health()


def test_itch_feed_and_fix_orders_between_two_machines(tmp_path: Path) -> None:
    port = 20000 + random.randrange(20000)
    hub = hostnet.NetOptions(f"socket:mcast=239.255.42.8:{port}")
    machines = []
    try:
        for index in (1, 2):
            (tmp_path / str(index)).mkdir()
            machines.append(BootedPc(tmp_path / str(index), net=hub, deterministic=False,
                                     mac=bytes([0x52, 0x54, 0, 0, 8, index])).boot())  # fmt: skip
        exchange, trader = machines
        exchange.command("ifconfig eth0 10.9.0.1/24")
        trader.command("ifconfig eth0 10.9.0.2/24")
        exchange.command("sell AAPL 100 @150.00")  # resting before the feed starts: snapshot
        assert trader.output(f"mdjoin {GROUP}") == [f"mdjoin: mirroring {GROUP}"]
        lines = exchange.output(f"exchange {GROUP} 7001")
        assert lines[0].startswith("exchange: ITCH to 239.1.2.3:5000") and "FIX on port 7001" in (
            lines[0]
        )
        exchange.command("sell AAPL 50 @150.50")
        exchange.command("buy AAPL 80 @149.00")
        mirrored(exchange, trader)
        assert "150.50" in "\n".join(book(trader)) and "149.00" in "\n".join(book(trader))

        # the trader lifts 100 @150.00 and 20 @150.50 over FIX; the rest is cancelled (IOC)
        with running(exchange):
            reports = trader.output("fixsend 10.9.0.1:7001 buy AAPL 130 150.50 ioc", 20 * SECOND)
        fills = [line for line in reports if line.startswith("fix: fill")]
        assert fills == ["fix: fill AAPL buy 100 @ 150.00 leaves 30 cum 100",
                         "fix: fill AAPL buy 30 @ 150.50 leaves 0 cum 130"], reports  # fmt: skip
        trades = exchange.pc.kernel.trading.trades
        assert [(t.qty, t.price, t.buyer) for t in trades] == [
            (100, 15000, "fix:TRADER1"), (30, 15050, "fix:TRADER1")]  # fmt: skip
        mirrored(exchange, trader)
        # a resting FIX order, then hit from the exchange's own shell: a later fill report
        with running(exchange):
            reports = trader.output("fixsend 10.9.0.1:7001 sell AAPL 40 151.00", 20 * SECOND)
        assert reports == ["fix: new AAPL sell leaves 40 cum 0"], reports
        exchange.command("buy AAPL 15 @151.00")
        with running(exchange):  # its TCP may still wait for the trader's ACK of the last one
            trader.run_until(lambda: "fix: fill AAPL sell 15 @ 151.00 leaves 25 cum 15"
                             in trader.text(), 20 * SECOND)  # fmt: skip
        mirrored(exchange, trader)
        counts = trader.output("mdjoin")[0]
        assert " 0 gaps, 0 duplicates, 0 errors" in counts, counts
    finally:
        for machine in machines:
            close_pc(machine)


def test_feed_stock_directory_cannot_grow_the_instruments_without_bound() -> None:
    """R (stock directory) messages from the wire add an instrument and a book each: a feed of
    ever-new symbols stops at MAX_INSTRUMENTS, the rest counted as errors."""
    import struct

    from tradekernel.kernel.shell.market import MOLD_HEADER, ItchMirror
    from tradekernel.kernel.trading.engine import TradingEngine
    from tradekernel.kernel.trading.instruments import MAX_INSTRUMENTS
    from tradekernel.kernel.trading.itch import LAYOUTS

    class Sock:
        def bind(self, _address: object) -> None: ...
        def setsockopt(self, *_args: object) -> None: ...
        def set_callback(self, _fn: object) -> None: ...

    class Stack:
        def open(self, _kind: str) -> Sock:
            return Sock()

    engine = TradingEngine(lambda: 0)
    mirror = ItchMirror(Stack(), engine, ("239.1.2.3", 5000))  # type: ignore[arg-type]
    extra = 20
    already = len(engine.instruments)  # the engine's default instruments
    for n in range(MAX_INSTRUMENTS + extra):
        raw = LAYOUTS[b"R"].pack(b"R", n % 65535 + 1, 0, 0, 0, f"S{n}".encode().ljust(8), b"Q",
                                 b" ", 100, b"N", b"C", b"  ", b"P", b"N", b"N", b"N", b"N", 0,
                                 b"N")  # fmt: skip
        mirror.packet(MOLD_HEADER.pack(b"X" * 10, n + 1, 1) + struct.pack(">H", len(raw)) + raw)
    assert len(engine.instruments) == MAX_INSTRUMENTS
    assert mirror.errors == already + extra


def test_a_second_logon_with_the_same_sender_is_refused_and_keeps_the_first_session() -> None:
    """A FIX peer logging on as a SenderCompID already logged on must not take the first
    session's execution reports, nor (when it goes) drop the first session from the gateway."""
    from tradekernel.kernel.shell.market import EXCHANGE_NAME, FixGateway, FixSession
    from tradekernel.kernel.trading import fix
    from tradekernel.kernel.trading.engine import TradingEngine

    class Sock:
        def __init__(self, data: bytes) -> None:
            self.data: list[bytes] = [data]
            self.closed = False

        def setsockopt(self, *_args: object) -> None: ...
        def set_callback(self, _fn: object) -> None: ...
        def send(self, data: bytes) -> int:
            return len(data)

        def recv(self, _size: int) -> bytes:
            if not self.data:
                from tradekernel.kernel.net.api import SocketError

                raise SocketError(11)
            return self.data.pop()

        def close(self) -> None:
            self.closed = True

    gateway = object.__new__(FixGateway)
    gateway.engine, gateway.log, gateway.sessions = TradingEngine(lambda: 0), lambda _l: None, {}
    logon = fix.FixWriter("TRADER1", EXCHANGE_NAME, lambda: 0).logon()
    first = FixSession(gateway, Sock(logon))
    first._readable(None)
    second_sock = Sock(logon)
    FixSession(gateway, second_sock)._readable(None)
    assert second_sock.closed
    assert gateway.sessions == {"fix:TRADER1": first}
    # a first message that is not a Logon closes the session; the read loop then stops
    stray = Sock(fix.FixWriter("TRADER2", EXCHANGE_NAME, lambda: 0).heartbeat())
    FixSession(gateway, stray)._readable(None)
    assert stray.closed and list(gateway.sessions) == ["fix:TRADER1"]
