"""The shell's file commands: ls, cd, pwd, mkdir, rmdir, rm, cp, mv, cat, touch, hexdump, df,
du and edit, over the mounted FAT volumes as one tree (kernel/fs/storage.py `Volumes`: the
system disk's volume at `kernel.fs`, and below its mount point the data floppy that `mount fd0
DIR` attaches to the kernel's mount table; `umount DIR` writes it out and detaches it).

ls, cat and hexdump also read what the other mounts serve (/dev, /proc) through the VFS
(`kernel.vfs`: stat, open, directory_entries, read_data), the way a program sees them. A node
without read_data (the tty, whose reads may wait) is not read: one line names it. At most
NODE_READ_LIMIT bytes are read from a node (/dev/zero never ends), and a line says when the
output stopped there. cp writes a file into a device through the kernel-side write
(write_data: `cp FILE /dev/null`); the other disk commands (du, edit, mv, rm, ...) on a /dev or
/proc path say in one line that it is not on a disk (storage.NotOnDisk). `ls` of a FAT
directory also lists the mount points in it (/dev and /proc in /).

Contract: every path argument goes through `shell.resolve_path` (relative to the shell's cwd).
A filesystem error (an OSError carrying an errno) becomes one line, `cmd: PATH: <errno text>`,
and the command goes on with its next argument and ends with status 1; bad options raise
UsageError. A command that changes the volume ends with `fs.flush()`, so the change is on the
disk (the ATA driver writes through to the image file) when the prompt comes back. With no
volume mounted every command that needs one says so. `edit` starts the full-screen editor
(kernel/shell/editor.py) and returns; the shell prompt waits until the editor quits.
"""

from __future__ import annotations

import errno
import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from stat import S_IFLNK, filemode

from tradekernel.kernel.drivers.console import COLUMNS
from tradekernel.kernel.fs.fat import IsDirectory, NoEntry, NotDirectory, Stat
from tradekernel.kernel.fs.fat_dir import (
    ATTR_ARCHIVE,
    ATTR_HIDDEN,
    ATTR_READ_ONLY,
    ATTR_SYSTEM,
    check_long_name,
)
from tradekernel.kernel.fs.fatfile import FatVolume
from tradekernel.kernel.fs.storage import (
    FLOPPY_DEVICE,
    FloppyMount,
    NotOnDisk,
    Volumes,
    mount_floppy,
    unmount_floppy,
)
from tradekernel.kernel.fs.vfs import (
    O_DIRECTORY,
    O_RDONLY,
    O_WRONLY,
    S_IFCHR,
    S_IFIFO,
    S_IFMT,
    SEEK_SET,
    FileStat,
    MountTable,
    OpenFile,
)
from tradekernel.kernel.shell.editor import Editor
from tradekernel.kernel.shell.shell import Output, Shell, UsageError, error_text

COPY_CHUNK = 64 * 1024
EDIT_LIMIT = 1 << 20  # the editor holds the whole file in memory as lines
HEXDUMP_WIDTH = 16
DEVICE_NAME = "ata0p1"  # what the kernel mounts: partition 1 of the primary master disk
DIRECTORY_COLOUR = 0x09  # light blue, as ls --color shows directories
NODE_READ_LIMIT = 64 * 1024  # bytes cat/hexdump read of a /dev or /proc node (/dev/zero is endless)
NODE_READ_CHUNK = 4096  # bytes asked of a node's read_data at a time

FileHandler = Callable[[Volumes, list[str], Output], int]


class FileTooLarge(OSError):
    """The file is more than the editor will load."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.EFBIG, message)


class NodeUnreadable(OSError):
    """A node with no read into the kernel (read_data): a terminal or pipe, whose reads may
    wait (the shell never sleeps on one), or a device that only copies to user memory."""


@dataclass(frozen=True)
class _Spec:
    usage: str
    help: str
    mutates: bool = False  # flush the volume afterwards and check the cwd still exists
    needs_fs: bool = True
    reads_nodes: bool = False  # also reads /dev and /proc, which need no FAT volume


@dataclass(frozen=True)
class _Entry:
    """One name as ls shows it, from a FAT Stat or from a VFS node's FileStat."""

    name: str
    is_dir: bool
    size: str  # "<DIR>", bytes, or a device's "major, minor"
    mtime: datetime | None
    mode: str  # FAT's d/rhsa attributes, or a node's kind and permissions (crw-rw-rw-)
    link: str = ""  # a symbolic link's target (/proc/PID/exe), shown by ls -l after "->"

    @classmethod
    def of_fat(cls, name: str, stat: Stat) -> _Entry:
        size = "<DIR>" if stat.is_dir else str(stat.size)
        return cls(name, stat.is_dir, size, stat.mtime, _attributes(stat))

    @classmethod
    def of_node(cls, name: str, stat: FileStat) -> _Entry:
        if stat.is_dir:
            size = "<DIR>"
        elif stat.mode & S_IFMT == S_IFCHR:
            size = f"{stat.rdev >> 8}, {stat.rdev & 0xFF}"
        else:
            size = str(stat.size)
        mtime = datetime.fromtimestamp(stat.mtime, UTC).replace(tzinfo=None) if stat.mtime else None
        return cls(name, stat.is_dir, size, mtime, filemode(stat.mode))


# name -> spec; the handler is the FileCommands method named "_" + name.
_COMMANDS = {
    "ls": _Spec(
        "ls [-l] [PATH...]", "list a directory (-l: sizes, dates, attributes)", reads_nodes=True
    ),
    "cd": _Spec("cd [DIR]", "change the current directory (no DIR: the root)", reads_nodes=True),
    "pwd": _Spec("pwd", "print the current directory", needs_fs=False),
    "mkdir": _Spec("mkdir [-p] DIR...", "make directories (-p: parents too)", mutates=True),
    "rmdir": _Spec("rmdir DIR...", "remove empty directories", mutates=True),
    "rm": _Spec("rm [-r] [-f] PATH...", "remove files (-r: and directories)", mutates=True),
    "cp": _Spec("cp [-r] SOURCE... DEST", "copy files (into DEST if a directory)", mutates=True),
    "mv": _Spec("mv SOURCE... DEST", "rename or move (into DEST if a directory)", mutates=True),
    "cat": _Spec("cat FILE...", "print files", reads_nodes=True),
    "touch": _Spec("touch FILE...", "create empty files or update their times", mutates=True),
    "hexdump": _Spec(
        "hexdump [-C] [-s OFFSET] [-n LENGTH] FILE",
        "hex and ASCII of a file (as hexdump -C)",
        reads_nodes=True,
    ),
    "df": _Spec("df", "size, used and free space of the volume"),
    "du": _Spec("du [-s] [-b] [PATH...]", "disk usage per directory (-s: totals only)"),
    "edit": _Spec("edit FILE", "full-screen text editor (new files allowed)"),
    "mount": _Spec(
        "mount [fd0 DIR]", "mount the diskette in A: on DIR (no arguments: list)", needs_fs=False
    ),
    "umount": _Spec("umount DIR", "write out and detach the volume mounted on DIR", needs_fs=False),
}


def register_file_commands(shell: Shell, kernel) -> None:  # noqa: ANN001 - Kernel
    """Add the file commands to `shell`; they find the volume at `kernel.fs` when run."""
    FileCommands(shell, kernel).register()


def _options(args: list[str], allowed: str) -> tuple[set[str], list[str]]:
    """Single-letter flags (bundled like -rf, ended by --) and the operands after them."""
    flags: set[str] = set()
    operands: list[str] = []
    parsing = True
    for arg in args:
        if parsing and arg == "--":
            parsing = False
        elif parsing and arg.startswith("-") and len(arg) > 1:
            for letter in arg[1:]:
                if letter not in allowed:
                    raise UsageError(f"unknown option -{letter}")
                flags.add(letter)
        else:
            operands.append(arg)
    return flags, operands


def _parse_count(text: str, what: str) -> int:
    """A non-negative byte count in decimal or 0x hex, as hexdump -s/-n take it."""
    try:
        value = int(text, 0)
    except ValueError:
        raise UsageError(f"{what} must be a number, not {text!r}") from None
    if value < 0:
        raise UsageError(f"{what} must not be negative")
    return value


def _allocated(size: int, cluster_bytes: int) -> int:
    """Bytes a file of `size` bytes occupies on the volume: whole clusters."""
    return -(-size // cluster_bytes) * cluster_bytes


def _kib(size: int) -> int:
    return -(-size // 1024)


def _attributes(stat: Stat) -> str:
    """'d' or '-', then FAT's read-only, hidden, system and archive bits as r h s a."""
    kind = "d" if stat.is_dir else "-"
    bits = zip("rhsa", (ATTR_READ_ONLY, ATTR_HIDDEN, ATTR_SYSTEM, ATTR_ARCHIVE), strict=True)
    return kind + "".join(letter if stat.attributes & bit else "-" for letter, bit in bits)


def hexdump_lines(data: bytes, start: int = 0) -> Iterator[str]:
    """`hexdump -C` lines for `data` found at offset `start`: a run of identical lines is
    shown once followed by '*', and the last line is the offset after the data."""
    previous = None
    squeezing = False
    for position in range(0, len(data), HEXDUMP_WIDTH):
        chunk = data[position : position + HEXDUMP_WIDTH]
        if chunk == previous and len(chunk) == HEXDUMP_WIDTH:
            if not squeezing:
                yield "*"
                squeezing = True
            continue
        previous, squeezing = chunk, False
        left = " ".join(f"{byte:02x}" for byte in chunk[:8])
        right = " ".join(f"{byte:02x}" for byte in chunk[8:])
        text = "".join(chr(byte) if 0x20 <= byte < 0x7F else "." for byte in chunk)
        yield f"{start + position:08x}  {left:<23}  {right:<23}  |{text}|"
    if data:
        yield f"{start + len(data):08x}"


def is_node(vfs: MountTable, full: str) -> bool:
    """Whether `full` is on a mount other than a FAT volume (/dev, /proc): the VFS serves it."""
    try:
        filesystem, _ = vfs.resolve(full)
    except OSError:
        return False  # no mount covers it: the FAT commands say why
    return not isinstance(filesystem, FatVolume)


def read_node(
    vfs: MountTable,
    full: str,
    skip: int = 0,
    count: int | None = None,
    limit: int = NODE_READ_LIMIT,
) -> tuple[bytes, bool]:
    """Up to `count` bytes (None: to the end) from offset `skip` of a node the VFS serves,
    never more than `limit`: (the bytes, whether more was left unread). Only nodes with a
    read into the kernel (read_data, whose reads never wait) are read; NodeUnreadable names
    the others."""
    stat = vfs.stat(full)
    if stat.is_dir:
        raise IsDirectory(f"{full}: is a directory")
    file = vfs.open(full, O_RDONLY)
    try:
        if type(file).read_data is OpenFile.read_data:
            kind = {S_IFCHR: "a device", S_IFIFO: "a pipe"}.get(stat.mode & S_IFMT, "a file")
            raise NodeUnreadable(
                f"{kind} the shell cannot read (its reads reach a program's memory or"
                f" may wait; a program can read it: run cat {full})"
            )
        try:
            file.seek(skip, SEEK_SET)
            skip = 0
        except OSError as error:
            if error.errno != errno.ESPIPE:
                raise
            if skip > limit:  # a device cannot seek: its bytes are read past
                raise OSError(errno.EINVAL, f"{full}: the shell skips at most"
                              f" {limit} bytes of a device") from None  # fmt: skip
        wanted = limit if count is None else min(count, limit)
        data = bytearray()
        while len(data) < skip + wanted:
            piece = file.read_data(min(NODE_READ_CHUNK, skip + wanted - len(data)))
            if not piece:
                break
            data += piece
        cut = (
            (count is None or count > wanted)
            and len(data) == skip + wanted
            and bool(file.read_data(1))
        )
    finally:
        file.close()
    return bytes(data[skip:]), cut


class FileCommands:
    def __init__(self, shell: Shell, kernel) -> None:  # noqa: ANN001 - Kernel
        self.shell = shell
        self.kernel = kernel
        self.volumes = Volumes(kernel.vfs, lambda: kernel.fs)
        shell.volumes = self.volumes  # output redirection (`> FILE`) resolves the same way
        self.floppy: FloppyMount | None = None

    def register(self) -> None:
        for name, spec in _COMMANDS.items():
            self.shell.register(name, self._handler(name, spec), spec.usage, spec.help)

    def _handler(self, name: str, spec: _Spec) -> Callable[[list[str], Output], int]:
        method: FileHandler = getattr(self, "_" + name)

        def run(args: list[str], out: Output) -> int:
            fs = self.volumes
            if (
                not fs.any_mounted()
                and spec.needs_fs
                and not (spec.reads_nodes and self._names_a_node(args))
            ):
                out.error(f"{name}: no filesystem is mounted")
                return 1
            try:
                return method(fs, args, out)
            except OSError as error:
                out.error(f"{name}: {error_text(error)}")
                return 1
            finally:
                if spec.mutates:
                    self._sync(fs, name, out)

        return run

    # ---- shared helpers -------------------------------------------------------------------
    def _sync(self, fs: Volumes, name: str, out: Output) -> None:
        """Push the change to the disk; if the cwd went away (rm -r, mv), move up to the
        nearest directory that still exists."""
        try:
            fs.flush()
        except OSError as error:
            out.error(f"{name}: writing to the disk: {error_text(error)}")
        cwd = self.shell.cwd
        while cwd != "/" and not (self._is_dir(fs, cwd) or self._is_node_dir(cwd)):
            cwd = posixpath.dirname(cwd)
        self.shell.cwd = cwd

    def _is_node_dir(self, full: str) -> bool:
        """Whether `full` is a directory the VFS serves (the shell may stand in /proc/1)."""
        try:
            return is_node(self.kernel.vfs, full) and self.kernel.vfs.stat(full).is_dir
        except OSError:
            return False

    @staticmethod
    def _is_dir(fs: Volumes, path: str) -> bool:
        try:
            return fs.stat(path).is_dir
        except OSError:
            return False

    @staticmethod
    def _fail(out: Output, name: str, path: str, error: OSError) -> int:
        if isinstance(error, NotOnDisk):
            path = error.path  # which of the operands (mv's target) is not on a disk
        out.error(f"{name}: {path}: {error_text(error)}")
        return 1

    # ---- nodes the VFS serves (/dev, /proc) ------------------------------------------------
    def _names_a_node(self, args: list[str]) -> bool:
        return any(is_node(self.kernel.vfs, self.shell.resolve_path(arg)) for arg in args)

    def _node_entries(self, full: str) -> list[_Entry]:
        """A VFS directory's names, each with its own status; a symbolic link (/proc/PID/cwd)
        as itself, with its target. One whose stat fails, such as /proc/self, which only a
        process can follow, shows as an unknown kind."""
        vfs = self.kernel.vfs
        directory = vfs.open(full, O_RDONLY | O_DIRECTORY)
        try:
            names = directory.directory_entries()
        finally:
            directory.close()
        entries = []
        for name, is_dir in names:
            child = posixpath.join(full, name)
            try:
                target = vfs.readlink(child)
            except OSError:
                target = ""
            if target:
                link_mode = filemode(S_IFLNK | 0o777)
                entries.append(_Entry(name, False, str(len(target)), None, link_mode, target))
                continue
            try:
                stat = vfs.stat(child)
            except OSError:
                entries.append(_Entry(name, is_dir, "?", None, "?" * 10))
                continue
            entries.append(_Entry.of_node(name, stat))
        return entries

    def _mount_points_in(self, full: str, entries: list[_Entry]) -> list[_Entry]:
        """The mounts of other filesystems directly in FAT directory `full` (/dev and /proc in
        /), as their root directories show: no FAT entry names them (a floppy's mount point is
        one already). One whose root has no status shows as an unknown kind."""
        names = {entry.name.casefold() for entry in entries}
        mounts = []
        for name in self.kernel.vfs.points_in(full):
            if name.casefold() in names:
                continue
            try:
                stat = self.kernel.vfs.stat(posixpath.join(full, name))
                mounts.append(_Entry.of_node(name, stat))
            except OSError:
                mounts.append(_Entry(name, True, "?", None, "?" * 10))
        return mounts

    def _canonical(self, fs: Volumes, path: str) -> str:
        """The absolute path of an existing file with each name spelled as stored (FAT
        matches names without regard to case, and short 8.3 aliases too)."""
        canonical = "/"
        for part in path.strip("/").split("/"):
            if part:
                canonical = posixpath.join(canonical, fs.stat(posixpath.join(canonical, part)).name)
        return canonical

    def _copy_file(self, fs: Volumes, source: str, target: str) -> None:
        with fs.open(source, "r") as reader, fs.open(target, "w") as writer:
            while chunk := reader.read(COPY_CHUNK):
                writer.write(chunk)

    # ---- directories ----------------------------------------------------------------------
    def _ls(self, fs: Volumes, args: list[str], out: Output) -> int:
        flags, paths = _options(args, "l")
        status = 0
        files: list[_Entry] = []
        directories: list[tuple[str, list[_Entry]]] = []
        for path in paths or ["."]:
            full = self.shell.resolve_path(path)
            try:
                if is_node(self.kernel.vfs, full):
                    node = _Entry.of_node(path, self.kernel.vfs.stat(full))
                    if node.is_dir:
                        directories.append((path, self._node_entries(full)))
                    else:
                        files.append(node)
                    continue
                stat = fs.stat(full)
                if stat.is_dir:
                    entries = [_Entry.of_fat(stat.name, stat) for stat in fs.scandir(full)]
                    directories.append((path, entries + self._mount_points_in(full, entries)))
                else:
                    files.append(_Entry.of_fat(path, stat))
            except OSError as error:
                status = self._fail(out, "ls", path, error)
        show = self._long_listing if "l" in flags else self._short_listing
        if files:
            show(files, out)
        for number, (path, entries) in enumerate(directories):
            if len(paths) > 1:
                out.line(("\n" if files or number else "") + f"{path}:")
            show(entries, out)
        return status

    @staticmethod
    def _sorted(entries: list[_Entry]) -> list[_Entry]:
        return sorted(entries, key=lambda entry: entry.name.casefold())

    def _short_listing(self, entries: list[_Entry], out: Output) -> None:
        """Names in columns, down then across as ls does; directories end in '/'."""
        entries = self._sorted(entries)
        if not entries:
            return
        names = [entry.name + ("/" if entry.is_dir else "") for entry in entries]
        width = max(len(name) for name in names) + 2
        columns = max(1, (COLUMNS - 1) // width)  # a full 80-column row would wrap by itself
        rows = -(-len(names) // columns)
        for row in range(rows):
            cells = list(range(row, len(names), rows))
            for position, index in enumerate(cells):
                last = position == len(cells) - 1
                text = names[index] if last else f"{names[index]:<{width}}"
                out.write(text, DIRECTORY_COLOUR if entries[index].is_dir else None)
            out.line()

    def _long_listing(self, entries: list[_Entry], out: Output) -> None:
        """One entry a line: attributes, size (<DIR> for directories), modification time."""
        for entry in self._sorted(entries):
            when = f"{entry.mtime:%Y-%m-%d %H:%M}" if entry.mtime else " " * 16
            out.write(f"{entry.mode} {entry.size:>10} {when} ")
            if entry.is_dir:
                out.line(entry.name + "/", DIRECTORY_COLOUR)
            else:
                out.line(entry.name + (f" -> {entry.link}" if entry.link else ""))

    def _cd(self, fs: Volumes, args: list[str], out: Output) -> int:
        if len(args) > 1:
            raise UsageError("too many arguments")
        target = args[0] if args else "/"
        full = self.shell.resolve_path(target)
        try:
            if is_node(self.kernel.vfs, full):  # /dev, /proc: names are exact, no aliases
                if not self.kernel.vfs.stat(full).is_dir:
                    raise NotDirectory(f"{full}: not a directory")
                self.shell.cwd = full
                return 0
            if not fs.stat(full).is_dir:
                raise NotDirectory(f"{full}: not a directory")
            self.shell.cwd = self._canonical(fs, full)
        except OSError as error:
            return self._fail(out, "cd", target, error)
        return 0

    def _pwd(self, _fs: Volumes | None, args: list[str], out: Output) -> int:
        if args:
            raise UsageError(f"unexpected argument {args[0]!r}")
        out.line(self.shell.cwd)
        return 0

    def _mkdir(self, fs: Volumes, args: list[str], out: Output) -> int:
        flags, paths = _options(args, "p")
        if not paths:
            raise UsageError("no directory named")
        status = 0
        for path in paths:
            full = self.shell.resolve_path(path)
            try:
                if "p" in flags:
                    self._make_parents(fs, full)
                else:
                    fs.mkdir(full)
            except OSError as error:
                status = self._fail(out, "mkdir", path, error)
        return status

    @staticmethod
    def _make_parents(fs: Volumes, full: str) -> None:
        """mkdir -p: every missing directory along `full`; existing directories are fine."""
        prefix = "/"
        for part in full.strip("/").split("/"):
            if not part:
                continue
            prefix = posixpath.join(prefix, part)
            try:
                if not fs.stat(prefix).is_dir:
                    raise NotDirectory(f"{prefix}: not a directory")
            except NoEntry:
                fs.mkdir(prefix)

    def _remove_each(self, command: str, paths: list[str], out: Output, remove,  # noqa: ANN001
                     ignore_missing: bool = False) -> int:  # fmt: skip
        """Run `remove(full_path)` for each argument; the root is refused, errors reported."""
        status = 0
        for path in paths:
            full = self.shell.resolve_path(path)
            if full == "/":
                out.error(f"{command}: /: the root directory cannot be removed")
                status = 1
                continue
            try:
                remove(full)
            except NoEntry as error:
                if not ignore_missing:
                    status = self._fail(out, command, path, error)
            except OSError as error:
                status = self._fail(out, command, path, error)
        return status

    def _rmdir(self, fs: Volumes, args: list[str], out: Output) -> int:
        _, paths = _options(args, "")
        if not paths:
            raise UsageError("no directory named")
        return self._remove_each("rmdir", paths, out, fs.rmdir)

    def _rm(self, fs: Volumes, args: list[str], out: Output) -> int:
        flags, paths = _options(args, "rRf")
        recursive = bool(flags & {"r", "R"})
        if not paths:
            raise UsageError("no file named")

        def remove(full: str) -> None:
            if not fs.stat(full).is_dir:
                fs.remove(full)
            elif recursive:
                self._remove_tree(fs, full)
            else:
                raise IsDirectory(f"{full}: is a directory")

        return self._remove_each("rm", paths, out, remove, ignore_missing="f" in flags)

    @staticmethod
    def _remove_tree(fs: Volumes, top: str) -> None:
        """Files first, then directories deepest first (each is empty by then)."""
        tree = list(fs.walk(top))
        for directory, _, files in tree:
            for stat in files:
                fs.remove(posixpath.join(directory, stat.name))
        for directory, _, _ in reversed(tree):
            fs.rmdir(directory)

    # ---- copying and moving ---------------------------------------------------------------
    def _targets(
        self, fs: Volumes, sources: list[str], destination: str
    ) -> list[tuple[str, str, str]]:
        """(source as typed, source path, target path) for cp and mv: into `destination` when
        it is a directory, else `destination` itself (then only one source is allowed)."""
        full = self.shell.resolve_path(destination)
        into = self._is_dir(fs, full)
        if len(sources) > 1 and not into:
            raise NotDirectory(f"{destination}: not a directory")
        pairs = []
        for source in sources:
            source_full = self.shell.resolve_path(source)
            target = posixpath.join(full, posixpath.basename(source_full)) if into else full
            pairs.append((source, source_full, target))
        return pairs

    def _same_file(self, fs: Volumes, source: str, target: str) -> bool:
        try:
            return self._canonical(fs, source) == self._canonical(fs, target)
        except NoEntry:
            return False

    def _source_target_pairs(self, fs: Volumes, command: str, operands: list[str],
                             out: Output) -> list[tuple[str, str, str]] | None:  # fmt: skip
        """cp/mv operands as (typed, source, target) triples; None once an error is shown."""
        if len(operands) < 2:
            raise UsageError("need a source and a destination")
        try:
            return self._targets(fs, operands[:-1], operands[-1])
        except OSError as error:
            self._fail(out, command, operands[-1], error)
            return None

    def _cp(self, fs: Volumes, args: list[str], out: Output) -> int:
        flags, operands = _options(args, "rR")
        pairs = self._source_target_pairs(fs, "cp", operands, out)
        if pairs is None:
            return 1
        status = 0
        for typed, source, target in pairs:
            try:
                if is_node(self.kernel.vfs, source):
                    self._copy_node(fs, source, target)
                elif is_node(self.kernel.vfs, target):
                    status = self._copy_into_node(fs, typed, source, target, out) or status
                elif self._same_file(fs, source, target):
                    out.error(f"cp: {typed}: source and destination are the same file")
                    status = 1
                elif not fs.stat(source).is_dir:
                    self._copy_file(fs, source, target)
                elif not flags & {"r", "R"}:
                    out.error(f"cp: {typed}: is a directory (use cp -r)")
                    status = 1
                elif (target + "/").casefold().startswith(source.rstrip("/").casefold() + "/"):
                    out.error(f"cp: {typed}: cannot copy a directory into itself")
                    status = 1
                else:
                    self._copy_tree(fs, source, target)
            except OSError as error:
                status = self._fail(out, "cp", typed, error)
        return status

    def _copy_node(self, fs: Volumes, source: str, target: str) -> None:
        """A /proc file or a device's bytes into a file, whole or not at all (EFBIG past the
        shell's NODE_READ_LIMIT: /dev/zero never ends)."""
        data, cut = read_node(self.kernel.vfs, source)
        if cut:
            raise OSError(errno.EFBIG, f"{source}: the shell copies at most"
                          f" {NODE_READ_LIMIT} bytes of a device")  # fmt: skip
        with fs.open(target, "w") as writer:
            writer.write(data)

    def _copy_into_node(
        self, fs: Volumes, typed: str, source: str, target: str, out: Output
    ) -> int:
        """A file's bytes written into a device (`cp FILE /dev/null`, `/dev/tty`) through the
        VFS (write_data); a node that takes no writes is named in the one line."""
        if fs.stat(source).is_dir:
            raise IsDirectory(f"{typed}: is a directory")
        try:
            node = self.kernel.vfs.open(target, O_WRONLY)
        except OSError as error:
            return self._fail(out, "cp", target, error)
        try:
            with fs.open(source, "r") as reader:  # its errors name the source (the caller's)
                while chunk := reader.read(COPY_CHUNK):
                    try:
                        node.write_data(chunk)
                    except OSError as error:
                        return self._fail(out, "cp", target, error)
        finally:
            node.close()
        return 0

    def _copy_tree(self, fs: Volumes, source: str, target: str) -> None:
        for directory, _, files in list(fs.walk(source)):
            relative = directory[len(source) :].lstrip("/")
            destination = posixpath.join(target, relative) if relative else target
            if not self._is_dir(fs, destination):
                fs.mkdir(destination)
            for stat in files:
                self._copy_file(
                    fs, posixpath.join(directory, stat.name), posixpath.join(destination, stat.name)
                )

    def _mv(self, fs: Volumes, args: list[str], out: Output) -> int:
        _, operands = _options(args, "")
        pairs = self._source_target_pairs(fs, "mv", operands, out)
        if pairs is None:
            return 1
        status = 0
        for typed, source, target in pairs:
            if source == "/":
                out.error("mv: /: the root directory cannot be moved")
                status = 1
                continue
            try:
                try:
                    fs.rename(source, target)
                except OSError as error:
                    if error.errno != errno.EXDEV or fs.stat(source).is_dir:
                        raise
                    self._copy_file(fs, source, target)  # another volume: copy, then remove
                    fs.remove(source)
            except OSError as error:
                status = self._fail(out, "mv", typed, error)
        return status

    # ---- contents -------------------------------------------------------------------------
    def _cat(self, fs: Volumes, args: list[str], out: Output) -> int:
        _, paths = _options(args, "")
        if not paths:
            raise UsageError("no file named")
        status = 0
        for path in paths:
            full = self.shell.resolve_path(path)
            cut = False
            try:
                if is_node(self.kernel.vfs, full):
                    data, cut = read_node(self.kernel.vfs, full)
                else:
                    data = fs.read_file(full)
            except OSError as error:
                status = self._fail(out, "cat", path, error)
                continue
            text = data.decode("utf-8", "surrogateescape")  # bytes survive `cat a > b`
            out.write(text)
            if out.is_terminal and text and not text.endswith("\n"):
                out.line()  # keep the prompt off the file's last line
            if cut:
                out.error(f"cat: {path}: stopped after {NODE_READ_LIMIT} bytes (the shell's limit)")
        return status

    def _touch(self, fs: Volumes, args: list[str], out: Output) -> int:
        _, paths = _options(args, "")
        if not paths:
            raise UsageError("no file named")
        status = 0
        for path in paths:
            full = self.shell.resolve_path(path)
            try:
                self._touch_one(fs, full)
            except OSError as error:
                status = self._fail(out, "touch", path, error)
        return status

    @staticmethod
    def _touch_one(fs: Volumes, full: str) -> None:
        """Create the file, or stamp it with the current time. FatFs stamps a file when it is
        written, so an existing file gets its last byte written back (an empty one grows to
        one byte and back): the contents stay as they were."""
        if not fs.exists(full):
            fs.open(full, "a").close()
            return
        if fs.stat(full).is_dir:
            raise IsDirectory(f"{full}: is a directory (FAT keeps no directory times to update)")
        with fs.open(full, "r+") as handle:
            if handle.size == 0:
                handle.truncate(1)
                handle.truncate(0)
                return
            handle.seek(handle.size - 1)
            last = handle.read(1)
            handle.seek(handle.size - 1)
            handle.write(last)

    def _hexdump(self, fs: Volumes, args: list[str], out: Output) -> int:
        start, length, paths = 0, None, []
        items = iter(args)
        for arg in items:
            if arg in ("-s", "-n"):
                value = next(items, None)
                if value is None:
                    raise UsageError(f"{arg} needs a number")
                if arg == "-s":
                    start = _parse_count(value, "the offset")
                else:
                    length = _parse_count(value, "the length")
            elif arg != "-C":
                paths.append(arg)
        if len(paths) != 1:
            raise UsageError("name one file")
        full = self.shell.resolve_path(paths[0])
        cut = False
        try:
            if is_node(self.kernel.vfs, full):
                data, cut = read_node(self.kernel.vfs, full, start, length)
            else:
                with fs.open(full, "r") as handle:
                    handle.seek(start)
                    data = handle.read(-1 if length is None else length)
        except OSError as error:
            return self._fail(out, "hexdump", paths[0], error)
        for line in hexdump_lines(data, start):
            out.line(line)
        if cut:
            out.error(f"hexdump: {paths[0]}: stopped after {NODE_READ_LIMIT} bytes (use -n)")
        return 0

    # ---- space ----------------------------------------------------------------------------
    def _df(self, fs: Volumes, args: list[str], out: Output) -> int:
        if args:
            raise UsageError(f"unexpected argument {args[0]!r}")
        mounted = [(DEVICE_NAME, "/")] if self.kernel.fs is not None else []
        if self.floppy is not None:
            mounted.append((FLOPPY_DEVICE, self.floppy.point))
        out.line("Filesystem  Type   1K-blocks       Used  Available  Use%  Mounted on", 0x0F)
        totals = []
        for device, point in mounted:
            stats = fs.statfs(point)
            used_clusters = stats.total_clusters - stats.free_clusters
            used = used_clusters * stats.cluster_size
            percent = -(-used * 100 // stats.total_bytes) if stats.total_bytes else 0
            out.line(
                f"{device:<11} FAT{stats.fat_type:<3} {stats.total_bytes // 1024:>9} "
                f"{used // 1024:>10} {stats.free_bytes // 1024:>10} {percent:>4}%  {point}"
            )
            totals.append(
                f"{point}: {stats.total_clusters} clusters of {stats.cluster_size} bytes:"
                f" {used_clusters} used, {stats.free_clusters} free"
            )
        for line in totals:
            out.line(line if len(totals) > 1 else line.split(": ", 1)[1])
        return 0

    # ---- mounting -------------------------------------------------------------------------
    def _mount(self, fs: Volumes, args: list[str], out: Output) -> int:
        """`mount fd0 DIR`: probe drive A: and mount its FAT volume on DIR, an existing
        directory; with no arguments, list what is mounted."""
        if not args:
            if self.kernel.fs is not None:
                out.line(f"{DEVICE_NAME} on / type vfat")
            if self.floppy is not None:
                mode = "ro" if self.floppy.fs.read_only else "rw"
                out.line(f"{FLOPPY_DEVICE} on {self.floppy.point} type vfat ({mode})")
            return 0
        if len(args) != 2:
            raise UsageError("name a device and a directory")
        device, target = args
        if device != FLOPPY_DEVICE:
            out.error(f"mount: {device}: no such device (drive A: is {FLOPPY_DEVICE})")
            return 1
        if self.floppy is not None:
            out.error(f"mount: {FLOPPY_DEVICE} is already mounted on {self.floppy.point}")
            return 1
        point = self.shell.resolve_path(target)
        if point == "/" or (self.kernel.fs is not None and not self._is_dir(fs, point)):
            out.error(f"mount: {target}: not a directory to mount on (mkdir it first)")
            return 1
        kernel = self.kernel
        now = lambda: kernel.clock.wall_time().replace(tzinfo=None)  # noqa: E731 - FAT is local
        try:
            mount = mount_floppy(kernel.ports, kernel.memory, kernel.mm.heap, now, point)
        except OSError as error:
            out.error(f"mount: {FLOPPY_DEVICE}: {error.strerror}")  # the driver's own words
            return 1
        try:
            kernel.vfs.mount(point, FatVolume(mount.fs))
        except OSError as error:
            unmount_floppy(mount, kernel.mm.heap)
            out.error(f"mount: {target}: {error_text(error)}")
            return 1
        self.floppy = mount
        self.volumes.mounted(point)
        out.line(mount.describe())
        return 0

    def _umount(self, fs: Volumes, args: list[str], out: Output) -> int:
        if len(args) != 1:
            raise UsageError("name the directory (or fd0)")
        mount = self.floppy
        target = args[0]
        if mount is None or (
            target != FLOPPY_DEVICE and self.shell.resolve_path(target) != mount.point
        ):
            out.error(f"umount: {target}: not mounted")
            return 1
        if mount.fs.busy():
            out.error(f"umount: {mount.point}: files on it are open")
            return 1
        if self.shell.cwd == mount.point or self.shell.cwd.startswith(mount.point + "/"):
            self.shell.cwd = posixpath.dirname(mount.point)  # as if cd'd out of it first
        self.kernel.vfs.unmount(mount.point)
        self.volumes.unmounted(mount.point, mount.fs)
        self.floppy = None
        try:
            unmount_floppy(mount, self.kernel.mm.heap)
        except OSError as error:
            out.error(f"umount: writing {FLOPPY_DEVICE}: {error_text(error)}")
            return 1
        return 0

    def _du(self, fs: Volumes, args: list[str], out: Output) -> int:
        """Per directory, the space its files take in whole clusters (KiB, rounded up), or
        with -b their sizes in bytes; a directory's own clusters are not counted."""
        flags, paths = _options(args, "sb")
        cluster_bytes = fs.statfs().cluster_size
        measure = (lambda size: size) if "b" in flags else (lambda s: _allocated(s, cluster_bytes))
        show = (lambda total: total) if "b" in flags else _kib
        status = 0
        for path in paths or ["."]:
            full = self.shell.resolve_path(path)
            try:
                stat = fs.stat(full)
                if not stat.is_dir:
                    out.line(f"{show(measure(stat.size))}\t{path}")
                    continue
                totals = self._tree_totals(fs, full, measure)
            except OSError as error:
                status = self._fail(out, "du", path, error)
                continue
            shown = totals[-1:] if "s" in flags else totals
            for directory, total in shown:
                relative = directory[len(full) :].lstrip("/")
                out.line(f"{show(total)}\t{posixpath.join(path, relative) if relative else path}")
        return status

    def _tree_totals(
        self, fs: Volumes, directory: str, measure: Callable[[int], int]
    ) -> list[tuple[str, int]]:
        """(directory, total of everything below it) in du's order: each directory after the
        directories inside it, `directory` itself last."""
        rows: list[tuple[str, int]] = []
        total = 0
        for stat in fs.scandir(directory):
            if stat.is_dir:
                below = self._tree_totals(fs, posixpath.join(directory, stat.name), measure)
                rows.extend(below)
                total += below[-1][1]
            else:
                total += measure(stat.size)
        rows.append((directory, total))
        return rows

    # ---- the editor -----------------------------------------------------------------------
    def _edit(self, fs: Volumes, args: list[str], out: Output) -> int:
        if len(args) != 1:
            raise UsageError("name one file")
        full = self.shell.resolve_path(args[0])
        try:
            data = self._load_for_editing(fs, full)
        except OSError as error:
            return self._fail(out, "edit", args[0], error)

        def save(content: bytes) -> None:
            fs.write_file(full, content)
            fs.flush()

        editor = Editor(
            self.kernel.console,
            name=posixpath.basename(full),
            data=data,
            save=save,
        )
        self.shell.suspend_prompt()
        editor.run(self.kernel.tty, self.kernel.defer, on_exit=self.shell.resume)
        return 0

    @staticmethod
    def _load_for_editing(fs: Volumes, full: str) -> bytes | None:
        """The file's bytes, or None for a new file whose directory exists and whose name FAT
        can hold (so the first save does not fail for a reason known now)."""
        try:
            stat = fs.stat(full)
        except NoEntry:
            parent, name = posixpath.split(full)
            if not fs.stat(parent).is_dir:
                raise NotDirectory(f"{parent}: not a directory") from None
            check_long_name(name)
            return None
        if stat.is_dir:
            raise IsDirectory(f"{full}: is a directory")
        if stat.size > EDIT_LIMIT:
            raise FileTooLarge(f"{stat.size} bytes; the editor holds up to {EDIT_LIMIT} bytes")
        return fs.read_file(full)
