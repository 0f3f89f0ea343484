/* debugme: the ring-3 program real gdb debugs in tests/debug (built -O0 -g there, not shipped).
 * A local to print, a global to watch, and a system call to step over. */
#include "libc.h"

volatile int counter; /* watched: written once, by main */

static int square_sum(int n) {
    int total = 0;
    for (int i = 1; i <= n; i++)
        total += i * i;
    return total; /* BREAK-HERE: total is 30 for n = 4 */
}

int main(void) {
    int result = square_sum(4);
    counter = result; /* WATCHED-STORE */
    int pid;
    /* getpid (20) by hand, so the test knows where the int 0x80 is and where it returns */
    __asm__ volatile(".globl getpid_site, after_getpid\n"
                     "getpid_site: int $0x80\n"
                     "after_getpid:"
                     : "=a"(pid)
                     : "a"(20));
    printf("debugme: result %d pid %d counter %d\n", result, pid, counter);
    return 0;
}
