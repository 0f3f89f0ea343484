"""Installing and removing packages, with a journal so power loss leaves each package either
fully installed or fully absent.

Install, per package (dependencies first): everything is fetched, SHA256-checked against the
index, unpacked in memory and checked (architecture, paths that would clash with files on the
disk, room on the volume) BEFORE the first write. Then:
  1. the journal (DB_DIR/journal) is written: `install NAME`, every directory and file about
     to be created, and a final `end` line;
  2. the directories and files are written;
  3. the database records (info/NAME.list, then status/NAME);
  4. the journal is removed: this is the commit.
Removal journals `remove NAME` + `end`, removes the files, then the records, then the journal.
`recover()` (at boot and before every operation) reads a leftover journal: an install is rolled
back (its files, directories and records removed), a removal is finished; a journal without its
`end` line was cut short before anything else was written and is just removed. Every step flushes
the volume, so the order above is the order on the disk.

Case twins: FAT compares names without case, so of two paths in a package that differ only in
case (linux-libc-dev's xt_DSCP.h and xt_dscp.h) the first in the archive is written, unless it
only wraps the other (`_stored_names`), and the other is recorded as not stored (`c` in the
package's list, naming the kept path), with one line saying how many; `pkg files` shows them,
and removal has nothing to delete for them. A path that another package or a file on the disk
already holds, in any case, is still refused.

Symlinks: FAT has none. A link to a file of the same package is written as a copy of that file
(so /bin/sh -> busybox runs); any other link is recorded in the package's list only. Hard links
are copies. Modes are recorded in the list (FAT cannot hold them); files are written plain.

Contract: uses the FatFs it is given and a PackageSource; failures raise PkgError with one line.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass

from tradekernel.kernel.fs.fat import FatFs, FsError, InvalidName
from tradekernel.kernel.fs.fat_dir import check_long_name
from tradekernel.kernel.pkg.control import ControlError, parse_depends, parse_paragraphs
from tradekernel.kernel.pkg.database import (
    DB_DIR,
    INFO_DIR,
    JOURNAL,
    Database,
    DatabaseError,
    Record,
    makedirs,
)
from tradekernel.kernel.pkg.deb import (
    DIRECTORY,
    FILE,
    HARDLINK,
    SYMLINK,
    Deb,
    DebError,
    Entry,
    read_deb,
)
from tradekernel.kernel.pkg.params import (
    ARCHITECTURES,
    MAX_DEB_BYTES,
    MAX_UNPACKED_BYTES,
    UNPACK_SLACK_BYTES,
)
from tradekernel.kernel.pkg.resolve import ResolveError, resolve
from tradekernel.kernel.pkg.source import PackageSource, SourceError

Say = Callable[[str], None]


class PkgError(Exception):
    """One line for the user: what went wrong, nothing written."""


@dataclass
class _Plan:
    deb: Deb
    records: list[Record]
    writes: list[tuple[str, bytes]]  # files to write, in order
    new_dirs: list[str]
    twins: int  # paths not stored: they differ from a kept one only in case


def _stored_names(entries: list[Entry]) -> dict[str, str]:
    """Casefolded path -> the path FAT stores under that name: the first in the archive, unless
    it is a file that #includes a later twin by name (a wrapper, as linux-libc-dev's xt_MARK.h,
    whose only content besides its guard is `#include <linux/netfilter/xt_mark.h>`: kept, it
    would include itself on FAT and the twin's declarations would be lost); then that twin."""
    stored: dict[str, Entry] = {}
    for entry in entries:
        kept = stored.setdefault(entry.path.casefold(), entry)
        if kept is not entry and kept.kind == FILE and entry.kind == FILE:
            name = re.escape(posixpath.basename(entry.path).encode())
            if re.search(rb'#\s*include\s*[<"]([^>"\n]*/)?' + name + rb'[>"]', kept.data):
                stored[entry.path.casefold()] = entry
    return {key: entry.path for key, entry in stored.items()}


class PackageManager:
    def __init__(self, fs: FatFs) -> None:
        self.fs = fs
        self.db = Database(fs)

    # ---- the index -------------------------------------------------------------------------
    def available(self, source: PackageSource) -> list[dict[str, str]]:
        try:
            text = source.index().decode("utf-8")
            records = parse_paragraphs(text)
        except SourceError as error:
            raise PkgError(f"repository {source.location}: {error}") from None
        except (UnicodeDecodeError, ControlError) as error:
            raise PkgError(f"{source.location}/Packages: {error}") from None
        for number, record in enumerate(records, 1):
            missing = {"Package", "Version", "Filename", "SHA256"} - record.keys()
            if missing:
                raise PkgError(
                    f"{source.location}/Packages: entry {number} lacks {', '.join(sorted(missing))}"
                )
        return records

    # ---- install ---------------------------------------------------------------------------
    def install(self, names: list[str], source: PackageSource, say: Say) -> list[str]:
        """Install `names` and what they depend on; returns the packages installed."""
        if self.fs.read_only:
            raise PkgError(f"the disk is read-only: {self.fs.read_only_reason or 'mounted so'}")
        self.recover(say)
        available = self.available(source)
        try:
            order = resolve(names, available, self.db.installed())
        except ResolveError as error:
            raise PkgError(str(error)) from None
        for name in names:
            if self.db.is_installed(name):
                say(f"{name} is already installed")
        debs = [self._fetch(record, source) for record in order]
        plans = self._plan_all(debs)
        for plan in plans:
            try:
                self._apply(plan, say)
            except FsError as error:
                self.recover(say)
                raise PkgError(f"{plan.deb.name}: {error}; rolled back") from None
        return [plan.deb.name for plan in plans]

    def _fetch(self, record: dict[str, str], source: PackageSource) -> Deb:
        name, filename = record["Package"], record["Filename"]
        limit = min(MAX_DEB_BYTES, int(record.get("Size", MAX_DEB_BYTES) or MAX_DEB_BYTES))
        try:
            data = source.fetch(filename, limit)
        except SourceError as error:
            raise PkgError(f"{name}: {error}") from None
        digest = hashlib.sha256(data).hexdigest()
        if digest != record["SHA256"].lower():
            raise PkgError(
                f"{name}: {filename}: bad checksum (SHA256 {digest[:16]}..., the index says"
                f" {record['SHA256'][:16]}...); nothing installed"
            )
        free = self.fs.statfs().free_bytes
        limit = min(MAX_UNPACKED_BYTES, 2 * free + UNPACK_SLACK_BYTES)
        try:
            deb = read_deb(data, limit)
        except DebError as error:
            room = f" (the disk has {free // 1024} KiB free)" if limit < MAX_UNPACKED_BYTES else ""
            raise PkgError(f"{filename}: {error}{room}") from None
        if deb.architecture not in ARCHITECTURES:
            raise PkgError(f"{filename}: built for {deb.architecture}, this machine runs i386")
        if deb.name != name or deb.version != record["Version"]:
            raise PkgError(f"{filename}: is {deb.name} {deb.version}, the index says otherwise")
        return deb

    def _plan_all(self, debs: list[Deb]) -> list[_Plan]:
        owners = self.db.owners()
        plans = []
        claimed: dict[str, str] = {}
        need = 0
        cluster = self.fs.statfs().cluster_size
        for deb in debs:
            plan = self._plan(deb)
            for path, data in plan.writes:
                key = path.casefold()
                owner = owners.get(key) or claimed.get(key)
                if owner:
                    raise PkgError(f"{deb.name}: {path} is already installed by {owner}")
                if self.fs.exists(path):
                    raise PkgError(f"{deb.name}: {path} exists on the disk, not from a package")
                claimed[key] = deb.name
                need += -(-len(data) // cluster) * cluster
            need += len(plan.new_dirs) * cluster + 4 * cluster  # directories, records, journal
            plans.append(plan)
        free = self.fs.statfs().free_bytes
        if need > free:
            raise PkgError(f"needs {need // 1024} KiB on the disk, {free // 1024} KiB free")
        return plans

    def _plan(self, deb: Deb) -> _Plan:
        by_path = {entry.path: entry for entry in deb.entries}
        records: list[Record] = []
        writes: list[tuple[str, bytes]] = []
        new_dirs: list[str] = []
        stored = _stored_names(deb.entries)
        seen: set[str] = set()
        twins = 0
        for entry in deb.entries:
            if entry.path == "/":
                continue
            if entry.path in seen:
                raise PkgError(f"{deb.name}: {entry.path} appears twice in the archive")
            seen.add(entry.path)
            kept = stored[entry.path.casefold()]
            if kept != entry.path:  # a case twin: FAT has one name for both (module docstring)
                records.append(Record("c", entry.mode, entry.path, kept))
                twins += 1
                continue
            try:
                for part in entry.path.split("/")[1:]:
                    check_long_name(part)
            except InvalidName as error:
                raise PkgError(f"{deb.name}: {entry.path}: cannot be stored: {error}") from None
            if entry.kind == DIRECTORY:
                if not self.fs.exists(entry.path):
                    new_dirs.append(entry.path)
                    records.append(Record("d", entry.mode, entry.path))
                continue
            if entry.kind == FILE:
                writes.append((entry.path, entry.data))
                records.append(Record("f", entry.mode, entry.path))
            elif entry.kind == HARDLINK:
                target = by_path.get(entry.target)
                if target is None or target.kind != FILE:
                    raise PkgError(f"{deb.name}: hard link {entry.path} to a missing file")
                writes.append((entry.path, target.data))
                records.append(Record("f", target.mode, entry.path))
            elif entry.kind == SYMLINK:
                resolved = posixpath.normpath(
                    posixpath.join(posixpath.dirname(entry.path), entry.target)
                )
                target = by_path.get(resolved)
                copied = target is not None and target.kind == FILE
                if copied:
                    writes.append((entry.path, target.data))
                records.append(Record("l", 0o777, entry.path, entry.target, copied))
        return _Plan(deb, records, writes, new_dirs, twins)

    def _apply(self, plan: _Plan, say: Say) -> None:
        deb = plan.deb
        say(f"unpacking {deb.name} {deb.version} ({len(plan.writes)} files)")
        if plan.twins:
            say(
                f"{deb.name}: {plan.twins} files differ from another only in case, which FAT"
                " cannot hold apart: one of each is kept, the others are listed as not stored"
                f" in {INFO_DIR}/{deb.name}.list"
            )
        journal = [f"install {deb.name}"]
        journal += [f"d {path}" for path in plan.new_dirs]
        journal += [f"f {path}" for path, _ in plan.writes]
        self._write_journal(journal)
        for path in plan.new_dirs:
            makedirs(self.fs, path)
        for path, data in plan.writes:
            makedirs(self.fs, posixpath.dirname(path))
            self.fs.write_file(path, data)
            self.fs.flush()
        self.db.record(deb.name, deb.control, plan.records)
        self.fs.flush()
        self.fs.remove(JOURNAL)
        self.fs.flush()
        say(f"installed {deb.name} {deb.version}")

    def _write_journal(self, lines: list[str]) -> None:
        makedirs(self.fs, DB_DIR)
        self.fs.write_file(JOURNAL, ("\n".join([*lines, "end"]) + "\n").encode("utf-8"))
        self.fs.flush()

    # ---- remove ----------------------------------------------------------------------------
    def remove(self, names: list[str], say: Say) -> None:
        self.recover(say)
        installed = self.db.installed()
        for name in names:
            if name not in installed:
                raise PkgError(f"{name}: not installed")
        self._refuse_if_needed(names, installed)
        for name in names:
            self._write_journal([f"remove {name}"])
            self._remove_files(name)
            self.fs.remove(JOURNAL)
            self.fs.flush()
            say(f"removed {name}")

    def _refuse_if_needed(self, names: list[str], installed: dict[str, dict[str, str]]) -> None:
        """A package still installed must keep every Depends group met."""
        remaining = {n: c for n, c in installed.items() if n not in names}
        for other, control in remaining.items():
            text = control.get("Depends", "") + "," + control.get("Pre-Depends", "")
            try:
                groups = parse_depends(text)
            except ControlError:
                continue  # a record dpkg accepted but we cannot read: it does not block
            for group in groups:
                if any(r.name in names for r in group) and not any(
                    r.name in remaining for r in group
                ):
                    gone = next(r.name for r in group if r.name in names)
                    raise PkgError(f"{gone}: {other} depends on it; remove {other} first")

    def _remove_files(self, name: str) -> None:
        records = self.db.files(name)
        for record in records:
            if record.kind == "f" or (record.kind == "l" and record.copied):
                self._remove_if_there(record.path)
        self.db.forget(name)
        self._remove_dirs([r.path for r in records if r.kind == "d"])
        self.fs.flush()

    def _remove_if_there(self, path: str) -> None:
        try:
            self.fs.remove(path)
        except FsError:
            if self.fs.exists(path):
                raise

    def _remove_dirs(self, dirs: list[str]) -> None:
        """Directories a package made, deepest first, where empty now."""
        for path in sorted(dirs, key=lambda p: p.count("/"), reverse=True):
            if self.fs.exists(path) and not self.fs.listdir(path):
                self.fs.rmdir(path)

    # ---- recovery ---------------------------------------------------------------------------
    def recover(self, say: Say) -> None:
        """Finish what a power loss interrupted (see the module docstring)."""
        if not self.fs.exists(JOURNAL):
            return
        lines = self.fs.read_file(JOURNAL).decode("utf-8", "replace").splitlines()
        if lines and lines[-1] == "end" and lines[0].startswith(("install ", "remove ")):
            action, name = lines[0].split(" ", 1)
            if action == "install":
                for line in lines[1:-1]:
                    if line.startswith("f "):
                        self._remove_if_there(line[2:])
                self.db.forget(name)
                self._remove_dirs([line[2:] for line in lines[1:-1] if line.startswith("d ")])
                say(f"pkg: rolled back the interrupted install of {name}")
            else:
                try:
                    self._remove_files(name)
                except DatabaseError as error:
                    say(f"pkg: {error}")
                say(f"pkg: finished the interrupted removal of {name}")
        self.fs.flush()
        self.fs.remove(JOURNAL)
        self.fs.flush()
