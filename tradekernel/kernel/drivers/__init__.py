"""drivers: the kernel's device drivers. Each reaches its hardware only through the port bus
(portio.py, emu.bus) or guest memory (the VGA text buffer), exactly as a driver on a real PC
would: ATA disk, VGA console, PS/2 keyboard, serial port, PIT one-shot timer, CMOS clock; the
tty line discipline over console and keyboard; and the block-device interface every disk
implements (blockdev.py: the ATA driver, image files, RAM disks, MBR partitions).

Imports: arch and the machine's edge (tradekernel.emu.bus, emu.memory, memmap) only; a driver
hands events up through callbacks it is given (KeyboardDriver's on_key, Tty's on_line).
"""
