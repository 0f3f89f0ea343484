"""Guest memory for the memory-service tests: a bytearray behind the PhysicalMemory protocol."""

from __future__ import annotations

import itertools

import pytest


class PlainMemory:
    """Only the plain protocol (read/write), as the slowest memory object may offer."""

    def __init__(self, size: int) -> None:
        self.data = bytearray(size)

    def read(self, address: int, size: int) -> bytes:
        if address < 0 or address + size > len(self.data):
            raise IndexError(f"read {address:#x}+{size} outside RAM")
        return bytes(self.data[address : address + size])

    def write(self, address: int, data: bytes) -> None:
        if address < 0 or address + len(data) > len(self.data):
            raise IndexError(f"write {address:#x}+{len(data)} outside RAM")
        self.data[address : address + len(data)] = data


class ViewMemory(PlainMemory):
    """The plain protocol plus `view()`, as the machine offers over Unicorn's RAM buffer."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self._view = memoryview(self.data)

    def view(self) -> memoryview:
        return self._view


def make_memory(kind: str, size: int = 8 * 1024 * 1024) -> PlainMemory:
    return ViewMemory(size) if kind == "view" else PlainMemory(size)


def ticking_clock():
    """A virtual clock that advances 10 ns per reading (so allocation order shows in times)."""
    return itertools.count(0, 10).__next__


@pytest.fixture(params=["view", "plain"])
def memory(request) -> PlainMemory:
    """Guest RAM, once with `view()` (the machine's fast path) and once with the plain protocol."""
    return make_memory(request.param)


@pytest.fixture(name="make_memory")
def make_memory_fixture():
    return make_memory


@pytest.fixture
def clock():
    return ticking_clock()
