"""The kernel's entry: KERNEL_INIT brings the services up in order; interrupts are dispatched here.

Contract with the entry stub (images/stub.asm): every interrupt and exception arrives as the
INTERRUPT hypercall with EBX pointing at the trap frame (kernel/arch/trapframe.py); the handler
returns the frame address to resume from. The IDLE hypercall runs deferred work with
interrupts off, just before the stub's `sti; hlt`, and answers whether a task became ready
(the stub then enters through RESCHEDULE_VECTOR instead of halting).

Containment (issue 15): an IRQ handler, a timer callback or other deferred work that raises is
stopped and logged as an oops in the kernel log (kernel/log.py, `dmesg`), with one console
line per culprit; a system call that raises kills only its caller (proc/syscalls.py). Only a
broken kernel invariant (KERNEL_INVARIANTS: heap corruption, a frame's reference count) or a
fault in kernel mode panics.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

from tradekernel import __version__
from tradekernel.hypercall import Hypercall
from tradekernel.kernel.arch.bootinfo import BootInfo
from tradekernel.kernel.arch.trapframe import TrapFrame
from tradekernel.kernel.drivers.clock import KernelClock
from tradekernel.kernel.drivers.console import Console
from tradekernel.kernel.drivers.keyboard import KeyboardDriver
from tradekernel.kernel.drivers.serial import SerialPort
from tradekernel.kernel.drivers.timer import OneShotTimer
from tradekernel.kernel.drivers.tty import Tty
from tradekernel.kernel.fs.devfs import DevFs
from tradekernel.kernel.fs.fatfile import FatVolume
from tradekernel.kernel.fs.procfs import ProcFs
from tradekernel.kernel.fs.storage import mount_system_disk
from tradekernel.kernel.fs.vfs import MountTable
from tradekernel.kernel.log import KernelLog
from tradekernel.kernel.mm.memory import KernelMemory
from tradekernel.kernel.obs.boot import Observability
from tradekernel.kernel.proc.process import ProcessManager
from tradekernel.kernel.proc.syscalls import KERNEL_INVARIANTS, Syscalls
from tradekernel.kernel.proc.trap import SyscallEntry
from tradekernel.kernel.shell.debug import DebugCommands
from tradekernel.kernel.shell.dmesg import register_dmesg
from tradekernel.kernel.shell.files import register_file_commands
from tradekernel.kernel.shell.jobs import JobControl
from tradekernel.kernel.shell.log import register_log_commands
from tradekernel.kernel.shell.memory import MemoryCommands, register_ipcs
from tradekernel.kernel.shell.net import start_network
from tradekernel.kernel.shell.pkg import register as register_pkg_commands
from tradekernel.kernel.shell.prof import register_prof
from tradekernel.kernel.shell.programs import ProgramCommands
from tradekernel.kernel.shell.shell import Shell
from tradekernel.kernel.shell.snapshot import SnapshotCommand
from tradekernel.kernel.shell.top import Top, register_vmstat

PIC_MASTER_COMMAND, PIC_MASTER_DATA = 0x20, 0x21
PIC_SLAVE_COMMAND, PIC_SLAVE_DATA = 0xA0, 0xA1
PIC_EOI = 0x20
PIC_POLL = 0x0C  # OCW3 poll command: the next read of the command port acknowledges, as INTA
PIC_POLLED = 0x80  # in a poll answer: a request was pending (the low 3 bits say which)
CASCADE_IRQ = 2
IRQ_BASE = 0x20  # the stub remaps the PIC here
IRQS_PER_ENTRY = 16  # interrupts taken in one kernel entry at most (see _on_interrupt)
POWER_PORT, POWER_OFF = 0x604, 0x2000
KBC_COMMAND, KBC_PULSE_RESET = 0x64, 0xFE
IRQ_TIMER, IRQ_KEYBOARD = 0, 1
PAGE_FAULT = 14
SYSCALL_VECTOR = 0x80
RESCHEDULE_VECTOR = 0x81  # the idle loop's `int` when IDLE made a task ready (images/stub.asm)
FLAG_IF = 0x200
KERNEL_CODE = 0x08  # the stub's ring-0 code selector

INSTRUMENTS_FILE = "/etc/instruments.toml"

IrqHandler = Callable[[int], None]


def describe_instruction(memory, eip: int) -> str:  # noqa: ANN001
    """The instruction at `eip` (kernel addresses are identity-mapped), disassembled."""
    from capstone import CS_ARCH_X86, CS_MODE_32, Cs  # only a panicking kernel pays for it

    code = memory.read(eip, 16)
    for insn in Cs(CS_ARCH_X86, CS_MODE_32).disasm(code, eip, 1):
        return f"{insn.address:#010x}: {insn.mnemonic} {insn.op_str}".rstrip()
    return f"{eip:#010x}: {code[:8].hex(' ')} (not an instruction)"


class Kernel:
    def __init__(self, platform) -> None:  # noqa: ANN001 - tradekernel.emu.platform.Platform
        self.platform = platform
        self.ports = platform.ports
        self.memory = platform.memory
        self.boot: BootInfo | None = None
        self.console = Console(platform.memory, platform.ports)
        self.serial = SerialPort(platform.ports)
        self.console.on_output = self.serial.write
        self.clock = KernelClock(platform.ports)
        self.klog = KernelLog(self.clock.uptime_ns, platform.log)  # what dmesg prints
        self.tty = Tty(self.console)
        self.keyboard = KeyboardDriver(platform.ports, self.tty.on_key)
        # typeahead back-pressure: the driver leaves bytes in the 8042 while the tty is full
        self.keyboard.can_take = self.tty.has_room
        self.tty.on_room = self.keyboard.drain
        self.shell = Shell(self.tty, self.console, self)
        self._irq_handlers: dict[int, IrqHandler] = {}
        self._deferred: list[Callable[[], None]] = []
        self._oops_shown: set[tuple[str, str]] = set()  # (what, name) already on the console
        self._timers: list[tuple[int, int, Callable[[], None]]] = []
        self._timer_order = itertools.count()
        self.timer: OneShotTimer | None = None
        self.timer_interrupts = 0  # IRQ0s taken (one-shot: they count wake-ups, not time)
        self.irq_counts = [0] * 16  # interrupts taken per IRQ line (vmstat, kernel/obs)
        self.obs: Observability | None = None
        self.stopping = False
        self.mm: KernelMemory | None = None
        self.vfs = MountTable()  # every path a program names resolves here
        self.fs = None  # the FAT volume at "/" (the shell's file commands use it directly)
        self.disk = None
        self.trading = None  # the TradingEngine, once _start_trading has run
        self.processes: ProcessManager | None = None
        self.syscall_entry: SyscallEntry | None = None

    # ---- start-up, one line per step ----------------------------------------------------
    def init(self, boot_info_address: int) -> int:
        self.boot = BootInfo.read(self.memory, boot_info_address)
        self.mm = KernelMemory(
            self.memory, self.platform.ram_bytes, self.clock.now_ns, self.boot.request_cr3
        )
        self.platform.register_hypercall(Hypercall.INTERRUPT, self._on_interrupt)
        self.platform.register_hypercall(Hypercall.IDLE, self._on_idle)
        self.platform.register_hypercall(Hypercall.KMALLOC, self.mm.hypercall_kmalloc)
        self.platform.register_hypercall(Hypercall.KFREE, self.mm.hypercall_kfree)
        MemoryCommands(self.mm).register_commands(self.shell)
        register_dmesg(self.shell, self.klog)
        self.console.clear()
        self._banner()
        self.timer = OneShotTimer(self.ports)  # the stub's 100 Hz stops here: tickless
        self.on_irq(IRQ_TIMER, self._timer_tick)
        self.on_irq(IRQ_KEYBOARD, self.keyboard.on_irq)
        self._mount_disk()
        register_file_commands(self.shell, self)
        register_pkg_commands(self.shell, self)  # and finishes an install cut by power loss
        self.processes = ProcessManager(self)
        self.vfs.mount("/dev", DevFs(self.console, self.processes.terminal))
        self.vfs.mount("/proc", ProcFs(self.processes))
        self.syscall_entry = SyscallEntry(self.processes, Syscalls(self.processes))
        self._register_process_commands(self.processes)
        self.net = start_network(self)  # NE2000 probe, stack, DHCP, socket calls, commands
        Top(self).register(self.shell)
        self.obs = Observability(self)  # /var/log/kern.log, counters, profiler (kernel/obs/)
        register_log_commands(self.shell, self)
        register_prof(self.shell, self)
        register_vmstat(self.shell, self)
        self.platform.register_trap(SYSCALL_VECTOR, self.syscall_entry.fast_system_call)
        self._start_trading()
        self.shell.start()
        return 0

    def _mount_disk(self) -> None:
        now = lambda: self.clock.wall_time().replace(tzinfo=None)  # noqa: E731 - FAT is local
        self.fs, self.disk, message = mount_system_disk(self.ports, now)
        if self.fs is not None:
            self.vfs.mount("/", FatVolume(self.fs))
        self.console.write(f"disk: {message}\n", 0x07 if self.fs else 0x0C)

    def _register_process_commands(self, processes: ProcessManager) -> None:
        """Programs, shared memory and job control, in the order `help` lists them."""
        jobs = JobControl(processes)
        programs = ProgramCommands(self, processes, jobs)
        programs.register_commands(self.shell)
        register_ipcs(self.shell, processes.maps)
        jobs.register_commands(self.shell)
        programs.register_nice(self.shell)
        DebugCommands(self, processes).register_commands(self.shell)
        SnapshotCommand(self).register(self.shell)

    def read_file(self, path: str) -> bytes:
        if self.fs is None:
            raise FileNotFoundError(f"{path}: no filesystem is mounted")
        return self.fs.read_file(path)

    def _start_trading(self) -> None:
        # Imported here, after the banner is on screen: the trading stack is the largest
        # import of the boot (see bench_machine's process-start-to-banner figure).
        from tradekernel.kernel.shell.trading import register_trading_commands
        from tradekernel.kernel.trading.commands import Desk
        from tradekernel.kernel.trading.engine import TradingEngine
        from tradekernel.kernel.trading.instruments import MAX_CONFIG_BYTES, InstrumentTable

        try:
            config = None
            if self.fs is not None and self.fs.exists(INSTRUMENTS_FILE):
                size = self.fs.stat(INSTRUMENTS_FILE).size
                if size > MAX_CONFIG_BYTES:  # refused unread: the size comes from the disk
                    raise ValueError(f"{size} bytes, more than {MAX_CONFIG_BYTES}")
                config = self.read_file(INSTRUMENTS_FILE).decode("utf-8", "replace")
            instruments = InstrumentTable.from_toml(config)
        except (OSError, ValueError) as error:  # a damaged file (CorruptFs) as a bad one
            self.console.write(f"trading: {INSTRUMENTS_FILE}: {error}; using defaults\n", 0x0C)
            instruments = InstrumentTable.from_toml(None)
        self.trading = TradingEngine(self.clock.now_ns, instruments)
        self.obs.attach_audit(self.trading)  # /var/log/audit.log: every order event
        desk = Desk(self.trading, read_file=self.read_file, call_at=self.call_at)
        register_trading_commands(self.shell, desk)
        from tradekernel.kernel.shell.strategy import register_strategy_commands

        register_strategy_commands(self.shell, self)  # strategy list|start|stop|..., backtest
        # /dev/market: ring-3 strategies' market data and order entry (trading/marketport.py)
        from tradekernel.kernel.fs.recordfile import RecordFile
        from tradekernel.kernel.trading.marketport import EVENT, MARKET_DEVICE, MarketPorts

        self.market = MarketPorts(self.trading)
        self.vfs.resolve("/dev")[0].nodes["market"] = lambda: RecordFile(
            self.processes, self.market.open(), EVENT.size, MARKET_DEVICE)

    def _banner(self) -> None:
        mib = self.platform.ram_bytes // (1024 * 1024)
        mode = "deterministic" if self.platform.deterministic else "real-time"
        self.console.write(f"TradeKernel {__version__}", 0x0F)
        self.console.write(f"  {mib} MiB RAM, i386 protected mode, {mode} clock\n")

    # ---- interrupts ---------------------------------------------------------------------
    def on_irq(self, irq: int, handler: IrqHandler) -> None:
        """Install `handler` for IRQ `irq` and unmask it at the PIC."""
        self._irq_handlers[irq] = handler
        if irq < 8:
            mask = self.ports.read(PIC_MASTER_DATA, 1) & ~(1 << irq)
            self.ports.write(PIC_MASTER_DATA, 1, mask)
        else:
            mask = self.ports.read(PIC_SLAVE_DATA, 1) & ~(1 << (irq - 8))
            self.ports.write(PIC_SLAVE_DATA, 1, mask)

    def defer(self, work: Callable[[], None]) -> None:
        """Run `work` from the idle loop, outside interrupt context."""
        self._deferred.append(work)

    def has_deferred_work(self) -> bool:
        return bool(self._deferred)

    def _on_interrupt(self, registers) -> int:  # noqa: ANN001
        address = registers.arg0()
        frame = TrapFrame(self.memory, address)
        try:
            return self._dispatch(frame)
        except KERNEL_INVARIANTS as error:  # everything else was contained below
            self.klog.oops("kernel", "a kernel invariant is broken", error)
            self.panic(f"{type(error).__name__}: {error}", frame)
            return address

    def _dispatch(self, frame: TrapFrame) -> int:
        """One kernel entry: the interrupt, exception or system call, then who runs next."""
        address = frame.address
        processes = self.processes
        if processes is not None:
            processes.enter(frame)
        vector = frame.vector
        if IRQ_BASE <= vector < IRQ_BASE + 16:
            # Interrupts that came up while this one was handled (a device answering the
            # handler, one held back until the EOI) are polled and taken here, not after
            # the iret: that saves a round trip, and the deterministic clock would deliver
            # them only when the CPU's current slice ends.
            irq: int | None = vector - IRQ_BASE
            for _ in range(IRQS_PER_ENTRY):
                assert irq is not None
                self.irq_counts[irq] += 1
                handler = self._irq_handlers.get(irq)
                if handler is not None:
                    self._contained(f"irq {irq}", "irq", handler, irq)
                self._end_of_interrupt(irq)
                irq = self._poll_irq()
                if irq is None:
                    break
        elif vector == SYSCALL_VECTOR and frame.from_user and self.syscall_entry is not None:
            self.syscall_entry.system_call(frame)
        elif vector < 32:
            self._exception(frame)
        if processes is None or self.stopping:
            return address
        return processes.leave()

    def _poll_irq(self) -> int | None:
        """The highest-priority IRQ waiting at the PIC, acknowledged (set in service) the way
        the CPU's INTA would, or None."""
        self.ports.write(PIC_MASTER_COMMAND, 1, PIC_POLL)
        answer = self.ports.read(PIC_MASTER_COMMAND, 1)
        if not answer & PIC_POLLED:
            return None
        if answer & 7 != CASCADE_IRQ:
            return answer & 7
        self.ports.write(PIC_SLAVE_COMMAND, 1, PIC_POLL)
        answer = self.ports.read(PIC_SLAVE_COMMAND, 1)
        if not answer & PIC_POLLED:  # the slave's request went away: end the cascade's
            self.ports.write(PIC_MASTER_COMMAND, 1, PIC_EOI)
            return None
        return 8 + (answer & 7)

    def _end_of_interrupt(self, irq: int) -> None:
        if irq >= 8:
            self.ports.write(PIC_SLAVE_COMMAND, 1, PIC_EOI)
        self.ports.write(PIC_MASTER_COMMAND, 1, PIC_EOI)

    def _exception(self, frame: TrapFrame) -> None:
        if frame.from_user and self.processes is not None:
            if self.processes.user_exception(frame):
                return
        why = frame.describe()
        if frame.vector == PAGE_FAULT:
            assert self.mm is not None
            problem = self.mm.page_fault(frame.cr2, frame.error_code)
            if problem is None:
                return
            why = f"{problem}, eip {frame.eip:#010x}"
        where = "user mode (no process to stop)" if frame.from_user else "kernel"
        self.panic(f"{why} in {where}", frame)

    def _on_idle(self, _registers) -> int:  # noqa: ANN001
        """Deferred work, then 1 (need_resched: the stub enters the kernel through
        RESCHEDULE_VECTOR, whose exit switches) if it made a task ready, else the timer is
        armed for the next kernel timer and the stub halts."""
        self.run_deferred()
        if self.processes is not None and self.processes.scheduler.ready_count():
            return 1
        self.program_timer(None, self.clock.now_ns())
        return 0

    def run_deferred(self) -> None:
        """The deferred work queue, in order (from the idle loop, or on the way out of an
        interrupt that interrupted a process)."""
        while self._deferred and not self.stopping:
            self._contained("deferred work", "deferred", self._deferred.pop(0))

    def _contained(self, what: str, subsystem: str, work: Callable, *args: object) -> None:
        """Run one piece of kernel work (an IRQ handler, a timer callback, deferred work)
        inside the containment boundary: if it raises, that piece is stopped and logged as an
        oops and everything else goes on. A panic or power-off it caused stays in force."""
        try:
            work(*args)
        except KERNEL_INVARIANTS:
            raise  # a panic (_on_interrupt), not an oops
        except Exception as error:  # noqa: BLE001 - the boundary: one callback, not the OS
            name = getattr(work, "__name__", type(work).__name__)
            self.klog.oops(subsystem, f"{what} {name} raised; it was stopped", error)
            if (what, name) not in self._oops_shown:  # one console line per culprit
                self._oops_shown.add((what, name))
                self.console.write(f"kernel oops in {what} ({name}): stopped, see dmesg\n", 0x0C)

    def call_at(self, deadline_ns: int, work: Callable[[], None]) -> None:
        """Run `work` from the timer interrupt once virtual time reaches `deadline_ns` (the
        PIT is programmed for it on the way out of the kernel)."""
        heapq.heappush(self._timers, (deadline_ns, next(self._timer_order), work))

    def program_timer(self, slice_end: int | None, now: int) -> None:
        """Arm the one-shot PIT for the earliest of the running task's slice end and the next
        kernel timer; with neither, no timer interrupt at all."""
        assert self.timer is not None
        deadline = slice_end
        if self._timers and (deadline is None or self._timers[0][0] < deadline):
            deadline = self._timers[0][0]
        self.timer.program(deadline, now)

    def _timer_tick(self, _irq: int) -> None:
        """IRQ0: the one-shot ran out (a slice end or a timer; the scheduler sees the slice in
        the CPU time `enter` charged)."""
        assert self.timer is not None
        self.timer.fired()
        self.timer_interrupts += 1
        if not self._timers:
            return
        now = self.clock.now_ns()
        while self._timers and self._timers[0][0] <= now:
            _, _, work = heapq.heappop(self._timers)
            self.defer(work)

    # ---- the end --------------------------------------------------------------------------
    def panic(self, why: str, frame: TrapFrame) -> None:
        """The panic screen, then the CPU parked in `cli; hlt`: the kernel cannot trust its
        own state, and the screen must stay for whoever reads it."""
        self.stopping = True
        self.console.attr = 0x4F
        self.console.write(f"\nKERNEL PANIC: {why}\n")
        self.console.write(f"  {describe_instruction(self.memory, frame.eip)}\n")
        registers = ("eax", "ebx", "ecx", "edx", "esi", "edi", "ebp", "eip", "eflags", "cs")
        self.console.write("  " + " ".join(f"{r}={getattr(frame, r):08x}" for r in registers))
        self.console.write("\n")
        self.klog.record("emerg", "panic", f"kernel panic: {why}")
        assert self.boot is not None
        frame.set("eip", self.boot.halt)
        frame.set("eflags", frame.eflags & ~FLAG_IF)
        if frame.from_user:  # the stub's iret must land in its own (ring 0) halt loop
            frame.set("cs", KERNEL_CODE)

    def power_off(self) -> None:
        self.stopping = True
        self.ports.write(POWER_PORT, 2, POWER_OFF)

    def reboot(self) -> None:
        self.stopping = True
        self.ports.write(KBC_COMMAND, 1, KBC_PULSE_RESET)
