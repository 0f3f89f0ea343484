; Guest-MIPS benchmark boot sector, booted unchanged by QEMU (SeaBIOS) and by our machine's BIOS.
; It enters 32-bit protected mode, writes POST code LOOP_START_MARK to port 0x80 (the bench
; starts its clock there), runs `dec ecx; jnz` LOOPS times (2 * LOOPS + 1 instructions counting
; the `mov ecx`), then ends the run: `out 0xF4` makes QEMU exit through isa-debug-exit (our
; machine has nothing there), and the ACPI soft-off write to port 0x604 powers our machine off.
; Build: nasm -f bin -DLOOPS=<n> loop.asm -o loop.bin
bits 16
org 0x7C00

%ifndef LOOPS
%define LOOPS 100000000
%endif
%define LOOP_START_MARK 0xB0
%define DEBUG_EXIT_PORT 0xF4
%define DEBUG_EXIT_CODE 0x10       ; QEMU exits with status (0x10 << 1) | 1 = 33
%define PM1A_CONTROL 0x604
%define SLP_EN_S5 0x2000

start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7C00
    lgdt [gdt_descriptor]
    mov eax, cr0
    or eax, 1
    mov cr0, eax
    jmp 0x08:protected

bits 32
protected:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov esp, 0x7C00
    mov al, LOOP_START_MARK
    out 0x80, al
    mov ecx, LOOPS
.spin:
    dec ecx
    jnz .spin
    mov al, DEBUG_EXIT_CODE
    out DEBUG_EXIT_PORT, al
    mov dx, PM1A_CONTROL
    mov ax, SLP_EN_S5
    out dx, ax
.stuck:
    hlt
    jmp .stuck

align 8
gdt:
    dq 0
    dq 0x00CF9A000000FFFF              ; 0x08: flat 32-bit code, ring 0
    dq 0x00CF92000000FFFF              ; 0x10: flat data, ring 0
gdt_end:
gdt_descriptor:
    dw gdt_end - gdt - 1
    dd gdt

times 510 - ($ - $$) db 0
    dw 0xAA55
