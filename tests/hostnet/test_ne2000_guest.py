"""Guest code drives the NIC: a real-mode boot sector (ne2000_guest.asm) programs the 8259s and an
NE2000 at 0x300 with port I/O, sends a frame, sleeps until IRQ 9 and copies the first frame that
arrives to the debug console. With a DHCP DISCOVER it runs on the TradeKernel PC (our NE2000
model, hostnet's user NAT, the machine's run loop) and on QEMU (its ne2k_isa and its own
user-mode network, restricted to the guest): the same code must get a DHCP OFFER for 10.0.2.15
from both. Two TradeKernel PCs on a --net socket hub receive each other's frames, Linux in a
network namespace answers the guest's ARP through --net tap, a late host reply wakes a sleeping
real-time guest, and a --hostfwd client's SYN reaches the guest's ring."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from tests.bios.bootrun import make_disk
from tests.peers import peer
from tradekernel.emu.pc import Pc, PcConfig

MAC = "52:54:00:12:34:56"
END_MARK = b"<<TKEND>>"
SOURCE = Path(__file__).with_name("ne2000_guest.asm")
DEADLINE_S = 20.0

@pytest.fixture(autouse=True)
def _nasm() -> None:
    peer("nasm")


def discover() -> bytes:
    return bytes(
        Ether(src=MAC, dst="ff:ff:ff:ff:ff:ff")
        / IP(src="0.0.0.0", dst="255.255.255.255")
        / UDP(sport=68, dport=67)
        / BOOTP(chaddr=bytes.fromhex(MAC.replace(":", "")), xid=0x7E57, flags=0x8000)
        / DHCP(options=[("message-type", "discover"), ("param_req_list", [1, 3, 6, 51]),
                       "end"])
    )


def build_disk(folder: Path, frame: bytes | None = None, mac: str = MAC) -> Path:
    """The boot sector assembled for `mac`, with `frame` (default: a DHCP DISCOVER) at LBA 1."""
    frame = discover() if frame is None else frame
    folder.mkdir(exist_ok=True)
    defines = [f"-DFRAME_LEN={len(frame)}"] + [
        f"-DMAC{i}=0x{part}" for i, part in enumerate(mac.split(":"))
    ]
    binary = folder / "boot.bin"
    subprocess.run(["nasm", "-f", "bin", *defines, "-o", str(binary), str(SOURCE)], check=True,
                   timeout=30)  # fmt: skip
    return make_disk(folder / "disk.img", binary.read_bytes(), {1: frame})


def check_offer(output: bytes) -> dict:
    """The frame the guest copied out is a DHCP OFFER of 10.0.2.15; returns its options."""
    assert output.endswith(END_MARK), output[-40:]
    offer = Ether(output[: -len(END_MARK)])
    assert offer[Ether].dst in ("ff:ff:ff:ff:ff:ff", MAC)
    assert offer[BOOTP].op == 2 and offer[BOOTP].xid == 0x7E57
    assert offer[BOOTP].yiaddr == "10.0.2.15"
    options = {o[0]: o[1:] for o in offer[DHCP].options if isinstance(o, tuple)}
    assert options["message-type"] == (2,)
    assert options["server_id"] == ("10.0.2.2",)
    assert options["subnet_mask"] == ("255.255.255.0",)
    assert options["lease_time"] == (86400,)
    return options


def cabled_pc(disk: Path, mac: str, net: str, deterministic: bool, **cable: object) -> Pc:
    """A read-only PC whose NE2000 has `mac` and whose cable plugs into `net` (tk's --net)."""
    return Pc(PcConfig(disk=disk, deterministic=deterministic, read_only=True, net=net,
                       mac=bytes.fromhex(mac.replace(":", "")), **cable))  # type: ignore[arg-type]


def run_dhcp_guest(folder: Path) -> tuple[bytes, Path]:
    """Boot the DHCP guest on a deterministic PC with --net user and --pcap; (its output, the
    capture)."""
    disk = build_disk(folder)
    capture = folder / "guest.pcap"
    pc = cabled_pc(disk, MAC, "user", deterministic=True, pcap=str(capture))
    nic, link = pc.nic, pc.net
    output = bytearray()
    pc.machine.channels.listen("debugcon", output.extend)
    try:
        stop = pc.machine.run(wall_timeout_s=DEADLINE_S, until=lambda: output.endswith(END_MARK))
    finally:
        link.close()
        pc.machine.close()
    assert stop.reason == "until", stop
    assert nic.frames_sent == 1 and link.frames_out == 1 and link.frames_in >= 1
    return bytes(output), capture


def test_boot_sector_gets_dhcp_offer_through_our_ne2000_and_user_nat(tmp_path: Path) -> None:
    output, _ = run_dhcp_guest(tmp_path)
    options = check_offer(output)
    assert options["router"] == ("10.0.2.2",) and options["name_server"] == ("10.0.2.3",)


def test_deterministic_runs_write_the_same_capture_byte_for_byte(tmp_path: Path) -> None:
    first = run_dhcp_guest(tmp_path / "one")
    second = run_dhcp_guest(tmp_path / "two")
    assert first[0] == second[0]
    assert first[1].read_bytes() == second[1].read_bytes()
    assert len(first[1].read_bytes()) > 24 + 2 * 16 + 2 * 300  # header, two records, two frames


def test_same_boot_sector_gets_an_offer_on_qemu(tmp_path: Path) -> None:
    peer("qemu-system-i386")
    disk = build_disk(tmp_path)
    log = tmp_path / "debugcon.log"
    process = subprocess.Popen(
        ["qemu-system-i386", "-display", "none", "-m", "32", "-no-reboot", "-nodefaults",
         "-drive", f"file={disk},format=raw,snapshot=on",
         "-debugcon", f"file:{log}",
         "-netdev", "user,id=n0,restrict=on",
         "-device", f"ne2k_isa,netdev=n0,iobase=0x300,irq=9,mac={MAC}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        end = time.monotonic() + DEADLINE_S
        while not (log.exists() and log.read_bytes().endswith(END_MARK)):
            if process.poll() is not None:
                pytest.fail(f"QEMU exited: {process.stderr.read().decode()}")
            if time.monotonic() > end:
                pytest.fail(f"no frame on QEMU within {DEADLINE_S}s: {log.read_bytes()[-60:]!r}")
            time.sleep(0.05)
    finally:
        process.kill()
        process.wait()
        process.stderr.close()
    check_offer(log.read_bytes())  # restrict=on: QEMU leaves out router and DNS


def test_two_machines_on_a_socket_hub_hear_each_other(tmp_path: Path) -> None:
    port = 20000 + random.randrange(20000)
    macs = {"a": "52:54:00:00:00:0a", "b": "52:54:00:00:00:0b"}
    machines = {}
    for name, mac in macs.items():
        frame = bytes(Ether(src=mac, dst="ff:ff:ff:ff:ff:ff", type=0x88B5) / f"hello from {name}")
        pc = cabled_pc(build_disk(tmp_path / name, frame, mac), mac,
                       f"socket:mcast=239.255.42.1:{port}", deterministic=True)  # fmt: skip
        nic, link = pc.nic, pc.net
        output = bytearray()
        pc.machine.channels.listen("debugcon", output.extend)
        machines[name] = (pc, nic, link, output)
    try:
        pc_a, nic_a, _, out_a = machines["a"]
        pc_b, _, _, out_b = machines["b"]
        # A sends and sleeps; B sends, hears A at once; A, idle, hears B.
        for pc, done in ((pc_a, lambda: nic_a.frames_sent == 1),
                         (pc_b, lambda: out_b.endswith(END_MARK)),
                         (pc_a, lambda: out_a.endswith(END_MARK))):  # fmt: skip
            assert pc.machine.run(DEADLINE_S, until=done).reason == "until"
    finally:
        for pc, _, link, _ in machines.values():
            link.close()
            pc.machine.close()
    heard_by_b, heard_by_a = Ether(bytes(out_b[:-9])), Ether(bytes(out_a[:-9]))
    assert heard_by_b.src == macs["a"] and bytes(heard_by_b.payload).startswith(b"hello from a")
    assert heard_by_a.src == macs["b"] and bytes(heard_by_a.payload).startswith(b"hello from b")


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/dev/net/tun"), reason="needs root")
def test_guest_arp_answered_by_linux_through_tap(tmp_path: Path) -> None:
    """The whole path to a real peer: guest code -> NE2000 -> TAP -> Linux in a namespace made
    here, and Linux's ARP reply back into the guest's receive ring."""
    suffix = uuid.uuid4().hex[:6]
    tap, namespace = f"tkg{suffix}", f"tkgns{suffix}"
    who_has = bytes(Ether(src=MAC, dst="ff:ff:ff:ff:ff:ff")
                    / ARP(op=1, hwsrc=MAC, psrc="10.196.0.2", pdst="10.196.0.1"))  # fmt: skip
    pc = cabled_pc(build_disk(tmp_path, who_has), MAC, f"tap:{tap}", deterministic=True)
    link = pc.net
    output = bytearray()
    pc.machine.channels.listen("debugcon", output.extend)
    subprocess.run(["ip", "netns", "add", namespace], check=True, timeout=10)
    try:
        for command in (["link", "set", tap, "netns", namespace],
                        ["-n", namespace, "addr", "add", "10.196.0.1/24", "dev", tap],
                        ["-n", namespace, "link", "set", tap, "up"]):  # fmt: skip
            subprocess.run(["ip", *command], check=True, timeout=10)
        stop = pc.machine.run(DEADLINE_S, until=lambda: output.endswith(END_MARK))
    finally:
        link.close()
        pc.machine.close()
        subprocess.run(["ip", "netns", "del", namespace], timeout=10)
    assert stop.reason == "until", stop
    reply = Ether(bytes(output[: -len(END_MARK)]))
    assert reply[ARP].op == 2 and reply[ARP].psrc == "10.196.0.1" and reply[ARP].hwdst == MAC


def test_real_time_pc_gets_a_late_host_reply_while_asleep(tmp_path: Path) -> None:
    """Real-time clock: the guest sends a UDP datagram to a host socket and sleeps in hlt with
    nothing scheduled; the host answers 100 ms later; the run loop picks it up (woken by the
    hostnet waker, or at its idle poll) and the reply arrives through IRQ 9."""
    host = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    host.bind(("127.0.0.1", 0))
    host.settimeout(DEADLINE_S)

    def answer_late() -> None:
        data, client = host.recvfrom(100)
        time.sleep(0.1)
        host.sendto(b"late:" + data, client)

    threading.Thread(target=answer_late, daemon=True).start()
    datagram = bytes(Ether(src=MAC, dst="52:55:0a:00:02:02") / IP(src="10.0.2.15", dst="10.0.2.2")
                     / UDP(sport=7000, dport=host.getsockname()[1]) / b"quote?")  # fmt: skip
    pc = cabled_pc(build_disk(tmp_path, datagram), MAC, "user", deterministic=False)
    link = pc.net
    output = bytearray()
    pc.machine.channels.listen("debugcon", output.extend)
    try:
        stop = pc.machine.run(DEADLINE_S, until=lambda: output.endswith(END_MARK))
    finally:
        link.close()
        pc.machine.close()
        host.close()
    assert stop.reason == "until", stop
    assert Ether(bytes(output[: -len(END_MARK)]))[Raw].load == b"late:quote?"


def test_hostfwd_connection_reaches_the_guest_nic_as_a_syn(tmp_path: Path) -> None:
    """--hostfwd: a host client connecting to the forwarded port puts a SYN for the guest's port
    into the guest's receive ring (the guest announced itself with a gratuitous ARP first)."""
    announce = bytes(Ether(src=MAC, dst="ff:ff:ff:ff:ff:ff")
                     / ARP(op=1, hwsrc=MAC, psrc="10.0.2.15", pdst="10.0.2.15"))  # fmt: skip
    pc = cabled_pc(build_disk(tmp_path, announce), MAC, "user", deterministic=True,
                   hostfwd=("tcp:0-:2323",))
    nic, link = pc.nic, pc.net
    port = link.backend.forwards[0].bound_port
    output = bytearray()
    pc.machine.channels.listen("debugcon", output.extend)
    client = socket.socket()
    client.settimeout(DEADLINE_S)
    try:
        assert pc.machine.run(DEADLINE_S, until=lambda: nic.frames_sent == 1).reason == "until"
        client.connect(("127.0.0.1", port))
        stop = pc.machine.run(DEADLINE_S, until=lambda: output.endswith(END_MARK))
    finally:
        client.close()
        link.close()
        pc.machine.close()
    assert stop.reason == "until", stop
    syn = Ether(bytes(output[: -len(END_MARK)]))
    assert syn[IP].src == "10.0.2.2" and syn[IP].dst == "10.0.2.15"
    assert syn[TCP].dport == 2323 and str(syn[TCP].flags) == "S"
