"""All core chips on one board: no port clashes, a register fuzz that must never raise, and
snapshots that make a fresh board behave exactly like the original from then on."""

from __future__ import annotations

import random
from datetime import datetime

import pytest

from tradekernel.devices.base import Board, Device
from tradekernel.devices.debugcon import DebugCon
from tradekernel.devices.pic import PicPair
from tradekernel.devices.pit import Pit
from tradekernel.devices.port92 import Port92
from tradekernel.devices.postcode import PostCode
from tradekernel.devices.power import PowerControl
from tradekernel.devices.rtc import Rtc
from tradekernel.devices.uart import Uart16550

from .conftest import ChannelRecorder, make_board, run_until

START = datetime(2025, 3, 14, 9, 26, 53)


def build(now_ns: int = 0) -> tuple[Board, dict[str, Device], ChannelRecorder]:
    board = make_board()
    board.clock.advance_to(now_ns)
    devices: dict[str, Device] = {
        "pic": PicPair(),
        "pit": Pit(),
        "rtc": Rtc(start_time=START),
        "com1": Uart16550(),
        "com2": Uart16550(base=0x2F8, irq=3, channel="com2"),
        "port92": Port92(),
        "debugcon": DebugCon(),
        "postcode": PostCode(),
        "power": PowerControl(),
    }
    for device in devices.values():
        device.attach(board)
    host = ChannelRecorder()
    for name in ("com1-tx", "com2-tx", "debugcon", "post"):
        board.channels.listen(name, host)
    return board, devices, host


CLAIMED = [
    *range(0x20, 0x22),
    *range(0xA0, 0xA2),
    0x4D0,
    0x4D1,
    *range(0x40, 0x44),
    0x61,
    0x70,
    0x71,
    *range(0x3F8, 0x400),
    *range(0x2F8, 0x300),
    0x92,
    0xE9,
    0x80,
    0x604,
    0x605,
]


def test_every_port_is_claimed_once() -> None:
    board, _, _ = build()
    for port in CLAIMED:
        assert board.ports.owner(port) is not None, hex(port)


def random_ops(seed: int, count: int) -> list[tuple[str, int, int]]:
    rng = random.Random(seed)
    ops = []
    for _ in range(count):
        kind = rng.choices(["write", "read", "time", "ack", "host"], [40, 30, 15, 10, 5])[0]
        if kind == "write":
            ops.append((kind, rng.choice(CLAIMED), rng.randrange(256)))
        elif kind == "read":
            ops.append((kind, rng.choice(CLAIMED), 0))
        elif kind == "time":
            ops.append((kind, rng.choice([0, rng.randrange(2_000), rng.randrange(200_000)]), 0))
        else:
            ops.append((kind, rng.randrange(256), rng.randrange(1, 4)))
    return ops


def apply(board: Board, devices: dict[str, Device], op: tuple[str, int, int]) -> object:
    kind, a, b = op
    if kind == "write":
        board.ports.write(a, 1, b)
        return None
    if kind == "read":
        return board.ports.read(a)
    if kind == "time":
        run_until(board.clock, board.clock.now_ns() + a)
        return board.clock.now_ns()
    if kind == "ack":
        pic = devices["pic"]
        assert isinstance(pic, PicPair)
        if not pic.pending():
            return None
        vector = pic.acknowledge()
        board.ports.write(0xA0, 1, 0x20)
        board.ports.write(0x20, 1, 0x20)
        return vector
    board.channels.send("com1-rx", bytes([a]) * b)
    return None


@pytest.mark.parametrize("seed", range(4))
def test_register_fuzz_never_raises_and_snapshots_replay(seed: int) -> None:
    board, devices, host = build()
    for op in random_ops(seed, 1500):
        apply(board, devices, op)

    snapshots = {name: device.state() for name, device in devices.items()}
    other_board, others, other_host = build(board.clock.now_ns())
    for name, device in others.items():
        device.restore(snapshots[name])
    for name, device in others.items():
        assert device.state() == snapshots[name], name

    host.payloads.clear()
    continuation = random_ops(seed + 1000, 1500)
    results = [apply(board, devices, op) for op in continuation]
    other_results = [apply(other_board, others, op) for op in continuation]
    assert other_results == results
    assert other_host.payloads == host.payloads


def test_reset_of_every_device_is_safe_midway() -> None:
    board, devices, _ = build()
    for op in random_ops(99, 500):
        apply(board, devices, op)
    for device in devices.values():
        device.reset()
    run_until(board.clock, board.clock.now_ns() + 10**8)
    assert board.ports.read(0x21) == 0xF8
