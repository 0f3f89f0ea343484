; TradeKernel 32-bit entry stub, loaded at 0x10000 by the boot sector, entered in protected
; mode with flat segments and EDX = boot drive.
; It builds what the CPU needs to take interrupts (GDT with ring 0/3 segments and a TSS, an IDT
; whose 256 gates all lead to one hypercall), remaps the PIC to 0x20/0x28 and starts the PIT
; with real port writes, then checks CPUID for the TradeKernel machine: there it hands over to
; the Python kernel (hypercall KERNEL_INIT); on any other PC it says so on screen and halts.
; It also owns the two things about the FPU only guest instructions can do: the lazy switch of
; x87/SSE state on #NM, and the FXSAVE a fork asks for (kernel/process.py explains the design).
bits 32
org 0x10000

%define HYPERCALL_PORT_BASE 0x5A00
%define HC_KERNEL_INIT 1
%define HC_INTERRUPT 2
%define HC_IDLE 3
%define KERNEL_STACK_TOP 0x10000
%define RESCHEDULE_VECTOR 0x81           ; kernel/main.py RESCHEDULE_VECTOR
%define PIT_DIVISOR 11932                ; 100 Hz until the kernel reprograms it
%define CR0_MP 0x2
%define CR0_EM 0x4
%define CR0_TS 0x8
%define CR0_NE 0x20
%define CR4_OSFXSR 0x200
%define CR4_OSXMMEXCPT 0x400
%define MXCSR_DEFAULT 0x1F80

entry:
    mov [boot_info.boot_drive], edx
    lgdt [gdt_descriptor]
    jmp 0x08:.reload
.reload:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov ss, ax
    mov esp, KERNEL_STACK_TOP

    ; TSS: the ring-0 stack for interrupts taken in ring 3.
    mov dword [tss + 4], KERNEL_STACK_TOP
    mov dword [tss + 8], 0x10
    mov word [tss + 102], tss_end - tss  ; no I/O bitmap: ring 3 gets no ports
    mov eax, tss
    mov [gdt + 0x28 + 2], ax
    shr eax, 16
    mov [gdt + 0x28 + 4], al
    mov [gdt + 0x28 + 7], ah
    mov ax, 0x28
    ltr ax

    ; IDT: gate n -> isr_table[n]; int 0x80 is callable from ring 3.
    xor ecx, ecx
.gate:
    mov eax, [isr_table + ecx * 4]
    mov [idt + ecx * 8], ax
    mov word [idt + ecx * 8 + 2], 0x08
    mov byte [idt + ecx * 8 + 4], 0
    mov byte [idt + ecx * 8 + 5], 0x8E   ; present, DPL 0, 32-bit interrupt gate
    shr eax, 16
    mov [idt + ecx * 8 + 6], ax
    inc ecx
    cmp ecx, 256
    jb .gate
    mov byte [idt + 0x80 * 8 + 5], 0xEE  ; present, DPL 3, 32-bit interrupt gate (as Linux)
    mov byte [idt + 3 * 8 + 5], 0xEE     ; int3 too (DPL 3, as Linux): #BP, not #GP, from ring 3
    lidt [idt_descriptor]

    ; 8259A pair: ICW1-ICW4, vectors 0x20 and 0x28, cascade on IRQ2; all masked but the cascade.
    mov al, 0x11
    out 0x20, al
    out 0xA0, al
    mov al, 0x20
    out 0x21, al
    mov al, 0x28
    out 0xA1, al
    mov al, 0x04
    out 0x21, al
    mov al, 0x02
    out 0xA1, al
    mov al, 0x01
    out 0x21, al
    out 0xA1, al
    mov al, 0xFB
    out 0x21, al
    mov al, 0xFF
    out 0xA1, al

    ; 8254 channel 0, lo/hi, mode 2 (rate generator).
    mov al, 0x34
    out 0x43, al
    mov ax, PIT_DIVISOR
    out 0x40, al
    mov al, ah
    out 0x40, al

    ; Are we on the TradeKernel machine? CPUID leaf 0x40000000 carries its signature.
    mov eax, 0x40000000
    cpuid
    cmp ebx, 'Trad'
    jne not_tradekernel
    cmp ecx, 'eKer'
    jne not_tradekernel
    cmp edx, 'nelM'
    jne not_tradekernel

    ; FPU as Linux sets it: CR0.MP and NE set, EM clear; CR4.OSFXSR | OSXMMEXCPT for SSE. The
    ; clean state every new process starts from (fninit, MXCSR 0x1F80, xmm zero) is saved once
    ; by the CPU itself; then TS is set, since no task owns the registers yet.
    mov eax, cr0
    and eax, ~CR0_EM
    or eax, CR0_MP | CR0_NE
    mov cr0, eax
    mov eax, cr4
    or eax, CR4_OSFXSR | CR4_OSXMMEXCPT
    mov cr4, eax
    fninit
    push MXCSR_DEFAULT
    ldmxcsr [esp]
    add esp, 4
    xorps xmm0, xmm0
    xorps xmm1, xmm1
    xorps xmm2, xmm2
    xorps xmm3, xmm3
    xorps xmm4, xmm4
    xorps xmm5, xmm5
    xorps xmm6, xmm6
    xorps xmm7, xmm7
    fxsave [fpu_initial]
    mov eax, cr0
    or eax, CR0_TS
    mov cr0, eax

    mov ebx, boot_info
    mov dx, HYPERCALL_PORT_BASE + HC_KERNEL_INIT
    in eax, dx

; The idle loop. IDLE runs the kernel's deferred work and answers whether that made a task
; ready (need_resched): then the loop enters the kernel through RESCHEDULE_VECTOR, whose exit
; switches to it, instead of halting until some interrupt happens to come (tickless: none may).
idle:
    cli
    mov dx, HYPERCALL_PORT_BASE + HC_IDLE
    in eax, dx
    test eax, eax
    jz .halt
    int RESCHEDULE_VECTOR
    jmp idle
.halt:
    call apply_requests
    sti
    hlt
    jmp idle

; The kernel's mailbox for what only the CPU can do, applied on every way back to code (EAX and
; ECX are free here):
; - boot_info.fpu_copy: FXSAVE the live FPU registers there (a fork of the task that owns them;
;   that task is the one running, so TS is clear);
; - boot_info.load_cr3: a page directory loaded into CR3 with paging and write protection on
;   (this also flushes the TLB);
; - CR0.TS set unless the task resumed (boot_info.fpu_current) owns the FPU registers
;   (boot_info.fpu_owner), so its first x87/SSE instruction raises #NM.
apply_requests:
    mov eax, [boot_info.fpu_copy]
    test eax, eax
    jz .cr3
    fxsave [eax]
    mov dword [boot_info.fpu_copy], 0
.cr3:
    mov eax, [boot_info.load_cr3]
    test eax, eax
    jz .ts
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80010000                   ; PG | WP
    mov cr0, eax
    mov dword [boot_info.load_cr3], 0
.ts:
    mov ecx, cr0
    mov eax, [boot_info.fpu_owner]
    cmp eax, [boot_info.fpu_current]
    je .owner
    test ecx, CR0_TS
    jnz .done
    or ecx, CR0_TS
    mov cr0, ecx
    ret
.owner:
    test ecx, CR0_TS
    jz .done
    clts
.done:
    ret

; #NM with CR0.TS set: the lazy FPU switch. The registers hold the owner's state: save it to the
; owner's area, load the current task's, make it the owner and return to the instruction. SS is
; the kernel's here (DS is whatever ring 3 left). With no current task it is a real fault.
device_not_available:
    push eax
    mov eax, [ss:boot_info.fpu_current]
    test eax, eax
    jz .fault
    clts
    mov eax, [ss:boot_info.fpu_owner]
    test eax, eax
    jz .load
    fxsave [ss:eax]
.load:
    mov eax, [ss:boot_info.fpu_current]
    fxrstor [ss:eax]
    mov [ss:boot_info.fpu_owner], eax
    pop eax
    iret
.fault:
    pop eax
    push 0
    push 7
    jmp interrupt_common

; The kernel sends a CPU here when it must stop for good (a panic): the screen stays as it is.
halt_forever:
    cli
    hlt
    jmp halt_forever

not_tradekernel:
    mov esi, msg_other_pc
    mov edi, 0xB8000 + 160 * 2
    mov ah, 0x4F                         ; white on red
.char:
    lodsb
    test al, al
    jz .halt
    mov [edi], ax
    add edi, 2
    out 0xE9, al                         ; Bochs/QEMU debug console
    jmp .char
.halt:
    cli
    hlt
    jmp .halt

; Every vector: push a zero error code where the CPU pushes none, push the vector, save
; registers, and hand the frame to the kernel. The kernel may edit the frame (and switch it).
%macro ISR 1
isr_ %+ %1:
  %if %1 == 7
    jmp device_not_available
  %else
    %if %1 == 8 || (%1 >= 10 && %1 <= 14) || %1 == 17
    %else
    push 0
    %endif
    push %1
    jmp interrupt_common
  %endif
%endmacro

%assign n 0
%rep 256
ISR n
%assign n n+1
%endrep

interrupt_common:
    pushad
    push ds
    push es
    push fs
    push gs
    mov eax, cr2
    push eax
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ebx, esp                         ; the trap frame (kernel/trapframe.py describes it)
    mov dx, HYPERCALL_PORT_BASE + HC_INTERRUPT
    in eax, dx
    mov esp, eax                         ; the frame to return through (another task's, maybe)
    call apply_requests
    add esp, 4                           ; CR2
    pop gs
    pop fs
    pop es
    pop ds
    popad
    add esp, 8
    iret

isr_table:
%assign n 0
%rep 256
    dd isr_ %+ n
%assign n n+1
%endrep

msg_other_pc: db "This image needs the TradeKernel machine: run tk boot", 0

align 8
gdt:
    dq 0
    dq 0x00CF9A000000FFFF                ; 0x08 ring-0 code
    dq 0x00CF92000000FFFF                ; 0x10 ring-0 data
    dq 0x00CFFA000000FFFF                ; 0x18 ring-3 code (selector 0x1B)
    dq 0x00CFF2000000FFFF                ; 0x20 ring-3 data (selector 0x23)
    dw tss_end - tss - 1, 0              ; 0x28 TSS (base patched at start-up)
    db 0, 0x89, 0, 0
    dq 0, 0, 0                           ; 0x30-0x40: TLS entries 6-8, as Linux's
                                         ; GDT_ENTRY_TLS_MIN..MAX (kernel/arch/gdt.py)
gdt_end:
gdt_descriptor:
    dw gdt_end - gdt - 1
    dd gdt

idt_descriptor:
    dw 256 * 8 - 1
    dd idt

; Handed to KERNEL_INIT in EBX (kernel/boot_info.py reads it).
align 4
boot_info:
.magic:       dd 0x4B42544B              ; "KTBK"
.boot_drive:  dd 0
.gdt:         dd gdt
.idt:         dd idt
.tss:         dd tss
.stack_top:   dd KERNEL_STACK_TOP
.stub_end:    dd stub_end
.halt:        dd halt_forever
.load_cr3:    dd 0                       ; written by the kernel, cleared by apply_requests
.fpu_initial: dd fpu_initial             ; the clean FXSAVE image (fninit, MXCSR 0x1F80)
.fpu_owner:   dd 0                       ; FXSAVE area whose state is in the registers, or 0
.fpu_current: dd 0                       ; FXSAVE area of the task being resumed (0: kernel)
.fpu_copy:    dd 0                       ; FXSAVE here on the way out (fork), then cleared

align 8
tss:
    times 104 db 0
tss_end:

align 8
idt:
    times 256 * 8 db 0

align 16
fpu_initial:
    times 512 db 0
stub_end:
