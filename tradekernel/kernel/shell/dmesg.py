"""`dmesg`: print the kernel log (kernel/log.py), oldest entry first; `-c` also clears it, as
util-linux's does; `--level L` keeps entries at level L or more severe, `--subsystem S` those of
one subsystem (the same filters as `log`). Uses the log and the shell's registration."""

from __future__ import annotations

from tradekernel.kernel.log import KernelLog
from tradekernel.kernel.shell.log import parse_filters
from tradekernel.kernel.shell.shell import Output, Shell, UsageError


def register_dmesg(shell: Shell, klog: KernelLog) -> None:
    def dmesg(args: list[str], out: Output) -> int:
        values, flags = parse_filters(args, "c")
        if "n" in values:
            raise UsageError("unexpected argument '-n'")
        for entry in klog.select(values.get("level"), values.get("subsystem")):
            for line in entry.format().splitlines():
                out.line(line)
        if "c" in flags:
            klog.entries.clear()
        return 0

    shell.register("dmesg", dmesg, "dmesg [-c] [--level L] [--subsystem S]",
                   "the kernel log (oopses, panics, messages)")  # fmt: skip
