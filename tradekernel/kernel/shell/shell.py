"""The shell: reads lines from the tty, splits them with POSIX quoting, runs commands.

Commands live in one table (name -> handler, usage, one-line help) that `help` is generated
from; services add theirs with `register`. A handler gets the argument list and an output sink
and returns an exit status. A bad command line, an unknown command or a handler that raises
prints one clear line and the prompt comes back: the shell itself never dies.

Output redirection works for every command: an unquoted `> FILE` or `>> FILE` anywhere on the
line gives the handler an Output that writes to FILE (created or truncated before the command
runs, or appended to) on the mounted filesystem, or to the device it names (`> /dev/null`);
errors still go to the screen. Programs (in
/bin) go to the process layer instead (`run_programs`): `a | b | c` pipes them together and
`< FILE` / `> FILE` become their standard input and output; a trailing `&` makes the line a
background job (`run_programs_in_background`). A built-in may start a pipeline
(`help | wc -l`): its output, kept as text, is the standard input of the programs after it,
or is shown page by page when a pager (`more`, kernel/shell/pager.py) follows it. Paths are
resolved against `cwd` by `resolve_path`, the one resolver every file command uses.

Before each prompt `before_prompt` runs: job control (kernel/shell/jobs.py) reports there the
background jobs that have ended, as bash does.

A full-screen program keeps running after its handler returns (it takes keys in the tty's raw
mode): the handler calls `suspend_prompt()`, and the program calls `resume()` when it ends,
which is when the next prompt appears.
"""

from __future__ import annotations

import errno
import os
import posixpath
from collections.abc import Callable
from dataclasses import dataclass

from tradekernel import __version__
from tradekernel.kernel.drivers.console import Console
from tradekernel.kernel.drivers.tty import Tty
from tradekernel.kernel.fs.storage import NotOnDisk, Volumes
from tradekernel.kernel.fs.vfs import O_APPEND, O_CREAT, O_TRUNC, O_WRONLY, OpenFile

ERROR_ATTR = 0x0C  # light red
CAPTURE_LIMIT = 1 << 20  # characters of a built-in's output kept for a pipe or a file
BUILTIN_NO_INPUT = "a built-in takes no input (no < and not after a |)"
PAGERS = ("more", "less")  # built-ins that take a built-in's output through a pipe
# Built-ins whose last argument `&` starts a background job; any other built-in ends at once
# and simply runs when the line ends in `&`.
STARTS_JOBS = ("run", "nice")


class UsageError(Exception):
    """Raised by a handler for bad arguments; the shell prints it with the usage line."""


class _Operator(str):
    """An unquoted redirection operator, told apart from a quoted word that reads the same."""


def split_command_line(line: str) -> tuple[list[list[str]], list[tuple[str, str]], bool]:
    """(stages, redirections, background) with POSIX sh quoting: '...' keeps everything, "..."
    lets a backslash escape only `"` and `\\`, a bare backslash escapes the next character, and
    `#` at the start of a word begins a comment. An unquoted `|` separates the stages of a
    pipeline (one stage: a plain command). Each redirection is ("<", ">" or ">>", target). An
    unquoted `&` ends the line and runs it in the background (`cmd > file &`, `cmd&`); lists
    (`a & b`) are not supported. Raises ValueError for an unterminated quote, a trailing
    backslash, a missing target, an empty pipeline stage or an `&` before the end."""
    tokens: list[str] = []
    word: list[str] | None = None  # None: between words (so `""` still makes a word)
    index, length = 0, len(line)
    while index < length:
        char = line[index]
        if char in " \t":
            if word is not None:
                tokens.append("".join(word))
                word = None
            index += 1
            continue
        if char == "#" and word is None:
            break
        if char in "<>|&":
            if word is not None:
                tokens.append("".join(word))
                word = None
            operator = ">>" if line.startswith(">>", index) else char
            tokens.append(_Operator(operator))
            index += len(operator)
            continue
        word = [] if word is None else word
        if char == "'":
            end = line.find("'", index + 1)
            if end < 0:
                raise ValueError("No closing quotation")
            word.append(line[index + 1 : end])
            index = end + 1
        elif char == '"':
            index += 1
            while True:
                if index >= length:
                    raise ValueError("No closing quotation")
                char = line[index]
                if char == '"':
                    break
                if char == "\\" and index + 1 < length and line[index + 1] in '"\\':
                    index += 1
                    char = line[index]
                word.append(char)
                index += 1
            index += 1
        elif char == "\\":
            if index + 1 >= length:
                raise ValueError("No escaped character")
            word.append(line[index + 1])
            index += 2
        else:
            word.append(char)
            index += 1
    if word is not None:
        tokens.append("".join(word))
    background = bool(tokens) and tokens[-1] == "&" and isinstance(tokens[-1], _Operator)
    if background:
        tokens.pop()
    stages: list[list[str]] = [[]]
    redirections: list[tuple[str, str]] = []
    items = iter(tokens)
    for token in items:
        if token == "&" and isinstance(token, _Operator):
            raise ValueError("syntax error near '&': it may only end the line")
        if token == "|" and isinstance(token, _Operator):
            if not stages[-1]:
                raise ValueError("syntax error near '|'")
            stages.append([])
        elif isinstance(token, _Operator):
            target = next(items, None)
            if target is None or isinstance(target, _Operator):
                raise ValueError(f"syntax error: {token} needs a file name")
            redirections.append((str(token), target))
        else:
            stages[-1].append(token)
    if len(stages) > 1 and not stages[-1]:
        raise ValueError("syntax error: '|' needs a command after it")
    if background and not stages[0]:
        raise ValueError("syntax error near '&': it needs a command before it")
    return stages, redirections, background


LINE_WIDTH = 79  # the longest line a command prints: an 80th character would wrap


def plural(count: int, word: str, words: str = "") -> str:
    """The count and the noun: 1 process, 0 processes (`words` where "s"/"es" is wrong)."""
    if count == 1:
        return f"{count} {word}"
    return f"{count} {words or word + ('es' if word.endswith(('s', 'x', 'ch', 'sh')) else 's')}"


def wrap_items(prefix: str, items: list[str], width: int = LINE_WIDTH) -> list[str]:
    """`prefix` then the items joined by ", ", continued on lines indented under the first
    item so that none is longer than `width`."""
    lines: list[str] = []
    current = prefix
    for index, item in enumerate(items):
        piece = " " + item + ("," if index < len(items) - 1 else "")
        if len(current) > len(prefix) and len(current) + len(piece) > width:
            lines.append(current)
            current = " " * len(prefix)
        current += piece
    lines.append(current)
    return lines


# Errors whose strerror text says it all; for the others the error's own message follows.
_SELF_EXPLANATORY = frozenset(
    {errno.ENOENT, errno.EEXIST, errno.ENOTDIR, errno.EISDIR, errno.ENOTEMPTY, errno.EROFS}
)


def error_text(error: OSError) -> str:
    """The errno's text as strerror says it, in lower case ("no such file or directory"), then
    for a less obvious errno the error's own message, without the path it starts with:
    "invalid argument ('a|b': character '|' is not allowed in a FAT name)"."""
    if error.errno is None:
        return str(error)
    if isinstance(error, NotOnDisk):
        return error.reason  # says it all: "not on a disk: /dev is served by the kernel"
    text = os.strerror(error.errno)
    text = text[:1].lower() + text[1:]
    detail = str(error.strerror or "")
    if detail.startswith("/") and ": " in detail:
        detail = detail.split(": ", 1)[1]
    if error.errno in _SELF_EXPLANATORY or not detail or detail == text:
        return text
    return f"{text} ({detail})"


class Output:
    """The sink commands write to: text with optional VGA colours (trading's TextSink)."""

    is_terminal = True  # False when redirected to a file (a command may add a final newline)

    def __init__(self, console: Console) -> None:
        self._console = console

    def write(self, text: str, fg: int | None = None, bg: int | None = None) -> None:
        if fg is None and bg is None:
            self._console.write(text)
            return
        base = self._console.attr
        attr = ((base & 0xF0) if bg is None else (bg << 4)) | (base & 0x0F if fg is None else fg)
        self._console.write(text, attr)

    def line(self, text: str = "", fg: int | None = None) -> None:
        self.write(text + "\n", fg)

    def error(self, text: str) -> None:
        self.write(text + "\n", ERROR_ATTR)


class TextOutput(Output):
    """A built-in's output kept as text (for a pipe or a file), up to CAPTURE_LIMIT
    characters; errors still reach the screen (they are the command's stderr)."""

    is_terminal = False

    def __init__(self, console: Console) -> None:
        super().__init__(console)
        self._parts: list[str] = []
        self._size = 0
        self.cut = False  # more was printed than is kept

    def write(self, text: str, fg: int | None = None, bg: int | None = None) -> None:
        room = CAPTURE_LIMIT - self._size
        if len(text) > room:
            text, self.cut = text[:room], True
        self._parts.append(text)
        self._size += len(text)

    def error(self, text: str) -> None:
        Output.write(self, text + "\n", ERROR_ATTR)

    def text(self) -> str:
        return "".join(self._parts)


class FileOutput(TextOutput):
    """Output redirected to an open file (a FAT file or a device node: any OpenFile the kernel
    can write, write_data): text is kept and written in one go by `close`."""

    def __init__(self, console: Console, file: OpenFile) -> None:
        super().__init__(console)
        self._file = file

    def close(self) -> None:
        """Write what the command printed (UTF-8) and close the file."""
        try:
            self._file.write_data(self.text().encode("utf-8"))
        finally:
            self._file.close()


Handler = Callable[[list[str], Output], int]
ProgramRunner = Callable[[list[list[str]], list[tuple[str, str]], Output, bytes | None], int]


@dataclass(frozen=True)
class Command:
    name: str
    handler: Handler
    usage: str
    help: str


class Shell:
    def __init__(self, tty: Tty, console: Console, kernel) -> None:  # noqa: ANN001 - Kernel
        self.tty = tty
        self.console = console
        self.kernel = kernel
        self.out = Output(console)
        self.commands: dict[str, Command] = {}
        self.cwd = "/"
        self._prompt_suspended = False
        # Asked for a name missing from the table (the process layer finds programs in /bin).
        self.command_not_found: Callable[[str], Command | None] = lambda name: None
        # Runs programs as a job: (stages, redirections, out, standard input or None) ->
        # status (the process layer).
        self.run_programs: ProgramRunner | None = None
        # The same, as a background job (`cmd > file &`): the prompt returns at once.
        self.run_programs_in_background: ProgramRunner | None = None
        # Shows text page by page (kernel/shell/pager.py): `help | more`.
        self.page: Callable[[str], int] | None = None
        # The FAT volumes as one tree (kernel/fs/storage.py Volumes), set by the file commands:
        # where `> FILE` is created.
        self.volumes: Volumes | None = None
        # Just before each prompt (job control reports the background jobs that ended).
        self.before_prompt: Callable[[], None] = lambda: None
        tty.on_line = self._on_line
        tty.on_end_of_input = self._on_end_of_input
        for name, handler, usage, text in (
            ("help", self._help, "help [COMMAND]", "list the commands, or show one's usage"),
            ("clear", self._clear, "clear", "clear the screen"),
            ("echo", self._echo, "echo [TEXT...]", "print the arguments"),
            ("history", self._history, "history", "list the lines typed so far"),
            ("uptime", self._uptime, "uptime", "time since boot (virtual clock)"),
            ("date", self._date, "date", "date and time from the CMOS clock"),
            ("version", self._version, "version", "the TradeKernel version and machine"),
            ("reboot", self._reboot, "reboot", "restart the machine (8042 reset line)"),
            ("shutdown", self._shutdown, "shutdown", "power the machine off"),
        ):
            self.register(name, handler, usage, text)

    def register(self, name: str, handler: Handler, usage: str, help_text: str) -> None:
        if name in self.commands:
            raise ValueError(f"shell command {name!r} registered twice")
        self.commands[name] = Command(name, handler, usage, help_text)

    @property
    def prompt(self) -> str:
        return f"tk:{self.cwd}> "

    def start(self) -> None:
        self.before_prompt()
        self.tty.read_line(self.prompt)

    # ---- running a line -------------------------------------------------------------------
    def _on_line(self, line: str) -> None:
        self.kernel.defer(lambda: self._run_and_prompt(line))

    def _run_and_prompt(self, line: str) -> None:
        self._prompt_suspended = False
        self.execute(line)
        if not self.kernel.stopping and not self._prompt_suspended:
            self.start()

    def suspend_prompt(self) -> None:
        """Called by a handler whose program goes on after it returns (a full-screen program
        in raw mode): no prompt until that program calls `resume`."""
        self._prompt_suspended = True

    def resume(self) -> None:
        """The program that suspended the prompt has ended: show the prompt again."""
        self._prompt_suspended = False
        if not self.kernel.stopping:
            self.start()

    def resolve_path(self, path: str) -> str:
        """`path` made absolute against `cwd`, with '.', '..' and repeated slashes resolved
        lexically (FAT has no links): "../a//b" in /x/y is "/x/a/b"."""
        joined = posixpath.join(self.cwd, path)
        return posixpath.normpath("/" + joined.lstrip("/"))

    def execute(self, line: str) -> int:
        try:
            stages, redirections, background = split_command_line(line)
        except ValueError as error:
            self.out.error(f"sh: {error}")
            return 2
        argv = stages[0]
        if not argv:
            if redirections:
                self.out.error("sh: a redirection needs a command")
                return 2
            return 0
        reads_file = any(operator == "<" for operator, _ in redirections)
        if len(stages) > 1 and self._builtin_only(argv[0]) and not reads_file:
            return self._builtin_pipeline(stages, redirections)
        job = len(stages) > 1 or reads_file or redirections and argv[0] not in self.commands
        if background and not job and (argv[0] in STARTS_JOBS or argv[0] not in self.commands):
            argv.append("&")  # a plain program, `run` or `nice`: they start the job themselves
        if job:
            # A job of programs; a name that is both a built-in and in /bin means the program.
            for stage in stages:
                if self.run_programs is None or self.command_not_found(stage[0]) is None:
                    known = stage[0] in self.commands
                    self.out.error(f"sh: {stage[0]}: " + (
                        BUILTIN_NO_INPUT if known
                        else "unknown command (type 'help' for the list)"
                    ))  # fmt: skip
                    return 2 if known else 127
            if background:
                if self.run_programs_in_background is None:
                    self.out.error("sh: cannot run this in the background: no job control")
                    return 1
                return self.run_programs_in_background(stages, redirections, self.out, None)
            return self.run_programs(stages, redirections, self.out, None)
        command = self.commands.get(argv[0]) or self.command_not_found(argv[0])
        if command is None:
            self.out.error(f"sh: {argv[0]}: " + (
                "no such file or directory" if "/" in argv[0]
                else "unknown command (type 'help' for the list)"
            ))  # fmt: skip
            return 127
        out = self.out
        if redirections:
            out = self._redirected_output(redirections)
            if out is None:
                return 1
        try:
            return self._call(command, argv[1:], out)
        finally:
            if out is not self.out:
                self._close_redirection(out)

    def _call(self, command: Command, args: list[str], out: Output) -> int:
        """Run a handler: a usage error or an exception is one line, never the shell's end."""
        try:
            return command.handler(args, out)
        except UsageError as error:
            out.error(f"{command.name}: {error}")
            self.out.line(f"usage: {command.usage}")
            return 2
        except Exception as error:  # noqa: BLE001 - a broken command must not kill the shell
            out.error(f"{command.name}: internal error: {type(error).__name__}: {error}")
            self.kernel.klog.oops("shell", f"command {command.name}", error)
            return 1

    def _builtin_only(self, name: str) -> bool:
        """A built-in with no program of the same name in /bin (which would win)."""
        return name in self.commands and self.command_not_found(name) is None

    def _builtin_pipeline(self, stages: list[list[str]], redirections: list[tuple[str, str]]
                          ) -> int:  # fmt: skip
        """`help | wc -l`, `ps | more`: the built-in runs first and its output (as text, up to
        CAPTURE_LIMIT characters) is the standard input of the programs after it, or is
        paged when the rest is a pager."""
        argv, rest = stages[0], stages[1:]
        captured = TextOutput(self.console)
        self._call(self.commands[argv[0]], argv[1:], captured)  # the last stage's status counts
        if captured.cut:
            self.out.error(f"sh: {argv[0]}: output past {CAPTURE_LIMIT} characters left out")
        if rest[0][0] in PAGERS:
            if len(rest) > 1 or len(rest[0]) > 1 or redirections or self.page is None:
                self.out.error(f"sh: {rest[0][0]}: takes a built-in's output on its own, "
                               "with no arguments, at the end of the line")  # fmt: skip
                return 2
            return self.page(captured.text())
        if self.run_programs is None:
            self.out.error("sh: no process layer to run programs")
            return 1
        for stage in rest:
            if self.command_not_found(stage[0]) is None:
                known = stage[0] in self.commands
                self.out.error(f"sh: {stage[0]}: " + (
                    BUILTIN_NO_INPUT if known
                    else "unknown command (type 'help' for the list)"
                ))  # fmt: skip
                return 2 if known else 127
        return self.run_programs(rest, redirections, self.out, captured.text().encode("utf-8"))

    def _redirected_output(self, redirections: list[tuple[str, str]]) -> FileOutput | None:
        """Open every target in order as sh does (each is created or truncated; the last one
        gets the output), or print why one cannot be opened and return None."""
        fs = self.volumes
        if fs is None or not fs.any_mounted():
            self.out.error("sh: cannot redirect output: no filesystem is mounted")
            return None
        file = None
        for operator, target in redirections:
            if file is not None:
                file.close()
            flags = O_WRONLY | O_CREAT | (O_APPEND if operator == ">>" else O_TRUNC)
            try:
                file = fs.open_file(self.resolve_path(target), flags)
            except OSError as error:
                self.out.error(f"sh: {target}: {error_text(error)}")
                fs.flush()
                return None
        return FileOutput(self.console, file)

    def _close_redirection(self, out: FileOutput) -> None:
        try:
            out.close()
        except OSError as error:
            self.out.error(f"sh: writing the output: {error_text(error)}")
        finally:
            if self.volumes is not None:
                self.volumes.flush()

    def _on_end_of_input(self) -> None:
        self.out.line("(end of input: type 'shutdown' to power off)")
        self.kernel.defer(self.start)

    # ---- built-in commands --------------------------------------------------------------
    @staticmethod
    def _no_arguments(args: list[str]) -> None:
        if args:
            raise UsageError(f"unexpected argument {args[0]!r}")

    def _help(self, args: list[str], out: Output) -> int:
        if args:
            command = self.commands.get(args[0])
            if command is None:
                raise UsageError(f"no command {args[0]!r}")
            out.line(f"usage: {command.usage}")
            out.line(f"  {command.help}")
            return 0
        width = max(len(name) for name in self.commands) + 2
        for name in sorted(self.commands):
            out.write(f"{name:<{width}}", 0x0F)
            words, line = self.commands[name].help.split(), ""
            for word in words:  # a long description goes on under itself, never wraps
                if line and width + len(line) + 1 + len(word) > LINE_WIDTH:
                    out.line(line)
                    out.write(" " * width)
                    line = word
                else:
                    line = f"{line} {word}" if line else word
            out.line(line)
        return 0

    def _clear(self, args: list[str], out: Output) -> int:
        self._no_arguments(args)
        self.console.clear()
        return 0

    def _echo(self, args: list[str], out: Output) -> int:
        out.line(" ".join(args))
        return 0

    def _history(self, args: list[str], out: Output) -> int:
        self._no_arguments(args)
        for number, line in enumerate(self.tty.history, 1):
            out.line(f"{number:4}  {line}")
        return 0

    def _uptime(self, args: list[str], out: Output) -> int:
        self._no_arguments(args)
        ns = self.kernel.clock.uptime_ns()
        seconds, fraction = divmod(ns, 1_000_000_000)
        hours, rest = divmod(seconds, 3600)
        minutes, seconds = divmod(rest, 60)
        out.line(f"up {hours}:{minutes:02}:{seconds:02}.{fraction // 1_000_000:03} ({ns} ns)")
        return 0

    def _date(self, args: list[str], out: Output) -> int:
        self._no_arguments(args)
        out.line(self.kernel.clock.wall_time().strftime("%a %Y-%m-%d %H:%M:%S UTC"))
        return 0

    def _version(self, args: list[str], out: Output) -> int:
        self._no_arguments(args)
        mib = self.kernel.platform.ram_bytes // (1024 * 1024)
        out.line(f"TradeKernel {__version__} on the TradeKernel PC (i386, {mib} MiB)")
        return 0

    def _reboot(self, args: list[str], out: Output) -> int:
        self._no_arguments(args)
        out.line("rebooting...")
        self.kernel.reboot()
        return 0

    def _shutdown(self, args: list[str], out: Output) -> int:
        self._no_arguments(args)
        out.line("powering off.")
        self.kernel.power_off()
        return 0
