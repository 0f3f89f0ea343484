"""The operating system: Python services behind hypercalls and `int 0x80`, reaching the machine
only through its port bus and guest memory (never a device object, never Unicorn).

Contract: the entry stub (images/stub.asm) calls KERNEL_INIT once and then enters the kernel
only through the INTERRUPT and IDLE hypercalls and the `int 0x80` trap; main.py's Kernel
brings the services up, one line per step, and dispatches every entry.

THE IMPORT RULE. The kernel is packages in layers; a module imports only from its own package
(without cycles) or from a layer below it, never from one above, not even for type checking:

    main.py                        the composition root: builds and wires everything
    shell/                         commands: the shell, its built-ins, file/program/job commands
    proc/  trading/  net/          services (independent of each other)
    fs/                            the VFS, FAT, pipes, device files, mounting the disk
    mm/                            heap, frames, paging, mappings
    drivers/                       ATA, console, keyboard, serial, tty, timer, clock, port access
    arch/                          what the x86 entry stub hands over (trap frame, boot info)
    tradekernel.emu.bus/.memory, tradekernel.hypercall, tradekernel.memmap (the machine's edge)

Where a lower layer must reach up (a process dying tells job control; a pipe or tty read makes
its caller sleep and learns of signals; Ctrl-C reaches the foreground job), the lower layer
defines a protocol or a callback (fs.vfs.Sleeper, fs.devfs.TerminalReader,
proc.terminal.Terminal.on_foreground_ended, ...) and the upper layer plugs in. pyproject.toml's
[tool.importlinter] contracts state the rule and tests/kernel/test_import_rule.py enforces it;
docs/ARCHITECTURE.md draws the picture.
"""
