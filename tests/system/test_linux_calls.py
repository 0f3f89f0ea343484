"""System calls and tty job control that Linux programs use, checked against the host's Linux
running the same i386 binary where the host can: mremap, sendfile/sendfile64, setpgid, clone
with tid pointers that cannot be written, madvise's range checks (a static glibc program the
host's gcc builds); and busybox sh's job control on the OS's tty (TIOCGPGRP/TIOCSPGRP,
setpgid), which the host cannot run without a terminal, checked for what an interactive ash
shows: no "job control turned off", `jobs`, Ctrl-Z, `fg`, Ctrl-C reaching only the job."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.system.harness import SECOND, BootedPc, close_pc
from tests.system.test_linux import (
    DYNAMIC_LIBRARIES,
    _busybox_binary,
    _host,
    _probe_binary,
    _type_and_wait,
)
from tests.system.test_signals import ctrl
from tradekernel.disktool import create_os_disk, open_volume

NOTES = b"the quick brown fox\njumps over\nthe lazy dog\n"
CALLS_SOURCE = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void show(const char *what, long result) {
    if (result < 0) printf("%s: -1 %s\n", what, strerrorname_np(errno));
    else printf("%s: %ld\n", what, result);
}

static long same(void *a, void *b) { return a == b; }

int main(void) {
    setvbuf(stdout, 0, _IONBF, 0);
    /* mremap: grow in place, shrink, move keeping the data, refusals */
    char *a = mmap(0, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(a + 4096, 3 * 4096);  /* room to grow, ours to map again */
    strcpy(a, "kept across mremap");
    char *b = mremap(a, 4096, 2 * 4096, 0);
    show("mremap grow in place, same address", b == MAP_FAILED ? -1 : same(a, b));
    b[8191] = 7;
    char *block = mmap(b + 2 * 4096, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                       -1, 0);
    show("mremap grow blocked", (long)mremap(b, 2 * 4096, 3 * 4096, 0));
    char *c = mremap(b, 2 * 4096, 8 * 4096, MREMAP_MAYMOVE);
    show("mremap may move: moved", c == MAP_FAILED ? -1 : !same(b, c));
    printf("moved data: %s %d %d\n", c, c[8191], c[8 * 4096 - 1]);
    c[8 * 4096 - 1] = 1;
    show("mremap shrink", (long)mremap(c, 8 * 4096, 4096, 0) == (long)c);
    show("mremap bad flags", (long)mremap(c, 4096, 4096, 0x80));
    show("mremap fixed without maymove", (long)mremap(c, 4096, 4096, MREMAP_FIXED, block));
    show("mremap unaligned", (long)mremap(c + 1, 4096, 4096, 0));
    show("mremap new size 0", (long)mremap(c, 4096, 0, 0));
    show("mremap unmapped", (long)mremap((void *)0x10000, 4096, 8192, MREMAP_MAYMOVE));
    char *d = mremap(c, 4096, 4096, MREMAP_MAYMOVE | MREMAP_FIXED, block);
    show("mremap fixed onto a mapping", d == MAP_FAILED ? -1 : same(d, block));
    printf("fixed data: %s\n", d);
    d[0] = 'K';  /* writable still */
    /* copy-on-write pages moved in a child leave the parent's alone */
    pid_t kid = fork();
    if (kid == 0) {
        char *e = mremap(d, 4096, 3 * 4096, MREMAP_MAYMOVE);
        e[0] = 'C';
        _exit(e[1] == 'e' ? 3 : 4);
    }
    int status;
    waitpid(kid, &status, 0);
    printf("child moved cow page: exit %d, parent sees %c%c\n", WEXITSTATUS(status), d[0], d[1]);

    /* sendfile and sendfile64 */
    int in = open("notes.txt", O_RDONLY), p[2];
    pipe(p);
    off_t off = 4;
    long long off64 = 10;
    char buf[100] = {0};
    show("sendfile 32-bit offset", syscall(SYS_sendfile, p[1], in, &off, 5));
    printf("offset now %ld, position %ld\n", (long)off, (long)lseek(in, 0, SEEK_CUR));
    show("sendfile64 offset", syscall(SYS_sendfile64, p[1], in, &off64, 9));
    printf("offset64 now %lld\n", off64);
    show("sendfile64 no offset", syscall(SYS_sendfile64, p[1], in, 0, 3));
    printf("position %ld\n", (long)lseek(in, 0, SEEK_CUR));
    show("read pipe", read(p[0], buf, sizeof buf));
    printf("piped: [%s]\n", buf);
    fflush(stdout);
    show("sendfile64 to stdout", syscall(SYS_sendfile64, 1, in, 0, 1000));
    show("sendfile64 at end", syscall(SYS_sendfile64, 1, in, 0, 1000));
    show("sendfile64 bad in fd", syscall(SYS_sendfile64, 1, 99, 0, 10));
    show("sendfile64 bad out fd", syscall(SYS_sendfile64, 99, in, &off64, 10));
    show("sendfile64 from a pipe with offset", syscall(SYS_sendfile64, 1, p[0], &off64, 10));
    show("sendfile64 bad offset pointer", syscall(SYS_sendfile64, p[1], in, (void *)16, 10));
    off64 = -1;
    show("sendfile64 negative offset", syscall(SYS_sendfile64, p[1], in, &off64, 10));
    int wr = open("notes.txt", O_WRONLY);
    show("sendfile64 from a write-only file", syscall(SYS_sendfile64, p[1], wr, 0, 10));
    int q[2];
    static char chunk[4096];
    pipe2(q, O_NONBLOCK);
    while (write(q[1], chunk, sizeof chunk) > 0) {}
    while (write(q[1], chunk, 1) == 1) {}
    lseek(in, 2, SEEK_SET);
    show("sendfile64 to a full nonblocking pipe", syscall(SYS_sendfile64, q[1], in, 0, 10));
    printf("position after refused sendfile %ld\n", (long)lseek(in, 0, SEEK_CUR));
    off64 = 3;
    show("sendfile64 offset to a full pipe", syscall(SYS_sendfile64, q[1], in, &off64, 10));
    printf("offset after refused sendfile %lld\n", off64);

    /* setpgid */
    pid_t me = getpid();
    show("setpgid self own group", setpgid(0, 0));
    show("getpgrp is pid", getpgrp() == me);
    show("setpgid negative", setpgid(0, -5));
    show("setpgid missing group", setpgid(0, 0x7ffffff0));
    show("setpgid no such process", setpgid(0x7ffff000, 0));
    int sync[2];
    pipe(sync);
    kid = fork();
    if (kid == 0) { char x; read(sync[0], &x, 1); _exit(getpgrp() == getpid() ? 5 : 6); }
    show("setpgid child own group", setpgid(kid, kid));
    show("child group", getpgid(kid) == kid);
    show("setpgid child back", setpgid(kid, me));
    show("child group back", getpgid(kid) == me);
    show("setpgid child to its own again", setpgid(kid, 0));
    write(sync[1], "x", 1);
    waitpid(kid, &status, 0);
    printf("child saw own group: exit %d\n", WEXITSTATUS(status));

    /* clone with a tid pointer that cannot be written: the child still runs */
    kid = syscall(SYS_clone, SIGCHLD | CLONE_PARENT_SETTID, 0, (void *)16, 0, 0);
    if (kid == 0) _exit(9);
    show("clone bad parent_tid made a child", kid > 0);
    show("waited", waitpid(kid, &status, 0) == kid);
    printf("clone child exit %d\n", WEXITSTATUS(status));
    kid = syscall(SYS_clone, SIGCHLD | CLONE_CHILD_SETTID, 0, 0, 0, (void *)16);
    if (kid == 0) _exit(8);
    waitpid(kid, &status, 0);
    printf("clone bad child_tid: child exit %d\n", WEXITSTATUS(status));

    /* madvise */
    char *m = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    show("madvise wrapping past 4 GiB", madvise(m, 0xfffff000u, MADV_NORMAL));
    show("madvise unaligned", madvise(m + 1, 4096, MADV_NORMAL));
    show("madvise length 0", madvise(m, 0, MADV_NORMAL));
    show("madvise unmapped", madvise((void *)0x10000, 4096, MADV_NORMAL));
    show("madvise dontneed below the program", madvise((void *)0x100000, 1 << 20, MADV_DONTNEED));
    m[5] = 1;
    show("madvise dontneed", madvise(m, 4096, MADV_DONTNEED));
    printf("after dontneed %d\n", m[5]);
    return 0;
}
"""
# A position-independent program (ET_DYN with PT_INTERP, what Debian's gcc makes by default):
# loaded at PIE_BASE, relocated by ld.so; offsets inside it are the same wherever it loads.
PIE_SOURCE = r"""
#include <stdio.h>
static int data = 5;
static __thread int tls = 9;
int main(int argc, char **argv) {
    printf("pie data %d tls %d offset %ld %s\n", data, tls,
           (long)((char *)&data - (char *)main), argc > 1 ? argv[1] : "-");
    return 0;
}
"""
# The one line where the host differs from an i386 Linux: its 64-bit kernel sees an i386
# range past 4 GiB as beyond the address space (ENOMEM); a 32-bit kernel's `end < start`
# check (mm/madvise.c) makes it EINVAL, which is what the OS answers.
WRAP_LINE = "madvise wrapping past 4 GiB"


class Booted(NamedTuple):
    tk: BootedPc
    where: Path


@pytest.fixture(scope="module")
def booted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Booted]:
    where = tmp_path_factory.mktemp("calls")
    busybox = _busybox_binary(where)
    calls = _probe_binary(where, "newcalls", CALLS_SOURCE)
    (where / "t").mkdir()
    (where / "t" / "notes.txt").write_bytes(NOTES)
    disk = where / "disk.img"
    create_os_disk(disk)
    with open_volume(disk) as fs:
        fs.write_file("/bin/busybox", busybox.read_bytes())
        fs.write_file("/bin/newcalls", calls.read_bytes())
        pie = _probe_binary(where, "pieprobe", PIE_SOURCE, "-pie", "-fPIE")
        fs.write_file("/bin/pieprobe", pie.read_bytes())
        fs.mkdir("/lib")
        for library in DYNAMIC_LIBRARIES:
            fs.write_file(f"/lib/{library.name}", library.read_bytes())
        fs.mkdir("/t")
        fs.write_file("/t/notes.txt", NOTES)
    tk = BootedPc(where, disk=disk).boot()
    tk.output("cd /t")
    yield Booted(tk, where)
    close_pc(tk)


def test_new_calls_match_the_host(booted: Booted) -> None:
    tk, where = booted
    inside = tk.output("newcalls", 60 * SECOND)
    expected = _host(where / "newcalls", [], where / "t")
    assert len(expected) == 58 and "after dontneed 0" in expected
    wrap = [n for n, line in enumerate(expected) if line.startswith(WRAP_LINE)]
    assert [expected[n] for n in wrap] == [f"{WRAP_LINE}: -1 ENOMEM"]  # the host's kernel
    assert inside[wrap[0]] == f"{WRAP_LINE}: -1 EINVAL"
    del inside[wrap[0]], expected[wrap[0]]
    assert inside == expected


def test_a_pie_program_runs_relocated_by_ld_so(booted: Booted) -> None:
    tk, where = booted
    inside = tk.output("pieprobe four", 60 * SECOND)
    expected = _host(where / "pieprobe", ["four"], where / "t")
    assert expected[0].startswith("pie data 5 tls 9 offset ")
    assert inside == expected


def test_root_has_a_name_from_etc_passwd_and_group(booted: Booted) -> None:
    """create_os_disk writes /etc/passwd and /etc/group with root: names as on the host."""
    tk, where = booted
    script = 'whoami; id; id -un; id -gn; stat -c "%U %G" notes.txt'
    inside = tk.output(f"busybox sh -c {shlex.quote(script)}", 60 * SECOND)
    expected = _host(where / "busybox-root" / "bin" / "busybox", ["sh", "-c", script], where / "t")
    assert expected == ["root", "uid=0(root) gid=0(root)", "root", "root", "root root"]
    assert inside == expected


def test_busybox_sh_job_control_on_the_tty(booted: Booted) -> None:
    tk = booted.tk
    _type_and_wait(tk, "busybox sh\n", "/t # ")
    assert "job control turned off" not in tk.text()
    _type_and_wait(tk, "sleep 30 &\n", "/t # ")
    _type_and_wait(tk, "jobs\n", "/t # ")
    assert re.search(r"\[1\]\+ +Running +sleep 30", tk.text()), tk.text()
    _type_and_wait(tk, "busybox cat\n", "busybox cat\r\n")
    _type_and_wait(tk, "typed to cat\n", "typed to cat\r\ntyped to cat")
    ctrl(tk, "z")  # stops cat alone: the shell gets the terminal back
    tk.run_until(lambda: b"Stopped" in tk.serial, 10 * SECOND)
    _type_and_wait(tk, "jobs\n", "/t # ")
    assert re.search(r"\[2\]\+ +Stopped +busybox cat", tk.text()), tk.text()
    _type_and_wait(tk, "fg %2\n", "busybox cat")
    _type_and_wait(tk, "again\n", "again\r\nagain")
    ctrl(tk, "c")  # SIGINT for cat's group, not for the shell
    _type_and_wait(tk, "echo shell alive $?\n", "shell alive 130")
    _type_and_wait(tk, "kill %1; wait; jobs; echo done\n", "done\r\n")
    _type_and_wait(tk, "exit\n", "tk:/t> ")
    assert len(tk.output("ps")) == 2  # the header and the kernel: nothing left behind
