; memory: what a boot loader asks the BIOS about memory, as on any PC.
; Conventional memory (int 12h), extended memory (int 15h AH=88h), the equipment word
; (int 11h), the E820 map (base, length, type per line), then A20: on (AX=2401h), how the BIOS
; can switch it (AX=2403h, BX), off (AX=2400h), the state it reports (AX=2402h, AL), on again;
; each switch is checked by whether FFFF:0510 wraps onto 0000:0500.
%include "lib.inc"
%define ENTRY 0x8000
SECTOR_START
    int 0x12
    mov si, msg_int12
    call print
    call dec16
    mov ah, 0x88
    int 0x15
    mov si, msg_int15
    call print
    call dec16
    int 0x11
    mov si, msg_int11
    call print
    call hex16
    call newline

    xor ebx, ebx                       ; E820: EBX = 0 starts the walk, 0 again ends it
    mov di, ENTRY
.entry:
    mov eax, 0xE820
    mov edx, 0x534D4150                ; 'SMAP'
    mov ecx, 20
    int 0x15
    jc .a20
    cmp eax, 0x534D4150
    jne .a20
    mov si, msg_e820
    call print
    mov eax, [di + 4]
    call hex32
    mov eax, [di]
    call hex32
    mov al, ' '
    call putc
    mov eax, [di + 12]
    call hex32
    mov eax, [di + 8]
    call hex32
    mov al, ' '
    call putc
    mov al, [di + 16]
    call hex8
    call newline
    test ebx, ebx
    jnz .entry

.a20:
    mov ax, 0x2401
    call a20_wraps
    mov ax, 0x2403
    int 0x15
    mov si, msg_support
    call print
    mov ax, bx
    call hex16
    call newline
    mov ax, 0x2400
    call a20_wraps
    mov ax, 0x2402
    int 0x15
    mov si, msg_state
    call print
    call hex8
    call newline
    mov ax, 0x2401
    call a20_wraps
SECTOR_END

; int 15h with AX, then "AX: CF=c wrap=w" (w = 1 when FFFF:0510 is 0000:0500)
a20_wraps:
    push ax
    int 0x15
    mov al, '0'
    adc al, 0
    mov [msg_cf + 4], al
    pop ax
    call hex16
    mov si, msg_cf
    call print
    push es
    mov bx, 0xFFFF
    mov es, bx
    mov byte [0x500], 0x00
    mov byte [es:0x510], 0xFF
    mov al, [0x500]
    and al, 1
    call hex4
    pop es
    jmp newline

msg_int12: db "int12=", 0
msg_int15: db "K int15/88=", 0
msg_int11: db "K int11=", 0
msg_e820: db "E820 ", 0
msg_cf: db ": CF0 wraps=", 0
msg_state: db "2402 AL=", 0
msg_support: db "2403 BX=", 0
SIGNATURE
