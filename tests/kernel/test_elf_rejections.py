"""The one ELF refusal the booted shell cannot reach (a command line is far shorter than the
limit): arguments and environment over 64 KiB are refused before any stack page is mapped."""

from __future__ import annotations

import pytest

from tests.system.test_elf_rejections import elf
from tradekernel.kernel.proc.elf import ElfError, build_stack, parse_elf


class NoMappingsAllowed:
    """An address space that fails the test if anything is mapped in it."""

    def map_new(self, *args: object, **kwargs: object) -> int:
        raise AssertionError("a stack page was mapped before the size check")


def test_oversized_arguments_are_refused_before_anything_is_mapped() -> None:
    image = parse_elf(elf())
    argv = [b"prog", b"x" * 40_000]
    envp = [b"HOME=/" + b"y" * 30_000]  # 5 + 40,001 + 30,007 = 70,013 bytes with the NULs
    with pytest.raises(ElfError, match=r"^arguments and environment take 70013 bytes \(E2BIG\)$"):
        build_stack(NoMappingsAllowed(), image, argv, envp, bytes(16))  # type: ignore[arg-type]
