"""A GDB remote stub for the machine, following QEMU's `-gdb`/`-s`/`-S` conventions.

Contract: `GdbStub(machine, host, port, wait)` listens on a TCP socket (loopback by default) for
one GDB at a time and speaks the remote serial protocol: the i386 target description (general,
segment, x87, SSE and control registers) by qXfer, g/G/p/P, m/M by linear address through the
current page tables, Z0/Z1 breakpoints, Z2/Z3/Z4 watchpoints, s/c/vCont, Ctrl-C, detach and
kill. A new connection stops the machine, as QEMU does; `wait` (-S) holds it before its first
instruction until a GDB says continue. Detach removes every breakpoint and watchpoint and lets
the machine run on; kill powers it off as `shutdown` does.

Why not udbserver (evaluated, PyPI 0.3.0): it serves GDB from inside a Unicorn hook on the
CPU thread, so the machine's interrupt delivery, slices and clocks stop with no way to take
host input; it installs a code hook on every address for as long as it is loaded; it reads
memory with uc_mem_read, which is physical, not through the guest's page tables; it binds
0.0.0.0; and it keeps one global instance per process.

Costs: nothing until attached. Attached, the run loop asks `turn` once per slice (a few
attribute reads). A breakpoint is a UC_HOOK_CODE bounded to its address and a watchpoint a
UC_HOOK_MEM_WRITE/READ bounded to its range, each only while set; a single step is a counted
slice of one instruction (Machine.debug_step). A watched access is reported after its
instruction, as on x86: Unicorn stops inside the memory hook with EIP rewound to the
instruction and a write already done, so the write is undone and the instruction run again as
one step with the watch hooks quiet. Host-side writes (a system call filling a buffer, a disk
read) are not CPU accesses and trigger no watchpoint, as DMA does not under QEMU.

Threads: the accept/reader thread only parses packets into a queue (and turns 0x03 into an
interrupt request); every register and memory access happens on the machine's thread in
`turn`, between slices, so GDB never sees a CPU that is running. Nothing the machine's thread
sends can block it: replies go into a send queue (`SendQueue`, at most MAX_SEND_QUEUE bytes)
that a sender thread of the connection drains into the socket; a client that stops reading
fills its socket, then the queue, and is dropped with a log line (the machine runs on, as
after a detach).
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections import deque

from unicorn import (
    UC_CTL_IO_WRITE,
    UC_CTL_TLB_FLUSH,
    UC_HOOK_CODE,
    UC_HOOK_MEM_READ,
    UC_HOOK_MEM_WRITE,
    UC_MEM_WRITE,
    UcError,
)
from unicorn import x86_const as x86

from tradekernel.emu.cpu import CpuError
from tradekernel.emu.interrupts import PageNotPresent
from tradekernel.emu.machine import Machine

DEFAULT_PORT = 1234  # -s, as QEMU
PACKET_SIZE = 0x4000  # what qSupported offers; m/M larger than half of it are refused
MAX_PACKET = 2 * PACKET_SIZE + 16  # a longer unterminated packet is dropped (hex doubles)
STOPPED_POLL_S = 0.05  # how long a stopped machine waits for a packet before its loop comes round
MAX_POINTS = 1024  # breakpoints and watchpoints set at once (each is a Unicorn hook); more: E0C
MAX_EVENTS = 256  # packets queued for the machine; past that the socket waits (TCP back-pressure)
MAX_SEND_QUEUE = 1 << 20  # reply bytes waiting for a client that does not read; past it: dropped
SIGINT, SIGTRAP = 2, 5
CONNECTED, INTERRUPT, DISCONNECTED = "connected", "interrupt", "disconnected"  # socket events

# Register layout of the target description, in GDB's numbering: (name, bits, unicorn id).
# None: the x87 pointers Unicorn keeps no register for (read as 0, writes refused).
REGISTERS: tuple[tuple[str, int, int | None], ...] = (
    ("eax", 32, x86.UC_X86_REG_EAX), ("ecx", 32, x86.UC_X86_REG_ECX),
    ("edx", 32, x86.UC_X86_REG_EDX), ("ebx", 32, x86.UC_X86_REG_EBX),
    ("esp", 32, x86.UC_X86_REG_ESP), ("ebp", 32, x86.UC_X86_REG_EBP),
    ("esi", 32, x86.UC_X86_REG_ESI), ("edi", 32, x86.UC_X86_REG_EDI),
    ("eip", 32, x86.UC_X86_REG_EIP), ("eflags", 32, x86.UC_X86_REG_EFLAGS),
    ("cs", 32, x86.UC_X86_REG_CS), ("ss", 32, x86.UC_X86_REG_SS),
    ("ds", 32, x86.UC_X86_REG_DS), ("es", 32, x86.UC_X86_REG_ES),
    ("fs", 32, x86.UC_X86_REG_FS), ("gs", 32, x86.UC_X86_REG_GS),
    *((f"st{i}", 80, x86.UC_X86_REG_FP0 + i) for i in range(8)),
    ("fctrl", 32, x86.UC_X86_REG_FPCW), ("fstat", 32, x86.UC_X86_REG_FPSW),
    ("ftag", 32, x86.UC_X86_REG_FPTAG), ("fiseg", 32, x86.UC_X86_REG_FCS),
    ("fioff", 32, x86.UC_X86_REG_FIP), ("foseg", 32, x86.UC_X86_REG_FDS),
    ("fooff", 32, x86.UC_X86_REG_FDP), ("fop", 32, x86.UC_X86_REG_FOP),
    *((f"xmm{i}", 128, x86.UC_X86_REG_XMM0 + i) for i in range(8)),
    ("mxcsr", 32, x86.UC_X86_REG_MXCSR),
    ("cr0", 32, x86.UC_X86_REG_CR0), ("cr2", 32, x86.UC_X86_REG_CR2),
    ("cr3", 32, x86.UC_X86_REG_CR3), ("cr4", 32, x86.UC_X86_REG_CR4),
)  # fmt: skip
SEGMENTS = frozenset({"cs", "ss", "ds", "es", "fs", "gs"})
_FIRST_ST, _FIRST_XMM, _MXCSR, _FIRST_CR = 16, 32, 40, 41


def _feature(name: str, first: int, end: int, extra: str = "") -> str:
    regs = []
    for number in range(first, end):
        reg, bits, _ = REGISTERS[number]
        kind = {80: "i387_ext", 128: "vec128"}.get(bits, "int32")
        if reg in ("esp", "ebp"):
            kind = "data_ptr"
        elif reg == "eip":
            kind = "code_ptr"
        elif reg == "eflags":
            kind = "i386_eflags"
        elif reg == "mxcsr":
            kind = "i386_mxcsr"
        regs.append(f'<reg name="{reg}" bitsize="{bits}" type="{kind}" regnum="{number}"/>')
    return f'<feature name="{name}">{extra}{"".join(regs)}</feature>'


_EFLAGS_TYPE = '<flags id="i386_eflags" size="4">' + "".join(
    f'<field name="{name}" start="{bit}" end="{bit}"/>'
    for bit, name in ((0, "CF"), (2, "PF"), (4, "AF"), (6, "ZF"), (7, "SF"), (8, "TF"),
                      (9, "IF"), (10, "DF"), (11, "OF"), (14, "NT"), (16, "RF"), (17, "VM"),
                      (18, "AC"), (19, "VIF"), (20, "VIP"), (21, "ID"))
) + "</flags>"  # fmt: skip
_SSE_TYPES = (
    '<vector id="v4f" type="ieee_single" count="4"/><vector id="v2d" type="ieee_double" count="2"/>'
    '<vector id="v16i8" type="int8" count="16"/><vector id="v8i16" type="int16" count="8"/>'
    '<vector id="v4i32" type="int32" count="4"/><vector id="v2i64" type="int64" count="2"/>'
    '<union id="vec128"><field name="v4_float" type="v4f"/><field name="v2_double" type="v2d"/>'
    '<field name="v16_int8" type="v16i8"/><field name="v8_int16" type="v8i16"/>'
    '<field name="v4_int32" type="v4i32"/><field name="v2_int64" type="v2i64"/>'
    '<field name="uint128" type="uint128"/></union>'
    '<flags id="i386_mxcsr" size="4"><field name="IE" start="0" end="0"/>'
    '<field name="DE" start="1" end="1"/><field name="ZE" start="2" end="2"/>'
    '<field name="OE" start="3" end="3"/><field name="UE" start="4" end="4"/>'
    '<field name="PE" start="5" end="5"/><field name="DAZ" start="6" end="6"/>'
    '<field name="IM" start="7" end="7"/><field name="DM" start="8" end="8"/>'
    '<field name="ZM" start="9" end="9"/><field name="OM" start="10" end="10"/>'
    '<field name="UM" start="11" end="11"/><field name="PM" start="12" end="12"/>'
    '<field name="FZ" start="15" end="15"/></flags>'
)
TARGET_XML = (
    '<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd">'
    "<target><architecture>i386</architecture>"
    + _feature("org.gnu.gdb.i386.core", 0, _FIRST_XMM, _EFLAGS_TYPE)
    + _feature("org.gnu.gdb.i386.sse", _FIRST_XMM, _FIRST_CR, _SSE_TYPES)
    + _feature("org.tradekernel.i386.sys", _FIRST_CR, len(REGISTERS))
    + "</target>"
).encode()


def parse_address(spec: str) -> tuple[str, int]:
    """`[HOST:]PORT` as QEMU's -gdb tcp:: takes it; the host defaults to loopback. ValueError
    with one line for anything else."""
    host, _, port = spec.removeprefix("tcp:").rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"--gdb {spec}: the port must be a number, as in :1234") from None
    if not 0 <= number <= 0xFFFF:
        raise ValueError(f"--gdb {spec}: port {number} is outside 0-65535")
    return host or "127.0.0.1", number


def checksum(payload: bytes) -> bytes:
    return b"%02x" % (sum(payload) & 0xFF)


def frame(payload: bytes) -> bytes:
    """A packet as it goes on the wire, with `#`, `$`, `}` and `*` escaped."""
    escaped = bytearray()
    for byte in payload:
        if byte in b"#$}*":
            escaped += bytes((0x7D, byte ^ 0x20))
        else:
            escaped.append(byte)
    return b"$" + bytes(escaped) + b"#" + checksum(bytes(escaped))


def _nothing() -> None:
    """Posted only to make the machine's loop come round."""


class PacketReader:
    """Splits the byte stream from GDB into packet payloads; 0x03 outside a packet is Ctrl-C."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes | int]:
        """Payloads (bytes, unescaped) and interrupts (the int 3) in arrival order; acks and
        packets with a bad checksum (answered `-` by the caller) are dropped here."""
        out: list[bytes | int] = []
        buffer = self._buffer
        buffer += data
        while buffer:
            if buffer[0] == 0x03:
                out.append(0x03)
                del buffer[0]
                continue
            start = buffer.find(b"$")
            if start < 0:
                buffer.clear()  # acks and noise
                break
            if 0x03 in buffer[:start]:
                out.append(0x03)
            end = buffer.find(b"#", start)
            if end < 0 or end + 3 > len(buffer):
                del buffer[:start]
                if len(buffer) > MAX_PACKET:  # no end in sight: dropped, not kept growing
                    buffer.clear()
                    out.append(b"")
                break
            restart = buffer.rfind(b"$", start + 1, end)
            if restart > 0:  # a `$` inside a packet (always escaped): the old one was cut off
                del buffer[:restart]
                out.append(b"")
                continue
            body = bytes(buffer[start + 1 : end])
            sent = bytes(buffer[end + 1 : end + 3]).lower()
            del buffer[: end + 3]
            if sent != checksum(body):
                out.append(b"")  # a damaged packet: the caller asks again
                continue
            out.append(_unescape(body))
        return out


def _unescape(body: bytes) -> bytes:
    if b"}" not in body:
        return body
    out = bytearray()
    escape = False
    for byte in body:
        if escape:
            out.append(byte ^ 0x20)
            escape = False
        elif byte == 0x7D:
            escape = True
        else:
            out.append(byte)
    return bytes(out)


class SendQueue:
    """What is sent to one connection, in order, by a thread of its own: `put` never blocks
    and refuses (False) once `limit` bytes wait unsent."""

    def __init__(self, conn: socket.socket, limit: int = MAX_SEND_QUEUE) -> None:
        self._conn = conn
        self.limit = limit
        self._items: deque[bytes] = deque()
        self.waiting = 0  # bytes queued or being sent
        self._ready = threading.Condition()
        self._closed = False
        threading.Thread(target=self._drain, name="gdbstub-send", daemon=True).start()

    def put(self, data: bytes) -> bool:
        with self._ready:
            if self._closed:
                return True  # the connection is going: nothing more to say to it
            if self.waiting + len(data) > self.limit:
                return False
            self._items.append(data)
            self.waiting += len(data)
            self._ready.notify()
        return True

    def close(self) -> None:
        """The sender ends once what is queued is sent (or the socket fails)."""
        with self._ready:
            self._closed = True
            self._ready.notify()

    def _drain(self) -> None:
        while True:
            with self._ready:
                while not self._items and not self._closed:
                    self._ready.wait()
                if not self._items:
                    return
                data = self._items.popleft()
            try:
                self._conn.sendall(data)
            except OSError:
                return  # the reader sees the connection go and says so
            finally:
                with self._ready:
                    self.waiting -= len(data)


class GdbStub:
    """One GDB at a time on `host:port`, driving `machine` through its debugger turn."""

    def __init__(self, machine: Machine, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                 wait: bool = False) -> None:  # fmt: skip
        self.machine = machine
        self._server = socket.create_server((host, port))
        self.address = self._server.getsockname()[:2]
        # packets and socket events; bounded, so a client that sends faster than the machine
        # answers (or while its loop is not running) is held by TCP instead of filling memory
        self._events: queue.Queue[bytes | str] = queue.Queue(MAX_EVENTS)
        self._attention = False  # the socket thread queued something for a running machine
        self._conn: socket.socket | None = None
        self._outbox: SendQueue | None = None
        self._send_lock = threading.Lock()
        self._closed = False
        # machine-thread state
        self._running = not wait
        self._hit: str | None = None  # the stop reply a breakpoint or watchpoint hook left
        self._last_signal = SIGTRAP  # what `?` answers
        self._stepping = False
        self._step_from: int | None = None  # a breakpoint here is not hit by the step itself
        self._quiet_watch = False
        self._rerun = False  # a watch hook stopped the CPU inside an instruction
        self._undo: list[tuple[int, bytes]] = []  # the watched write to take back before it
        self._breakpoints: dict[int, int] = {}  # linear address -> hook handle
        self._watchpoints: dict[tuple[int, int, int], list[int]] = {}  # (kind, addr, len)
        machine.debug_turn = self.turn
        threading.Thread(target=self._serve, name="gdbstub", daemon=True).start()

    # ---- the socket side (its own thread) -------------------------------------------------
    def _serve(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            if self._conn is not None:
                conn.close()  # one debugger at a time, as QEMU
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            outbox = SendQueue(conn)
            with self._send_lock:
                self._conn, self._outbox = conn, outbox
            self._event(CONNECTED)
            self._read(conn)
            with self._send_lock:
                self._conn = self._outbox = None  # the next GDB may connect at once
            outbox.close()
            conn.close()
            self._event(DISCONNECTED)

    def _read(self, conn: socket.socket) -> None:
        reader = PacketReader()
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            for item in reader.feed(data):
                if item == 0x03:
                    self._event(INTERRUPT)
                    continue
                assert isinstance(item, bytes)
                self._send_raw(b"+" if item else b"-")
                if item:
                    self._event(item)

    def _event(self, item: bytes | str) -> None:
        """Hand an event to the machine's thread, in order. A running machine is asked to
        look (the post ends a real-time slice and wakes an idle CPU). A full queue holds this
        (socket) thread until the machine takes some, or the stub is closed."""
        while True:
            try:
                self._events.put(item, timeout=STOPPED_POLL_S)
                break
            except queue.Full:
                if self._closed:
                    return
        self._attention = True
        self.machine.post(_nothing)

    def _send_raw(self, data: bytes) -> None:
        """Queue `data` for the client (never blocks); one that has stopped reading is
        dropped."""
        with self._send_lock:
            conn, outbox = self._conn, self._outbox
            if conn is None or outbox is None or outbox.put(data):
                return
            self._outbox = None  # nothing more is queued for it
        self.machine.channels.send(
            "log", f"gdbstub: the client stopped reading ({outbox.waiting} bytes unsent); "
            "dropped it, the machine runs on")  # fmt: skip
        try:
            conn.shutdown(socket.SHUT_RDWR)  # its reader ends: the machine goes on as detached
        except OSError:
            pass
        outbox.close()

    def _reply(self, payload: bytes | str) -> None:
        if isinstance(payload, str):
            payload = payload.encode()
        self._send_raw(frame(payload))

    def close(self) -> None:
        """Stop listening and drop the connection; the machine, if still there, runs on."""
        self._closed = True
        self._server.close()
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        if self.machine.debug_turn == self.turn:
            self._clear_points()
            self.machine.debug_turn = None

    # ---- the machine side (the machine's thread, between slices) ---------------------------
    def turn(self) -> str:
        """The run loop's question between slices (see Machine._debugger_turn)."""
        if self._running:
            if self._rerun:
                self._rerun_watched_instruction()
            elif self._stepping:
                return "stepped" if self._step() else "run"  # halted: idle till woken
            if self._hit is not None:
                self._stop(SIGTRAP, self._hit)
            elif not self._attention:
                return "run"
            else:
                self._attention = False
                while self._running and not self._events.empty():
                    self._take(self._events.get_nowait())
                if self._running:
                    return "run"
        deadline = time.monotonic() + STOPPED_POLL_S
        while True:
            try:
                item = self._events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return "stopped"
            self._take(item)
            if self._running:
                return "stepped" if self._stepping and self._step() else "run"

    def _take(self, item: bytes | str) -> None:
        if item == CONNECTED:
            if self._running:
                self._stop(SIGTRAP, None)  # as QEMU: GDB asks with `?` where it stopped
        elif item == INTERRUPT:
            if self._running:
                self._stop(SIGINT, "")
        elif item == DISCONNECTED:
            self._disconnected()
        else:
            assert isinstance(item, bytes)
            self._handle(item)

    def _step(self) -> bool:
        """One instruction; the stop reply waits for the next turn. False while halted."""
        self._step_from = self.machine.linear_eip()
        try:
            done = self.machine.debug_step()
        finally:
            self._step_from = None
        if done:
            self._stepping = False
            if self._hit is None:
                self._hit = ""
        return done

    def _stop(self, signal: int, reason: str | None) -> None:
        """Stopped; the reply GDB waits for, unless `reason` is None (no one asked)."""
        self._hit = None
        self._running = False
        self._last_signal = signal
        if reason is not None:
            self._reply(f"T{signal:02x}thread:01;{reason}")

    def _disconnected(self) -> None:
        """GDB went away (detached, killed or lost): the machine runs on without breakpoints."""
        self._clear_points()
        self._running = True
        self._stepping = False

    def _rerun_watched_instruction(self) -> None:
        """A watch hook stopped the CPU inside its instruction (EIP rewound, a write already
        in RAM): put the old bytes back and run the instruction once, watches quiet."""
        for physical, old in self._undo:
            self.machine.memory.write(physical, old)
        self._undo = []
        self._rerun = self._stepping = False
        self._quiet_watch = True
        try:
            self._step_from = self.machine.linear_eip()
            self.machine.debug_step()
        finally:
            self._quiet_watch = False
            self._step_from = None

    # ---- packets ---------------------------------------------------------------------------
    def _handle(self, packet: bytes) -> None:
        text = packet.decode("latin-1")
        try:
            reply = self._answer(text, packet)
        except Exception as error:  # noqa: BLE001 - nothing a client sends may stop the machine
            reply = "E01"
            self.machine.channels.send(
                "log", f"gdbstub: refused packet {text[:40]!r}: {type(error).__name__}: {error}"
            )
        if reply is not None:
            self._reply(reply)

    def _answer(self, text: str, packet: bytes) -> str | bytes | None:
        """The reply to one packet (None: the reply is a later stop)."""
        head = text[:1]
        if text == "?":
            return f"T{self._last_signal:02x}thread:01;"
        if head == "q":
            return self._query(text)
        if text.startswith("vCont"):
            return self._vcont(text)
        if head in "HT":
            return "OK"  # one thread, always alive
        if head == "g":
            return "".join(self._read_register(n).hex() for n in range(len(REGISTERS)))
        if head == "G":
            return self._write_all_registers(bytes.fromhex(text[1:]))
        if head == "p":
            number = int(text[1:], 16)
            return self._read_register(number).hex() if number < len(REGISTERS) else "E00"
        if head == "P":
            number, value = text[1:].split("=")
            return self._write_register(int(number, 16), bytes.fromhex(value))
        if head == "m":
            address, length = (int(part, 16) for part in text[1:].split(","))
            return self._read_memory(address, length)
        if head == "M":
            where, data = text[1:].split(":")
            address, length = (int(part, 16) for part in where.split(","))
            return self._write_memory(address, bytes.fromhex(data)[:length])
        if head == "X":
            colon = packet.index(b":")
            address, length = (int(part, 16) for part in text[1:colon].split(","))
            return self._write_memory(address, packet[colon + 1 : colon + 1 + length])
        if head in "Zz" and len(text) > 1:
            kind, address, length = text[1:].split(";")[0].split(",")
            return self._point(head == "Z", int(kind), int(address, 16), int(length, 16))
        if head == "c":
            self._resume(step=False)
            return None
        if head == "s":
            self._resume(step=True)
            return None
        if head == "D":
            self._clear_points()
            self._reply("OK")
            self._running = True
            return None
        if head == "k":
            self._clear_points()
            self._running = True
            self.machine.request_power_off()
            return None
        return ""

    def _query(self, text: str) -> str | bytes:
        if text.startswith("qSupported"):
            return (
                f"PacketSize={PACKET_SIZE:x};qXfer:features:read+;swbreak+;hwbreak+;vContSupported+"
            )
        if text.startswith("qXfer:features:read:"):
            annex, _, window = text[len("qXfer:features:read:") :].partition(":")
            if annex != "target.xml":
                return "E00"
            offset, length = (int(part, 16) for part in window.split(","))
            chunk = TARGET_XML[offset : offset + min(length, PACKET_SIZE - 8)]
            return (b"l" if offset + len(chunk) >= len(TARGET_XML) else b"m") + chunk
        if text == "qAttached":
            return "1"
        if text == "qC":
            return "QC1"
        if text == "qfThreadInfo":
            return "m1"
        if text == "qsThreadInfo":
            return "l"
        if text.startswith("qSymbol"):
            return "OK"
        return ""

    def _vcont(self, text: str) -> str | None:
        if text == "vCont?":
            return "vCont;c;C;s;S"
        # one thread: the first action decides (vCont;s:1;c steps thread 1)
        action = text.split(";")[1][:1] if ";" in text else ""
        if action in ("c", "C"):
            self._resume(step=False)
        elif action in ("s", "S"):
            self._resume(step=True)
        else:
            return "E01"
        return None

    def _resume(self, step: bool) -> None:
        self._running = True
        self._stepping = step

    # ---- registers -------------------------------------------------------------------------
    def _read_register(self, number: int) -> bytes:
        name, bits, reg = REGISTERS[number]
        if reg is None:
            return bytes(bits // 8)
        uc = self.machine.cpu.uc
        if bits == 80:
            mantissa, exponent = uc.reg_read(reg)
            return mantissa.to_bytes(8, "little") + (exponent & 0xFFFF).to_bytes(2, "little")
        if bits == 128:
            return uc.reg_read(reg).to_bytes(16, "little")
        value = self.machine.cpu.read(reg)
        if name in SEGMENTS:
            value &= 0xFFFF
        return value.to_bytes(4, "little")

    def _write_register(self, number: int, data: bytes) -> str:
        if number >= len(REGISTERS):
            return "E00"
        _, bits, reg = REGISTERS[number]
        if reg is None or len(data) != bits // 8:
            return "E01"
        try:
            if bits == 80:
                value = (int.from_bytes(data[:8], "little"), int.from_bytes(data[8:], "little"))
                self.machine.cpu.uc.reg_write(reg, value)
            elif bits == 128:
                self.machine.cpu.uc.reg_write(reg, int.from_bytes(data, "little"))
            else:
                self.machine.cpu.write(reg, int.from_bytes(data, "little"))
        except (CpuError, UcError):  # Unicorn refused it (a selector of another ring)
            return "E01"
        return "OK"

    def _write_all_registers(self, data: bytes) -> str:
        offset = 0
        for number, (name, bits, _) in enumerate(REGISTERS):
            size = bits // 8
            chunk = data[offset : offset + size]
            offset += size
            if len(chunk) < size:
                break
            if chunk == self._read_register(number):
                continue  # unchanged: a selector Unicorn would refuse to reload stays put
            if self._write_register(number, chunk) != "OK" and name not in ("fiseg", "foseg"):
                return "E01"
        return "OK"

    # ---- memory (linear addresses, through the current page tables) -------------------------
    def _physical_runs(self, address: int, length: int):  # noqa: ANN202 - (linear, phys, n)
        """Page by page until the first unmapped page (PageNotPresent ends the walk)."""
        mmu = self.machine.interrupts.mmu
        end = address + length
        while address < end:
            chunk = min(end - address, 0x1000 - (address & 0xFFF))
            try:
                physical = mmu.physical(address & 0xFFFFFFFF)
            except PageNotPresent:
                return
            yield address, physical, chunk
            address += chunk

    def _read_memory(self, address: int, length: int) -> str:
        if length > PACKET_SIZE // 2:
            return "E01"
        memory = self.machine.memory
        data = b"".join(memory.read(p, n) for _, p, n in self._physical_runs(address, length))
        return data.hex() if data or not length else "E14"

    def _write_memory(self, address: int, data: bytes) -> str:
        runs = list(self._physical_runs(address, len(data)))
        if sum(n for _, _, n in runs) < len(data):
            return "E14"
        for linear, physical, count in runs:
            offset = linear - address
            self.machine.memory.write(physical, data[offset : offset + count])
        return "OK"

    # ---- breakpoints and watchpoints --------------------------------------------------------
    def _point(self, insert: bool, kind: int, address: int, length: int) -> str:
        if insert and len(self._breakpoints) + len(self._watchpoints) >= MAX_POINTS:
            key = (kind, address, length)
            if address not in self._breakpoints and key not in self._watchpoints:
                return "E0c"  # ENOMEM: GDB says it cannot insert it
        if kind in (0, 1):
            return self._breakpoint(insert, address, "swbreak:;" if kind == 0 else "hwbreak:;")
        if kind in (2, 3, 4) and 0 < length <= 0x1000:
            return self._watchpoint(insert, kind, address, length)
        return ""

    def _breakpoint(self, insert: bool, address: int, reason: str) -> str:
        if not insert:
            handle = self._breakpoints.pop(address, None)
            if handle is not None:
                self._remove_hooks([handle])
            return "OK"
        if address not in self._breakpoints:

            def hit(_uc: object, where: int, _size: int, _user: object) -> None:
                if where in self._breakpoints and where != self._step_from and self._hit is None:
                    self._hit = reason
                    self.machine.debug_stop()

            self._breakpoints[address] = self.machine.debug_hook(
                UC_HOOK_CODE, hit, address, address
            )
            self.machine.cpu.uc.ctl_flush_tb()  # code translated before has no call to the hook
        return "OK"

    def _watchpoint(self, insert: bool, kind: int, address: int, length: int) -> str:
        key = (kind, address, length)
        if not insert:
            self._remove_hooks(self._watchpoints.pop(key, []))
            return "OK"
        if key in self._watchpoints:
            return "OK"
        # Unicorn 2.1.4 checks a memory hook's range against the *physical* address and
        # passes that address (measured with paging on), so the hook watches the frames the
        # current page tables map the range to; a hit counts only if the running address
        # space maps the watched linear address to the frame written (not another process's
        # alias of it). A range not mapped now cannot be watched (E14; gdb says so).
        runs = list(self._physical_runs(address, length))
        if sum(count for _, _, count in runs) < length:
            return "E14"
        reply = {2: "watch", 3: "rwatch", 4: "awatch"}[kind]
        mmu = self.machine.interrupts.mmu

        def access(_uc: object, kind_of_access: int, where: int, size: int, *_: object) -> None:
            if self._quiet_watch or self._hit is not None or key not in self._watchpoints:
                return
            touched = [
                (lin, phys) for lin, phys, n in runs if where < phys + n and phys < where + size
            ]
            if not touched:
                return
            linear, physical = touched[0]
            try:
                if mmu.physical(linear) != physical:
                    return
            except PageNotPresent:
                return
            if kind_of_access == UC_MEM_WRITE:
                self._undo = [(where, self.machine.memory.read(where, size))]
            self._hit = f"{reply}:{address:x};"
            self._rerun = True
            self.machine.debug_stop()

        kinds = {2: (UC_HOOK_MEM_WRITE,), 3: (UC_HOOK_MEM_READ,)}.get(
            kind, (UC_HOOK_MEM_WRITE, UC_HOOK_MEM_READ)
        )
        self._watchpoints[key] = [
            self.machine.debug_hook(hook, access, max(0, physical - 7), physical + count - 1)
            for _, physical, count in runs
            for hook in kinds
        ]
        # Unicorn sends an access to the hooks only from TLB entries made after the hook was
        # added (measured: a watch on a page the program had already written never fired)
        self.machine.cpu.uc.ctl(UC_CTL_TLB_FLUSH, UC_CTL_IO_WRITE)
        return "OK"

    def _clear_points(self) -> None:
        handles = list(self._breakpoints.values())
        for hooks in self._watchpoints.values():
            handles += hooks
        self._breakpoints.clear()
        self._watchpoints.clear()
        self._remove_hooks(handles)

    def _remove_hooks(self, handles: list[int]) -> None:
        """Unicorn keeps calling a deleted code hook from blocks translated while it was set
        (seen: a breakpoint hit again after gdb removed it and detached), so those blocks go
        too: the machine runs at full speed again, with no trace of the debugger."""
        if not handles:
            return
        uc = self.machine.cpu.uc
        for handle in handles:
            uc.hook_del(handle)
        uc.ctl_flush_tb()
