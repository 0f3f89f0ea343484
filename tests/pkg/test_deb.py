"""The .deb reader against dpkg-deb (the real peer) on the same files: Debian's busybox-static
and packages dpkg-deb builds with every compression; damaged archives get one line each."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.pkg.conftest import busybox_deb, dpkg_deb, make_deb
from tradekernel.kernel.pkg.control import parse_paragraphs
from tradekernel.kernel.pkg.deb import AR_HEADER, DebError, ar_members, read_control, read_deb

BIG = 64 << 20


def dpkg_contents(deb: Path) -> dict[str, tuple[str, int, int, str]]:
    """path -> (kind letter, mode, size, link target) from `dpkg-deb --contents`."""
    text = subprocess.run(
        [dpkg_deb(), "--contents", str(deb)], capture_output=True, text=True, check=True
    ).stdout
    found = {}
    for line in text.splitlines():
        perms, _owner, size, _date, _time, rest = line.split(None, 5)
        name, _, target = rest.partition(" -> ")
        path = "/" + name.removeprefix("./").rstrip("/")
        mode = sum(1 << (8 - i) for i, c in enumerate(perms[1:10]) if c != "-")
        found[path if path != "/" else "/"] = (perms[0], mode, int(size), target)
    return found


def ours(deb: Path) -> dict[str, tuple[str, int, int, str]]:
    kinds = {"file": "-", "dir": "d", "symlink": "l", "hardlink": "h"}
    parsed = read_deb(deb.read_bytes(), BIG)
    return {
        e.path: (kinds[e.kind], e.mode, len(e.data) if e.kind == "file" else 0, e.target)
        for e in parsed.entries
    }


def dpkg_fields(deb: Path) -> dict[str, str]:
    text = subprocess.run([dpkg_deb(), "-f", str(deb)], capture_output=True, text=True).stdout
    return parse_paragraphs(text)[0]


def test_busybox_static_reads_as_dpkg_deb_lists_it() -> None:
    deb = busybox_deb()
    assert ours(deb) == dpkg_contents(deb)
    assert read_control(deb.read_bytes()) == dpkg_fields(deb)
    parsed = read_deb(deb.read_bytes(), BIG)
    assert parsed.architecture == "i386"
    busybox = next(e for e in parsed.entries if e.path == "/bin/busybox")
    assert busybox.data[:4] == b"\x7fELF" and busybox.data[4] == 1  # ELFCLASS32


@pytest.mark.parametrize("compression", ["gzip", "xz", "zstd", "none"])
def test_every_compression_dpkg_deb_writes(tmp_path: Path, compression: str) -> None:
    deb = make_deb(
        tmp_path,
        "tiny",
        files={"/bin/tiny": b"\x7fELF" + bytes(5000), "/etc/tiny.conf": b"x=1\n"},
        links={"/bin/tiny-link": "tiny", "/usr/bin/elsewhere": "/bin/tiny"},
        compression=compression,
    )
    assert ours(deb) == dpkg_contents(deb)
    data = {e.path: e.data for e in read_deb(deb.read_bytes(), BIG).entries}
    assert data["/bin/tiny"] == b"\x7fELF" + bytes(5000)
    assert read_control(deb.read_bytes()) == dpkg_fields(deb)


def test_unpacked_size_is_bounded_before_inflating(tmp_path: Path) -> None:
    deb = make_deb(tmp_path, "zeros", files={"/zeros": bytes(4 << 20)}, compression="xz")
    assert deb.stat().st_size < 100_000
    with pytest.raises(DebError, match="data.tar.xz: unpacks to more than 1048576 bytes"):
        read_deb(deb.read_bytes(), 1 << 20)


def _members_with(data: bytes, member: str, patch) -> bytes:  # noqa: ANN001
    out = bytearray(data[:8])
    for name, body in ar_members(data):
        body = patch(body) if name.startswith(member) else body
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(body):<10}".encode() + b"`\n"
        out += header + body + b"\n" * (len(body) & 1)
    return bytes(out)


def test_damaged_archives_give_one_line_each(tmp_path: Path) -> None:
    good = make_deb(tmp_path, "tiny", compression="gzip").read_bytes()
    cases = {
        "not a Debian package": b"hello world",
        "truncated": good[: len(good) - 40],
        "corrupt compressed data|truncated|damaged": _members_with(
            good, "data.tar", lambda b: b[:10] + bytes(len(b) - 10)
        ),
        "expected one data.tar": _members_with(good, "data.tar", lambda b: b).replace(
            b"data.tar.gz", b"datx.tar.gz"
        ),
    }
    for expected, data in cases.items():
        with pytest.raises(DebError, match=expected) as caught:
            read_deb(data, BIG)
        assert "\n" not in str(caught.value)


def test_member_size_beyond_the_file_is_refused(tmp_path: Path) -> None:
    good = bytearray(make_deb(tmp_path, "tiny").read_bytes())
    header = 8 + AR_HEADER + 4  # debian-binary is 4 bytes: the second header follows
    good[header + 48 : header + 58] = b"999999999 "
    with pytest.raises(DebError, match="999999999 bytes claimed, archive truncated"):
        read_deb(bytes(good), BIG)


def test_paths_climbing_out_of_the_root_are_refused(tmp_path: Path) -> None:
    import io
    import tarfile

    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w") as tar:
        info = tarfile.TarInfo("./../../etc/passwd")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"root"))
    good = make_deb(tmp_path, "tiny", compression="none").read_bytes()
    evil = _members_with(good, "data.tar", lambda _b: tar_bytes.getvalue())
    with pytest.raises(DebError, match="climbs out of the root"):
        read_deb(evil, BIG)
