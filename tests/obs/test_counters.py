"""kernel/obs/counters.py: rates are per second of virtual time between two samples, never
negative (a counter cleared in between reads as 0), and the listing names every counter."""

from __future__ import annotations

from tradekernel.kernel.obs.counters import Counters, rates


def test_rates_are_per_virtual_second() -> None:
    earlier = Counters(
        time_ns=1_000_000_000, interrupts={0: 10, 1: 5}, context_switches=4, syscalls=100,
        page_faults={"cow": 1}, rx_bytes=2048, tx_packets=3,
    )  # fmt: skip
    later = Counters(
        time_ns=1_500_000_000, interrupts={0: 60, 1: 5}, context_switches=54, syscalls=1100,
        page_faults={"cow": 3, "other": 1}, rx_bytes=4096, tx_packets=1,
    )  # fmt: skip
    rate = rates(earlier, later)
    assert rate.seconds == 0.5
    assert (rate.interrupts, rate.context_switches, rate.syscalls) == (100.0, 100.0, 2000.0)
    assert (rate.page_faults, rate.rx_bytes, rate.tx_packets) == (6.0, 4096.0, 0.0)
    assert rates(later, later).interrupts == 0.0  # no time passed: no division by zero


def test_the_listing_names_each_counter_and_only_busy_irq_lines() -> None:
    lines = Counters(time_ns=2_500_000_000, interrupts={0: 7, 1: 0, 14: 3}, syscalls=9).lines()
    assert lines[0] == "         2.500 seconds since boot (virtual)"
    assert "             7 interrupts on IRQ 0" in lines and "            10 interrupts" in lines
    assert not any(line.endswith("on IRQ 1") for line in lines)
    assert "             9 system calls" in lines
