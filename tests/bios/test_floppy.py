"""A 1.44 MB diskette as drive A:: booted before the hard disk with DL = 0, read with CHS int 13h
across heads and tracks, and described by int 13h AH=08h as a 1.44 MB drive."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.machine.harness import assemble
from tradekernel.emu.pc import Pc, PcConfig
from tradekernel.ui.ansi import screen_text

BOOT = r"""
bits 16
org 0x7C00
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7C00
    mov [drive], dl
    mov al, dl
    call hex                    ; the boot drive
    ; cylinder 1, head 1, sector 3 = LBA (1 * 2 + 1) * 18 + 2 = 56
    mov ax, 0x0201
    mov cx, 0x0103
    mov dh, 1
    mov dl, [drive]
    mov bx, 0x8000
    int 0x13
    jc fail
    mov al, [0x8000]
    call hex                    ; its first byte
    mov ah, 0x08
    mov dl, [drive]
    int 0x13
    mov al, bl
    call hex                    ; drive type: 04 = 1.44 MB
    mov al, dh
    call hex                    ; last head
    mov al, cl
    call hex                    ; sectors per track
    mov al, ch
    call hex                    ; last cylinder
    jmp done
fail:
    mov al, '!'
    call putc
done:
    cli
    hlt
hex:
    push ax
    shr al, 4
    call digit
    pop ax
    and al, 0x0F
    call digit
    mov al, ' '
    jmp putc
digit:
    add al, '0'
    cmp al, '9'
    jbe putc
    add al, 7
putc:
    mov ah, 0x0E
    mov bx, 7
    int 0x10
    ret
drive: db 0
times 510 - ($ - $$) db 0
dw 0xAA55
"""


def test_floppy_boots_first_and_reads_by_chs(tmp_path: Path) -> None:
    floppy = tmp_path / "a.img"
    image = bytearray(1440 * 1024)
    image[:512] = assemble(BOOT, org=0x7C00)
    image[56 * 512] = 0x5A
    floppy.write_bytes(image)
    hard_disk = tmp_path / "c.img"
    hard_disk.write_bytes(bytes(1024 * 1024))  # no boot signature: A: must win anyway
    pc = Pc(PcConfig(disk=hard_disk, floppy=floppy, deterministic=True, read_only=True))
    stop = pc.machine.run(wall_timeout_s=20)
    assert stop.reason == "crash" and "halted with interrupts disabled" in stop.report
    assert screen_text(pc.vga.text_screen())[0].rstrip() == "00 5A 04 01 12 4F"


def test_odd_sized_floppy_image_is_refused(tmp_path: Path) -> None:
    floppy = tmp_path / "odd.img"
    floppy.write_bytes(bytes(1000 * 1024))
    with pytest.raises(ValueError, match="not a diskette image size"):
        Pc(PcConfig(floppy=floppy))
