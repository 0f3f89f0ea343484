/* wc [FILE...]: lines, words and bytes of each file (or standard input), as "L W B [NAME]". */
#include "libc.h"

struct counts { long lines, words, bytes; };

static int count(int fd, struct counts *total) {
    char buffer[512];
    int in_word = 0;
    for (;;) {
        int got = read(fd, buffer, sizeof buffer);
        if (got <= 0) return got;
        total->bytes += got;
        for (int i = 0; i < got; i++) {
            char c = buffer[i];
            int space = c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
            if (c == '\n') total->lines++;
            if (!space && !in_word) total->words++;
            in_word = !space;
        }
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        struct counts counts = {0, 0, 0};
        int status = count(0, &counts);
        printf("%ld %ld %ld\n", counts.lines, counts.words, counts.bytes);
        return status < 0;
    }
    int status = 0;
    for (int i = 1; i < argc; i++) {
        struct counts counts = {0, 0, 0};
        int fd = open(argv[i], O_RDONLY);
        if (fd < 0 || count(fd, &counts) < 0) {
            dprintf(2, "wc: %s: error %d\n", argv[i], fd < 0 ? -fd : 5);
            status = 1;
        } else {
            printf("%ld %ld %ld %s\n", counts.lines, counts.words, counts.bytes, argv[i]);
        }
        if (fd >= 0) close(fd);
    }
    return status;
}
