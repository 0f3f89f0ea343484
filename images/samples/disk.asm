; disk: the int 13h services a boot loader uses on a hard disk, as on any PC.
; Drive parameters (AH=08h, printed as the CX and DX it returns); CHS reads (AH=02h) of
; LBA 1-2 and of LBA 1100, its CHS address computed from those parameters; LBA read (AH=42h, after the AH=41h check) of LBA 1500;
; a CHS write (AH=03h) to LBA 3 and an LBA write (AH=43h) to LBA 2000. Each read prints the
; first 16 bytes of each sector it read; each call prints its status (AH).
; Written sectors: bytes 0, 1, 2, ... 255, 0, 1, ... with the writing function's name on top.
%include "lib.inc"
%define BUFFER 0x8000
SECTOR_START
    mov ah, 0x08
    mov dl, [boot_drive]
    int 0x13
    call status
    mov al, cl                         ; sectors per track: CL bits 0-5
    and ax, 0x3F
    mov [spt], ax
    mov al, dh                         ; heads: DH + 1
    inc ax
    mov [heads], ax
    mov si, msg_cx                     ; the raw answer: CX = cylinder/sector, DX = head/drives
    call print
    mov ax, cx
    call hex16
    mov si, msg_dx
    call print
    mov ax, dx
    call hex16
    call newline

    mov ax, 0x0202                     ; CHS 0/0/2: LBA 1 and 2
    mov cx, 0x0002
    xor dh, dh
    call chs_read

    mov ax, 1100                       ; LBA 1100 -> CHS through the reported geometry
    xor dx, dx
    div word [spt]
    inc dx
    mov cl, dl                         ; sector (1-based)
    xor dx, dx
    div word [heads]
    mov ch, al                         ; cylinder bits 0-7, bits 8-9 into CL 6-7
    shl ah, 6
    or cl, ah
    mov dh, dl                         ; head
    mov ax, 0x0201
    call chs_read

    mov ah, 0x41
    mov bx, 0x55AA
    mov dl, [boot_drive]
    int 0x13
    jc .no_ext
    cmp bx, 0xAA55
    jne .no_ext
    mov si, msg_ext
    call print
    mov ax, cx
    call hex16
    call newline
    mov si, dap                        ; LBA 1500, one sector
    mov ah, 0x42
    int 0x13
    call status
    mov si, BUFFER
    call show16

    mov si, name_43                    ; LBA 2000 from the AH=43h pattern
    call pattern
    mov word [dap_lba], 2000
    mov si, dap
    mov ax, 0x4300
    int 0x13
    call status
.no_ext:
    mov si, name_03                    ; CHS 0/0/4 = LBA 3 from the AH=03h pattern
    call pattern
    mov ax, 0x0301
    mov cx, 0x0004
    xor dh, dh
    int 0x13
    call status
SECTOR_END

; AH=02h with AL = count, CX, DH as given; prints the status and 16 bytes of each sector.
chs_read:
    mov ah, 0x02
    mov bx, BUFFER
    mov dl, [boot_drive]
    push ax
    int 0x13
    call status
    pop cx
    xor ch, ch
    mov si, BUFFER
.sector:
    call show16
    add si, 512
    loop .sector
    ret

; "st=XX " with AH (the int 13h status), preserving every register.
status:
    push si
    mov si, msg_status
    call print
    pop si
    xchg al, ah
    call hex8
    xchg al, ah
    push ax
    mov al, ' '
    call putc
    pop ax
    ret

; the 16 bytes at SI, as characters, then a new line
show16:
    push cx
    push si
    mov cx, 16
.byte:
    lodsb
    call putc
    loop .byte
    call newline
    pop si
    pop cx
    ret

; fill BUFFER with 0, 1, 2, ..., copy the NUL-terminated name at SI over its start;
; returns ES:BX = BUFFER and DL = the boot drive, ready for AH=03h
pattern:
    mov di, BUFFER
    xor ax, ax
    mov cx, 512
.fill:
    stosb
    inc al
    loop .fill
    mov di, BUFFER
.name:
    lodsb
    test al, al
    jz .done
    stosb
    jmp .name
.done:
    mov bx, BUFFER
    mov dl, [boot_drive]
    ret

dap:
    db 0x10, 0
    dw 1
    dw BUFFER, 0
dap_lba:
    dq 1500
spt: dw 0
heads: dw 0
msg_cx: db "08h CX=", 0
msg_dx: db " DX=", 0
msg_ext: db "ext ", 0
msg_status: db "st=", 0
name_03: db "by AH=03", 0
name_43: db "by AH=43", 0
SIGNATURE
