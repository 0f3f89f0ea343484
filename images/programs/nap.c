/* nap MS [COUNT]: nanosleep MS milliseconds COUNT times, printing how long each really took
 * in microseconds of CLOCK_MONOTONIC (tickless timers must wake on time, never early). */
#include "libc.h"

int main(int argc, char **argv) {
    if (argc < 2) {
        printf("usage: nap MS [COUNT]\n");
        return 2;
    }
    long ms = atol(argv[1]);
    long count = argc > 2 ? atol(argv[2]) : 1;
    struct timespec nap = {ms / 1000, (ms % 1000) * 1000000};
    for (long i = 0; i < count; i++) {
        struct timespec start, end;
        clock_gettime(CLOCK_MONOTONIC, &start);
        nanosleep(&nap, NULL);
        clock_gettime(CLOCK_MONOTONIC, &end);
        long us = (end.tv_sec - start.tv_sec) * 1000000 + (end.tv_nsec - start.tv_nsec) / 1000;
        printf("nap: %ld us\n", us);
    }
    return 0;
}
