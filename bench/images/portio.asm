; Port I/O exits to a device: ECX reads of the 8254's counter 0 (port 0x40).
%include "flat32.inc"
org CODE_BASE

start:
    enter_flat32
.read:
    in al, 0x40
    dec ecx
    jnz .read
    power_off

flat32_tables
