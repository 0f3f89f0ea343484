"""Real Linux i386 programs in the OS, checked against the host's Linux running the same binary.

Debian's busybox-static (tests/pkg/debs, fetched by setup.sh) and a static glibc program the
host's gcc builds (`gcc -m32 -static`) go on the disk unchanged. Each scenario runs a script
with busybox's own sh inside the OS and the same i386 binary natively on the host (an x86-64
Linux runs i386 programs), in a directory holding the same input files, and the two outputs
must be equal line for line. The host side runs with an empty environment (busybox's sh finds
its applets itself, as in the OS, where PATH is /bin)."""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.peers import peer
from tests.pkg.conftest import busybox_deb, dpkg_deb
from tests.system.harness import SECOND, BootedPc, close_pc
from tradekernel.disktool import create_os_disk, open_volume

WORK = "/t"  # the directory the scripts run in, in the OS and (as a copy) on the host
INPUTS = {
    "words.txt": b"pear\napple\nfig\napple\nbanana\ncherry\nfig\n",
    "table.csv": b"id,name,qty\n1,bolt,40\n2,nut,15\n3,washer,7\n",
    "notes.txt": b"the quick brown fox\njumps over\nthe lazy dog\n",
}
PROBE_SOURCE = r"""
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

static __thread int counter = 41;  /* TLS: %gs through set_thread_area */

int main(int argc, char **argv) {
    counter++;
    printf("tls %d argc %d %s\n", counter, argc, argc > 1 ? argv[1] : "-");
    char *heap = malloc(1 << 20);  /* brk or mmap2 */
    memset(heap, 7, 1 << 20);
    printf("heap %d\n", heap[12345]);
    free(heap);
    int fds[2];
    if (pipe2(fds, O_NONBLOCK) != 0) return 1;
    char byte;
    printf("empty nonblocking pipe: %d %s\n", (int)read(fds[0], &byte, 1), strerror(errno));
    printf("F_GETFL nonblock %d\n", (fcntl(fds[0], F_GETFL) & O_NONBLOCK) != 0);
    pid_t child = fork();
    if (child == 0) { write(fds[1], "k", 1); _exit(7); }
    int status = 0;
    waitpid(child, &status, 0);
    printf("child exit %d, pipe got %d\n", WEXITSTATUS(status), (int)read(fds[0], &byte, 1));
    FILE *f = fopen("words.txt", "r");
    char line[64];
    int lines = 0;
    while (f && fgets(line, sizeof line, f)) lines++;
    printf("lines %d\n", lines);
    struct stat st;
    printf("stat %d size %lld\n", stat("words.txt", &st), (long long)st.st_size);
    unsigned char random[8];
    int urandom = open("/dev/urandom", O_RDONLY);
    printf("urandom %d\n", (int)read(urandom, random, sizeof random));
    int words = open("words.txt", O_RDONLY);
    char *mapped = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, words, 0);
    printf("mapped file starts %.4s\n", mapped == MAP_FAILED ? "FAIL" : mapped);
    char cwd[64];
    printf("cwd ends %s\n", strrchr(getcwd(cwd, sizeof cwd), '/'));
    return 3;
}
"""


# Two programs whose thread pointers differ (PAD moves the brk heap, where static glibc puts the
# TLS block), yielding to each other: sched_yield switches in the trap (proc/trap.py), which
# must load each one's own TLS descriptor although both use the same selector.
TLS_YIELD_SOURCE = r"""
#include <sched.h>
#include <stdio.h>
#include <unistd.h>

static char pad[PAD];
static __thread volatile int tag;

int main(void) {
    int wrong = 0;
    tag = getpid();
    for (int i = 0; i < 3000; i++) {
        sched_yield();
        if (tag != getpid()) wrong++;
    }
    fprintf(stderr, "tls%d wrong %d %p\n", PAD > 1, wrong, (void *)pad);
    return wrong != 0;
}
"""
# Bad arguments to the calls glibc programs use: the same errno as the host's Linux, and the
# machine goes on.
BAD_CALLS_SOURCE = r"""
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void show(const char *what, long result) {
    printf("%s: %ld %s\n", what, result, result < 0 ? strerror(errno) : "");
    errno = 0;
}

int main(void) {
    unsigned desc[4] = {99, 0, 0xfffff, 0x51};
    int word = 5, fds[2];
    struct timespec ms = {0, 1000000}, bad = {0, 2000000000};
    char buf[64];
    show("set_thread_area NULL", syscall(SYS_set_thread_area, (void *)0));
    show("set_thread_area entry 99", syscall(SYS_set_thread_area, desc));
    desc[0] = 99;
    show("get_thread_area entry 99", syscall(SYS_get_thread_area, desc));
    show("futex bad address", syscall(SYS_futex, (void *)16, 0, 0, 0, 0, 0));
    show("futex value changed", syscall(SYS_futex, &word, 0, 6, 0, 0, 0));
    show("futex timeout", syscall(SYS_futex, &word, 0, 5, &ms, 0, 0));
    show("futex bad timeout", syscall(SYS_futex, &word, 0, 5, &bad, 0, 0));
    show("futex wake nobody", syscall(SYS_futex, &word, 1, 10, 0, 0, 0));
    show("futex unaligned", syscall(SYS_futex, (char *)&word + 1, 1, 1, 0, 0, 0));
    show("fcntl closed fd", syscall(SYS_fcntl64, 99, F_GETFL));
    show("fcntl bad command", syscall(SYS_fcntl64, 1, 9999));
    show("fcntl F_DUPFD past the table", syscall(SYS_fcntl64, 1, F_DUPFD, 100000));
    show("dup3 same fd", syscall(SYS_dup3, 1, 1, 0));
    show("dup3 bad flags", syscall(SYS_dup3, 1, 5, 1));
    show("pipe2 bad flags", syscall(SYS_pipe2, fds, 1));
    show("pipe2 bad pointer", syscall(SYS_pipe2, (void *)16, 0));
    show("getrandom bad pointer", syscall(SYS_getrandom, (void *)16, 10, 0));
    show("getrandom bad flags", syscall(SYS_getrandom, buf, 10, 0x100));
    show("clock_nanosleep bad clock", syscall(SYS_clock_nanosleep, 99, 0, &ms, 0));
    show("clock_nanosleep bad time", syscall(SYS_clock_nanosleep, 1, 0, &bad, 0));
    show("readlink size 0", syscall(SYS_readlink, "/proc/self/exe", buf, 0));
    show("readlink not a link", syscall(SYS_readlink, "words.txt", buf, sizeof buf));
    show("readlink missing", syscall(SYS_readlink, "nope", buf, sizeof buf));
    show("openat bad dirfd", syscall(SYS_openat, 99, "words.txt", O_RDONLY));
    show("openat file as dirfd", syscall(SYS_openat, 0, "x", O_RDONLY));
    show("fstatat64 bad pointer", syscall(SYS_fstatat64, AT_FDCWD, "words.txt", (void *)16, 0));
    show("_llseek bad whence", syscall(SYS__llseek, open("words.txt", O_RDONLY), 0, 0, buf, 9));
    show("prlimit64 bad resource", syscall(SYS_prlimit64, 0, 999, 0, buf));
    show("sysinfo bad pointer", syscall(SYS_sysinfo, (void *)16));
    return 0;
}
"""
# Four threads (clone with CLONE_THREAD, TLS through CLONE_SETTLS, futex locks and a condition
# variable, join through CLONE_CHILD_CLEARTID).
THREADS_SOURCE = r"""
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;
static long counter = 0;
static int finished = 0;
static __thread int mine = 0;

static void *work(void *arg) {
    long id = (long)arg;
    mine = (int)id * 100;
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
        if (i % 50 == 0) sched_yield();
    }
    pthread_mutex_lock(&lock);
    finished++;
    pthread_cond_signal(&done_cond);
    pthread_mutex_unlock(&lock);
    return (void *)(long)(mine + (getpid() > 0));
}

int main(void) {
    pthread_t threads[4];
    mine = 7;
    for (long i = 0; i < 4; i++) pthread_create(&threads[i], NULL, work, (void *)(i + 1));
    pthread_mutex_lock(&lock);
    while (finished < 4) pthread_cond_wait(&done_cond, &lock);
    pthread_mutex_unlock(&lock);
    long sum = 0;
    for (int i = 0; i < 4; i++) {
        void *result;
        pthread_join(threads[i], &result);
        sum += (long)result;
    }
    printf("counter %ld sum %ld main tls %d\n", counter, sum, mine);
    return 0;
}
"""
THREAD_CRASH_SOURCE = r"""
#include <pthread.h>
#include <stdio.h>

static void *crash(void *arg) { return (void *)(long)*(volatile int *)arg; }

int main(void) {
    pthread_t thread;
    pthread_create(&thread, NULL, crash, NULL);  /* reads address 0 */
    pthread_join(thread, NULL);
    printf("not reached\n");
    return 0;
}
"""
# Debian's i386 dynamic linker and C library, as gcc-multilib installs them (libc6-i386).
DYNAMIC_LIBRARIES = (Path("/lib32/ld-linux.so.2"), Path("/usr/lib32/libc.so.6"))
TTY_PROBE_SOURCE = r"""
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <unistd.h>

int main(void) {
    struct pollfd in = {0, POLLIN, 0};
    printf("first poll %d\n", poll(&in, 1, 0));  /* nothing typed: not readable */
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    char none;
    printf("nonblocking read %d\n", (int)read(0, &none, 1));  /* -1, EAGAIN */
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) & ~O_NONBLOCK);
    printf("polling\n");
    fflush(stdout);
    int ready = poll(&in, 1, 20000);
    char line[32] = {0};
    read(0, line, sizeof line - 1);
    printf("ready %d revents %d line %s", ready, in.revents, line);
    return 0;
}
"""


def _busybox_binary(where: Path) -> Path:
    """bin/busybox out of the .deb (dpkg-deb, the real peer)."""
    target = where / "busybox-root"
    subprocess.run([dpkg_deb(), "-x", str(busybox_deb()), str(target)], check=True)
    return target / "bin" / "busybox"


def _probe_binary(where: Path, name: str = "probe", text: str = PROBE_SOURCE,
                  link: str = "-static", *more: str) -> Path:  # fmt: skip
    source = where / f"{name}.c"
    source.write_text(text)
    binary = where / name
    command = [peer("gcc"), "-m32", link, *more, "-O1", "-o", str(binary), str(source)]
    built = subprocess.run(command, capture_output=True, text=True)
    assert built.returncode == 0, f"gcc -m32 -static failed (gcc-multilib?):\n{built.stderr}"
    return binary


class Linux(NamedTuple):
    """The booted OS and the host's copies of what is on its disk."""

    tk: BootedPc
    busybox: Path
    probe: Path
    dynamic: Path
    host: Path  # the host directory holding the inputs (the OS has them in WORK)


@pytest.fixture(scope="module")
def linux(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Linux]:
    where = tmp_path_factory.mktemp("linux")
    busybox, probe = _busybox_binary(where), _probe_binary(where)
    dynamic = _probe_binary(where, "dynprobe", PROBE_SOURCE, "-no-pie")
    host = where / WORK.strip("/")  # the same directory name: the probe prints it
    host.mkdir()
    for name, data in INPUTS.items():
        (host / name).write_bytes(data)
    disk = where / "disk.img"
    create_os_disk(disk)
    with open_volume(disk) as fs:
        fs.write_file("/bin/busybox", busybox.read_bytes())
        fs.write_file("/bin/probe", probe.read_bytes())
        fs.write_file("/bin/ttyprobe", _probe_binary(where, "ttyprobe", TTY_PROBE_SOURCE)
                      .read_bytes())  # fmt: skip
        fs.write_file("/bin/dynprobe", dynamic.read_bytes())  # its libraries in /lib
        fs.write_file("/bin/threads", _probe_binary(where, "threads", THREADS_SOURCE, "-static",
                                                    "-pthread").read_bytes())  # fmt: skip
        fs.write_file("/bin/tcrash", _probe_binary(where, "tcrash", THREAD_CRASH_SOURCE,
                                                   "-static", "-pthread").read_bytes())  # fmt: skip
        fs.write_file("/bin/badcalls", _probe_binary(where, "badcalls", BAD_CALLS_SOURCE)
                      .read_bytes())  # fmt: skip
        for pad in (1, 300000):
            binary = _probe_binary(where, f"tls{pad}", TLS_YIELD_SOURCE.replace("PAD", str(pad)))
            fs.write_file(f"/bin/tls{pad > 1:d}", binary.read_bytes())
        fs.mkdir("/lib")
        for library in DYNAMIC_LIBRARIES:
            fs.write_file(f"/lib/{library.name}", library.read_bytes())
        fs.mkdir(WORK)
        for name, data in INPUTS.items():
            fs.write_file(f"{WORK}/{name}", data)
    tk = BootedPc(where, disk=disk).boot()
    tk.output(f"cd {WORK}")
    yield Linux(tk, busybox, probe, dynamic, host)
    close_pc(tk)


def _host(program: Path, args: list[str], cwd: Path) -> list[str]:
    run = subprocess.run([str(program), *args], cwd=cwd, env={}, capture_output=True,
                         timeout=60)  # fmt: skip
    return (run.stdout + run.stderr).decode().splitlines()


SCRIPTS = [
    "echo hello world; printf '%s-%d\\n' abc 42",
    "cat words.txt | sort | uniq -c",
    "sort -r words.txt | head -3; tail -2 words.txt",
    "wc -l words.txt; wc -w notes.txt; wc -c table.csv",
    "sha256sum words.txt notes.txt; md5sum table.csv",
    "cut -d, -f2 table.csv | tr a-z A-Z",
    "grep -n the notes.txt; grep -c apple words.txt",
    "sed -e s/fig/FIG/g words.txt | awk '{ print NR, length($0) }'",
    "awk -F, 'NR > 1 { total += $3 } END { print total }' table.csv",
    "seq 1 5 | xargs echo; expr 6 \\* 7",
    "for w in one two three; do echo $w; done > out.txt; cat out.txt; rm out.txt",
    "ls -1; ls words.txt notes.txt | cat",
    "gzip -c words.txt | gunzip -c | sha256sum",
    "head -c 20 notes.txt | od -c",
    "test -f words.txt && echo file; test -d . && echo dir; test -e nope || echo missing",
    "mkdir sub; echo x > sub/f; ls sub; cp sub/f sub/g; mv sub/g sub/h; ls -1 sub; rm -r sub",
    "find . -name '*.txt' | sort",
    "echo $((3 + 4)); false || echo failed $?",
    "cmp words.txt notes.txt; echo $?",
    "tar cf x.tar words.txt notes.txt; tar tf x.tar; tar xOf x.tar words.txt | wc -l; rm x.tar",
    "dd if=words.txt bs=5 count=2 2>/dev/null | od -c",
    "sleep 0.1; echo slept",
    "date -u -d @86400 +%Y-%m-%d",
    "seq 3 | while read n; do echo line $n; done",
    "cat < words.txt | head -2 >> app.txt; cat app.txt app.txt | wc -l; rm app.txt",
    "echo hi | tee t1.txt; cat t1.txt; rm t1.txt",
    "basename /a/b/c.txt .txt; dirname /a/b/c.txt; expr length hello",
]


@pytest.mark.parametrize("script", SCRIPTS)
def test_busybox_sh_script_matches_the_host(linux: Linux, script: str) -> None:
    tk, busybox, host = linux.tk, linux.busybox, linux.host
    inside = tk.output(f"busybox sh -c {shlex.quote(script)}", 60 * SECOND)
    assert inside == _host(busybox, ["sh", "-c", script], host), script


def test_static_glibc_program_matches_the_host(linux: Linux) -> None:
    tk, probe, host = linux.tk, linux.probe, linux.host
    inside = tk.output("probe one", 60 * SECOND)
    expected = _host(probe, ["one"], host)
    assert "tls 42 argc 2 one" in expected
    assert inside == expected


def test_two_programs_with_their_own_tls_in_one_pipeline(linux: Linux) -> None:
    """The probe and busybox have their thread pointers at different addresses: each one's
    GDT descriptor is loaded whenever it runs (a wrong one would crash the other)."""
    tk, busybox, probe, host = linux.tk, linux.busybox, linux.probe, linux.host
    inside = tk.output("probe two | busybox sha256sum", 60 * SECOND)
    probe_output = subprocess.run([str(probe), "two"], cwd=host, env={}, capture_output=True,
                                  timeout=60).stdout  # fmt: skip
    summed = subprocess.run([str(busybox), "sha256sum"], input=probe_output, env={},
                            capture_output=True, timeout=60)  # fmt: skip
    assert inside == summed.stdout.decode().splitlines()
    assert probe_output.startswith(b"tls 42 argc 2 two\n")


def test_unknown_calls_are_enosys_and_logged_once(linux: Linux) -> None:
    """glibc tries calls this kernel lacks (rseq, statx, set_robust_list...): each gets
    ENOSYS, glibc falls back, and the log names each number once."""
    tk = linux.tk
    tk.output("busybox ls -1", 60 * SECOND)
    tk.output("busybox ls -1", 60 * SECOND)
    numbers = [line.split("no system call ")[1] for line in tk.log if "no system call" in line]
    assert numbers, "glibc's optional calls were not reported"
    assert len(numbers) == len(set(numbers)), numbers


def _type_and_wait(tk: BootedPc, text: str, expected: str) -> None:
    start = len(tk.serial)
    tk.type(text)
    tk.run_until(lambda: expected.encode() in tk.serial[start:], 60 * SECOND)


def test_poll_of_the_terminal_waits_for_a_line(linux: Linux) -> None:
    """poll on the tty is not readable until a line is typed, then is."""
    tk = linux.tk
    _type_and_wait(tk, "ttyprobe\n", "polling")
    assert "first poll 0" in tk.text()
    assert "nonblocking read -1" in tk.text()
    tk.output("abc")
    assert "ready 1 revents 1 line abc" in tk.text()


def test_interactive_busybox_sh_edits_lines_itself(linux: Linux) -> None:
    """busybox's ash switches the terminal to non-canonical mode (TCSETS) and does its own
    line editing: every key arrives at once, Backspace as DEL, echoed by ash alone."""
    tk = linux.tk
    _type_and_wait(tk, "busybox sh\n", "built-in shell (ash)")
    _type_and_wait(tk, "echo one twoo\b\b x | wc -c\n", "# ")
    _type_and_wait(tk, "exit\n", "tk:/t> ")
    lines = tk.lines()  # the screen: ash's own echo and erasing (Backspace, ESC[J) drawn
    assert "/t # echo one tw x | wc -c" in lines, lines
    assert lines[lines.index("/t # echo one tw x | wc -c") + 1] == "9"
    assert "/t # exit" in lines


def test_dynamically_linked_program_runs_with_debians_ld_so(linux: Linux) -> None:
    """PT_INTERP: the kernel loads /lib/ld-linux.so.2 beside the program and starts it with
    the auxiliary vector; it maps libc.so.6 from the disk (private file mappings) and runs
    the program, whose output matches the host's run of the same binary."""
    tk, host = linux.tk, linux.host
    inside = tk.output("dynprobe three", 60 * SECOND)
    expected = _host(linux.dynamic, ["three"], host)
    assert "tls 42 argc 2 three" in expected
    assert inside == expected


def test_missing_interpreter_is_one_line(linux: Linux) -> None:
    tk = linux.tk
    tk.output("mv /lib/ld-linux.so.2 /lib/ld.moved")
    try:
        lines = tk.output("dynprobe")
    finally:
        tk.output("mv /lib/ld.moved /lib/ld-linux.so.2")
    assert len(lines) == 1 and "interpreter /lib/ld-linux.so.2" in lines[0], lines


def test_proc_answers_what_busybox_reads(linux: Linux) -> None:
    tk = linux.tk
    assert tk.output("busybox readlink /proc/self/exe") == ["/bin/busybox"]
    assert tk.output("busybox head -1 /proc/meminfo")[0].startswith("MemTotal:")
    assert tk.output("busybox head -1 /proc/self/maps")[0].endswith("r-xp 00000000 00:00 0"
                                                                    "          /bin/busybox")
    listed = tk.output("busybox ps")
    assert listed[0].split() == ["PID", "USER", "COMMAND"]
    assert any(line.split()[2:] == ["busybox", "ps"] for line in listed[1:]), listed
    assert tk.output("busybox sh -c 'readlink /proc/self/fd/1'") == ["/dev/tty"]


def test_yielding_programs_keep_their_own_tls(linux: Linux) -> None:
    tk = linux.tk
    lines = tk.output("tls0 | tls1", 120 * SECOND)
    assert sorted(line.split()[:3] for line in lines) == [
        ["tls0", "wrong", "0"], ["tls1", "wrong", "0"]
    ], lines


def test_bad_arguments_fail_as_on_the_host(linux: Linux) -> None:
    tk, host = linux.tk, linux.host
    inside = tk.output("badcalls", 60 * SECOND)
    expected = _host(host.parent / "badcalls", [], host)
    assert len(expected) == 29
    assert inside == expected


def test_threads_share_memory_and_keep_their_own_tls(linux: Linux) -> None:
    tk, host = linux.tk, linux.host
    inside = tk.output("threads", 120 * SECOND)
    expected = _host(host.parent / "threads", [], host)
    assert expected == ["counter 2000 sum 1004 main tls 7"]
    assert inside == expected
    assert len(tk.output("ps")) == 2  # the header and the kernel: every thread is gone


def test_a_thread_killed_by_a_fault_takes_its_process(linux: Linux) -> None:
    """As Linux: a fatal signal in any thread ends every thread; the report names the process."""
    tk = linux.tk
    lines = tk.output("tcrash", 60 * SECOND)
    assert len(lines) == 1 and re.fullmatch(
        r"tcrash\[\d+\]: segmentation fault at 0x00000000 \(.*\), eip 0x[0-9a-f]{8}", lines[0]
    ), lines
    assert len(tk.output("ps")) == 2
