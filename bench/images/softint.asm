; Interrupt deliveries through the IDT: ECX software `int 0x30`s to a handler that only irets.
%include "flat32.inc"
org CODE_BASE

%define VECTOR 0x30

start:
    enter_flat32
    set_gate VECTOR, handler
.call:
    int VECTOR
    dec ecx
    jnz .call
    power_off

handler:
    iretd

flat32_tables
