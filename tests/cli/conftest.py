"""Running the real `tk` command: as a subprocess (signals, exit codes, the watchdog) with its
own temporary directory, so the scratch disks it makes and leaves can be counted."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TK = Path(sys.executable).with_name("tk")
HERE = Path(__file__).resolve().parent
PROMPT = b"tk:/> "
DEADLINE_S = 30.0  # a hung test run ends; the runs themselves take a few seconds


@pytest.fixture
def scratch_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "tmp"
    folder.mkdir()
    return folder


def tk_env(scratch_dir: Path) -> dict[str, str]:
    return {**os.environ, "TMPDIR": str(scratch_dir), "SDL_VIDEODRIVER": "dummy"}


def run_tk(
    args: list[str], scratch_dir: Path, stdin: bytes = b"", timeout: float = DEADLINE_S
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(TK), *args],
        input=stdin,
        capture_output=True,
        env=tk_env(scratch_dir),
        timeout=timeout,
        check=False,
    )


class Booted:
    """A `tk boot --headless` subprocess on pipes, driven like a user's script."""

    def __init__(self, command: list[str], scratch_dir: Path) -> None:
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=tk_env(scratch_dir),
        )
        self.output = b""

    def wait_for(self, text: bytes, deadline_s: float = DEADLINE_S) -> None:
        end = time.monotonic() + deadline_s
        assert self.process.stdout is not None
        while text not in self.output:
            assert time.monotonic() < end, f"no {text!r} in {self.output[-500:]!r}"
            ready, _, _ = select.select([self.process.stdout], [], [], 0.1)
            if ready:
                chunk = os.read(self.process.stdout.fileno(), 65536)
                assert chunk or text in self.output, f"ended before {text!r}: {self.output!r}"
                self.output += chunk

    def type(self, text: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text)
        self.process.stdin.flush()

    def signal(self, number: int) -> None:
        self.process.send_signal(number)

    def finish(self, timeout: float = DEADLINE_S) -> tuple[int, bytes, bytes]:
        """(exit code, all stdout, stderr) once it has ended."""
        out, err = self.process.communicate(timeout=timeout)
        return self.process.returncode, self.output + out, err

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def booted(scratch_dir: Path):
    started: list[Booted] = []

    def boot(*args: str, driver: str | None = None) -> Booted:
        command = [str(TK)] if driver is None else [sys.executable, str(HERE / driver)]
        process = Booted([*command, "boot", "--headless", *args], scratch_dir)
        started.append(process)
        return process

    yield boot
    for process in started:
        process.kill()
