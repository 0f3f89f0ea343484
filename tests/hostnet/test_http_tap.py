"""HTTP both ways with Linux in a network namespace on the guest's TAP: curl there fetches a
file from the ring-3 `httpd` in the guest (and gets a 404 for a missing one), and the guest
shell's `wget` fetches a file from Python's http.server there; both compared byte for byte,
and tshark finds no malformed packet in the machine's --pcap. (10 MiB each way over the same
path is tests/hostnet/test_bulk.py's; these are a few hundred KiB.) Root, /dev/net/tun, curl
and tshark are needed."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from tests.peers import peer
from tests.system.harness import SECOND, BootedPc, close_pc
from tests.system.test_net_tap import LINUX_IP, Namespace, well_formed_frames
from tradekernel import hostnet

GUEST_IP = "10.198.0.2"
SIZE = 300_000  # odd-sized: not a whole number of segments or pages

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/dev/net/tun"), reason="needs root and /dev/net/tun"
)


def test_curl_fetches_from_the_guest_and_the_guest_wgets_from_linux(tmp_path: Path) -> None:
    for tool in ("ip", "curl", "tshark"):
        peer(tool)
    rng = random.Random(18)
    served, fetched = rng.randbytes(SIZE), rng.randbytes(SIZE)
    namespace = Namespace(tmp_path)
    capture = tmp_path / "guest.pcap"
    booted = BootedPc(tmp_path, net=hostnet.NetOptions(f"tap:{namespace.tap}", pcap=str(capture)),
                      deterministic=False)
    try:
        namespace.setup()
        booted.boot()
        assert booted.output(f"ifconfig eth0 {GUEST_IP}/24") == [f"eth0: {GUEST_IP}/24"]
        booted.pc.kernel.fs.write_file("/served.bin", served)
        booted.type("httpd 8080 2 &\n")
        booted.run_until(lambda: b"httpd: listening on port 8080" in booted.serial, 10 * SECOND)
        got = tmp_path / "got.bin"
        curl = namespace.spawn(peer("curl"), "-sS", "--max-time", "120", "-o", str(got), "-w",
                               "%{http_code}", f"http://{GUEST_IP}:8080/served.bin")
        booted.run_until(lambda: curl.poll() is not None, 180 * SECOND)
        assert curl.communicate(timeout=10)[0] == "200"
        assert got.read_bytes() == served
        missing = namespace.spawn(peer("curl"), "-sS", "--max-time", "30", "-o", os.devnull,
                                  "-w", "%{http_code}", f"http://{GUEST_IP}:8080/missing")
        booted.run_until(lambda: missing.poll() is not None, 60 * SECOND)
        assert missing.communicate(timeout=10)[0] == "404"
        booted.run_until(lambda: b"httpd: 404 /missing" in booted.serial, 10 * SECOND)
        assert f"httpd: 200 /served.bin {SIZE} bytes".encode() in booted.serial

        (tmp_path / "www").mkdir()
        (tmp_path / "www" / "fetched.bin").write_bytes(fetched)
        namespace.spawn("python3", "-m", "http.server", "--bind", LINUX_IP, "--directory",
                        str(tmp_path / "www"), "8000")
        namespace.wait_listening(8000)
        booted.output(f"wget http://{LINUX_IP}:8000/fetched.bin", 120 * SECOND)
        assert booted.pc.kernel.fs.read_file("/fetched.bin") == fetched
    finally:
        close_pc(booted)
        namespace.close()
    frames = well_formed_frames(capture)
    assert "HTTP/1.0 200 OK" in frames and "HTTP/1.0 404" in frames
