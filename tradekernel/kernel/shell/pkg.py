"""The shell's `pkg` command: install, remove, list, files, search and info over the package
manager (kernel/pkg) on the mounted volume (`kernel.fs`).

Contract: `register(shell, kernel)` adds the command and finishes an install or removal that a
power loss interrupted (the kernel calls it once the disk is mounted). Every failure is one
line, `pkg: ...`, and status 1; bad arguments raise UsageError. Packages come from a
repository directory on the disk (`--repo DIR`, default DEFAULT_REPO).
"""

from __future__ import annotations

from tradekernel.kernel.fs.fat import FsError
from tradekernel.kernel.pkg.database import DatabaseError
from tradekernel.kernel.pkg.manager import PackageManager, PkgError
from tradekernel.kernel.pkg.params import DEFAULT_REPO
from tradekernel.kernel.pkg.source import DirectorySource, PackageSource
from tradekernel.kernel.shell.shell import Output, Shell, UsageError

USAGE = "pkg install|remove|list|files|search|info [--repo DIR] [NAME...]"
NEEDS_NAMES = {"install", "remove", "files", "info"}


def register(shell: Shell, kernel) -> None:  # noqa: ANN001 - Kernel
    """Add `pkg` to the shell; roll back or finish an interrupted transaction now."""
    if kernel.fs is not None and not kernel.fs.read_only:
        try:
            PackageManager(kernel.fs).recover(shell.out.line)
        except (FsError, DatabaseError) as error:
            shell.out.error(f"pkg: recovery failed: {error}")
    shell.register(
        "pkg",
        lambda args, out: _pkg(kernel, shell, args, out),
        USAGE,
        "install and remove Debian i386 packages from a repository on the disk",
    )


def _pkg(kernel, shell: Shell, args: list[str], out: Output) -> int:  # noqa: ANN001 - Kernel
    if not args:
        raise UsageError("say what to do")
    action, rest = args[0], args[1:]
    repo = DEFAULT_REPO
    names = []
    while rest:
        arg = rest.pop(0)
        if arg == "--repo":
            if not rest:
                raise UsageError("--repo needs a directory")
            repo = shell.resolve_path(rest.pop(0))
        elif arg.startswith("-"):
            raise UsageError(f"unknown option {arg}")
        else:
            names.append(arg)
    if action not in ("install", "remove", "list", "files", "search", "info"):
        raise UsageError(f"unknown action {action!r}")
    if action in NEEDS_NAMES and not names:
        raise UsageError(f"{action} needs a package name")
    if kernel.fs is None:
        out.error("pkg: no disk mounted")
        return 1
    manager = PackageManager(kernel.fs)
    try:
        return _run(manager, action, names, DirectorySource(kernel.fs, repo), out)
    except (PkgError, DatabaseError, FsError) as error:
        out.error(f"pkg: {error}")
    finally:
        kernel.fs.flush()
    return 1


def _run(
    manager: PackageManager, action: str, names: list[str], source: PackageSource, out: Output
) -> int:
    db = manager.db
    if action == "install":
        manager.install(names, source, out.line)
    elif action == "remove":
        manager.remove(names, out.line)
    elif action == "list":
        for name, control in db.installed().items():
            out.line(
                f"{name:<24} {control.get('Version', '?'):<24} {control.get('Architecture', '')}"
            )
    elif action == "files":
        for name in names:
            if not db.is_installed(name):
                raise PkgError(f"{name}: not installed")
            for record in db.files(name):
                if record.kind == "c":
                    out.line(f"{record.path} (not stored: FAT holds {record.target} in its place)")
                elif record.kind != "d":
                    link = f" -> {record.target}" if record.kind == "l" else ""
                    out.line(f"{record.path}{link}")
    elif action == "search":
        words = [w.casefold() for w in names]
        for record in manager.available(source):
            summary = record.get("Description", "").split("\n")[0]
            text = f"{record['Package']} {summary}".casefold()
            if all(word in text for word in words):
                out.line(f"{record['Package']:<24} {record['Version']:<20} {summary}")
    else:
        for name in names:
            if db.is_installed(name):
                control, state = db.status(name), "installed"
            else:
                found = [r for r in manager.available(source) if r["Package"] == name]
                if not found:
                    raise PkgError(f"{name}: not installed and not in {source.location}")
                control, state = found[-1], "not installed"
            out.line(f"Status: {state}")
            for field, value in control.items():
                out.line(f"{field}: {value}")
    return 0
