/* forktest: fork; the child checks it sees the parent's memory and exits with 7; the parent
 * waits for it and prints the raw wait status and the exit code. */
#include "libc.h"

static int shared = 41;

int main(void) {
    pid_t child = fork();
    if (child < 0) {
        printf("forktest: fork failed (%d)\n", child);
        return 1;
    }
    if (child == 0) {
        shared++; /* copy-on-write: the parent must still see 41 */
        return shared == 42 && getppid() > 0 ? 7 : 1;
    }
    int status = 0;
    pid_t reaped = waitpid(child, &status, 0);
    printf("forktest: child %d reaped=%d status=0x%x exit=%d shared=%d\n", child,
           reaped == child, status, (status >> 8) & 0xff, shared);
    printf("forktest: wait again = %d\n", waitpid(-1, &status, 0));
    return 0;
}
