"""The shell's job control: background jobs, their numbers and notices, and the commands that
act on processes through signals (kill, jobs, wait, nice).

A job is what one command line started with `&`: its processes (a process group), a number
(%1, %2, ... the lowest one free, as bash reuses them) and the command line. The kernel tells
the shell when one of its children ends (the shell's SIGCHLD: Signals.kernel_child_exited);
finished jobs are reported just before the next prompt, in bash's words ("[1]+  Done
spin 5"), and then forgotten. `wait` suspends the prompt until its jobs have ended; Ctrl-C
cancels it. "+" marks the current job (the newest), "-" the previous one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tradekernel.kernel.scheduler import NICE_MAX, NICE_MIN
from tradekernel.kernel.shell import Output, UsageError
from tradekernel.kernel.signals import NSIG, SIGRTMIN, SIGTERM, parse_signal, signal_name
from tradekernel.kernel.signals import signal_text as describe

if TYPE_CHECKING:
    from tradekernel.kernel.process import Process, ProcessManager

NICE_DEFAULT = 10  # what nice(1) adds without -n


@dataclass
class Job:
    number: int
    processes: list[Process]
    command: str

    @property
    def done(self) -> bool:
        from tradekernel.kernel.process import State

        return all(process.state == State.ZOMBIE for process in self.processes)

    @property
    def state(self) -> str:
        """bash's word: Running, Done, Exit N, or the signal ("Terminated", "Killed")."""
        if not self.done:
            return "Running"
        status = self.processes[-1].exit_status  # a pipeline's status is its last stage's
        if status & 0x7F:
            text = describe(status & 0x7F)
            return text[:1].upper() + text[1:]
        return "Done" if status == 0 else f"Exit {status >> 8}"


class JobControl:
    def __init__(self, manager: ProcessManager) -> None:
        self.manager = manager
        self.kernel = manager.kernel
        self.jobs: list[Job] = []  # oldest first: the last one is the current job
        self._waiting_for: list[Job] | None = None  # the shell is in `wait`
        manager.signals.kernel_child_exited = self._child_exited
        self.kernel.shell.before_prompt = self.report_finished

    def register_commands(self, shell) -> None:  # noqa: ANN001 - kernel.shell.Shell
        for name, handler, usage, text in (
            ("kill", self._kill, "kill [-SIGNAL] PID|%JOB... | kill -l [SIGNAL]",
             "signal processes or %jobs (TERM by default); -l lists signals"),
            ("jobs", self._jobs, "jobs", "list the background jobs: number, state, command"),
            ("wait", self._wait, "wait [PID|%JOB...]",
             "wait for background jobs (all by default); Ctrl-C stops it"),
            ("nice", self._nice, "nice [-n N] PROGRAM [ARGS...] [&]",
             f"run a program with nice value N (default {NICE_DEFAULT}, -20..19)"),
        ):  # fmt: skip
            shell.register(name, handler, usage, text)

    # ---- the job table --------------------------------------------------------------------
    def add(self, processes: list[Process], command: str) -> Job:
        used = {job.number for job in self.jobs}
        job = Job(next(n for n in range(1, len(used) + 2) if n not in used), processes, command)
        self.jobs.append(job)
        return job

    def _mark(self, job: Job) -> str:
        if job is self.jobs[-1]:
            return "+"
        return "-" if len(self.jobs) > 1 and job is self.jobs[-2] else " "

    def _line(self, job: Job) -> str:
        suffix = " &" if not job.done else ""
        return f"[{job.number}]{self._mark(job)}  {job.state:<24}{job.command}{suffix}"

    def report_finished(self) -> None:
        """Before a prompt: one line per job that has ended since, which is then forgotten."""
        finished = [job for job in self.jobs if job.done]
        for job in finished:
            self.kernel.shell.out.line(self._line(job))
        self.jobs = [job for job in self.jobs if not job.done]

    def _child_exited(self, child: Process) -> None:
        if self._waiting_for is not None and all(job.done for job in self._waiting_for):
            self._waiting_for = None
            self.kernel.defer(self.kernel.shell.resume)

    def cancel_wait(self) -> bool:
        """Ctrl-C while the shell is in `wait`: stop waiting, the jobs run on."""
        if self._waiting_for is None:
            return False
        self._waiting_for = None
        self.kernel.defer(self.kernel.shell.resume)  # after the tty's ^C
        return True

    def _job(self, spec: str) -> Job:
        """%N, %+ or %% (the current job), %- (the previous one)."""
        if spec in ("%+", "%%", "%-"):
            index = -2 if spec == "%-" else -1
            if len(self.jobs) < -index:
                raise UsageError(f"{spec}: no such job")
            return self.jobs[index]
        number = spec[1:]
        job = next((job for job in self.jobs if str(job.number) == number), None)
        if job is None:
            raise UsageError(f"{spec}: no such job")
        return job

    # ---- commands -----------------------------------------------------------------------
    def _kill(self, args: list[str], out: Output) -> int:
        if args and args[0] == "-l":
            return self._list_signals(args[1:], out)
        signal = SIGTERM
        if args and args[0] == "-s":
            if len(args) < 2:
                raise UsageError("-s needs a signal")
            args = ["-" + args[1], *args[2:]]
        if args and args[0].startswith("-") and args[0] != "--":
            word = args.pop(0)[1:]
            number = parse_signal(word)
            if number is None:
                raise UsageError(f"unknown signal {word!r}")
            signal = number
        if args and args[0] == "--":
            args.pop(0)
        if not args:
            raise UsageError("which process?")
        status = 0
        signals = self.manager.signals
        for target in args:
            if target.startswith("%"):
                job = self._job(target)
                group = job.processes[0].pgid
                members = [p for p in self.manager.table.values() if p.pgid == group]
                result = signals.send_to(None, members or job.processes, signal)
            elif target.isdigit():
                process = self.manager.table.get(int(target))
                result = signals.send_to(None, [process] if process else [], signal)
            else:
                raise UsageError(f"{target!r} is not a process id or job")
            if result < 0:
                out.error(f"kill: ({target}) - no such process")
                status = 1
        return status

    @staticmethod
    def _list_signals(args: list[str], out: Output) -> int:
        if args:
            for word in args:
                number = parse_signal(word)
                if number is None:
                    raise UsageError(f"unknown signal {word!r}")
                out.line(str(number) if not word.isdigit() else signal_name(number))
            return 0
        cells = [f"{n:2}) SIG{signal_name(n):<8}" for n in range(1, SIGRTMIN)]
        for start in range(0, len(cells), 5):
            out.line(" ".join(cells[start : start + 5]).rstrip())
        out.line(f"{SIGRTMIN}-{NSIG}) SIGRTMIN..SIGRTMIN+{NSIG - SIGRTMIN} (real-time)")
        return 0

    def _jobs(self, args: list[str], out: Output) -> int:
        if args:
            raise UsageError(f"unexpected argument {args[0]!r}")
        for job in self.jobs:
            out.line(self._line(job))
        self.jobs = [job for job in self.jobs if not job.done]
        return 0

    def _wait(self, args: list[str], out: Output) -> int:
        jobs: list[Job] = []
        for target in args:
            if target.startswith("%"):
                jobs.append(self._job(target))
                continue
            if not target.isdigit():
                raise UsageError(f"{target!r} is not a process id or job")
            job = next((j for j in self.jobs if any(p.pid == int(target) for p in j.processes)),
                       None)  # fmt: skip
            if job is None:
                out.error(f"wait: pid {target} is not a child of this shell")
                return 127
            jobs.append(job)
        jobs = jobs or list(self.jobs)
        if all(job.done for job in jobs):
            return 0
        self._waiting_for = jobs
        self.kernel.shell.suspend_prompt()
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
        return self.manager.run(args, out, nice=max(NICE_MIN, min(NICE_MAX, adjustment)))
