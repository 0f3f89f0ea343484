"""A C compiler and an interpreter in the OS: Debian's i386 tcc and lua5.4, installed by the
package manager (kernel/pkg, Depends resolved: libc6, libgcc-s1, libreadline8...) from the
.debs setup.sh fetched into tests/pkg/debs/toolchain. Both are PIE programs run by Debian's
ld.so. tcc compiles a C program inside the OS and the program it makes runs there; its output
must equal the same source built by the host's gcc -m32 and run natively. lua5.4 runs a script
whose output must equal the same lua5.4 binary's run on the host (with its own ld.so and libs).

libc6-dev (tcc's headers and start files) is copied from its .deb rather than installed: its
Depends pull in linux-libc-dev, whose headers include names that differ only by case
(xt_MARK.h and xt_mark.h), which a FAT volume cannot hold, so pkg refuses it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.peers import peer
from tests.pkg.conftest import DEBS, dpkg_deb
from tests.system.harness import SECOND, BootedPc, close_pc
from tradekernel.disktool import create_os_disk, install_packages, open_volume, put_file
from tradekernel.kernel.pkg.database import Database

TOOLCHAIN = DEBS / "toolchain"
START_FILES = ("crt1.o", "crti.o", "crtn.o", "libc.so", "libc_nonshared.a")
STRATEGY = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A moving-average crossover over a made-up price series: the kind of strategy the seed
   wanted compiled inside the OS. */
#define N 60
static double average(const double *p, int end, int span) {
    double sum = 0;
    for (int i = end - span + 1; i <= end; i++) sum += p[i];
    return sum / span;
}

int main(int argc, char **argv) {
    double prices[N];
    unsigned seed = argc > 1 ? (unsigned)atoi(argv[1]) : 7;
    double price = 100.0;
    for (int i = 0; i < N; i++) {
        seed = seed * 1103515245u + 12345u;
        price += ((int)(seed >> 16) % 200 - 100) / 50.0;
        prices[i] = price;
    }
    int position = 0, trades = 0;
    double cash = 0;
    char log[256] = "";
    for (int i = 20; i < N; i++) {
        double fast = average(prices, i, 5), slow = average(prices, i, 20);
        int want = fast > slow ? 1 : -1;
        if (want != position) {
            cash -= (want - position) * prices[i];
            position = want;
            trades++;
            if (strlen(log) < 200) strcat(log, want > 0 ? "B" : "S");
        }
    }
    cash += position * prices[N - 1];
    printf("trades %d signals %s pnl %.4f last %.2f\n", trades, log, cash, prices[N - 1]);
    return 0;
}
"""
BROKEN = "int main(void) {\n    int x = 1;\n    return x + y;\n}\n"
SCRIPT = """local prices = {}
local p = 100
for i = 1, 30 do p = p + ((i * 37) % 11 - 5) / 4; prices[i] = p end
local function avg(t, a, b) local s = 0 for i = a, b do s = s + t[i] end return s / (b - a + 1) end
print(string.format("avg %.3f max %.2f", avg(prices, 1, 30), math.max(table.unpack(prices))))
local words = {}
for w in ("sell buy hold buy"):gmatch("%a+") do words[#words + 1] = w:upper() end
table.sort(words)
print(table.concat(words, ","), #prices, 7 // 2, 2^10, math.type(3))
"""


class Toolchain(NamedTuple):
    tk: BootedPc
    where: Path
    root: Path  # every toolchain .deb unpacked by dpkg-deb (the host's copy)


@pytest.fixture(scope="module")
def toolchain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Toolchain]:
    if not list(TOOLCHAIN.glob("tcc_*_i386.deb")):
        pytest.fail(f"no tcc i386 .deb in {TOOLCHAIN}: run setup.sh (it downloads them)")
    where = tmp_path_factory.mktemp("toolchain")
    root = where / "root"
    for deb in sorted(TOOLCHAIN.glob("*.deb")):
        subprocess.run([dpkg_deb(), "-x", str(deb), str(root)], check=True)
    disk = where / "disk.img"
    create_os_disk(disk, size_mb=64)
    installed = install_packages(disk, TOOLCHAIN, ["tcc", "lua5.4"], lambda line: None)
    assert {"tcc", "lua5.4", "libc6", "libreadline8"} <= set(installed)
    put_file(disk, root / "usr" / "include", "/usr/include")  # libc6-dev: see the docstring
    for name in START_FILES:
        put_file(disk, root / "usr/lib/i386-linux-gnu" / name, f"/usr/lib/i386-linux-gnu/{name}")
    with open_volume(disk) as fs:
        assert "tcc" in Database(fs).installed()
        fs.mkdir("/src")
        fs.write_file("/src/strategy.c", STRATEGY.encode())
        fs.write_file("/src/broken.c", BROKEN.encode())
        fs.write_file("/src/prices.lua", SCRIPT.encode())
    tk = BootedPc(where, disk=disk).boot()
    tk.output("cd /src")
    yield Toolchain(tk, where, root)
    close_pc(tk)


def _native(command: list[str], cwd: Path) -> list[str]:
    run = subprocess.run(command, cwd=cwd, env={}, capture_output=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stdout.decode().splitlines()


def test_tcc_compiles_a_strategy_that_runs_in_the_os(toolchain: Toolchain) -> None:
    tk, where = toolchain.tk, toolchain.where
    # by name: the shell looks in /usr/bin after /bin
    assert tk.output("tcc -v", 60 * SECOND) == ["tcc version 0.9.27 (i386 Linux)"]
    assert tk.output("compile strategy.c", 300 * SECOND) == []  # the shell's tcc front end
    inside = tk.output("./strategy 11", 60 * SECOND)
    source = where / "strategy.c"
    source.write_text(STRATEGY)
    built = subprocess.run([peer("gcc"), "-m32", "-O1", "-o", str(where / "strategy"),
                            str(source)], capture_output=True, text=True)  # fmt: skip
    assert built.returncode == 0, built.stderr
    expected = _native([str(where / "strategy"), "11"], where)
    assert expected[0].startswith("trades ")
    assert inside == expected


def test_tcc_reports_errors_with_file_and_line(toolchain: Toolchain) -> None:
    lines = toolchain.tk.output("compile broken.c -o broken", 60 * SECOND)
    assert lines == ["broken.c:3: error: 'y' undeclared"], lines
    assert toolchain.tk.output("compile broken", 5 * SECOND) == [
        "compile: give one C source file (FILE.c)", "usage: compile FILE.c [-o PROGRAM]"]


def test_lua_runs_a_script_as_on_the_host(toolchain: Toolchain) -> None:
    tk, where, root = toolchain
    inside = tk.output("/usr/bin/lua5.4 prices.lua", 60 * SECOND)
    (where / "prices.lua").write_text(SCRIPT)
    libraries = f"{root}/lib/i386-linux-gnu:{root}/usr/lib/i386-linux-gnu"
    expected = _native([str(root / "lib/ld-linux.so.2"), "--library-path", libraries,
                        str(root / "usr/bin/lua5.4"), "prices.lua"], where)  # fmt: skip
    assert len(expected) == 2 and expected[1].startswith("BUY,BUY,HOLD,SELL")
    assert inside == expected
