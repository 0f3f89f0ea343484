"""The built guest binaries shipped with the package (made from images/ by images/build.py).

bios.bin is the 64 KiB ROM; boot.bin the MBR sector; stub.bin the 32-bit entry stub. The boot
image written to a disk is the MBR with its stub-length field filled in, then the stub.
programs/ holds the ring-3 user programs (static ELF32) that go to /bin on the OS disk.
"""

from __future__ import annotations

import struct
from importlib import resources

SECTOR = 512
STUB_SECTORS_OFFSET = 0x1B6  # boot.asm: `stub_sectors`


def firmware(name: str) -> bytes:
    return resources.files("tradekernel").joinpath("data", name).read_bytes()


def user_programs() -> dict[str, bytes]:
    """The user programs by name, in name order (so a disk made from them is reproducible)."""
    folder = resources.files("tradekernel").joinpath("data", "programs")
    entries = sorted(folder.iterdir(), key=lambda entry: entry.name)
    return {entry.name: entry.read_bytes() for entry in entries if entry.is_file()}


def boot_image() -> bytes:
    mbr = bytearray(firmware("boot.bin"))
    stub = firmware("stub.bin")
    sectors = -(-len(stub) // SECTOR)
    struct.pack_into("<H", mbr, STUB_SECTORS_OFFSET, sectors)
    return bytes(mbr) + stub + bytes(sectors * SECTOR - len(stub))
