"""The `tk` command line: boot the machine (window, terminal or pipe) and manage disk images.

Contract: every way `tk boot` can go wrong before the machine runs (a missing or unusable disk
image, a screenshot path that cannot be written, RAM below what the OS needs) is one line on
stderr and exit 1, checked before anything boots; the exit codes are listed in `tk boot
--help` (constants in ui/supervisor.py). Host signals and the watchdog are ui/supervisor.py's.
"""

from __future__ import annotations

import math
import os
import sys
import termios
import tty
from pathlib import Path

import click

from tradekernel import __version__
from tradekernel.devices.ide import DiskError
from tradekernel.disktool import disk
from tradekernel.emu import snapshot
from tradekernel.emu.gdbstub import DEFAULT_PORT as DEFAULT_GDB_PORT
from tradekernel.emu.gdbstub import parse_address
from tradekernel.emu.machine import StopInfo
from tradekernel.emu.record import Recorder
from tradekernel.repotool import repo
from tradekernel.research.cli import backtest, data, report_command, sweep_command
from tradekernel.ui.pipe import InputPacer, PlainText, StdinSource
from tradekernel.ui.scrollback import SERIAL_CHANNEL
from tradekernel.ui.session import BootOptions, Session, remove_stale_scratch_disks
from tradekernel.ui.supervisor import (
    EXIT_CRASH,
    EXIT_ERROR,
    EXIT_HUNG,
    EXIT_SIGNAL_BASE,
    EXIT_TIMEOUT,
    HostSignals,
    Supervisor,
)
from tradekernel.ui.terminal import LEAVE_BYTE, run_terminal

CONTEXT = {"help_option_names": ["-h", "--help"]}
SECTOR = 512
# The machine's own bounds (emu/pc.py refuses others); the kernel heap scales with the RAM, so
# the OS boots and runs programs at the minimum (tests/cli/test_boot_cli.py proves both ends).
MIN_MEMORY_MIB = 2
MAX_MEMORY_MIB = 3072

BOOT_EPILOG = f"""\b
Front ends: a window by default; with --headless, the VGA screen mirrored in
this terminal, or, when stdout or stdin is not a terminal, the serial
console as plain text on stdout and stdin typed as keys.
\b
Piped input is typed only as fast as the guest takes it (nothing is lost):
each line once the one before it has been read. At end of input, once the
shell has taken everything and sits idle at its prompt, the machine powers
off as if `shutdown` had been typed (background jobs end with it). A line
with a character no US key types is not typed (stderr says so).
\b
Exit codes:
  0    the guest powered off (shutdown, end of piped input, Ctrl-],
       the window closed)
  {EXIT_ERROR}    a one-line error before booting (bad disk image or path)
  2    bad command-line usage
  {EXIT_TIMEOUT}    --timeout passed before a power-off
  {EXIT_CRASH}    the machine crashed (the crash report is on stderr)
  {EXIT_HUNG}    the machine stopped responding (a kernel service never
       returned) and the watchdog ended tk
  128+N  host signal N powered the machine off (SIGHUP 129, SIGINT 130,
       SIGTERM 143); a second signal ends tk at once
"""


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="tk")
def main() -> None:
    """TradeKernel: a PC emulated in Python and the trading OS that runs on it."""


main.add_command(disk)
main.add_command(repo)
for command in (backtest, data, report_command, sweep_command):  # research: research/cli.py
    main.add_command(command)


@main.command(epilog=BOOT_EPILOG)
@click.option("--headless", is_flag=True, help="Use the terminal instead of a window.")
@click.option(
    "--deterministic",
    is_flag=True,
    help="Instruction-counted time: the same input gives the same run, bit for bit.",
)
@click.option(
    "--disk",
    "disk_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Boot this disk image and keep changes there (default: a scratch copy).",
)
@click.option(
    "--floppy",
    "floppy_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A diskette image as drive A: (booted before the hard disk).",
)
@click.option("--read-only", is_flag=True, help="Never write the disk images.")
@click.option(
    "--memory",
    "memory_mib",
    type=click.IntRange(MIN_MEMORY_MIB, MAX_MEMORY_MIB),
    default=32,
    show_default=True,
    help=f"RAM in MiB ({MIN_MEMORY_MIB}-{MAX_MEMORY_MIB}: the OS needs {MIN_MEMORY_MIB}).",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0),
    default=None,
    help=f"End a run that has not powered off after this many seconds (exit {EXIT_TIMEOUT}); "
    "0 means no timeout.",
)
@click.option(
    "--screenshot",
    type=click.Path(path_type=Path),
    help="Write the last screen to this PNG file.",
)
@click.option("--dump-screen", is_flag=True, help="Print the final 80x25 screen as text.")
@click.option(
    "--scale",
    type=click.FloatRange(min=1, max=8),
    default=None,
    help="Window size as a multiple of 720x400 (e.g. 1.5); the window can also be resized.",
)
@click.option(
    "--net",
    default="user",
    show_default=True,
    metavar="user|tap:NAME|socket:OPTIONS|none",
    help="What the NE2000 network card (port 0x300, IRQ 9) is cabled to: built-in NAT, a "
    "Linux TAP device, a socket to other machines, or nothing.",
)
@click.option(
    "--hostfwd",
    multiple=True,
    metavar="tcp|udp:[HOSTADDR:]HOSTPORT-[GUESTADDR]:GUESTPORT",
    help="With --net user: forward a host port to the guest (repeatable).",
)
@click.option(
    "--pcap",
    "pcap_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write every frame on the network cable to this pcap file.",
)
@click.option(
    "--profile",
    "profile_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Profile the system from the first prompt to power-off: a perf-style table on stderr "
    "and FILE as speedscope JSON (FILE.json) or folded stacks (any other name).",
)
@click.option(
    "--record",
    "record_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Record every input (keys, network frames, image identities) to this file for "
    "`tk replay`; implies --deterministic.",
)
@click.option(
    "--save-state",
    "save_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="When the run ends, save the whole machine to this file (needs --disk).",
)
@click.option(
    "--load-state",
    "load_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Start from a --save-state file instead of power-on (with the same --disk as then).",
)
@click.option(
    "--snapshot-dir",
    "snapshot_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Where the shell's `snapshot save NAME` writes NAME.tksnap (--save-state's format).",
)
@click.option(
    "--gdb",
    "gdb_address",
    metavar="[HOST:]PORT",
    help="Serve a GDB (target remote HOST:PORT) on this TCP address; HOST defaults to "
    "127.0.0.1.",
)
@click.option("-s", "gdb_default", is_flag=True, help="Short for --gdb :1234, as QEMU's -s.")
@click.option(
    "-S",
    "gdb_wait",
    is_flag=True,
    help="Hold the CPU before its first instruction until the GDB says continue (as QEMU).",
)
def boot(headless: bool, deterministic: bool, disk_path: Path | None, floppy_path: Path | None,
         read_only: bool, memory_mib: int, timeout_s: float | None, screenshot: Path | None,
         dump_screen: bool, scale: float | None, net: str, hostfwd: tuple[str, ...],
         pcap_path: Path | None, profile_path: Path | None, record_path: Path | None,
         save_path: Path | None, load_path: Path | None, gdb_address: str | None = None,
         gdb_default: bool = False, gdb_wait: bool = False,
         snapshot_dir: Path | None = None) -> None:  # fmt: skip
    """Power on the TradeKernel PC and boot its disk."""
    deterministic = deterministic or record_path is not None  # a recording replays exactly
    if save_path is not None and disk_path is None:
        raise click.ClickException("--save-state needs --disk (a scratch disk is gone at exit)")
    if snapshot_dir is not None and disk_path is None:
        raise click.ClickException("--snapshot-dir needs --disk (a scratch disk is gone at exit)")
    if load_path is not None:
        try:  # the machine to build is the saved one's
            saved = snapshot.read_header(load_path)
        except snapshot.SnapshotError as error:
            raise click.ClickException(str(error)) from error
        memory_mib, deterministic = int(saved["ram_mib"]), bool(saved["deterministic"])
        if record_path is not None and not deterministic:
            raise click.ClickException("--record needs a snapshot saved in deterministic time")
    with HostSignals() as signals:
        remove_stale_scratch_disks()
        for path, option in (
            (screenshot, "--screenshot"),
            (pcap_path, "--pcap"),
            (profile_path, "--profile"),
            (record_path, "--record"),
            (save_path, "--save-state"),
        ):
            if path is not None:
                _check_writable(path, option)
        _check_disk(disk_path)
        options = BootOptions(
            disk_path, memory_mib, deterministic, read_only, timeout_s or None, floppy_path,
            net, hostfwd, pcap_path, profile_path,
        )  # fmt: skip
        options.gdb, options.gdb_wait = _gdb_address(gdb_address, gdb_default, gdb_wait), gdb_wait
        try:
            session = Session(options)
        except (OSError, ValueError, DiskError) as error:
            raise click.ClickException(_one_line(error)) from error
        if load_path is not None:
            try:
                snapshot.load(session.pc, load_path)
            except snapshot.SnapshotError as error:
                session.close()  # a machine refused half-way is never run
                raise click.ClickException(str(error)) from error
            session.release_held_keys()
        if snapshot_dir is not None:
            snapshot.SnapshotRequests(session.pc, snapshot_dir)
        try:
            supervisor = Supervisor(session)
            supervisor.cleanups.append(session.close)
            supervisor.cleanups.append(session.pc.flush)
            signals.supervisor = supervisor
            session.machine.channels.listen("log", lambda text: click.echo(text, err=True))
            recorder = None
            if record_path is not None:
                recorder = Recorder(session.pc, scratch_disk=disk_path is None,
                                    snapshot=load_path)  # fmt: skip
            stop = _run(session, supervisor, headless, scale)
            for line in session.finish_profile():
                click.echo(line, err=True)
            if recorder is not None:
                try:  # checked writable before booting, but a disk can fill up
                    recorder.finish(stop).save(record_path)
                except OSError as error:
                    click.echo(f"tk: --record {record_path}: {_one_line(error)}", err=True)
            if save_path is not None:
                session.pc.flush()  # the disk as the snapshot will expect it
                try:
                    snapshot.save(session.pc, save_path)
                except snapshot.SnapshotError as error:
                    click.echo(f"tk: {error}", err=True)
            if dump_screen:
                click.echo("\n".join(line.rstrip() for line in session.screen_lines()))
            if screenshot is not None:
                from tradekernel.ui.render import save_png

                save_png(session.pc.vga.text_screen(), str(screenshot))
        finally:
            session.close()
    if stop.reason == "timeout":
        click.echo(f"tk: timed out after {timeout_s:g} s without a power-off", err=True)
        sys.exit(EXIT_TIMEOUT)
    if stop.reason == "crash":
        sys.exit(EXIT_CRASH)
    if supervisor.signal_number is not None:
        sys.exit(EXIT_SIGNAL_BASE + supervisor.signal_number)


def _run(session: Session, supervisor: Supervisor, headless: bool, scale: float | None) -> StopInfo:
    """The front end that fits where stdin and stdout go; returns when the machine stopped."""
    if not headless:
        from tradekernel.ui.window import run_window

        return run_window(session, supervisor=supervisor, scale=scale)
    if sys.stdout.isatty() and sys.stdin.isatty():
        return run_terminal(session, supervisor=supervisor)
    return _run_piped(session, supervisor)


def _run_piped(session: Session, supervisor: Supervisor) -> StopInfo:
    """The serial console as text on stdout, stdin typed as keys. A terminal on stdin (as in
    `tk boot --headless | tee log`) is put in raw mode: the guest shows each finished line
    (the terminal's own echo would show it twice), Ctrl-C reaches the guest as a key, and
    Ctrl-] leaves."""
    printer = PlainText(sys.stdout, lambda: supervisor.request_stop("stdout was closed"))
    session.machine.channels.listen(SERIAL_CHANNEL, printer.feed)
    stdin = sys.stdin.fileno()
    saved = termios.tcgetattr(stdin) if os.isatty(stdin) else None

    def leave() -> None:
        supervisor.request_stop("Ctrl-]")

    source = StdinSource(
        stdin,
        read_all=session.options.deterministic,
        leave_byte=LEAVE_BYTE if saved is not None else None,
        on_leave=leave,
    )
    pacer = InputPacer(session, source, lambda line: click.echo(line, err=True))
    if saved is not None:
        restore = lambda: termios.tcsetattr(stdin, termios.TCSADRAIN, saved)  # noqa: E731
        supervisor.cleanups.append(restore)
        tty.setraw(stdin, termios.TCSANOW)
    try:
        pacer.start()
        supervisor.start()
        while not supervisor.wait(0.2):
            pass  # the main thread stays free for signal handlers
    finally:
        supervisor.stop()
        if saved is not None:
            restore()
        if printer.closed:  # nothing more can reach it: not even Python's flush at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        else:
            sys.stdout.flush()
    return supervisor.result()


EXIT_DIVERGED = 6  # tk replay: the run did not come out as recorded


@main.command()
@click.argument("recording_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--disk",
    "disk_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The disk image as it was when the run began (a copy is used; it is not written). "
    "Without it, a run recorded on a scratch disk gets a fresh one.",
)
@click.option(
    "--floppy",
    "floppy_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The diskette image as it was when the run began.",
)
@click.option(
    "--until",
    "--replay-until",
    "until",
    metavar="TIME",
    help="Stop at this virtual time (e.g. 2.5s, 300ms, 1500000ns) and hold the machine there.",
)
@click.option("--dump-screen", is_flag=True, help="Print the screen where the replay ended.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0), default=None,
              help="Give up after this many seconds of wall time.")  # fmt: skip
@click.option(
    "--load-state",
    "load_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The snapshot a run recorded with --load-state started from.",
)
def replay(recording_path: Path, disk_path: Path | None, floppy_path: Path | None,
           until: str | None, dump_screen: bool, timeout_s: float | None,
           load_path: Path | None = None) -> None:  # fmt: skip
    """Run a `tk boot --record` file again, bit for bit, and check it.

    Every slice boundary, a state hash (CPU, RAM, devices) and the screen are compared with
    the recording; the first difference is one line naming the instruction count where it was
    seen (exit 6). Exit 0: the replay matched to the end (or to --until).
    """
    import shutil
    import tempfile

    from tradekernel.disktool import create_os_disk
    from tradekernel.emu.record import Recording, RecordingError, Replayer, replay_config
    from tradekernel.ui.ansi import screen_text
    from tradekernel.ui.session import make_pc

    until_ns = None if until is None else _virtual_ns(until)
    with tempfile.TemporaryDirectory(prefix="tk-replay-") as folder:
        try:
            recording = Recording.load(recording_path)
            disk = floppy = None
            if disk_path is not None:
                disk = Path(shutil.copyfile(disk_path, Path(folder) / "disk.img"))
            elif recording.header.get("scratch_disk"):
                disk = Path(folder) / "disk.img"
                create_os_disk(disk)
            if floppy_path is not None:
                floppy = Path(shutil.copyfile(floppy_path, Path(folder) / "floppy.img"))
            pc = make_pc(replay_config(recording, disk, floppy, load_path))
            if load_path is not None:
                snapshot.load(pc, load_path)
            replayer = Replayer(pc, recording)
        except (OSError, ValueError, DiskError, RecordingError, snapshot.SnapshotError) as error:
            raise click.ClickException(_one_line(error)) from error
        try:
            result = replayer.run(until_ns=until_ns, wall_timeout_s=timeout_s)
            # With --until the machine is held here, between slices, at that instant: where a
            # debugger (the GDB stub) attaches to `replayer.machine` before it is closed.
        finally:
            pc.close()
            pc.machine.close()
        if dump_screen:
            click.echo("\n".join(line.rstrip() for line in screen_text(pc.vga.text_screen())))
    instructions, ns = result.position
    if result.divergence is not None:
        click.echo(f"tk replay: {result.divergence}", err=True)
        sys.exit(EXIT_DIVERGED)
    if result.stop.reason == "timeout":
        click.echo(f"tk replay: gave up after {timeout_s:g} s at instruction {instructions}",
                   err=True)  # fmt: skip
        sys.exit(EXIT_TIMEOUT)
    where = "stopped at" if result.stop.reason == "until" else "matched the recording to"
    click.echo(
        f"tk replay: {where} instruction {instructions}, virtual {ns} ns "
        f"({result.boundaries} slice boundaries and {result.checks} state hashes compared)"
    )


def _virtual_ns(text: str) -> int:
    """'2.5s', '300ms', '40us', '1500000ns' or a plain number of ns."""
    units = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
    number, unit = text, "ns"
    for suffix in ("ns", "us", "ms", "s"):
        if text.endswith(suffix):
            number, unit = text[: -len(suffix)], suffix
            break
    try:
        value = float(number) * units[unit]
    except ValueError:
        value = math.nan
    if not math.isfinite(value):  # 'nan', 'inf', '1e400s' too: int() of them would raise
        raise click.BadParameter(f"{text!r} is not a time (e.g. 2.5s, 300ms)")
    if value < 0:
        raise click.BadParameter(f"{text!r}: a time is not negative")
    return int(value)


def _gdb_address(spec: str | None, default: bool, wait: bool) -> tuple[str, int] | None:
    """--gdb / -s / -S as QEMU takes them; one line for a bad combination or address."""
    if spec is not None and default:
        raise click.ClickException("use --gdb or -s, not both")
    if default:
        spec = f":{DEFAULT_GDB_PORT}"
    if spec is None:
        if wait:
            raise click.ClickException("-S waits for a GDB: give --gdb [HOST:]PORT or -s too")
        return None
    try:
        return parse_address(spec)
    except ValueError as error:
        raise click.ClickException(str(error)) from error


def _check_disk(path: Path | None) -> None:
    if path is None:
        return
    if not path.exists():
        raise click.ClickException(f"no disk image at {path} (make one: tk disk create)")
    if not path.is_file():
        raise click.ClickException(f"{path} is not a disk image file")
    size = path.stat().st_size
    if size < SECTOR:
        raise click.ClickException(
            f"{path} is {size} bytes: a disk image holds at least one {SECTOR}-byte sector "
            "(make one: tk disk create)"
        )


def _check_writable(path: Path, option: str) -> None:
    """Refuse before booting what would only fail after the whole run."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise click.ClickException(f"{option} {path}: is a directory")
    if not folder.is_dir():
        raise click.ClickException(f"{option} {path}: no directory {folder}")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise click.ClickException(f"{option} {path}: not writable")


def _one_line(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return f"{error.filename}: {error.strerror}" if error.filename else error.strerror
    return str(error).splitlines()[0] if str(error) else type(error).__name__


if __name__ == "__main__":
    main()
