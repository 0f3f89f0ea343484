"""The network through a booted OS: the kernel probes the NE2000, DHCP from the user NAT gives
10.0.2.15, the shell pings the gateway, and a machine without a card boots the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.system.harness import SECOND, BootedPc, close_pc
from tradekernel import hostnet


@pytest.fixture
def user_pc(tmp_path: Path):  # noqa: ANN201
    booted = BootedPc(tmp_path, net=hostnet.NetOptions("user")).boot()
    yield booted
    close_pc(booted)


def test_dhcp_lease_and_ping_the_gateway(user_pc: BootedPc) -> None:
    assert "net: NE2000 at 0x300 IRQ 9, 52:54:00:12:34:56" in user_pc.text()
    user_pc.run_until(lambda: user_pc.pc.kernel.net.stack.addr != 0, 20 * SECOND)
    assert "inet 10.0.2.15  netmask 255.255.255.0" in "\n".join(user_pc.output("ifconfig"))
    assert "default         10.0.2.2" in "\n".join(user_pc.output("route"))
    lines = user_pc.output("ping 10.0.2.2 -c 3", virtual_ns=10 * SECOND)
    text = "\n".join(lines)
    assert "3 packets transmitted, 3 received, 0% packet loss" in text, text
    assert "rtt min/avg/max = " in text


def test_without_a_card_the_os_boots_and_says_so(tmp_path: Path) -> None:
    booted = BootedPc(tmp_path, network_kernel=True).boot()
    assert "net: no network card" in booted.text()
    assert booted.output("ifconfig") == ["no network interface (no NE2000 found at 0x300)"]

