"""Piped input to `tk boot --headless` (issue 17 item 2): nothing typed ahead is lost, a Ctrl-C
byte interrupts the foreground program, typing goes on beside a busy background job, and the end
of input powers off once the shell has taken it all."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.peers import peer
from tradekernel.disktool import create_os_disk
from tradekernel.emu import snapshot
from tradekernel.ui.pipe import TYPEAHEAD_BUDGET, Unit, UnitSplitter, line_receipt

from .conftest import TK, run_tk, tk_env


def _boot(tmp_path: Path, script: bytes, *args: str):  # noqa: ANN202
    result = run_tk(["boot", "--headless", "--timeout", "60", *args], tmp_path, stdin=script)
    assert result.returncode == 0, (result.returncode, result.stdout[-2000:], result.stderr)
    return result.stdout.decode(), result.stderr.decode()


def test_more_than_the_typeahead_cap_is_typed_ahead_and_nothing_is_lost(tmp_path: Path) -> None:
    lines = [f"echo line {number}" for number in range(1, 41)]
    script = "\n".join(["nap 100", *lines, "shutdown", ""]).encode()
    assert len(script) > 256 + 100  # more than the kernel's typeahead holds while nap runs
    out, _ = _boot(tmp_path, script)
    printed = [line for line in out.splitlines() if line.startswith("line ")]
    assert printed == [f"line {number}" for number in range(1, 41)]
    assert out.rstrip().endswith("powering off.")


def test_a_line_typed_while_a_data_diskette_waits_for_a_key_is_typed_again(
    tmp_path: Path,
) -> None:
    """A data diskette in A: stops the boot at its "press any key" (as on a PC): the first
    line's first key goes on with the boot and the rest is lost when the kernel resets the
    keyboard. A line that got no receipt before the shell's first prompt is typed again."""
    floppy = tmp_path / "data.img"
    subprocess.run([peer("mkfs.fat"), "-C", str(floppy), "1440"], check=True,
                   capture_output=True)  # fmt: skip
    out, _ = _boot(tmp_path, b"echo first\nshutdown\n", "--floppy", str(floppy))
    assert "\nfirst\n" in out


def test_a_ctrl_c_byte_interrupts_the_foreground_program(tmp_path: Path) -> None:
    out, _ = _boot(tmp_path, b"spin 100000\n\x03echo x\nshutdown\n", "--timeout", "30")
    assert "^C" in out
    assert "\nx\n" in out


def test_typing_goes_on_beside_a_busy_background_job(tmp_path: Path) -> None:
    out, _ = _boot(tmp_path, b"spin 100000 &\necho after\njobs\nshutdown\n", "--timeout", "30")
    assert "\nafter\n" in out and "Running" in out


def test_end_of_input_without_shutdown_powers_off_at_the_idle_prompt(tmp_path: Path) -> None:
    out, _ = _boot(tmp_path, b"echo hi\nnap 300\necho done\n", "--timeout", "30")
    assert "\nhi\n" in out and "\ndone\n" in out  # the nap did not count as idle


def test_a_line_longer_than_the_budget_arrives_whole(tmp_path: Path) -> None:
    word = "abcdefghij" * 40  # 400 characters: typed in pieces into the shell's line buffer
    out, _ = _boot(tmp_path, f"nap 50\necho {word}\n".encode())
    assert f"\n{word}\n" in out


def test_a_line_with_a_character_no_key_types_is_refused_whole(tmp_path: Path) -> None:
    out, err = _boot(tmp_path, "echo héllo\necho ok\n".encode())
    assert "hllo" not in out and "\nok\n" in out
    assert "input line 1 not typed: 'é' (U+00E9)" in err


def test_deterministic_runs_of_the_same_input_are_identical(tmp_path: Path) -> None:
    script = b"nap 20\necho a\necho b\nuptime\n"
    first, _ = _boot(tmp_path, script, "--deterministic")
    second, _ = _boot(tmp_path, script, "--deterministic")
    assert first == second and "\nb\n" in first


def test_units_and_receipts() -> None:
    refused: list[str] = []
    splitter = UnitSplitter(refused.append)
    units = splitter.feed("ls\r\nab\bc\tx\n\x03par")
    assert units == [Unit("ls\n", "ls"), Unit("ab\bc\tx\n", "ac x"), Unit("\x03", "^C")]
    assert splitter.feed("tial", at_end=True) == [Unit("partial", None)]
    assert line_receipt("\x1b[Aecho\n") is None and refused == []
    assert TYPEAHEAD_BUDGET < 256


def test_a_closed_stdout_powers_off_instead_of_stopping_the_machine(tmp_path: Path) -> None:
    """`tk boot --headless | head -3`: the reader goes away in the middle of `help`."""
    import subprocess

    from .conftest import TK, tk_env

    result = subprocess.run(
        f"printf 'help\\nhelp\\n' | {TK} boot --headless --timeout 30 | head -3; "
        "echo status=${PIPESTATUS[1]}",
        shell=True, executable="/bin/bash", capture_output=True, env=tk_env(tmp_path),
        timeout=60, check=False,
    )  # fmt: skip
    assert result.stdout.decode().splitlines()[-1] == "status=0", result.stderr
    assert b"MACHINE STOPPED" not in result.stderr and b"Traceback" not in result.stderr


def test_a_machine_restored_with_load_state_takes_the_first_piped_enter(tmp_path: Path) -> None:
    """A machine saved by `snapshot save` was saved with that line's Enter still down: the
    restored keyboard held it, and the first piped Enter was dropped ("echo xecho y")."""
    disk, snaps = tmp_path / "d.img", tmp_path / "snaps"
    create_os_disk(disk)
    snaps.mkdir()
    env = {**tk_env(tmp_path), snapshot.KEY_ENV: str(tmp_path / "key")}
    common = [str(TK), "boot", "--headless", "--net", "none", "--timeout", "60", "--disk",
              str(disk)]  # fmt: skip
    saved = subprocess.run([*common, "--deterministic", "--snapshot-dir", str(snaps)],
                           input=b"snapshot save mid\n", capture_output=True, env=env,
                           timeout=120, check=False)  # fmt: skip
    assert saved.returncode == 0, saved.stderr
    loaded = subprocess.run([*common, "--load-state", str(snaps / "mid.tksnap")],
                            input=b"echo x\necho y\n", capture_output=True, env=env,
                            timeout=120, check=False)  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    out = loaded.stdout.decode()
    assert "snapshot mid: this machine was restored from it" in out
    assert "tk:/> echo x\nx\ntk:/> echo y\ny\n" in out, out


def test_end_of_input_powers_off_when_a_background_job_wrote_after_the_prompt(
    tmp_path: Path,
) -> None:
    """Each of the job's lines takes the prompt's place on COM1 and the tty writes the prompt
    again below it, as on the screen: the pacer sees the shell at its prompt and powers off,
    instead of waiting for a prompt on COM1 until the timeout."""
    out, _ = _boot(tmp_path, b"nap 200 2 &\n", "--deterministic", "--timeout", "20")
    # exit status 0: powered off (the erased prompt stays in plain text: CR and escapes dropped)
    assert out.endswith("tk:/> nap: 200000 us\ntk:/> nap: 200000 us\ntk:/> ")
