/* hostile MODE ...: a ring-3 program that attacks the kernel (issue 15), one mode per attack.
 *   hostile seek FILE       lseek and fstat/fstat64 on a regular file (what stdio does)
 *   hostile int3            a breakpoint instruction (Linux: SIGTRAP)
 *   hostile writev          writev/readv of 1024 iovecs of 1 MiB each (the per-call cap)
 *   hostile hog             brk, mmap and fork until memory runs out, then frees it all
 *   hostile hold            takes every frame, then sleeps holding them until killed
 *   hostile fuzz SEED N     N system calls with random numbers and hostile arguments
 * Each mode prints what the kernel answered, so a test can check it line by line. */
#include "libc.h"

#define MIB (1024 * 1024)

static long syscall6(long n, long a, long b, long c, long d, long e, long f) {
    long result;
    /* EBP is the sixth argument; it is also the frame pointer, so save it around the call. */
    long args[2] = {e, f};
    __asm__ volatile("push %%ebp\n\tmov 4(%%edi), %%ebp\n\tmov 0(%%edi), %%edi\n\t"
                     "int $0x80\n\tpop %%ebp"
                     : "=a"(result)
                     : "a"(n), "b"(a), "c"(b), "d"(c), "S"(d), "D"(args)
                     : "memory");
    return result;
}

static int seek(const char *path) {
    unsigned char st[96];
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        printf("open: %d\n", fd);
        return 1;
    }
    long fstat = syscall2(108, fd, (long)st);
    long size32 = *(long *)(st + 20); /* struct stat: st_size after dev, ino, mode... */
    long fstat64 = syscall2(197, fd, (long)st);
    long size64 = *(long *)(st + 44); /* struct stat64: st_size (low word) */
    long end = syscall3(SYS_lseek, fd, 0, 2);
    long back = syscall3(SYS_lseek, fd, 1, 0);
    char first = 0;
    long got = read(fd, &first, 1);
    printf("fstat=%ld size=%ld fstat64=%ld size64=%ld lseek_end=%ld lseek_set=%ld read=%ld:%c\n",
           fstat, size32, fstat64, size64, end, back, got, first);
    return 0;
}

static int writev_huge(void) {
    static long iov[2 * 1024];
    int fd = open("/dev/null", 2);
    char *buffer = mmap(NULL, MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (fd < 0 || IS_ERROR(buffer)) {
        printf("setup failed: fd %d buffer %ld\n", fd, (long)buffer);
        return 1;
    }
    for (int i = 0; i < 1024; i++) {
        iov[2 * i] = (long)buffer;
        iov[2 * i + 1] = MIB;
    }
    printf("writev=%ld\n", syscall3(146, fd, (long)iov, 1024));
    int zero = open("/dev/zero", 0);
    printf("readv=%ld\n", syscall3(145, zero, (long)iov, 1024));
    iov[1] = -1; /* a length that overflows the total: EINVAL as Linux */
    printf("writev_overflow=%ld\n", syscall3(146, fd, (long)iov, 2));
    return 0;
}

/* Take every frame: brk, then mmap, 64 KiB at a time, then page by page. */
static void fill(void) {
    long kib = 0, last = 0, maps = 0;
    for (long step = 64 * 1024; step >= 4096; step /= 16) /* 64 KiB steps, then pages */
        while (!IS_ERROR(sbrk(step))) kib += step / 1024;
    printf("brk: refused after %ld KiB\n", kib);
    for (long step = 64 * 1024; step >= 4096; step /= 16)
        for (;;) {
            last = (long)mmap(NULL, step, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (IS_ERROR(last)) break;
            maps += step / 1024;
        }
    printf("mmap: %ld after %ld KiB\n", last, maps);
}

static int hog(void) {
    fill();
    pid_t child = fork();
    if (child == 0) exit(0);
    if (child > 0) waitpid(child, NULL, 0);
    printf("fork: %s\n", child > 0 ? "ok" : child == -12 ? "ENOMEM" : child == -11 ? "EAGAIN" : "?");
    char *argv[] = {"/bin/hello", NULL};
    printf("execve: %d\n", execve("/bin/hello", argv, NULL));
    return 0;
}

/* ---- the fuzzer: xorshift32, so a seed replays the same calls ---- */
static unsigned state;
static unsigned next(void) {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return state;
}

/* The buffer calls read into and write from: two pages of its own, a PROT_NONE page after
 * them, so a write past its end is EFAULT and never clobbers the fuzzer's own variables. */
#define SCRATCH 8192
static char *scratch;
static unsigned canary = 0x5EED5EED; /* a hostile mmap over our data zeroes it: stop then */
static const char *paths[] = {"/tmp/fz", "/tmp/fz/a", "/dev/null", "/dev/zero", "/", "/nope",
                              "", "/tmp/fz/../fz/b", "/bin"};

static long hostile_value(void) {
    switch (next() % 16) {
    case 0: return 0;
    case 1: return -1;
    case 2: return 0xC0000000u + (next() & 0x3FFFFFFF); /* kernel space */
    case 3: return next() & 0xFFFFF; /* low memory, page 0 */
    case 4: return 0x7FFFFFFF;
    case 5: return 0x80000000u;
    case 6: return (long)scratch + (next() % SCRATCH);
    case 7: return (long)paths[next() % (sizeof paths / sizeof *paths)];
    case 8: return next() % 8; /* small: fds, flags, whence */
    case 9: return -(long)(next() % 4096); /* negative counts, -errno look-alikes */
    case 10: return 1L << (next() % 31);
    case 11: return (long)scratch + SCRATCH - (next() % 16); /* straddles the end */
    case 12: return 0xBFFE0000u + (next() & 0x3FFF); /* the unused bottom of the user stack */
    case 13: return 100 + next() % 1000;
    case 14: return 0x08048000u + (next() & 0xFFFF); /* our own (read-only) text */
    default: return next();
    }
}

/* Calls a fuzz case may not make: ending or replacing itself, or blocking on the console. */
static int skipped(long number, long a) {
    switch (number) {
    case 1: case 252: case 11: case 29: case 179: return 1; /* exit, execve, pause, sigsuspend */
    case 3: case 4: case 145: case 146: /* the console: reads wait for keys, writes scribble */
        return a == 0 || a == 1 || a == 2;
    case 119: case 173: return 1; /* sigreturn: a random frame may block the watchdog */
    case 37: case 238: case 270: return 1; /* kill: the fuzzer's own job would stop or die */
    case 27: case 174: case 175: return 1; /* its alarm watchdog must stay */
    case 114: case 7: return 1; /* wait: a forked child may nap */
    case 162: return 1; /* nanosleep: random lengths are hours long */
    }
    return 0;
}

/* The kernel's table (proc/syscalls.py): most calls are aimed at what exists. */
static const short known[] = {1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 19, 20, 27, 29, 37, 38, 39, 40, 41, 42, 45, 54, 63, 64, 65, 78, 90, 91, 96, 97, 106, 108, 114, 117, 119, 120, 122, 125, 132, 145, 146, 155, 156, 157, 158, 159, 160, 162, 173, 174, 175, 176, 179, 183, 192, 195, 197, 199, 200, 201, 202, 220, 224, 238, 252, 258, 265, 270, 295, 331, 395, 396, 397, 398, 403};

static int fuzz(unsigned seed, long count) {
    state = seed ? seed : 1;
    alarm(5); /* a watchdog: whatever blocks, the case ends */
    scratch = mmap(NULL, SCRATCH + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (IS_ERROR(scratch) || mprotect(scratch + SCRATCH, 4096, PROT_NONE)) return 1;
    for (long i = 0; i < count; i++) {
        if (!state || canary != 0x5EED5EED) {
            printf("fuzz %u: call %ld replaced its own memory; stopped\n", seed, i);
            return 0;
        }
        unsigned pick = next() % 8;
        long number = pick < 6 ? known[next() % (sizeof known / sizeof *known)]
                      : pick == 6 ? (long)(next() % 1000) : (long)next();
        long a = hostile_value(), b = hostile_value(), c = hostile_value();
        long d = hostile_value(), e = hostile_value(), f = hostile_value();
        if (skipped(number, a)) continue;
        long result = syscall6(number, a, b, c, d, e, f);
        if ((number == 2 || number == 120) && result == 0) {
            alarm(5); /* a child: its own watchdog, and fewer calls */
            count = i + 20 < count ? i + 20 : count;
        }
    }
    printf("fuzz %u: done\n", seed);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "seek")) return seek(argv[2]);
    if (argc >= 2 && !strcmp(argv[1], "int3")) {
        __asm__ volatile("int3");
        printf("int3: survived\n");
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "writev")) return writev_huge();
    if (argc >= 2 && !strcmp(argv[1], "hog")) return hog();
    if (argc >= 2 && !strcmp(argv[1], "hold")) { /* fill memory, then keep it till killed */
        fill();
        for (;;) pause();
    }
    if (argc >= 4 && !strcmp(argv[1], "fuzz")) return fuzz(atol(argv[2]), atol(argv[3]));
    printf("usage: hostile seek FILE | int3 | writev | hog | hold | fuzz SEED N\n");
    return 2;
}
