"""kernel/log.py: the ring keeps the newest LOG_ENTRIES, every entry reaches the sink, an oops
carries the exception and its call trace (innermost frames, no Python traceback banner)."""

from __future__ import annotations

import pytest

from tradekernel.kernel.log import LOG_ENTRIES, OOPS_FRAMES, KernelLog, check_level, parse_lines


def make() -> tuple[KernelLog, list[str]]:
    sink: list[str] = []
    now = iter(range(0, 10**12, 1_500_000))
    return KernelLog(lambda: next(now), sink.append), sink


def test_the_ring_is_bounded_and_keeps_the_newest() -> None:
    log, sink = make()
    for n in range(LOG_ENTRIES + 10):
        log.info("test", f"message {n}")
    assert len(log.entries) == LOG_ENTRIES
    assert (
        log.entries[0].text == "message 10" and log.entries[-1].text == f"message {LOG_ENTRIES + 9}"
    )
    assert len(sink) == LOG_ENTRIES + 10  # the host log has them all


def test_entries_are_stamped_in_virtual_seconds() -> None:
    log, sink = make()
    log.info("a", "first")
    log.warning("b", "second")
    assert log.lines() == ["[    0.000000] info    a: first", "[    0.001500] warning b: second"]
    assert sink[1] == "kernel: [    0.001500] warning b: second"
    with pytest.raises(ValueError, match="unknown log level"):
        log.record("loud", "a", "x")


def test_an_oops_has_the_error_and_its_innermost_frames() -> None:
    log, _ = make()

    def deep(n: int) -> None:
        if n == 0:
            raise KeyError("missing")
        deep(n - 1)

    try:
        deep(OOPS_FRAMES + 5)
    except KeyError as error:
        entry = log.oops("syscall", "system call 4 (write) by cat[3]", error)
    lines = entry.text.splitlines()
    assert lines[:3] == [
        "oops: system call 4 (write) by cat[3]",
        "KeyError: 'missing'",
        "Call Trace:",
    ]
    assert len(lines) == 3 + OOPS_FRAMES
    assert all(line.startswith("  deep (test_log.py:") for line in lines[3:])
    assert log.oopses == 1
    assert not any("Traceback" in line for line in log.lines())


def test_levels_and_subsystems_filter_and_sequence_numbers_follow() -> None:
    log, _ = make()
    log.info("net", "link up")
    log.error("ata", "no disk")
    log.debug("net", "arp")
    log.warning("net", "slow")
    assert [e.seq for e in log.entries] == [1, 2, 3, 4]
    assert [e.text for e in log.select(level="warning")] == ["no disk", "slow"]
    assert [e.text for e in log.select(subsystem="net")] == ["link up", "arp", "slow"]
    assert [e.text for e in log.select("info", "net", after=1)] == ["slow"]
    assert log.counts["err"] == 1 and log.counts["debug"] == 1
    assert check_level("WARNING") == "warning"
    with pytest.raises(ValueError, match="one of emerg, alert"):
        check_level("loud")


def test_formatted_entries_parse_back_the_same() -> None:
    log, _ = make()
    log.info("a", "first")
    try:
        raise OSError("disk gone")
    except OSError as error:
        log.oops("syscall", "system call 3 (read) by cat[2]", error)
    text = "\n".join(log.lines())
    back = parse_lines([*text.splitlines(), "garbage that is not an entry"])
    strip = [(e.time_ns, e.level, e.subsystem, e.text) for e in log.entries]
    assert [(e.time_ns, e.level, e.subsystem, e.text) for e in back[:2]] == strip
    assert (back[2].subsystem, back[2].text) == ("?", "garbage that is not an entry")


def test_listeners_see_every_entry_and_a_raising_one_is_dropped() -> None:
    log, _ = make()
    seen: list[str] = []
    stop = log.listen(lambda entry: seen.append(entry.text))

    def broken(entry: object) -> None:
        raise RuntimeError("reader broke")

    log.listen(broken)
    log.info("a", "one")  # the broken listener goes, with an oops that names it
    log.info("a", "two")
    stop()
    log.info("a", "three")
    assert seen[0] == "one" and seen[-1] == "two"
    assert any("log listener" in text and "broken" in text for text in seen)
    assert log.oopses == 1
