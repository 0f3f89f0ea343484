"""`tk repo`: the index against dpkg-scanpackages (the real peer) on the same files, a bad .deb
refused with the index untouched, install into an image on the host, and serve over HTTP."""

from __future__ import annotations

import gzip
import subprocess
import sys
import urllib.request
from pathlib import Path

from click.testing import CliRunner

from tests.peers import peer
from tests.pkg.conftest import busybox_deb, make_deb
from tradekernel.disktool import create_os_disk, open_volume
from tradekernel.kernel.pkg.control import parse_paragraphs
from tradekernel.kernel.pkg.database import Database
from tradekernel.repotool import repo

COMPARED = ("Package", "Version", "Architecture", "Depends", "Provides", "Size", "SHA256")


def scanpackages(directory: Path) -> dict[str, dict[str, str]]:
    tool = peer("dpkg-scanpackages")
    text = subprocess.run(
        [tool, "--multiversion", "."], cwd=directory, capture_output=True, text=True, check=True
    ).stdout
    return {(p["Package"], p["Version"]): p for p in parse_paragraphs(text)}


def test_index_matches_dpkg_scanpackages(tmp_path: Path) -> None:
    debs = [busybox_deb(), make_deb(tmp_path, "app", depends="libfoo (>= 2) | libbar")]
    result = CliRunner().invoke(repo, ["add", str(tmp_path / "repo"), *map(str, debs)])
    assert result.exit_code == 0, result.output
    assert result.output == f"{tmp_path / 'repo'}/Packages: 2 packages\n"
    ours = parse_paragraphs((tmp_path / "repo" / "Packages").read_text())
    theirs = scanpackages(tmp_path / "repo")
    assert len(ours) == len(theirs) == 2
    for entry in ours:
        peer = theirs[(entry["Package"], entry["Version"])]
        assert {k: entry.get(k) for k in COMPARED} == {k: peer.get(k) for k in COMPARED}
        assert peer["Filename"] == "./" + entry["Filename"]
    packed = (tmp_path / "repo" / "Packages.gz").read_bytes()
    assert gzip.decompress(packed) == (tmp_path / "repo" / "Packages").read_bytes()


def test_a_bad_deb_is_refused_and_the_index_kept(tmp_path: Path) -> None:
    good = make_deb(tmp_path, "good")
    CliRunner().invoke(repo, ["add", str(tmp_path / "repo"), str(good)])
    before = (tmp_path / "repo" / "Packages").read_bytes()
    bad = tmp_path / "bad.deb"
    bad.write_bytes(good.read_bytes()[:300])
    result = CliRunner().invoke(repo, ["add", str(tmp_path / "repo"), str(bad)])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {bad}: ") and result.output.count("\n") == 1
    assert (tmp_path / "repo" / "Packages").read_bytes() == before
    assert not (tmp_path / "repo" / "bad.deb").exists()


def test_install_into_an_image_on_the_host(tmp_path: Path) -> None:
    disk = tmp_path / "disk.img"
    create_os_disk(disk)
    lib = make_deb(tmp_path, "libfoo", files={"/lib/libfoo.so": b"foo"})
    app = make_deb(tmp_path, "app", depends="libfoo", files={"/bin/app": b"app"})
    CliRunner().invoke(repo, ["add", str(tmp_path / "repo"), str(lib), str(app)])
    result = CliRunner().invoke(repo, ["install", str(disk), str(tmp_path / "repo"), "app"])
    assert result.exit_code == 0, result.output
    with open_volume(disk, read_only=True) as fs:
        assert list(Database(fs).installed()) == ["app", "libfoo"]
        assert fs.read_file("/bin/app") == b"app"
    result = CliRunner().invoke(repo, ["install", str(disk), str(tmp_path / "repo"), "nope"])
    assert result.output == "Error: nope: no such package in the repository\n"


def test_serve_gives_the_index_over_http(tmp_path: Path) -> None:
    CliRunner().invoke(repo, ["add", str(tmp_path / "repo"), str(make_deb(tmp_path, "good"))])
    code = "from tradekernel.repotool import repo; repo()"
    server = subprocess.Popen(
        [sys.executable, "-c", code, "serve", str(tmp_path / "repo"), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()
        assert "10.0.2.2" in banner, banner
        address = banner.split("at ", 1)[1].split(" ", 1)[0]
        with urllib.request.urlopen(address + "Packages", timeout=30) as response:
            assert response.read() == (tmp_path / "repo" / "Packages").read_bytes()
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_install_with_an_index_naming_an_impossible_file_is_one_line(tmp_path: Path) -> None:
    """The index is outside input: a Filename the host cannot even look up (a NUL byte) is the
    package source's refusal, not a ValueError traceback."""
    disk = tmp_path / "disk.img"
    create_os_disk(disk)
    CliRunner().invoke(repo, ["add", str(tmp_path / "repo"), str(make_deb(tmp_path, "app"))])
    index = tmp_path / "repo" / "Packages"
    index.write_text(index.read_text().replace("Filename: app", "Filename: a\x00pp"))
    result = CliRunner().invoke(repo, ["install", str(disk), str(tmp_path / "repo"), "app"])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: app: ") and result.output.count("\n") == 1


def test_serve_on_a_port_that_cannot_exist_is_a_usage_error(tmp_path: Path) -> None:
    CliRunner().invoke(repo, ["add", str(tmp_path / "repo"), str(make_deb(tmp_path, "good"))])
    for port in ("70000", "-1"):
        result = CliRunner().invoke(repo, ["serve", str(tmp_path / "repo"), "--port", port])
        assert result.exit_code == 2, result.output  # not bind()'s OverflowError
        assert "0<=x<=65535" in result.output
