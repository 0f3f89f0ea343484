"""`tk` with a kernel stand-in whose services stop returning once the shell's prompt is up.

Run as `python hung_kernel_tk.py boot ...` by the watchdog tests. Every kernel hypercall is
wrapped: after the prompt has reached COM1, the next one (a key's IRQ) loops for ever in Python,
as the console did on a TAB past column 72. The watchdog's periods are shortened so the tests
take seconds; nothing else is changed.
"""

from __future__ import annotations

from tradekernel import cli
from tradekernel.ui import session, supervisor

supervisor.STOP_GRACE_S = 1.0
supervisor.HUNG_WARN_S = 1.0
supervisor.HEARTBEAT_S = 0.2
_make_pc = session.make_pc


def stuck_kernel_service() -> None:
    while True:
        pass


def make_pc(config):  # noqa: ANN001, ANN201
    pc = _make_pc(config)
    machine = pc.machine
    serial = bytearray()
    machine.channels.listen("com1-tx", serial.extend)
    register = machine.register_hypercall

    def register_hanging(number, handler, *, kernel=True):  # noqa: ANN001, ANN202
        def maybe_hang(registers):  # noqa: ANN001, ANN202
            if b"tk:/> " in serial:
                stuck_kernel_service()
            return handler(registers)

        register(number, maybe_hang if kernel else handler, kernel=kernel)

    machine.register_hypercall = register_hanging
    return pc


session.make_pc = make_pc

if __name__ == "__main__":
    cli.main()
