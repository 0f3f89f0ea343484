"""File commands through the whole path (keys typed -> kernel -> FAT on the ATA disk -> screen),
with the disk image checked afterwards by real peers: fsck.fat and mtools."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.peers import peer
from tests.system.harness import SECOND, BootedPc

PARTITION_OFFSET = 1048576  # partition 1 starts at sector 2048
CLUSTER = 512  # the repository image's FAT16 volume has 512-byte clusters


# ---- driving the shell ----------------------------------------------------------------------
def run(tk: BootedPc, line: str, virtual_ns: int = 5 * SECOND) -> list[str]:
    """What `line` printed (BootedPc.output)."""
    return tk.output(line, virtual_ns)


def prompt_line(tk: BootedPc) -> str:
    return [line for line in tk.lines() if line][-1]


# ---- the peers --------------------------------------------------------------------------------
def mtools(tool: str, *args: str) -> str:
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1", MTOOLS_NO_VFAT="0")
    result = subprocess.run([peer(tool), *args], capture_output=True, env=env, check=False)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode("latin-1")


def mtype(disk: Path, path: str) -> bytes:
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    result = subprocess.run(
        [peer("mtype"), "-i", f"{disk}@@{PARTITION_OFFSET}", f"::{path}"],
        capture_output=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def mdir_names(disk: Path, path: str) -> set[str]:
    """Long names in a directory, from `mdir -b` (one full path a line)."""
    listing = mtools("mdir", "-b", "-i", f"{disk}@@{PARTITION_OFFSET}", f"::{path}")
    return {line.rstrip("/").rsplit("/", 1)[-1] for line in listing.splitlines() if line}


def mcopy_in(disk: Path, data: bytes, path: str, tmp_path: Path) -> None:
    source = tmp_path / "mcopy-source"
    source.write_bytes(data)
    mtools("mcopy", "-o", "-i", f"{disk}@@{PARTITION_OFFSET}", str(source), f"::{path}")


def fsck(disk: Path, tmp_path: Path) -> str:
    """fsck.fat -n -v on a copy of partition 1; asserts it found nothing to fix."""
    partition = tmp_path / "partition.img"
    with open(disk, "rb") as image:
        image.seek(PARTITION_OFFSET)
        partition.write_bytes(image.read())
    result = subprocess.run(
        [peer("fsck.fat"), "-n", "-v", str(partition)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "differ" not in result.stdout and "Free cluster summary" not in result.stdout
    return result.stdout


@pytest.fixture
def tk(tmp_path: Path) -> BootedPc:
    return BootedPc(tmp_path).boot()


# ---- the seed workflow ------------------------------------------------------------------------
def test_seed_workflow_and_the_peers_agree(tk: BootedPc, tmp_path: Path) -> None:
    assert run(tk, "mkdir strategies") == []
    assert run(tk, 'echo "buy low" > strategies/s1.txt') == []
    assert run(tk, "cat strategies/s1.txt") == ["buy low"]
    assert run(tk, "ls") == [  # with /dev and /proc, the kernel's mounts
        "bin/         etc/         proc/        tmp/",
        "dev/         home/        strategies/",
    ]
    [entry] = run(tk, "ls -l strategies")
    assert re.fullmatch(r"----a +8 2026-01-02 09:3\d s1\.txt", entry)
    row = tk.lines().index("bin/         etc/         proc/        tmp/")
    assert tk.attribute_at(row, 0) == 0x09  # directories in light blue
    assert mtype(tk.disk, "/strategies/s1.txt") == b"buy low\n"
    assert mdir_names(tk.disk, "/strategies") == {"s1.txt"}
    fsck(tk.disk, tmp_path)


def test_cd_pwd_and_the_prompt(tk: BootedPc) -> None:
    assert run(tk, "mkdir -p desk/alpha/beta") == []
    run(tk, "cd desk/alpha")
    assert prompt_line(tk) == "tk:/desk/alpha>"
    assert run(tk, "pwd") == ["/desk/alpha"]
    run(tk, "cd ..")
    assert run(tk, "pwd") == ["/desk"]
    run(tk, "cd ALPHA/./beta")  # FAT names match in any case; the prompt shows them as stored
    assert prompt_line(tk) == "tk:/desk/alpha/beta>"
    run(tk, "cd ../../..")
    assert prompt_line(tk) == "tk:/>"
    run(tk, "cd desk")
    run(tk, "cd")
    assert run(tk, "pwd") == ["/"]
    run(tk, "cd /desk/alpha")
    assert run(tk, 'echo "relative" > note.txt') == []
    assert run(tk, "cat /desk/alpha/note.txt") == ["relative"]
    assert run(tk, "cd nowhere") == ["cd: nowhere: no such file or directory"]
    assert run(tk, "cd note.txt") == ["cd: note.txt: not a directory"]
    assert prompt_line(tk) == "tk:/desk/alpha>"


def test_copy_move_remove_and_append(tk: BootedPc, tmp_path: Path) -> None:
    run(tk, "mkdir src dst")
    run(tk, "echo one > src/a.txt")
    assert run(tk, "echo two >> src/a.txt") == []
    assert run(tk, "cat src/a.txt") == ["one", "two"]
    assert run(tk, "cp src/a.txt src/b.txt") == []
    assert run(tk, "cp src/a.txt dst") == []  # into a directory
    assert run(tk, "mv src/b.txt dst/renamed.txt") == []  # across directories
    assert run(tk, "ls src") == ["a.txt"]
    assert run(tk, "ls dst") == ["a.txt        renamed.txt"]
    assert run(tk, "rmdir src") == ["rmdir: src: directory not empty"]
    assert run(tk, "rm src") == ["rm: src: is a directory"]
    assert run(tk, "cp src dst") == ["cp: src: is a directory (use cp -r)"]
    assert run(tk, "cp -r src copy") == []
    assert run(tk, "mv copy dst") == []  # a directory into a directory
    assert run(tk, "cp src/a.txt SRC/A.TXT") == [
        "cp: src/a.txt: source and destination are the same file"
    ]
    assert run(tk, "rm -r src") == []
    assert run(tk, "ls") == ["bin/   dev/   dst/   etc/   home/  proc/  tmp/"]
    for name in ("a.txt", "renamed.txt", "copy/a.txt"):
        assert mtype(tk.disk, f"/dst/{name}") == b"one\ntwo\n"
    assert mdir_names(tk.disk, "/") == {"bin", "dst", "etc", "home", "tmp"}
    fsck(tk.disk, tmp_path)


def test_removing_the_cwd_moves_the_prompt_up(tk: BootedPc) -> None:
    run(tk, "mkdir -p /old/inner")
    run(tk, "cd /old/inner")
    assert run(tk, "rm -r /old") == []
    assert prompt_line(tk) == "tk:/>"
    run(tk, "mkdir -p /a/b")
    run(tk, "cd /a/b")
    assert run(tk, "mv /a/b /moved") == []
    assert prompt_line(tk) == "tk:/a>"


def test_cat_keeps_the_prompt_off_an_unterminated_line(tmp_path: Path) -> None:
    tk = BootedPc(tmp_path)
    mcopy_in(tk.disk, b"no line end", "/raw.txt", tmp_path)
    tk.boot()
    assert run(tk, "cat raw.txt") == ["no line end"]
    assert prompt_line(tk) == "tk:/>"
    run(tk, "cat raw.txt > copy.txt")
    assert mtype(tk.disk, "/copy.txt") == b"no line end"  # redirected: bytes as they were


def test_touch_creates_and_stamps(tk: BootedPc, tmp_path: Path) -> None:
    assert run(tk, "touch empty.txt") == []
    run(tk, "echo data > full.txt")
    [before] = run(tk, "ls -l full.txt")
    tk.run_to_stop(125 * SECOND)  # two minutes of virtual time later
    assert run(tk, "touch full.txt empty.txt") == []
    [after] = run(tk, "ls -l full.txt")
    assert before != after and before.split()[:2] == after.split()[:2]
    assert run(tk, "cat full.txt") == ["data"]
    assert mtype(tk.disk, "/empty.txt") == b""
    assert mtype(tk.disk, "/full.txt") == b"data\n"
    fsck(tk.disk, tmp_path)


def test_hexdump_matches_the_host_hexdump(tmp_path: Path) -> None:
    tk = BootedPc(tmp_path)
    data = b"TradeKernel\x00\x01\x02" + bytes(48) + bytes(range(0x70, 0x90)) + b"tail"
    mcopy_in(tk.disk, data, "/tmp/blob.bin", tmp_path)  # before boot: the OS caches the FAT
    tk.boot()
    host = subprocess.run(
        [peer("hexdump"), "-C", str(tmp_path / "mcopy-source")], capture_output=True, text=True
    ).stdout.splitlines()
    assert run(tk, "hexdump /tmp/blob.bin") == host
    assert len(host) > 4 and "*" in host  # the identical zero lines were squeezed
    window = subprocess.run(
        [peer("hexdump"), "-C", "-s", "70", "-n", "20", str(tmp_path / "mcopy-source")],
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    assert run(tk, "hexdump -s 70 -n 0x14 /tmp/blob.bin") == window


def test_df_and_du_agree_with_fsck_and_mdir(tk: BootedPc, tmp_path: Path) -> None:
    run(tk, "mkdir -p data/deep")
    run(tk, "echo 1234567 > data/seven.txt")
    run(tk, "cp /data/seven.txt /data/deep/copy.txt")
    run(tk, "hexdump /data/seven.txt > /data/deep/dump.txt")
    header, volume, clusters = run(tk, "df")
    assert header.split() == ["Filesystem", "Type", "1K-blocks", "Used", "Available", "Use%",
                              "Mounted", "on"]  # fmt: skip
    report = fsck(tk.disk, tmp_path)
    files, used, total = map(int, re.search(r"(\d+) files, (\d+)/(\d+) clusters", report).groups())
    assert clusters == f"{total} clusters of {CLUSTER} bytes: {used} used, {total - used} free"
    fields = volume.split()
    assert fields[:2] == ["ata0p1", "FAT16"]
    assert int(fields[2]) == total * CLUSTER // 1024
    assert int(fields[3]) == used * CLUSTER // 1024
    assert int(fields[4]) == (total - used) * CLUSTER // 1024
    # du -b: file bytes per directory; mdir's per-directory byte totals say the same.
    dump_size = len(mtype(tk.disk, "/data/deep/dump.txt"))
    assert run(tk, "du -b /data") == [f"{8 + dump_size}\t/data/deep", f"{16 + dump_size}\t/data"]
    listing = mtools("mdir", "-/", "-i", f"{tk.disk}@@{PARTITION_OFFSET}", "::/data")
    sizes = [int(n.replace(" ", "")) for n in re.findall(r"files +([\d ]+) bytes", listing)]
    assert sizes[:2] == [8, 8 + dump_size]
    # du in KiB counts whole clusters: three small files, one cluster each.
    assert run(tk, "du -s data") == [f"{-(-3 * CLUSTER // 1024)}\tdata"]
    run(tk, "cd data")
    assert run(tk, "du") == ["1\t./deep", "2\t."]


def test_errors_are_one_clear_line(tk: BootedPc) -> None:
    assert run(tk, "rm /nope") == ["rm: /nope: no such file or directory"]
    assert run(tk, "cat missing.txt") == ["cat: missing.txt: no such file or directory"]
    assert run(tk, "ls /nope/deeper") == ["ls: /nope/deeper: no such file or directory"]
    assert run(tk, "mkdir bin") == ["mkdir: bin: file exists"]
    assert run(tk, "mkdir 'bad|name'") == [
        "mkdir: bad|name: invalid argument ('bad|name': character '|' is not allowed in a FAT name)"
    ]
    assert run(tk, "echo x > 'what?.txt'") == [
        "sh: what?.txt: invalid argument ('what?.txt': character '?' is not allowed in a FAT name)"
    ]
    assert run(tk, "echo x > /nope/file.txt") == ["sh: /nope/file.txt: no such file or directory"]
    assert run(tk, "rmdir /") == ["rmdir: /: the root directory cannot be removed"]
    assert run(tk, "mv bin bin/inner")[0].startswith("mv: bin: invalid argument (cannot move")
    assert run(tk, "cp a b c") == ["cp: c: not a directory"]
    assert run(tk, "rm -x foo") == ["rm: unknown option -x", "usage: rm [-r] [-f] PATH..."]
    assert run(tk, "echo >") == ["sh: syntax error: > needs a file name"]
    assert run(tk, 'echo ">" "a > b"') == ["> a > b"]  # quoted: no redirection
    assert not any("Traceback" in line or "internal error" in line for line in tk.lines())


def test_any_command_output_can_be_redirected(tk: BootedPc) -> None:
    run(tk, "ls > listing.txt")
    run(tk, "version >> listing.txt")
    lines = run(tk, "cat listing.txt")
    assert lines[:2] == [  # made first
        "bin/         etc/         listing.txt  tmp/",
        "dev/         home/        proc/",
    ]
    assert lines[2].startswith("TradeKernel 0.1.0 on the TradeKernel PC")
    assert run(tk, "cat nothing.txt > out.txt") == ["cat: nothing.txt: no such file or directory"]
    assert run(tk, "cat out.txt") == []  # created (and empty) before cat ran, as sh does


def test_a_file_from_mcopy_is_read_inside_and_survives_reboot(
    tmp_path: Path,
) -> None:
    tk = BootedPc(tmp_path)
    mcopy_in(tk.disk, b"placed by mcopy\nsecond line\n", "/etc/from-host.txt", tmp_path)
    tk.boot()
    assert run(tk, "cat /etc/from-host.txt") == ["placed by mcopy", "second line"]
    run(tk, "echo kept > /home/kept.txt")
    tk.type("reboot\n")
    tk.run_until(lambda: "kept" not in tk.text() and "tk:/>" in tk.text(), 10 * SECOND)
    assert run(tk, "cat /home/kept.txt") == ["kept"]
    assert run(tk, "cat /etc/from-host.txt") == ["placed by mcopy", "second line"]


def test_without_a_filesystem_the_commands_say_so(tmp_path: Path) -> None:
    tk = BootedPc(tmp_path)
    with open(tk.disk, "r+b") as image:  # wipe the partition's boot sector
        image.seek(PARTITION_OFFSET)
        image.write(bytes(512))
    tk.boot()
    assert run(tk, "ls") == ["ls: no filesystem is mounted"]
    assert run(tk, "echo x > f") == ["sh: cannot redirect output: no filesystem is mounted"]
    assert run(tk, "pwd") == ["/"]


# ---- random operations against a model ---------------------------------------------------------
FOLDERS = ["/w", "/w/d1"]  # made first; operations work inside them
FILE_NAMES = st.sampled_from(["a", "A", "long name.txt"])  # few names: operations meet
DIRECTORY_NAMES = st.sampled_from(["e", "f g"])  # never a file's name, so mv stays file-to-file
PLACES = st.sampled_from(FOLDERS)
TEXT = st.text("xyz 01", max_size=12)
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("mkdir"), PLACES, DIRECTORY_NAMES),
        st.tuples(st.just(">"), PLACES, FILE_NAMES, TEXT),
        st.tuples(st.just(">>"), PLACES, FILE_NAMES, TEXT),
        st.tuples(st.just("rm"), PLACES, FILE_NAMES),
        st.tuples(st.just("mv"), PLACES, FILE_NAMES, PLACES, FILE_NAMES),
    ),
    min_size=3,
    max_size=8,
)


def _find(model: dict[str, str | None], path: str) -> str | None:
    """The model's key for `path`: FAT matches names without regard to case."""
    return next((key for key in model if key.casefold() == path.casefold()), None)


def apply_to_model(model: dict[str, str | None], operation: tuple) -> str:
    """The shell line for `operation`, after applying its effect to `model` (path as stored ->
    text, or None for a directory); an operation the OS refuses leaves the model alone."""
    kind, folder, name, *rest = operation
    path = f"{folder}/{name}"
    key = _find(model, path)
    if kind == "mkdir":
        if key is None:
            model[path] = None
        return f"mkdir '{path}'"
    if kind in (">", ">>"):
        old = model[key] if key is not None and kind == ">>" else ""
        model[key or path] = old + rest[0] + "\n"  # an existing file keeps its stored name
        return f"echo '{rest[0]}' {kind} '{path}'"
    if kind == "rm":
        model.pop(key, None)
        return f"rm '{path}'"
    target = f"{rest[0]}/{rest[1]}"
    if key is not None:
        target_key = _find(model, target)
        if target_key is not None and target_key != key:
            del model[target_key]  # replaced
        model[target] = model.pop(key)  # the moved entry takes the name as typed
    return f"mv '{path}' '{target}'"


@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(operations=OPERATIONS)
@example(  # append to an existing file under another case; mv onto a file; case-only rename
    operations=[
        (">", "/w", "long name.txt", "one"),
        (">>", "/w", "LONG NAME.TXT", "two"),
        (">", "/w/d1", "a", "x"),
        ("mv", "/w", "long name.txt", "/w/d1", "a"),
        ("mv", "/w/d1", "a", "/w/d1", "A"),
        ("rm", "/w", "a"),
    ]
)
def test_random_operations_match_a_model(tmp_path: Path, operations: list[tuple]) -> None:
    example = tmp_path / f"example-{len(list(tmp_path.iterdir()))}"  # hypothesis reuses tmp_path
    example.mkdir()
    tk = BootedPc(example).boot()
    run(tk, "mkdir -p /w/d1")
    model: dict[str, str | None] = {}
    for operation in operations:
        run(tk, apply_to_model(model, operation))
    fsck(tk.disk, example)
    for path, text in model.items():
        if text is not None:
            assert mtype(tk.disk, path).decode() == text, path
    for folder in FOLDERS + [path for path, text in model.items() if text is None]:
        expected = {
            p.rsplit("/", 1)[1] for p in list(model) + FOLDERS if p.rsplit("/", 1)[0] == folder
        }
        assert mdir_names(tk.disk, folder) == expected, folder
