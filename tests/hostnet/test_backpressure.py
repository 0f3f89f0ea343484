"""Back-pressure between the host side and the NE2000's receive ring: a backend that hands over far
more frames than the ring holds loses none of them; they wait in the Link while the ring is full,
go on as the driver frees ring space (BNRY), arrive in order, and the card never overruns
(no OVW, no missed-packet count). While many wait the backend is not polled for more."""

from __future__ import annotations

from collections.abc import Callable

from tests.devices.test_ne2000 import MAC, Driver
from tests.hostnet.test_attach import Bench
from tradekernel.hostnet import link as link_module
from tradekernel.hostnet.link import Link

ISR = 7
ISR_OVW = 0x10


class Flood:
    """A backend that has `count` frames ready for the guest at its first poll."""

    name = "flood"

    def __init__(self, count: int, size: int) -> None:
        self.frames = [MAC + b"\x02" * 6 + b"\x08\x00" + i.to_bytes(4, "big") + bytes(size - 18)
                       for i in range(count)]  # fmt: skip
        self.polls = 0
        self._deliver: Callable[[bytes], None] | None = None

    def start(self, deliver: Callable[[bytes], None]) -> None:
        self._deliver = deliver

    def send(self, frame: bytes) -> None:
        pass

    def poll(self) -> None:
        self.polls += 1
        assert self._deliver is not None
        frames, self.frames = self.frames, []
        for frame in frames:
            self._deliver(frame)

    def filenos(self) -> list[int]:
        return []

    def next_timeout(self) -> float | None:
        return None

    def close(self) -> None:
        pass


def drain_one_at_a_time(driver: Driver) -> list[bytes]:
    """The driver takes frames one by one, moving BNRY after each (as Linux's ei_receive)."""
    return [frame for _, frame in driver.drain()]


def test_a_burst_larger_than_the_ring_waits_in_the_link_and_arrives_whole() -> None:
    bench = Bench()
    flood = Flood(300, 1514)  # ~440 KiB against a 14 KiB ring
    link = Link(bench.channels, flood, bench.clock.now_ns)
    assert link.poll()
    assert 0 < bench.nic.frames_received < 20 and link.waiting == 300 - bench.nic.frames_received
    assert link.throttled
    got: list[bytes] = []
    for _ in range(1000):
        got += drain_one_at_a_time(bench.driver)
        link.poll()
        if len(got) == 300:
            break
    assert [frame[14:18] for frame in got] == [i.to_bytes(4, "big") for i in range(300)]
    assert all(len(frame) == 1514 for frame in got)
    assert not bench.driver.inb(ISR) & ISR_OVW
    assert bench.nic.chip.counters[2] == 0 and bench.nic.frames_dropped == 0
    assert link.dropped_in == 0 and link.waiting == 0 and not link.throttled
    assert flood.polls < 10  # not polled while throttled


def test_frames_wait_only_while_the_ring_is_full(monkeypatch) -> None:  # noqa: ANN001
    """With room in the ring a frame goes straight in; at QUEUE_MAX waiting they are dropped
    and counted, never held without bound."""
    bench = Bench()
    monkeypatch.setattr(link_module, "QUEUE_MAX", 100)
    flood = Flood(1, 100)
    link = Link(bench.channels, flood, bench.clock.now_ns)
    link.poll()
    assert link.waiting == 0 and bench.nic.frames_received == 1
    flood.frames = Flood(150, 1514).frames
    link.poll()
    stored = bench.nic.frames_received - 1
    assert link.waiting == 100 and link.dropped_in == 150 - stored - 100
