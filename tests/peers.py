"""The real peer tools the tests check our work with, found the same way by every test.

A tool is looked up on PATH and then in /usr/sbin and /sbin (Debian puts fsck.fat and mkfs.fat
there, and a normal user's PATH has neither). Every tool a test calls is listed in PACKAGES with
the Debian package that provides it, and setup.sh installs each of those packages (a test checks
it), so a missing tool means the set-up was not run: the test fails saying so, it never skips.
"""

from __future__ import annotations

import os
import shutil

import pytest

EXTRA_DIRECTORIES = ("/usr/sbin", "/sbin")

# tool -> the Debian package that installs it (setup.sh installs every one of these)
PACKAGES = {
    "fsck.fat": "dosfstools",
    "mkfs.fat": "dosfstools",
    "mcopy": "mtools",
    "mdir": "mtools",
    "mtype": "mtools",
    "mmd": "mtools",
    "mdel": "mtools",
    "minfo": "mtools",
    "mlabel": "mtools",
    "hexdump": "bsdextrautils",
    "nasm": "nasm",
    "gcc": "gcc",
    "qemu-system-i386": "qemu-system-x86",
    "ip": "iproute2",
    "ping": "iputils-ping",
    "dnsmasq": "dnsmasq-base",
    "tshark": "tshark",
    "dpkg": "dpkg",
    "dpkg-deb": "dpkg",
    "dpkg-scanpackages": "dpkg-dev",
    "gdb": "gdb",
    "nm": "binutils",
    "curl": "curl",
    "tmux": "tmux",
}


def search_path() -> str:
    """PATH, then the system directories a non-root PATH lacks."""
    directories = os.environ.get("PATH", os.defpath).split(os.pathsep)
    return os.pathsep.join([*directories, *(d for d in EXTRA_DIRECTORIES if d not in directories)])


def find(tool: str) -> str | None:
    """Where `tool` is, or None."""
    if tool not in PACKAGES:
        raise KeyError(f"{tool} is not a known peer: add it to PACKAGES and setup.sh")
    return shutil.which(tool, path=search_path())


def peer(tool: str) -> str:
    """The full path of `tool`; fails the calling test when it is missing."""
    path = find(tool)
    if path is None:
        pytest.fail(
            f"{tool} not found on PATH, /usr/sbin or /sbin: run ./setup.sh "
            f"(it installs the Debian package {PACKAGES[tool]})",
            pytrace=False,
        )
    return path
