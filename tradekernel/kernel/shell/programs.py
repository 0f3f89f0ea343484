"""The shell's program commands: run, nice, ps, renice, chrt, a bare program name, and
pipelines with redirections.

A program is an ELF in /bin (or at a path) started by the process layer
(ProcessManager.spawn). In the foreground it holds the terminal and the prompt waits until
it ends or stops (kernel/shell/jobs.py then takes over); with `&` it becomes a numbered job.
`a | b | c < IN > OUT` runs one process per stage in one process group, each one's standard
output piped (fs/pipe.py) into the next one's standard input, `<` feeding the first and `>`
or `>>` taking the last (FAT files, fs/fatfile.py, or /dev nodes: `> /dev/null`).

Imports: shell (Output, UsageError, the job table), proc and fs.
"""

from __future__ import annotations

import functools
import itertools

from tradekernel.kernel.fs.bytesfile import BytesFile
from tradekernel.kernel.fs.pipe import Pipe
from tradekernel.kernel.fs.vfs import O_APPEND, O_CREAT, O_RDONLY, O_TRUNC, O_WRONLY, OpenFile
from tradekernel.kernel.proc.process import ProcessManager, SpawnError
from tradekernel.kernel.proc.scheduler import NICE_MAX, NICE_MIN, SchedulerError
from tradekernel.kernel.proc.signals import SIGKILL
from tradekernel.kernel.proc.task import Process
from tradekernel.kernel.shell.jobs import JobControl
from tradekernel.kernel.shell.pager import Pager
from tradekernel.kernel.shell.shell import Command, Output, Shell, UsageError, error_text

PROGRAM_DIRECTORIES = ("/bin", "/usr/bin")  # where a bare name is looked up, in order (PATH)
NICE_DEFAULT = 10  # what nice(1) adds without -n
# open(2) flags of a redirection's target, as sh opens it (a FAT file or a /dev node)
REDIRECT_FLAGS = {
    "<": O_RDONLY,
    ">": O_WRONLY | O_CREAT | O_TRUNC,
    ">>": O_WRONLY | O_CREAT | O_APPEND,
}
COMPILER = "/usr/bin/tcc"  # Debian's i386 tcc, installed with `pkg install tcc`


def format_cpu(ns: int) -> str:
    """CPU time as ps shows it: seconds with milliseconds."""
    return f"{ns // 1_000_000_000}.{ns // 1_000_000 % 1000:03}s"


def program_path(kernel, name: str) -> str:  # noqa: ANN001 - the Kernel
    """A name with a slash is a path (against the cwd); a bare one is the first of
    PROGRAM_DIRECTORIES that holds it (the first directory when none does)."""
    if "/" in name:
        return kernel.shell.resolve_path(name)
    for directory in PROGRAM_DIRECTORIES:
        if kernel.fs is not None and kernel.fs.exists(f"{directory}/{name}"):
            return f"{directory}/{name}"
    return f"{PROGRAM_DIRECTORIES[0]}/{name}"


class ProgramCommands:
    def __init__(self, kernel, manager: ProcessManager, jobs: JobControl) -> None:  # noqa: ANN001
        self.kernel = kernel
        self.manager = manager
        self.jobs = jobs
        shell = kernel.shell
        shell.command_not_found = self._program_command
        shell.run_programs = self._run_pipeline
        shell.run_programs_in_background = functools.partial(self._run_pipeline, background=True)

    def register_commands(self, shell: Shell) -> None:
        for name, handler, usage, text in (
            ("run", self.run, "run PROGRAM [ARGS...] [&]",
             "run a program from /bin or a path in ring 3 (& in the background)"),
            ("compile", self._compile, "compile FILE.c [-o PROGRAM]",
             "compile C with tcc (pkg install tcc); errors name file:line; run ./PROGRAM"),
            ("ps", self._ps, "ps", "list processes: PID, PPID, state, class/priority, CPU time"),
            ("renice", self._renice, "renice NICE PID", "set a normal process's nice value"),
            ("chrt", self._chrt, "chrt -f|-r|-o PRIORITY PID",
             "set a process's class: FIFO, round-robin (1-99) or normal (0)"),
        ):  # fmt: skip
            shell.register(name, handler, usage, text)
        Pager(self.kernel).register(shell)  # more/less: here, where main.py registers commands

    def register_nice(self, shell: Shell) -> None:
        """`nice`, registered after job control's commands (where `help` has always shown it)."""
        text = f"run a program with nice value N (default {NICE_DEFAULT}, -20..19)"
        shell.register("nice", self._nice, "nice [-n N] PROGRAM [ARGS...] [&]", text)

    def _program_command(self, name: str) -> Command | None:
        """Plain `PROGRAM ARGS`, or a path to one (`./hello`, `/bin/hello`): it runs as if
        through `run`."""
        if self.kernel.fs is None:
            return None
        path = self._program_path(name)
        if not self.kernel.fs.exists(path):
            return None
        return Command(name, lambda args, out: self.run([name, *args], out), name, name)

    def _program_path(self, name: str) -> str:
        return program_path(self.kernel, name)

    def run(self, args: list[str], out: Output, nice: int = 0) -> int:
        """`run PROGRAM ARGS [&]` (and `nice`): start it in the foreground, or as a job."""
        if not args:
            raise UsageError("which program?")
        background = args[-1] == "&"
        if background:
            args = args[:-1]
            if not args:
                raise UsageError("which program?")
        if not out.is_terminal:
            out.error("run: programs write to the console; output redirection is not supported")
            return 1
        shell = self.kernel.shell
        manager = self.manager
        path = self._program_path(args[0])
        try:
            process = manager.spawn(path, args, shell.cwd, foreground=not background)
        except SpawnError as error:
            out.error(f"run: {error}")
            return 126 if error.errno == 8 else 127
        if nice:
            manager.scheduler.set_params(process, process.sched.policy,
                                         process.sched.rt_priority, nice)  # fmt: skip
        if background:
            job = self.jobs.add([process], " ".join(args))
            out.line(f"[{process.pid}] {process.name} (job %{job.number})")
        else:
            self.jobs.start_foreground([process], " ".join(args))
            shell.suspend_prompt()
        return 0

    def _compile(self, args: list[str], out: Output) -> int:
        """`compile FILE.c [-o PROGRAM]`: tcc in the foreground, the program named after the
        source unless -o says otherwise."""
        rest, output = list(args), None
        if "-o" in rest:
            at = rest.index("-o")
            if at + 1 >= len(rest):
                raise UsageError("-o needs a program name")
            output = rest.pop(at + 1)
            rest.pop(at)
        if len(rest) != 1 or not rest[0].endswith(".c") or len(rest[0]) < 3:
            raise UsageError("give one C source file (FILE.c)")
        source = rest[0]
        if self.kernel.fs is None or not self.kernel.fs.exists(COMPILER):
            out.error(f"compile: no C compiler: {COMPILER} is not installed (pkg install tcc)")
            return 127
        return self.run([COMPILER, "-o", output or source.removesuffix(".c"), source], out)

    def _run_pipeline(self, stages: list[list[str]], redirections: list[tuple[str, str]],
                      out: Output, stdin: bytes | None,
                      background: bool = False) -> int:  # fmt: skip
        """`a | b | c < IN > OUT`: one process per stage, each one's standard output piped into
        the next one's standard input; `<` feeds the first, `>` or `>>` takes the last, and
        `stdin` (a built-in's output) is the first one's standard input when given. The
        job runs in the foreground: the prompt returns when all of its processes have ended."""
        shell = self.kernel.shell
        manager = self.manager
        fs = shell.volumes  # every mounted FAT volume (a floppy on /a), as the shell's `>`
        if redirections and (fs is None or not fs.any_mounted()):
            out.error("sh: cannot redirect: no filesystem is mounted")
            return 1
        files: dict[int, OpenFile] = {} if stdin is None else {0: BytesFile(stdin)}
        for operator, target in redirections:
            path = shell.resolve_path(target)
            fd = 0 if operator == "<" else 1
            try:
                opened = fs.open_file(path, REDIRECT_FLAGS[operator])
            except OSError as error:
                out.error(f"sh: {target}: {error_text(error)}")
                for file in files.values():
                    file.close()
                return 1
            if fd in files:
                files[fd].close()
            files[fd] = opened
        processes: list[Process] = []
        try:
            for argv in stages:
                path = self._program_path(argv[0])
                group = processes[0].pid if processes else 0  # the job is one group
                processes.append(manager.spawn(path, argv, shell.cwd, pgid=group))
        except SpawnError as error:
            out.error(f"sh: {error}")
            for process in processes:
                manager.terminate(process, SIGKILL, None)
            for file in files.values():
                file.close()
            return 126 if error.errno == 8 else 127
        for left, right in itertools.pairwise(processes):
            read_end, write_end = Pipe(manager).ends()
            left.files.install(1, write_end)
            right.files.install(0, read_end)
        if 0 in files:
            processes[0].files.install(0, files[0])
        if 1 in files:
            processes[-1].files.install(1, files[1])
        command = " | ".join(" ".join(argv) for argv in stages) + "".join(
            f" {operator} {target}" for operator, target in redirections
        )  # fmt: skip
        if background:
            job = self.jobs.add(processes, command)
            out.line(f"[{processes[-1].pid}] {processes[-1].name} (job %{job.number})")
            return 0
        manager.terminal.join_foreground(processes)
        self.jobs.start_foreground(processes, command)
        shell.suspend_prompt()
        return 0

    def _ps(self, args: list[str], out: Output) -> int:
        if args:
            raise UsageError(f"unexpected argument {args[0]!r}")
        manager = self.manager
        out.line(f"{'PID':>5} {'PPID':>5} S {'CLS PRI':<7} {'TIME':>9} CMD")
        out.line(f"{0:>5} {0:>5} {'R' if manager.current is None else 'S'} {'--':<7} "
                 f"{format_cpu(manager.kernel_cpu_ns):>9} [kernel]")  # fmt: skip
        for pid in sorted(manager.table):
            process = manager.table[pid]
            out.line(
                f"{pid:>5} {process.ppid:>5} {process.letter} {process.sched.label():<7} "
                f"{format_cpu(process.cpu_ns):>9} {' '.join(process.argv)}"
            )
        return 0

    def _target(self, text: str) -> Process:
        if not text.isdigit():
            raise UsageError(f"{text!r} is not a process id")
        process = self.manager.table.get(int(text))
        if process is None:
            raise UsageError(f"no process {text}")
        return process

    def _renice(self, args: list[str], out: Output) -> int:
        if len(args) != 2 or not args[0].lstrip("-").isdigit():
            raise UsageError("renice NICE PID")
        process = self._target(args[1])
        self.manager.scheduler.set_params(process, process.sched.policy,
                                          process.sched.rt_priority, int(args[0]))  # fmt: skip
        out.line(f"{process.pid}: nice {process.sched.nice}")
        return 0

    def _chrt(self, args: list[str], out: Output) -> int:
        policies = {"-o": 0, "-f": 1, "-r": 2}
        if len(args) != 3 or args[0] not in policies or not args[1].isdigit():
            raise UsageError("chrt -f|-r|-o PRIORITY PID")
        process = self._target(args[2])
        try:
            self.manager.scheduler.set_params(process, policies[args[0]], int(args[1]))
        except SchedulerError as error:
            out.error(f"chrt: {error}")
            return 1
        out.line(f"{process.pid}: {process.sched.label()}")
        return 0

    def _nice(self, args: list[str], out: Output) -> int:
        if not args:
            out.line("0")  # the shell's own nice value
            return 0
        adjustment = NICE_DEFAULT
        if args[0] == "-n" or args[0].startswith("-n"):
            value = args[0][2:] or (args[1] if len(args) > 1 else "")
            args = args[1:] if args[0][2:] else args[2:]
            if not value.lstrip("+-").isdigit():
                raise UsageError(f"invalid adjustment {value!r}")
            adjustment = int(value)
        if not args:
            raise UsageError("which program?")
        return self.run(args, out, nice=max(NICE_MIN, min(NICE_MAX, adjustment)))
