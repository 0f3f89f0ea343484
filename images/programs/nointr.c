/* nointr [SECONDS]: ignores SIGINT, so Ctrl-C cannot stop it (kill -9 can); sleeps for
 * SECONDS (default: forever) and says so when it is done. */
#include "libc.h"

int main(int argc, char **argv) {
    long seconds = argc > 1 ? atol(argv[1]) : -1;
    signal(SIGINT, SIG_IGN);
    printf("nointr: ignoring SIGINT, pid %d\n", getpid());
    struct timespec second = {1, 0};
    for (long done = 0; seconds < 0 || done < seconds; done++) nanosleep(&second, NULL);
    printf("nointr: done\n");
    return 0;
}
