/* sysbench getpid|yield|pingpong N: N system calls in a loop, for bench/bench_process.py
 * (getpid takes the trap fast path; sched_yield goes through the scheduler every time).
 * pingpong forks first: parent and child each yield N times, so every yield is a switch. */
#include "libc.h"

int main(int argc, char **argv) {
    if (argc < 3) {
        printf("usage: sysbench getpid|yield|pingpong N\n");
        return 2;
    }
    long count = atol(argv[2]);
    int yield = argv[1][0] != 'g';
    pid_t child = argv[1][0] == 'p' ? fork() : -1;
    long sum = 0;
    for (long i = 0; i < count; i++) sum += yield ? sched_yield() : getpid();
    if (child == 0) return sum != 0;
    if (child > 0) {
        int status = 0;
        waitpid(child, &status, 0);
        sum += status;
    }
    printf("sysbench: %ld calls (%ld)\n", count, sum);
    return 0;
}
