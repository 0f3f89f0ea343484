"""A bounded, write-through page cache of a block device, for file data.

Why: exec reads a whole program (busybox: 2 MB, 4,000 sectors) through the ATA driver every
time, and each sector there costs port I/O and an interrupt; a program run again, or a library
every program maps, should come from memory.

Contract: `PageCache(device, pages)` keeps at most `pages` pages of PAGE_BLOCKS device blocks,
each a copy of an aligned run of blocks, least recently used dropped first. `read_blocks`
returns exactly what the device holds: hits from memory, each run of missing pages fetched
with one device read (so a miss also reads ahead to the page's end). `write_blocks` writes the
device first, at once and in the caller's order (write-through: the crash order the filesystem
relies on is unchanged, and nothing is ever written that the caller did not write), then
patches the cached pages it overlaps, so a page is never stale as long as every write to the
device goes through this object. `discard` drops pages (freed clusters: no use keeping them).
A device error on a miss propagates and caches nothing. It uses only the block device.
"""

from __future__ import annotations

from collections import OrderedDict

from tradekernel.kernel.drivers.blockdev import BLOCK_SIZE, BlockDevice, check_range

PAGE_BLOCKS = 8  # 4 KiB pages: what exec and mmap read at a time
PAGE_BYTES = PAGE_BLOCKS * BLOCK_SIZE
PAGE_CACHE_BYTES = 32 << 20  # busybox, ld.so, libc and tcc together fit with room to spare
PAGE_CACHE_PAGES = PAGE_CACHE_BYTES // PAGE_BYTES


class PageCache:
    """Device pages by page number (lba // PAGE_BLOCKS), in least-recently-used order."""

    def __init__(self, device: BlockDevice, pages: int = PAGE_CACHE_PAGES) -> None:
        if pages < 0:
            raise ValueError(f"a page cache of {pages} pages")
        self.device = device
        self.capacity = pages
        self.block_size = device.block_size
        self.block_count = device.block_count
        self._pages: OrderedDict[int, bytearray] = OrderedDict()
        self.hits = 0  # pages served from memory
        self.misses = 0  # pages read from the device

    def __len__(self) -> int:
        return len(self._pages)

    def _fetch(self, first: int, last: int) -> bytes:
        """Read pages first..last (all missing) with one device read, keep them, and return
        the bytes read."""
        lba = first * PAGE_BLOCKS
        count = min((last + 1) * PAGE_BLOCKS, self.block_count) - lba
        data = self.device.read_blocks(lba, count)
        self.misses += last - first + 1
        pages = self._pages
        view = memoryview(data)
        for page in range(first, last + 1):
            offset = (page - first) * PAGE_BYTES
            pages[page] = bytearray(view[offset : offset + PAGE_BYTES])
        while len(pages) > self.capacity:
            pages.popitem(last=False)
        return data

    def read_blocks(self, lba: int, count: int) -> bytes:
        check_range(self, lba, count)
        if count == 0:
            return b""
        if self.capacity == 0:
            self.misses += 1
            return self.device.read_blocks(lba, count)
        first, last = lba // PAGE_BLOCKS, (lba + count - 1) // PAGE_BLOCKS
        pages = self._pages
        if first not in pages and last not in pages and not any(
            page in pages for page in range(first + 1, last)
        ):  # all missing (a first read): one device read, and its bytes are the answer
            start = (lba - first * PAGE_BLOCKS) * BLOCK_SIZE
            return self._fetch(first, last)[start : start + count * BLOCK_SIZE]
        missing_from = None
        for page in range(first, last + 2):
            if page <= last and page not in pages:
                if missing_from is None:
                    missing_from = page
            elif missing_from is not None:
                self._fetch(missing_from, page - 1)
                missing_from = None
        parts: list[memoryview] = []
        for page in range(first, last + 1):
            data = pages.get(page)
            if data is None:  # evicted by this very read (a read larger than the cache)
                return self.device.read_blocks(lba, count)
            pages.move_to_end(page)
            parts.append(memoryview(data))
        self.hits += last - first + 1
        end = (lba + count - last * PAGE_BLOCKS) * BLOCK_SIZE
        parts[-1] = parts[-1][:end]  # trim the last page first: it may be the first too
        parts[0] = parts[0][(lba - first * PAGE_BLOCKS) * BLOCK_SIZE :]
        return b"".join(parts)  # one copy, of exactly the bytes asked for

    def write_blocks(self, lba: int, data: bytes) -> None:
        self.device.write_blocks(lba, data)  # the device first: it checks range and size
        count = len(data) // BLOCK_SIZE
        if not self._pages or count == 0:
            return
        end = (lba + count) * BLOCK_SIZE
        for page in range(lba // PAGE_BLOCKS, (lba + count - 1) // PAGE_BLOCKS + 1):
            cached = self._pages.get(page)
            if cached is None:
                continue
            base = page * PAGE_BYTES
            low, high = max(base, lba * BLOCK_SIZE), min(base + len(cached), end)
            source = low - lba * BLOCK_SIZE
            cached[low - base : high - base] = data[source : source + high - low]

    def discard(self, lba: int, count: int) -> None:
        """Forget the pages wholly inside blocks lba..lba+count-1 (their data is no longer
        wanted); pages partly inside stay, as they still hold other data."""
        if not self._pages:
            return
        first = -(-lba // PAGE_BLOCKS)
        last = (lba + count) // PAGE_BLOCKS - 1
        for page in range(first, last + 1):
            self._pages.pop(page, None)

    def clear(self) -> None:
        self._pages.clear()

    def flush(self) -> None:
        """Nothing is held back (write-through): pass the flush to the device."""
        self.device.flush()
