/* exectest: fork; the child replaces itself with /bin/hello (after a failing execve of a
 * missing program, which must leave it running); the parent waits and prints the status. */
#include "libc.h"

int main(void) {
    pid_t child = fork();
    if (child == 0) {
        char *argv[] = {"hello", NULL};
        char *envp[] = {"PATH=/bin", NULL};
        int failed = execve("/bin/nosuch", argv, envp);
        printf("exectest: execve(/bin/nosuch) = %d\n", failed);
        execve("/bin/hello", argv, envp);
        return 99;
    }
    int status = -1;
    waitpid(child, &status, 0);
    printf("exectest: child exit %d\n", (status >> 8) & 0xff);
    return 0;
}
