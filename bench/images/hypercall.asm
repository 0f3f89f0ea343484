; Hypercall round trips: ECX times BENCH_NOP (0x7F) with EBX = ECX, checking EAX = EBX + 1.
%include "flat32.inc"
org CODE_BASE

%define BENCH_NOP_PORT 0x5A7F

start:
    enter_flat32
.call:
    mov ebx, ecx
    mov dx, BENCH_NOP_PORT
    in eax, dx
    dec eax
    cmp eax, ecx
    jne .wrong
    dec ecx
    jnz .call
    power_off
.wrong:
    check_failed

flat32_tables
