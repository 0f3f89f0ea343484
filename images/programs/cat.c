/* cat [FILE...]: copy files (or standard input, one line at a time) to standard output. */
#include "libc.h"

static int copy(int fd, const char *name) {
    char buffer[512];
    for (;;) {
        int count = read(fd, buffer, sizeof buffer);
        if (count == 0) return 0;
        if (count < 0) {
            dprintf(2, "cat: %s: error %d\n", name, -count);
            return 1;
        }
        write(1, buffer, count);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) return copy(0, "stdin");
    int status = 0;
    for (int i = 1; i < argc; i++) {
        int fd = open(argv[i], O_RDONLY);
        if (fd < 0) {
            dprintf(2, "cat: %s: error %d\n", argv[i], -fd);
            status = 1;
            continue;
        }
        status |= copy(fd, argv[i]);
        close(fd);
    }
    return status;
}
