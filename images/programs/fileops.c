/* fileops: the filesystem's names and the tty's ioctls from ring 3, one line per check:
 * mkdir, chdir/getcwd, create and rename a file, unlink, rmdir, and TCGETS/TIOCGWINSZ on the
 * console against ENOTTY on a file. Leaves /tmp/fileops/kept.txt behind for the shell to see. */
#include "libc.h"

#define SYS_chdir 12
#define SYS_rmdir 40
#define SYS_ioctl 54
#define SYS_getcwd 183
#define O_WRONLY 1
#define O_CREAT 0100
#define TCGETS 0x5401
#define TIOCGWINSZ 0x5413

static int failures;

static void check(const char *what, long got, long want) {
    printf("fileops: %s = %ld %s\n", what, got, got == want ? "ok" : "FAIL");
    if (got != want) failures++;
}

int main(void) {
    check("mkdir /tmp/fileops", mkdir("/tmp/fileops", 0755), 0);
    check("mkdir again", mkdir("/tmp/fileops", 0755), -17);
    check("chdir", syscall1(SYS_chdir, (long)"/tmp/fileops"), 0);
    char cwd[64];
    long length = syscall2(SYS_getcwd, (long)cwd, sizeof cwd);
    check("getcwd", length > 0 && strcmp(cwd, "/tmp/fileops") == 0, 1);
    int fd = syscall3(SYS_open, (long)"draft.txt", O_WRONLY | O_CREAT, 0644);
    check("create draft.txt", fd >= 0, 1);
    check("write", write(fd, "kept\n", 5), 5);
    check("ioctl on a file", syscall3(SYS_ioctl, fd, TCGETS, (long)cwd), -25);
    close(fd);
    check("rename", rename("draft.txt", "kept.txt"), 0);
    check("rename a missing file", rename("draft.txt", "other.txt"), -2);
    mkdir("scratch", 0755);
    fd = syscall3(SYS_open, (long)"scratch/junk", O_WRONLY | O_CREAT, 0644);
    close(fd);
    check("rmdir a full directory", syscall1(SYS_rmdir, (long)"scratch"), -39);
    check("unlink a directory", unlink("scratch"), -21);
    check("unlink", unlink("scratch/junk"), 0);
    check("rmdir", syscall1(SYS_rmdir, (long)"scratch"), 0);
    check("unlink a bad pointer", unlink((const char *)16), -14);
    unsigned termios[9];
    check("TCGETS on the console", syscall3(SYS_ioctl, 0, TCGETS, (long)termios), 0);
    check("canonical with echo", (termios[3] & 012) == 012, 1);
    unsigned short size[4];
    check("TIOCGWINSZ", syscall3(SYS_ioctl, 1, TIOCGWINSZ, (long)size), 0);
    printf("fileops: console %ux%u, %d failures\n", size[1], size[0], failures);
    return failures != 0;
}
