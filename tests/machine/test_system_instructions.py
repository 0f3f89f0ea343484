"""`syscall` and `sysenter` fault as on a CPU whose OS never enabled them.

Unicorn treats both as hooks for an emulated OS and otherwise skips them, so a program that
tries them runs on as if nothing happened. Our machine sets no MSRs (EFER.SCE stays clear,
IA32_SYSENTER_CS stays 0), and there the Intel SDM (vol. 2B, SYSCALL and SYSENTER) says:
`syscall` outside 64-bit mode is #UD (6), `sysenter` with IA32_SYSENTER_CS = 0 is #GP(0) (13),
both with the return EIP at the instruction. The kernel maps #UD to SIGILL and #GP to SIGSEGV.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from tests.machine.harness import (
    ESP0,
    KERNEL_CS,
    KERNEL_START_STACK,
    RESULTS,
    USER_CS,
    ProtectedGuest,
)
from tests.system.harness import BootedPc
from tradekernel.disktool import create_os_disk, open_volume

CASES = [("syscall", 6, False), ("sysenter", 13, True)]


@pytest.mark.parametrize("deterministic", [True, False], ids=["deterministic", "real-time"])
@pytest.mark.parametrize(("instruction", "vector", "has_error_code"), CASES)
def test_from_ring3_it_faults_at_the_instruction(
    instruction: str, vector: int, has_error_code: bool, deterministic: bool
) -> None:
    guest = ProtectedGuest(
        f"""
    ENTER_RING3 user, 0x202
user:
    mov eax, 0x1234
faulting:
    {instruction}
    mov dword [RESULTS], 0xC0FFEE   ; runs after the handler steps over the instruction
    EXIT
""",
        deterministic=deterministic,
    )
    assert guest.run().reason == "poweroff"
    (trap,) = guest.traps
    assert trap.vector == vector
    assert trap.esp == ESP0 - (24 if has_error_code else 20)
    words = trap.words
    if has_error_code:
        assert words[0] == 0, "sysenter's #GP carries error code 0"
    assert trap.frame(has_error_code)[:2] == (guest.label("faulting"), USER_CS)
    assert guest.dword(RESULTS) == 0xC0FFEE
    assert guest.exit_registers["eax"] == 0x1234


@pytest.mark.parametrize(("instruction", "vector", "has_error_code"), CASES)
def test_in_ring0_it_faults_too(instruction: str, vector: int, has_error_code: bool) -> None:
    guest = ProtectedGuest(
        f"""
faulting:
    {instruction}
    EXIT
"""
    )
    assert guest.run().reason == "poweroff"
    (trap,) = guest.traps
    assert trap.vector == vector
    assert trap.esp == KERNEL_START_STACK - (16 if has_error_code else 12)
    assert trap.frame(has_error_code)[:2] == (guest.label("faulting"), KERNEL_CS)


def test_a_thousand_in_a_row_each_fault_once() -> None:
    guest = ProtectedGuest(
        """
    ENTER_RING3 user, 0x202
user:
    mov ecx, 1000
.again:
    syscall
    dec ecx
    jnz .again
    EXIT
"""
    )
    assert guest.run().reason == "poweroff"
    assert [trap.vector for trap in guest.traps] == [6] * 1000


# ---- on the booted OS: the kernel turns #UD into SIGILL and #GP into SIGSEGV ----------------

TEXT = 0x0804_8000  # where i386 programs are linked
ELF_HEADER = struct.Struct("<16sHHIIIIIHHHHHH")  # gABI ELF32 header
PROGRAM_HEADER = struct.Struct("<8I")


def _program(instruction: bytes) -> bytes:
    """A static i386 ELF: `instruction`, then write(1, "no fault\\n", 9) and exit(0)."""
    code_offset = ELF_HEADER.size + PROGRAM_HEADER.size
    message = b"no fault\n"
    message_address = TEXT + code_offset + len(instruction) + 31
    code = (
        instruction
        + b"\xb8\x04\x00\x00\x00\xbb\x01\x00\x00\x00"  # mov eax, 4; mov ebx, 1
        + b"\xb9" + struct.pack("<I", message_address)  # mov ecx, message
        + b"\xba" + struct.pack("<I", len(message))  # mov edx, len
        + b"\xcd\x80"  # int 0x80
        + b"\xb8\x01\x00\x00\x00\x31\xdb\xcd\x80"  # mov eax, 1; xor ebx, ebx; int 0x80
    )  # fmt: skip
    assert len(code) == len(instruction) + 31
    size = code_offset + len(code) + len(message)
    header = ELF_HEADER.pack(
        b"\x7fELF\x01\x01\x01", 2, 3, 1, TEXT + code_offset, ELF_HEADER.size, 0, 0,
        ELF_HEADER.size, PROGRAM_HEADER.size, 1, 0, 0, 0,
    )  # fmt: skip
    segment = PROGRAM_HEADER.pack(1, 0, TEXT, TEXT, size, size, 5, 0x1000)  # PT_LOAD, R+X
    return header + segment + code + message


def test_booted_os_kills_the_program_with_sigill_and_sigsegv(tmp_path: Path) -> None:
    disk = tmp_path / "disk.img"
    create_os_disk(disk)
    programs = {
        "t-syscall": b"\x0f\x05",
        "t-sysenter": b"\x0f\x34",
        "t-nop": b"\x90",  # the same program without the instruction runs to its end
    }
    with open_volume(disk) as fs:
        for name, instruction in programs.items():
            fs.write_file(f"/bin/{name}", _program(instruction))
    tk = BootedPc(tmp_path, disk=disk).boot()
    assert tk.output("t-nop") == ["no fault"]
    (line,) = tk.output("t-syscall")
    assert re.fullmatch(r"t-syscall\[\d+\]: illegal instruction\b.*, eip 0x08048054", line), line
    (line,) = tk.output("t-sysenter")
    assert re.fullmatch(
        r"t-sysenter\[\d+\]: segmentation fault \(general protection\).*eip 0x08048054", line
    ), line
