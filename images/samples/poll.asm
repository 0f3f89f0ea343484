; poll: a program that polls the BIOS instead of waiting with `hlt`, as many do.
; 1. int 1Ah AH=00h in a tight loop until the tick count has changed POLL_TICKS times, then
;    prints how many changes it saw (IRQ0 must get in between the calls: each call runs the
;    BIOS with interrupts off, so a PC takes IRQ0 at the boundary before an `int`).
; 2. int 16h AH=01h in a tight loop until a key is there, then AH=00h to take it, KEYS times,
;    printing each character (IRQ1 must get in the same way).
%include "lib.inc"
%define POLL_TICKS 5
%define KEYS 3
SECTOR_START
    mov si, msg_ticks
    call print
    xor ah, ah
    int 0x1A
    mov bx, dx
    xor di, di
.tick:
    xor ah, ah
    int 0x1A
    cmp dx, bx
    je .tick
    mov bx, dx
    inc di
    cmp di, POLL_TICKS
    jb .tick
    mov ax, di
    call hex16
    call newline

    mov si, msg_keys
    call print
    mov cx, KEYS
.key:
    mov ah, 0x01
    int 0x16
    jz .key
    xor ah, ah
    int 0x16
    call putc
    loop .key
    call newline
SECTOR_END

msg_ticks: db "int 1Ah ticks seen: ", 0
msg_keys: db "int 16h keys: ", 0
SIGNATURE
