"""Malformed ELF files: seeded mutations of real programs (/bin/hello, built by our toolchain,
and /bin/linux_hello, a plain Linux binary of three segments) aimed at the ELF header and the
program headers (offsets, counts, sizes, addresses, flags, segment types, PT_INTERP among
them), plus random truncations, each written to the disk as /bin/mN and run from the booted
shell.

Asserted: the machine never stops and shows no oops, internal error or traceback (the harness
checks after every case), the shell answers after every case, no process is left, memcheck is
clean and every frame is free again at the end, and the kernel logged no oops. A case may run,
be refused with one line, or die of a signal: all are what Linux would do with such a file.
TK_FUZZ_ELFS and TK_FUZZ_SEED change the count and the seed (CI runs the same cases); a
failure names the case and its mutations so it can be replayed."""

from __future__ import annotations

import os
import random
import re
import struct
import time
from pathlib import Path

from tests.system.harness import SECOND, BootedPc
from tradekernel.disktool import create_os_disk, open_volume

CASES = int(os.environ.get("TK_FUZZ_ELFS", "120"))
SEED = int(os.environ.get("TK_FUZZ_SEED", "15"))
BASES = ("/bin/hello", "/bin/linux_hello")
EHDR_SIZE, PHDR_SIZE = 52, 32
# (offset, width) of the ELF header fields worth attacking: e_type, e_machine, e_version,
# e_entry, e_phoff, e_shoff, e_flags, e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum
EHDR_FIELDS = [(16, 2), (18, 2), (20, 4), (24, 4), (28, 4), (32, 4), (36, 4), (40, 2), (42, 2),
               (44, 2), (46, 2), (48, 2)]  # fmt: skip
# Values that sit on the edges of what a loader checks.
EDGES = [0, 1, 2, 3, 0x7F, 0x80, 0xFF, 0x1000, 0xFFF, 0x7FFF_FFFF, 0x8000_0000, 0xBFFF_F000,
         0xC000_0000, 0xFFFF_F000, 0xFFFF_FFFF, 2 << 30, 0x0804_8000]  # fmt: skip


def _field(rng: random.Random, width: int) -> bytes:
    value = rng.choice(EDGES) if rng.random() < 0.7 else rng.getrandbits(8 * width)
    return (value & ((1 << 8 * width) - 1)).to_bytes(width, "little")


def mutate(rng: random.Random, data: bytes) -> tuple[bytes, list[str]]:
    """One mutated copy of `data` and what was done to it."""
    image = bytearray(data)
    phoff, phnum = struct.unpack_from("<I", data, 28)[0], struct.unpack_from("<H", data, 44)[0]
    done = []
    for _ in range(rng.randint(1, 3)):
        choice = rng.random()
        if choice < 0.35:
            offset, width = rng.choice(EHDR_FIELDS)
        elif choice < 0.85 and phnum:
            offset = phoff + PHDR_SIZE * rng.randrange(phnum) + 4 * rng.randrange(8)
            width = 4
        elif choice < 0.95:
            cut = rng.randrange(EHDR_SIZE, len(image))
            del image[cut:]
            done.append(f"cut@{cut}")
            continue
        else:
            offset, width = rng.randrange(len(image)), 1
        if offset + width <= len(image):
            image[offset : offset + width] = _field(rng, width)
            done.append(f"{width}@{offset:#x}={image[offset : offset + width].hex()}")
    return bytes(image), done


def test_mutated_elf_files_never_stop_the_machine(tmp_path: Path) -> None:
    started = time.monotonic()
    rng = random.Random(SEED)
    disk = tmp_path / "disk.img"
    create_os_disk(disk)
    cases = []
    with open_volume(disk) as fs:
        bases = {name: fs.read_file(name) for name in BASES}
        for case in range(CASES):
            base = BASES[case % len(BASES)]
            data, done = mutate(rng, bases[base])
            fs.write_file(f"/bin/m{case}", data)
            cases.append((base, done))
    tk = BootedPc(tmp_path, disk=disk, ram_mib=8).boot()
    kernel = tk.pc.kernel
    tk.output("hello")  # the first program's page tables and caches, before the baseline
    free_frames = kernel.mm.frames.free_count
    outcomes = {"ran": 0, "refused": 0, "killed": 0}
    for case, (base, done) in enumerate(cases):
        where = f"case {case} (seed {SEED}) from {base}: {', '.join(done)}"
        printed = tk.output(f"m{case}", virtual_ns=10 * SECOND)
        tk.run_to_stop(SECOND // 20)  # a child it may have forked finishes
        if any(line.startswith((f"run: /bin/m{case}:", "sh: ")) for line in printed):
            outcomes["refused"] += 1
        elif any(re.match(rf"m{case}\[\d+\]: ", line) for line in printed):
            outcomes["killed"] += 1
        else:
            outcomes["ran"] += 1
        assert tk.output("echo alive") == ["alive"], where
        left = [process.name for process in kernel.processes.table.values()]
        assert not left, (where, left)
    assert outcomes["refused"] and outcomes["ran"], outcomes  # the mutations hit both ways
    assert any(re.match(r"memcheck: .*: OK$", line) for line in tk.output("memcheck"))
    assert tk.output("hello") == ["hello, world"]
    assert kernel.mm.frames.free_count == free_frames
    assert kernel.klog.oopses == 0
    print(f"ELF fuzz: {CASES} cases in {time.monotonic() - started:.1f} s: {outcomes}")
