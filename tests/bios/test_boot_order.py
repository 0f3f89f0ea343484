"""Boot order: a data floppy in A: does not keep the hard disk from booting.

`mkfs.fat` writes a boot sector with the 0x55AA signature whose code prints "This is not a
bootable disk", waits for a key and calls int 19h. A BIOS boot order then goes on to the next
drive: ours continues after the drive it last booted from whenever int 19h or int 18h comes
after a boot attempt (POST starts the order again at A:). SeaBIOS does the same for int 18h;
its int 19h starts again at the first drive (boot.c, handle_19), so under QEMU this floppy
asks for a key forever.
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest

from tests.machine.harness import assemble
from tests.peers import peer
from tests.system import harness
from tests.system.harness import SECOND, BootedPc
from tradekernel.emu.pc import Pc, PcConfig
from tradekernel.ui.ansi import screen_text

NOT_BOOTABLE = "This is not a bootable disk"


def _mkfs_floppy(path: Path) -> Path:
    subprocess.run([peer("mkfs.fat"), "-C", str(path), "1440"], check=True, capture_output=True)
    return path


def test_mkfs_fat_floppy_in_a_then_the_os_boots_from_c(tmp_path: Path, monkeypatch) -> None:
    floppy = _mkfs_floppy(tmp_path / "data.img")
    real_make_pc = harness.make_pc
    monkeypatch.setattr(
        harness, "make_pc", lambda config: real_make_pc(dataclasses.replace(config, floppy=floppy))
    )
    tk = BootedPc(tmp_path)
    tk.wait_for(NOT_BOOTABLE, 10 * SECOND)
    tk.type(" ")  # "press any key to try again": its code then calls int 19h
    tk.boot()
    assert tk.output("echo booted") == ["booted"]


SECTOR_CALLS = r"""
bits 16
org 0x7C00
    xor ax, ax
    mov ds, ax
    mov al, 'A'                 ; the drive this sector came from
    test dl, 0x80
    jz .show
    mov al, 'C'
.show:
    mov ah, 0x0E
    mov bx, 7
    int 0x10
    int %s
    cli
    hlt
times 510 - ($ - $$) db 0
dw 0xAA55
"""


@pytest.mark.parametrize("vector", ["0x19", "0x18"])
def test_int_19h_or_18h_from_a_boot_sector_tries_the_next_drive_then_gives_up(
    tmp_path: Path, vector: str
) -> None:
    sector = assemble(SECTOR_CALLS % vector, org=0x7C00)
    floppy = tmp_path / "a.img"
    floppy.write_bytes(sector + bytes(1440 * 1024 - 512))
    hard_disk = tmp_path / "c.img"
    hard_disk.write_bytes(sector + bytes(1024 * 1024 - 512))
    pc = Pc(PcConfig(disk=hard_disk, floppy=floppy, deterministic=True, read_only=True))
    stop = pc.machine.run(wall_timeout_s=5)
    assert stop.reason == "crash" and "halted with interrupts disabled" in stop.report
    first_line = screen_text(pc.vga.text_screen())[0].rstrip()
    assert first_line == "ACNo bootable device."
