"""The ELF32 i386 loader: checked headers, PT_LOAD segments with their permissions, the
initial user stack of the i386 System V ABI, and where the brk heap starts.

Contract
--------
* `parse_elf(data, bias)` checks everything before anything is mapped and raises `ElfError`
  (errno ENOEXEC) with a message that names the problem: not ELF, not 32-bit little-endian
  i386, not ET_EXEC or ET_DYN (a shared object is loaded at `bias`: the interpreter; a PIE
  program, ET_DYN with PT_INTERP, at PIE_BASE; a static-pie is refused), a bad PT_INTERP name,
  a segment outside user space or beyond the file, overlapping segments, an entry point
  outside executable code. A dynamically linked program names its interpreter (PT_INTERP,
  Debian's /lib/ld-linux.so.2): the process layer loads that too, at INTERPRETER_BASE, starts
  it, and tells it where the program is through the auxiliary vector (AT_PHDR, AT_ENTRY,
  AT_BASE), as Linux's binfmt_elf does; PT_DYNAMIC is the interpreter's business.
* `load_elf(aspace, image, data, write_physical)` maps every page the segments
  cover once, with the union of the permissions of the segments touching it (R always; W if
  any segment is writable), copies the file bytes and leaves the rest zero (.bss). It returns
  the page-aligned end of the highest segment: the start of the brk heap.
* `build_stack(...)` maps the stack below USER_TOP and lays out, from the stack pointer up:
  argc, argv[], NULL, envp[], NULL, auxv pairs ending in AT_NULL, then the strings, the
  AT_RANDOM bytes and the platform string. ESP (at argc) is 16-byte aligned. AT_BASE is the
  interpreter's load address (0 for a static program).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from tradekernel.kernel.mm.paging import (
    PAGE_SIZE,
    USER_BASE,
    USER_STACK_PAGES,
    USER_TOP,
    AddressSpace,
    copy_to_user,
)

ENOEXEC = 8

ELF_MAGIC = b"\x7fELF"
ELFCLASS32, ELFDATA2LSB, EV_CURRENT = 1, 1, 1
ET_EXEC, ET_DYN = 2, 3
EM_386 = 3
PT_LOAD, PT_INTERP = 1, 3
PF_X, PF_W, PF_R = 1, 2, 4
HEADER = struct.Struct("<16sHHIIIIIHHHHHH")
PROGRAM_HEADER = struct.Struct("<8I")
MAX_PROGRAM_HEADERS = 64
MAX_INTERPRETER_NAME = 256  # PT_INTERP's path, NUL included
INTERPRETER_BASE = 0xBF00_0000  # above the mmap area (mm/mmap.py MMAP_LIMIT), below the stack
PIE_BASE = 0x5655_5000  # a PIE program's load address: where x86-64 Linux puts i386 ones

STACK_PAGES = USER_STACK_PAGES  # mm/paging.py: the layout's one definition
STACK_TOP = USER_TOP
MAX_ARGUMENT_BYTES = 64 * 1024  # argv + envp strings, as a sanity limit (Linux: 1/4 stack)
PLATFORM = b"i686"

# Auxiliary vector types (linux/auxvec.h).
AT_NULL, AT_PHDR, AT_PHENT, AT_PHNUM, AT_PAGESZ, AT_BASE, AT_FLAGS, AT_ENTRY = (
    0,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
)
AT_UID, AT_EUID, AT_GID, AT_EGID, AT_PLATFORM, AT_HWCAP, AT_CLKTCK = 11, 12, 13, 14, 15, 16, 17
AT_SECURE, AT_RANDOM, AT_EXECFN = 23, 25, 31
CLOCK_TICKS_PER_SECOND = 100


class ElfError(Exception):
    """Not a program this kernel can run; the message says why."""

    errno = ENOEXEC


@dataclass(frozen=True)
class Segment:
    vaddr: int
    memsz: int
    offset: int
    filesz: int
    flags: int  # PF_R | PF_W | PF_X

    @property
    def end(self) -> int:
        return self.vaddr + self.memsz


@dataclass(frozen=True)
class ElfImage:
    entry: int
    segments: tuple[Segment, ...]
    phoff: int
    phnum: int
    phdr_vaddr: int  # where the program headers are in memory (0 if no segment maps them)
    interpreter: str = ""  # PT_INTERP: the dynamic linker to load with the program

    @property
    def brk_start(self) -> int:
        return page_up(max(segment.end for segment in self.segments))

    @property
    def pages(self) -> int:
        """Pages the segments and the start-up stack take at most (shared pages counted
        twice), known before anything is allocated."""
        spans = sum(page_up(s.end) - page_down(s.vaddr) for s in self.segments) // PAGE_SIZE
        return spans + STACK_PAGES


def page_down(address: int) -> int:
    return address & ~(PAGE_SIZE - 1)


def page_up(address: int) -> int:
    return (address + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


def parse_elf(data: bytes, bias: int | None = None) -> ElfImage:
    """Validate an executable's headers; ElfError says what is wrong. With `bias`, a shared
    object (ET_DYN: the interpreter) is taken too, its addresses moved up by `bias`; without,
    a PIE program (ET_DYN naming an interpreter) is moved up by PIE_BASE."""
    if len(data) < HEADER.size:
        raise ElfError(f"file too short for an ELF header ({len(data)} bytes)")
    ident, e_type, machine, version, entry, phoff, _shoff, _flags, ehsize, phentsize, phnum = (
        HEADER.unpack_from(data)[:11]
    )
    if ident[:4] != ELF_MAGIC:
        raise ElfError("not an ELF file (bad magic)")
    if ident[4] != ELFCLASS32:
        raise ElfError(f"not a 32-bit ELF (class {ident[4]})")
    if ident[5] != ELFDATA2LSB:
        raise ElfError(f"not little-endian (data encoding {ident[5]})")
    if ident[6] != EV_CURRENT or version != EV_CURRENT:
        raise ElfError(f"unknown ELF version {ident[6]}/{version}")
    if machine != EM_386:
        raise ElfError(f"not an i386 program (machine {machine})")
    if e_type not in (ET_EXEC, ET_DYN):
        raise ElfError(f"not an executable (type {e_type})")
    if ehsize < HEADER.size or phentsize != PROGRAM_HEADER.size:
        raise ElfError(f"bad header sizes (ehsize {ehsize}, phentsize {phentsize})")
    if not 0 < phnum <= MAX_PROGRAM_HEADERS:
        raise ElfError(f"bad program header count {phnum}")
    if phoff + phnum * phentsize > len(data):
        raise ElfError("program headers beyond the end of the file")
    if e_type == ET_DYN and bias is None:
        types = (PROGRAM_HEADER.unpack_from(data, phoff + n * phentsize)[0] for n in range(phnum))
        if PT_INTERP not in types:
            raise ElfError("position-independent with no interpreter (static-pie or a shared "
                           "object): link with -static -no-pie")  # fmt: skip
        bias = PIE_BASE  # a PIE program: its interpreter relocates it
    segments = []
    phdr_vaddr = 0
    interpreter = ""
    shift = bias if e_type == ET_DYN and bias is not None else 0
    entry = (entry + shift) & 0xFFFF_FFFF
    for index in range(phnum):
        p_type, offset, vaddr, _paddr, filesz, memsz, flags, align = PROGRAM_HEADER.unpack_from(
            data, phoff + index * PROGRAM_HEADER.size
        )
        vaddr = (vaddr + shift) & 0xFFFF_FFFF
        if p_type == PT_INTERP:
            interpreter = _interpreter_name(data, offset, filesz)
            continue
        if p_type != PT_LOAD:
            continue
        where = f"segment {index} at {vaddr:#x}"
        if memsz == 0:
            continue
        if filesz > memsz:
            raise ElfError(f"{where}: file size {filesz:#x} exceeds memory size {memsz:#x}")
        if offset + filesz > len(data):
            raise ElfError(f"{where}: file bytes beyond the end of the file")
        if vaddr < USER_BASE or vaddr + memsz > STACK_TOP - STACK_PAGES * PAGE_SIZE:
            raise ElfError(
                f"{where}: outside user space [{USER_BASE:#x}, "
                f"{STACK_TOP - STACK_PAGES * PAGE_SIZE:#x})"
            )
        if align > 1 and (vaddr - offset) % min(align, PAGE_SIZE):
            raise ElfError(f"{where}: address and file offset disagree modulo the page size")
        segment = Segment(vaddr, memsz, offset, filesz, flags & (PF_R | PF_W | PF_X))
        for other in segments:
            if segment.vaddr < other.end and other.vaddr < segment.end:
                raise ElfError(f"{where}: overlaps the segment at {other.vaddr:#x}")
        if offset <= phoff and phoff + phnum * phentsize <= offset + filesz:
            phdr_vaddr = vaddr + phoff - offset
        segments.append(segment)
    if not segments:
        raise ElfError("no loadable segment")
    if not any(s.flags & PF_X and s.vaddr <= entry < s.end for s in segments):
        raise ElfError(f"entry point {entry:#x} is not in an executable segment")
    return ElfImage(entry, tuple(segments), phoff, phnum, phdr_vaddr, interpreter)


def _interpreter_name(data: bytes, offset: int, size: int) -> str:
    """PT_INTERP's path: NUL-terminated, absolute, of bounded length, inside the file."""
    if not 1 < size <= MAX_INTERPRETER_NAME or offset + size > len(data):
        raise ElfError(f"bad interpreter name (PT_INTERP of {size} bytes at {offset:#x})")
    raw = data[offset : offset + size]
    if raw[-1] != 0 or 0 in raw[:-1] or not raw.startswith(b"/"):
        raise ElfError("bad interpreter name (not an absolute NUL-terminated path)")
    return raw[:-1].decode("utf-8", "replace")


def load_elf(
    aspace: AddressSpace,
    image: ElfImage,
    data: bytes,
    write_physical: Callable[[int, bytes], None],
) -> int:
    """Map and fill the segments of `image` (parsed from `data`); returns the brk start.
    Every page gets a fresh frame: writable if any segment on it is, read-only otherwise.
    Pages are zeroed and filled through `write_physical` (guest memory's `write`), which
    reports every write to the machine itself, so the CPU never runs what it translated from
    a frame's earlier contents (telling the machine again about every frame cost a third of
    an exec). The pages holding file bytes are written in runs of physically consecutive
    frames, one call each: each call costs the machine a look at the CPU's state."""
    writable: dict[int, bool] = {}
    for segment in image.segments:
        for page in range(page_down(segment.vaddr), page_up(segment.end), PAGE_SIZE):
            writable[page] = writable.get(page, False) or bool(segment.flags & PF_W)
    frames = {
        page: aspace.map_new(page, writable=page_writable, user=True)  # zeroed: the bss
        for page, page_writable in writable.items()
    }
    contents: dict[int, bytearray] = {}  # frame -> its bytes, for pages with file bytes
    for segment in image.segments:
        address, offset, end = segment.vaddr, segment.offset, segment.offset + segment.filesz
        while offset < end:
            within = address & (PAGE_SIZE - 1)
            chunk = min(end - offset, PAGE_SIZE - within)
            frame = frames[page_down(address)]
            page = contents.get(frame)
            if page is None:
                page = contents[frame] = bytearray(PAGE_SIZE)
            page[within : within + chunk] = data[offset : offset + chunk]
            offset += chunk
            address += chunk
    run: list[bytearray] = []
    start = 0
    for frame in sorted(contents):
        if run and frame != start + len(run) * PAGE_SIZE:
            write_physical(start, b"".join(run))
            run = []
        if not run:
            start = frame
        run.append(contents[frame])
    if run:
        write_physical(start, b"".join(run))
    return image.brk_start


def build_stack(
    aspace: AddressSpace,
    image: ElfImage,
    argv: list[bytes],
    envp: list[bytes],
    random_bytes: bytes,
    interpreter_base: int = 0,
) -> int:
    """Map the stack and write the start-up block; returns the initial ESP (at argc)."""
    strings_size = sum(len(s) + 1 for s in argv + envp)
    if strings_size > MAX_ARGUMENT_BYTES:
        raise ElfError(f"arguments and environment take {strings_size} bytes (E2BIG)")
    bottom = STACK_TOP - STACK_PAGES * PAGE_SIZE
    for page in range(bottom, STACK_TOP, PAGE_SIZE):
        aspace.map_new(page, writable=True, user=True)
    # Strings and blobs at the top, then the pointer block below them.
    cursor = STACK_TOP - 16  # a little headroom below the end, as Linux leaves

    def push_bytes(blob: bytes) -> int:
        nonlocal cursor
        cursor -= len(blob)
        copy_to_user(aspace, cursor, blob)
        return cursor

    execfn = push_bytes(argv[0] + b"\0") if argv else 0
    argv_pointers = [push_bytes(arg + b"\0") for arg in argv]
    envp_pointers = [push_bytes(env + b"\0") for env in envp]
    platform = push_bytes(PLATFORM + b"\0")
    cursor &= ~15
    random_address = push_bytes(random_bytes[:16].ljust(16, b"\0"))
    auxv = [
        (AT_PHDR, image.phdr_vaddr), (AT_PHENT, PROGRAM_HEADER.size), (AT_PHNUM, image.phnum),
        (AT_PAGESZ, PAGE_SIZE), (AT_BASE, interpreter_base), (AT_FLAGS, 0), (AT_ENTRY, image.entry),
        (AT_UID, 0), (AT_EUID, 0), (AT_GID, 0), (AT_EGID, 0), (AT_HWCAP, 0),
        (AT_CLKTCK, CLOCK_TICKS_PER_SECOND), (AT_PLATFORM, platform), (AT_SECURE, 0),
        (AT_RANDOM, random_address), (AT_EXECFN, execfn), (AT_NULL, 0),
    ]  # fmt: skip
    words = [len(argv), *argv_pointers, 0, *envp_pointers, 0]
    for kind, value in auxv:
        words += [kind, value]
    block = struct.pack(f"<{len(words)}I", *words)
    esp = (cursor - len(block)) & ~15
    copy_to_user(aspace, esp, block)
    return esp
