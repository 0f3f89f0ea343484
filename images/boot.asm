; TradeKernel MBR boot sector: loaded by the BIOS at 0000:7C00 with DL = boot drive.
; Loads the 32-bit entry stub from the sectors after this one (int 13h LBA extensions, CHS as
; the fallback), enables A20, loads a flat GDT, sets CR0.PE and far-jumps into 32-bit code.
; Bytes 0x1B8-0x1FF (disk signature, partition table, 0x55AA) are written by the disk builder;
; partition 1 holds the filesystem and starts after the stub.
bits 16
org 0x7C00

%define STUB_SEGMENT 0x1000          ; stub at physical 0x10000 (memmap.STUB_BASE)
%define STUB_STACK_TOP 0x10000

start:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7C00
    sti
    cld
    mov [boot_drive], dl

    mov si, msg_loading
    call print

    ; LBA extensions present?
    mov ah, 0x41
    mov bx, 0x55AA
    mov dl, [boot_drive]
    int 0x13
    jc .chs
    cmp bx, 0xAA55
    jne .chs
    mov ax, [stub_sectors]
    mov [dap_count], ax
    mov si, dap
    mov ah, 0x42
    mov dl, [boot_drive]
    int 0x13
    jnc .loaded

.chs:                                  ; cylinder 0, head 0, sector 2 onwards
    mov ax, STUB_SEGMENT
    mov es, ax
    xor bx, bx
    mov ah, 0x02
    mov al, [stub_sectors]
    mov cx, 0x0002
    xor dh, dh
    mov dl, [boot_drive]
    int 0x13
    jc disk_error

.loaded:
    ; A20 through System Control Port A (fast A20).
    in al, 0x92
    or al, 2
    and al, 0xFE
    out 0x92, al

    cli
    lgdt [gdt_descriptor]
    mov eax, cr0
    or eax, 1
    mov cr0, eax
    jmp 0x08:protected

disk_error:
    mov si, msg_disk_error
    call print
.halt:
    cli
    hlt
    jmp .halt

; print the NUL-terminated string at DS:SI with int 10h teletype
print:
    lodsb
    test al, al
    jz .done
    mov ah, 0x0E
    mov bx, 0x0007
    int 0x10
    jmp print
.done:
    ret

bits 32
protected:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov ss, ax
    mov esp, STUB_STACK_TOP
    movzx edx, byte [boot_drive]
    jmp 0x08:(STUB_SEGMENT << 4)

align 8
gdt:
    dq 0
    dq 0x00CF9A000000FFFF              ; 0x08: flat 32-bit code, ring 0
    dq 0x00CF92000000FFFF              ; 0x10: flat data, ring 0
gdt_end:
gdt_descriptor:
    dw gdt_end - gdt - 1
    dd gdt

dap:
    db 0x10, 0
dap_count:
    dw 0
    dw 0, STUB_SEGMENT                 ; buffer 1000:0000
    dq 1                               ; from LBA 1

boot_drive: db 0
msg_loading: db "TradeKernel: loading the entry stub", 13, 10, 0
msg_disk_error: db "TradeKernel: disk read error", 13, 10, 0

times 0x1B6 - ($ - $$) db 0
stub_sectors: dw 0                     ; patched by the disk builder
times 510 - ($ - $$) db 0
dw 0xAA55
