/* crash: says what it will do, then writes through a wild pointer into the kernel's half of
 * the address space. */
#include "libc.h"

int main(void) {
    volatile int *wild = (volatile int *)0xc0001000;
    printf("crash: writing to %p\n", (void *)wild);
    *wild = 42;
    printf("crash: still alive?\n");
    return 1;
}
