"""Symbols of an i386 ELF file, for naming sampled addresses and data.

`Symbols.from_elf(data)` reads the .symtab (or, stripped of it, .dynsym) section's function,
data object and untyped symbols; `name(address)` answers `func` or `table+0x1c` for an address
inside one, or None, and `function(address)` the function's name for code only (a profile
aggregates by it; an address in a data object has none). Every offset and count comes from
the file, so each is checked against its length first: a damaged or hostile ELF gives no
symbols, never an exception past `from_elf`.
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass

SHT_SYMTAB, SHT_DYNSYM = 2, 11
STT_NOTYPE, STT_OBJECT, STT_FUNC = 0, 1, 2
NAMED_TYPES = (STT_NOTYPE, STT_OBJECT, STT_FUNC)
SECTION = struct.Struct("<10I")
SYMBOL = struct.Struct("<IIIBBH")
MAX_SYMBOLS = 65536  # more than any program here has; a bigger table is read up to this
MAX_NAME = 256  # bytes of a symbol name that are kept


@dataclass(frozen=True)
class Symbols:
    starts: tuple[int, ...]  # sorted
    ends: tuple[int, ...]  # exclusive; the next symbol's start when the size is 0
    names: tuple[str, ...]
    data: frozenset[int] = frozenset()  # indexes of the data objects (STT_OBJECT)

    @classmethod
    def from_elf(cls, data: bytes) -> Symbols:
        try:
            found = _read_symbols(data)
        except (struct.error, ValueError, IndexError):
            found = []
        found.sort()
        starts, ends, names, data = [], [], [], set()
        for index, (start, size, name, kind) in enumerate(found):
            following = found[index + 1][0] if index + 1 < len(found) else start + max(size, 1)
            starts.append(start)
            ends.append(start + size if size else max(following, start + 1))
            names.append(name)
            if kind == STT_OBJECT:
                data.add(index)
        return cls(tuple(starts), tuple(ends), tuple(names), frozenset(data))

    def name(self, address: int) -> str | None:
        index = bisect.bisect_right(self.starts, address) - 1
        if index < 0 or address >= self.ends[index]:
            return None
        offset = address - self.starts[index]
        return self.names[index] if offset == 0 else f"{self.names[index]}+{offset:#x}"

    def function(self, address: int) -> str | None:
        """The function's name alone (what a profile aggregates by); None in a data object."""
        index = bisect.bisect_right(self.starts, address) - 1
        if index < 0 or address >= self.ends[index] or index in self.data:
            return None
        return self.names[index]


def _read_symbols(data: bytes) -> list[tuple[int, int, str, int]]:
    """(address, size, name, type) of each named, defined symbol of a kind NAMED_TYPES lists."""
    if data[:4] != b"\x7fELF" or data[4] != 1:
        return []
    shoff, = struct.unpack_from("<I", data, 0x20)  # fmt: skip
    shentsize, shnum = struct.unpack_from("<HH", data, 0x2E)
    if shentsize < SECTION.size or shoff + shnum * shentsize > len(data):
        return []
    sections = [SECTION.unpack_from(data, shoff + n * shentsize) for n in range(shnum)]
    tables = [s for s in sections if s[1] == SHT_SYMTAB]
    tables = tables or [s for s in sections if s[1] == SHT_DYNSYM]
    if not tables:
        return []
    _, _, _, _, offset, size, link, _, _, _ = tables[0]
    if link >= len(sections) or offset + size > len(data):
        return []
    str_offset, str_size = sections[link][4], sections[link][5]
    if str_offset + str_size > len(data):
        return []
    strings = data[str_offset : str_offset + str_size]
    found = []
    for n in range(min(size // SYMBOL.size, MAX_SYMBOLS)):
        name_at, value, length, info, _, shndx = SYMBOL.unpack_from(data, offset + n * SYMBOL.size)
        if info & 0xF not in NAMED_TYPES or shndx == 0 or not value or name_at == 0:
            continue
        end = strings.find(b"\0", name_at, name_at + MAX_NAME)
        if name_at >= len(strings) or end < 0:
            continue
        name = strings[name_at:end].decode("ascii", "replace")
        if name and not name.startswith("."):
            found.append((value, length, name, info & 0xF))
    return found
