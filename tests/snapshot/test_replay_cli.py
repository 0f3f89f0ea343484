"""`tk boot --record` and `tk replay` as a user runs them: piped input typed by the input pacer
(host timers of its own), the user NAT, a replay with neither, and a replay that must fail."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

from tradekernel.disktool import create_os_disk
from tradekernel.emu import record
from tradekernel.emu.record import Recording

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = "echo recorded run > /note.txt\nls /bin\nping 10.0.2.2 -c 1\ncat /note.txt\n"


def tk(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tradekernel.cli", *args], input=stdin, capture_output=True,
        text=True, timeout=180, cwd=ROOT, env=dict(os.environ, SDL_VIDEODRIVER="dummy"),
    )  # fmt: skip


def test_record_then_replay_from_the_command_line(tmp_path: Path) -> None:
    disk, pristine, recording = tmp_path / "d.img", tmp_path / "d0.img", tmp_path / "r.tkrec"
    create_os_disk(disk)
    shutil.copy(disk, pristine)
    booted = tk("boot", "--headless", "--record", str(recording), "--disk", str(disk),
                "--net", "user", "--dump-screen", "--timeout", "120", stdin=SCRIPT)  # fmt: skip
    assert booted.returncode == 0, booted.stderr
    assert "1 packets transmitted, 1 received" in booted.stdout or "bytes from" in booted.stdout
    replayed = tk("replay", str(recording), "--disk", str(pristine), "--dump-screen")
    assert replayed.returncode == 0, replayed.stderr
    assert "tk replay: matched the recording to instruction" in replayed.stdout
    screen = booted.stdout.splitlines()[-25:]  # (its first row follows the serial's prompt)
    replayed_screen = replayed.stdout.splitlines()[:25]
    assert replayed_screen[1:] == screen[1:] and screen[0].endswith(replayed_screen[0])
    assert pristine.read_bytes() != disk.read_bytes()  # the run wrote its disk...
    assert tk("replay", str(recording), "--disk", str(pristine)).returncode == 0  # ...not ours

    # a key changed in the file (sealed again, so only the replay can tell): exit 6, one line
    loaded = Recording.load(recording)
    body = bytearray(loaded.body)
    key = next(e for e in loaded.events() if e[0] == "K" and e[2] == ("r", True))
    flags = record.KEY_PRESSED | key[3]
    at = body.index(b"K" + struct.pack("<QQIBB", *key[1], flags, 1) + b"r") + 1 + record._K.size
    body[at] = ord("x")
    Recording(loaded.header, bytes(body)).save(tmp_path / "changed.tkrec")
    changed = tk("replay", str(tmp_path / "changed.tkrec"), "--disk", str(pristine))
    assert changed.returncode == 6
    line = [text for text in changed.stderr.splitlines() if text.startswith("tk replay:")]
    assert len(line) == 1 and "diverged at instruction" in line[0], changed.stderr

    # the wrong disk and a damaged file: one line, exit 1, nothing run
    wrong = tk("replay", str(recording), "--disk", str(disk))
    assert wrong.returncode == 1 and "not the recorded one" in wrong.stderr
    damaged = tmp_path / "damaged.tkrec"
    data = recording.read_bytes()
    damaged.write_bytes(data[:-40] + bytes(40))
    refused = tk("replay", str(damaged), "--disk", str(pristine))
    assert refused.returncode == 1 and "damaged recording" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
