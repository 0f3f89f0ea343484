"""`tk` as a user meets it: one-line errors checked before booting, exit codes, -h, --timeout 0,
the real minimum of --memory, and piped input (none lost, Ctrl-C, power-off at its end)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tradekernel.cli import MIN_MEMORY_MIB, main
from tradekernel.emu.pc import PcConfig
from tradekernel.ui.session import make_pc
from tradekernel.ui.supervisor import EXIT_CRASH, EXIT_ERROR, EXIT_HUNG, EXIT_TIMEOUT

from .conftest import run_tk


def _one_line_error(result, *words: str) -> None:  # noqa: ANN001
    assert result.exit_code == EXIT_ERROR, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for word in words:
        assert word in lines[0]


def test_disk_create_in_a_missing_directory_is_one_line() -> None:
    result = CliRunner().invoke(main, ["disk", "create", "/nonexistent/dir/x.img"])
    _one_line_error(result, "/nonexistent/dir/x.img")


def test_disk_get_to_a_missing_directory_is_one_line(tmp_path: Path) -> None:
    image = tmp_path / "d.img"
    CliRunner().invoke(main, ["disk", "create", str(image), "--size", "8"])
    result = CliRunner().invoke(main, ["disk", "get", str(image), "/bin/hello", "/nonexistent/x"])
    _one_line_error(result, "/nonexistent/x")


def test_booting_an_image_smaller_than_a_sector_is_one_line(tmp_path: Path) -> None:
    for size in (9, 300, 511):  # issue 17 item 4 (a 9-byte text file), issue 15 item 9
        image = tmp_path / f"small-{size}.img"
        image.write_bytes(b"x" * size)
        result = CliRunner().invoke(main, ["boot", "--headless", "--disk", str(image)])
        _one_line_error(result, str(image), f"{size} bytes")


def test_a_screenshot_path_that_cannot_be_written_is_refused_before_booting(
    tmp_path: Path,
) -> None:
    result = CliRunner().invoke(
        main, ["boot", "--headless", "--screenshot", "/nonexistent/s.png", "--disk", "/nope.img"]
    )
    _one_line_error(result, "/nonexistent/s.png")  # refused before the disk is even looked at
    result = CliRunner().invoke(main, ["boot", "--headless", "--screenshot", str(tmp_path)])
    _one_line_error(result, "is a directory")


def test_memory_below_the_real_minimum_is_refused() -> None:
    result = CliRunner().invoke(main, ["boot", "--headless", "--memory", str(MIN_MEMORY_MIB - 1)])
    assert result.exit_code == 2
    assert f"{MIN_MEMORY_MIB}<=x" in result.output and "Traceback" not in result.output


def test_the_minimum_is_real_one_less_is_no_machine(tmp_path: Path) -> None:
    """Why the bound is where it is: the PC cannot be built with MIN-1 MiB; at MIN the OS
    boots and runs programs (its kernel heap scales down with the RAM)."""
    from tradekernel.disktool import create_os_disk

    disk = tmp_path / "os.img"
    create_os_disk(disk)
    with pytest.raises(ValueError, match="memory must be"):
        make_pc(PcConfig(disk=disk, ram_mib=MIN_MEMORY_MIB - 1, deterministic=True))
    result = run_tk(
        ["boot", "--headless", "--memory", str(MIN_MEMORY_MIB), "--disk", str(disk)],
        tmp_path,
        stdin=b"hello\nshutdown\n",
    )
    assert result.returncode == 0, result.stderr
    assert b"Hello" in result.stdout or b"hello" in result.stdout.split(b"tk:/> hello")[-1]


def test_dash_h_is_help() -> None:
    for args in (["-h"], ["boot", "-h"], ["disk", "-h"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0 and "Usage:" in result.output


def test_boot_help_documents_every_exit_code_and_the_end_of_piped_input() -> None:
    text = CliRunner().invoke(main, ["boot", "--help"]).output
    for code in (EXIT_ERROR, EXIT_TIMEOUT, EXIT_CRASH, EXIT_HUNG):
        assert f"  {code}    " in text, text
    assert "SIGINT 130" in text and "SIGTERM 143" in text
    assert "End of input" in text or "end of input" in text


def test_timeout_zero_means_no_timeout(tmp_path: Path) -> None:
    result = run_tk(["boot", "--headless", "--timeout", "0"], tmp_path, stdin=b"shutdown\n")
    assert result.returncode == 0, result.stderr


def test_a_machine_crash_has_its_own_exit_code(tmp_path: Path) -> None:
    """A boot sector that halts with interrupts off: the machine can never wake again."""
    image = tmp_path / "halt.img"
    image.write_bytes(b"\xfa\xf4" + bytes(508) + b"\x55\xaa")
    result = run_tk(["boot", "--headless", "--disk", str(image)], tmp_path)
    assert result.returncode == EXIT_CRASH, result.stderr
    assert b"halted with interrupts disabled" in result.stderr


@pytest.mark.parametrize("until", ["nan", "inf", "1e400s", "-infms"])
def test_replay_until_not_a_finite_time_is_a_usage_error(tmp_path: Path, until: str) -> None:
    result = CliRunner().invoke(main, ["replay", str(tmp_path / "none.tkr"), "--until", until])
    assert result.exit_code == 2, result.output
    assert "is not a time" in result.output and "Traceback" not in result.output


def test_a_recording_that_cannot_be_written_at_the_end_is_one_line(tmp_path: Path) -> None:
    """--record is checked before booting, but its file is written after the run (through
    FILE.tmp): a failure then is a line on stderr, not a traceback after the whole session."""
    record = tmp_path / "run.tkrec"
    Path(f"{record}.tmp").mkdir()  # the writer's temporary name is taken: the write fails
    result = run_tk(["boot", "--headless", "--record", str(record)], tmp_path, b"shutdown\n")
    assert b"Traceback" not in result.stderr, result.stderr
    assert f"tk: --record {record}: ".encode() in result.stderr, result.stderr
    assert result.returncode == 0, result.stderr
