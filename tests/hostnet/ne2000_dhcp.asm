; A real-mode boot sector that drives an NE2000 at 0x300 the way a driver does, with no help
; from any OS: it loads a prepared Ethernet frame (a DHCP DISCOVER) from the disk's second
; sector, programs the DP8390 (word mode, ring at pages 0x46-0x80), sends the frame with remote
; DMA and TXP, polls ISR until a frame arrives, takes it out of the ring with remote DMA, and
; writes it to the debug console (port 0xE9) followed by END_MARK, then halts.
; Assembled by tests/hostnet/test_ne2000_guest.py with -DFRAME_LEN=n and -DMAC0..MAC5.
bits 16
org 0x7C00

%define NE 0x300
%define FRAME 0x8000
%define RX 0x9000

start:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7C00
    mov ax, 0x0201              ; read 1 sector: LBA 1 (C0 H0 S2) to FRAME
    mov bx, FRAME
    mov cx, 0x0002
    xor dh, dh
    int 0x13
    jc halt

    mov dx, NE + 0x1F           ; reset: read the reset port, write it back
    in al, dx
    out dx, al
    mov dx, NE + 0x07
.reset_wait:
    in al, dx
    test al, 0x80
    jz .reset_wait

    mov si, init_table          ; (register, value) pairs, 0xFF ends
.init:
    lodsw
    cmp al, 0xFF
    je .send
    mov dl, al
    mov dh, NE >> 8
    mov al, ah
    out dx, al
    jmp .init

.send:
    mov bx, FRAME_LEN
    mov di, 0x4000
    call remote_write_setup
    mov si, FRAME
    mov cx, (FRAME_LEN + 1) / 2
    mov dx, NE + 0x10
    rep outsw
    mov dx, NE + 0x05
    mov al, FRAME_LEN & 0xFF
    out dx, al
    inc dx
    mov al, FRAME_LEN >> 8
    out dx, al
    mov dx, NE
    mov al, 0x26                ; start, no DMA, transmit
    out dx, al

    mov dx, NE + 0x07
.rx_wait:
    in al, dx
    test al, 0x01               ; PRX
    jz .rx_wait

    mov bx, 4                   ; the 4-byte header of the frame at page 0x47
    mov di, 0x4700
    call remote_read
    mov bx, [RX + 2]            ; byte count, header included
    sub bx, 4
    mov [rx_len], bx
    mov di, 0x4704
    call remote_read

    mov si, RX
    mov cx, [rx_len]
    mov dx, 0xE9
    rep outsb
    mov si, end_mark
    mov cx, end_mark_len
    rep outsb
halt:
    hlt
    jmp halt

; remote read of BX bytes from card address DI into RX (word mode)
remote_read:
    mov al, 0x0A                ; start, remote read
    call remote_setup
    mov cx, bx
    inc cx
    shr cx, 1
    mov dx, NE + 0x10
    push di
    mov di, RX
    rep insw
    pop di
    ret

remote_write_setup:
    mov al, 0x12                ; start, remote write
; RBCR = BX, RSAR = DI, then CR = AL
remote_setup:
    push ax
    mov dx, NE + 0x0A
    mov al, bl
    out dx, al
    inc dx
    mov al, bh
    out dx, al
    mov dx, NE + 0x08
    mov ax, di
    out dx, al
    inc dx
    mov al, ah
    out dx, al
    pop ax
    mov dx, NE
    out dx, al
    ret

init_table:
    db 0x00, 0x21               ; CR: stop, no DMA, page 0
    db 0x0E, 0x49               ; DCR: word transfers, normal operation, FIFO 8
    db 0x0A, 0x00, 0x0B, 0x00   ; RBCR
    db 0x0C, 0x04               ; RCR: accept broadcast
    db 0x0D, 0x02               ; TCR: loopback while programming
    db 0x01, 0x46               ; PSTART
    db 0x02, 0x80               ; PSTOP
    db 0x03, 0x46               ; BNRY
    db 0x04, 0x40               ; TPSR
    db 0x07, 0xFF               ; ISR: clear all
    db 0x0F, 0x00               ; IMR: polled, no interrupts
    db 0x00, 0x61               ; CR: page 1
    db 0x01, MAC0, 0x02, MAC1, 0x03, MAC2, 0x04, MAC3, 0x05, MAC4, 0x06, MAC5
    db 0x07, 0x47               ; CURR
    db 0x00, 0x22               ; CR: start, page 0
    db 0x0D, 0x00               ; TCR: normal
    db 0xFF, 0xFF

end_mark: db "<<TKEND>>"
end_mark_len equ $ - end_mark
rx_len: dw 0

times 510 - ($ - $$) db 0
dw 0xAA55
