/* stoptest: stopping and continuing processes, from the program's side; one line per check.
 * A child counts in a shared page while the parent stops and continues it with SIGSTOP,
 * SIGTSTP and SIGCONT, and looks at what waitpid (WUNTRACED, WCONTINUED) and SIGCHLD
 * (CLD_STOPPED, CLD_CONTINUED, SA_NOCLDSTOP) report, that a stopped process gets no CPU, that
 * its signals wait for SIGCONT, that a nanosleep goes on across a stop, and what a handled or
 * ignored SIGTSTP does. */
#include "libc.h"

struct shared {
    volatile unsigned counter;
    volatile int usr1, tstp, cont, pending_tstp;
};
static struct shared *shared;
static volatile int chld_count, chld_code, chld_status;

static void sleep_ms(long ms) {
    struct timespec time = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&time, NULL);
}

static long now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static void on_usr1(int sig) { (void)sig; shared->usr1++; }
static void on_tstp(int sig) { (void)sig; shared->tstp++; }
static void on_cont(int sig) { (void)sig; shared->cont++; }

static void on_chld(int sig, siginfo_t *info, void *context) {
    (void)sig;
    (void)context;
    chld_count++;
    chld_code = info->si_code;
    chld_status = info->si_status;
}

static int install(int sig, sighandler_t handler) {
    struct sigaction action = {0};
    action.sa_handler = handler;
    return sigaction(sig, &action, NULL);
}

/* A child that counts for ever (the parent ends it). */
static pid_t counter_child(void) {
    pid_t child = fork();
    if (child == 0) {
        for (;;) shared->counter++;
    }
    sleep_ms(20); /* it has started counting */
    return child;
}

static int moves(void) {
    unsigned before = shared->counter;
    sleep_ms(30);
    return shared->counter != before;
}

static void stop_and_continue(void) {
    pid_t child = counter_child();
    int status = 0;
    kill(child, SIGSTOP);
    pid_t stopped = waitpid(child, &status, WUNTRACED);
    int stop_sig = stopped == child && WIFSTOPPED(status) ? WSTOPSIG(status) : -1;
    int still = !moves();
    int again = waitpid(child, &status, WUNTRACED | WNOHANG); /* reported once only */
    kill(child, SIGCONT);
    pid_t continued = waitpid(child, &status, WCONTINUED);
    int cont_ok = continued == child && WIFCONTINUED(status);
    int moving = moves();
    kill(child, SIGSTOP);
    waitpid(child, &status, WUNTRACED);
    kill(child, SIGTERM); /* its default action ends it, stopped or not */
    waitpid(child, &status, 0);
    printf("stop: stopped %d, still %d, again %d, continued %d, moves %d, then %d\n", stop_sig,
           still, again, cont_ok, moving, WIFSIGNALED(status) ? WTERMSIG(status) : -1);
}

static void sigchld_codes(void) {
    struct sigaction action = {0};
    action.sa_sigaction = on_chld;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGCHLD, &action, NULL);
    pid_t child = counter_child();
    kill(child, SIGTSTP);
    sleep_ms(10);
    int stop_code = chld_code, stop_status = chld_status;
    kill(child, SIGCONT);
    sleep_ms(10);
    int cont_code = chld_code, cont_status = chld_status, count = chld_count;
    action.sa_flags |= SA_NOCLDSTOP;
    sigaction(SIGCHLD, &action, NULL);
    kill(child, SIGSTOP);
    kill(child, SIGCONT);
    sleep_ms(10);
    int quiet = chld_count - count;
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    install(SIGCHLD, SIG_DFL);
    printf("SIGCHLD: stopped %d/%d, continued %d/%d, with SA_NOCLDSTOP %d, killed %d\n",
           stop_code, stop_status, cont_code, cont_status, quiet, WTERMSIG(status));
}

static void handled_and_ignored(void) {
    pid_t child = fork();
    if (child == 0) {
        install(SIGTSTP, on_tstp);
        install(SIGCONT, on_cont);
        install(SIGUSR1, on_usr1);
        for (;;) shared->counter++;
    }
    sleep_ms(20);
    int status = 0;
    kill(child, SIGTSTP);
    sleep_ms(10);
    int caught = shared->tstp, running = waitpid(child, &status, WUNTRACED | WNOHANG) == 0;
    kill(child, SIGSTOP);
    waitpid(child, &status, WUNTRACED);
    kill(child, SIGUSR1);
    sleep_ms(20);
    int waits = shared->usr1;
    kill(child, SIGCONT);
    sleep_ms(20);
    printf("SIGTSTP: caught %d, runs %d; USR1 waits %d, then %d; SIGCONT handler %d\n", caught,
           running, waits, shared->usr1, shared->cont);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);

    install(SIGTSTP, SIG_IGN);
    raise(SIGTSTP);
    install(SIGTSTP, SIG_DFL);
    printf("SIGTSTP ignored: goes on\n");
}

static void blocked_stop(void) {
    shared->cont = 0; /* before the fork: the child waits for the parent to set it */
    pid_t child = fork();
    if (child == 0) {
        sigset_t set, pending;
        sigemptyset(&set);
        sigaddset(&set, SIGTSTP);
        sigprocmask(SIG_BLOCK, &set, NULL);
        while (!shared->cont) sched_yield(); /* the parent sends TSTP, then CONT, then says so */
        sigpending(&pending);
        shared->pending_tstp = sigismember(&pending, SIGTSTP);
        sigprocmask(SIG_UNBLOCK, &set, NULL); /* nothing is left to stop it */
        exit(7);
    }
    sleep_ms(10);
    kill(child, SIGTSTP);
    sleep_ms(10);
    kill(child, SIGCONT);
    shared->cont = 1;
    int status = 0;
    waitpid(child, &status, WUNTRACED);
    printf("blocked SIGTSTP: discarded by SIGCONT %d, exit %d\n", !shared->pending_tstp,
           WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

static void sleep_across_stop(void) {
    pid_t child = fork();
    if (child == 0) {
        long start = now_ms();
        struct timespec time = {0, 200 * 1000000};
        int result = nanosleep(&time, NULL);
        long took = now_ms() - start;
        exit(result == 0 && took >= 200 && took < 400 ? 0 : 1);
    }
    sleep_ms(50);
    kill(child, SIGSTOP);
    sleep_ms(50);
    kill(child, SIGCONT);
    int status = 0;
    waitpid(child, &status, 0);
    int inside = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    child = fork();
    if (child == 0) {
        long start = now_ms();
        struct timespec time = {0, 100 * 1000000};
        int result = nanosleep(&time, NULL);
        exit(result == 0 && now_ms() - start >= 300 ? 0 : 1); /* woke stopped: ran at SIGCONT */
    }
    sleep_ms(50);
    kill(child, SIGSTOP);
    sleep_ms(250);
    kill(child, SIGCONT);
    waitpid(child, &status, 0);
    printf("nanosleep across a stop: %d, outlasting one: %d\n", inside,
           WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void self_stop(void) {
    pid_t child = fork();
    if (child == 0) {
        raise(SIGSTOP);
        exit(3);
    }
    int status = 0;
    pid_t stopped = waitpid(child, &status, WUNTRACED);
    int ok = stopped == child && WIFSTOPPED(status) && WSTOPSIG(status) == SIGSTOP;
    kill(child, SIGCONT);
    waitpid(child, &status, 0);
    printf("raise(SIGSTOP): stopped %d, exit %d\n", ok, WEXITSTATUS(status));
}

int main(void) {
    shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    stop_and_continue();
    sigchld_codes();
    handled_and_ignored();
    blocked_stop();
    sleep_across_stop();
    self_stop();
    return 0;
}
