/* divzero: an integer division by zero (#DE), which Linux reports as SIGFPE. */
#include "libc.h"

int main(int argc, char **argv) {
    (void)argv;
    volatile int zero = argc - 1;  /* 0 when run without arguments; opaque to the compiler */
    printf("divzero: dividing by %d\n", zero);
    printf("divzero: %d\n", 100 / zero);
    return 1;
}
