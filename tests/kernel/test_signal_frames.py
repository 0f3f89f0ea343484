"""The i386 signal frames (kernel/proc/signals.py) against Linux's layout, without a machine."""

from __future__ import annotations

import struct

import pytest
from capstone import CS_ARCH_X86, CS_MODE_32, Cs

from tradekernel.kernel.arch.trapframe import FIELDS, TrapFrame
from tradekernel.kernel.proc import signals as S


class FlatMemory:
    """Just enough of GuestMemory for a TrapFrame."""

    def __init__(self, size: int) -> None:
        self.data = bytearray(size)

    def read_u32(self, address: int) -> int:
        return struct.unpack_from("<I", self.data, address)[0]

    def write_u32(self, address: int, value: int) -> None:
        struct.pack_into("<I", self.data, address, value & 0xFFFF_FFFF)


def user_frame(**values: int) -> TrapFrame:
    frame = TrapFrame(FlatMemory(4 * len(FIELDS)), 0)
    defaults = dict(gs=0x23, fs=0x23, es=0x23, ds=0x23, cs=0x1B, user_ss=0x23, eflags=0x202)
    for index, name in enumerate(FIELDS):
        frame.set(name, {**defaults, **values}.get(name, 0x1000 + index))
    return frame


def test_offsets_are_linux_ones() -> None:
    """strace's i386 sigreturn decoder: 20 words, oldmask, cr2, 156 words of fpstate, then
    the mask's high word; rt_sigframe's ucontext after 16 bytes of pointers and a siginfo."""
    assert S.SIGCONTEXT.size == 88 and S.SIGFRAME_SC == 8
    assert S.SIGFRAME_EXTRAMASK == S.SIGFRAME_SC + 22 * 4 + 156 * 4 == 720
    assert S.SIGFRAME_SIZE == 732 and S.RT_SIGFRAME_SIZE == 268
    assert (S.RT_INFO, S.RT_UC, S.RT_MCONTEXT, S.RT_SIGMASK) == (16, 144, 164, 252)


def test_trampolines_are_the_sigreturn_calls() -> None:
    disassembler = Cs(CS_ARCH_X86, CS_MODE_32)
    plain = [f"{i.mnemonic} {i.op_str}".strip() for i in disassembler.disasm(S.RETCODE, 0)]
    assert plain == ["pop eax", "mov eax, 0x77", "int 0x80"]
    rt = [f"{i.mnemonic} {i.op_str}".strip() for i in disassembler.disasm(S.RT_RETCODE_BYTES, 0)]
    assert rt[:2] == ["mov eax, 0xad", "int 0x80"]


def test_sigframe_fields() -> None:
    frame = user_frame(eax=7, eip=0x0804_8123, user_esp=0xBFFF_F000, cr2=0x5000_0000)
    mask = (1 << 40) | (1 << 9)
    context = S.pack_sigcontext(frame, mask)
    address = S.frame_address(frame.user_esp, S.SIGFRAME_SIZE)
    data = S.build_sigframe(address, S.SIGUSR1, S.Action(0x0804_8000), context, mask)
    assert len(data) == S.SIGFRAME_SIZE
    pretcode, signal = struct.unpack_from("<Ii", data)
    assert (pretcode, signal) == (address + S.SIGFRAME_RETCODE, S.SIGUSR1)
    words = struct.unpack_from("<22I", data, S.SIGFRAME_SC)
    assert words[11] == 7 and words[14] == 0x0804_8123 and words[7] == 0xBFFF_F000
    assert words[19] == 0 and words[20] == 1 << 9 and words[21] == 0x5000_0000
    assert struct.unpack_from("<I", data, S.SIGFRAME_EXTRAMASK)[0] == 1 << 8
    assert data[S.SIGFRAME_RETCODE :] == S.RETCODE
    restorer = S.Action(0x0804_8000, S.SA_RESTORER, 0x0804_9000)
    assert struct.unpack_from("<I", S.build_sigframe(address, 10, restorer, context, 0))[0] == (
        0x0804_9000
    )


def test_rt_sigframe_fields() -> None:
    frame = user_frame()
    info = S.siginfo(S.SIGCHLD, S.CLD_EXITED, 5, 0, 3)
    address = 0xBFFF_E000 - 4
    data = S.build_rt_sigframe(address, S.SIGCHLD, S.Action(0x0804_8000, S.SA_SIGINFO),
                               S.pack_sigcontext(frame, 1 << 33), 1 << 33, info)  # fmt: skip
    assert len(data) == S.RT_SIGFRAME_SIZE
    assert struct.unpack_from("<IiII", data)[1:] == (S.SIGCHLD, address + 16, address + 144)
    assert data[S.RT_INFO : S.RT_UC] == info
    assert struct.unpack_from("<iii", data, S.RT_INFO) == (S.SIGCHLD, 0, S.CLD_EXITED)
    assert struct.unpack_from("<Q", data, S.RT_SIGMASK)[0] == 1 << 33
    assert struct.unpack_from("<I", data, S.RT_UC + 12)[0] == S.SS_DISABLE


@pytest.mark.parametrize("esp", [0xBFFF_F000, 0xBFFF_EFFF, 0xBFFF_EFF3, 0x0804_A00C])
def test_frames_are_aligned_like_after_a_call(esp: int) -> None:
    for size in (S.SIGFRAME_SIZE, S.RT_SIGFRAME_SIZE):
        address = S.frame_address(esp, size)
        assert (address + 4) % 16 == 0
        assert address + size <= esp < address + size + 16


def test_sigreturn_restores_every_register() -> None:
    saved = user_frame(eax=1, ebx=2, ecx=3, edx=4, esi=5, edi=6, ebp=7, eip=8, user_esp=9,
                       eflags=0x202 | 0x400 | 0x1, fs=0, gs=0)  # fmt: skip
    context = S.pack_sigcontext(saved, 0)
    current = user_frame(eflags=0x202)
    assert S.restore_sigcontext(current, context) == 1
    for name in ("eax", "ebx", "ecx", "edx", "esi", "edi", "ebp", "eip", "user_esp", "fs", "gs"):
        assert getattr(current, name) == getattr(saved, name), name
    assert current.eflags == 0x202 | 0x400 | 0x1


def test_sigreturn_keeps_the_kernels_flags() -> None:
    """IF and IOPL are not the program's to set: only the arithmetic flags, DF, TF, AC, RF."""
    saved = user_frame(eflags=0x3000 | 0x2)  # IOPL 3, IF clear
    current = user_frame(eflags=0x202)
    S.restore_sigcontext(current, S.pack_sigcontext(saved, 0))
    assert current.eflags == 0x202


@pytest.mark.parametrize(
    "field, value",
    [
        ("cs", 0x08),
        ("cs", 0x23),
        ("user_ss", 0x10),
        ("ds", 0x08),
        ("es", 0),
        ("gs", 0x2B),
        ("cs", 0x1_0008),
    ],  # fmt: skip
)
def test_sigreturn_refuses_other_selectors(field: str, value: int) -> None:
    context = S.pack_sigcontext(user_frame(**{field: value}), 0)
    current = user_frame()
    before = bytes(current.memory.data)
    with pytest.raises(S.BadFrame):
        S.restore_sigcontext(current, context)
    assert bytes(current.memory.data) == before  # nothing half-restored


def test_signal_names() -> None:
    assert [S.parse_signal(w) for w in ("9", "kill", "SIGTERM", "RTMIN+2", "0", "65", "NOPE")] == [
        9, 9, 15, 34, None, None, None
    ]  # fmt: skip
    assert [S.signal_name(n) for n in (1, 17, 32, 40)] == ["HUP", "CHLD", "RTMIN", "RTMIN+8"]
    assert [S.parse_signal(w) for w in ("\u00b2", "RTMIN+\u00b2")] == [None, None]  # kill's word


def test_fork_and_exec_rules() -> None:
    state = S.SignalState(blocked=S.bit(S.SIGTERM))
    state.actions = {S.SIGUSR1: S.Action(0x0804_8000), S.SIGUSR2: S.Action(S.SIG_IGN)}
    state.pending[S.SIGTERM] = S.siginfo(S.SIGTERM, S.SI_USER)
    child = state.forked()
    assert child.actions == state.actions and child.blocked == state.blocked
    assert not child.pending
    child.exec_reset()
    assert child.actions == {S.SIGUSR2: S.Action(S.SIG_IGN)}
    assert child.blocked == S.bit(S.SIGTERM)
