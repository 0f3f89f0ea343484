/* info: what the kernel says about this process: ids, uname, clock, priority, brk heap. */
#include "libc.h"

int main(int argc, char **argv) {
    struct utsname name;
    struct timespec start, end, nap = {0, 20000000};
    printf("argc=%d argv[0]=%s argv[1]=%s\n", argc, argv[0], argc > 1 ? argv[1] : "-");
    printf("pid=%d ppid=%d\n", getpid(), getppid());
    if (uname(&name) == 0) printf("uname: %s %s %s\n", name.sysname, name.release, name.machine);
    printf("nice=%d\n", getpriority(0, 0));
    int set = setpriority(0, 0, 5);
    printf("setpriority(5)=%d nice=%d\n", set, getpriority(0, 0));
    char *block = malloc(10000);
    memset(block, 'x', 10000);
    printf("malloc: %s\n", block && block[9999] == 'x' ? "ok" : "failed");
    clock_gettime(CLOCK_MONOTONIC, &start);
    nanosleep(&nap, NULL);
    clock_gettime(CLOCK_MONOTONIC, &end);
    long slept_ms = (end.tv_sec - start.tv_sec) * 1000 + (end.tv_nsec - start.tv_nsec) / 1000000;
    printf("slept %s\n", slept_ms >= 20 ? ">= 20 ms" : "too little");
    return 0;
}
