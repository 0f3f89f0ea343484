"""The installed-package database on the volume, under DB_DIR (/var/lib/pkg):
  status/NAME      the package's control paragraph: present = installed;
  info/NAME.list   what it put on the disk, one line each: `d MODE PATH` (a directory it
                   made), `f MODE PATH` (a file), `l MODE PATH -> TARGET` (a symlink; FAT has
                   none: when TARGET is a file of the same package its bytes are copied to PATH
                   and the line ends with ` (copy)`, otherwise only this record exists),
                   `c MODE PATH = KEPT` (not stored: PATH differs from KEPT, which the package
                   also has, only in case, and FAT holds one of the two; see manager.py);
  journal          the install or removal under way (see manager.py).
Modes are kept here because FAT cannot hold them.

Contract: reads and writes only under DB_DIR through the FatFs it is given; a damaged record
raises `DatabaseError` naming the file."""

from __future__ import annotations

from dataclasses import dataclass

from tradekernel.kernel.fs.fat import FatFs, FsError
from tradekernel.kernel.pkg.control import ControlError, format_paragraph, parse_paragraphs
from tradekernel.kernel.pkg.params import DB_DIR

STATUS_DIR = DB_DIR + "/status"
INFO_DIR = DB_DIR + "/info"
JOURNAL = DB_DIR + "/journal"


class DatabaseError(ValueError):
    pass


@dataclass(frozen=True)
class Record:
    """One line of a .list file."""

    kind: str  # "d", "f", "l" or "c" (a case twin, not stored: `target` is the kept path)
    mode: int
    path: str
    target: str = ""
    copied: bool = False

    def line(self) -> str:
        text = f"{self.kind} {self.mode:04o} {self.path}"
        if self.kind == "l":
            text += f" -> {self.target}" + (" (copy)" if self.copied else "")
        elif self.kind == "c":
            text += f" = {self.target}"
        return text

    @staticmethod
    def parse(line: str, where: str) -> Record:
        try:
            kind, mode, rest = line.split(" ", 2)
            target, copied = "", False
            if kind == "l":
                rest, target = rest.split(" -> ", 1)
                copied = target.endswith(" (copy)")
                target = target.removesuffix(" (copy)")
            elif kind == "c":
                rest, target = rest.split(" = ", 1)
            if kind not in ("d", "f", "l", "c") or not rest.startswith("/"):
                raise ValueError
            return Record(kind, int(mode, 8), rest, target, copied)
        except ValueError:
            raise DatabaseError(f"{where}: damaged line {line[:60]!r}") from None


def makedirs(fs: FatFs, path: str) -> list[str]:
    """mkdir -p; the directories it made, outermost first."""
    made = []
    current = ""
    for part in [p for p in path.split("/") if p]:
        current += "/" + part
        if not fs.exists(current):
            fs.mkdir(current)
            made.append(current)
    return made


class Database:
    def __init__(self, fs: FatFs) -> None:
        self.fs = fs

    def installed(self) -> dict[str, dict[str, str]]:
        """name -> control paragraph of every installed package."""
        if not self.fs.exists(STATUS_DIR):
            return {}
        found = {}
        for name in sorted(self.fs.listdir(STATUS_DIR)):
            found[name] = self.status(name)
        return found

    def status(self, name: str) -> dict[str, str]:
        path = f"{STATUS_DIR}/{name}"
        try:
            paragraphs = parse_paragraphs(self.fs.read_file(path).decode("utf-8"))
        except (UnicodeDecodeError, ControlError) as error:
            raise DatabaseError(f"{path}: {error}") from None
        if len(paragraphs) != 1:
            raise DatabaseError(f"{path}: not one control paragraph")
        return paragraphs[0]

    def is_installed(self, name: str) -> bool:
        return self.fs.exists(f"{STATUS_DIR}/{name}")

    def files(self, name: str) -> list[Record]:
        path = f"{INFO_DIR}/{name}.list"
        if not self.fs.exists(path):
            return []
        text = self.fs.read_file(path).decode("utf-8", "replace")
        return [Record.parse(line, path) for line in text.splitlines() if line]

    def owners(self) -> dict[str, str]:
        """casefolded path -> owning package, for every file and link any package recorded
        (FAT compares names without case)."""
        owned = {}
        for name in self.installed():
            for record in self.files(name):
                if record.kind in ("f", "l"):
                    owned[record.path.casefold()] = name
        return owned

    def record(self, name: str, control: dict[str, str], records: list[Record]) -> None:
        """The list first, then the status file: status present means the list is whole."""
        makedirs(self.fs, INFO_DIR)
        makedirs(self.fs, STATUS_DIR)
        listing = "".join(record.line() + "\n" for record in records)
        self.fs.write_file(f"{INFO_DIR}/{name}.list", listing.encode("utf-8"))
        self.fs.write_file(f"{STATUS_DIR}/{name}", format_paragraph(control).encode("utf-8"))

    def forget(self, name: str) -> None:
        """Status first (the package stops being installed), then the list."""
        for path in (f"{STATUS_DIR}/{name}", f"{INFO_DIR}/{name}.list"):
            try:
                self.fs.remove(path)
            except FsError:
                if self.fs.exists(path):
                    raise
