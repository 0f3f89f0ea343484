"""A .deb's tarball names come from the package file: one that is not UTF-8 (tarfile keeps
its bytes as surrogates) is a DebError naming it, not a UnicodeEncodeError past the
package manager's `except DebError`."""

from __future__ import annotations

import io
import tarfile

import pytest

from tradekernel.kernel.pkg.deb import DebError, tar_entries


def test_a_non_utf8_entry_name_is_a_deb_error() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo("x")
        tar.addfile(info)
    data = bytearray(buffer.getvalue())
    data[0] = 0xFF  # the name's first byte: not UTF-8
    data[148:156] = b" " * 8
    data[148:156] = b"%06o\0 " % sum(data[:512])  # the header checksum again
    with pytest.raises(DebError, match="not UTF-8"):
        tar_entries(bytes(data), "data.tar")


def test_version_numbers_of_any_length_compare_without_int() -> None:
    """A Version field from a package or an index may hold 5000 digits: int() refuses
    more than 4300 (ValueError); dpkg compares the digit runs, and refuses a big epoch."""
    from tradekernel.kernel.pkg.control import ControlError, compare_versions

    assert compare_versions("1" * 5000, "1") == 1
    assert compare_versions("1.0" + "0" * 5000 + "1", "1.0" + "0" * 5000 + "2") == -1
    assert compare_versions("1.007", "1.7") == 0
    with pytest.raises(ControlError, match="epoch"):
        compare_versions("1" * 5000 + ":1", "1")
