"""The GDB stub's packets byte for byte, from a plain socket client (gdb itself is in
test_gdb.py): framing, the target description against the `g` layout, memory through the page
tables, register writes, watchpoints that cannot be set, Ctrl-C on an idle guest, detach."""

from __future__ import annotations

import socket
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.system.harness import BootedPc, close_pc
from tradekernel.emu.cpu import x86
from tradekernel.emu.gdbstub import (
    MAX_EVENTS,
    MAX_POINTS,
    REGISTERS,
    GdbStub,
    PacketReader,
    checksum,
    frame,
)
from tradekernel.emu.machine import Machine, MachineConfig
from tradekernel.ui.keymap import text_to_key_events

UC_X86_REG_IDTR = x86.UC_X86_REG_IDTR

UNMAPPED = 0xC0000000  # above every mapping the kernel makes for the shell


class Client:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.reader = PacketReader()
        self.pending: list[bytes] = []

    def send(self, payload: bytes) -> None:
        self.sock.sendall(frame(payload))

    def receive(self) -> bytes:
        while not self.pending:
            data = self.sock.recv(65536)
            assert data, "the stub closed the connection"
            self.pending += [item for item in self.reader.feed(data) if isinstance(item, bytes)]
        return self.pending.pop(0)

    def ask(self, payload: bytes) -> bytes:
        self.send(payload)
        return self.receive()


@pytest.fixture(params=[True], ids=["deterministic"])
def attached(request: pytest.FixtureRequest, tmp_path: Path):  # noqa: ANN201
    """A booted, idle PC running on a thread, with a client connected (and so stopped)."""
    tk = BootedPc(tmp_path, deterministic=request.param)
    tk.boot()
    stub = GdbStub(tk.machine, port=0)
    done = threading.Event()
    result = {}

    def run() -> None:
        result["stop"] = tk.machine.run(wall_timeout_s=120)
        done.set()

    threading.Thread(target=run, daemon=True).start()
    client = Client(stub.address[1])
    assert client.ask(b"?").startswith(b"T05")
    yield tk, stub, client
    client.sock.close()
    tk.machine.request_power_off()
    done.wait(30)
    stub.close()
    close_pc(tk)


def test_framing_escapes_checksums_and_interrupts() -> None:
    assert frame(b"OK") == b"$OK#9a"
    assert frame(b"a#b") == b"$a}\x03b#" + checksum(b"a}\x03b")
    reader = PacketReader()
    wire = b"+\x03" + frame(b"m10,4") + b"$bad#00" + frame(b"X0,1:}]")[:5]
    assert reader.feed(wire) == [3, b"m10,4", b""]  # an ack, Ctrl-C, a packet, a damaged one
    assert reader.feed(frame(b"X0,1:}]")[5:]) == [b"X0,1:}]"]  # completed, round trip


def test_target_description_matches_the_g_packet(attached) -> None:  # noqa: ANN001
    _tk, _stub, client = attached
    supported = client.ask(b"qSupported:swbreak+;hwbreak+").decode()
    assert "qXfer:features:read+" in supported and "swbreak+" in supported
    xml = b""
    while True:
        chunk = client.ask(b"qXfer:features:read:target.xml:%x,200" % len(xml))
        xml += chunk[1:]
        if chunk[:1] == b"l":
            break
    root = ET.fromstring(xml)
    regs = [(reg.get("name"), int(reg.get("bitsize"))) for reg in root.iter("reg")]
    assert regs == [(name, bits) for name, bits, _ in REGISTERS]
    assert {f.get("name") for f in root.iter("feature")} >= {
        "org.gnu.gdb.i386.core",
        "org.gnu.gdb.i386.sse",
    }
    registers = bytes.fromhex(client.ask(b"g").decode())
    assert len(registers) == sum(bits for _, bits in regs) // 8
    cs = int.from_bytes(registers[40:44], "little")
    assert cs == 0x08  # the idle loop runs in the kernel's flat code segment


def test_memory_through_the_page_tables_and_register_writes(attached) -> None:  # noqa: ANN001
    tk, _stub, client = attached
    assert client.ask(b"m%x,4" % UNMAPPED) == b"E14"
    assert client.ask(b"M%x,2:abcd" % UNMAPPED) == b"E14"
    assert client.ask(b"Z2,%x,4" % UNMAPPED) == b"E14"  # a watch needs the page mapped now
    scratch = 0x7000  # conventional memory, mapped 1:1
    assert client.ask(b"M%x,4:11223344" % scratch) == b"OK"
    assert tk.machine.memory.read(scratch, 4) == bytes.fromhex("11223344")
    assert client.ask(b"m%x,4" % scratch) == b"11223344"
    saved = client.ask(b"p0")
    assert client.ask(b"P0=efbeadde") == b"OK" and client.ask(b"p0") == b"efbeadde"
    assert client.ask(b"P0=" + saved) == b"OK"
    assert client.ask(b"pff") == b"E00"
    assert client.ask(b"m0,ffffff") == b"E01"  # larger than the packet size: refused, not read


def test_ctrl_c_stops_an_idle_guest_and_detach_clears_every_hook(attached) -> None:  # noqa: ANN001
    tk, stub, client = attached
    assert client.ask(b"Z0,8048000,1") == b"OK"
    assert client.ask(b"Z2,7000,4") == b"OK"
    client.send(b"c")
    client.sock.sendall(b"\x03")
    assert client.receive().startswith(b"T02")  # SIGINT: stopped by the interrupt
    assert client.ask(b"?").startswith(b"T02")  # and `?` says so again
    assert client.ask(b"D") == b"OK"
    client.sock.close()
    idle = tk.machine.idle_count
    tk.machine.post(lambda: None)
    for _ in range(200):
        if tk.machine.idle_count > idle + 2 and not stub._breakpoints:
            break
        threading.Event().wait(0.05)
    assert tk.machine.idle_count > idle + 2  # running on
    assert not stub._breakpoints and not stub._watchpoints


@pytest.mark.parametrize("attached", [True, False], ids=["deterministic", "real-time"],
                         indirect=True)  # fmt: skip
def test_virtual_time_stands_still_while_stopped(attached) -> None:  # noqa: ANN001
    """As QEMU stops its virtual clock for gdb: a second stopped costs the guest no time in
    either clock (timers do not pile up behind the debugger)."""
    tk, _stub, client = attached
    assert client.ask(b"qC") == b"QC1"  # stopped, and the loop is serving us
    before = tk.machine.clock.now_ns()
    threading.Event().wait(1.0)
    assert client.ask(b"qC") == b"QC1"
    elapsed = tk.machine.clock.now_ns() - before
    assert elapsed < 200_000_000, elapsed  # the loop's own turns, not the second


def test_malformed_packets_get_an_error_and_the_machine_runs_on(attached) -> None:  # noqa: ANN001
    tk, _stub, client = attached
    for packet in (b"m", b"mzz,4", b"M0,4:zz", b"P0", b"Pzz=00", b"G0", b"Z0", b"Z2,0,zz",
                   b"qXfer:features:read:target.xml:zz", b"qXfer:features:read:other.xml:0,10",
                   b"X0,4", b"vCont;q", b"p" + b"f" * 400, b"m" + b"1" * 200 + b",4"):  # fmt: skip
        reply = client.ask(packet)
        assert reply.startswith(b"E") or reply == b"", (packet, reply)
    client.sock.sendall(b"$" + b"0" * (3 * 0x4000))  # a packet that never ends
    assert client.ask(b"?").startswith(b"T05")
    assert tk.machine.stop_info is None
    assert len(bytes.fromhex(client.ask(b"g").decode())) == sum(b for _, b, _ in REGISTERS) // 8


def test_a_step_on_a_halted_cpu_ends_in_the_handler_of_the_interrupt_that_wakes_it(
    attached,  # noqa: ANN001
) -> None:
    """The idle kernel sits in `hlt`: there is no instruction to step until an interrupt
    comes, so the step waits for one and stops on its handler's first instruction (a key
    press here: IRQ1, vector 0x21 after the stub's PIC remap)."""
    tk, _stub, client = attached
    assert tk.machine.halted
    client.send(b"s")
    events = text_to_key_events("x")
    channels = tk.machine.channels
    tk.machine.post(lambda: [channels.send("keyboard-key", event) for event in events])
    assert client.receive().startswith(b"T05")
    eip = int.from_bytes(bytes.fromhex(client.ask(b"p8").decode()), "little")
    idt_base, _ = tk.machine.cpu.read_table_register(UC_X86_REG_IDTR)
    gate = tk.machine.memory.read(idt_base + 8 * 0x21, 8)
    handler = int.from_bytes(gate[0:2], "little") | int.from_bytes(gate[6:8], "little") << 16
    assert eip == handler
    assert client.ask(b"pa") == b"08000000"  # CS: the kernel's ring 0


def test_a_client_flooding_packets_is_held_by_tcp_not_queued_without_bound() -> None:
    machine = Machine(MachineConfig(ram_mib=2, deterministic=True))  # its loop never runs
    stub = GdbStub(machine, port=0)
    sock = socket.create_connection(("127.0.0.1", stub.address[1]), timeout=30)
    try:
        sock.sendall(frame(b"g") * 4 * MAX_EVENTS)  # ~25 KB: the socket takes it all
        deadline = time.monotonic() + 5
        while stub._events.qsize() < MAX_EVENTS and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # the reader has had time to queue the rest, if it could
        assert stub._events.qsize() == MAX_EVENTS
    finally:
        stub.close()
        sock.close()
        machine.close()


def test_breakpoints_are_bounded_and_one_already_set_is_still_accepted() -> None:
    machine = Machine(MachineConfig(ram_mib=2, deterministic=True))  # its loop never runs
    stub = GdbStub(machine, port=0)
    try:
        for address in range(MAX_POINTS):
            assert stub._answer(f"Z0,{address:x},1", b"") == "OK"
        assert stub._answer(f"Z0,{MAX_POINTS:x},1", b"").startswith("E")
        assert stub._answer("Z0,0,1", b"") == "OK"  # already set
        assert stub._answer("z0,0,1", b"") == "OK"
        assert stub._answer(f"Z2,{MAX_POINTS:x},4", b"") == "OK"  # room again
        assert len(stub._breakpoints) + len(stub._watchpoints) == MAX_POINTS
    finally:
        stub.close()
        machine.close()


def test_a_client_that_never_reads_is_dropped_and_the_machine_runs_on(tmp_path: Path) -> None:
    """A client asks for memory over and over and reads none of the replies: they fill its
    socket, then the stub's send queue (MAX_SEND_QUEUE), and the client is dropped with a log
    line. The machine's thread never waits on the socket: it goes on running (the shell
    answers), and the next client is served."""
    tk = BootedPc(tmp_path)
    tk.boot()
    stub = GdbStub(tk.machine, port=0)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", stub.address[1]))
    request = frame(b"m7c00,1000")  # 8 KiB of hex per reply
    dropped = threading.Event()

    def flood() -> None:
        try:
            while not dropped.is_set():
                sock.sendall(request * 16)
        except OSError:
            pass  # the stub shut the connection

    threading.Thread(target=flood, daemon=True).start()
    done = threading.Event()
    result = {}

    def run() -> None:
        result["stop"] = tk.machine.run(
            wall_timeout_s=60, until=lambda: any("stopped reading" in line for line in tk.log)
        )
        done.set()

    threading.Thread(target=run, daemon=True).start()
    try:
        assert done.wait(90), "the machine's thread is stuck (blocked sending to the client?)"
        dropped.set()
        assert result["stop"].reason == "until", result
        line = next(line for line in tk.log if "stopped reading" in line)
        assert "bytes unsent" in line and "dropped" in line, line
        assert tk.output("echo alive") == ["alive"]  # the machine runs on, detached
        client = Client(stub.address[1])
        again = threading.Thread(target=lambda: tk.machine.run(wall_timeout_s=30), daemon=True)
        again.start()
        assert client.ask(b"?").startswith(b"T05")
        client.sock.close()
        tk.machine.request_power_off()
        again.join(30)
    finally:
        dropped.set()
        try:
            sock.shutdown(socket.SHUT_RDWR)  # frees a sender blocked on either side
        except OSError:
            pass
        sock.close()
        stub.close()
        close_pc(tk)
