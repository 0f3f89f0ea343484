/* sysbench getpid|yield N: N system calls in a loop, for bench/bench_process.py (getpid takes
 * the trap fast path; sched_yield goes through the IDT and the scheduler every time). */
#include "libc.h"

int main(int argc, char **argv) {
    if (argc < 3) {
        printf("usage: sysbench getpid|yield N\n");
        return 2;
    }
    long count = atol(argv[2]);
    int yield = argv[1][0] == 'y';
    long sum = 0;
    for (long i = 0; i < count; i++) sum += yield ? sched_yield() : getpid();
    printf("sysbench: %ld calls (%ld)\n", count, sum);
    return 0;
}
