"""The network through a booted OS: the kernel probes the NE2000, DHCP from the user NAT gives
10.0.2.15, the shell pings the gateway, and a machine without a card boots the same."""

from __future__ import annotations

import functools
import http.server
import random
import socket
import threading
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, fragment
from scapy.layers.l2 import Ether

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
    booted = BootedPc(tmp_path).boot()
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
        booted.command("mkdir /dl")
        booted.output("cd /dl")
        lines = booted.output(f"wget http://10.0.2.2:{port}/page.txt", 30 * SECOND)
        assert lines[-1] == f"HTTP/1.0 200 OK: saved {len(page)} bytes to /dl/page.txt", lines
        assert booted.pc.kernel.fs.read_file("/dl/page.txt") == page
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


def test_a_hostile_burst_through_the_nic_never_stops_the_machine(user_pc: BootedPc) -> None:
    """Garbage, truncated and forged frames, bad checksums, overlapping fragments, a SYN flood
    and runs that overflow the card's ring all arrive through the NE2000 while a guest echo
    server listens; afterwards the shell and the stack still answer."""
    user_pc.run_until(lambda: user_pc.pc.kernel.net.stack.addr != 0, 20 * SECOND)
    user_pc.type("tcpecho 7000 &\n")
    user_pc.run_until(lambda: b"listening on port 7000" in user_pc.serial, 10 * SECOND)
    stack = user_pc.pc.kernel.net.stack
    ours, peer = "52:54:00:12:34:56", "52:55:0a:00:02:02"
    rng = random.Random(18)
    base = Ether(src=peer, dst=ours)
    ip = IP(src="10.0.2.2", dst="10.0.2.15")
    crafted = [
        bytes(base / ip / TCP(sport=rng.randrange(1024, 65535), dport=7000, flags="S",
                              seq=rng.randrange(1 << 32))) for _ in range(300)
    ] + [
        bytes(base / IP(src="10.0.2.2", dst="10.0.2.15", chksum=0xBEEF) / UDP(dport=9) / b"x"),
        bytes(base / ip / TCP(dport=7000, flags="A", dataofs=15) / b"bad offset"),
        bytes(base / IP(src="10.0.2.2", dst="10.0.2.15", ihl=15) / b"short options"),
        bytes(base / IP(src="10.0.2.2", dst="10.0.2.15", len=60000) / UDP() / b"lying length"),
        bytes(base / ip / ICMP(type=3, code=3) / (b"\x45" * 3)),
    ] + [bytes(base / f) for f in fragment(IP(src="10.0.2.2", dst="10.0.2.15", id=7)
                                           / UDP(dport=9) / bytes(4000), fragsize=512)] * 3
    crafted += [ours_bytes + rng.randbytes(rng.randrange(0, 1500))
                for ours_bytes in [bytes.fromhex(ours.replace(":", ""))] * 200]
    crafted += [frame[: rng.randrange(1, len(frame))] for frame in crafted[:200]]
    before = stack.counters["eth.in"]
    for start in range(0, len(crafted), 100):  # 100 at once overflows the ring
        for frame in crafted[start:start + 100]:
            user_pc.machine.channels.send("net0-receive", frame)
        idle = user_pc.machine.idle_count
        user_pc.run_until(lambda idle=idle: user_pc.machine.idle_count > idle, SECOND)
    clock = user_pc.machine.clock
    calm = clock.now_ns() + 3 * SECOND  # ARP, lost to the overflows, is asked again
    user_pc.run_until(lambda: clock.now_ns() >= calm, 4 * SECOND)
    driver = user_pc.pc.kernel.net.driver
    assert stack.counters["eth.in"] - before > 300
    assert driver.stats["overflows"] > 0
    assert stack.counters["stack.internal_errors"] == 0
    text = "\n".join(user_pc.output("ping 10.0.2.2 -c 2", 10 * SECOND))
    assert "2 received" in text, (text, driver.stats, stack.counters.snapshot())


def test_poll_and_select_over_a_pipe_and_a_socket_together(user_pc: BootedPc) -> None:
    user_pc.run_until(lambda: user_pc.pc.kernel.net.stack.addr != 0, 20 * SECOND)
    assert user_pc.output("pollmix", 10 * SECOND) == [
        "select: 1 ready, pipe 1, socket 0",
        "poll: 1 ready, pipe 0, socket 1",
        "datagram: ping",
        "select with nothing ready: 0",
    ]


def test_nc_both_ways_with_redirection(tmp_path: Path) -> None:
    """nc -l -p (a host client through hostfwd fills a guest file) and nc HOST PORT (a guest
    file goes to a host server, whose answer the guest prints)."""
    booted = BootedPc(tmp_path, net=hostnet.NetOptions("user", hostfwd=["tcp:0-:7001"]),
                      deterministic=False).boot()
    server = socket.create_server(("127.0.0.1", 0))
    heard = bytearray()

    def serve() -> None:
        connection, _ = server.accept()
        with connection:
            while chunk := connection.recv(4096):
                heard.extend(chunk)
            connection.sendall(b"host got it\n")

    try:
        booted.run_until(lambda: booted.pc.kernel.net.stack.addr != 0, 20 * SECOND)
        booted.command("echo > /newline.txt")
        prompts = booted.prompts_seen()
        booted.type("nc -l -p 7001 < /newline.txt > /got.txt\n")  # in the foreground
        stack = booted.pc.kernel.net.stack
        booted.run_until(lambda: any(row["local"].endswith(":7001") for row in
                                     stack.socket_table()), 10 * SECOND)
        port = booted.link.backend.forwards[0].bound_port
        with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
            client.sendall(b"from the host\n" * 100)
            client.shutdown(socket.SHUT_WR)
            answer = bytearray()

            def closed() -> bool:  # the guest's side ended once its stdin did
                while _readable(client):
                    chunk = client.recv(4096)
                    if not chunk:
                        return True
                    answer.extend(chunk)
                return False

            booted.run_until(closed, 20 * SECOND)
            assert answer == b"\n"
        booted.run_until(lambda: booted.prompts_seen() > prompts, 10 * SECOND)
        assert booted.pc.kernel.fs.read_file("/got.txt") == b"from the host\n" * 100
        threading.Thread(target=serve, daemon=True).start()
        booted.command("echo trading kernel > /msg.txt")
        lines = booted.output(f"nc 10.0.2.2 {server.getsockname()[1]} < /msg.txt", 20 * SECOND)
        assert lines == ["host got it"] and bytes(heard) == b"trading kernel\n"
    finally:
        server.close()
        close_pc(booted)


def _readable(peer: socket.socket) -> bool:
    import select

    return bool(select.select([peer], [], [], 0)[0])
