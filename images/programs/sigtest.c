/* sigtest [MODE]: signals from the program's side.
 *   (none)    the self-test: handlers, blocking, merging, sigreturn restoring every register,
 *             SA_SIGINFO, the kernel's own trampoline, SIGKILL, EINTR and SA_RESTART on a
 *             pipe, SIGCHLD, what fork and execve keep, nanosleep's time left, alarm,
 *             kill(0) for the process group, SIGCHLD ignored (no zombies); one line per
 *             check
 *   catch     handlers for SIGINT, SIGTERM and SIGUSR1; prints each arrival, ends on SIGTERM
 *             or the third SIGINT
 *   read      a tty read that a SIGINT handler (no SA_RESTART) interrupts, then one more read
 *   badframe  a handler that points the saved CS at the kernel's code segment
 *   badstack  sigreturn with an unreadable frame
 *   segv [blocked]  a write to an unmapped page with a SIGSEGV handler (blocked: masked, so
 *             the fault kills it anyway)
 *   show      (run by the self-test through execve) the dispositions and mask it inherited */
#include "libc.h"

static volatile int counts[65];
static volatile int last_code, last_pid, last_status, frame_ok;

static void count(int sig) { counts[sig]++; }

static void with_info(int sig, siginfo_t *info, void *context) {
    ucontext_t *uc = context;
    counts[sig]++;
    last_code = info->si_code;
    last_pid = info->si_pid;
    last_status = info->si_status;
    frame_ok = info->si_signo == sig && uc->uc_mcontext.cs == 0x1b;
}

static int install(int sig, sighandler_t handler, unsigned long flags) {
    struct sigaction action = {0};
    action.sa_handler = handler;
    action.sa_flags = flags;
    return sigaction(sig, &action, NULL);
}

static int block(int how, int sig) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    return sigprocmask(how, &set, NULL);
}

static void sleep_ms(long ms) {
    struct timespec time = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&time, NULL);
}

/* A handler in assembly that changes every register and the direction flag before it
 * returns: sigreturn has to put them all back. */
void clobber(int);
volatile int clobbered;
__asm__(".text\n"
        "clobber:\n"
        "    movl $0xdeadbeef, %eax\n"
        "    movl %eax, %ebx\n"
        "    movl %eax, %ecx\n"
        "    movl %eax, %edx\n"
        "    movl %eax, %esi\n"
        "    movl %eax, %edi\n"
        "    movl %eax, %ebp\n"
        "    incl clobbered\n"
        "    std\n"
        "    ret\n");

/* SIGUSR2 is pending and blocked: unblock it with every register holding a known value; the
 * handler runs on the way out of rt_sigprocmask. Returns how many registers differ after. */
static int registers_survive(void) {
    static sigset_t set = 1ULL << (SIGUSR2 - 1);
    static unsigned long after[7];
    __asm__ volatile("pushl %%ebp\n"
                     "movl $0x0badf00d, %%ebp\n"
                     "movl $0x5eed5eed, %%edi\n"
                     "movl $175, %%eax\n" /* rt_sigprocmask(SIG_UNBLOCK, &set, NULL, 8) */
                     "movl $1, %%ebx\n"
                     "movl %[set], %%ecx\n"
                     "xorl %%edx, %%edx\n"
                     "movl $8, %%esi\n"
                     "std\n"
                     "int $0x80\n"
                     "pushfl\n"
                     "cld\n"
                     "movl %%ebx, %[after]\n"
                     "movl %%ecx, %[after]+4\n"
                     "movl %%edx, %[after]+8\n"
                     "movl %%esi, %[after]+12\n"
                     "movl %%edi, %[after]+16\n"
                     "movl %%ebp, %[after]+20\n"
                     "popl %[after]+24\n"
                     "popl %%ebp\n"
                     : [after] "=m"(after)
                     : [set] "i"(&set)
                     : "eax", "ebx", "ecx", "edx", "esi", "edi", "memory", "cc");
    unsigned long want[7] = {1, (unsigned long)&set, 0, 8, 0x5eed5eed, 0x0badf00d, 0x400};
    int differ = 0;
    for (int i = 0; i < 6; i++) differ += after[i] != want[i];
    differ += (after[6] & 0x400) != want[6]; /* DF still set */
    return differ;
}

static void show(void) {
    struct sigaction usr1, usr2;
    sigset_t mask;
    sigaction(SIGUSR1, NULL, &usr1);
    sigaction(SIGUSR2, NULL, &usr2);
    sigprocmask(SIG_BLOCK, NULL, &mask);
    printf("exec: USR1 %s, USR2 %s, TERM blocked %d\n",
           usr1.sa_handler == SIG_IGN ? "ignored" : "not ignored",
           usr2.sa_handler == SIG_DFL ? "default" : "handled", sigismember(&mask, SIGTERM));
}

static void self_test(char **argv) {
    install(SIGUSR1, count, 0);
    raise(SIGUSR1);
    printf("handler: %d\n", counts[SIGUSR1]);

    block(SIG_BLOCK, SIGUSR1);
    raise(SIGUSR1);
    raise(SIGUSR1);
    sigset_t pending;
    sigpending(&pending);
    printf("blocked: %d pending %d\n", counts[SIGUSR1], sigismember(&pending, SIGUSR1));
    block(SIG_UNBLOCK, SIGUSR1);
    printf("unblocked: %d\n", counts[SIGUSR1]); /* two sends while blocked make one */

    install(SIGUSR2, clobber, 0);
    block(SIG_BLOCK, SIGUSR2);
    raise(SIGUSR2);
    int differ = registers_survive();
    printf("registers: %d differ, handler ran %d\n", differ, clobbered);

    struct sigaction info = {0};
    info.sa_sigaction = with_info;
    info.sa_flags = SA_SIGINFO;
    sigaction(SIGHUP, &info, NULL);
    kill(getpid(), SIGHUP);
    printf("siginfo: code %d pid %s frame %s\n", last_code, last_pid == getpid() ? "self" : "?",
           frame_ok ? "ok" : "bad");

    struct sigaction bare = {0}; /* no SA_RESTORER: the kernel's trampoline on the stack */
    bare.sa_handler = count;
    syscall4(SYS_rt_sigaction, SIGQUIT, (long)&bare, 0, 8);
    raise(SIGQUIT);
    raise(SIGQUIT);
    printf("trampoline: %d\n", counts[SIGQUIT]);

    printf("SIGKILL: sigaction %d", install(SIGKILL, count, 0));
    sigset_t all, now;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &now);
    sigprocmask(SIG_SETMASK, &now, &all);
    printf(" blockable %d\n", sigismember(&all, SIGKILL));

    for (int restart = 0; restart < 2; restart++) {
        int fds[2];
        pipe(fds);
        install(SIGUSR1, count, restart ? SA_RESTART : 0);
        pid_t parent = getpid();
        pid_t child = fork();
        if (child == 0) {
            sleep_ms(30);
            kill(parent, SIGUSR1);
            sleep_ms(30);
            write(fds[1], "x", 1);
            exit(0);
        }
        char byte;
        int got = read(fds[0], &byte, 1);
        printf("pipe read%s: %d\n", restart ? " with SA_RESTART" : "", got);
        waitpid(child, NULL, 0);
        close(fds[0]);
        close(fds[1]);
    }

    sigaction(SIGCHLD, &info, NULL);
    block(SIG_BLOCK, SIGCHLD);
    pid_t child = fork();
    if (child == 0) exit(3);
    sigset_t none = 0;
    int suspended = sigsuspend(&none);
    int status = 0;
    waitpid(child, &status, 0);
    printf("SIGCHLD: %d, sigsuspend %d, code %d status %d pid %s\n", counts[SIGCHLD], suspended,
           last_code, last_status, last_pid == child ? "child" : "?");

    install(SIGUSR1, SIG_IGN, 0);
    install(SIGUSR2, count, 0);
    block(SIG_BLOCK, SIGTERM);
    raise(SIGTERM); /* pending in the parent, not in the child */
    child = fork();
    if (child == 0) {
        struct sigaction usr2;
        sigset_t mask, child_pending;
        sigaction(SIGUSR2, NULL, &usr2);
        sigprocmask(SIG_BLOCK, NULL, &mask);
        sigpending(&child_pending);
        printf("fork: USR2 %s, TERM blocked %d, pending %d\n",
               usr2.sa_handler == count ? "same handler" : "changed", sigismember(&mask, SIGTERM),
               sigismember(&child_pending, SIGTERM));
        char *args[] = {argv[0], "show", NULL};
        execve("/bin/sigtest", args, NULL);
        exit(1);
    }
    waitpid(child, &status, 0);
    install(SIGTERM, SIG_IGN, 0); /* discards the pending SIGTERM */
    sigpending(&pending);
    printf("ignored pending TERM: %d\n", sigismember(&pending, SIGTERM));

    install(SIGUSR1, count, 0);
    child = fork();
    if (child == 0) {
        sleep_ms(30);
        kill(getppid(), SIGUSR1);
        exit(0);
    }
    struct timespec second = {1, 0}, left = {0, 0};
    int slept = nanosleep(&second, &left);
    waitpid(child, NULL, 0);
    printf("nanosleep: %d, left %s\n", slept,
           left.tv_sec == 0 && left.tv_nsec > 900000000 ? "> 900 ms" : "wrong");

    install(SIGALRM, count, 0);
    alarm(5);
    unsigned before = alarm(1);
    int paused = pause();
    printf("alarm: %u left, pause %d, SIGALRM %d\n", before, paused, counts[SIGALRM]);

    int usr2 = counts[SIGUSR2];
    child = fork();
    if (child == 0) exit(getpgrp() == getppid() && kill(0, SIGUSR2) == 0 ? 0 : 1);
    int waited;
    while ((waited = waitpid(child, &status, 0)) == -EINTR) {} /* the group's SIGUSR2 */
    printf("group: child exit %d, parent got %d, no group %d\n", (status >> 8) & 0xff,
           counts[SIGUSR2] - usr2, kill(-9999, 0));

    block(SIG_UNBLOCK, SIGCHLD);
    install(SIGCHLD, SIG_IGN, 0);
    pid_t early = fork();
    if (early == 0) exit(0);
    sleep_ms(20); /* it is gone before the wait */
    child = fork();
    if (child == 0) {
        sleep_ms(20); /* it goes while its parent waits */
        exit(0);
    }
    int late = waitpid(child, NULL, 0);
    printf("SIGCHLD ignored: wait %d, then %d\n", late, waitpid(early, NULL, 0));
}

static void catch_loop(void) {
    install(SIGINT, count, 0);
    install(SIGTERM, count, 0);
    install(SIGUSR1, count, 0);
    printf("sigtest: catching, pid %d\n", getpid());
    int seen[3] = {0, 0, 0};
    for (;;) {
        pause();
        if (counts[SIGUSR1] != seen[0]) printf("sigtest: SIGUSR1 %d\n", seen[0] = counts[SIGUSR1]);
        if (counts[SIGINT] != seen[1]) printf("sigtest: SIGINT %d\n", seen[1] = counts[SIGINT]);
        if (counts[SIGTERM] || counts[SIGINT] >= 3) break;
    }
    printf("sigtest: done\n");
}

static void interrupted_read(void) {
    char line[64];
    install(SIGINT, count, 0);
    printf("sigtest: reading\n");
    int got = read(0, line, sizeof line);
    printf("sigtest: read %d, SIGINT %d\n", got, counts[SIGINT]);
    got = read(0, line, sizeof line);
    printf("sigtest: then read %d\n", got);
}

static void segv(int sig, siginfo_t *info, void *context) {
    (void)context;
    printf("sigtest: signal %d at %p code %d\n", sig, info->si_addr, info->si_code);
    exit(0);
}

static void corrupt(int sig, siginfo_t *info, void *context) {
    (void)sig, (void)info;
    ((ucontext_t *)context)->uc_mcontext.cs = 0x08; /* ring 0 */
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "show")) {
        show();
    } else if (!strcmp(mode, "catch")) {
        catch_loop();
    } else if (!strcmp(mode, "read")) {
        interrupted_read();
    } else if (!strcmp(mode, "badframe")) {
        struct sigaction action = {0};
        action.sa_sigaction = corrupt;
        action.sa_flags = SA_SIGINFO;
        sigaction(SIGUSR1, &action, NULL);
        raise(SIGUSR1);
        printf("sigtest: back in ring 0?\n");
    } else if (!strcmp(mode, "segv")) {
        struct sigaction action = {0};
        action.sa_sigaction = segv;
        action.sa_flags = SA_SIGINFO;
        sigaction(SIGSEGV, &action, NULL);
        if (argc > 2) block(SIG_BLOCK, SIGSEGV);
        *(volatile int *)0x50000000 = 1;
        printf("sigtest: the write worked?\n");
    } else if (!strcmp(mode, "badstack")) {
        __asm__ volatile("movl $16, %%esp\n"
                         "movl $119, %%eax\n"
                         "int $0x80" ::: "memory");
    } else {
        self_test(argv);
    }
    return 0;
}
