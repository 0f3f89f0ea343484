"""`debug PROG [ARGS]`: a debugger for ring-3 programs, built on ptrace (kernel/proc/ptrace.py).

The program is started and attached by the kernel's own tracer (PID 0) and stopped before its
first instruction; the shell's prompt gives way to `(tdb) `, which reads these commands:

  break ADDR|FUNCTION (b)  a breakpoint: `int3` written into the code with POKETEXT. A
                           function name is looked up in the ELF's symbol table and its
                           `push ebp; mov ebp, esp` prologue skipped, as gdb does
  delete [N]               remove breakpoint N (all of them without N)
  continue (c)             run to a breakpoint, a watchpoint, a signal or the end
  step (s, stepi)          run one instruction (SINGLESTEP, EFLAGS.TF)
  next (n, nexti)          one instruction, a `call` run to its return (a breakpoint after it)
  regs                     the registers (GETREGS)
  x/Nx ADDR                N (default 1, at most MAX_WORDS) 32-bit words of memory (PEEKDATA)
  bt                       the backtrace, by the frame-pointer chain (EBP; build -O0 or with
                           -fno-omit-frame-pointer): EIP, then [EBP+4] while [EBP] goes on
  watch ADDR               stop when the 32-bit word at ADDR changes; watched by single
                           stepping (every instruction is compared, so it is exact but slow:
                           at most WATCH_STEP_LIMIT instructions per continue, then it stops)
  info                     breakpoints and watchpoints
  quit (q), Ctrl-D         kill the program and go back to the shell
ADDR is a number (0x... hex), a symbol, or $REGISTER, with an optional +N or -N.

As gdb does, breakpoints are in memory only while the program runs: every stop takes them
out, so `x` shows the program's own bytes and a step runs the real instruction; continuing
from a breakpoint first steps over it. A stop at a signal shows it; `continue` then delivers
it (SIGSEGV ends the program as it would have without the debugger), except SIGTRAP, SIGINT
and SIGSTOP, which the debugger keeps. Ctrl-C while the program runs stops it with SIGINT.
The program does not get the terminal's input (it is not the foreground job); its output
goes to the console as usual. One session at a time.

Imports: shell (Output, UsageError), proc (the facility, the process record, signals) and
obs (ELF symbols); capstone names the instruction at each stop.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from tradekernel.kernel.obs.symbols import Symbols
from tradekernel.kernel.proc.process import ProcessManager, SpawnError
from tradekernel.kernel.proc.ptrace import Ptrace, PtraceError
from tradekernel.kernel.proc.signals import SIGINT, SIGNAL_NAMES, SIGSTOP, SIGTRAP, signal_text
from tradekernel.kernel.proc.task import Process, State
from tradekernel.kernel.shell.programs import program_path
from tradekernel.kernel.shell.shell import Output, Shell, UsageError

PROMPT = "(tdb) "
MAX_WORDS = 64  # x/N at most
MAX_FRAMES = 32  # bt at most
WATCH_STEP_LIMIT = 200_000  # instructions single-stepped for watchpoints in one continue
INT3 = 0xCC
PROLOGUE = b"\x55\x89\xe5"  # push ebp; mov ebp, esp
INSTRUCTION_BYTES = 16  # read to name one instruction
KEPT_SIGNALS = (SIGTRAP, SIGINT, SIGSTOP)  # a continue after these does not deliver them
SIGNALS = {number: f"SIG{name}" for name, number in SIGNAL_NAMES.items()}
SHOWN_REGISTERS = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "eip", "eflags",
                   "cs", "ss", "ds", "es", "fs", "gs")  # fmt: skip
EXAMINE = re.compile(r"x(?:/(\d*)x?)?$")


class DebugCommands:
    """Registers `debug`; at most one Session runs."""

    def __init__(self, kernel, manager: ProcessManager) -> None:  # noqa: ANN001 - Kernel
        self.kernel = kernel
        self.manager = manager
        self.session: Session | None = None

    def register_commands(self, shell: Shell) -> None:
        shell.register("debug", self._debug, "debug PROGRAM [ARGS...]",
                       "debug a program: breakpoints, step, regs, x, bt, watch")  # fmt: skip

    def _debug(self, args: list[str], out: Output) -> int:
        if not args:
            raise UsageError("which program?")
        if self.session is not None:
            out.error("debug: a debug session is already running")
            return 1
        shell = self.kernel.shell
        name = args[0]
        path = program_path(self.kernel, name)
        try:
            symbols = Symbols.from_elf(self.kernel.read_file(path))
        except OSError as error:
            out.error(f"debug: {path}: {error.strerror or error}")
            return 1
        try:
            process = self.manager.spawn(path, args, shell.cwd)
        except SpawnError as error:
            out.error(f"debug: {error}")
            return 1
        self.session = Session(self.kernel, self.manager, process, symbols, self._ended)
        shell.suspend_prompt()
        out.line(f"debugging {path} (pid {process.pid}); `help` lists the commands")
        self.session.start()
        return 0

    def _ended(self) -> None:
        self.session = None
        self.kernel.shell.resume()


class Session:
    """One program under the debugger: the tty's line callbacks and Ctrl-C are its own
    until it ends."""

    def __init__(self, kernel, manager: ProcessManager, process: Process, symbols: Symbols,
                 ended: Callable[[], None]) -> None:  # noqa: ANN001 - Kernel  # fmt: skip
        self.kernel = kernel
        self.manager = manager
        self.ptrace: Ptrace = manager.ptrace
        self.process = process
        self.symbols = symbols
        self.ended = ended
        self.out: Output = kernel.shell.out
        self.tty = kernel.tty
        self.breakpoints: dict[int, int] = {}  # number -> address
        self.watches: dict[int, tuple[int, int]] = {}  # number -> (address, last value)
        self.numbers = 0
        self.saved: dict[int, int] = {}  # address -> the word under an inserted int3
        self.mode = "stopped"  # continue, step, next, past (stepping off a breakpoint), watch
        self.temporary: int | None = None  # next's breakpoint after a call
        self.signal = 0  # what a continue delivers
        self.steps = 0
        self._disassembler = None
        self._saved_callbacks = (self.tty.on_line, self.tty.on_end_of_input,
                                 manager.terminal.on_idle_interrupt,
                                 manager.signals.kernel_child_changed)  # fmt: skip

    # ---- life ---------------------------------------------------------------------------------
    def start(self) -> None:
        self.ptrace.kernel_stopped = lambda process: self.kernel.defer(
            lambda: self._stopped(process)
        )  # fmt: skip
        self.manager.terminal.on_idle_interrupt = self._interrupt
        child_changed = self._saved_callbacks[3]

        def job_control_stop(child: Process) -> None:  # a stop signal stops it (SIGTTIN)
            child_changed(child)
            if child is self.process and child.stopped and not child.trace_stop:
                self.kernel.defer(lambda: self._stopped(child))

        self.manager.signals.kernel_child_changed = job_control_stop
        self.ptrace.attach(0, self.process)  # stopped before its first instruction

    def _end(self, text: str) -> None:
        self.out.line(text)
        self.ptrace.kernel_stopped = lambda process: None
        (self.tty.on_line, self.tty.on_end_of_input, self.manager.terminal.on_idle_interrupt,
         self.manager.signals.kernel_child_changed) = self._saved_callbacks  # fmt: skip
        self.ended()

    def _interrupt(self) -> bool:
        """Ctrl-C: a running program stops with SIGINT."""
        if self.process.state in (State.RUNNING, State.READY, State.SLEEPING):
            self.manager.signals.send(self.process, SIGINT)
            return True
        return False

    def _quit(self) -> None:
        if self.process.state == State.ZOMBIE:
            self._end("the program has ended")
            return
        self.mode = "quit"
        self.ptrace.kill(self.process)  # its death comes back through _stopped

    # ---- stops --------------------------------------------------------------------------------
    def _stopped(self, process: Process) -> None:
        if process is not self.process:
            return
        if process.state == State.ZOMBIE:
            self._exited(process)
            return
        if process.state != State.STOPPED:
            return  # already resumed (a stale notice)
        self._take_out_breakpoints()
        signal = process.trace_stop or process.stopped
        eip = self._regs()["eip"]
        mode, self.mode = self.mode, "stopped"
        if signal == SIGTRAP and mode == "past":
            self._resume(self.signal_to_deliver(), continuing=True)  # off the breakpoint: go on
            return
        inserted = mode in ("continue", "next")  # an int3 of ours was in memory
        hit = self._breakpoint_at(eip - 1) if signal == SIGTRAP and inserted else None
        if hit is not None or signal == SIGTRAP and inserted and eip - 1 == self.temporary:
            eip -= 1
            self.ptrace.set_regs(process, {"eip": eip})  # back onto the int3's instruction
        if signal == SIGTRAP and mode == "watch":
            changed = self._watch_changed()
            at_breakpoint = self._breakpoint_at(eip)
            if changed is None and at_breakpoint is None and self.steps < WATCH_STEP_LIMIT:
                self.steps += 1
                self.mode = "watch"
                self.ptrace.resume(process, 0, step=True)
                return
            if changed is not None:
                self.out.line(changed)
            elif at_breakpoint is not None:
                self.out.line(f"Breakpoint {at_breakpoint}, {self._where(eip)}")
            else:
                self.out.line(f"watch: no change in {WATCH_STEP_LIMIT} instructions")
        elif hit is not None:
            self.out.line(f"Breakpoint {hit}, {self._where(eip)}")
        elif signal == SIGSTOP and mode == "stopped":
            self.out.line(f"stopped at the entry point, {self._where(eip)}")
        elif signal != SIGTRAP:
            self.out.line(f"Program received {self._signal_name(signal)} "
                          f"({signal_text(signal)}) at {self._where(eip)}")  # fmt: skip
        self.temporary = None
        self.signal = 0 if signal in KEPT_SIGNALS else signal
        self._show_instruction(eip)
        self._prompt()

    def _prompt(self) -> None:
        """Read the next command line (the tty's line callbacks are the debugger's)."""
        self.tty.on_line = lambda line: self.kernel.defer(lambda: self._line(line))
        self.tty.on_end_of_input = lambda: self.kernel.defer(self._quit)
        self.tty.read_line(PROMPT)

    def _exited(self, process: Process) -> None:
        status = process.exit_status
        if self.mode == "quit":
            self._end("killed")
        elif status & 0x7F:
            signal = status & 0x7F
            self._end(f"Program terminated with {self._signal_name(signal)} "
                      f"({signal_text(signal)})")  # fmt: skip
        else:
            self._end(f"Program exited with status {status >> 8}")

    def signal_to_deliver(self) -> int:
        signal, self.signal = self.signal, 0
        return signal

    # ---- commands -----------------------------------------------------------------------------
    def _line(self, line: str) -> None:
        words = line.split()
        if not words:
            self._prompt()
            return
        name, args = words[0], words[1:]
        try:
            if self._command(name, args):
                return  # the program runs (or the session ended): no prompt now
        except (UsageError, PtraceError) as error:
            self.out.error(f"{name}: {error}")
        if self.process.state == State.ZOMBIE:
            return
        self._prompt()

    def _command(self, name: str, args: list[str]) -> bool:
        """Run one command; True if the program now runs."""
        if name in ("c", "continue", "s", "step", "stepi", "n", "next", "nexti", "q", "quit"):
            if args:
                raise UsageError(f"{name} takes no arguments")
        if name in ("c", "continue"):
            self._resume(self.signal_to_deliver(), continuing=True)
        elif name in ("s", "step", "stepi"):
            self._step()
        elif name in ("n", "next", "nexti"):
            self._next()
        elif name in ("q", "quit"):
            self._quit()
        else:
            self._inspect(name, args)
            return False
        return True

    def _inspect(self, name: str, args: list[str]) -> None:
        if name in ("b", "break"):
            self._break(args)
        elif name == "delete":
            self._delete(args)
        elif name == "watch":
            self._watch(args)
        elif name == "regs":
            self._show_regs()
        elif name == "info":
            self._info()
        elif name == "bt":
            self._backtrace()
        elif EXAMINE.match(name):
            self._examine(name, args)
        elif name == "help":
            self.out.line("break ADDR|FUNC, delete [N], continue, step, next, regs, x/Nx ADDR, "
                          "bt, watch ADDR, info, quit")  # fmt: skip
        else:
            raise UsageError("unknown command (help lists them)")

    def _break(self, args: list[str]) -> None:
        if len(args) != 1:
            raise UsageError("break ADDR|FUNCTION")
        address = self._address(args[0])
        if args[0] in self.symbols.names:
            code = self._read(address, len(PROLOGUE))
            if code == PROLOGUE:
                address += len(PROLOGUE)
        self._read(address, 1)  # refused now, not at the continue
        self.numbers += 1
        self.breakpoints[self.numbers] = address
        self.out.line(f"Breakpoint {self.numbers} at {self._where(address)}")

    def _delete(self, args: list[str]) -> None:
        if not args:
            self.breakpoints.clear()
            self.watches.clear()
            return
        for text in args:
            if not text.isdigit() or int(text) not in {**self.breakpoints, **self.watches}:
                raise UsageError(f"no breakpoint or watchpoint {text}")
            self.breakpoints.pop(int(text), None)
            self.watches.pop(int(text), None)

    def _watch(self, args: list[str]) -> None:
        if len(args) != 1:
            raise UsageError("watch ADDR")
        address = self._address(args[0])
        value = self.ptrace.peek(self.process, address)
        self.numbers += 1
        self.watches[self.numbers] = (address, value)
        self.out.line(f"Watchpoint {self.numbers}: {self._where(address)} = {value:#x} "
                      "(by single stepping)")  # fmt: skip

    def _show_regs(self) -> None:
        regs = self._regs()
        cells = [f"{name:<6} {regs[name]:#010x}" for name in SHOWN_REGISTERS]
        for start in range(0, len(cells), 4):
            self.out.line("   ".join(cells[start : start + 4]))

    def _info(self) -> None:
        if not self.breakpoints and not self.watches:
            self.out.line("no breakpoints or watchpoints")
        for number, address in sorted(self.breakpoints.items()):
            self.out.line(f"{number:>3} breakpoint  {self._where(address)}")
        for number, (address, value) in sorted(self.watches.items()):
            self.out.line(f"{number:>3} watchpoint  {self._where(address)} = {value:#x}")

    def _backtrace(self) -> None:
        regs = self._regs()
        eip, ebp = regs["eip"], regs["ebp"]
        for depth in range(MAX_FRAMES):
            self.out.line(f"#{depth:<2} {self._where(eip)}")
            if not ebp:
                return  # _start cleared it: the outermost frame
            try:
                eip = self.ptrace.peek(self.process, ebp + 4)
                ebp = self.ptrace.peek(self.process, ebp)
            except PtraceError:
                self.out.line(f"(the frame chain leaves memory at ebp {ebp:#010x})")
                return
            if not eip:
                return
        self.out.line(f"(more than {MAX_FRAMES} frames)")

    def _examine(self, name: str, args: list[str]) -> None:
        match = EXAMINE.match(name)
        assert match is not None
        count = int(match.group(1) or 1)
        if len(args) != 1 or not 1 <= count <= MAX_WORDS:
            raise UsageError(f"x/Nx ADDR with N from 1 to {MAX_WORDS}")
        address = self._address(args[0])
        words = [self.ptrace.peek(self.process, address + 4 * n) for n in range(count)]
        for start in range(0, count, 4):
            row = " ".join(f"{word:#010x}" for word in words[start : start + 4])
            self.out.line(f"{self._where(address + 4 * start)}:  {row}")

    # ---- running ------------------------------------------------------------------------------
    def _resume(self, signal: int, continuing: bool) -> None:
        """Continue: off a breakpoint first (one step without it), then with every breakpoint
        in memory, or step by step while something is watched."""
        eip = self._regs()["eip"]
        if self.watches:
            self.steps = 0
            self.mode = "watch"
            self.ptrace.resume(self.process, signal, step=True)
            return
        if continuing and self._breakpoint_at(eip) is not None:
            self.signal = signal  # delivered once past the breakpoint
            self.mode = "past"
            self.ptrace.resume(self.process, 0, step=True)
            return
        self._put_in_breakpoints()
        self.mode = "continue"
        self.ptrace.resume(self.process, signal)

    def _step(self) -> None:
        self.mode = "step"
        self.ptrace.resume(self.process, self.signal_to_deliver(), step=True)

    def _next(self) -> None:
        eip = self._regs()["eip"]
        instruction = self._instruction(eip)
        if instruction is None or instruction[1] != "call":
            self._step()
            return
        self.temporary = eip + instruction[0]
        self._put_in_breakpoints()
        self.mode = "next"
        self.ptrace.resume(self.process, self.signal_to_deliver())

    def _put_in_breakpoints(self) -> None:
        addresses = set(self.breakpoints.values())
        if self.temporary is not None:
            addresses.add(self.temporary)
        for address in sorted(addresses):
            try:
                word = self.ptrace.peek(self.process, address)
                self.ptrace.poke(self.process, address, word & ~0xFF | INT3)
            except PtraceError as error:
                self.out.error(f"breakpoint at {address:#010x}: {error}")
                continue
            self.saved[address] = word

    def _take_out_breakpoints(self) -> None:
        for address, word in sorted(self.saved.items(), reverse=True):  # overlaps: in reverse
            try:
                self.ptrace.poke(self.process, address, word)
            except PtraceError as error:
                self.out.error(f"breakpoint at {address:#010x}: {error}")
        self.saved.clear()

    def _watch_changed(self) -> str | None:
        """The first watched word that changed since the last look, said as a line."""
        for number, (address, old) in sorted(self.watches.items()):
            try:
                new = self.ptrace.peek(self.process, address)
            except PtraceError:
                continue
            if new != old:
                self.watches[number] = (address, new)
                return f"Watchpoint {number}: {self._where(address)}  old {old:#x}  new {new:#x}"
        return None

    # ---- helpers ------------------------------------------------------------------------------
    def _regs(self) -> dict[str, int]:
        return self.ptrace.get_regs(self.process)

    def _breakpoint_at(self, address: int) -> int | None:
        return next((n for n, a in self.breakpoints.items() if a == address), None)

    def _read(self, address: int, size: int) -> bytes:
        """Program bytes (words read with PEEKTEXT); PtraceError where none are mapped."""
        base = address & ~3
        words = [self.ptrace.peek(self.process, base + 4 * n)
                 for n in range((address + size - base + 3) // 4)]  # fmt: skip
        data = b"".join(word.to_bytes(4, "little") for word in words)
        return data[address - base : address - base + size]

    def _address(self, text: str) -> int:
        """A number, a symbol or $REGISTER, with an optional +N/-N."""
        match = re.fullmatch(r"([^+-]+)(?:([+-])(\w+))?", text)
        if match is None:
            raise UsageError(f"{text!r} is not an address")
        base, sign, offset = match.groups()
        if base.startswith("$"):
            regs = self._regs()
            if base[1:] not in regs:
                raise UsageError(f"no register {base}")
            value = regs[base[1:]]
        elif base in self.symbols.names:
            value = self.symbols.starts[self.symbols.names.index(base)]
        else:
            value = _number(base)
        if offset is not None:
            value += _number(offset) * (-1 if sign == "-" else 1)
        return value & 0xFFFF_FFFF

    def _where(self, address: int) -> str:
        name = self.symbols.name(address)
        return f"{address:#010x}" + (f" <{name}>" if name else "")

    def _instruction(self, address: int) -> tuple[int, str, str] | None:
        """(size, mnemonic, operands) of the instruction at `address`, None if unreadable."""
        if self._disassembler is None:
            from capstone import CS_ARCH_X86, CS_MODE_32, Cs  # paid for by a debug session only

            self._disassembler = Cs(CS_ARCH_X86, CS_MODE_32)
        try:
            code = self._read(address, INSTRUCTION_BYTES)
        except PtraceError:
            try:
                code = self._read(address, 4)
            except PtraceError:
                return None
        for instruction in self._disassembler.disasm(code, address, 1):
            return instruction.size, instruction.mnemonic, instruction.op_str
        return None

    def _show_instruction(self, address: int) -> None:
        instruction = self._instruction(address)
        text = f"{instruction[1]} {instruction[2]}".strip() if instruction else "(unreadable)"
        if instruction and re.fullmatch(r"0x[0-9a-f]+", instruction[2]):
            name = self.symbols.name(int(instruction[2], 16))  # a call's or a jump's target
            text += f" <{name}>" if name else ""
        self.out.line(f"=> {self._where(address)}:  {text}")

    @staticmethod
    def _signal_name(signal: int) -> str:
        return SIGNALS.get(signal, f"signal {signal}")


def _number(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise UsageError(f"{text!r} is not a number or a known symbol") from None

