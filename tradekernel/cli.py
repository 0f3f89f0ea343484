"""The `tk` command line: boot the machine (window or terminal) and manage disk images."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tradekernel import __version__
from tradekernel.disktool import disk
from tradekernel.ui.session import BootOptions, PlainText, Session, stdin_characters

EXIT_TIMEOUT = 3
EXIT_CRASH = 2


@click.group()
@click.version_option(__version__, prog_name="tk")
def main() -> None:
    """TradeKernel: a PC emulated in Python and the trading OS that runs on it."""


main.add_command(disk)


@main.command()
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
    type=click.IntRange(2, 3072),
    default=32,
    show_default=True,
    help="RAM in MiB.",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0),
    default=None,
    help="End a run that has not powered off after this many seconds (exit 3).",
)
@click.option(
    "--screenshot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the last screen to this PNG file.",
)
@click.option("--dump-screen", is_flag=True, help="Print the final 80x25 screen as text.")
def boot(headless: bool, deterministic: bool, disk_path: Path | None, floppy_path: Path | None,
         read_only: bool, memory_mib: int, timeout_s: float | None, screenshot: Path | None,
         dump_screen: bool) -> None:  # fmt: skip
    """Power on the TradeKernel PC and boot its disk."""
    if disk_path is not None and not disk_path.exists():
        raise click.ClickException(f"no disk image at {disk_path} (make one: tk disk create)")
    options = BootOptions(disk_path, memory_mib, deterministic, read_only, timeout_s, floppy_path)
    try:
        session = Session(options)
    except (OSError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    session.machine.channels.listen("log", lambda text: click.echo(text, err=True))
    try:
        if not headless:
            from tradekernel.ui.window import run_window

            info = run_window(session)
        elif sys.stdout.isatty() and sys.stdin.isatty():
            from tradekernel.ui.terminal import run_terminal

            info = run_terminal(session)
        else:
            printer = PlainText(sys.stdout)
            session.machine.channels.listen("com1-tx", printer.feed)
            session.feed_text_when_idle(stdin_characters(deterministic))
            info = session.run()
            sys.stdout.flush()
        if dump_screen:
            click.echo("\n".join(line.rstrip() for line in session.screen_lines()))
        if screenshot is not None:
            from tradekernel.ui.render import save_png

            save_png(session.pc.vga.text_screen(), str(screenshot))
    finally:
        session.close()
    if info.reason == "timeout":
        click.echo(f"tk: timed out after {timeout_s} s without a power-off", err=True)
        sys.exit(EXIT_TIMEOUT)
    if info.reason == "crash":
        sys.exit(EXIT_CRASH)


if __name__ == "__main__":
    main()
