/* spin [N]: a CPU-bound loop (forever, or N million iterations), for the scheduler. */
#include "libc.h"

int main(int argc, char **argv) {
    long millions = argc > 1 ? atol(argv[1]) : -1;
    volatile unsigned long counter = 0;
    for (long round = 0; millions < 0 || round < millions; round++)
        for (long i = 0; i < 1000000; i++) counter++;
    printf("spin: %ld million iterations done\n", millions);
    return 0;
}
