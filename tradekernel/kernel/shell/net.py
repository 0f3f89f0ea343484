"""Networking at boot and in the shell: `start_network(kernel)` probes the NE2000 (drivers/ne2000),
builds the NetStack on it, takes its IRQ, starts DHCP, merges the socket system calls into the
table and registers the commands: ifconfig (alias `ip` for `ip addr`), route, arp, netstat
[-s], ping HOST [-c N], dhcp [renew|release], nslookup NAME, wget URL, and the market-data
commands of shell/market.py (exchange, mdjoin, fixsend), imported at their first use.

With no card the OS boots the same: the socket calls answer EAFNOSUPPORT and `ifconfig` says
there is no interface. Commands that wait on the network (ping, nslookup, wget, dhcp renew)
suspend the prompt and finish from timers and socket callbacks, bounded by a deadline; their
output goes to the console (redirection applies to what they print before waiting only).

Imports: drivers (port I/O, the NE2000 driver), net (the stack), proc (the socket calls),
shell (Output, UsageError).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from tradekernel.kernel.drivers.ne2000 import Ne2000Driver
from tradekernel.kernel.drivers.portio import PortIo
from tradekernel.kernel.net.api import POLLERR, POLLHUP, POLLIN, POLLOUT, SocketError
from tradekernel.kernel.net.icmp import ECHO_REPLY, ECHO_REQUEST
from tradekernel.kernel.net.stack import NetStack
from tradekernel.kernel.net.wire import ip_str, ip_to_int, mac_str, prefix_mask
from tradekernel.kernel.proc.sockets import SOCKETCALL, TRIAL_CALLS, SocketCalls
from tradekernel.kernel.shell.shell import Output, UsageError

if TYPE_CHECKING:
    from tradekernel.kernel.shell.market import MarketCommands

NE2000_BASE, NE2000_IRQ = 0x300, 9
MS = 1_000_000
SECOND = 1_000_000_000
PING_INTERVAL_NS = SECOND
PING_WAIT_NS = 2 * SECOND  # after the last request
PING_MAX_COUNT = 1000
DNS_WAIT_NS = 10 * SECOND
WGET_WAIT_NS = 60 * SECOND
WGET_MAX_BYTES = 16 << 20
MARKET_COMMANDS = (
    ("exchange", "exchange GROUP:PORT FIXPORT",
     "publish the books as ITCH on a multicast group; take FIX orders on FIXPORT"),
    ("mdjoin", "mdjoin [GROUP:PORT]", "mirror an ITCH multicast feed into the books"),
    ("fixsend", "fixsend HOST:PORT buy|sell SYM QTY PRICE [ioc]",
     "send one FIX order and print its execution reports"),
)  # fmt: skip


def start_network(kernel) -> NetCommands:  # noqa: ANN001 - tradekernel.kernel.main.Kernel
    """Probe, start and register everything; the commands object (its `stack` None with no card)."""
    driver = Ne2000Driver.probe(PortIo(kernel.ports), NE2000_BASE, NE2000_IRQ)
    stack = None
    if driver is not None:
        stack = NetStack(driver, kernel.clock, kernel, seed=kernel.clock.now_ns() & 0xFFFF
                         if not kernel.platform.deterministic else 0,
                         log=kernel.platform.log)
        driver.on_frame = stack.receive
        driver.on_burst_start, driver.on_burst_end = stack.begin_burst, stack.end_burst
        kernel.on_irq(driver.irq, driver.on_irq)
        kernel.console.write(f"net: NE2000 at {driver.base:#x} IRQ {driver.irq}, "
                             f"{':'.join(f'{b:02x}' for b in driver.mac)}\n")
        stack.dhcp.start()
    else:
        kernel.console.write("net: no network card\n")
    if kernel.syscall_entry is not None:
        calls = SocketCalls(kernel.processes, stack)
        kernel.syscall_entry.syscalls.table.update(calls.entries())
        kernel.syscall_entry.add_trials(TRIAL_CALLS, lambda number, args: number != SOCKETCALL
                                        or calls.trial_socketcall(args))
    commands = NetCommands(kernel, driver, stack)
    commands.register(kernel.shell)
    return commands


class NetCommands:
    def __init__(self, kernel, driver: Ne2000Driver | None, stack: NetStack | None) -> None:  # noqa: ANN001
        self.kernel = kernel
        self.driver = driver
        self.stack = stack
        self._market: MarketCommands | None = None

    def register(self, shell) -> None:  # noqa: ANN001 - shell.Shell
        self.shell = shell
        for name, handler, usage, text in (
            ("ifconfig", self.ifconfig, "ifconfig [eth0 ADDR/PREFIX [gw GATEWAY]]",
             "the network interface; with an address: set it (DHCP stops)"),
            ("ip", self.ip, "ip addr", "the interface's addresses (as ifconfig)"),
            ("route", self.route, "route", "the routing table"),
            ("arp", self.arp, "arp", "the ARP cache"),
            ("netstat", self.netstat, "netstat [-s]", "sockets, states, queues; -s: counters"),
            ("ping", self.ping, "ping HOST [-c N]", "ICMP echo, with RTT min/avg/max"),
            ("dhcp", self.dhcp, "dhcp [renew|release]", "the DHCP lease (renew or release it)"),
            ("nslookup", self.nslookup, "nslookup NAME", "ask the DNS server for NAME's address"),
            ("wget", self.wget, "wget URL", "fetch an http:// URL into the current directory"),
        ):
            shell.register(name, handler, usage, text)
        for name, usage, text in MARKET_COMMANDS:
            shell.register(name, lambda args, out, name=name: getattr(self.market(), name)(
                args, out), usage, text)  # fmt: skip

    def market(self) -> MarketCommands:
        """exchange, mdjoin and fixsend (shell/market.py), imported at their first use."""
        if self._market is None:
            from tradekernel.kernel.shell.market import MarketCommands

            self._market = MarketCommands(self.kernel, self.stack, self.shell)
        return self._market

    def _need_stack(self, out: Output) -> NetStack | None:
        if self.stack is None:
            out.error("no network interface (no NE2000 found at 0x300)")
        return self.stack

    # -- reports -------------------------------------------------------------------------------
    def ifconfig(self, args: list[str], out: Output) -> int:
        stack = self._need_stack(out)
        if stack is None or self.driver is None:
            return 1
        if args:
            return self._set_address(stack, args, out)
        info = stack.interface()
        out.line(f"eth0: flags=UP,BROADCAST,MULTICAST  mtu {info['mtu']}")
        if stack.addr:
            out.line(f"        inet {info['addr']}  netmask {ip_str(prefix_mask(stack.prefix_len))}"
                     f"  broadcast {info['broadcast']}")
        else:
            out.line("        inet (none yet: DHCP is asking)")
        card = f"NE2000 at {self.driver.base:#x} IRQ {self.driver.irq}"
        out.line(f"        ether {info['mac']}  {card}")
        out.line(f"        RX packets {info['rx_packets']}  bytes {info['rx_bytes']}")
        out.line(f"        TX packets {info['tx_packets']}  bytes {info['tx_bytes']}")
        for group in info["groups"]:  # type: ignore[attr-defined]
            out.line(f"        member of {group}")
        return 0

    @staticmethod
    def _set_address(stack: NetStack, args: list[str], out: Output) -> int:
        if args[0] != "eth0" or len(args) not in (2, 4) or (len(args) == 4 and args[2] != "gw"):
            raise UsageError("ifconfig eth0 ADDR/PREFIX [gw GATEWAY]")
        address, _, prefix = args[1].partition("/")
        try:
            addr = ip_to_int(address)
            gateway = ip_to_int(args[3]) if len(args) == 4 else None
        except ValueError as error:
            raise UsageError(str(error)) from None
        if not prefix.isdigit() or not 0 < int(prefix) <= 32:
            raise UsageError("the prefix length goes after a slash: 10.0.0.2/24")
        stack.dhcp.stop()
        stack.unconfigure()
        stack.configure(addr, int(prefix), gateway)
        out.line(f"eth0: {ip_str(addr)}/{prefix}" + (f" via {args[3]}" if gateway else ""))
        return 0

    def ip(self, args: list[str], out: Output) -> int:
        if args[:1] not in (["addr"], ["a"], ["address"]):
            raise UsageError("only 'ip addr' is supported")
        return self.ifconfig([], out)

    def route(self, args: list[str], out: Output) -> int:
        stack = self._need_stack(out)
        if stack is None:
            return 1
        out.line(f"{'Destination':<16}{'Gateway':<16}{'Genmask':<16}")
        for entry in stack.routes.routes:
            out.line(f"{ip_str(entry.dest) if entry.prefix_len else 'default':<16}"
                     f"{ip_str(entry.gateway) if entry.gateway else '*':<16}"
                     f"{ip_str(prefix_mask(entry.prefix_len)):<16}")
        return 0

    def arp(self, args: list[str], out: Output) -> int:
        stack = self._need_stack(out)
        if stack is None:
            return 1
        out.line(f"{'Address':<16}{'HWaddress':<20}{'Expires':>8}")
        for ip, mac, left in stack.arp.entries():
            hw = mac_str(mac) if mac else "(incomplete)"
            out.line(f"{ip_str(ip):<16}{hw:<20}{left // SECOND:>7}s")
        return 0

    def netstat(self, args: list[str], out: Output) -> int:
        stack = self._need_stack(out)
        if stack is None:
            return 1
        if args == ["-s"]:
            for name, value in sorted(stack.counters.snapshot().items()):
                out.line(f"{name:<32}{value:>12}")
            if self.driver is not None:
                for name, value in self.driver.stats.items():
                    out.line(f"{'ne2000.' + name:<32}{value:>12}")
            return 0
        if args:
            raise UsageError(f"unknown option {args[0]!r}")
        out.line(f"{'Proto':<6}{'Recv-Q':>7}{'Send-Q':>7}  {'Local Address':<22}"
                 f"{'Foreign Address':<22}State")
        for row in stack.socket_table():
            out.line(f"{row['proto']:<6}{row['recv_q']:>7}{row['send_q']:>7}  {row['local']:<22}"
                     f"{row['peer']:<22}{row['state']}")
        return 0

    # -- waiting commands ----------------------------------------------------------------------
    def _finish_later(self, finish: Callable[[], None]) -> Callable[[], None]:
        """`finish` once, then the prompt again."""
        done = False

        def run() -> None:
            nonlocal done
            if done:
                return
            done = True
            finish()
            self.shell.resume()

        return run

    def ping(self, args: list[str], out: Output) -> int:
        stack = self._need_stack(out)
        if stack is None:
            return 1
        count, host = 4, None
        items = iter(args)
        for item in items:
            if item == "-c":
                value = next(items, "")
                if not value.isdigit() or not 0 < int(value) <= PING_MAX_COUNT:
                    raise UsageError(f"-c takes a count from 1 to {PING_MAX_COUNT}")
                count = int(value)
            elif host is None:
                host = item
            else:
                raise UsageError(f"unexpected argument {item!r}")
        if host is None:
            raise UsageError("which host?")
        try:
            target = ip_str(ip_to_int(host))
        except ValueError:
            out.error(f"ping: {host}: give an IPv4 address (nslookup resolves names)")
            return 2
        sock = stack.open("icmp")
        sent: dict[int, int] = {}  # sequence -> time sent, until its reply
        rtts: list[int] = []
        transmitted = 0
        out.line(f"PING {target}: 56 data bytes")

        def summary() -> None:
            sock.set_callback(None)
            sock.close()  # type: ignore[attr-defined]
            lost = 100 * (transmitted - len(rtts)) // max(1, transmitted)
            out.line(f"--- {target} ping statistics ---")
            out.line(f"{transmitted} packets transmitted, {len(rtts)} received, "
                     f"{lost}% packet loss")
            if rtts:
                ms = [r / MS for r in rtts]
                average = sum(ms) / len(ms)
                out.line(f"rtt min/avg/max = {min(ms):.3f}/{average:.3f}/{max(ms):.3f} ms")

        finish = self._finish_later(summary)

        def replies(_sock) -> None:  # noqa: ANN001
            while True:
                try:
                    message, source = sock.recvfrom(2048)  # type: ignore[attr-defined]
                except SocketError:
                    return
                if len(message) < 8 or message[0] != ECHO_REPLY:
                    continue
                seq = struct.unpack("!H", message[6:8])[0]
                if seq in sent:
                    rtt = stack.now() - sent.pop(seq)
                    rtts.append(rtt)
                    out.line(f"{len(message)} bytes from {source[0]}: icmp_seq={seq} "
                             f"time={rtt / MS:.3f} ms")
                if len(rtts) == count:
                    finish()

        def send(seq: int) -> None:
            nonlocal transmitted
            payload = bytes(range(56))
            try:
                sock.sendto(struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, 0, seq) + payload,  # type: ignore[attr-defined]
                            (target, 0))
            except SocketError as error:
                out.error(f"ping: {target}: {error.why or 'cannot send'} (errno {error.errno})")
                finish()
                return
            sent[seq] = stack.now()
            transmitted += 1
            if seq + 1 < count:
                self.kernel.call_at(stack.now() + PING_INTERVAL_NS, lambda: send(seq + 1))
            else:
                self.kernel.call_at(stack.now() + PING_WAIT_NS, finish)

        sock.set_callback(replies)
        self.shell.suspend_prompt()
        send(0)
        return 0

    def dhcp(self, args: list[str], out: Output) -> int:
        stack = self._need_stack(out)
        if stack is None:
            return 1
        if args == ["renew"]:
            stack.dhcp.renew()
            out.line("dhcp: renewing")
        elif args == ["release"]:
            stack.dhcp.release()
            out.line("dhcp: released")
        elif args:
            raise UsageError(f"unknown argument {args[0]!r}")
        lease = stack.dhcp.lease
        out.line(f"state {stack.dhcp.state.name.lower()}")
        for line in lease.describe(stack.now()) if lease is not None else ["no lease"]:
            out.line(line)
        return 0

    def nslookup(self, args: list[str], out: Output) -> int:
        stack = self._need_stack(out)
        if stack is None:
            return 1
        if len(args) != 1:
            raise UsageError("one name")
        name = args[0]

        def done(query) -> None:  # noqa: ANN001 - dns.DnsQuery
            self._finish_later(lambda: self._report_lookup(query, name, out))()

        self.shell.suspend_prompt()
        query = stack.dns.lookup(name, done)
        self.kernel.call_at(stack.now() + DNS_WAIT_NS, lambda: done(query))
        return 0

    @staticmethod
    def _report_lookup(query, name: str, out: Output) -> None:  # noqa: ANN001
        if query.addresses:
            for address in query.addresses:
                out.line(f"{name}: {address}")
        else:
            out.error(f"nslookup: {name}: {query.error or 'no answer within the time limit'}")

    def wget(self, args: list[str], out: Output) -> int:
        stack = self._need_stack(out)
        if stack is None:
            return 1
        if len(args) != 1:
            raise UsageError("one URL")
        url = args[0]
        if not url.startswith("http://"):
            out.error(f"wget: {url}: only http:// URLs")
            return 2
        rest = url[len("http://"):]
        hostport, _, path = rest.partition("/")
        host, _, port_text = hostport.partition(":")
        port = int(port_text) if port_text.isdigit() else 80
        filename = path.rsplit("/", 1)[-1] or "index.html"
        try:
            address = ip_str(ip_to_int(host))
        except ValueError:
            out.error(f"wget: {host}: give an IPv4 address (nslookup resolves names)")
            return 2
        sock = stack.open("tcp")
        request = (f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUser-Agent: tk-wget\r\n"
                   "Connection: close\r\n\r\n").encode()
        received = bytearray()
        state = {"sent": False}

        def finish() -> None:
            sock.set_callback(None)
            sock.close()  # type: ignore[attr-defined]
            head, _, body = bytes(received).partition(b"\r\n\r\n")
            status = head.split(b"\r\n", 1)[0].decode("latin-1", "replace")
            if not status.startswith("HTTP/1."):
                out.error(f"wget: {url}: no HTTP answer ({len(received)} bytes)")
                return
            if " 200 " not in status + " ":
                out.error(f"wget: {url}: {status}")
                return
            fs = self.kernel.fs
            if fs is None:
                out.error("wget: no filesystem to save to")
                return
            target = self.shell.resolve_path(filename)
            try:
                handle = fs.open(target, "w")
                handle.write(body)
                handle.close()
                fs.flush()
            except OSError as error:
                out.error(f"wget: {target}: {error}")
                return
            out.line(f"{status}: saved {len(body)} bytes to {target}")

        done = self._finish_later(finish)

        def changed(_sock) -> None:  # noqa: ANN001
            ready = sock.readiness()
            if ready & POLLOUT and not state["sent"]:
                state["sent"] = True
                sock.send(request)  # type: ignore[attr-defined]
            while ready & POLLIN:
                try:
                    data = sock.recv(65536)  # type: ignore[attr-defined]
                except SocketError:
                    break
                if not data:
                    done()
                    return
                if len(received) + len(data) > WGET_MAX_BYTES:
                    out.error(f"wget: larger than {WGET_MAX_BYTES} bytes")
                    done()
                    return
                received.extend(data)
                ready = sock.readiness()
            if ready & (POLLERR | POLLHUP):
                done()

        sock.set_callback(changed)
        try:
            sock.connect((address, port))  # type: ignore[attr-defined]
        except SocketError as error:
            if error.errno != 115:  # EINPROGRESS
                sock.close()  # type: ignore[attr-defined]
                out.error(f"wget: {url}: {error.why or 'cannot connect'} (errno {error.errno})")
                return 1
        out.line(f"Connecting to {address}:{port}...")
        self.shell.suspend_prompt()
        self.kernel.call_at(stack.now() + WGET_WAIT_NS, done)
        return 0
