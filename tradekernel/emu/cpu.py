"""The x86 CPU: a Unicorn engine with fast register access and the fixes Unicorn needs.

Unicorn's Python binding costs ~3 us per register access; the C API through ctypes costs
under 1 us, so hot paths (hypercalls, port I/O, interrupt delivery) use `Cpu.read`/`Cpu.write`.

Unicorn keeps some CPU state only inside its context blob. Three things are found there by
calibration at start-up, never by hard-coded offsets, so a Unicorn upgrade fails loudly:
- the "previous exception" word (unicorn#1883): left set, it turns the second fault into #DF
  and the third into a triple fault. After each handled fault it is written back to -1.
- the page-fault error code, which no register exposes.
- the instructions-retired counter of a counted `emu_start`, for deterministic time.
"""

from __future__ import annotations

import ctypes
import mmap
import struct

from unicorn import (
    UC_ARCH_X86,
    UC_CTL_IO_WRITE,
    UC_CTL_TB_REMOVE_CACHE,
    UC_HOOK_INSN,
    UC_HOOK_INTR,
    UC_MODE_32,
    UC_PROT_ALL,
    Uc,
    UcError,
)
from unicorn import x86_const as x86
from unicorn.unicorn_py3.unicorn import uclib

from tradekernel.emu.calibrate import StateLayout, calibrate, locate_cpu_state, state_layout

# Register ids, re-exported so the rest of emu/ reads like x86 and not like Unicorn.
EAX, EBX, ECX, EDX = x86.UC_X86_REG_EAX, x86.UC_X86_REG_EBX, x86.UC_X86_REG_ECX, x86.UC_X86_REG_EDX
ESI, EDI, EBP, ESP = x86.UC_X86_REG_ESI, x86.UC_X86_REG_EDI, x86.UC_X86_REG_EBP, x86.UC_X86_REG_ESP
EIP, EFLAGS = x86.UC_X86_REG_EIP, x86.UC_X86_REG_EFLAGS
CS, SS, DS, ES, FS, GS = (
    x86.UC_X86_REG_CS,
    x86.UC_X86_REG_SS,
    x86.UC_X86_REG_DS,
    x86.UC_X86_REG_ES,
    x86.UC_X86_REG_FS,
    x86.UC_X86_REG_GS,
)
CR0, CR2, CR3, CR4 = (
    x86.UC_X86_REG_CR0,
    x86.UC_X86_REG_CR2,
    x86.UC_X86_REG_CR3,
    x86.UC_X86_REG_CR4,
)
GPRS = (EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI)
GPR_NAMES = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi")

FLAG_CF, FLAG_ZF, FLAG_TF, FLAG_IF = 0x1, 0x40, 0x100, 0x200
FLAG_IOPL, FLAG_NT, FLAG_RF, FLAG_VM = 0x3000, 0x4000, 0x10000, 0x20000
CR0_PE, CR0_WP, CR0_PG = 0x1, 0x10000, 0x80000000

_INSN_IN = x86.UC_X86_INS_IN
_INSN_OUT = x86.UC_X86_INS_OUT
_INSN_CPUID = x86.UC_X86_INS_CPUID
_INSN_SYSCALL = x86.UC_X86_INS_SYSCALL
_INSN_SYSENTER = x86.UC_X86_INS_SYSENTER

_IN_CB = ctypes.CFUNCTYPE(
    ctypes.c_uint32, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_void_p
)
_OUT_CB = ctypes.CFUNCTYPE(
    None, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint32, ctypes.c_void_p
)
_INTR_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p)
_CPUID_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
_SYSCALL_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)

HF_INHIBIT_IRQ = 1 << 3  # QEMU hflags: interrupts inhibited for one instruction
# uc_ctl's code for "remove the translations of [start, end)": a write with two arguments.
_CTL_REMOVE_CACHE = (UC_CTL_IO_WRITE << 30) | (2 << 26) | UC_CTL_TB_REMOVE_CACHE
A20_WINDOW, A20_WINDOW_SIZE = 0x100000, 0x10000  # the high memory area A20 decides about
_NO_ADDRESS = 0xFFFF_FFFF_FFFF_FFFF  # a hook range no 32-bit EIP is in
_NO_EXIT = 0xFFFF_FFFF_FFFF  # emu_start's `until`, unused: exits are enabled and none set
_CONTEXT_HEADER = 16  # uc_context: size_t size; uc_mode mode; uc_arch arch; then the CPU state


class _TableRegister(ctypes.Structure):
    """Unicorn's uc_x86_mmr: what it fills for GDTR, IDTR, LDTR and TR."""

    _fields_ = (
        ("selector", ctypes.c_uint16),
        ("base", ctypes.c_uint64),
        ("limit", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
    )


class CpuError(Exception):
    """Unicorn refused something (bad register write, unmapped memory, calibration failure)."""


class Cpu:
    """One x86 core with RAM mapped from a host buffer, so guest memory is a Python memoryview."""

    def __init__(self, ram_bytes: int) -> None:
        # A 32-bit engine, put into real mode at power-on by clearing CR0.PE (Machine.power_on):
        # a 16-bit engine would truncate EIP to 16 bits whenever emulation is (re)started.
        self.uc = Uc(UC_ARCH_X86, UC_MODE_32)
        # No `until` address: with it, `emu_start` looked up the code page of 0xFFFFFFFF..
        # through the guest's page tables on its way out and, that page being unmapped, left
        # 0xfffffffe in CR2, so a #PF handler that read CR2 after a slice end saw a wrong
        # address (docs/UNICORN.md). With exits enabled and none set, nothing is looked up.
        self.uc.ctl_exits_enabled(True)
        self._handle = self.uc._uch
        self._engine = ctypes.cast(self._handle, ctypes.c_void_p).value  # the uc struct
        self.ram_bytes = ram_bytes
        # Anonymous memory: the host gives a page only when it is first touched (a guest that
        # uses 5 MiB of 64 costs 5), where a zero-filled buffer would cost all of it at once.
        self._ram_map = mmap.mmap(-1, ram_bytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self._ram = (ctypes.c_char * ram_bytes).from_buffer(self._ram_map)
        self.ram = memoryview(self._ram).cast("B")
        self._u32 = ctypes.c_uint32()
        self._mmr = _TableRegister()
        self._mmr_ref = ctypes.byref(self._mmr)
        self._u32_ref = ctypes.byref(self._u32)
        self._reg_read = uclib.uc_reg_read
        self._reg_write = uclib.uc_reg_write
        self._reg_read_batch = uclib.uc_reg_read_batch
        self._reg_write_batch = uclib.uc_reg_write_batch
        self._emu_start = uclib.uc_emu_start
        self._batches: dict[tuple[int, ...], tuple[ctypes.Array, ...]] = {}
        self._callbacks: list[object] = []  # keep ctypes thunks alive
        self._mapped: list[tuple[int, int]] = []
        # Three mappings so the A20 gate can swap the 64 KiB above 1 MiB for an alias of 0-64 KiB.
        hma_end = A20_WINDOW + A20_WINDOW_SIZE
        self.map_ram(0, A20_WINDOW, 0)
        self.map_ram(A20_WINDOW, A20_WINDOW_SIZE, A20_WINDOW)
        self.map_ram(hma_end, ram_bytes - hma_end, hma_end)
        # The live CPU state, read directly on hot paths (registers in hooks, the CPL); where it
        # cannot be found the same values come through Unicorn's API, ~5x slower.
        state = locate_cpu_state(self.uc)
        cal = calibrate()
        self._gprs = None
        self._eip = None
        self._hflags = None
        self._eflags = None
        # Unicorn's translation-time switch for the exit checks after memory accesses (see
        # `start`), where calibration found it; the translations now in the cache have them.
        self._exit_checks = None
        if cal.exit_check_flag is not None:
            engine = ctypes.cast(self._handle, ctypes.c_void_p).value
            self._exit_checks = ctypes.c_uint8.from_address(engine + cal.exit_check_flag)
        self._block_stops = False
        self.running = False  # inside `start` (a hook runs now), or between runs
        # `env->eflags` holds the whole EFLAGS now (see `flags`): between runs, where it was
        # found; not inside a run, nor after restoring a context saved inside a hook (the
        # arithmetic flags were kept apart there) until the next run has ended.
        self.flags_in_place = False
        # The instructions a counted `start` has retired so far (read also mid-run).
        self.retired = ctypes.c_uint64.from_address(self._engine + 8 * cal.icount_word)
        self.state = state  # address of the live CPU state, or None
        # Where CR0, CR3, CS, SS and the table registers sit in it (interrupt delivery).
        self.layout: StateLayout | None = state_layout() if state is not None else None
        if state is not None:
            regs = state + cal.gprs
            self._gprs = (ctypes.c_uint64 * 8).from_address(regs)
            self._eip = ctypes.c_uint64.from_address(regs + 8 * 16)
            self._hflags = ctypes.c_uint32.from_address(state + cal.hflags)
            # QEMU's CPUX86State: regs[16], eip, then eflags (IF is kept there, exact).
            eflags = ctypes.c_uint64.from_address(regs + 8 * 18 - 8)
            self.write(EFLAGS, FLAG_IF | 2)
            if eflags.value & FLAG_IF:
                self.write(EFLAGS, 2)
                if not eflags.value & FLAG_IF:
                    self._eflags = eflags
        # The same words for the run loop and the OUT hook, which read them inline (a call less
        # each, on every interrupt: issue 16 part 3); None where the live state was not found.
        self.flags_in_place = self._eflags is not None
        self.hflags_word: ctypes.c_uint32 | None = self._hflags
        self.eflags_word: ctypes.c_uint64 | None = self._eflags
        self.eip_word: ctypes.c_uint64 | None = self._eip

    # ---- memory -------------------------------------------------------------------------
    def map_ram(self, address: int, size: int, ram_offset: int) -> None:
        """Map `size` bytes of the RAM buffer at `ram_offset` to guest `address` (aliases ok)."""
        base = ctypes.addressof(self._ram) + ram_offset
        self.uc.mem_map_ptr(address, size, UC_PROT_ALL, base)
        self._mapped.append((address, size))

    def release_ram(self) -> None:
        """Give every RAM page back to the host now; RAM reads as zeros afterwards. For a
        machine nobody runs or reads again, whose buffer would otherwise be held until the
        cycle collector frees the machine (emu/pc.py)."""
        self._ram_map.madvise(mmap.MADV_DONTNEED)

    def unmap(self, address: int, size: int) -> None:
        self.uc.mem_unmap(address, size)
        self._mapped.remove((address, size))

    def map_mmio(self, address: int, size: int, read, write) -> None:  # noqa: ANN001
        self.uc.mmio_map(address, size, read, None, write, None)

    def drop_translations(self, start: int, end: int, *, as_ring0: bool = False) -> None:
        """Forget the code Unicorn translated from linear [start, end).

        Unicorn (uc_invalidate_tb) turns `start` into a physical address through the code TLB
        of the current CPL, then drops every translation of the physical range of the same
        length: so the range must be physically contiguous, and a `start` that is not mapped
        (or is supervisor-only while CPL is 3) silently drops nothing. `as_ring0` looks the
        address up as ring 0 does, the CPL bits of hflags cleared for the call only. Safe
        inside a hook: a translation that is running finishes its block, the next fetch
        translates anew."""
        hflags = self._hflags
        saved = None
        if as_ring0 and hflags is not None:
            saved = hflags.value
            hflags.value = saved & ~3
        try:
            uclib.uc_ctl(
                self._handle, _CTL_REMOVE_CACHE, ctypes.c_uint64(start), ctypes.c_uint64(end)
            )
        finally:
            if saved is not None:
                hflags.value = saved

    @property
    def ring0_lookups_in_place(self) -> bool:
        """Whether `drop_translations(as_ring0=True)` can look up as ring 0 from any CPL (it
        needs the live state; without it only a CPL-0 caller gets a ring-0 lookup)."""
        return self._hflags is not None

    def drop_physical_translations(self, pages: list[int]) -> None:
        """Forget the code translated from these physical 4 KiB pages, whatever maps them:
        paging is switched off around the calls so that linear = physical. Only between slices
        (a CR0 write inside a hook would change the mode under a running translation)."""
        cr0 = self.read(CR0)
        if cr0 & CR0_PG:
            self.write(CR0, cr0 & ~CR0_PG)
        try:
            for page in pages:
                self.drop_translations(page, page + 0x1000)
        finally:
            if cr0 & CR0_PG:
                self.write(CR0, cr0)

    # ---- registers ----------------------------------------------------------------------
    def read(self, reg: int) -> int:
        self._reg_read(self._handle, reg, self._u32_ref)
        return self._u32.value

    def write(self, reg: int, value: int) -> None:
        self._u32.value = value & 0xFFFFFFFF
        if self._reg_write(self._handle, reg, self._u32_ref):
            raise CpuError(f"register {reg} refused value {value:#x}")

    def read_batch(self, regs: tuple[int, ...]) -> list[int]:
        """Several registers in one C call (uc_reg_read_batch): ~1 us instead of ~1 us each.
        Segment selectors come back with stale high bits, as from `read`."""
        ids, values, pointers = self._batch(regs)
        if self._reg_read_batch(self._handle, ids, pointers, len(regs)):
            raise CpuError(f"registers {regs} unreadable")
        return [value & 0xFFFFFFFF for value in values]

    def write_batch(self, regs: tuple[int, ...], values: list[int]) -> None:
        """Several registers in one C call, written in order (uc_reg_write_batch)."""
        ids, buffer, pointers = self._batch(regs)
        for index, value in enumerate(values):
            buffer[index] = value & 0xFFFFFFFF
        if self._reg_write_batch(self._handle, ids, pointers, len(regs)):
            raise CpuError(f"registers {regs} refused {[hex(v) for v in values]}")

    def _batch(self, regs: tuple[int, ...]):  # noqa: ANN202 - three ctypes arrays
        """The C arrays a batch call takes, made once per register list."""
        arrays = self._batches.get(regs)
        if arrays is None:
            count = len(regs)
            values = (ctypes.c_uint64 * count)()
            base = ctypes.addressof(values)
            pointers = (ctypes.c_void_p * count)(*(base + 8 * i for i in range(count)))
            arrays = self._batches[regs] = ((ctypes.c_int * count)(*regs), values, pointers)
        return arrays

    def gpr(self, index: int) -> int:
        """General register by x86 number (0 EAX, 1 ECX, 2 EDX, 3 EBX, 4 ESP, 5 EBP, 6 ESI,
        7 EDI). Valid inside hooks, where Unicorn keeps the CPU state current."""
        gprs = self._gprs
        if gprs is not None:
            return gprs[index] & 0xFFFFFFFF
        return self.read(GPRS[index])

    def eip(self) -> int:
        """EIP, from the live state where it was found. Exact between slices and inside I/O
        hooks (Unicorn brings it up to date before calling one)."""
        eip = self._eip
        if eip is not None:
            return eip.value & 0xFFFFFFFF
        return self.read(EIP)

    def set_eip(self, value: int) -> None:
        """EIP, written in the live state where it was found. Unicorn's API write of EIP also
        sets `skip_sync_pc_on_exit`, which stays set when the write is made in an interrupt
        hook (the exit it asks for is taken between blocks, where the flag is not consumed):
        the next stop in that run then leaves EIP wherever it was last stored, the start of
        an earlier block (docs/UNICORN.md). The live write only moves EIP, and Unicorn looks
        up the next block from it."""
        eip = self._eip
        if eip is not None:
            eip.value = value & 0xFFFFFFFF
        else:
            self.write(EIP, value)

    def gprs32(self) -> list[int]:
        """All eight general registers at once (x86 order), for system-call arguments."""
        gprs = self._gprs
        if gprs is not None:
            return [value & 0xFFFFFFFF for value in gprs]
        return [self.read(reg) for reg in GPRS]

    def set_gpr(self, index: int, value: int) -> None:
        gprs = self._gprs
        if gprs is not None:
            gprs[index] = (gprs[index] & ~0xFFFFFFFF) | (value & 0xFFFFFFFF)
        else:
            self.write(GPRS[index], value)

    def state_i32(self, offset: int) -> ctypes.c_int32:
        """The int32 at a calibrated offset of the live CPU state (requires `state`)."""
        assert self.state is not None
        return ctypes.c_int32.from_address(self.state + offset)

    def state_u64(self, offset: int) -> ctypes.c_uint64:
        """The uint64 at an offset of the live CPU state (requires `state`)."""
        assert self.state is not None
        return ctypes.c_uint64.from_address(self.state + offset)

    def clear_flags(self, mask: int) -> None:
        """Clear system flags (IF, TF, NT, RF, VM: never the arithmetic ones) in EFLAGS. In the
        live state where it was found: those bits live in `env->eflags` itself, while code runs
        and between runs alike, and Unicorn reads them there when it looks up the next block."""
        eflags = self._eflags
        if eflags is not None:
            eflags.value &= ~mask
        else:
            self.write(EFLAGS, self.read(EFLAGS) & ~mask)

    def clear_cpl(self) -> None:
        """CPL 0 in hflags, so that ring-0 SS and CS can be loaded (interrupt delivery)."""
        if self._hflags is not None:
            self._hflags.value &= ~3
            return
        ctx = self.uc.context_save()
        view = self.context_view(ctx)
        offset = calibrate().hflags
        (hflags,) = struct.unpack_from("<I", view, offset)
        struct.pack_into("<I", view, offset, hflags & ~3)
        self.uc.context_restore(ctx)

    def flags(self) -> int:
        """EFLAGS. Between runs from the live state where it was found: Unicorn folds the
        arithmetic flags back into `env->eflags` as a run ends (and an API write stores all of
        them there), while inside a run they sit apart and only the API computes them."""
        eflags = self._eflags
        if self.flags_in_place:
            return eflags.value & 0xFFFFFFFF
        self._reg_read(self._handle, EFLAGS, self._u32_ref)
        return self._u32.value

    def interrupts_enabled(self) -> bool:
        """EFLAGS.IF, read from the live state where it was found (valid inside hooks)."""
        eflags = self._eflags
        if eflags is not None:
            return bool(eflags.value & FLAG_IF)
        return bool(self.read(EFLAGS) & FLAG_IF)

    def interrupt_shadow(self) -> bool:
        """The one-instruction shadow of `sti` or `mov ss` (HF_INHIBIT_IRQ in hflags): the
        next instruction runs before an interrupt may be taken."""
        if self._hflags is not None:
            return bool(self._hflags.value & HF_INHIBIT_IRQ)
        return False

    def read_segment(self, reg: int) -> int:
        """Unicorn writes only 16 bits for a selector: the rest of the buffer is stale."""
        return self.read(reg) & 0xFFFF

    def cpl(self) -> int:
        """The current privilege level (0 in real mode, 3 in virtual-8086 mode)."""
        if self._hflags is not None:
            return self._hflags.value & 3
        if not self.read(CR0) & CR0_PE:
            return 0
        if self.read(EFLAGS) & FLAG_VM:
            return 3
        return self.read(CS) & 3

    def read_table_register(self, reg: int) -> tuple[int, int]:
        """GDTR/IDTR/TR as (base, limit), through the C API (the binding's tuple path is ~10x
        slower and interrupt delivery reads two of these)."""
        self._reg_read(self._handle, reg, self._mmr_ref)
        return self._mmr.base, self._mmr.limit

    def write_table_register(self, reg: int, base: int, limit: int, selector: int = 0) -> None:
        self.uc.reg_write(reg, (selector, base, limit, 0))

    def all_registers(self) -> dict[str, int]:
        """A named snapshot for crash reports and the debugger (slow path)."""
        regs = {name: self.read(reg) for name, reg in zip(GPR_NAMES, GPRS, strict=True)}
        for name, reg in (("cs", CS), ("ss", SS), ("ds", DS), ("es", ES), ("fs", FS), ("gs", GS)):
            regs[name] = self.read_segment(reg)
        for name, reg in (
            ("eip", EIP),
            ("eflags", EFLAGS),
            ("cr0", CR0),
            ("cr2", CR2),
            ("cr3", CR3),
            ("cr4", CR4),
        ):
            regs[name] = self.read(reg)
        return regs

    # ---- hooks --------------------------------------------------------------------------
    def _hook(self, kind: int, thunk: object, *extra: object, bounded: bool = True) -> None:
        """`bounded` False: a range no EIP is in (see `on_port_in`)."""
        self._callbacks.append(thunk)
        hook = ctypes.c_size_t()
        begin, end = (1, 0) if bounded else (_NO_ADDRESS, _NO_ADDRESS)
        args = [ctypes.c_uint64(begin), ctypes.c_uint64(end), *extra]
        err = uclib.uc_hook_add(
            self._handle, ctypes.byref(hook), kind, ctypes.cast(thunk, ctypes.c_void_p), None, *args
        )
        if err:
            raise CpuError(f"hook {kind} refused: {UcError(err)}")

    # Unicorn keeps every instruction hook in one list. The cpuid, syscall and sysenter
    # helpers walk it and give up at the first hook that is in range once a stop is pending,
    # before reaching their own: a stop from another thread landing just before a `cpuid`
    # made Unicorn answer it itself (docs/UNICORN.md). The IN/OUT helpers call their hooks
    # without a range check, so those get a range no EIP is in, and the cpuid hook must be
    # the first one added (Machine._install_hooks).
    def on_port_in(self, handler) -> None:  # noqa: ANN001
        """handler(engine, port, size, user_data) -> value, Unicorn's own arguments (no adapter
        call on a path every port read takes); runs inside the `in` instruction."""
        self._hook(
            UC_HOOK_INSN,
            _IN_CB(handler),
            ctypes.c_int(_INSN_IN),
            bounded=False,
        )

    def on_port_out(self, handler) -> None:  # noqa: ANN001
        """handler(engine, port, size, value, user_data), as `on_port_in`; runs inside the
        `out` instruction."""
        self._hook(
            UC_HOOK_INSN,
            _OUT_CB(handler),
            ctypes.c_int(_INSN_OUT),
            bounded=False,
        )

    def on_interrupt(self, handler) -> None:  # noqa: ANN001
        """handler(engine, vector, user_data), as `on_port_in`: every `int n`, exception and
        fault Unicorn would otherwise swallow."""
        self._hook(UC_HOOK_INTR, _INTR_CB(handler))

    def on_cpuid(self, handler) -> None:  # noqa: ANN001
        """handler() -> True if it answered (the instruction is then skipped)."""
        self._hook(
            UC_HOOK_INSN, _CPUID_CB(lambda h, ud: 1 if handler() else 0), ctypes.c_int(_INSN_CPUID)
        )

    def on_system_instruction(self, handler) -> None:  # noqa: ANN001
        """handler(name) for `syscall` / `sysenter`, which Unicorn otherwise skips. EIP is at
        the instruction inside the hook; Unicorn steps past it after the hook returns."""
        for insn, name in ((_INSN_SYSCALL, "syscall"), (_INSN_SYSENTER, "sysenter")):
            self._hook(
                UC_HOOK_INSN,
                _SYSCALL_CB(lambda h, ud, name=name: handler(name)),
                ctypes.c_int(insn),
            )

    # ---- running ------------------------------------------------------------------------
    @property
    def block_stops(self) -> bool:
        """Whether the running (or last) `start` translated without the mid-block exit
        checks: a stop then lands only where a block starts."""
        return self._block_stops

    def start(self, eip: int, count: int = 0, *, block_stops: bool = False) -> None:
        """Run from CS:`eip` until stopped (`count` > 0: at most that many instructions).

        `block_stops` (uncounted runs only): a stop ends the run at the next translation block
        instead of at the next memory access. Unicorn checks for a stop after every load and
        store and then restores EIP to the start of that instruction, also after the store of
        a completed read-modify-write, which therefore runs twice (`inc [m]` counts two; a stop
        from another thread lands there: docs/UNICORN.md). Without the checks the block runs
        to its end and EIP is exact. A counted run and a code hook that stops at its
        instruction need the checks, so the caller asks for block stops only where neither
        is in use. The choice is made when code is translated: changing it drops the cache."""
        block_stops = block_stops and count == 0 and self._exit_checks is not None
        if block_stops != self._block_stops:
            assert self._exit_checks is not None
            self._exit_checks.value = int(block_stops)
            self.uc.ctl_flush_tb()
            self._block_stops = block_stops
        self.running = True
        self.flags_in_place = False
        try:
            # uc_emu_start straight through ctypes (the binding's wrapper is one more Python
            # call per slice: every IRQ that wakes a `hlt` costs a slice, issue 16 part 3)
            status = self._emu_start(self._handle, eip, _NO_EXIT, 0, count)
        finally:
            self.running = False
            self.flags_in_place = self._eflags is not None
        uc = self.uc
        error = uc._hook_exception  # a hook added through the binding raised (it stopped)
        if status or error is not None:
            uc._hook_exception = None
            if status:
                raise UcError(status)
            raise error

    def stop(self) -> None:
        self.uc.emu_stop()

    # ---- the context blob ---------------------------------------------------------------
    def save_context(self):  # noqa: ANN201
        return self.uc.context_save()

    def restore_context(self, ctx) -> None:  # noqa: ANN001
        self.uc.context_restore(ctx)
        self.flags_in_place = False  # it may have been saved inside a hook

    @staticmethod
    def context_view(ctx) -> ctypes.Array:  # noqa: ANN001
        """The live bytes of a saved context, writable in place."""
        address = ctypes.cast(ctx.context, ctypes.c_void_p).value
        return (ctypes.c_char * (ctx.size - _CONTEXT_HEADER)).from_address(
            address + _CONTEXT_HEADER
        )

    def engine_u64(self, index: int) -> int:
        return ctypes.c_uint64.from_address(self._engine + 8 * index).value
