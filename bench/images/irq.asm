; Hardware interrupt deliveries at the machine's own pace: the 8254 counter 0 as a one-shot
; (mode 0, re-armed by the handler the way a tickless kernel's PIT driver does), its IRQ0 through
; the 8259 (remapped to vector 0x20) and the IDT to a handler that re-arms the counter, sends EOI
; and counts ECX down; the CPU otherwise sits in `hlt`. A one-shot cannot run ahead of the CPU,
; so the figure is the delivery rate, not the timer rate. Power-off after ECX interrupts.
%include "flat32.inc"
org CODE_BASE

%define VECTOR 0x20
%define ONE_SHOT 0x10                  ; counter 0, LSB only, mode 0, binary
%define PIT_COUNT 2                    ; terminal count 2 PIT ticks (1.7 us) after arming

start:
    enter_flat32
    set_gate VECTOR, irq0
    mov al, 0x11                       ; ICW1: edge triggered, cascade, ICW4 follows
    out 0x20, al
    mov al, VECTOR                     ; ICW2: IRQ0-7 -> vectors 0x20-0x27
    out 0x21, al
    mov al, 0x04                       ; ICW3: slave on IR2
    out 0x21, al
    mov al, 0x01                       ; ICW4: 8086 mode, normal EOI
    out 0x21, al
    mov al, 0xFE                       ; OCW1: only IRQ0 unmasked
    out 0x21, al
    call arm
    sti
.idle:
    hlt
    jmp .idle

irq0:
    push eax
    call arm
    mov al, 0x20                       ; non-specific EOI
    out 0x20, al
    pop eax
    dec ecx
    jz .done
    iretd
.done:
    power_off

arm:                                   ; the mode word drops OUT; terminal count raises it
    mov al, ONE_SHOT
    out 0x43, al
    mov al, PIT_COUNT
    out 0x40, al
    ret

flat32_tables
