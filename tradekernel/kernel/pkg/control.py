"""Debian control data: paragraphs (RFC822-like fields, continuation lines), the Depends field
(comma-separated, `|` alternatives, `(op version)` constraints, `:arch` qualifiers) and dpkg's
version order (epoch:upstream-revision, `~` before everything).

Pure functions on text; errors are `ControlError` with one line saying what was wrong."""

from __future__ import annotations

import re
from dataclasses import dataclass


class ControlError(ValueError):
    """Control text that cannot be read."""


def parse_paragraphs(text: str) -> list[dict[str, str]]:
    """Paragraphs separated by blank lines; field names keep their spelling, are looked up as
    written by Debian (Package, Version, ...). A continuation line is appended after a newline."""
    paragraphs: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            if current:
                paragraphs.append(current)
            current, last = {}, None
        elif line[0] in " \t":
            if last is None:
                raise ControlError(f"line {number}: continuation line before any field")
            current[last] += "\n" + line[1:]
        elif line.startswith("#"):
            continue
        else:
            name, colon, value = line.partition(":")
            if not colon or not name or " " in name:
                raise ControlError(f"line {number}: not a 'Field: value' line: {line[:60]!r}")
            last = name
            current[name] = value.strip()
    if current:
        paragraphs.append(current)
    return paragraphs


def format_paragraph(fields: dict[str, str]) -> str:
    """The inverse of parse_paragraphs for one paragraph (ends with a newline)."""
    lines = []
    for name, value in fields.items():
        first, *rest = value.split("\n")
        lines.append(f"{name}: {first}".rstrip())
        lines.extend(" " + (part or ".") for part in rest)
    return "\n".join(lines) + "\n"


# ---- versions --------------------------------------------------------------------------------
_VERSION = re.compile(r"^(?:(\d+):)?([0-9][A-Za-z0-9.+~:-]*?)(?:-([A-Za-z0-9.+~]+))?$")


def _order(char: str) -> int:
    if char == "~":
        return -1
    if char.isalpha():
        return ord(char)
    return ord(char) + 256


def _compare_part(a: str, b: str) -> int:
    """dpkg's verrevcmp: alternate non-digit runs (letters before non-letters, ~ first) and
    numeric runs."""
    i = j = 0
    while i < len(a) or j < len(b):
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ca = _order(a[i]) if i < len(a) and not a[i].isdigit() else 0
            cb = _order(b[j]) if j < len(b) and not b[j].isdigit() else 0
            if ca != cb:
                return -1 if ca < cb else 1
            i += 1
            j += 1
        start_i, start_j = i, j
        while i < len(a) and a[i].isdigit():
            i += 1
        while j < len(b) and b[j].isdigit():
            j += 1
        na, nb = a[start_i:i].lstrip("0"), b[start_j:j].lstrip("0")  # no int(): any length
        if na != nb:
            return -1 if (len(na), na) < (len(nb), nb) else 1
    return 0


def split_version(version: str) -> tuple[int, str, str]:
    match = _VERSION.match(version.strip())
    if not match:
        raise ControlError(f"bad version {version!r}")
    epoch = match.group(1) or "0"
    if len(epoch) > 9:  # dpkg: "epoch in version is too big"; int() refuses 4300 digits
        raise ControlError(f"bad version {version!r}: epoch too big")
    return int(epoch), match.group(2), match.group(3) or "0"


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as dpkg --compare-versions orders `a` and `b`."""
    ea, ua, ra = split_version(a)
    eb, ub, rb = split_version(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _compare_part(ua, ub) or _compare_part(ra, rb)


# ---- Depends ---------------------------------------------------------------------------------
_RELATIONS = {
    "<<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    "=": lambda c: c == 0,
    ">=": lambda c: c >= 0,
    ">>": lambda c: c > 0,
    "<": lambda c: c <= 0,  # obsolete spellings, as dpkg reads them
    ">": lambda c: c >= 0,
}
_ATOM = re.compile(
    r"^([a-z0-9][a-z0-9+.-]*)(?::([a-z0-9-]+))?\s*(?:\(\s*(<<|<=|>=|>>|=|<|>)\s*([^)\s]+)\s*\))?"
    r"\s*(?:\[[^\]]*\])?\s*(?:<[^>]*>\s*)*$"
)


@dataclass(frozen=True)
class Relation:
    """One package name with an optional version constraint."""

    name: str
    op: str | None = None
    version: str | None = None

    def satisfied_by(self, version: str) -> bool:
        if self.op is None or self.version is None:
            return True
        return _RELATIONS[self.op](compare_versions(version, self.version))

    def __str__(self) -> str:
        return self.name + (f" ({self.op} {self.version})" if self.op else "")


def parse_depends(text: str) -> list[list[Relation]]:
    """A Depends value: a list of groups, each a list of alternatives (any one will do).
    `:any`/`:i386` qualifiers and build-profile brackets are accepted and dropped."""
    groups: list[list[Relation]] = []
    for group in text.replace("\n", " ").split(","):
        if not group.strip():
            continue
        alternatives = []
        for atom in group.split("|"):
            match = _ATOM.match(atom.strip())
            if not match:
                raise ControlError(f"bad dependency {atom.strip()!r}")
            name, _arch, op, version = match.groups()
            if version is not None:
                split_version(version)
            alternatives.append(Relation(name, op, version))
        groups.append(alternatives)
    return groups
