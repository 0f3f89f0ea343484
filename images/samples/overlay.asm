; overlay: code read over code the CPU has already run, as overlay loaders and multi-stage boot
; loaders do. The sector reads itself (LBA 0) with int 13h AH=02h at chosen offsets, so that a
; routine of this sector lands at a fixed address, and calls it:
; 1. "reload": routine A at LOAD, called; then the read is repeated so routine B lands there
;    instead, and LOAD is called again: prints "AB" on a PC (a CPU that kept the code it had
;    translated from the old bytes prints "AA").
; 2. "self": a routine that is itself `int 13h` then a tail lands at LOAD2 and is called with the
;    registers of a read that puts the same bytes back (its tail prints C); called again with a
;    read that overlays it with its twin, the int 13h returns into the twin's tail (prints D).
%include "lib.inc"
%define LOAD 0x9000
%define LOAD2 0xB000
SECTOR_START
    mov si, msg_reload
    call print
    mov bx, LOAD - (routine_a - $$)
    call read_self
    call LOAD
    mov bx, LOAD - (routine_b - $$)
    call read_self
    call LOAD
    call newline

    mov si, msg_self
    call print
    mov bx, LOAD2 - (loader_c - $$)
    call read_self                     ; loader C at LOAD2
    call LOAD2                         ; its int 13h puts the same bytes back: C
    mov bx, LOAD2 - (loader_d - $$)
    call setup_read
    call LOAD2                         ; its int 13h brings D over it: D
    call newline
SECTOR_END

; int 13h AH=02h registers for "sector 1 of cylinder 0, head 0 (LBA 0) to 0000:BX"
setup_read:
    mov ax, 0x0201
    mov cx, 0x0001
    xor dh, dh
    mov dl, [boot_drive]
    ret

read_self:
    call setup_read
    int 0x13
    ret

; Position-independent routines: they run wherever the reads put them.
routine_a:
    mov ax, 0x0E00 + 'A'
    jmp short routine_print
routine_b:
    mov ax, 0x0E00 + 'B'
routine_print:                         ; (only reached from A's and B's own copies' offsets)
    mov bx, 0x0007
    int 0x10
    ret

loader_c:
    int 0x13
    mov ax, 0x0E00 + 'C'
    mov bx, 0x0007
    int 0x10
    ret
loader_d:
    int 0x13
    mov ax, 0x0E00 + 'D'
    mov bx, 0x0007
    int 0x10
    ret

msg_reload: db "reload: ", 0
msg_self: db "self: ", 0
SIGNATURE
