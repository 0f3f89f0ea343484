"""Boot one disk image on the TradeKernel PC with nothing but its boot sector, and read the
screen: what the sample and QEMU tests share."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from tradekernel.emu.pc import Pc, PcConfig
from tradekernel.ui.ansi import screen_text

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "images" / "samples"
SECTOR = 512
DISK_BYTES = 1024 * 1024
END_MARKER = "-- end --"  # every sample prints it last (images/samples/lib.inc)
WALL_LIMIT_S = 10.0  # a safety net only: each sample finishes in well under a second


def sample(name: str) -> bytes:
    return (SAMPLES / f"{name}.bin").read_bytes()


def make_disk(
    path: Path, boot_sector: bytes, sectors: dict[int, bytes] | None = None, size: int = DISK_BYTES
) -> Path:
    """A blank raw image of `size` bytes with `boot_sector` at LBA 0 and `sectors` (LBA ->
    bytes) written over it."""
    image = bytearray(size)
    image[: len(boot_sector)] = boot_sector
    for lba, data in (sectors or {}).items():
        image[lba * SECTOR : lba * SECTOR + len(data)] = data
    path.write_bytes(bytes(image))
    return path


@dataclass
class Boot:
    pc: Pc
    reason: str

    @property
    def rows(self) -> list[str]:
        return [row.rstrip() for row in screen_text(self.pc.vga.text_screen())]

    def attributes(self, row: int) -> bytes:
        cells = self.pc.vga.text_screen().cells
        return bytes(cells[row * 160 + 1 : (row + 1) * 160 : 2])

    def cells(self, rows: range) -> bytes:
        """Character and attribute bytes of whole rows, as at 0xB8000."""
        return bytes(self.pc.vga.text_screen().cells[rows.start * 160 : rows.stop * 160])


def boot(
    disk: Path,
    *,
    read_only: bool = True,
    keys: Iterable[tuple[str, bool]] = (),
    until_text: str = END_MARKER,
    until: Callable[[Pc], bool] | None = None,
) -> Boot:
    """Power on with `disk` and run (deterministic) until `until_text` is on the screen (or
    `until(pc)`, if given) or the machine stops; `keys` are fed one event each time the guest
    idles."""
    pc = Pc(PcConfig(disk=disk, deterministic=True, read_only=read_only))
    pending = list(keys)

    def feed() -> bool:
        if not pending:
            return False
        pc.machine.channels.send("keyboard-key", pending.pop(0))
        return True

    pc.machine.feed_when_idle(feed)

    def shown() -> bool:
        return any(until_text in row for row in screen_text(pc.vga.text_screen()))

    stop = pc.machine.run(
        wall_timeout_s=WALL_LIMIT_S, until=shown if until is None else lambda: until(pc)
    )
    pc.flush()
    pc.machine.close()
    return Boot(pc, stop.reason)
