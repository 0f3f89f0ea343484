/* yes [N]: print "y" lines, forever or N of them (a pipe's writer; dies of SIGPIPE). */
#include "libc.h"

int main(int argc, char **argv) {
    long left = argc > 1 ? atol(argv[1]) : -1;
    for (; left != 0; left--) {
        if (write(1, "y\n", 2) < 0) return 1;
    }
    return 0;
}
