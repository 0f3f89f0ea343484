"""The shell's job control: jobs, their numbers and notices, and the commands that act on
processes through signals (kill, jobs, fg, bg, wait).

A job is what one command line started: its processes (a process group), a number (%1, %2, ...
the lowest one free, as bash reuses them) and the command line. One started with `&` gets its
number at once; a foreground one when Ctrl-Z (or any stop signal) stops it, which gives the
shell the terminal back ("[1]+  Stopped                 spin"). `fg` makes a job the
foreground one again and continues it (SIGCONT), `bg` continues a stopped one in the
background. The kernel tells the shell when one of its children ends or stops (the shell's
SIGCHLD: Signals.kernel_child_changed); finished jobs, and background ones that stopped, are
reported just before the next prompt in bash's words ("[1]+  Done                    spin 5")
and finished ones are then forgotten. `wait` suspends the prompt until its jobs have ended or
stopped; Ctrl-C cancels it. "+" marks the current job (the newest, or the last one stopped),
"-" the previous one.

Job control learns of the process layer's events through the callbacks it subscribes to
(Terminal.on_foreground_ended, on_foreground_stopped, on_idle_interrupt, and
Signals.kernel_child_changed); `nice` and `run` are shell/programs.py.

Imports: shell (Output, UsageError) and proc.
"""

from __future__ import annotations

from dataclasses import dataclass

from tradekernel.kernel.proc.process import ProcessManager
from tradekernel.kernel.proc.signals import (
    NSIG,
    SIGCONT,
    SIGKILL,
    SIGRTMIN,
    SIGTERM,
    STOP_SIGNALS,
    parse_signal,
    signal_name,
)
from tradekernel.kernel.proc.signals import signal_text as describe
from tradekernel.kernel.proc.task import Process, State
from tradekernel.kernel.shell.shell import Output, UsageError


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


@dataclass
class Job:
    number: int  # 0: a foreground job that has not stopped yet
    processes: list[Process]
    command: str
    reported: str = ""  # the stopped state last reported, so it is said once

    @property
    def done(self) -> bool:
        return all(process.state == State.ZOMBIE for process in self.processes)

    @property
    def stopped(self) -> bool:
        """Not done, and every live process stopped."""
        live = [process for process in self.processes if process.state != State.ZOMBIE]
        return bool(live) and all(process.stopped for process in live)

    @property
    def state(self) -> str:
        """bash's word: Running, Stopped (with the signal's words for all but SIGTSTP), Done,
        Exit N, or the signal ("Terminated", "Killed")."""
        if self.stopped:
            stopper = next(process.stopped for process in self.processes if process.stopped)
            return _capitalized(describe(stopper))
        if not self.done:
            return "Running"
        status = self.processes[-1].exit_status  # a pipeline's status is its last stage's
        if status & 0x7F:
            return _capitalized(describe(status & 0x7F))
        return "Done" if status == 0 else f"Exit {status >> 8}"


class JobControl:
    """Subscribes to the process layer's events (a child of the shell changed, the foreground
    job ended or stopped, Ctrl-C at no foreground job) and to the shell's prompt."""

    def __init__(self, manager: ProcessManager) -> None:
        self.manager = manager
        self.kernel = manager.kernel
        self.jobs: list[Job] = []  # oldest first: the last one is the current job
        self.foreground_job: Job | None = None  # what holds the terminal
        self._waiting_for: list[Job] | None = None  # the shell is in `wait`
        manager.signals.kernel_child_changed = lambda child: self.changed()
        manager.terminal.on_foreground_ended = self.foreground_ended
        manager.terminal.on_foreground_stopped = self.foreground_stopped
        manager.terminal.on_idle_interrupt = self.cancel_wait
        self.kernel.shell.before_prompt = self.report_finished

    def register_commands(self, shell) -> None:  # noqa: ANN001 - kernel.shell.Shell
        for name, handler, usage, text in (
            ("kill", self._kill, "kill [-SIGNAL] PID|%JOB... | kill -l [SIGNAL]",
             "signal processes or %jobs (TERM by default); -l lists signals"),
            ("jobs", self._jobs, "jobs", "list the jobs: number, state, command"),
            ("fg", self._fg, "fg [%JOB]",
             "continue a job in the foreground (the current one by default)"),
            ("bg", self._bg, "bg [%JOB...]", "continue stopped jobs in the background"),
            ("wait", self._wait, "wait [PID|%JOB...]",
             "wait for background jobs (all by default); Ctrl-C stops it"),
        ):  # fmt: skip
            shell.register(name, handler, usage, text)

    # ---- the job table --------------------------------------------------------------------
    def add(self, processes: list[Process], command: str) -> Job:
        job = Job(self._free_number(), processes, command)
        self.jobs.append(job)
        return job

    def _free_number(self) -> int:
        used = {job.number for job in self.jobs}
        return next(n for n in range(1, len(used) + 2) if n not in used)

    def start_foreground(self, processes: list[Process], command: str) -> None:
        """A command line's programs got the terminal; a job (numbered) only if they stop."""
        self.foreground_job = Job(0, processes, command)

    def foreground_ended(self) -> None:
        """The foreground job's processes have all ended: it leaves the table unreported, and
        the prompt comes back."""
        job, self.foreground_job = self.foreground_job, None
        if job in self.jobs:
            self.jobs.remove(job)
        self.kernel.defer(self.kernel.shell.resume)  # after the tty's own echo (^C)

    def foreground_stopped(self) -> None:
        """The foreground job's processes have all stopped: it becomes the current job, said
        as bash says it, and the prompt is back."""
        job, self.foreground_job = self.foreground_job, None
        if job is not None:
            if job in self.jobs:
                self.jobs.remove(job)
            else:
                job.number = self._free_number()
            self.jobs.append(job)
            job.reported = job.state
            self.kernel.shell.out.line(self._line(job))
        self.kernel.shell.resume()

    def _mark(self, job: Job) -> str:
        if job is self.jobs[-1]:
            return "+"
        return "-" if len(self.jobs) > 1 and job is self.jobs[-2] else " "

    def _line(self, job: Job) -> str:
        state = job.state
        suffix = " &" if state == "Running" else ""
        return f"[{job.number}]{self._mark(job)}  {state:<24}{job.command}{suffix}"

    def report_finished(self) -> None:
        """Before a prompt: one line per job that has ended since, which is then forgotten,
        and per background job that has stopped since."""
        for job in self.jobs:
            if job.done or job.stopped and job.reported != job.state:
                self.kernel.shell.out.line(self._line(job))
            job.reported = job.state if job.stopped else ""
        self.jobs = [job for job in self.jobs if not job.done]

    def changed(self) -> None:
        """A process ended or stopped: `wait` is over once its jobs have all ended or
        stopped; the foreground job is over once its own processes have ended, whatever
        children they left behind (as bash waits only for its job's processes)."""
        self.kernel.defer(self._orphans_left)  # once the exit has been dealt with in full
        waiting = self._waiting_for
        if waiting is not None and all(job.done or job.stopped for job in waiting):
            self._waiting_for = None
            self.kernel.defer(self.kernel.shell.resume)

    def _orphans_left(self) -> None:
        """The foreground job's own processes have all ended but processes they forked still
        hold the terminal: those lose it (a read of the tty now stops them, SIGTTIN) and the
        prompt comes back."""
        job = self.foreground_job
        terminal = self.manager.terminal
        if job is None or not job.done or not terminal.foreground:
            return
        if any(process in job.processes for process in terminal.foreground):
            return  # the terminal's own exit notice is on its way
        for process in terminal.foreground:
            process.foreground = False
        terminal.take_foreground([])
        self.foreground_ended()

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
                targets = self._members(self._job(target))
            elif target.isdigit():
                process = self.manager.table.get(int(target))
                targets = [process] if process else []
            else:
                raise UsageError(f"{target!r} is not a process id or job")
            was_stopped = any(process.stopped for process in targets)
            if signals.send_to(None, targets, signal) < 0:
                out.error(f"kill: ({target}) - no such process")
                status = 1
            elif was_stopped and signal not in (SIGKILL, SIGCONT, *STOP_SIGNALS):
                signals.send_to(None, targets, SIGCONT)  # as bash: so that it can act on it
        return status

    def _members(self, job: Job) -> list[Process]:
        """A job's processes now: its process group (children it forked too)."""
        return self.manager.group(job.processes[0].pgid) or job.processes

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

    def _current(self) -> Job:
        if not self.jobs:
            raise UsageError("no current job")
        return self.jobs[-1]

    def _fg(self, args: list[str], out: Output) -> int:
        if len(args) > 1:
            raise UsageError(f"unexpected argument {args[1]!r}")
        job = self._job(args[0]) if args else self._current()
        if job.done:
            out.error(f"fg: job {job.number} has ended")
            return 1
        members = [p for p in self._members(job) if p.state != State.ZOMBIE]
        out.line(job.command)
        job.reported = ""
        self.foreground_job = job
        self.manager.terminal.take_foreground(members)
        self.kernel.shell.suspend_prompt()
        self.manager.signals.send_to(None, members, SIGCONT)
        return 0

    def _bg(self, args: list[str], out: Output) -> int:
        status = 0
        for job in [self._job(arg) for arg in args] or [self._current()]:
            if not job.stopped:
                out.error(f"bg: job {job.number} already in background")
                status = 1
                continue
            self.manager.signals.send_to(None, self._members(job), SIGCONT)
            job.reported = ""
            out.line(f"[{job.number}]{self._mark(job)} {job.command} &")
        return status

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
        if all(job.done or job.stopped for job in jobs):
            return 0
        self._waiting_for = jobs
        self.kernel.shell.suspend_prompt()
        return 0
