"""What recording costs (emu/record.py): the same keyboard-and-network session on a deterministic
PC, without and with a `Recorder`, and what replaying it costs.

    python bench/bench_record.py [--rounds N] [--repeat N]

The session boots with the user NAT, takes a DHCP lease, then `--rounds` times: pings the
gateway, fetches a 64 KB page from an HTTP server on the host's 127.0.0.1 with the ring-3
`httpget`, and types a line of shell work. Runs alternate (plain, recorded, plain, ...) so host
load hits both alike; printed: wall and CPU seconds per run (median and best: on a loaded host
the best is the steadier figure), the overhead in percent,
the recording's size, and the wall time of `Replayer` over the last recording.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.system.harness import SECOND, BootedPc, close_pc  # noqa: E402 - the scripted PC
from tradekernel import hostnet  # noqa: E402
from tradekernel.disktool import create_os_disk  # noqa: E402
from tradekernel.emu.pc import PcConfig  # noqa: E402
from tradekernel.emu.record import Recorder, Recording, Replayer  # noqa: E402
from tradekernel.ui.session import make_pc  # noqa: E402

PAGE_BYTES = 64 * 1024


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *_args: object) -> None:
        pass


def session(folder: Path, port: int, rounds: int, record: bool) -> tuple[float, float, Path]:
    """One session; (wall s, CPU s, recording path or the pristine disk's folder)."""
    disk = folder / "disk.img"
    create_os_disk(disk)
    shutil.copy(disk, folder / "pristine.img")
    wall, cpu = time.perf_counter(), time.process_time()
    booted = BootedPc(folder, disk=disk, net=hostnet.NetOptions("user"))
    recorder = Recorder(booted.pc) if record else None
    try:
        booted.boot()
        booted.run_until(lambda: booted.pc.kernel.net.stack.addr != 0, 20 * SECOND)
        for index in range(rounds):
            booted.output("ping 10.0.2.2 -c 2", 10 * SECOND)
            booted.command(f"httpget 10.0.2.2 {port} /page.bin > /page{index}.bin", 60 * SECOND)
            booted.command(f"echo round {index} of the benchmark > /note{index}.txt")
            booted.command(f"wc /page{index}.bin /note{index}.txt")
        stop = booted.machine.run(until=lambda: True)
        path = folder / "run.tkrec"
        if recorder is not None:
            recorder.finish(stop).save(path)
        return time.perf_counter() - wall, time.process_time() - cpu, path
    finally:
        close_pc(booted)


def fixed_costs(folder: Path) -> None:
    """What a recording costs once, whatever the session's length: the images' identity at
    the start, the final state hash and writing the file at the end."""
    pc = make_pc(PcConfig(disk=folder / "pristine.img", deterministic=True, net="none"))
    try:
        start = time.perf_counter()
        recorder = Recorder(pc)
        started = time.perf_counter()
        recorder.finish(pc.machine.run(until=lambda: True)).save(folder / "empty.tkrec")
        print(f"fixed costs: start {1000 * (started - start):.0f} ms (disk sha256), end "
              f"{1000 * (time.perf_counter() - started):.0f} ms (state hash, file)")  # fmt: skip
    finally:
        pc.close()
        pc.machine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        www = root / "www"
        www.mkdir()
        (www / "page.bin").write_bytes(bytes(range(256)) * (PAGE_BYTES // 256))
        handler = functools.partial(_QuietHandler, directory=str(www))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.server_address[1]
        results: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        last = None
        try:
            for run in range(args.repeat * 2):
                record = run % 2 == 1
                folder = root / f"run{run}"
                folder.mkdir()
                wall, cpu, path = session(folder, port, args.rounds, record)
                results[record].append((wall, cpu))
                if record:
                    last = path
                print(f"run {run}: {'recorded' if record else 'plain   '} "
                      f"wall {wall:6.2f} s  cpu {cpu:6.2f} s", flush=True)  # fmt: skip
        finally:
            server.shutdown()
        for label, index in (("wall", 0), ("cpu", 1)):
            for name, pick in (("median", statistics.median), ("best", min)):
                plain = pick(r[index] for r in results[False])
                recorded = pick(r[index] for r in results[True])
                print(f"{name} {label}: plain {plain:.2f} s, recorded {recorded:.2f} s, "
                      f"overhead {100 * (recorded / plain - 1):+.1f}%")  # fmt: skip
        assert last is not None
        fixed_costs(last.parent)
        recording = Recording.load(last)
        events = recording.events()
        print(f"recording: {last.stat().st_size} bytes on disk, {len(recording.body)} bytes "
              f"of records, {len(events)} records")  # fmt: skip
        replay_disk = last.parent / "replay.img"
        shutil.copy(last.parent / "pristine.img", replay_disk)
        pc = make_pc(PcConfig(disk=replay_disk, deterministic=True, net="user"))
        start = time.perf_counter()
        result = Replayer(pc, recording).run(wall_timeout_s=600)
        verdict = "identical" if result.divergence is None else result.divergence
        print(f"replay: {time.perf_counter() - start:.2f} s wall, {verdict}, "
              f"{result.boundaries} boundaries, {result.checks} state hashes compared")  # fmt: skip


if __name__ == "__main__":
    main()
