/* exectest [N]: fork; the child replaces itself with /bin/hello (after a failing execve of a
 * missing program, which must leave it running); the parent waits and prints the status.
 * With N: N rounds of fork + execve("/bin/yes", "0") + exit + wait, for the benchmark. */
#include "libc.h"

static char *envp[] = {"PATH=/bin", NULL};

static int spawn_rounds(long rounds) {
    char *argv[] = {"yes", "0", NULL};
    for (long i = 0; i < rounds; i++) {
        pid_t child = fork();
        if (child == 0) {
            execve("/bin/yes", argv, envp);
            exit(99);
        }
        int status = -1;
        if (child < 0 || waitpid(child, &status, 0) != child || status != 0) {
            printf("exectest: round %ld failed (fork %d, status 0x%x)\n", i, child, status);
            return 1;
        }
    }
    printf("exectest: %ld spawns done\n", rounds);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1) return spawn_rounds(atol(argv[1]));
    pid_t child = fork();
    if (child == 0) {
        char *hello[] = {"hello", NULL};
        int failed = execve("/bin/nosuch", hello, envp);
        printf("exectest: execve(/bin/nosuch) = %d\n", failed);
        execve("/bin/hello", hello, envp);
        return 99;
    }
    int status = -1;
    waitpid(child, &status, 0);
    printf("exectest: child exit %d\n", (status >> 8) & 0xff);
    return 0;
}
