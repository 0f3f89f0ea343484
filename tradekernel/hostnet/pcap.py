"""`--pcap FILE`: every frame on the cable, both ways, in the classic libpcap format.

Global header with magic 0xA1B2C3D4 (microsecond timestamps, native byte order as libpcap
writes), version 2.4, snap length 65535, LINKTYPE_ETHERNET (1); then one record per frame
(seconds, microseconds, captured length, original length). Timestamps are the virtual time the
frame crossed the cable plus `epoch_ns`: wall time of power-on in real-time runs, a fixed
instant in deterministic ones, so a deterministic run writes the same file byte for byte.
Each record is flushed as written, so a capture survives a crash of the emulator.
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

PCAP_MAGIC = 0xA1B2C3D4
PCAP_VERSION = (2, 4)
SNAPLEN = 65535
LINKTYPE_ETHERNET = 1


class PcapWriter:
    """A tap (see hostnet/link.py) that writes what passes into a pcap file."""

    def __init__(self, path: str | os.PathLike[str], epoch_ns: int = 0) -> None:
        try:
            self._file: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed by close()
        except OSError as error:
            raise ValueError(f"--pcap {path}: cannot write: {error.strerror}") from error
        self.epoch_ns = epoch_ns
        self.frames = 0
        self._file.write(
            struct.pack("=IHHiIII", PCAP_MAGIC, *PCAP_VERSION, 0, 0, SNAPLEN, LINKTYPE_ETHERNET)
        )
        self._file.flush()

    def __call__(self, virtual_ns: int, direction: str, frame: bytes) -> None:
        if self._file.closed:
            return
        stamp = self.epoch_ns + virtual_ns
        seconds, rest = divmod(stamp, 1_000_000_000)
        captured = frame[:SNAPLEN]
        self._file.write(
            struct.pack("=IIII", seconds & 0xFFFFFFFF, rest // 1000, len(captured), len(frame))
        )
        self._file.write(captured)
        self._file.flush()
        self.frames += 1

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
