"""kernel/obs/persist.py and rotating.py on a real FAT volume: the kernel log reaches
/var/log/kern.log from deferred work in batches, rotates by size and stays bounded, parses back
for filtering, and what it writes is a volume fsck.fat and mtools accept."""

from __future__ import annotations

from pathlib import Path

from tests.disk.conftest import fsck, mount, mtools, our_volume
from tradekernel.kernel.log import KernelLog, parse_lines
from tradekernel.kernel.obs.persist import KERN_LOG, PENDING_MAX, PersistentLog
from tradekernel.kernel.obs.rotating import RotatingFile


def boot_log(fs) -> tuple[PersistentLog, KernelLog, list]:  # noqa: ANN001
    deferred: list = []
    now = iter(range(0, 10**15, 1_000_000))
    klog = KernelLog(lambda: next(now), lambda text: None)
    klog.info("kernel", "before the disk")  # in the ring before the persistent log starts
    persistent = PersistentLog(fs, klog, deferred.append)
    persistent.start("boot: test", 0)
    return persistent, klog, deferred


def run(deferred: list) -> None:
    while deferred:
        deferred.pop(0)()


def test_entries_reach_the_disk_in_batches_and_read_back_filtered(tmp_path: Path) -> None:
    image = our_volume(tmp_path / "v.img", 8, 16)
    device, fs = mount(image)
    persistent, klog, deferred = boot_log(fs)
    klog.info("net", "link up")
    klog.error("ata", "no disk\nsecond line")
    assert not fs.exists(KERN_LOG) or fs.stat(KERN_LOG).size == 0  # nothing before the work
    assert len(deferred) == 1  # one flush scheduled for the burst
    run(deferred)
    entries = persistent.entries()
    assert [(e.subsystem, e.text) for e in entries] == [
        ("log", "boot: test"),
        ("kernel", "before the disk"),
        ("net", "link up"),
        ("ata", "no disk\nsecond line"),
    ]
    assert [e.text for e in entries if e.matches(level="err")] == ["no disk\nsecond line"]
    fs.close()
    device.close()
    fsck(image)
    text = mtools("mtype", image, "::/var/log/kern.log").decode()
    assert "info    net: link up\n" in text and "err     ata: no disk\n" in text


def test_rotation_keeps_the_set_bounded_and_the_newest_entries(tmp_path: Path) -> None:
    image = our_volume(tmp_path / "v.img", 8, 16)
    device, fs = mount(image)
    persistent = PersistentLog(fs, KernelLog(lambda: 0, lambda text: None), lambda work: None)
    persistent.file = RotatingFile(fs, KERN_LOG, 4096, 2)  # small, to rotate often
    persistent.start("boot", 0)
    for n in range(400):
        persistent.klog.info("test", f"message {n:04d} " + "x" * 40)
        if n % 7 == 0:
            persistent.flush()
    persistent.flush()
    names = sorted(fs.listdir("/var/log"))
    assert names == ["kern.log", "kern.log.1", "kern.log.2"]
    sizes = [fs.stat(f"/var/log/{name}").size for name in names]
    assert all(size <= 4096 for size in sizes) and persistent.file.rotations > 3
    texts = [e.text for e in persistent.entries()]
    assert texts[-1].startswith("message 0399") and not any("message 0000" in t for t in texts)
    numbers = [int(t.split()[1]) for t in texts]
    assert numbers == list(range(numbers[0], 400))  # the newest, none missing in between
    fs.close()
    device.close()
    fsck(image)


def test_a_full_queue_drops_the_oldest_and_says_so(tmp_path: Path) -> None:
    image = our_volume(tmp_path / "v.img", 8, 16)
    device, fs = mount(image)
    persistent, klog, deferred = boot_log(fs)
    for n in range(PENDING_MAX + 5):
        klog.info("flood", f"entry {n}")
    run(deferred)
    texts = [e.text for e in persistent.entries()]
    assert texts[0] == "7 earlier entries dropped (queue full)"
    assert texts[-1] == f"entry {PENDING_MAX + 4}" and len(texts) == PENDING_MAX + 1


def test_a_read_only_volume_means_no_persistent_log_and_no_failure(tmp_path: Path) -> None:
    image = our_volume(tmp_path / "v.img", 8, 16)
    device, fs = mount(image, read_only=True)
    persistent, klog, deferred = boot_log(fs)
    klog.info("net", "still logged in memory")
    run(deferred)
    assert persistent.file.broken is not None and "read-only" in persistent.file.broken
    assert any("no persistent log" in e.text for e in klog.entries)


def test_a_boot_that_logs_nothing_leaves_the_disk_as_it_was(tmp_path: Path) -> None:
    image = our_volume(tmp_path / "v.img", 8, 16)
    device, fs = mount(image)
    deferred: list = []
    klog = KernelLog(lambda: 0, lambda text: None)
    PersistentLog(fs, klog, deferred.append).start("boot: quiet", 0)
    run(deferred)
    assert deferred == [] and not fs.exists("/var")


def test_a_head_with_a_huge_stamp_reads_back_as_text() -> None:
    """A line of the file edited to a 5000-digit stamp is kept as text, not an int() error."""
    line = f"[{'9' * 5000}.000000] info    log: x"
    assert [(e.level, e.subsystem, e.text) for e in parse_lines([line])] == [("info", "?", line)]
