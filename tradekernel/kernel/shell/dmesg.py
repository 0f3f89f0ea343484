"""`dmesg`: print the kernel log (kernel/log.py), oldest entry first; `dmesg -c` also clears
it, as util-linux's does. Uses only the log and the shell's registration."""

from __future__ import annotations

from tradekernel.kernel.log import KernelLog
from tradekernel.kernel.shell.shell import Output, Shell, UsageError


def register_dmesg(shell: Shell, klog: KernelLog) -> None:
    def dmesg(args: list[str], out: Output) -> int:
        if args not in ([], ["-c"]):
            raise UsageError(f"unexpected argument {args[0]!r}")
        for line in klog.lines():
            out.line(line)
        if args:
            klog.entries.clear()
        return 0

    shell.register("dmesg", dmesg, "dmesg [-c]", "the kernel log (oopses, panics, messages)")
