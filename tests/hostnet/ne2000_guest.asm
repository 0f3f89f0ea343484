; A real-mode boot sector that drives an NE2000 at 0x300 the way a driver does, with no help
; from any OS: it loads a prepared Ethernet frame from the disk's second sector, programs both
; 8259s (IRQ 9 = slave input 1 at vector 0x71) and the DP8390 (word mode, ring at pages
; 0x46-0x80, PRX interrupt enabled), sends the frame with remote DMA and TXP, sleeps in `hlt`
; until the NIC's interrupt says a frame arrived, takes it out of the ring with remote DMA, and
; writes it to the debug console (port 0xE9) followed by END_MARK, then halts for good.
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

    mov word [0x71 * 4], nic_irq ; IVT entry for IRQ 9
    mov word [0x71 * 4 + 2], 0
    mov si, pic_table           ; (port, value) pairs for both 8259s, 0 ends
.pic:
    lodsw
    test al, al
    jz .pic_done
    xor dh, dh
    mov dl, al
    mov al, ah
    out dx, al
    jmp .pic
.pic_done:

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

    sti
.rx_wait:
    hlt                         ; the NIC's interrupt wakes us
    cmp byte [received], 0
    je .rx_wait
    cli

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
    cli
    hlt
    jmp halt

nic_irq:                        ; IRQ 9: note PRX, acknowledge it at the NIC and both 8259s
    push ax
    push dx
    mov dx, NE + 0x07
    in al, dx
    and al, 0x01
    or [cs:received], al
    mov al, 0x01
    out dx, al
    mov al, 0x20
    out 0xA0, al
    out 0x20, al
    pop dx
    pop ax
    iret

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
    db 0x0F, 0x01               ; IMR: interrupt on PRX
    db 0x00, 0x61               ; CR: page 1
    db 0x01, MAC0, 0x02, MAC1, 0x03, MAC2, 0x04, MAC3, 0x05, MAC4, 0x06, MAC5
    db 0x07, 0x47               ; CURR
    db 0x00, 0x22               ; CR: start, page 0
    db 0x0D, 0x00               ; TCR: normal
    db 0xFF, 0xFF

pic_table:                      ; master at 0x08, slave at 0x70 (the PC BIOS layout)
    db 0x20, 0x11, 0x21, 0x08, 0x21, 0x04, 0x21, 0x01
    db 0xA0, 0x11, 0xA1, 0x70, 0xA1, 0x02, 0xA1, 0x01
    db 0x21, 0xFB, 0xA1, 0xFD   ; unmask the cascade and IRQ 9 only
    db 0, 0

end_mark: db "<<TKEND>>"
end_mark_len equ $ - end_mark
rx_len: dw 0
received: db 0

times 510 - ($ - $$) db 0
dw 0xAA55
