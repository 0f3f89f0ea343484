/* badptr: system calls given pointers the kernel must refuse; prints what each returned. */
#include "libc.h"

int main(void) {
    printf("write(kernel address) = %d\n", write(1, (const void *)0x00100000, 16));
    printf("write(unmapped) = %d\n", write(1, (const void *)0x50000000, 16));
    printf("uname(NULL) = %d\n", uname(NULL));
    printf("nanosleep(bad) = %d\n", nanosleep((const struct timespec *)0xbffffff0 + 8, NULL));
    printf("syscall 999 = %ld\n", syscall0(999));
    return 0;
}
