"""Every way the ELF loader refuses a file, through the whole path: a crafted file on the test
disk, run from the booted shell, and the one line the shell prints for it.

The files are built here from the ELF32 specification (System V gABI and its i386 supplement),
not from the loader's own constants: one small valid program, and one mutation of it per
rejection. The valid program runs first, so each refusal is due to its one mutation."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tests.system.harness import BootedPc
from tradekernel.disktool import create_os_disk, open_volume

# ELF32 layout (gABI): the file header, then program headers of 8 words each.
EHDR = struct.Struct("<16sHHIIIIIHHHHHH")
PHDR = struct.Struct("<8I")
PT_NULL, PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_NOTE = 0, 1, 2, 3, 4
PF_X, PF_W, PF_R = 1, 2, 4
ET_REL, ET_EXEC, ET_DYN = 1, 2, 3
EM_386, EM_X86_64 = 3, 62

TEXT = 0x0804_8000  # where i386 programs are linked
USER_BASE = 0x0800_0000  # the lowest user address (README: user space)
STACK_BOTTOM = 0xC000_0000 - 32 * 4096  # below USER_TOP, the 128 KiB stack mapped up front
CODE_OFFSET = EHDR.size + 2 * PHDR.size  # room for two program headers
MESSAGE = b"valid ok\n"
MESSAGE_OFFSET = CODE_OFFSET + 32
SIZE = MESSAGE_OFFSET + len(MESSAGE)  # the whole file
# The one segment of the valid program: (type, offset, vaddr, paddr, filesz, memsz, flags, align)
LOAD = (PT_LOAD, 0, TEXT, TEXT, SIZE, SIZE, PF_R | PF_X, 0x1000)


def _code(message_address: int) -> bytes:
    """_start: write(1, MESSAGE, len); exit(0), as Linux i386 system calls (int 0x80)."""
    return (
        b"\xb8\x04\x00\x00\x00"  # mov eax, 4 (write)
        b"\xbb\x01\x00\x00\x00"  # mov ebx, 1
        + b"\xb9" + struct.pack("<I", message_address)  # mov ecx, msg
        + b"\xba" + struct.pack("<I", len(MESSAGE))  # mov edx, len
        + b"\xcd\x80"  # int 0x80
        b"\xb8\x01\x00\x00\x00"  # mov eax, 1 (exit)
        b"\x31\xdb"  # xor ebx, ebx
        b"\xcd\x80"  # int 0x80
    )  # fmt: skip


def elf(
    *,
    ident: bytes = b"\x7fELF\x01\x01\x01",
    e_type: int = ET_EXEC,
    machine: int = EM_386,
    version: int = 1,
    entry: int | None = None,
    phoff: int = EHDR.size,
    ehsize: int = EHDR.size,
    phentsize: int = PHDR.size,
    phnum: int | None = None,
    segments: list[tuple[int, ...]] | None = None,
) -> bytes:
    """A static i386 executable: one R+X PT_LOAD mapping the whole file at TEXT (headers
    included, as `ld` does), entry at the code. Each keyword replaces one field."""
    if segments is None:
        segments = [LOAD]
    header = EHDR.pack(
        ident.ljust(16, b"\0"), e_type, machine, version,
        TEXT + CODE_OFFSET if entry is None else entry, phoff, 0, 0, ehsize, phentsize,
        len(segments) if phnum is None else phnum, 0, 0, 0,
    )  # fmt: skip
    program_headers = b"".join(PHDR.pack(*segment) for segment in segments[:2])
    image = bytearray(SIZE)
    image[: len(header)] = header
    image[EHDR.size : EHDR.size + len(program_headers)] = program_headers
    code = _code(TEXT + MESSAGE_OFFSET)
    image[CODE_OFFSET : CODE_OFFSET + len(code)] = code
    image[MESSAGE_OFFSET:] = MESSAGE
    return bytes(image)


def load(**fields: int) -> tuple[int, ...]:
    """The valid PT_LOAD with some fields replaced."""
    names = ("type", "offset", "vaddr", "paddr", "filesz", "memsz", "flags", "align")
    values = dict(zip(names, LOAD, strict=True))
    values.update(fields)
    return tuple(values[name] for name in names)


# (file name on the disk, the file, what the loader must say about it)
REJECTIONS: list[tuple[str, bytes, str]] = [
    ("short", elf()[:10], "file too short for an ELF header (10 bytes)"),
    ("magic", b"MZ" + elf()[2:], "not an ELF file (bad magic)"),
    ("class64", elf(ident=b"\x7fELF\x02\x01\x01"), "not a 32-bit ELF (class 2)"),
    ("bigend", elf(ident=b"\x7fELF\x01\x02\x01"), "not little-endian (data encoding 2)"),
    ("identver", elf(ident=b"\x7fELF\x01\x01\x00"), "unknown ELF version 0/1"),
    ("elfver", elf(version=2), "unknown ELF version 1/2"),
    ("x86_64", elf(machine=EM_X86_64), "not an i386 program (machine 62)"),
    ("pie", elf(e_type=ET_DYN),
     "position-independent with no interpreter (static-pie or a shared object): link with "
     "-static -no-pie"),
    ("object", elf(e_type=ET_REL), "not an executable (type 1)"),
    ("ehsize", elf(ehsize=40), "bad header sizes (ehsize 40, phentsize 32)"),
    ("phentsz", elf(phentsize=56), "bad header sizes (ehsize 52, phentsize 56)"),
    ("nophdrs", elf(phnum=0), "bad program header count 0"),
    ("manyph", elf(phnum=65), "bad program header count 65"),
    ("phpast", elf(phoff=SIZE - 16), "program headers beyond the end of the file"),
    ("interp", elf(segments=[(PT_INTERP, 0, 0, 0, 0, 0, PF_R, 1), LOAD]),
     "bad interpreter name (PT_INTERP of 0 bytes at 0x0)"),
    ("filesz", elf(segments=[load(filesz=SIZE + 1)]),
     f"segment 0 at {TEXT:#x}: file size {SIZE + 1:#x} exceeds memory size {SIZE:#x}"),
    ("pastend", elf(segments=[load(filesz=SIZE + 1, memsz=0x2000)]),
     f"segment 0 at {TEXT:#x}: file bytes beyond the end of the file"),
    ("low", elf(segments=[load(vaddr=0x1000)], entry=0x1000 + CODE_OFFSET),
     f"segment 0 at 0x1000: outside user space [{USER_BASE:#x}, {STACK_BOTTOM:#x})"),
    ("high", elf(segments=[load(vaddr=STACK_BOTTOM - 0x1000, memsz=0x2000)]),
     f"segment 0 at {STACK_BOTTOM - 0x1000:#x}: outside user space "
     f"[{USER_BASE:#x}, {STACK_BOTTOM:#x})"),
    ("wrap", elf(segments=[load(vaddr=0xFFFF_F000, memsz=0x2000)]),
     f"segment 0 at 0xfffff000: outside user space [{USER_BASE:#x}, {STACK_BOTTOM:#x})"),
    ("misalign", elf(segments=[load(vaddr=TEXT + 4)]),
     f"segment 0 at {TEXT + 4:#x}: address and file offset disagree modulo the page size"),
    ("overlap", elf(segments=[LOAD, load(offset=0x10, vaddr=TEXT + 0x10, filesz=0x10, memsz=0x10,
                                         flags=PF_R | PF_W)]),
     f"segment 1 at {TEXT + 0x10:#x}: overlaps the segment at {TEXT:#x}"),
    ("noload", elf(segments=[(PT_NOTE, 0, 0, 0, 0, 0, PF_R, 4), load(memsz=0, filesz=0)]),
     "no loadable segment"),
    ("noexec", elf(segments=[load(flags=PF_R | PF_W)]),
     f"entry point {TEXT + CODE_OFFSET:#x} is not in an executable segment"),
    ("entryout", elf(entry=TEXT + 0x5000),
     f"entry point {TEXT + 0x5000:#x} is not in an executable segment"),
]  # fmt: skip


@pytest.fixture(scope="module")
def tk(tmp_path_factory: pytest.TempPathFactory) -> BootedPc:
    """One boot for all cases: the files are written to /bin (as elf-NAME) before it boots."""
    folder = tmp_path_factory.mktemp("elf")
    disk = folder / "disk.img"
    create_os_disk(disk)
    with open_volume(disk) as fs:
        fs.write_file("/bin/elf-valid", elf())
        for name, data, _ in REJECTIONS:
            fs.write_file(f"/bin/elf-{name}", data)
    return BootedPc(Path(folder), disk=disk).boot()


def test_the_valid_base_program_runs(tk: BootedPc) -> None:
    """The unmutated file is accepted: every case below differs from it in one field."""
    assert tk.output("elf-valid") == ["valid ok"]
    assert tk.output("elf-valid | wc") == ["1 2 9"]
    tk.command("cp /bin/elf-valid /tmp/v")
    assert tk.output("run /tmp/v") == ["valid ok"]


@pytest.mark.parametrize(("name", "message"), [(n, m) for n, _, m in REJECTIONS],
                         ids=[n for n, _, _ in REJECTIONS])  # fmt: skip
def test_a_bad_executable_is_refused_with_its_reason(tk: BootedPc, name: str, message: str) -> None:
    path = f"/bin/elf-{name}"
    assert tk.output(f"elf-{name}") == [f"run: {path}: cannot execute: {message}"]
    # in a pipeline the shell reports it as sh does, and no stage runs (wc would print 0 0 0)
    assert tk.output(f"elf-{name} | wc") == [f"sh: {path}: cannot execute: {message}"]


def test_a_text_file_is_not_run(tk: BootedPc) -> None:
    """The case the old test meant: a file that exists but is not a program at all."""
    tk.command(
        'echo "[instruments.AAPL]" "tick_size = 0.01" "lot_size = 1" "multiplier = 1" '
        '"price_band = [1, 10000]" > /tmp/conf.toml'
    )
    assert tk.output("run /tmp/conf.toml") == [
        "run: /tmp/conf.toml: cannot execute: not an ELF file (bad magic)"
    ]


def test_a_missing_program_is_named_once(tk: BootedPc) -> None:
    assert tk.output("run nosuch") == ["run: /bin/nosuch: no such file or directory"]
