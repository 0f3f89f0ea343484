/* forkbomb: every process forks for ever, and retries 10 ms after a refusal. The kernel must
 * refuse forks once its process table is full (EAGAIN) and stay usable; Ctrl-C or kill ends
 * the whole job. The first process says once when the table filled up. */
#include "libc.h"

int main(void) {
    static const struct timespec retry = {0, 10000000};
    pid_t first = getpid();
    int told = 0;
    for (;;) {
        pid_t child = fork();
        if (child == -11 && !told && getpid() == first) {
            printf("forkbomb: fork: EAGAIN, the process table is full\n");
            told = 1;
        }
        if (child < 0) nanosleep(&retry, NULL);
    }
}
