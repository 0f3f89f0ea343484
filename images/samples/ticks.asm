; ticks: the BIOS clock a boot sector sees, as on any PC.
; Waits, with interrupts on and `hlt` between them, until the IRQ0 tick count at 0040:006C has
; advanced WAIT_TICKS times, printing the count before and after; reads the count through
; int 1Ah AH=00h (with interrupts off, so it must equal 0040:006C), then the RTC time
; (AH=02h) and date (AH=04h), which are BCD and so print as decimal through hex8.
%include "lib.inc"
%define WAIT_TICKS 27
SECTOR_START
    mov si, msg_ticks
    call print
    mov ebx, [0x46C]
    mov eax, ebx
    call hex32
.wait:
    hlt
    mov eax, [0x46C]
    sub eax, ebx
    cmp eax, WAIT_TICKS
    jb .wait
    add eax, ebx
    mov si, msg_to
    call print
    call hex32
    call newline

    cli                                ; no tick between the two reads
    xor ah, ah
    int 0x1A
    mov ebx, [0x46C]
    sti
    push ax
    mov si, msg_1a00
    call print
    mov ax, cx
    call hex16
    mov ax, dx
    call hex16
    mov si, msg_same
    cmp cx, [0x46E]
    jne .differs
    cmp dx, bx
    je .said
.differs:
    mov si, msg_differs
.said:
    call print
    pop ax
    call hex8                          ; AL: the midnight flag
    call newline

    mov ah, 0x02                       ; CH hours, CL minutes, DH seconds
    int 0x1A
    mov si, msg_time
    call print
    mov al, ch
    call hex8
    mov al, ':'
    call putc
    mov al, cl
    call hex8
    mov al, ':'
    call putc
    mov al, dh
    call hex8
    call newline

    mov ah, 0x04                       ; CH century, CL year, DH month, DL day
    int 0x1A
    mov si, msg_date
    call print
    mov al, ch
    call hex8
    mov al, cl
    call hex8
    mov al, '-'
    call putc
    mov al, dh
    call hex8
    mov al, '-'
    call putc
    mov al, dl
    call hex8
    call newline
SECTOR_END

msg_ticks: db "ticks ", 0
msg_to: db " -> ", 0
msg_1a00: db "int 1Ah/00 ", 0
msg_same: db " same, midnight=", 0
msg_differs: db " differs, midnight=", 0
msg_time: db "time ", 0
msg_date: db "date ", 0
SIGNATURE
