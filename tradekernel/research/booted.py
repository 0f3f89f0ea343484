"""`tk backtest` and every `tk sweep` point inside the machine: boot the TradeKernel PC in
deterministic mode on a scratch disk holding the data (and the strategy, when it is a file),
type the shell's `backtest` at its prompt (`machine_command` makes the line and the disk's
files), and read back what it printed. Backtest and live so share every line of code below
the strategy API: the kernel's FAT driver reads the data, the kernel's strategy loader and
sandbox run the strategy, the kernel's books replay the feed.

Contract: `run_in_machine` never raises for a bad strategy, configuration or data file: the
shell says what was wrong (its one line comes back in `error`), the machine is closed and its
scratch disk removed whatever happens. The shell's output reaches the host through the serial
console mirror (COM1, which the kernel writes synchronously), so the progress the command prints
("\\r  N events") is seen while the backtest runs, and feeds `progress(events)`. Given
`collect`, a folder on the OS's disk (where the shell's `backtest ... --out DIR` wrote the run's
files), the files in it are read from the disk image once the machine is off, with the
project's FAT code from the host side: the run's files come from the machine's disk, not from
an engine run in this process. `backtest_in_machine` is the whole round: the line (with --out
RUN_DIR when collecting), the shell's refusal as a MachineError, what it printed parsed
(`parse_printed`), and the collected files checked against it (RunMismatch if they differ).

A ring-3 strategy (`is_program`: /bin/NAME of the OS's disk, or a host ELF file, which goes to
/strategies/NAME) runs as the shell's `backtest PROGRAM DATA ... -- ARGS`; what the program and
the kernel print about it comes before the shell's figures, so what was printed is read from the
first line that starts with `backtest` (the lines before it are kept in `said`).

Uses: disktool (the disk), ui.session.make_pc (the machine), the keyboard channel (typing at
idle points, as the test harness does, so the run is deterministic). Nothing of the kernel.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from tradekernel.disktool import OS_DISK_MB, create_os_disk, open_volume, write_files
from tradekernel.emu.pc import PcConfig
from tradekernel.ui.keymap import text_to_key_events
from tradekernel.ui.session import make_pc

RAM_MIB = 64  # the kernel holds the data file and the replayed books in its Python heap
DISK_SLACK_MB = 8  # room on the scratch disk beyond the OS and the files put on it
MAX_COLLECT_BYTES = 256 << 20  # all the files read back from the disk together
WALL_LIMIT_S = 3600.0  # a guard against a hung machine (the backtest itself has no limit)
PROMPT = b"tk:/> "
PROGRESS = re.compile(rb"\r  (\d+) events")  # the shell's backtest progress line
DATA_DIR, STRATEGY_DIR = "/data", "/strategies"
RUN_DIR = "/runs/tk"  # where the OS's backtest writes the run's files for the host to collect
RUN_FILES = ("fills.csv", "samples.csv", "summary.json", "latency.csv")  # BacktestResult.run_files
SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
OS_PROGRAMS = "/bin"  # STRATEGY /bin/NAME is the OS disk's program NAME, not a host file
ELF_MAGIC = b"\x7fELF"
MAX_PROGRAM_BYTES = 16 << 20  # a host program larger than this is refused unread (as the OS does)
SAFE_ARG = re.compile(r"[A-Za-z0-9_.,:=+/@%-]{1,64}")  # a program argument typed at the shell
MAX_ARGS = 32


class MachineError(Exception):
    """The machine could not run the backtest (it crashed, hung, or the files do not fit), or
    its shell refused it (the shell's one line)."""


class RunMismatch(MachineError):
    """The files the machine wrote are not the run it printed (a broken invariant)."""


@dataclass
class MachineRun:
    lines: list[str]  # what the shell's backtest printed after its progress
    error: str | None  # the shell's one-line refusal (bad strategy, config, data), or None
    files: dict[str, bytes] = field(default_factory=dict)  # name -> bytes read from `collect`
    said: list[str] = field(default_factory=list)  # printed before: a program's own output


def disk_name(name: str, fallback: str) -> str:
    """The file's own name if it is a plain one (the format is told by its name: .itch, .csv,
    _message_N.csv), else `fallback`."""
    return name if SAFE_NAME.fullmatch(name) else fallback


def run_in_machine(
    command: str,
    files: dict[str, bytes],
    progress: Callable[[int], None] | None = None,
    wall_limit_s: float = WALL_LIMIT_S,
    collect: str | None = None,
) -> MachineRun:
    """Put `files` (absolute path -> bytes) on a fresh OS disk, boot it deterministically, run
    the shell `command` (a `backtest ...` line) and return what it printed, with the files of
    the disk folder `collect` as the machine left them."""
    with tempfile.TemporaryDirectory(prefix="tk-backtest-") as folder:
        disk = Path(folder) / "disk.img"
        size_mb = OS_DISK_MB + DISK_SLACK_MB + sum(len(b) for b in files.values()) // (1 << 20)
        create_os_disk(disk, size_mb=size_mb)
        with open_volume(disk) as fs:
            write_files(fs, files)
        pc = make_pc(PcConfig(disk=disk, ram_mib=RAM_MIB, deterministic=True))
        try:
            ran = _drive(pc, command, progress, wall_limit_s)
        finally:
            pc.close()
            pc.machine.close()
            # The machine is cyclic garbage until the collector's next full pass: a sweep
            # worker booting one per point would hold RAM_MIB per run until then.
            pc.release_memory()
        if collect is not None and ran.error is None:
            ran.files = collect_files(disk, collect)
        return ran


def collect_files(disk: Path, folder: str) -> dict[str, bytes]:
    """The plain files of `folder` on the OS disk image (name -> bytes); MachineError if it is
    missing or holds more than MAX_COLLECT_BYTES."""
    found: dict[str, bytes] = {}
    try:
        with open_volume(disk, read_only=True) as fs:
            for entry in fs.scandir(folder):
                if entry.is_dir:
                    continue
                if sum(map(len, found.values())) + entry.size > MAX_COLLECT_BYTES:
                    raise MachineError(f"{folder}: more than {MAX_COLLECT_BYTES} bytes to collect")
                found[entry.name] = fs.read_file(f"{folder}/{entry.name}")
    except (OSError, KeyError, ValueError) as err:
        raise MachineError(f"the machine left no run in {folder}: {err}") from None
    return found


def _drive(pc, command: str, progress: Callable[[int], None] | None,  # noqa: ANN001 - a Pc
           wall_limit_s: float) -> MachineRun:  # fmt: skip
    machine = pc.machine
    serial = bytearray()
    shown = [0]

    def heard(data: bytes) -> None:
        serial.extend(data)
        if progress is not None and b"\r" in data:
            found = PROGRESS.findall(bytes(serial[-80:]))
            if found and int(found[-1]) != shown[0]:
                shown[0] = int(found[-1])
                progress(shown[0])

    machine.channels.listen("com1-tx", heard)
    keys = [text_to_key_events(char) for char in command + "\n"]
    typing = [False]

    def feed() -> bool:
        if not typing[0] or not keys:
            return False
        for event in keys.pop(0):
            machine.channels.send("keyboard-key", event)
        return True

    machine.feed_when_idle(feed)
    stop = machine.run(wall_timeout_s=wall_limit_s, until=lambda: PROMPT in serial)
    if PROMPT not in serial:
        raise MachineError(f"the machine did not reach its prompt ({stop.reason})")
    start = len(serial)
    typing[0] = True
    stop = machine.run(wall_timeout_s=wall_limit_s,
                       until=lambda: serial.find(PROMPT, start) >= 0)  # fmt: skip
    end = serial.find(PROMPT, start)
    if end < 0:
        raise MachineError(f"the backtest did not finish in the machine ({stop.reason})")
    text = bytes(serial[start:end]).decode("cp437").replace("\r\n", "\n")
    printed = text.split("\n", 1)[1] if "\n" in text else ""  # after the echoed command
    lines = [line.rsplit("\r", 1)[-1].rstrip() for line in printed.split("\n")]
    lines = [line for line in lines if line]
    figures = (i for i, line in enumerate(lines) if line.startswith(("backtest ", "backtest:")))
    first = next(figures, 0)
    said, lines = lines[:first], lines[first:]
    if lines and lines[0].startswith("backtest: "):
        return MachineRun(lines, lines[0].removeprefix("backtest: "), said=said)
    return MachineRun(lines, None, said=said)


def files_fingerprint(files: dict[str, bytes]) -> str:
    """A collected run's fills count, fills.csv sha256 prefix and net, in the form the shell
    prints them (research/cli.Printed.fingerprint): equal when the files are the run printed."""
    try:
        summary = json.loads(files["summary.json"])
        net = Decimal(summary["net"])
        digest = hashlib.sha256(files["fills.csv"]).hexdigest()[:16]
        return f"{int(summary['fills'])} fills {digest} net {net:.2f}"
    except (KeyError, TypeError, ValueError, InvalidOperation) as err:
        raise MachineError(f"the machine's run files are not readable: {err!r}") from None


def data_at(data_name: str) -> str:
    """Where a data file goes on the machine's disk: /data, under its own name (which tells
    its format) when that is a plain one."""
    return f"{DATA_DIR}/{disk_name(data_name, 'data' + Path(data_name).suffix)}"


def strategy_name(path: Path, sample: bool) -> str:
    """The name the OS runs a strategy file under (and records in its results): a sample's
    own, else the file's stem when it is a plain one."""
    return path.stem if sample else disk_name(path.stem, "strategy")


def is_program(strategy: str) -> bool:
    """A ring-3 strategy: /bin/NAME (a program on the OS's disk), or a host file that is an ELF
    executable (read no further than its magic)."""
    if strategy.startswith(OS_PROGRAMS + "/"):
        return True
    try:
        with open(strategy, "rb") as file:
            return file.read(len(ELF_MAGIC)) == ELF_MAGIC
    except OSError:
        return False


def program_words(strategy: str, config_path: Path | None,
                  files: dict[str, bytes]) -> list[str]:  # fmt: skip
    """The PROGRAM word of a ring-3 run, with its file put in `files` when it is the host's:
    /strategies/NAME, with NAME.toml beside it unless --config is given. ValueError (one line)
    for a name the shell line cannot hold or a file too large."""
    name = strategy.rsplit("/", 1)[-1]
    if strategy.startswith(OS_PROGRAMS + "/"):
        if not SAFE_NAME.fullmatch(name) or strategy.count("/") != 2:
            raise ValueError(f"{strategy}: not a plain program name under {OS_PROGRAMS}")
        return [strategy]
    path = Path(strategy)
    if path.stat().st_size > MAX_PROGRAM_BYTES:
        raise ValueError(f"{strategy}: larger than {MAX_PROGRAM_BYTES} bytes")
    where = f"{STRATEGY_DIR}/{disk_name(name, 'program')}"
    files[where] = path.read_bytes()
    beside = path.with_name(path.name + ".toml")
    if config_path is None and beside.is_file():
        files[where + ".toml"] = beside.read_bytes()
    return [where]


def machine_command(path: Path, sample: bool, config_path: Path | None, data_name: str,
                    raw: bytes, program_args: list[str] | None = None,
                    ) -> tuple[str, dict[str, bytes]]:  # fmt: skip
    """The shell line and the disk files of an in-machine run: the data at `data_at`, a
    strategy file in /strategies with the .toml beside it (a `sample` is known to the OS by
    name) or a ring-3 program (`is_program`, `program_words`) with `-- program_args`, a
    --config file as /data/config.toml. ValueError (one line) for what the line cannot hold."""
    files = {data_at(data_name): raw}
    tail: list[str] = []
    if is_program(str(path)):
        words = ["backtest", *program_words(str(path), config_path, files), data_at(data_name)]
        if program_args:
            bad = [arg for arg in program_args if not SAFE_ARG.fullmatch(arg)]
            if bad or len(program_args) > MAX_ARGS:
                raise ValueError(f"--args: {bad[0]!r} is not a plain word" if bad else
                                 f"--args: more than {MAX_ARGS} words")  # fmt: skip
            tail = ["--", *program_args]
    else:
        stem = strategy_name(path, sample)
        if not sample:
            files[f"{STRATEGY_DIR}/{stem}.py"] = path.read_bytes()
            beside = path.with_suffix(".toml")
            if config_path is None and beside.is_file():
                files[f"{STRATEGY_DIR}/{stem}.toml"] = beside.read_bytes()
        words = ["backtest", stem, data_at(data_name)]
    if config_path is not None:
        files[f"{DATA_DIR}/config.toml"] = config_path.read_bytes()
        words += ["--config", f"{DATA_DIR}/config.toml"]
    return " ".join(words + tail), files


@dataclass
class Printed:
    """What the shell's backtest printed, read back (kernel/shell/strategy.py print_result)."""

    one_line: str  # as BacktestResult.one_line()
    events: int
    stopped: str | None
    data_errors: list[str]
    fingerprint: str  # fills count, sha256 prefix, net: what the run's files must match


PRINTED_HEAD = re.compile(r"backtest (\S+) on (\S+): (ok|STOPPED), (\d+) events, hash (\w+)")
PRINTED_NET = re.compile(r"net (\S+) = realized (\S+) \+ unrealized (\S+) - fees (\S+)")
PRINTED_FILLS = re.compile(r"fills (\d+) \(sha256 (\w+)\)")


def parse_printed(lines: list[str]) -> Printed:
    head = PRINTED_HEAD.fullmatch(lines[0]) if lines else None
    net = PRINTED_NET.fullmatch(lines[1].strip()) if len(lines) > 1 else None
    fills = PRINTED_FILLS.match(lines[2].strip()) if len(lines) > 2 else None
    if head is None or net is None or fills is None:
        raise ValueError(" / ".join(lines[:3]) or "nothing")
    name, data_name, state, events, code = head.groups()
    one_line = (f"{state} {name} on {data_name}: {events} events, {fills[1]} fills, net "
                f"{net[1]} (realized {net[2]}, unrealized {net[3]}, fees {net[4]}) hash {code}")
    rest = [line.strip() for line in lines[3:]]
    stopped = next((line.removeprefix("stopped: ") for line in rest
                    if line.startswith("stopped: ")), None)  # fmt: skip
    if state == "STOPPED" and stopped is None:
        stopped = "stopped"
    errors = [line.removeprefix("data: ") for line in rest if line.startswith("data: ")]
    mark = f"{fills[1]} fills {fills[2]} net {net[1]}"
    return Printed(one_line, int(events), stopped, errors, mark)


@dataclass
class MachineBacktest:
    printed: Printed
    files: dict[str, bytes]  # RUN_FILES as the machine wrote them (empty unless collected)
    said: list[str]  # what was printed before the figures: a ring-3 program's own output


def backtest_in_machine(command: str, files: dict[str, bytes],
                        progress: Callable[[int], None] | None = None,
                        collect: bool = False) -> MachineBacktest:  # fmt: skip
    """Run the shell's `backtest` line `command` in a fresh machine (run_in_machine) and read
    what it printed; with `collect`, it also writes the run's files (--out RUN_DIR), which are
    read back from its disk and checked against what it printed (RunMismatch if they differ).
    MachineError for the shell's refusal (its one line) or output tk cannot read."""
    if collect:  # before a program's `-- ARGS`, which are all its own
        head, dashes, args = command.partition(" -- ")
        command = f"{head} --out {RUN_DIR}{dashes}{args}"
    ran = run_in_machine(command, files, progress, collect=RUN_DIR if collect else None)
    if ran.error is not None:
        raise MachineError(ran.error)
    try:
        printed = parse_printed(ran.lines)
    except ValueError as err:
        raise MachineError(f"the machine's backtest printed what tk cannot read: {err}"
                           ) from None  # fmt: skip
    run = {name: ran.files[name] for name in RUN_FILES if name in ran.files}
    if collect:
        written = files_fingerprint(run)
        if written != printed.fingerprint:
            raise RunMismatch(f"the machine's run ({printed.fingerprint}) differs from the files "
                              f"it wrote ({written})")  # fmt: skip
    return MachineBacktest(printed, run, ran.said)
