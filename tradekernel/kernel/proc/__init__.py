"""proc: processes. The process record (task.py), the process manager (process.py: spawn,
fork, execve, exit, wait, sleeping and waking, the context switch), the terminal's foreground
job and tty reads (terminal.py), file descriptors (fdtable.py), the scheduler, signals
(signals.py: numbers, state, frames; sigdelivery.py: the service), ELF loading, the
system-call table (syscalls.py: number -> handler) and the two ways into it (trap.py: the full
`int 0x80` path and the machine's fast trap path).

Imports: fs, mm, drivers, arch. Never the shell: job control above subscribes to the
terminal's callbacks (on_foreground_ended, on_foreground_stopped, on_idle_interrupt) and to
Signals.kernel_child_changed.
"""
