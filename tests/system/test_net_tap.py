"""A booted TradeKernel on a TAP whose other end is in a network namespace made by the test,
with Linux's own stack as the peer: dnsmasq there leases the guest its address, Linux and the
guest ping each other, TCP runs both ways (a ring-3 echo server in the guest with a Python
client in the namespace; the guest's httpget against Python's http.server there), and tshark
finds no malformed packet in the machine's --pcap. Root and /dev/net/tun are needed."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.peers import peer
from tests.system.harness import SECOND, BootedPc, close_pc
from tradekernel import hostnet

LINUX_IP, RANGE_START = "10.198.0.1", "10.198.0.50"
ECHO_CLIENT = """
import socket, sys
data = bytes(range(256)) * 64
with socket.create_connection((sys.argv[1], 40007), timeout=20) as s:
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    got = b""
    while chunk := s.recv(65536):
        got += chunk
print("OK" if got == data else f"BAD {len(got)}")
"""

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/dev/net/tun"), reason="needs root and /dev/net/tun"
)


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, timeout=10, capture_output=True)


def well_formed_frames(capture: Path) -> str:
    """tshark's summary of every frame in `capture`, after checking none is malformed."""
    tshark = subprocess.run([peer("tshark"), "-r", str(capture), "-Y", "_ws.malformed"],
                            capture_output=True, text=True, timeout=60)
    assert tshark.returncode == 0 and tshark.stdout.strip() == "", tshark.stdout
    return subprocess.run([peer("tshark"), "-r", str(capture)], capture_output=True, text=True,
                          timeout=60).stdout


class Namespace:
    def __init__(self, tmp_path: Path) -> None:
        suffix = uuid.uuid4().hex[:6]
        self.name, self.tap = f"tkns{suffix}", f"tktap{suffix}"
        self.procs: list[subprocess.Popen[str]] = []
        self.tmp = tmp_path

    def setup(self) -> None:
        ip("netns", "add", self.name)
        ip("link", "set", self.tap, "netns", self.name)
        ip("-n", self.name, "link", "set", "lo", "up")
        ip("-n", self.name, "addr", "add", f"{LINUX_IP}/24", "dev", self.tap)
        ip("-n", self.name, "link", "set", self.tap, "up")

    def spawn(self, *argv: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(["ip", "netns", "exec", self.name, *argv], text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.procs.append(proc)
        return proc

    def wait_listening(self, port: int) -> None:
        """Until a TCP socket in the namespace listens on `port` (at most 30 s)."""
        deadline = time.monotonic() + 30
        while f":{port}" not in subprocess.run(["ip", "netns", "exec", self.name, "ss", "-ltn"],
                                               capture_output=True, text=True, timeout=10).stdout:
            assert time.monotonic() < deadline, f"nothing listens on {port}"
            time.sleep(0.1)

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.communicate(timeout=10)
        subprocess.run(["ip", "netns", "del", self.name], timeout=10, capture_output=True)


def test_linux_in_a_namespace_is_the_guest_peer(tmp_path: Path) -> None:
    for tool in ("ip", "ping", "dnsmasq", "tshark"):
        peer(tool)
    namespace = Namespace(tmp_path)
    capture = tmp_path / "guest.pcap"
    booted = BootedPc(tmp_path, net=hostnet.NetOptions(f"tap:{namespace.tap}", pcap=str(capture)),
                      deterministic=False)
    try:
        namespace.setup()
        namespace.spawn(peer("dnsmasq"), "--no-daemon", "--conf-file=/dev/null", "--port=0",
                        f"--interface={namespace.tap}", "--bind-interfaces",
                        f"--dhcp-range={RANGE_START},{RANGE_START},255.255.255.0,10m",
                        f"--dhcp-leasefile={tmp_path / 'leases'}",
                        f"--pid-file={tmp_path / 'dnsmasq.pid'}")
        booted.boot()
        booted.run_until(lambda: booted.pc.kernel.net.stack.addr != 0, 30 * SECOND)
        assert f"inet {RANGE_START}" in "\n".join(booted.output("ifconfig"))

        text = "\n".join(booted.output(f"ping {LINUX_IP} -c 3", 15 * SECOND))
        assert "3 packets transmitted, 3 received, 0% packet loss" in text, text

        linux_ping = namespace.spawn("ping", "-c", "3", "-i", "0.2", "-W", "2", RANGE_START)
        booted.run_until(lambda: linux_ping.poll() is not None, 20 * SECOND)
        assert linux_ping.returncode == 0, linux_ping.stdout.read()  # type: ignore[union-attr]

        booted.type("tcpecho 40007\n")
        booted.run_until(lambda: b"listening on port 40007" in booted.serial, 10 * SECOND)
        client = namespace.spawn("python3", "-c", ECHO_CLIENT, RANGE_START)
        booted.run_until(lambda: client.poll() is not None, 30 * SECOND)
        assert client.stdout.read().strip() == "OK"  # type: ignore[union-attr]
        booted.run_until(lambda: b"echoed 16384 bytes" in booted.serial, 10 * SECOND)

        (tmp_path / "www").mkdir()
        page = b"".join(b"served by linux, line %d\n" % i for i in range(500))
        (tmp_path / "www" / "page.txt").write_bytes(page)
        namespace.spawn("python3", "-m", "http.server", "--bind", LINUX_IP, "--directory",
                        str(tmp_path / "www"), "8080")
        namespace.wait_listening(8080)
        booted.command(f"httpget {LINUX_IP} 8080 /page.txt > /page.out", 20 * SECOND)
        fetched = booted.pc.kernel.fs.read_file("/page.out")
        assert fetched == page, (len(fetched), booted.text())
    finally:
        close_pc(booted)
        namespace.close()
    frames = well_formed_frames(capture)
    assert "DHCP ACK" in frames and "Echo (ping) reply" in frames and "HTTP/1.0 200" in frames
