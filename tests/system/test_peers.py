"""tests/peers.py finds every peer tool the same way, and setup.sh installs each of them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests import peers

SETUP = Path(__file__).resolve().parents[2] / "setup.sh"


def setup_packages() -> dict[str, str]:
    """tool -> package that setup.sh installs when the tool is missing: its `for pair in
    tool:package ...` list, and any `command -v TOOL ... || need+=(PACKAGE)` line."""
    text = SETUP.read_text()
    match = re.search(r"^for pair in (.*?); do$", text, re.MULTILINE | re.DOTALL)
    assert match, "setup.sh has no `for pair in ...; do` install list"
    pairs = dict(pair.split(":", 1) for pair in match.group(1).replace("\\\n", " ").split())
    single = re.findall(r"^command -v (\S+) .*\|\| need\+=\((\S+)\)$", text, re.MULTILINE)
    return {**pairs, **dict(single)}


def test_setup_sh_installs_every_package_the_tests_call_for() -> None:
    installed = set(setup_packages().values())
    missing = {
        tool: package for tool, package in peers.PACKAGES.items() if package not in installed
    }
    assert not missing, f"setup.sh does not install: {missing}"


def test_every_peer_is_installed_here() -> None:
    """After ./setup.sh, every tool a test calls is found (none is a reason to skip)."""
    missing = [tool for tool in peers.PACKAGES if peers.find(tool) is None]
    assert not missing, f"not found: {missing}: run ./setup.sh"


def test_sbin_tools_are_found_without_sbin_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A normal user's PATH has no /usr/sbin, where Debian puts fsck.fat."""
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert peers.peer("fsck.fat") in ("/usr/sbin/fsck.fat", "/sbin/fsck.fat")


def test_a_missing_peer_fails_and_says_run_setup(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:  # fmt: skip
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(peers, "EXTRA_DIRECTORIES", ())
    with pytest.raises(pytest.fail.Exception) as failure:
        peers.peer("mtype")
    assert "run ./setup.sh (it installs the Debian package mtools)" in str(failure.value)


def test_an_unlisted_tool_is_a_mistake_in_the_test() -> None:
    with pytest.raises(KeyError, match="add it to PACKAGES and setup.sh"):
        peers.find("tshark-not-listed")
