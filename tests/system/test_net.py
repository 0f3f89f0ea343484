"""The network through a booted OS: the kernel probes the NE2000, DHCP from the user NAT gives
10.0.2.15, the shell pings the gateway, and a machine without a card boots the same."""

from __future__ import annotations

import functools
import http.server
import socket
import threading
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



def test_ring3_http_client_fetches_a_page_from_a_host_http_server(tmp_path: Path) -> None:
    """httpget (a C program over socketcall) reaches Python's http.server on the host's
    127.0.0.1 through the user NAT's 10.0.2.2, on a real-time PC."""
    folder = tmp_path / "www"
    folder.mkdir()
    page = b"".join(b"line %d of the page\n" % i for i in range(400))  # ~8 KB, several segments
    (folder / "page.txt").write_bytes(page)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    booted = BootedPc(tmp_path, net=hostnet.NetOptions("user"), deterministic=False).boot()
    try:
        booted.run_until(lambda: booted.pc.kernel.net.stack.addr != 0, 20 * SECOND)
        port = server.server_address[1]
        booted.command(f"httpget 10.0.2.2 {port} /page.txt > /page.out", 30 * SECOND)
        assert booted.pc.kernel.fs.read_file("/page.out") == page
        lines = booted.output(f"httpget 10.0.2.2 {port} /missing", 30 * SECOND)
        assert lines[0].startswith("HTTP/1.0 404"), lines
    finally:
        server.shutdown()
        close_pc(booted)


def test_host_client_reaches_a_guest_echo_server_through_hostfwd(tmp_path: Path) -> None:
    booted = BootedPc(tmp_path, net=hostnet.NetOptions("user", hostfwd=["tcp:0-:7000"]),
                      deterministic=False).boot()
    port = booted.link.backend.forwards[0].bound_port
    data = bytes(range(256)) * 40  # 10 KiB
    echoed = bytearray()

    def client() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as peer:
            peer.sendall(data)
            peer.shutdown(socket.SHUT_WR)
            while chunk := peer.recv(65536):
                echoed.extend(chunk)

    try:
        booted.type("tcpecho 7000\n")
        booted.run_until(lambda: b"listening on port 7000" in booted.serial, 10 * SECOND)
        worker = threading.Thread(target=client, daemon=True)
        worker.start()
        booted.run_until(lambda: b"echoed 10240 bytes" in booted.serial, 30 * SECOND)
        worker.join(10)
        assert bytes(echoed) == data
    finally:
        close_pc(booted)
