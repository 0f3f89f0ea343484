"""Protocol counters, netstat -s style: one flat mapping of "proto.name" -> count.

Every drop in the stack increments a named counter here, so a test or the `netstat -s` shell
command can say why a packet went nowhere. Uses nothing but the standard library.
"""

from __future__ import annotations

from collections import Counter


class Counters:
    """Named event counts; a name that never happened reads as 0."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self.counts = self._counts  # hot paths add to it directly (`counts[name] += 1`)

    def inc(self, name: str, n: int = 1) -> None:
        self._counts[name] += n

    def __getitem__(self, name: str) -> int:
        return self._counts[name]

    def snapshot(self) -> dict[str, int]:
        """A sorted copy, grouped by protocol prefix (what `netstat -s` prints)."""
        return dict(sorted(self._counts.items()))
