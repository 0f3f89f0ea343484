"""ELF symbols name data as well as code: every function and every data object binutils' `nm`
lists in a program gcc builds (initialised, zeroed and read-only data, global and static) is
named by `Symbols`, at its start and inside it; `function` names code only."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.peers import peer
from tradekernel.kernel.obs.symbols import Symbols

SOURCE = r"""
int counter = 7;                          /* .data, global: D */
static volatile int hidden = 3;           /* .data, static: d */
long table[64];                           /* .bss, global: B */
static volatile char scratch[100];        /* .bss, static: b */
const char banner[] = "read-only bytes";  /* .rodata: R */

static int helper(int x) { scratch[x & 63] = (char)x; return x + hidden++ + scratch[x & 31]; }

int compute(int x) { return helper(x) + counter + (int)table[x & 63] + banner[x & 7]; }

void _start(void) {
    volatile int sink = compute(5);
    (void)sink;
    for (;;) {}
}
"""


def test_functions_and_data_objects_agree_with_nm(tmp_path: Path) -> None:
    source = tmp_path / "objects.c"
    source.write_text(SOURCE)
    binary = tmp_path / "objects"
    built = subprocess.run(
        [peer("gcc"), "-m32", "-static", "-nostdlib", "-fno-pie", "-no-pie", "-O1",
         "-fno-inline", "-o", str(binary), str(source)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    listing = subprocess.run(
        [peer("nm"), "-n", "-S", "--defined-only", str(binary)], capture_output=True, text=True
    ).stdout
    symbols = Symbols.from_elf(binary.read_bytes())
    seen = {}
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) != 4 or parts[2] not in "TtDdBbRr":
            continue
        address, size, kind, name = int(parts[0], 16), int(parts[1], 16), parts[2], parts[3]
        assert symbols.name(address) == name, line
        if size > 1:
            assert symbols.name(address + size - 1) == f"{name}+{size - 1:#x}", line
        assert symbols.function(address) == (name if kind in "Tt" else None), line
        seen[name] = kind
    assert {name: seen.get(name) for name in ("counter", "hidden", "table", "scratch",
            "banner", "helper", "compute")} == {
        "counter": "D", "hidden": "d", "table": "B", "scratch": "b", "banner": "R",
        "helper": "t", "compute": "T",
    }  # fmt: skip
    assert symbols.name(symbols.starts[symbols.names.index("table")] + 8) == "table+0x8"
