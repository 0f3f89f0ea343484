"""Find, once per process, where Unicorn keeps the CPU state it does not expose.

Each offset is found by provoking the state with known values on a scratch engine and keeping
the one position that holds exactly those values in every trial. If no single position fits,
this Unicorn build behaves differently from the one the workarounds were written for, and the
machine refuses to start rather than run wrong (see docs/UNICORN.md).
"""

from __future__ import annotations

import ctypes
import struct
from dataclasses import dataclass
from functools import cache

from unicorn import UC_ARCH_X86, UC_HOOK_INSN, UC_HOOK_INTR, UC_MODE_32, Uc, UcError
from unicorn import x86_const as x86

_HEADER = 16  # see cpu._CONTEXT_HEADER
_CODE = 0x1000
_GDT = 0x800
_TSS = 0x900
_PAGE_DIR = 0x10000
_PAGE_TABLE = 0x11000


_GPR_PATTERN = tuple(0x5EED0000 + 0x1111 * i for i in range(8))
_GPR_IDS = tuple(
    getattr(x86, f"UC_X86_REG_{name}")
    for name in ("EAX", "ECX", "EDX", "EBX", "ESP", "EBP", "ESI", "EDI")
)


class CalibrationError(Exception):
    pass


@dataclass(frozen=True)
class Calibration:
    """Byte offsets into the context blob (after its header) and the engine struct."""

    old_exception: int  # int32, -1 when no exception is pending (unicorn#1883)
    error_code: int  # int32, the error code of the last exception (#PF, #GP, ...)
    hflags: int  # uint32, bits 0-1 are the CPL
    is_software_int: int  # int32, 1 when the last exception was an `int n`, 0 for a fault
    icount_word: int  # index of the uint64 instructions-retired counter in the uc struct
    gprs: int  # EAX..EDI as eight uint64 words
    # byte offset of the engine's `no_exit_request` flag (see _exit_check_flag), or None
    exit_check_flag: int | None
    # index of the uint64 count a counted emu_start stops after (see _count_limit_word), or None
    count_limit_word: int | None = None


def _blob(uc: Uc) -> bytes:
    return bytes(uc.context_save())[_HEADER:]


def _i32_offsets(blob: bytes, value: int) -> set[int]:
    packed = struct.pack("<i", value)
    return {i for i in range(0, len(blob) - 3, 4) if blob[i : i + 4] == packed}


def _descriptor(base: int, limit: int, access: int, flags: int) -> bytes:
    return struct.pack(
        "<HHBBBB",
        limit & 0xFFFF,
        base & 0xFFFF,
        (base >> 16) & 0xFF,
        access,
        ((limit >> 16) & 0xF) | (flags << 4),
        (base >> 24) & 0xFF,
    )


def _protected_engine(paging: bool) -> Uc:
    """A flat 32-bit ring-0 engine with ring-3 segments and a TSS, optionally paged."""
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    uc.mem_map(0, 0x400000)
    gdt = b"".join(
        (
            bytes(8),
            _descriptor(0, 0xFFFFF, 0x9A, 0xC),
            _descriptor(0, 0xFFFFF, 0x92, 0xC),
            _descriptor(0, 0xFFFFF, 0xFA, 0xC),
            _descriptor(0, 0xFFFFF, 0xF2, 0xC),
            _descriptor(_TSS, 103, 0x89, 0),
        )
    )
    uc.mem_write(_GDT, gdt)
    uc.mem_write(_TSS + 4, struct.pack("<II", 0x9000, 0x10))
    uc.reg_write(x86.UC_X86_REG_GDTR, (0, _GDT, len(gdt) - 1, 0))
    uc.reg_write(x86.UC_X86_REG_CR0, uc.reg_read(x86.UC_X86_REG_CR0) | 1)
    uc.reg_write(x86.UC_X86_REG_CS, 0x08)
    for seg in (x86.UC_X86_REG_SS, x86.UC_X86_REG_DS, x86.UC_X86_REG_ES):
        uc.reg_write(seg, 0x10)
    uc.reg_write(x86.UC_X86_REG_ESP, 0x9000)
    if paging:
        # Identity-map 4 MiB; page 0x200000 read-only, page 0x300000 not present.
        uc.mem_write(_PAGE_DIR, struct.pack("<I", _PAGE_TABLE | 0x7))
        entries = []
        for page in range(1024):
            address = page << 12
            flags = 0x7
            if address == 0x200000:
                flags = 0x5
            if address == 0x300000:
                flags = 0
            entries.append(address | flags)
        uc.mem_write(_PAGE_TABLE, struct.pack("<1024I", *entries))
        uc.reg_write(x86.UC_X86_REG_CR3, _PAGE_DIR)
        cr0 = uc.reg_read(x86.UC_X86_REG_CR0) | 0x80010000  # PG | WP
        uc.reg_write(x86.UC_X86_REG_CR0, cr0)
    return uc


def _fault_blob(code: bytes, paging: bool = False) -> tuple[bytes, bytes, int]:
    """(clean blob, blob inside the fault hook, vector) for one deliberate fault."""
    uc = _protected_engine(paging)
    uc.mem_write(_CODE, code)
    clean = _blob(uc)
    seen: list[tuple[bytes, int]] = []

    def hook(engine: Uc, vector: int, _user: object) -> None:
        seen.append((_blob(engine), vector))
        engine.emu_stop()

    uc.hook_add(UC_HOOK_INTR, hook)
    try:
        uc.emu_start(_CODE, _CODE + len(code), 0, 100)
    except UcError as error:
        raise CalibrationError(f"calibration fault did not reach the hook: {error}") from error
    if not seen:
        raise CalibrationError("calibration fault did not happen")
    return clean, seen[0][0], seen[0][1]


def _single(candidates: set[int], what: str) -> int:
    if len(candidates) != 1:
        raise CalibrationError(
            f"cannot locate {what} in this Unicorn build ({len(candidates)} candidates)"
        )
    return candidates.pop()


def _old_exception_offset() -> int:
    candidates: set[int] | None = None
    # div by zero (#DE), then loading a bad selector into DS (#GP).
    for code, expected in ((b"\x31\xc0\xf6\xf0", 0), (b"\x66\xb8\x55\x00\x8e\xd8", 13)):
        clean, fault, vector = _fault_blob(code)
        if vector != expected:
            raise CalibrationError(f"expected vector {expected}, got {vector}")
        found = _i32_offsets(clean, -1) & _i32_offsets(fault, expected)
        candidates = found if candidates is None else candidates & found
    return _single(candidates or set(), "the previous-exception word")


def _is_software_int_offset() -> int:
    _, software, vector = _fault_blob(b"\xcd\x80")
    _, fault, _ = _fault_blob(b"\x31\xc0\xf6\xf0")
    if vector != 0x80:
        raise CalibrationError(f"expected int 0x80, got vector {vector}")
    return _single(_i32_offsets(software, 1) & _i32_offsets(fault, 0), "the software-int flag")


def _error_code_offset() -> int:
    trials = (
        (b"\x8b\x05\x00\x00\x30\x00", 0),  # mov eax, [0x300000]: read, not present
        (b"\xc7\x05\x00\x00\x30\x00\x01\x00\x00\x00", 2),  # write, not present
        (b"\xc7\x05\x00\x00\x20\x00\x01\x00\x00\x00", 3),  # write, read-only (WP)
    )
    candidates: set[int] | None = None
    for code, expected in trials:
        _, fault, vector = _fault_blob(code, paging=True)
        if vector != 14:
            raise CalibrationError(f"expected #PF, got vector {vector}")
        found = _i32_offsets(fault, expected)
        candidates = found if candidates is None else candidates & found
    return _single(candidates or set(), "the exception error code")


def _hflags_offset() -> int:
    """The word whose low two bits are the CPL: compare the same state at ring 0 and ring 3."""
    uc = _protected_engine(paging=False)
    # push 0x23; push 0x8000; push 0x202; push 0x1b; push 0x1100; iret  -> ring 3 at 0x1100
    uc.mem_write(
        _CODE,
        b"\x6a\x23\x68\x00\x80\x00\x00\x68\x02\x02\x00\x00\x6a\x1b\x68\x00\x11\x00\x00\xcf",
    )
    uc.mem_write(0x1100, b"\x90\x90")
    ring0 = _blob(uc)
    uc.emu_start(_CODE, 0x1100, 0, 100)
    ring3 = _blob(uc)
    candidates = set()
    for i in range(0, min(len(ring0), len(ring3)) - 3, 4):
        (a,) = struct.unpack_from("<I", ring0, i)
        (b,) = struct.unpack_from("<I", ring3, i)
        if a & 3 == 0 and b & 3 == 3 and a ^ b == 3 and a & 0x10:  # HF_CS32 set in both
            candidates.add(i)
    return _single(candidates, "the CPL in hflags")


def _load_gpr_pattern(uc: Uc) -> bytes:
    """Put _GPR_PATTERN in EAX..EDI; returns it as the eight 64-bit words the state holds."""
    for reg, value in zip(_GPR_IDS, _GPR_PATTERN, strict=True):
        uc.reg_write(reg, value)
    return struct.pack("<8Q", *_GPR_PATTERN)


def _gprs_offset() -> int:
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    pattern = _load_gpr_pattern(uc)
    blob = _blob(uc)
    found = blob.find(pattern)
    if found < 0 or blob.find(pattern, found + 1) >= 0:
        raise CalibrationError("cannot locate the general registers in this Unicorn build")
    return found


ENGINE_STRUCT_WORDS = 1024  # how much of the uc struct is searched for pointers (8 KiB)
POINTER_WINDOW = 0x20000  # how far past each pointer the registers are looked for


def _readable_mappings() -> list[tuple[int, int]]:
    """(start, end) of every readable mapping of this process, from /proc/self/maps."""
    mappings = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) >= 2 and fields[1].startswith("r"):
                start, _, end = fields[0].partition("-")
                mappings.append((int(start, 16), int(end, 16)))
    return sorted(mappings)


def _readable_length(mappings: list[tuple[int, int]], address: int, size: int) -> int:
    """How many of the `size` bytes at `address` lie in readable mappings, without a gap."""
    covered = address
    for start, end in mappings:  # sorted
        if start <= covered < end:
            covered = end
        elif start > covered:
            break
    return max(0, min(size, covered - address))


def _readable_words(address: int, count: int) -> tuple[int, ...]:
    """Up to `count` 64-bit words from `address`, ending at the first page that cannot be
    read: through /proc/self/mem, since the scan may run past the end of the heap (a ctypes
    read there was a segmentation fault, depending on where malloc put the engine)."""
    data = bytearray()
    end = address + 8 * count
    with open("/proc/self/mem", "rb", buffering=0) as memory:
        while address < end:
            size = min(end, (address | 0xFFF) + 1) - address
            try:
                memory.seek(address)
                piece = memory.read(size)
            except OSError:
                break
            data += piece
            address += size
    return struct.unpack_from(f"<{len(data) // 8}Q", data)


def _icount_word() -> int:
    """The uc struct's retired-instruction counter of a counted emu_start."""
    candidates: set[int] | None = None
    for loops in (37, 1000, 4097):
        uc = Uc(UC_ARCH_X86, UC_MODE_32)
        uc.mem_map(0, 0x10000)
        code = b"\xb9" + struct.pack("<I", loops) + b"\x49\x75\xfd\xf4"  # mov ecx; dec; jnz; hlt
        uc.mem_write(_CODE, code)
        uc.emu_start(_CODE, 0xFFFF, 0, 1_000_000)
        executed = 1 + 2 * loops + 1
        table = _readable_words(ctypes.cast(uc._uch, ctypes.c_void_p).value, 4096)
        found = {i for i, word in enumerate(table) if word == executed}
        candidates = found if candidates is None else candidates & found
    # The scan reads past the uc struct into the heap around it, where a word that happened to
    # match every count was seen once (2 candidates, one process out of many): the uc struct's
    # own field is the first.
    return _single({min(candidates)} if candidates else set(), "the instruction counter")


def _count_limit_word(icount_word: int) -> int | None:
    """The uc struct's copy of a counted emu_start's `count`, next to the counter: Unicorn's
    count hook stops once the counter passes it, so lowering it while the run goes on ends
    the run there (the machine does so when a timer is set for earlier than the slice's
    end). Found only just after the counter, holding the count of two runs; else None."""
    for count in (0x5EED123, 0x1234567):
        uc = Uc(UC_ARCH_X86, UC_MODE_32)
        uc.mem_map(0, 0x10000)
        uc.mem_write(_CODE, b"\x90\xf4")  # nop; hlt
        uc.emu_start(_CODE, 0xFFFF, 0, count)
        words = _readable_words(ctypes.cast(uc._uch, ctypes.c_void_p).value, icount_word + 2)
        if len(words) < icount_word + 2 or words[icount_word + 1] != count:
            return None
    return icount_word + 1


_PROBE_COUNTER = 0x3000
# out 0x80, al; inc dword [0x3000] twice; jmp short next; next: hlt
_STOP_PROBE = b"\xe6\x80" + b"\xff\x05\x00\x30\x00\x00" * 2 + b"\xeb\x00\xf4"
_STOP_PROBE_NEXT = len(_STOP_PROBE) - 1
_CONTEXT_STRUCT_MAX = 64  # sizeof(struct uc_context) is below this


def _stop_probe(flag: int | None) -> tuple[int, int]:
    """(EIP offset, counter) after an OUT hook's emu_stop, with the byte at `flag` of a fresh
    engine set to 1 first (None: left alone)."""
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    uc.mem_map(0, 0x10000)
    if flag is not None:
        ctypes.c_uint8.from_address(ctypes.cast(uc._uch, ctypes.c_void_p).value + flag).value = 1
    uc.mem_write(_CODE, _STOP_PROBE)
    uc.hook_add(UC_HOOK_INSN, lambda u, *_: u.emu_stop(), None, 1, 0, x86.UC_X86_INS_OUT)
    uc.emu_start(_CODE, _CODE + 0x100)
    counter = struct.unpack("<I", uc.mem_read(_PROBE_COUNTER, 4))[0]
    return uc.reg_read(x86.UC_X86_REG_EIP) - _CODE, counter


def _exit_check_flag() -> int | None:
    """The uc struct's `no_exit_request` byte: set while code is translated, the translation
    has no exit check after each memory access, so a stop ends emulation at the next block
    start only. Unicorn's checks restore EIP to the start of the instruction whose access they
    follow, even when that was the store of a completed read-modify-write (`inc [m]` runs
    twice: docs/UNICORN.md). Found by the fields around it (`cpu_context_size`, `next_pc`,
    `hook_insert`, `first_tb`, then it, then `init_done` = 1) and confirmed by behaviour: with
    it set, an OUT hook's stop lets the probe's block finish. None if no byte passes."""
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    context_size = uc.context_save().size
    words = _readable_words(ctypes.cast(uc._uch, ctypes.c_void_p).value, 4096)
    raw = struct.pack(f"<{len(words)}Q", *words)
    candidates = [
        offset
        for offset in range(8 * _icount_word() + 18, len(raw) - 1, 8)
        if raw[offset - 2 : offset + 2] == b"\0\0\0\1"
        and 0 < context_size - struct.unpack_from("<i", raw, offset - 18)[0] < _CONTEXT_STRUCT_MAX
    ]
    if _stop_probe(None) != (2, 0):  # stops exit mid-block as documented, or this is moot
        return None
    found = [flag for flag in candidates if _stop_probe(flag) == (_STOP_PROBE_NEXT, 2)]
    return found[0] if len(found) == 1 else None


@dataclass(frozen=True)
class StateLayout:
    """Byte offsets in the live CPU state of what interrupt delivery reads on every event, so
    that one delivery needs a single API call (EFLAGS, whose arithmetic flags Unicorn keeps
    apart while code runs). Each is a uint64; a segment's 16-bit selector is the uint32 8 bytes
    before its base, a table register's limit the uint32 just after its base."""

    cr0: int
    cr3: int
    cs_base: int
    ss_base: int
    gdt_base: int
    idt_base: int
    tr_base: int


def _u64_offsets(blob: bytes, value: int) -> set[int]:
    packed = struct.pack("<Q", value)
    return {i for i in range(0, len(blob) - 7, 8) if blob[i : i + 8] == packed}


def _layout_trial(uc: Uc, salt: int) -> dict[str, set[int]]:
    """Put values made from `salt` in every field; the offsets that hold each one (with the
    selector before a segment base, the limit after a table base)."""
    tables = {"gdt": x86.UC_X86_REG_GDTR, "idt": x86.UC_X86_REG_IDTR, "tr": x86.UC_X86_REG_TR}
    for index, reg in enumerate(tables.values()):
        uc.reg_write(reg, (0, 0x10000 * (salt + index + 1), 0x100 + 8 * index + salt, 0))
    uc.reg_write(x86.UC_X86_REG_CR0, 0x60000010 | (salt & 1) << 18)  # real mode, AM differs
    uc.reg_write(x86.UC_X86_REG_CR3, 0x100000 * (salt + 7))
    uc.reg_write(x86.UC_X86_REG_CS, 0x1230 + salt)
    uc.reg_write(x86.UC_X86_REG_SS, 0x4560 + salt)
    blob = _blob(uc)
    found = {
        "cr0": _u64_offsets(blob, 0x60000010 | (salt & 1) << 18),
        "cr3": _u64_offsets(blob, 0x100000 * (salt + 7)),
    }
    for name, selector in (("cs_base", 0x1230 + salt), ("ss_base", 0x4560 + salt)):
        found[name] = {
            i
            for i in _u64_offsets(blob, selector << 4)
            if _i32_offsets(blob[i - 8 : i - 4], selector)
        }
    for index, name in enumerate(tables):
        limit = struct.pack("<I", 0x100 + 8 * index + salt)
        found[f"{name}_base"] = {
            i
            for i in _u64_offsets(blob, 0x10000 * (salt + index + 1))
            if blob[i + 8 : i + 12] == limit
        }
    return found


@cache
def state_layout() -> StateLayout | None:
    """The delivery fields of the CPU state (offsets comparable with Calibration's), or None if
    any is not found at exactly one place in two trials (delivery then uses the API)."""
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    first, second = _layout_trial(uc, 1), _layout_trial(uc, 2)
    offsets = {}
    for name, candidates in first.items():
        both = candidates & second[name]
        if len(both) != 1:
            return None
        offsets[name] = both.pop()
    return StateLayout(**offsets)


@cache
def calibrate() -> Calibration:
    icount_word = _icount_word()
    return Calibration(
        old_exception=_old_exception_offset(),
        error_code=_error_code_offset(),
        hflags=_hflags_offset(),
        is_software_int=_is_software_int_offset(),
        icount_word=icount_word,
        gprs=_gprs_offset(),
        exit_check_flag=_exit_check_flag(),
        count_limit_word=_count_limit_word(icount_word),
    )


def locate_cpu_state(uc: Uc) -> int | None:
    """The address of the live CPU state of engine `uc`, or None: the address that the context
    blob's offset 0 (after its header) corresponds to, so every calibrated blob offset can be
    read there directly. The general registers are eight 64-bit words from EAX to EDI.

    Why: a register read through Unicorn's API costs ~1 us, a read of that memory ~50 ns, and a
    hypercall needs two. Distinct values are put in the registers and the memory near each
    pointer held in the engine struct is searched for that run of words; a copy (a saved
    context) is told from the live state by changing EAX once more. Every read goes through
    /proc/self/mem and is first cut to the readable mappings of /proc/self/maps, so a stale
    pointer costs nothing, never a crash. None (the slower API path) if it is not found."""
    saved = [uc.reg_read(reg) for reg in _GPR_IDS]
    pattern = _load_gpr_pattern(uc)
    base = ctypes.cast(uc._uch, ctypes.c_void_p).value
    live: list[int] = []
    try:
        mappings = _readable_mappings()
        words = _readable_words(base, ENGINE_STRUCT_WORDS)
        candidates: list[int] = []
        with open("/proc/self/mem", "rb", buffering=0) as memory:

            def read(address: int, size: int) -> bytes | None:
                size = _readable_length(mappings, address, size)
                if size <= 0:
                    return None
                try:
                    memory.seek(address)
                    return memory.read(size)
                except (OSError, ValueError, OverflowError):
                    return None

            for pointer in {w for w in words if w > 0x10000 and w % 8 == 0}:
                window = read(pointer, POINTER_WINDOW) or b""
                found = window.find(pattern)
                while found >= 0:
                    if found % 8 == 0:
                        candidates.append(pointer + found)
                    found = window.find(pattern, found + 8)
            uc.reg_write(x86.UC_X86_REG_EAX, _GPR_PATTERN[0] ^ 0xFFFF)
            live = [
                address for address in set(candidates)
                if read(address, 8) == struct.pack("<Q", _GPR_PATTERN[0] ^ 0xFFFF)
            ]  # fmt: skip
    except OSError:
        return None
    finally:
        for reg, value in zip(_GPR_IDS, saved, strict=True):
            uc.reg_write(reg, value)
    if len(live) != 1:
        return None
    return live[0] - calibrate().gprs
