; keys: the int 16h keyboard services a boot sector uses, as on any PC.
; Peeks (AH=01h) before any key is pressed and again when one waits, reads it (AH=00h) and
; shows both words; then echoes keys until Enter, prints the line reversed and the shift
; flags (AH=02h) as they stand when Enter is read.
%include "lib.inc"
%define LINE_MAX 60
SECTOR_START
    mov si, msg_title
    call print
    mov ah, 0x01                       ; nothing typed yet: ZF set
    int 0x16
    mov si, msg_empty
    jz .said_empty
    mov si, msg_not_empty
.said_empty:
    call print

.wait_key:                             ; peek until a key waits, idling between interrupts
    mov ah, 0x01
    int 0x16
    jnz .peeked
    hlt
    jmp .wait_key
.peeked:
    mov si, msg_peek
    call print
    call hex16
    mov bx, ax
    xor ah, ah                         ; the same key, now taken from the buffer
    int 0x16
    mov si, msg_get
    call print
    call hex16
    call newline
    mov si, msg_prompt
    call print

    mov di, line
    xor cx, cx
.echo:
    cmp al, 13
    je .entered
    cmp cx, LINE_MAX
    je .next
    call putc
    stosb
    inc cx
.next:
    xor ah, ah
    int 0x16
    jmp .echo

.entered:
    mov ah, 0x02                       ; shift flags while Enter is read
    int 0x16
    mov bl, al
    call newline
    mov si, msg_reversed
    call print
    jcxz .flags
.reverse:
    dec di
    mov al, [di]
    call putc
    loop .reverse
.flags:
    call newline
    mov si, msg_flags
    call print
    mov al, bl
    call hex8
    call newline
SECTOR_END

msg_title: db "keys: type a line, Enter ends it", 13, 10, 0
msg_empty: db "peek: empty", 13, 10, 0
msg_not_empty: db "peek: not empty", 13, 10, 0
msg_peek: db "peek=", 0
msg_get: db " get=", 0
msg_prompt: db "> ", 0
msg_reversed: db "reversed: ", 0
msg_flags: db "shift flags=", 0
SIGNATURE
line:                                  ; the typed line, after the sector (free memory)
