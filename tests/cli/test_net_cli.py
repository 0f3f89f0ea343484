"""`tk boot` and the NE2000: --net, --hostfwd and --pcap reach the card's cable, mistakes are one
line before booting, and the capture file is a real pcap (read by tshark)."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

from click.testing import CliRunner

from tests.peers import peer
from tradekernel.cli import main
from tradekernel.emu.pc import Pc, PcConfig
from tradekernel.ui.supervisor import EXIT_ERROR

from .conftest import run_tk

PCAP_HEADER = struct.Struct("=IHHiIII")  # libpcap's global header
NE2000_BASE = 0x300


def _one_line(result: subprocess.CompletedProcess[bytes], *words: str) -> str:
    assert result.returncode == EXIT_ERROR, result.stderr
    assert b"Traceback" not in result.stderr
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_a_bad_net_spec_is_one_line_and_leaves_no_scratch_disk(scratch_dir: Path) -> None:
    result = run_tk(["boot", "--headless", "--net", "bogus"], scratch_dir)
    _one_line(result, "--net 'bogus'", "user, tap:NAME, socket:OPTIONS or none")
    assert list(scratch_dir.iterdir()) == []


def test_hostfwd_mistakes_are_one_line(scratch_dir: Path) -> None:
    result = run_tk(
        ["boot", "--headless", "--net", "none", "--hostfwd", "tcp:8080-:80"], scratch_dir
    )
    _one_line(result, "--hostfwd works only with --net user")
    result = run_tk(["boot", "--headless", "--hostfwd", "tcp:80x-:80"], scratch_dir)
    _one_line(result, "tcp:80x-:80")


def test_a_pcap_path_that_cannot_be_written_is_refused_before_booting() -> None:
    result = CliRunner().invoke(main, ["boot", "--headless", "--pcap", "/nonexistent/n.pcap"])
    assert result.exit_code == EXIT_ERROR
    assert result.output.strip().splitlines() == [
        "Error: --pcap /nonexistent/n.pcap: no directory /nonexistent"
    ]


def test_pcap_of_a_boot_with_user_networking_is_a_capture_tshark_reads(
    tmp_path: Path, scratch_dir: Path
) -> None:
    """The kernel's NE2000 driver asks for an address at boot: the capture holds its DHCP
    exchange with the built-in NAT, and tshark reads every frame with nothing malformed."""
    capture = tmp_path / "boot.pcap"
    result = run_tk(
        ["boot", "--headless", "--net", "user", "--pcap", str(capture)],
        scratch_dir,
        stdin=b"echo up\nshutdown\n",
    )
    assert result.returncode == 0, result.stderr
    assert b"up" in result.stdout
    data = capture.read_bytes()
    magic, major, minor, _zone, _sigfigs, _snaplen, linktype = PCAP_HEADER.unpack_from(data)
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, 1)  # Ethernet
    read = subprocess.run(
        [peer("tshark"), "-r", str(capture)], capture_output=True, text=True, check=False
    )
    assert read.returncode == 0, read.stderr
    assert "DHCP Discover" in read.stdout and "DHCP ACK" in read.stdout, read.stdout
    assert "Malformed" not in read.stdout


def test_the_ne2000_answers_at_0x300_on_the_pc() -> None:
    """The card's reset port (base + 0x18) reads 0 and leaves the chip stopped with ISR.RST."""
    pc = Pc(PcConfig(net="user"))
    try:
        assert pc.machine.ports.read(NE2000_BASE + 0x18, 1) == 0
        assert pc.machine.ports.read(NE2000_BASE + 0x07, 1) & 0x80  # ISR.RST
        assert pc.machine.ports.read(NE2000_BASE + 0x00, 1) & 0x01  # CR.STP
    finally:
        pc.close()


def test_the_pc_gives_its_ne2000_the_configured_station_address() -> None:
    """Read back from the card's PROM through remote DMA, as a driver does (each PROM byte is
    doubled on the 16-bit card, so 12 bytes hold the 6 of the address)."""
    mac = bytes.fromhex("525400abcdef")
    pc = Pc(PcConfig(net="user", mac=mac))
    ports = pc.machine.ports
    try:
        ports.read(NE2000_BASE + 0x18, 1)  # reset
        for offset, value in ((0x00, 0x21), (0x0E, 0x48), (0x08, 0), (0x09, 0), (0x0A, 12),
                              (0x0B, 0), (0x00, 0x0A)):  # fmt: skip
            ports.write(NE2000_BASE + offset, 1, value)  # stop; byte mode; read 12 bytes at 0
        prom = bytes(ports.read(NE2000_BASE + 0x10, 1) for _ in range(12))
        assert prom[::2] == mac
    finally:
        pc.close()


def test_net_none_is_no_card_at_all() -> None:
    """As QEMU's -net none: nothing answers at 0x300 (an unclaimed port reads 0xFF)."""
    pc = Pc(PcConfig(net="none"))
    try:
        assert pc.nic is None
        assert pc.machine.ports.read(NE2000_BASE + 0x18, 1) == 0xFF
    finally:
        pc.close()
