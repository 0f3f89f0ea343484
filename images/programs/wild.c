/* wild: writes through a wild pointer as its very first act, before any system call. */
#include "libc.h"

int main(void) {
    *(volatile int *)0x50000000 = 42;
    return 1;
}
