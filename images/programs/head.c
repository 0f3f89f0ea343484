/* head [-n N]: copy the first N (default 10) lines of standard input to standard output. */
#include "libc.h"

int main(int argc, char **argv) {
    long lines = 10;
    if (argc == 3 && strcmp(argv[1], "-n") == 0) {
        lines = atol(argv[2]);
    } else if (argc != 1) {
        dprintf(2, "usage: head [-n N]\n");
        return 2;
    }
    char buffer[512];
    while (lines > 0) {
        int count = read(0, buffer, sizeof buffer);
        if (count <= 0) return count < 0;
        int end = 0;
        while (end < count && lines > 0) {
            if (buffer[end++] == '\n') lines--;
        }
        write(1, buffer, end);
    }
    return 0;
}
