/* pipetest [BYTES]: a child writes BYTES (default 1 MiB) of the pattern byte i = (i * 7 + 3)
 * mod 251 into a pipe; the parent reads them all and prints the count and a checksum (the sum
 * of byte * (position mod 65521 + 1), mod 2^32), then the child's exit code. */
#include "libc.h"

static unsigned char block[4096];

int main(int argc, char **argv) {
    long total = argc > 1 ? atol(argv[1]) : 1 << 20;
    int fds[2];
    if (pipe(fds) < 0) {
        printf("pipetest: pipe failed\n");
        return 1;
    }
    pid_t child = fork();
    if (child == 0) {
        close(fds[0]);
        for (long sent = 0; sent < total;) {
            int size = total - sent < (long)sizeof block ? total - sent : (int)sizeof block;
            for (int i = 0; i < size; i++) block[i] = (unsigned char)(((sent + i) * 7 + 3) % 251);
            int wrote = write(fds[1], block, size);
            if (wrote <= 0) return 3;
            sent += wrote;
        }
        return 0;
    }
    close(fds[1]);
    unsigned long sum = 0;
    long position = 0;
    for (;;) {
        int got = read(fds[0], block, sizeof block);
        if (got < 0) {
            printf("pipetest: read failed (%d)\n", got);
            return 1;
        }
        if (got == 0) break;
        for (int i = 0; i < got; i++, position++)
            sum += (unsigned long)block[i] * (unsigned long)(position % 65521 + 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    printf("pipetest: %ld bytes checksum %lu child exit %d\n", position, sum,
           (status >> 8) & 0xff);
    return 0;
}
