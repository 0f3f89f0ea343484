"""What the kernel starts at boot for observability, and where the commands find it.

`Observability(kernel)` starts the persistent kernel log on the system disk (if one is
mounted), makes the profiler (off until started) and reads the counters on request;
`attach_audit(engine)` opens the trading audit log (recovering a record torn by a power cut)
and records every order event of `engine` from then on. Without a disk, both logs say so in the
kernel log once and the system runs on without them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tradekernel import __version__
from tradekernel.kernel.obs.counters import Counters, sample
from tradekernel.kernel.obs.persist import PersistentLog
from tradekernel.kernel.obs.profiler import Profiler
from tradekernel.kernel.obs.rotating import RotatingFile
from tradekernel.kernel.trading.audit import AUDIT_BYTES, AUDIT_KEEP, AUDIT_PATH, AuditLog

if TYPE_CHECKING:  # the trading stack is imported late in the boot (kernel/main.py)
    from tradekernel.kernel.trading.engine import TradingEngine


class Observability:
    def __init__(self, kernel) -> None:  # noqa: ANN001 - kernel.main.Kernel
        self.kernel = kernel
        self.profiler = Profiler(kernel)
        self.log: PersistentLog | None = None
        self.audit: AuditLog | None = None
        if kernel.fs is None:
            kernel.klog.warning("log", "no disk: the kernel log is kept in memory only")
            return
        self.log = PersistentLog(kernel.fs, kernel.klog, kernel.defer)
        started = kernel.clock.wall_time().strftime("%Y-%m-%d %H:%M:%S")
        self.log.start(f"boot: TradeKernel {__version__} at {started}", kernel.clock.now_ns())

    def attach_audit(self, engine: TradingEngine) -> None:
        kernel = self.kernel
        if kernel.fs is None:
            kernel.klog.warning("audit", "no disk: order events are not audited")
            return
        store = RotatingFile(kernel.fs, AUDIT_PATH, AUDIT_BYTES, AUDIT_KEEP)
        self.audit = AuditLog(store, kernel.defer, lambda text: kernel.klog.warning("audit", text))
        self.audit.recover()
        self.audit.attach(engine.bus)

    def counters(self) -> Counters:
        return sample(self.kernel)
