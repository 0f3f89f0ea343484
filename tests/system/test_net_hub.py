"""Two booted TradeKernel machines on one --net socket hub (a virtual cable between machines on
this host): addresses set with ifconfig, one runs the ring-3 multicast listener (it joins the
group, waits in poll(2)), the other sends to the group; the listener prints each datagram with
its sender."""

from __future__ import annotations

import random
from pathlib import Path

from tests.system.harness import SECOND, BootedPc, close_pc
from tradekernel import hostnet


def test_two_machines_exchange_udp_multicast_over_a_socket_hub(tmp_path: Path) -> None:
    port = 20000 + random.randrange(20000)
    hub = hostnet.NetOptions(f"socket:mcast=239.255.42.7:{port}")
    machines = []
    try:
        for index in (1, 2):
            (tmp_path / str(index)).mkdir()
            machines.append(BootedPc(tmp_path / str(index), net=hub,
                                     mac=bytes([0x52, 0x54, 0, 0, 9, index])).boot())
        listener, sender = machines
        assert listener.output("ifconfig eth0 10.9.0.1/24") == ["eth0: 10.9.0.1/24"]
        assert sender.output("ifconfig eth0 10.9.0.2/24") == ["eth0: 10.9.0.2/24"]
        listener.type("mcast listen 239.1.2.3 5000 2 &\n")
        listener.run_until(lambda: b"waiting for 2 datagrams" in listener.serial, 5 * SECOND)
        assert "        member of 239.1.2.3" in listener.output("ifconfig")
        for text in ("ITCH-1", "ITCH-2"):
            sender.command(f"mcast send 239.1.2.3 5000 {text}")
        listener.run_until(lambda: b"ITCH-2" in listener.serial, 5 * SECOND)
        heard = bytes(listener.serial).decode("cp437")
        assert "from 10.9.0.2:" in heard and ": ITCH-1" in heard and ": ITCH-2" in heard
        listener.command("echo")  # the prompt reports the finished job
        assert b"Done                    mcast listen" in listener.serial
        assert "member of" not in "\n".join(listener.output("ifconfig"))  # left on exit
        assert listener.output("netstat")[1:] == []  # and the socket is gone
    finally:
        for machine in machines:
            close_pc(machine)
