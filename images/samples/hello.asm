; hello: the int 10h text services a boot sector uses, as on any PC.
; Row 0 teletype (AH=0Eh); row 3 coloured cells (AH=02h cursor, AH=09h char+attribute);
; rows 6-8 scrolled up one line (AH=06h); rows 10-12, columns 0-5, scrolled down with a grey
; fill (AH=07h); row 12 from column 20 strings (AH=13h modes 1 and 2, then a teletype '!');
; row 14 the cursor read back (AH=03h) in decimal; then mode 3 set again keeping the screen
; (AL bit 7) and row 15 what AH=0Fh reports of it.
%include "lib.inc"
SECTOR_START
    mov ax, 0x0003                     ; mode 3: 80x25 colour text, screen cleared
    int 0x10
    mov si, msg_hello
    call print

    mov ah, 0x02                       ; cursor to row 3, column 4
    xor bh, bh
    mov dx, 0x0304
    int 0x10
    mov ax, 0x0958                     ; five 'X', yellow on blue; the cursor stays put
    mov bx, 0x001E
    mov cx, 5
    int 0x10

    mov si, msg_colours                ; one cell per char at row 3 from column 10,
    mov dx, 0x030A                     ; attributes 0x21, 0x22, ...
    mov bl, 0x21
.colour:
    lodsb
    test al, al
    jz .scroll
    mov ah, 0x02
    int 0x10
    mov ah, 0x09
    mov cx, 1
    int 0x10
    inc dl
    inc bl
    jmp .colour

.scroll:
    mov dh, 6                          ; "line A".."line F" on rows 6-8 and 10-12
.lines:
    mov ah, 0x02
    xor dl, dl
    int 0x10
    mov si, msg_line
    call print
    inc byte [msg_line + 5]
    inc dh
    cmp dh, 9
    jne .next_line
    inc dh
.next_line:
    cmp dh, 13
    jne .lines

    mov ax, 0x0601                     ; rows 6-8 up one line, blank with 0x07
    mov bh, 0x07
    mov cx, 0x0600
    mov dx, 0x084F
    int 0x10
    mov ax, 0x0701                     ; rows 10-12, columns 0-5 down one line, fill 0x70
    mov bh, 0x70
    mov cx, 0x0A00
    mov dx, 0x0C05
    int 0x10

    mov ax, 0x1301                     ; AH=13h mode 1: ES:BP in attribute BL, row 12
    mov bx, 0x004E                     ; column 20, and the cursor follows
    mov cx, msg_string_end - msg_string
    mov dx, 0x0C14
    mov bp, msg_string
    int 0x10
    mov ax, 0x1302                     ; mode 2: character/attribute pairs at column 40,
    mov cx, (msg_pairs_end - msg_pairs) / 2  ; the cursor stays after "write string"
    mov dl, 40
    mov bp, msg_pairs
    int 0x10
    mov al, '!'
    call putc

    mov ah, 0x02                       ; row 14, column 7: "at:" then the cursor read back
    xor bh, bh
    mov dx, 0x0E07
    int 0x10
    mov si, msg_at
    call print
    mov ah, 0x03
    int 0x10
    push dx
    mov al, dh
    xor ah, ah
    call dec16
    mov al, ','
    call putc
    pop dx
    mov al, dl
    xor ah, ah
    call dec16
    mov ax, 0x0083                     ; mode 3 again, AL bit 7: keep the screen
    int 0x10
    mov ah, 0x0F                       ; AL = mode (bit 7: kept), AH = columns, BH = page
    int 0x10
    push ax
    mov ah, 0x02                       ; the mode set put the cursor home; row 15 now
    mov dx, 0x0F00
    int 0x10
    mov si, msg_mode
    call print
    pop ax
    call hex16
    mov si, msg_page
    call print
    mov al, bh
    call hex8
    mov ah, 0x02                       ; row 16 for the end marker
    mov dx, 0x1000
    int 0x10
SECTOR_END

msg_hello: db "Hello from a boot sector!", 13, 10, 0
msg_colours: db "colours", 0
msg_line: db "line A", 0
msg_at: db "at:", 0
msg_string: db "write string"
msg_string_end:
msg_pairs: db "o", 0x1F, "k", 0x2F
msg_pairs_end:
msg_mode: db "0Fh AX=", 0
msg_page: db " BH=", 0
SIGNATURE
