"""Market data and orders between machines: an exchange machine publishes its books as NASDAQ
TotalView-ITCH 5.0 over UDP multicast (MoldUDP64 framing) and takes FIX 4.4 orders over TCP; a
trader machine mirrors the books from that feed and sends it orders. All of it runs in the
kernel on socket callbacks (no process), with the trading engine and its ITCH/FIX code
(kernel/trading/, used as they are) on both ends.

Shell commands (registered by shell/net.py, which imports this module on their first use: the
trading stack is a large import and the boot does not need it):
  exchange GROUP:PORT FIXPORT  publish every change of this machine's books (orders entered by
                               any means: the shell's buy/sell, FIX) and accept FIX sessions
  mdjoin GROUP:PORT            mirror the feed into this machine's engine; `mdjoin` alone: counts
  fixsend HOST:PORT buy|sell SYM QTY PRICE [ioc]
                               one NewOrderSingle (after a Logon); the execution reports are
                               printed as they come, the prompt returns at a final status or
                               once the exchange has been quiet for FIX_QUIET_NS after a report
                               (later reports of a resting order are printed when they arrive;
                               no report within FIX_WAIT_NS gives up)

The feed (what `ItchPublisher` writes; `ItchMirror` reads): each datagram is a MoldUDP64 packet
(10-byte session, 8-byte sequence number of its first message, 2-byte message count) followed by
the messages, each behind a 2-byte length. At start the exchange sends R (stock directory) for
every symbol ITCH can carry (a price a multiple of $0.0001 and whole shares) and an A for each
order already resting; then A when an order comes to rest, E when a resting order trades, X when
part of one is cancelled, D when the rest goes, U when one is replaced. Order reference numbers
are the exchange's order ids (a replaced order gets a fresh one above them). A mirror applies
packets in sequence order; a packet whose sequence number is not the next expected one is
counted as a gap (there is no retransmission service), and one from an earlier sequence is a
duplicate and ignored.

Orders: FIX 4.4 tag=value over TCP, parsed strictly by trading/fix.py. A session's first message
must be a Logon (35=A); its SenderCompID becomes the orders' owner "fix:NAME". NewOrderSingle
(35=D) needs ClOrdID, Symbol, Side (1/2), OrderQty, OrdType 2 (limit) and Price; TimeInForce 3
is IOC, anything else day/GTC. Every order of a session gets ExecutionReports (35=8): New,
Trade for each fill (including fills that come later against it), Canceled, Rejected with Text.
A frame that does not parse closes the session with one line in the kernel log. Sizes from the
wire are bounded (FIX_MAX_BUFFER bytes waiting per session; datagrams beyond a frame are never
read whole into memory by the stack).

Imports: net (sockets), trading (engine, events, itch, fix, feed's ItchReplay), shell.
"""

from __future__ import annotations

import errno
import struct
from collections.abc import Callable
from decimal import Decimal

from tradekernel.kernel.net.api import SocketError
from tradekernel.kernel.net.sockets import IP_ADD_MEMBERSHIP, IPPROTO_IP, IPPROTO_TCP, TCP_NODELAY
from tradekernel.kernel.net.stack import NetStack
from tradekernel.kernel.net.wire import ip_to_int
from tradekernel.kernel.shell.shell import Output, UsageError
from tradekernel.kernel.trading import events as ev
from tradekernel.kernel.trading import fix
from tradekernel.kernel.trading.book import BUY, GTC, IOC, SELL
from tradekernel.kernel.trading.engine import EngineError, TradingEngine
from tradekernel.kernel.trading.feed import ItchReplay
from tradekernel.kernel.trading.instruments import MAX_INSTRUMENTS, Instrument
from tradekernel.kernel.trading.itch import LAYOUTS, ItchError

SESSION = b"TKEXCH0001"  # MoldUDP64 session name (10 bytes)
MOLD_HEADER = struct.Struct(">10sQH")
MAX_DATAGRAM = 1472  # one Ethernet frame, no IP fragments
PRICE4 = Decimal(10000)  # ITCH Price(4): 1/10000 dollar
EXCHANGE_NAME = "TKEXCH"
FIX_MAX_BUFFER = 64 * 1024  # bytes of one session waiting for a complete frame
FIX_LISTEN_BACKLOG = 8
FIX_QUIET_NS = 500_000_000  # fixsend: the prompt returns after this long without a report
FIX_WAIT_NS = 10_000_000_000  # fixsend: give up waiting for the connection and first reports
FINAL_STATUS = ("2", "4", "8")  # OrdStatus filled, canceled, rejected
CHECKSUM_FIELD = b"\x0110="  # a frame ends with SOH "10=nnn" SOH


def parse_group(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"{text!r}: expected ADDRESS:PORT")
    try:
        ip_to_int(host)
    except ValueError:
        raise UsageError(f"{host!r} is not an IPv4 address") from None
    return host, int(port)


def take_frame(buffer: bytearray) -> bytes | None:
    """The first complete FIX frame in `buffer` (removed from it), or None while it is not all
    there: a frame ends with its CheckSum field, SOH "10=nnn" SOH."""
    end = buffer.find(CHECKSUM_FIELD)
    if end < 0 or len(buffer) < end + len(CHECKSUM_FIELD) + 4:
        return None
    end += len(CHECKSUM_FIELD) + 4
    frame = bytes(buffer[:end])
    del buffer[:end]
    return frame


class ItchPublisher:
    """The engine's book changes as ITCH messages in MoldUDP64 packets on a multicast group."""

    def __init__(self, stack: NetStack, engine: TradingEngine, group: tuple[str, int]) -> None:
        self.engine, self.group = engine, group
        self.sock = stack.open("udp")
        self.sequence = 1  # of the next message
        self.messages: list[bytes] = []
        self.locates: dict[str, int] = {}
        self.refs: dict[int, tuple[int, int]] = {}  # order id -> (ITCH reference, shares left)
        self.pending: list[int] = []  # orders accepted since the last look at the book
        self.next_ref = 1 << 40  # references for replacements, above any order id
        self.match = 0
        self.sent_packets = 0
        instruments = sorted(engine.instruments, key=lambda i: i.symbol)
        for number, instrument in enumerate(instruments, 1):
            symbol = instrument.symbol
            if self._representable(instrument) and len(symbol) <= 8:
                self.locates[symbol] = number
                self._add(b"R", number, symbol.encode().ljust(8), b"Q", b" ", 100, b"N",
                          b"C", b"  ", b"P", b"N", b"N", b"N", b"N", 0, b"N")  # fmt: skip
        for order in sorted(engine.live.values(), key=lambda o: o.order_id):
            self._rest(order.order_id)
        self.flush()
        self.unsubscribe = engine.bus.subscribe(self._event, (
            ev.OrderAccepted, ev.OrderPartiallyFilled, ev.OrderFilled, ev.OrderCancelled,
            ev.OrderReplaced, ev.DepthChanged))  # fmt: skip

    @staticmethod
    def _representable(instrument: Instrument) -> bool:
        return (instrument.tick_size * PRICE4) % 1 == 0 and instrument.lot_size % 1 == 0

    def _add(self, kind: bytes, locate: int, *fields: object) -> None:
        now = self.engine.now_ns() % (86400 * 10**9)  # ITCH time: ns since midnight
        self.messages.append(LAYOUTS[kind].pack(kind, locate, 0, now >> 32, now & 0xFFFFFFFF,
                                                *fields))  # fmt: skip

    def _shares(self, symbol: str, lots: int) -> int:
        return int(self.engine.instrument(symbol).lots_to_qty(lots))

    def _price4(self, symbol: str, ticks: int) -> int:
        return int(self.engine.instrument(symbol).ticks_to_price(ticks) * PRICE4)

    def _rest(self, order_id: int) -> None:
        order = self.engine.live.get(order_id)
        locate = self.locates.get(order.symbol, 0) if order is not None else 0
        if order is None or not locate or order.leaves <= 0 or order_id in self.refs:
            return
        shares = self._shares(order.symbol, order.leaves)
        self._add(b"A", locate, order_id, b"B" if order.side == BUY else b"S", shares,
                  order.symbol.encode().ljust(8), self._price4(order.symbol, order.price or 0))
        self.refs[order_id] = (order_id, shares)

    def _event(self, event: ev.Event) -> None:
        if isinstance(event, ev.OrderAccepted):
            self.pending.append(event.order_id)
        elif isinstance(event, (ev.OrderPartiallyFilled, ev.OrderFilled)):
            self._reduce(event.order_id, event.symbol, event.fill_qty, executed=True)
        elif isinstance(event, ev.OrderCancelled):
            self._reduce(event.order_id, event.symbol, event.cancelled_qty, executed=False)
        elif isinstance(event, ev.OrderReplaced):
            self._replaced(event)
        elif isinstance(event, ev.DepthChanged):
            pending, self.pending = self.pending, []
            for order_id in pending:
                self._rest(order_id)
            self.flush()

    def _reduce(self, order_id: int, symbol: str, lots: int, executed: bool) -> None:
        entry = self.refs.get(order_id)
        if entry is None:
            return  # not resting (a taker) or not published
        ref, left = entry
        locate = self.locates[symbol]
        shares = self._shares(symbol, lots)
        if executed:
            self.match += 1
            self._add(b"E", locate, ref, shares, self.match)
        elif shares < left:
            self._add(b"X", locate, ref, shares)
        else:
            self._add(b"D", locate, ref)
        left -= shares
        if left > 0:
            self.refs[order_id] = (ref, left)
        else:
            del self.refs[order_id]

    def _replaced(self, event: ev.OrderReplaced) -> None:
        entry = self.refs.pop(event.order_id, None)
        order = self.engine.live.get(event.order_id)
        if entry is None or order is None:
            self.pending.append(event.order_id)
            return
        self.next_ref += 1
        shares = self._shares(order.symbol, order.leaves)
        self._add(b"U", self.locates[order.symbol], entry[0], self.next_ref, shares,
                  self._price4(order.symbol, order.price or 0))  # fmt: skip
        self.refs[event.order_id] = (self.next_ref, shares)

    def flush(self) -> None:
        """Send what is waiting, as few packets as fit in frames."""
        while self.messages:
            size, count = MOLD_HEADER.size, 0
            while count < len(self.messages) and size + 2 + len(self.messages[count]) <= (
                MAX_DATAGRAM
            ):
                size += 2 + len(self.messages[count])
                count += 1
            batch, self.messages = self.messages[:count], self.messages[count:]
            packet = MOLD_HEADER.pack(SESSION, self.sequence, count) + b"".join(
                struct.pack(">H", len(m)) + m for m in batch
            )
            self.sequence += count
            try:
                self.sock.sendto(packet, self.group)
                self.sent_packets += 1
            except SocketError:
                pass  # as on a wire: a mirror sees the gap

    def close(self) -> None:
        self.unsubscribe()
        self.sock.close()


class ItchMirror:
    """A multicast feed applied to this machine's engine with trading/feed.py's ItchReplay."""

    def __init__(self, stack: NetStack, engine: TradingEngine, group: tuple[str, int]) -> None:
        self.replay = ItchReplay(engine)
        self.expected: int | None = None
        self.packets = self.messages = self.gaps = self.duplicates = self.errors = 0
        self.sock = stack.open("udp")
        self.sock.bind(("", group[1]))
        self.sock.setsockopt(IPPROTO_IP, IP_ADD_MEMBERSHIP,
                             ip_to_int(group[0]).to_bytes(4, "big") + bytes(4))  # fmt: skip
        self.sock.set_callback(self._readable)

    def _readable(self, _sock: object) -> None:
        while True:
            try:
                packet, _ = self.sock.recvfrom(65536)
            except SocketError:
                return
            self.packet(packet)

    def packet(self, packet: bytes) -> None:
        if len(packet) < MOLD_HEADER.size:
            self.errors += 1
            return
        _, sequence, count = MOLD_HEADER.unpack_from(packet)
        if self.expected is not None and sequence < self.expected:
            self.duplicates += 1
            return
        if self.expected is not None and sequence > self.expected:
            self.gaps += 1
        self.packets += 1
        self.expected = sequence + count
        errors: list[ItchError] = []
        engine = self.replay.engine
        for _, _, raw in self.replay.messages(packet[MOLD_HEADER.size :], errors):
            if raw[0] == b"R" and len(engine.instruments) >= MAX_INSTRUMENTS:
                symbol = raw[5].decode("ascii", "replace").strip()
                if symbol not in engine.instruments:  # each new symbol is a book: bounded
                    self.errors += 1
                    continue
            try:
                self.replay.apply(raw)
                self.messages += 1
            except (KeyError, ValueError, EngineError):  # the engine refused it: counted
                self.errors += 1
        self.errors += len(errors)

    def close(self) -> None:
        self.sock.close()


class FixSession:
    """One FIX connection at the exchange."""

    def __init__(self, gateway: FixGateway, sock) -> None:  # noqa: ANN001 - a TCP socket
        self.gateway, self.sock = gateway, sock
        sock.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)  # a report goes at once, not after an ACK
        self.buffer = bytearray()
        self.writer: fix.FixWriter | None = None
        self.owner = ""
        sock.set_callback(self._readable)

    def _readable(self, _sock: object) -> None:
        while self.sock is not None:  # a message handled may close the session (Logout)
            try:
                data = self.sock.recv(8192)
            except SocketError:
                return
            if not data:
                self.close()
                return
            self.buffer += data
            if len(self.buffer) > FIX_MAX_BUFFER:
                self.fail("more than FIX_MAX_BUFFER bytes without a complete frame")
                return
            while self.sock is not None and (frame := take_frame(self.buffer)):
                try:
                    message, _ = fix.parse_message(frame)
                except fix.FixError as error:
                    self.fail(str(error))
                    return
                self.handle(message)

    def send(self, data: bytes) -> None:
        if self.sock is not None:
            try:
                self.sock.send(data)
            except SocketError:
                self.close()

    def handle(self, message: fix.FixMessage) -> None:
        kind = message.get(fix.MSG_TYPE)
        if self.writer is None:
            if kind != "A":
                self.fail("the first message must be a Logon (35=A)")
                return
            sender = message.get(fix.SENDER) or "?"
            if f"fix:{sender}" in self.gateway.sessions:  # its reports stay with the first
                self.fail(f"{sender} is logged on already")
                return
            self.owner = f"fix:{sender}"
            self.writer = fix.FixWriter(EXCHANGE_NAME, sender, self.gateway.engine.now_ns)
            self.gateway.sessions[self.owner] = self
            self.send(self.writer.logon())
        elif kind == "D":
            self.gateway.new_order(self, message)
        elif kind == "5":
            self.close()

    def fail(self, why: str) -> None:
        self.gateway.log(f"fix: session {self.owner or '(no logon)'}: {why}; closed")
        self.close()

    def close(self) -> None:
        if self.sock is None:
            return
        self.gateway.sessions.pop(self.owner, None)
        self.sock.set_callback(None)
        self.sock.close()
        self.sock = None


class FixGateway:
    """A FIX listener at the exchange; execution reports follow the engine's events."""

    def __init__(self, stack: NetStack, engine: TradingEngine, port: int,
                 log: Callable[[str], None]) -> None:  # fmt: skip
        self.engine, self.log = engine, log
        self.sessions: dict[str, FixSession] = {}
        self.listener = stack.open("tcp")
        self.listener.bind(("", port))
        self.listener.listen(FIX_LISTEN_BACKLOG)
        self.listener.set_callback(self._accept)
        # the events that make execution reports (an order's OrderSubmitted, book and trade
        # events are none of a session's business)
        self.unsubscribe = engine.bus.subscribe(self._event, (
            ev.OrderAccepted, ev.OrderPartiallyFilled, ev.OrderFilled, ev.OrderCancelled))

    def _accept(self, _sock: object) -> None:
        while self.listener.accept_queue:
            FixSession(self, self.listener.accept())

    def new_order(self, session: FixSession, message: fix.FixMessage) -> None:
        engine = self.engine
        try:
            symbol = message[fix.SYMBOL]
            instrument = engine.instrument(symbol)
            side = {"1": BUY, "2": SELL}[message[fix.SIDE]]
            if message.get(fix.ORD_TYPE) != "2":
                raise ValueError("only limit orders (40=2)")
            lots = instrument.qty_to_lots(message[fix.ORDER_QTY])
            ticks = instrument.price_to_ticks(message[fix.PRICE])
        except (KeyError, ValueError) as error:
            self.log(f"fix: {session.owner}: order refused: {error}")
            return
        tif = IOC if message.get(fix.TIME_IN_FORCE) == "3" else GTC
        order = engine.submit(session.owner, symbol, side, lots, ticks, tif,
                              client_id=message.get(fix.CL_ORD_ID))  # fmt: skip
        if order.reason and session.writer is not None and not order.is_live:
            if order.state.value == "REJECTED":
                session.send(session.writer.execution_report(
                    order, instrument, fix.EXEC_REJECTED, text=order.reason))  # fmt: skip

    def _event(self, event: ev.Event) -> None:
        owner = getattr(event, "owner", None)
        session = self.sessions.get(owner) if owner else None
        if session is None or session.writer is None:
            return
        order_id = event.order_id  # type: ignore[attr-defined]
        order = self.engine.live.get(order_id) or next(
            (o for o in reversed(self.engine.finished) if o.order_id == order_id), None
        )
        if order is None:
            return
        instrument = self.engine.instrument(order.symbol)
        writer = session.writer
        if isinstance(event, ev.OrderAccepted):
            session.send(writer.execution_report(order, instrument, fix.EXEC_NEW))
        elif isinstance(event, (ev.OrderPartiallyFilled, ev.OrderFilled)):
            session.send(writer.execution_report(order, instrument, fix.EXEC_TRADE,
                                                 event.fill_qty, event.fill_price))  # fmt: skip
        elif isinstance(event, ev.OrderCancelled):
            session.send(writer.execution_report(order, instrument, fix.EXEC_CANCELED,
                                                 text=event.reason))  # fmt: skip

    def close(self) -> None:
        self.unsubscribe()
        for session in list(self.sessions.values()):
            session.close()
        self.listener.close()


class MarketCommands:
    """The three commands (shell/net.py registers them and builds this on first use)."""

    def __init__(self, kernel, stack: NetStack | None, shell) -> None:  # noqa: ANN001
        self.kernel, self.stack, self.shell = kernel, stack, shell
        self.publisher: ItchPublisher | None = None
        self.gateway: FixGateway | None = None
        self.mirror: ItchMirror | None = None
        self.fix_sessions = 0

    def _ready(self, out: Output) -> tuple[NetStack, TradingEngine] | None:
        engine = getattr(self.kernel, "trading", None)
        if self.stack is None or engine is None:
            out.error("no network interface" if self.stack is None else "no trading engine")
            return None
        return self.stack, engine

    def exchange(self, args: list[str], out: Output) -> int:
        if len(args) != 2 or not args[1].isdigit() or not 0 < int(args[1]) < 65536:
            raise UsageError("a multicast GROUP:PORT and a FIX port")
        group = parse_group(args[0])
        ready = self._ready(out)
        if ready is None:
            return 1
        if self.publisher is not None:
            out.error("exchange: already running")
            return 1
        stack, engine = ready
        try:
            self.gateway = FixGateway(stack, engine, int(args[1]), self.kernel.platform.log)
        except SocketError as error:
            out.error(f"exchange: FIX port {args[1]}: {error.why or 'cannot listen'}")
            return 1
        self.publisher = ItchPublisher(stack, engine, group)
        out.line(f"exchange: ITCH to {group[0]}:{group[1]} ({len(self.publisher.locates)} "
                 f"symbols), FIX on port {args[1]}")  # fmt: skip
        return 0

    def mdjoin(self, args: list[str], out: Output) -> int:
        if not args:
            mirror = self.mirror
            if mirror is None:
                out.line("mdjoin: no feed")
            else:
                out.line(f"mdjoin: {mirror.packets} packets, {mirror.messages} messages, "
                         f"{mirror.gaps} gaps, {mirror.duplicates} duplicates, "
                         f"{mirror.errors} errors")  # fmt: skip
            return 0
        if len(args) != 1:
            raise UsageError("one GROUP:PORT")
        group = parse_group(args[0])
        ready = self._ready(out)
        if ready is None:
            return 1
        if self.mirror is not None:
            self.mirror.close()
        try:
            self.mirror = ItchMirror(*ready, group)
        except SocketError as error:
            out.error(f"mdjoin: {error.why or 'cannot join'} (errno {error.errno})")
            self.mirror = None
            return 1
        out.line(f"mdjoin: mirroring {group[0]}:{group[1]}")
        return 0

    def fixsend(self, args: list[str], out: Output) -> int:
        if not 5 <= len(args) <= 6 or args[1] not in ("buy", "sell"):
            raise UsageError("HOST:PORT buy|sell SYM QTY PRICE [ioc]")
        if len(args) == 6 and args[5] != "ioc":
            raise UsageError(f"unexpected {args[5]!r}")
        host, port = parse_group(args[0])
        ready = self._ready(out)
        if ready is None:
            return 1
        stack, engine = ready
        self.fix_sessions += 1
        client = f"TRADER{self.fix_sessions}"
        writer = fix.FixWriter(client, EXCHANGE_NAME, engine.now_ns)
        body: list[tuple[int, object]] = [
            (fix.CL_ORD_ID, f"{client}-1"), (fix.SYMBOL, args[2].upper()),
            (fix.SIDE, "1" if args[1] == "buy" else "2"), (fix.ORDER_QTY, args[3]),
            (fix.ORD_TYPE, "2"), (fix.PRICE, args[4]),
            (fix.TIME_IN_FORCE, "3" if len(args) == 6 else "1"),
        ]  # fmt: skip
        try:
            request = writer.logon() + writer.message("D", body)
        except (TypeError, ValueError) as error:
            raise UsageError(str(error)) from None
        sock = stack.open("tcp")
        sock.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)
        buffer = bytearray()
        state = {"final": False, "last": stack.now(), "reports": 0}
        finish = self._finish_later()

        def report(message: fix.FixMessage) -> None:
            if message.get(fix.MSG_TYPE) != "8":
                return
            kind = {"0": "new", "F": "fill", "4": "canceled", "8": "rejected"}.get(
                message.get(fix.EXEC_TYPE, ""), "report")
            side = "buy" if message.get(fix.SIDE) == "1" else "sell"
            line = f"fix: {kind} {message.get(fix.SYMBOL)} {side}"
            if kind == "fill":
                line += f" {message.get(fix.LAST_QTY)} @ {message.get(fix.LAST_PX)}"
            line += f" leaves {message.get(fix.LEAVES_QTY)} cum {message.get(fix.CUM_QTY)}"
            if message.get(fix.TEXT):
                line += f" ({message.get(fix.TEXT)})"
            out.line(line)
            state["last"] = stack.now()
            state["reports"] += 1
            if message.get(fix.ORD_STATUS) in FINAL_STATUS:
                state["final"] = True

        def readable(_sock: object) -> None:
            while True:
                try:
                    data = sock.recv(8192)
                except SocketError as error:
                    if error.errno not in (errno.EAGAIN, errno.ENOTCONN):  # not yet: wait
                        why = error.why or errno.errorcode.get(error.errno, "failed")
                        out.error(f"fixsend: {host}:{port}: {why}")
                        finish(sock)
                    return
                if not data:
                    finish(sock)
                    return
                buffer.extend(data)
                if len(buffer) > FIX_MAX_BUFFER:
                    out.error("fixsend: the exchange sent an endless frame")
                    finish(sock)
                    return
                while frame := take_frame(buffer):
                    try:
                        report(fix.parse_message(frame)[0])
                    except fix.FixError as error:
                        out.error(f"fixsend: {error}")
                if state["final"]:
                    finish(sock)
                    return

        def check() -> None:
            quiet = stack.now() - state["last"]
            if state["final"] or sock.state.name == "CLOSED":
                finish(sock)
            elif state["reports"] and quiet >= FIX_QUIET_NS:
                finish(None)  # resting: later reports print as they arrive
            elif not state["reports"] and quiet >= FIX_WAIT_NS:
                out.error(f"fixsend: {host}:{port}: no execution report")
                finish(sock)
            else:
                self.kernel.call_at(stack.now() + FIX_QUIET_NS // 5, check)

        sock.set_callback(readable)
        try:
            sock.connect((host, port))
        except SocketError as error:
            if error.errno != errno.EINPROGRESS:
                out.error(f"fixsend: {host}:{port}: {error.why or 'cannot connect'}")
                sock.close()
                return 1
        self.shell.suspend_prompt()

        def send_when_connected() -> None:
            if sock.state.name == "ESTABLISHED":
                sock.send(request)
                state["last"] = stack.now()
                self.kernel.call_at(stack.now() + FIX_QUIET_NS // 5, check)
            elif stack.now() - state["last"] > FIX_WAIT_NS or sock.state.name == "CLOSED":
                out.error(f"fixsend: {host}:{port}: no connection")
                finish(sock)
            else:
                self.kernel.call_at(stack.now() + 10_000_000, send_when_connected)

        send_when_connected()
        return 0

    def _finish_later(self) -> Callable[[object], None]:
        done = False

        def run(sock: object) -> None:
            nonlocal done
            if sock is not None:
                sock.set_callback(None)  # type: ignore[attr-defined]
                sock.close()  # type: ignore[attr-defined]
            if not done:
                done = True
                self.shell.resume()

        return run
