"""The built guest binaries shipped with the package (made from images/*.asm by images/build.py).

bios.bin is the 64 KiB ROM; boot.bin the MBR sector; stub.bin the 32-bit entry stub. The boot
image written to a disk is the MBR with its stub-length field filled in, then the stub.
"""

from __future__ import annotations

import struct
from importlib import resources

SECTOR = 512
STUB_SECTORS_OFFSET = 0x1B6  # boot.asm: `stub_sectors`


def firmware(name: str) -> bytes:
    return resources.files("tradekernel").joinpath("data", name).read_bytes()


def boot_image() -> bytes:
    mbr = bytearray(firmware("boot.bin"))
    stub = firmware("stub.bin")
    sectors = -(-len(stub) // SECTOR)
    struct.pack_into("<H", mbr, STUB_SECTORS_OFFSET, sectors)
    return bytes(mbr) + stub + bytes(sectors * SECTOR - len(stub))
