"""`prof [-o FILE] [SECONDS]`: profile the whole system for SECONDS of virtual time (default
DEFAULT_SECONDS; q, Esc or Ctrl-C ends it early), then print where guest time went (sampled EIP
per process and function) and the kernel services' host time, as `perf report` lays it out.
`-o FILE` also writes the profile to the disk: speedscope JSON for a FILE ending in `.json`,
folded stacks (flamegraph.pl, speedscope) otherwise.

The prompt comes back when the profile is printed; the work runs from the kernel's timer list
and deferred work (kernel/obs/profiler.py), so programs keep the CPU meanwhile.
"""

from __future__ import annotations

from tradekernel.kernel.drivers.keyboard import Key
from tradekernel.kernel.shell.shell import Output, Shell, UsageError, error_text

DEFAULT_SECONDS = 5.0
MAX_SECONDS = 3600.0
NS_PER_S = 1_000_000_000


class ProfCommand:
    def __init__(self, shell: Shell, kernel) -> None:  # noqa: ANN001 - kernel.main.Kernel
        self.shell = shell
        self.kernel = kernel
        self._output: str | None = None
        self._active = False

    def register(self) -> None:
        self.shell.register(
            "prof",
            self.prof,
            "prof [-o FILE] [SECONDS]",
            "profile guest code and kernel services for a while (q ends it)",
        )

    def prof(self, args: list[str], out: Output) -> int:
        seconds, output = DEFAULT_SECONDS, None
        rest = list(args)
        if rest[:1] == ["-o"]:
            if len(rest) < 2:
                raise UsageError("-o needs a file name")
            output = self.shell.resolve_path(rest[1])
            rest = rest[2:]
        if len(rest) > 1:
            raise UsageError(f"unexpected argument {rest[1]!r}")
        if rest:
            try:
                seconds = float(rest[0])
            except ValueError:
                raise UsageError(f"SECONDS must be a number, not {rest[0]!r}") from None
            if not 0 < seconds <= MAX_SECONDS:
                raise UsageError(f"SECONDS must be more than 0 and at most {MAX_SECONDS:g}")
        if out is not self.shell.out:
            raise UsageError("prof prints to the console; it cannot be redirected or piped")
        profiler = self.kernel.obs.profiler
        if profiler.running:
            out.error("prof: the profiler is already running (tk boot --profile?)")
            return 1
        self._output = output
        self._active = True
        out.line(f"profiling for {seconds:g} s of virtual time (q ends it early)...")
        profiler.start()
        deadline = self.kernel.clock.now_ns() + int(seconds * NS_PER_S)
        self.kernel.call_at(deadline, self._finish)
        self.shell.suspend_prompt()
        self.kernel.tty.raw_reader = lambda key: self.kernel.defer(lambda: self._key(key))
        return 0

    def _key(self, key: Key) -> None:
        if key.char.lower() == "q" or key.char == "\x1b" or (key.ctrl and key.char == "c"):
            self._finish()

    def _finish(self) -> None:
        if not self._active:
            return  # ended early by a key; this is the deadline's timer
        self._active = False
        self.kernel.tty.raw_reader = None
        profiler = self.kernel.obs.profiler
        profiler.stop()
        out = self.shell.out
        for line in profiler.report():
            out.line(line)
        if self._output is not None:
            self._write(self._output, profiler)
        self.shell.resume()

    def _write(self, path: str, profiler) -> None:  # noqa: ANN001 - obs.profiler.Profiler
        text = profiler.speedscope() if path.endswith(".json") else profiler.folded()
        fs = self.kernel.fs
        try:
            if fs is None:
                raise OSError("no filesystem is mounted")
            fs.write_file(path, text.encode("utf-8"))
            fs.flush()
        except OSError as error:
            self.shell.out.error(f"prof: {path}: {error_text(error)}")
            return
        self.shell.out.line(f"profile written to {path} ({len(text)} bytes)")


def register_prof(shell: Shell, kernel) -> None:  # noqa: ANN001 - kernel.main.Kernel
    ProfCommand(shell, kernel).register()
