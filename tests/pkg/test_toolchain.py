"""A C compiler and an interpreter in the OS: Debian's i386 tcc and lua5.4, installed by the
package manager (kernel/pkg, Depends resolved: libc6, libgcc-s1, libreadline8...) from the
.debs setup.sh fetched into tests/pkg/debs/toolchain. Both are PIE programs run by Debian's
ld.so. tcc compiles a C program inside the OS and the program it makes runs there; its output
must equal the same source built by the host's gcc -m32 and run natively. lua5.4 runs a script
whose output must equal the same lua5.4 binary's run on the host (with its own ld.so and libs).

libc6-dev (tcc's headers and start files) is installed inside the OS by `pkg install libc6-dev`
from a repository on the disk holding the toolchain directory's .debs: its Depends pull in
linux-libc-dev, whose headers include names that differ only in case (xt_MARK.h and xt_mark.h),
which FAT holds as one; pkg keeps the first of each pair, says so in one line and records the
others as not stored. A program using headers from both packages then compiles with `compile`
and prints what the same source prints when the host's gcc -m32 builds it against the same
headers (taken from the same .debs)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.peers import peer
from tests.pkg.conftest import DEBS, dpkg_deb
from tests.system.harness import SECOND, BootedPc, close_pc
from tradekernel.disktool import create_os_disk, install_packages, open_volume
from tradekernel.kernel.pkg.database import Database
from tradekernel.kernel.pkg.params import DEFAULT_REPO
from tradekernel.repotool import add, put

TOOLCHAIN = DEBS / "toolchain"
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
# Compile-time facts from libc6-dev's and linux-libc-dev's headers, and libc at run time.
SYSTEM_HEADERS = r"""
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/if_ether.h>
#include <linux/netfilter/xt_mark.h>
#include <linux/version.h>

int main(void) {
    struct xt_mark_tginfo2 mark = {0};
    printf("linux %d glibc %d.%d\n", LINUX_VERSION_CODE, __GLIBC__, __GLIBC_MINOR__);
    printf("stat %zu sockaddr_in6 %zu tcp_info %zu mark %zu\n", sizeof(struct stat),
           sizeof(struct sockaddr_in6), sizeof(struct tcp_info), sizeof mark);
    printf("O_DIRECTORY %#o ETH_P_IPV6 %#x EHWPOISON %d PATH_MAX %d th_ack at %zu\n",
           O_DIRECTORY, ETH_P_IPV6, EHWPOISON, PATH_MAX, offsetof(struct tcphdr, th_ack));
    printf("%s\n", strerror(ENOENT));
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
    installed: list[str]  # what `pkg install libc6-dev` printed inside the OS


@pytest.fixture(scope="module")
def toolchain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Toolchain]:
    if not list(TOOLCHAIN.glob("linux-libc-dev_*_i386.deb")):
        pytest.fail(f"no linux-libc-dev i386 .deb in {TOOLCHAIN}: run setup.sh (it fetches it)")
    where = tmp_path_factory.mktemp("toolchain")
    root = where / "root"
    for deb in sorted(TOOLCHAIN.glob("*.deb")):
        subprocess.run([dpkg_deb(), "-x", str(deb), str(root)], check=True)
    disk = where / "disk.img"
    create_os_disk(disk, size_mb=128)
    installed = install_packages(disk, TOOLCHAIN, ["tcc", "lua5.4"], lambda line: None)
    assert {"tcc", "lua5.4", "libc6", "libreadline8"} <= set(installed)
    add(where / "repo", sorted(TOOLCHAIN.glob("*.deb")))
    put(disk, where / "repo", DEFAULT_REPO)
    with open_volume(disk) as fs:
        assert "tcc" in Database(fs).installed()
        fs.mkdir("/src")
        fs.write_file("/src/strategy.c", STRATEGY.encode())
        fs.write_file("/src/headers.c", SYSTEM_HEADERS.encode())
        fs.write_file("/src/broken.c", BROKEN.encode())
        fs.write_file("/src/prices.lua", SCRIPT.encode())
    tk = BootedPc(where, disk=disk).boot()
    said = tk.output("pkg install libc6-dev", 900 * SECOND)
    tk.output("cd /src")
    yield Toolchain(tk, where, root, said)
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
    tk, where, root, _ = toolchain
    inside = tk.output("/usr/bin/lua5.4 prices.lua", 60 * SECOND)
    (where / "prices.lua").write_text(SCRIPT)
    libraries = f"{root}/lib/i386-linux-gnu:{root}/usr/lib/i386-linux-gnu"
    expected = _native([str(root / "lib/ld-linux.so.2"), "--library-path", libraries,
                        str(root / "usr/bin/lua5.4"), "prices.lua"], where)  # fmt: skip
    assert len(expected) == 2 and expected[1].startswith("BUY,BUY,HOLD,SELL")
    assert inside == expected


def _case_twins(deb: Path) -> set[frozenset[str]]:
    """The pairs of paths in `deb` that differ only in case."""
    listing = subprocess.run([dpkg_deb(), "--fsys-tarfile", str(deb)], capture_output=True,
                             check=True).stdout  # fmt: skip
    names = subprocess.run(["tar", "-t"], input=listing, capture_output=True, check=True)
    first: dict[str, str] = {}
    twins = set()
    for name in names.stdout.decode().splitlines():
        path = "/" + name.removeprefix("./").rstrip("/")
        kept = first.setdefault(path.casefold(), path)
        if kept != path:
            twins.add(frozenset((kept, path)))
    return twins


def test_pkg_installs_libc6_dev_keeping_one_of_each_case_twin(toolchain: Toolchain) -> None:
    said = toolchain.installed
    assert said[-1].startswith("installed libc6-dev 2.36"), said
    assert any(line.startswith("installed linux-libc-dev ") for line in said)
    (deb,) = TOOLCHAIN.glob("linux-libc-dev_*_i386.deb")
    twins = _case_twins(deb)
    assert len(twins) >= 8  # xt_MARK.h/xt_mark.h, ipt_ECN.h/ipt_ecn.h... (Debian 12: 8)
    assert [line for line in said if "case" in line] == [
        f"linux-libc-dev: {len(twins)} files differ from another only in case, which FAT cannot"
        " hold apart: one of each is kept, the others are listed as not stored in"
        " /var/lib/pkg/info/linux-libc-dev.list"
    ]
    listed = toolchain.tk.output("pkg files linux-libc-dev", 60 * SECOND)
    found = re.compile(r"(/\S+) \(not stored: FAT holds (/\S+) in its place\)")
    pairs = {m.group(1): m.group(2) for m in map(found.fullmatch, listed) if m}
    assert {frozenset(pair) for pair in pairs.items()} == twins
    # xt_MARK.h only includes xt_mark.h: the one with the declarations is kept (and compiled
    # by the next test)
    assert pairs["/usr/include/linux/netfilter/xt_MARK.h"].endswith("/xt_mark.h")


def test_compile_uses_the_installed_system_headers(toolchain: Toolchain) -> None:
    tk, where, root, _ = toolchain
    assert tk.output("compile headers.c", 300 * SECOND) == []
    inside = tk.output("./headers", 60 * SECOND)
    source = where / "headers.c"
    source.write_text(SYSTEM_HEADERS)
    gcc = peer("gcc")
    builtin = subprocess.run([gcc, "-m32", "-print-file-name=include"], capture_output=True,
                             text=True, check=True).stdout.strip()  # fmt: skip
    built = subprocess.run(
        [gcc, "-m32", "-nostdinc", "-isystem", builtin,
         "-isystem", str(root / "usr/include/i386-linux-gnu"),
         "-isystem", str(root / "usr/include"), "-o", str(where / "headers"), str(source)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    expected = _native([str(where / "headers")], where)
    assert expected[0].startswith("linux 39") and expected[-1] == "No such file or directory"
    assert inside == expected
