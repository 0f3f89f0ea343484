/* ptracetest: a ring-3 tracer that uses ptrace (system call 26) directly, run both on the
 * TradeKernel guest and on the Linux host (the same static i386 binary) by
 * tests/debug/test_ptrace.py, which compares what the two print.
 * `ptracetest PATH` forks; the child asks to be traced (PTRACE_TRACEME) and execs PATH (this
 * program again) with an extra argument, so the tracer knows the addresses of the child's
 * code and data: they are its own. */
#include "libc.h"

#define PTRACE_TRACEME 0
#define PTRACE_PEEKTEXT 1
#define PTRACE_PEEKDATA 2
#define PTRACE_POKETEXT 4
#define PTRACE_POKEDATA 5
#define PTRACE_CONT 7
#define PTRACE_SINGLESTEP 9
#define PTRACE_GETREGS 12
#define PTRACE_SETREGS 13
#define PTRACE_ATTACH 16
#define PTRACE_DETACH 17

struct user_regs {
    long ebx, ecx, edx, esi, edi, ebp, eax, xds, xes, xfs, xgs, orig_eax, eip, xcs, eflags, esp,
        xss;
};

extern char _start[];
volatile int secret = 1;
volatile int spins;

__attribute__((noinline)) void marker(void) {
    __asm__ volatile("nop");
}

static long ptrace(long request, long pid, long address, long data) {
    return syscall4(26, request, pid, address, data);
}

static long peek(int pid, long address) {
    long word = 0;
    long result = ptrace(PTRACE_PEEKDATA, pid, address, (long)&word);
    if (result < 0)
        printf("peek %lx failed: %ld\n", address, result);
    return word;
}

static void report(const char *what, int pid) {
    int status = 0;
    int got = waitpid(pid, &status, 0);
    if (got != pid) {
        printf("%s: waitpid returned %d\n", what, got);
        exit(1);
    }
    if ((status & 0xff) == 0x7f)
        printf("%s: stopped by signal %d\n", what, (status >> 8) & 0xff);
    else if ((status & 0x7f) == 0)
        printf("%s: exited with %d\n", what, (status >> 8) & 0xff);
    else
        printf("%s: killed by signal %d\n", what, status & 0x7f);
}

static int child(void) {
    marker();
    raise(SIGUSR1); /* the tracer sees it first and drops it */
    printf("child: secret %d\n", secret);
    return 7;
}

int main(int argc, char **argv) {
    if (argc > 2)
        return child();
    if (argc < 2) {
        printf("usage: ptracetest PATH-OF-PTRACETEST\n");
        return 2;
    }
    printf("not traced: %ld\n", ptrace(PTRACE_CONT, getpid(), 0, 0));
    int pid = fork();
    if (pid == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        char *args[] = {argv[1], argv[1], "child", 0};
        char *env[] = {0};
        execve(argv[1], args, env);
        exit(99);
    }
    report("exec", pid);
    struct user_regs regs;
    printf("getregs: %ld\n", ptrace(PTRACE_GETREGS, pid, 0, (long)&regs));
    printf("eip at _start: %d\n", regs.eip == (long)_start);
    printf("argc on the stack: %ld\n", peek(pid, regs.esp));
    long argv2 = peek(pid, regs.esp + 12);
    char text[5] = {0};
    *(long *)text = peek(pid, argv2);
    printf("argv[2] starts: %s\n", text);
    long first = 0;
    ptrace(PTRACE_PEEKTEXT, pid, (long)_start, (long)&first);
    printf("text matches: %d\n", first == *(long *)_start);
    long word = 0;
    printf("peek at 0: %ld\n", ptrace(PTRACE_PEEKDATA, pid, 0, (long)&word));
    for (int i = 1; i <= 3; i++) {
        ptrace(PTRACE_SINGLESTEP, pid, 0, 0);
        report("step", pid);
        ptrace(PTRACE_GETREGS, pid, 0, (long)&regs);
        printf("step %d: eip = _start + %ld\n", i, regs.eip - (long)_start);
    }
    ptrace(PTRACE_POKEDATA, pid, (long)&secret, 42);
    printf("secret poked: %ld\n", peek(pid, (long)&secret));
    long original = peek(pid, (long)marker);
    ptrace(PTRACE_POKETEXT, pid, (long)marker, (original & ~0xffL) | 0xcc);
    ptrace(PTRACE_CONT, pid, 0, 0);
    report("breakpoint", pid);
    ptrace(PTRACE_GETREGS, pid, 0, (long)&regs);
    printf("breakpoint: eip = marker + %ld\n", regs.eip - (long)marker);
    ptrace(PTRACE_POKETEXT, pid, (long)marker, original);
    regs.eip = (long)marker;
    printf("setregs: %ld\n", ptrace(PTRACE_SETREGS, pid, 0, (long)&regs));
    ptrace(PTRACE_CONT, pid, 0, 0);
    report("signal", pid);
    ptrace(PTRACE_CONT, pid, 0, 0);
    report("end", pid);
    printf("parent: secret %d\n", secret);

    /* a child that never asked: ATTACH stops it (SIGSTOP), DETACH lets it go */
    int spinner = fork();
    if (spinner == 0)
        for (;;)
            spins++;
    sched_yield();
    printf("attach: %ld\n", ptrace(PTRACE_ATTACH, spinner, 0, 0));
    report("attach", spinner);
    long spun = 0;
    printf("peek while attached: %ld\n", ptrace(PTRACE_PEEKDATA, spinner, (long)&spins,
                                                 (long)&spun));
    printf("detach: %ld\n", ptrace(PTRACE_DETACH, spinner, 0, 0));
    printf("peek after detach: %ld\n", ptrace(PTRACE_PEEKDATA, spinner, (long)&spins,
                                               (long)&spun));
    kill(spinner, SIGKILL);
    report("spinner", spinner);
    return 0;
}
