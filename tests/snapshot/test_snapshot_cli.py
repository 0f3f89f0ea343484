"""`tk boot --save-state` and `--load-state` as a user runs them: a background job saved asleep
wakes in the loaded machine; a wrong disk, a damaged file and a missing --disk are one line."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tradekernel.disktool import create_os_disk
from tradekernel.emu import snapshot

ROOT = Path(__file__).resolve().parents[2]


def tk(key: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", **{snapshot.KEY_ENV: str(key)})
    command = [sys.executable, "-m", "tradekernel.cli", "boot", "--headless", "--net", "none",
               "--timeout", "120", *args]  # fmt: skip
    return subprocess.run(
        command, input=stdin, capture_output=True, text=True, timeout=180, cwd=ROOT, env=env
    )


def test_save_on_exit_then_load_and_go_on(tmp_path: Path) -> None:
    key, disk, state = tmp_path / "key", tmp_path / "d.img", tmp_path / "s.tksnap"
    create_os_disk(disk)
    pristine = tmp_path / "pristine.img"
    shutil.copy(disk, pristine)
    saved = tk(key, "--deterministic", "--disk", str(disk), "--save-state", str(state),
               stdin="echo kept across > /kept.txt\nnap 300 2 &\n")  # fmt: skip
    assert saved.returncode == 0, saved.stderr
    assert "nap: 300000 us" not in saved.stdout  # the job was still asleep at the save
    loaded = tk(key, "--disk", str(disk), "--load-state", str(state),
                stdin="cat /kept.txt\nwait\n")  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.count("nap: 300000 us") == 2 and "kept across" in loaded.stdout
    assert "Done" in loaded.stdout

    wrong = tk(key, "--disk", str(pristine), "--load-state", str(state))
    assert wrong.returncode == 1
    assert "disk image other than the one saved" in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1
    damaged = tmp_path / "damaged.tksnap"
    data = state.read_bytes()
    damaged.write_bytes(data[:200] + bytes([data[200] ^ 0x40]) + data[201:])
    refused = tk(key, "--disk", str(disk), "--load-state", str(damaged))
    assert refused.returncode == 1 and "HMAC" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    no_disk = tk(key, "--save-state", str(tmp_path / "x.tksnap"))
    assert no_disk.returncode == 1 and "--save-state needs --disk" in no_disk.stderr


def test_a_recording_that_starts_from_a_snapshot_replays_from_it(tmp_path: Path) -> None:
    """`--record` with `--load-state`: the recording names the snapshot, `tk replay` loads it
    first (--load-state again) and the run comes out the same; without it, one line."""
    key, disk, state = tmp_path / "key", tmp_path / "d.img", tmp_path / "s.tksnap"
    create_os_disk(disk)
    saved = tk(key, "--deterministic", "--disk", str(disk), "--save-state", str(state),
               stdin="echo before the snapshot > /b.txt\nnap 300 2 &\n")  # fmt: skip
    assert saved.returncode == 0, saved.stderr
    at_save = tmp_path / "at-save.img"
    shutil.copy(disk, at_save)
    recording = tmp_path / "r.tkrec"
    recorded = tk(key, "--disk", str(disk), "--load-state", str(state), "--record",
                  str(recording), stdin="cat /b.txt\nwait\necho recorded after\n")  # fmt: skip
    assert recorded.returncode == 0, recorded.stderr
    assert "before the snapshot" in recorded.stdout and "nap: 300000 us" in recorded.stdout
    replay = [sys.executable, "-m", "tradekernel.cli", "replay", str(recording), "--disk",
              str(at_save)]  # fmt: skip
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", **{snapshot.KEY_ENV: str(key)})
    run = functools.partial(subprocess.run, capture_output=True, text=True, timeout=180,
                            cwd=ROOT, env=env)  # fmt: skip
    replayed = run([*replay, "--load-state", str(state)])
    assert replayed.returncode == 0, replayed.stderr
    assert "tk replay: matched the recording to instruction" in replayed.stdout
    missing = run(replay)
    assert missing.returncode == 1
    assert "recorded with a snapshot to start from (--load-state)" in missing.stderr


def test_snapshot_save_from_the_shell_into_snapshot_dir_then_load_state(tmp_path: Path) -> None:
    key, disk, folder = tmp_path / "key", tmp_path / "d.img", tmp_path / "snaps"
    create_os_disk(disk)
    folder.mkdir()
    saved = tk(key, "--deterministic", "--disk", str(disk), "--snapshot-dir", str(folder),
               stdin="echo from the shell > /s.txt\nsnapshot save mid\n")  # fmt: skip
    assert saved.returncode == 0, saved.stderr
    assert "snapshot mid: saved (mid.tksnap on the host)" in saved.stdout
    # (what the restored machine then does is test_snapshot.py's; its first piped line is
    # tests/cli/test_piped_input.py's)
    loaded = tk(key, "--disk", str(disk), "--load-state", str(folder / "mid.tksnap"))
    assert loaded.returncode == 0, loaded.stderr
    assert "snapshot mid: this machine was restored from it" in loaded.stdout
    scratch = tk(key, "--snapshot-dir", str(folder))
    assert scratch.returncode == 1 and "--snapshot-dir needs --disk" in scratch.stderr
