"""`log` and `audit`: the persistent kernel log and the trading audit log, from the shell.

`log [-f] [-n N] [--level L] [--subsystem S]` prints the kernel log kept under /var/log on the
disk (every boot's, oldest first; kernel/obs/persist.py), the entries at level L or more severe
and from subsystem S only; `-n N` keeps the last N. With `-f` it then follows: each new entry is
printed as it is logged until q (or Esc, or Ctrl-C), as `tail -f` does; it needs the console,
not a redirection. Without a disk, `log` reads the kernel's ring (what `dmesg` shows).

`audit [-n N]` prints the last N records (default AUDIT_SHOWN) of /var/log/audit.log
(kernel/trading/audit.py), and where reading stopped if the file ends in a damaged record.

Uses the kernel log, kernel/obs (the persistent log, the audit log's file) and the shell.
"""

from __future__ import annotations

from tradekernel.kernel.drivers.keyboard import Key
from tradekernel.kernel.log import LogEntry, check_level
from tradekernel.kernel.shell.shell import Output, Shell, UsageError
from tradekernel.kernel.trading.audit import MAX_RECORD_BYTES, describe, read_records

FOLLOW_BACKLOG = 10  # entries `log -f` shows before it follows, as tail -f
AUDIT_SHOWN = 20
AUDIT_SCAN = 64 * MAX_RECORD_BYTES  # bytes at the end of audit.log that `audit` reads


def parse_filters(args: list[str], flags: str = "") -> tuple[dict[str, str], set[str]]:
    """--level/-l L, --subsystem/-s S, -n N and the single-letter `flags`: (values, flags)."""
    names = {"-l": "level", "--level": "level", "-s": "subsystem", "--subsystem": "subsystem",
             "-n": "n"}  # fmt: skip
    values: dict[str, str] = {}
    seen: set[str] = set()
    position = 0
    while position < len(args):
        arg = args[position]
        option, equals, value = arg.partition("=")
        if option in names:
            if not equals:
                position += 1
                if position == len(args):
                    raise UsageError(f"{option} needs a value")
                value = args[position]
            values[names[option]] = value
        elif arg.startswith("-") and len(arg) == 2 and arg[1] in flags:
            seen.add(arg[1])
        else:
            raise UsageError(f"unexpected argument {arg!r}")
        position += 1
    if "level" in values:
        try:
            values["level"] = check_level(values["level"])
        except ValueError as error:
            raise UsageError(str(error)) from None
    if "n" in values and not values["n"].isdigit():
        raise UsageError(f"-n takes a number of entries, not {values['n']!r}")
    return values, seen


def _print(entries: list[LogEntry], out: Output) -> None:
    for entry in entries:
        for line in entry.format().splitlines():
            out.line(line)


class LogCommands:
    def __init__(self, shell: Shell, kernel) -> None:  # noqa: ANN001 - kernel.main.Kernel
        self.shell = shell
        self.kernel = kernel
        self._stop_following = None

    def register(self) -> None:
        self.shell.register(
            "log",
            self.log,
            "log [-f] [-n N] [--level L] [--subsystem S]",
            "the kernel log kept on the disk (every boot); -f follows it",
        )
        self.shell.register(
            "audit",
            self.audit,
            "audit [-n N]",
            "the trading audit log: every order event, kept on the disk",
        )

    def log(self, args: list[str], out: Output) -> int:
        values, flags = parse_filters(args, "f")
        level, subsystem = values.get("level"), values.get("subsystem")
        follow = "f" in flags
        if follow and out is not self.shell.out:
            raise UsageError("-f prints to the console; it cannot be redirected or piped")
        persistent = self.kernel.obs.log if self.kernel.obs else None
        if persistent is not None and persistent.file.broken is None:
            entries = [e for e in persistent.entries() if e.matches(level, subsystem)]
        else:
            out.line("(no persistent log: the kernel's ring since boot)")
            entries = self.kernel.klog.select(level, subsystem)
        count = int(values["n"]) if "n" in values else (FOLLOW_BACKLOG if follow else None)
        if count is not None:
            entries = entries[-count:] if count else []
        _print(entries, out)
        if follow:
            self._follow(level, subsystem)
        return 0

    # ---- log -f -------------------------------------------------------------------------
    def _follow(self, level: str | None, subsystem: str | None) -> None:
        kernel = self.kernel
        waiting: list[LogEntry] = []

        def arrived(entry: LogEntry) -> None:
            if entry.matches(level, subsystem):
                if not waiting:
                    kernel.defer(show)
                waiting.append(entry)

        def show() -> None:
            if self._stop_following is not None:
                _print(waiting, self.shell.out)
            waiting.clear()

        self._stop_following = kernel.klog.listen(arrived)
        self.shell.suspend_prompt()
        kernel.tty.raw_reader = lambda key: kernel.defer(lambda: self._key(key))

    def _key(self, key: Key) -> None:
        if key.char.lower() == "q" or key.char == "\x1b" or (key.ctrl and key.char == "c"):
            if self._stop_following is not None:
                self._stop_following()
                self._stop_following = None
                self.kernel.tty.raw_reader = None
                self.shell.resume()

    # ---- audit --------------------------------------------------------------------------
    def audit(self, args: list[str], out: Output) -> int:
        values, _ = parse_filters(args)
        if set(values) - {"n"}:
            raise UsageError("audit takes only -n N")
        audit = self.kernel.obs.audit if self.kernel.obs else None
        if audit is None or audit.store.broken is not None:
            reason = audit.store.broken if audit is not None else "no disk"
            out.error(f"audit: no audit log ({reason})")
            return 1
        audit.flush()
        offset, data = audit.store.tail(AUDIT_SCAN)
        start = data.find(b"\n") + 1 if offset else 0
        found = read_records(data[start:], offset + start)
        count = int(values.get("n", AUDIT_SHOWN))
        for record in found.records[-count:] if count else []:
            out.line(describe(record))
        out.line(f"audit: {audit.written} records written this boot, next #{audit.next_rec}"
                 + (f"; {audit.lost} lost" if audit.lost else ""))  # fmt: skip
        if found.problem is not None:
            out.error(f"audit: {found.problem}")
            return 1
        return 0


def register_log_commands(shell: Shell, kernel) -> None:  # noqa: ANN001 - kernel.main.Kernel
    LogCommands(shell, kernel).register()
