"""The TAP backend with Linux's own stack as the peer: a TAP made by the test is moved into a
network namespace made by the test, and Linux answers ARP and ping from there."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import ARP, Ether

from tradekernel.hostnet.tap import TapBackend, TapError

from .conftest import GUEST_MAC, Guest, is_icmp

NS_ADDRESS, GUEST_ADDRESS = "10.199.0.1", "10.199.0.2"

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/dev/net/tun"), reason="needs root and /dev/net/tun"
)


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, timeout=10, capture_output=True)


@pytest.fixture
def namespaced_tap():  # noqa: ANN201
    suffix = uuid.uuid4().hex[:6]
    name, namespace = f"tktap{suffix}", f"tkns{suffix}"
    backend = TapBackend(name)
    ip("netns", "add", namespace)
    try:
        ip("link", "set", name, "netns", namespace)
        ip("-n", namespace, "addr", "add", f"{NS_ADDRESS}/24", "dev", name)
        ip("-n", namespace, "link", "set", name, "up")
        yield Guest(backend)
    finally:
        backend.close()
        ip("netns", "del", namespace)


@needs_root
def test_linux_answers_arp_and_ping_through_the_tap(namespaced_tap: Guest) -> None:
    guest = namespaced_tap
    guest.send(Ether(src=GUEST_MAC, dst="ff:ff:ff:ff:ff:ff")
               / ARP(op=1, hwsrc=GUEST_MAC, psrc=GUEST_ADDRESS, pdst=NS_ADDRESS))  # fmt: skip
    reply = guest.take(lambda p: ARP in p and p[ARP].op == 2)
    assert reply[ARP].psrc == NS_ADDRESS and reply[ARP].pdst == GUEST_ADDRESS
    linux_mac = reply[ARP].hwsrc
    guest.send(Ether(src=GUEST_MAC, dst=linux_mac)
               / IP(src=GUEST_ADDRESS, dst=NS_ADDRESS) / ICMP(type=8, id=0x77, seq=1)
               / b"tradekernel")  # fmt: skip
    echo = guest.take(is_icmp(0))
    assert echo[IP].src == NS_ADDRESS and echo[ICMP].id == 0x77
    assert bytes(echo[ICMP].payload) == b"tradekernel"


def test_tap_without_rights_says_what_is_needed_in_one_line() -> None:
    """Run as an unprivileged user (setpriv): one line naming the missing capability."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    code = (
        "from tradekernel.hostnet.tap import TapBackend, TapError\n"
        "try:\n    TapBackend('tknoperm0')\nexcept TapError as e:\n    print(e)\n"
    )
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
         sys.executable, "-c", code],
        capture_output=True, text=True, timeout=30, cwd=os.getcwd(),
    )  # fmt: skip
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert len(lines) == 1
    assert "CAP_NET_ADMIN" in lines[0] or "permission" in lines[0]


def test_bad_tap_name_is_one_clear_error() -> None:
    with pytest.raises(TapError, match="interface name"):
        TapBackend("a-name-far-too-long-for-linux")
