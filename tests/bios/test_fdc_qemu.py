"""The floppy controller and ISA DMA against QEMU's: a boot sector on a 1.44 MB diskette drives the
82077AA at 0x3F0 and the 8237A directly (reset and its four interrupts, VERSION, RECALIBRATE,
SEEK, DMA reads with TC and past the end of a track, a write read back, SENSE DRIVE STATUS,
READ ID, an invalid command), waits for IRQ6 through its own handler, and prints every status
byte; QEMU (SeaBIOS, its fdc and i8257) and our machine must print the same screen, except
where QEMU departs from the data sheet (named in the test)."""

from __future__ import annotations

from pathlib import Path

from tests.machine.harness import assemble
from tradekernel.emu.pc import Pc, PcConfig
from tradekernel.ui.ansi import screen_text

from .bootrun import END_MARKER, WALL_LIMIT_S
from .test_qemu import qemu, rows

FLOPPY_BYTES = 1440 * 1024
SECTOR = 512

BOOT = r"""
bits 16
org 0x7C00
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7C00
    mov ax, 0x0202                      ; the rest of the program: sectors 2-3 of track 0
    mov cx, 0x0002
    xor dh, dh
    mov bx, 0x7E00
    int 0x13
    jmp main
times 510 - ($ - $$) db 0
dw 0xAA55

main:
    cli
    mov word [0x0E * 4], irq6           ; IRQ6 is vector 0Eh on a PC
    mov word [0x0E * 4 + 2], 0
    in al, 0x21
    and al, 0xBF                        ; unmask IRQ6
    out 0x21, al
    mov ax, 0x0003
    int 0x10                            ; a clear 80x25 screen

    mov al, 'R'                         ; reset: DOR low, then motor A, DMA gate, nRESET
    call label
    mov dx, 0x3F2
    mov al, 0x00
    out dx, al
    mov al, 0x1C
    out dx, al
    call wait_irq
    mov cx, 4
.senses:
    call sense
    loop .senses
    call newline

    mov al, 'V'
    call label
    mov al, 0x10
    call send
    mov cx, 1
    call results

    mov dx, 0x3F7
    mov al, 0                           ; 500 kbit/s
    out dx, al
    mov al, 0x03                        ; SPECIFY: DMA mode
    call send
    mov al, 0xDF
    call send
    mov al, 0x02
    call send

    mov al, 'C'
    call label
    mov al, 0x07                        ; RECALIBRATE drive 0
    call send
    mov al, 0
    call send
    call wait_irq
    call sense
    call newline

    mov al, 'S'
    call label
    mov al, 0x0F                        ; SEEK head 0 to cylinder 2
    call send
    mov al, 0
    call send
    mov al, 2
    call send
    call wait_irq
    call sense
    mov dx, 0x3F7
    in al, dx
    and al, 0x80                        ; the change line, cleared by the step
    call hex
    call newline

    mov al, 'D'                         ; two sectors by DMA: TC ends the read
    call label
    mov cx, 1024
    mov al, 0x46
    call dma
    mov si, read_2_0_1
    call transfer
    mov al, [0x5000]
    call hex
    mov al, [0x5200]
    call hex
    in al, 0x08
    and al, 0x04                        ; channel 2's TC bit
    call hex
    call newline

    mov al, 'E'                         ; three sectors asked from sector 17: the track ends
    call label
    mov cx, 1536
    mov al, 0x46
    call dma
    mov si, read_2_0_17
    call transfer
    mov al, [0x5000]
    call hex
    mov al, [0x5200]
    call hex
    call newline

    mov al, 'W'                         ; write sector 5 from 0x6000, read it back to 0x5000
    call label
    mov al, 0x0F                        ; back on cylinder 2 first (QEMU stepped on, see E)
    call send
    mov al, 0
    call send
    mov al, 2
    call send
    call wait_irq
    call sense
    mov di, 0x6000
    mov cx, 512
    mov al, 0xA5
    rep stosb
    mov cx, 512
    mov al, 0x4A
    call dma9
    mov si, write_2_0_5
    call transfer
    mov cx, 512
    mov al, 0x46
    call dma
    mov si, read_2_0_5
    call transfer
    mov al, [0x5000]
    call hex
    mov al, [0x51FF]
    call hex
    call newline

    mov al, 'T'                         ; SENSE DRIVE STATUS
    call label
    mov al, 0x04
    call send
    mov al, 0
    call send
    mov cx, 1
    call results

    mov al, 'X'                         ; an invalid command, then a sense with none pending
    call label
    mov al, 0x01
    call send
    mov cx, 1
    call results_inline
    mov al, 0x08
    call send
    mov cx, 1
    call results

    mov si, done_text
.end:
    lodsb
    test al, al
    jz .halt
    call putc
    jmp .end
.halt:
    cli
    hlt
    jmp .halt

; ---- helpers ---------------------------------------------------------------------------
irq6:
    push ax
    mov byte [cs:flag], 1
    mov al, 0x20
    out 0x20, al
    pop ax
    iret

wait_irq:                               ; sleep until IRQ6 has come, then forget it
    sti
.again:
    cmp byte [flag], 0
    jne .got
    hlt
    jmp .again
.got:
    cli
    mov byte [flag], 0
    ret

send:                                   ; AL to the FIFO once RQM says it may go
    push dx
    push ax
    mov dx, 0x3F4
.wait:
    in al, dx
    and al, 0xC0
    cmp al, 0x80
    jne .wait
    pop ax
    mov dx, 0x3F5
    out dx, al
    pop dx
    ret

results:                                ; CX result bytes, printed, then a new line
    call results_inline
    jmp newline

results_inline:
    mov dx, 0x3F4
.wait:
    in al, dx
    and al, 0xC0
    cmp al, 0xC0
    jne .wait
    mov dx, 0x3F5
    in al, dx
    call hex
    loop results_inline
    ret

sense:                                  ; SENSE INTERRUPT STATUS: ST0 and the cylinder
    push cx
    mov al, 0x08
    call send
    mov cx, 2
    call results_inline
    pop cx
    ret

dma:                                    ; channel 2, mode AL, CX bytes at 0x5000 (dma9: 0x6000)
    mov bx, 0x5000
    jmp dma_at
dma9:
    mov bx, 0x6000
dma_at:
    push ax
    mov al, 0x06
    out 0x0A, al                        ; mask channel 2
    out 0x0C, al                        ; clear the flip-flop
    pop ax
    out 0x0B, al
    mov al, bl
    out 0x04, al
    mov al, bh
    out 0x04, al
    xor al, al
    out 0x81, al                        ; page 0
    out 0x0C, al
    dec cx
    mov al, cl
    out 0x05, al
    mov al, ch
    out 0x05, al
    mov al, 0x02
    out 0x0A, al                        ; unmask
    ret

transfer:                               ; the 9 command bytes at SI, IRQ6, 7 results
    mov cx, 9
.next:
    lodsb
    call send
    loop .next
    call wait_irq
    mov cx, 7
    jmp results_inline

label:
    call putc
    mov al, ':'
    call putc
    mov al, ' '
    jmp putc

newline:
    mov al, 13
    call putc
    mov al, 10
    jmp putc

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
    push bx
    push ax
    mov ah, 0x0E
    mov bx, 7
    int 0x10
    pop ax
    pop bx
    ret

flag: db 0
;                  cmd   HDS C  H  R   N  EOT GPL  DTL
read_2_0_1:  db 0xE6, 0, 2, 0, 1,  2, 18, 0x1B, 0xFF   ; MT MFM SK READ DATA
read_2_0_17: db 0x46, 0, 2, 0, 17, 2, 18, 0x1B, 0xFF   ; MFM READ DATA
write_2_0_5: db 0x45, 0, 2, 0, 5,  2, 18, 0x1B, 0xFF   ; MFM WRITE DATA
read_2_0_5:  db 0x46, 0, 2, 0, 5,  2, 18, 0x1B, 0xFF
done_text: db "-- end --", 0
"""


def make_floppy(path: Path) -> Path:
    """The program in sectors 0-2 (the boot sector loads the rest), then every sector's bytes
    equal to the low byte of its LBA."""
    image = bytearray(FLOPPY_BYTES)
    for lba in range(1, FLOPPY_BYTES // SECTOR):
        image[lba * SECTOR : (lba + 1) * SECTOR] = bytes([lba & 0xFF]) * SECTOR
    program = assemble(BOOT, org=0x7C00)
    assert len(program) <= 3 * SECTOR
    image[: len(program)] = program
    path.write_bytes(bytes(image))
    return path


def ours(image: Path) -> list[str]:
    pc = Pc(PcConfig(floppy=image, deterministic=True))
    shown = lambda: any(END_MARKER in row for row in screen_text(pc.vga.text_screen()))  # noqa: E731
    pc.machine.run(wall_timeout_s=WALL_LIMIT_S, until=shown)
    pc.machine.close()
    return [row.rstrip() for row in screen_text(pc.vga.text_screen())]


def test_the_fdc_sample_reads_as_it_does_on_qemu(tmp_path: Path) -> None:
    image = make_floppy(tmp_path / "fdc.img")
    with qemu(image, floppy=True) as vm:
        vm.wait_for(lambda: any(END_MARKER in row for row in rows(vm.screen())))
        theirs = rows(vm.screen())
    mine = ours(image)
    # One row differs on purpose: a read that runs past the last sector of the track without
    # TC ends, per the 8272A/82077AA data sheets, with abnormal termination and ST1 EN (end of
    # cylinder); QEMU instead steps to the next cylinder and goes on (ST0 shows seek end).
    assert theirs[5] == "E: 20 00 00 03 00 01 02 58 59"
    assert mine[:5] + mine[6:] == theirs[:5] + theirs[6:]
    # and what that screen says, so a change in both is seen too
    assert mine[:9] == [
        "R: C0 00 C1 00 C2 00 C3 00",
        "V: 90",
        "C: 20 00",
        "S: 20 02 00",
        "D: 00 00 00 02 00 03 02 48 49 04",
        "E: 40 80 00 03 00 01 02 58 59",
        "W: 20 02 00 00 00 02 00 06 02 00 00 00 02 00 06 02 A5 A5",
        "T: 28",
        "X: 80 80",
    ]
