"""Thread-local storage descriptors: Linux's set_thread_area/get_thread_area on our GDT.

glibc on i386 keeps its thread pointer in %gs: at start-up it asks set_thread_area for a GDT
entry (entry_number -1: "any free one"), gets its index back, and loads %gs with
index * 8 + 3. Linux keeps three such entries per thread (GDT_ENTRY_TLS_MIN..MAX, 6..8) and
writes them into the CPU's GDT on every context switch; so do we, through guest memory at the
address the entry stub's boot info names (images/stub.asm).

Which slots: the stub's GDT is null, ring-0 code and data, ring-3 code and data, the TSS
(0x28), then Linux's three TLS entries, 6-8 (selectors 0x33, 0x3B, 0x43), empty at boot.
glibc and busybox ask for any free entry and get 6, so %gs is 0x33 as on i386 Linux.

`user_desc` decoding follows Linux's fill_ldt/LDT_empty (arch/x86/include/asm/desc.h): a
descriptor the caller asks to be empty is written as eight zero bytes; a 16-bit segment or a
code segment is refused (EINVAL), as tls_desc_okay refuses them.

Imports: nothing from the kernel (the caller writes the bytes through guest memory).
"""

from __future__ import annotations

import struct

TLS_ENTRIES = (6, 7, 8)  # GDT_ENTRY_TLS_MIN..MAX: the entries the stub reserves for TLS
USER_DESC = struct.Struct("<IIII")  # entry_number, base_addr, limit, flag bits
USER_DESC_SIZE = USER_DESC.size
EMPTY = bytes(8)
EINVAL, ESRCH = 22, 3
ANY_ENTRY = 0xFFFF_FFFF  # entry_number -1: the kernel picks a free entry

# struct user_desc's bit fields, in the fourth word.
SEG_32BIT, CONTENTS_SHIFT, READ_EXEC_ONLY, LIMIT_IN_PAGES, SEG_NOT_PRESENT, USEABLE = (
    1, 1, 8, 16, 32, 64,
)  # fmt: skip


class TlsError(Exception):
    """A user_desc set_thread_area refuses; `errno` is what the call returns."""

    def __init__(self, errno: int, message: str) -> None:
        super().__init__(message)
        self.errno = errno


def selector(entry: int) -> int:
    """The ring-3 selector of GDT entry `entry`."""
    return entry * 8 + 3


def present(descriptor: bytes) -> bool:
    """Whether a descriptor has its P bit (loading an absent one faults)."""
    return bool(descriptor[5] & 0x80)


def _is_empty(base: int, limit: int, bits: int) -> bool:
    """Linux's LDT_empty: the caller clears the entry."""
    contents = (bits >> CONTENTS_SHIFT) & 3
    return (
        base == 0 and limit == 0 and contents == 0 and bits & READ_EXEC_ONLY
        and not bits & SEG_32BIT and not bits & LIMIT_IN_PAGES and bits & SEG_NOT_PRESENT
        and not bits & USEABLE
    )  # fmt: skip


def encode(base: int, limit: int, bits: int) -> bytes:
    """The 8-byte GDT descriptor of a user_desc (fill_ldt): a ring-3 data segment."""
    if _is_empty(base, limit, bits):
        return EMPTY
    contents = (bits >> CONTENTS_SHIFT) & 3
    if not bits & SEG_32BIT:
        raise TlsError(EINVAL, "16-bit TLS segment")
    if contents == 3 or contents & 2 and not bits & SEG_NOT_PRESENT:
        raise TlsError(EINVAL, "code segment as TLS")
    type_ = ((0 if bits & READ_EXEC_ONLY else 1) << 1) | contents << 2 | 1  # accessed
    access = 0x10 | 0x60 | type_ | (0 if bits & SEG_NOT_PRESENT else 0x80)  # S, DPL 3, P
    flags = (0x1 if bits & USEABLE else 0) | 0x4 | (0x8 if bits & LIMIT_IN_PAGES else 0)
    low = (limit & 0xFFFF) | (base & 0xFFFF) << 16
    high = (base >> 16) & 0xFF | access << 8 | (limit & 0xF0000) | flags << 20
    high |= base & 0xFF00_0000
    return struct.pack("<II", low, high)


def decode(entry: int, descriptor: bytes) -> bytes:
    """The user_desc get_thread_area returns for a descriptor (fill_user_desc)."""
    if descriptor == EMPTY:
        bits = READ_EXEC_ONLY | SEG_NOT_PRESENT
        return USER_DESC.pack(entry, 0, 0, bits)
    low, high = struct.unpack("<II", descriptor)
    base = low >> 16 | (high & 0xFF) << 16 | high & 0xFF00_0000
    limit = low & 0xFFFF | high & 0xF0000
    access, flags = (high >> 8) & 0xFF, (high >> 20) & 0xF
    bits = (SEG_32BIT if flags & 0x4 else 0) | ((access >> 2) & 3) << CONTENTS_SHIFT
    bits |= 0 if access & 0x2 else READ_EXEC_ONLY
    bits |= (LIMIT_IN_PAGES if flags & 0x8 else 0) | (0 if access & 0x80 else SEG_NOT_PRESENT)
    bits |= USEABLE if flags & 0x1 else 0
    return USER_DESC.pack(entry, base, limit, bits)


def parse_user_desc(blob: bytes, current: tuple[bytes, ...]) -> tuple[int, bytes]:
    """set_thread_area's argument: (GDT entry, descriptor). Entry -1 takes the first empty
    TLS entry of `current` (the thread's descriptors, in TLS_ENTRIES order)."""
    entry, base, limit, bits = USER_DESC.unpack(blob)
    if entry == ANY_ENTRY:
        free = [e for e, d in zip(TLS_ENTRIES, current, strict=True) if d == EMPTY]
        if not free:
            raise TlsError(ESRCH, "no free TLS entry")
        entry = free[0]
    if entry not in TLS_ENTRIES:
        raise TlsError(EINVAL, f"GDT entry {entry} is not a TLS entry {TLS_ENTRIES}")
    return entry, encode(base, limit, bits)
