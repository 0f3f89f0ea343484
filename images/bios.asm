; TradeKernel BIOS ROM (64 KiB at F000:0000).
; The services themselves are Python (tradekernel/emu/bios.py), reached by a hypercall from a
; small stub per interrupt vector, so the IVT holds real far pointers that a guest may replace.
; Timer and spare IRQ handlers are plain code, as in any BIOS.
;
; Layout: a 256-word table of handler offsets at F000:0000 (POST fills the IVT from it),
; the handlers, and the reset vector at F000:FFF0.
bits 16
org 0

%define HYPERCALL_PORT_BASE 0x5A00
%define BIOS_CALL_BASE 0x80
%define BIOS_POST 0xFF

vector_table:
%assign v 0
%rep 256
  %if v == 0x08
    dw irq0
  %elif v == 0x09 || v == 0x10 || v == 0x11 || v == 0x12 || v == 0x13 || v == 0x15 || v == 0x16 || v == 0x1A
    dw svc_ %+ v
  %elif v == 0x18 || v == 0x19
    dw bootstrap
  %elif v >= 0x0A && v <= 0x0F
    dw irq_master
  %elif v >= 0x70 && v <= 0x77
    dw irq_slave
  %else
    dw just_iret
  %endif
  %assign v v+1
%endrep

; A Python-serviced vector. The service sees the caller's DX at SS:SP and its FLAGS at SS:SP+6;
; it returns the new EAX and sets DX to 0 (done) or 1 (wait for an interrupt and try again).
%macro SERVICE 1
svc_ %+ %1:
    push dx
%%retry:
    mov dx, HYPERCALL_PORT_BASE + BIOS_CALL_BASE + %1
    in eax, dx
    test dx, dx
    jnz %%wait
    pop dx
    iret
%%wait:
    sti
    hlt
    cli
    jmp %%retry
%endmacro

SERVICE 9
SERVICE 16
SERVICE 17
SERVICE 18
SERVICE 19
SERVICE 21
SERVICE 22
SERVICE 26

just_iret:
    iret

; IRQ0: the BIOS tick count at 0040:006C, the midnight wrap, then the user hook int 1Ch.
irq0:
    push ds
    push eax
    xor ax, ax
    mov ds, ax
    inc dword [0x46C]
    cmp dword [0x46C], 0x1800B0
    jb .no_wrap
    mov dword [0x46C], 0
    mov byte [0x470], 1
.no_wrap:
    int 0x1C
    mov al, 0x20
    out 0x20, al
    pop eax
    pop ds
    iret

irq_master:
    push ax
    mov al, 0x20
    out 0x20, al
    pop ax
    iret

irq_slave:
    push ax
    mov al, 0x20
    out 0xA0, al
    out 0x20, al
    pop ax
    iret

; int 19h (and 18h, "boot failed"): load the next boot sector in the boot order (Python) and
; jump to it with DL = boot drive.
bootstrap:
    mov dx, HYPERCALL_PORT_BASE + BIOS_CALL_BASE + 0x19
    in eax, dx
    test eax, eax
    jnz .no_boot
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7C00
    sti
    jmp 0x0000:0x7C00
.no_boot:
    cli
    hlt
    jmp .no_boot

post:
    cli
    xor ax, ax
    mov ss, ax
    mov sp, 0x7C00
    mov dx, HYPERCALL_PORT_BASE + BIOS_POST
    in eax, dx
    int 0x19

times 0xFFF0 - ($ - $$) db 0xFF
reset_vector:
    jmp 0xF000:post
    db "11/25/26"
times 0x10000 - ($ - $$) db 0xFF
