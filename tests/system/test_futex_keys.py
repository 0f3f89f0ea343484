"""Futex keys as Linux's: a futex on private memory is named by (address space, virtual address),
so a waiter is still found after its page is copied on write (fork, then a write by the
parent); one on a shared mapping by the page itself, so processes that share it wake each
other. A static glibc program (gcc -m32 -static -pthread) runs in the OS and natively on the
host, and the two outputs must be equal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.harness import SECOND, BootedPc, close_pc
from tests.system.test_linux import _host, _probe_binary
from tradekernel.disktool import create_os_disk, open_volume

# A thread sleeps on a word alone on its page (nothing else writes there); the process forks a
# child that keeps the old frame alive, then writes the word (its own copy: a new frame) and
# wakes it. Then the same with a shared mapping, the child sleeping and the parent waking.
FUTEX_SOURCE = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct page { int word; char pad[4092]; };
static struct page private_page __attribute__((aligned(4096)));
static struct page flagless_page __attribute__((aligned(4096)));
static volatile int asleep;
static struct { int *word; int op; const char *result; } job;

static const char *wait_on(int *word, int op) {
    struct timespec limit = {2, 0};
    long r = syscall(SYS_futex, word, op, 0, &limit, 0, 0);
    return r == 0 ? "woken" : errno == ETIMEDOUT ? "timed out" : "failed";
}

static void *waiter(void *arg) {
    (void)arg;
    asleep = 1;
    job.result = wait_on(job.word, job.op);
    return 0;
}

static void settle(void) {
    struct timespec pause = {0, 100000000};
    nanosleep(&pause, 0);
}

static void after_copy_on_write(const char *name, int *word, int op, int wake_op) {
    int fds[2];
    pthread_t thread;
    job.word = word;
    job.op = op;
    asleep = 0;
    pipe(fds);
    pthread_create(&thread, 0, waiter, 0);
    while (!asleep) sched_yield();
    settle();  /* the thread sleeps in the futex now */
    pid_t child = fork();
    if (child == 0) { char c; read(fds[0], &c, 1); _exit(0); }  /* keeps the old frame */
    *word = 1;  /* the parent's own copy of the page */
    long woken = syscall(SYS_futex, word, wake_op, 1, 0, 0, 0);
    write(fds[1], "x", 1);
    waitpid(child, 0, 0);
    pthread_join(thread, 0);
    printf("%s: wake woke %ld, the waiter was %s\n", name, woken, job.result);
}

int main(void) {
    after_copy_on_write("private futex after a copy on write", &private_page.word,
                        FUTEX_WAIT_PRIVATE, FUTEX_WAKE_PRIVATE);
    after_copy_on_write("flagless futex after a copy on write",
                        &flagless_page.word, FUTEX_WAIT, FUTEX_WAKE);
    int *shared = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pid_t child = fork();
    if (child == 0) _exit(wait_on(shared, FUTEX_WAIT)[0] == 'w' ? 0 : 1);
    settle();
    *shared = 1;
    long woken = syscall(SYS_futex, shared, FUTEX_WAKE, 1, 0, 0, 0);
    int status = 0;
    waitpid(child, &status, 0);
    printf("shared mapping across fork: wake woke %ld, the child was %s\n", woken,
           WEXITSTATUS(status) == 0 ? "woken" : "not woken");
    return 0;
}
"""


@pytest.fixture(scope="module")
def futex_pc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BootedPc, Path]]:
    where = tmp_path_factory.mktemp("futex")
    binary = _probe_binary(where, "futexcow", FUTEX_SOURCE, "-static", "-pthread")
    disk = where / "disk.img"
    create_os_disk(disk)
    with open_volume(disk) as fs:
        fs.write_file("/bin/futexcow", binary.read_bytes())
    tk = BootedPc(where, disk=disk).boot()
    yield tk, binary
    close_pc(tk)


def test_futex_waiters_are_found_after_a_copy_on_write(futex_pc: tuple[BootedPc, Path]) -> None:
    tk, binary = futex_pc
    expected = _host(binary, [], binary.parent)
    assert expected == [
        "private futex after a copy on write: wake woke 1, the waiter was woken",
        "flagless futex after a copy on write: wake woke 1, the waiter was woken",
        "shared mapping across fork: wake woke 1, the child was woken",
    ]
    assert tk.output("futexcow", 60 * SECOND) == expected
