/* The TradeKernel user library (see libc.h). Freestanding: nothing here needs a host libc. */
#include "libc.h"

/* ---- system calls: EAX = number, EBX, ECX, EDX = arguments, result in EAX ---- */
long syscall0(long n) {
    long result;
    __asm__ volatile("int $0x80" : "=a"(result) : "a"(n) : "memory");
    return result;
}
long syscall1(long n, long a) {
    long result;
    __asm__ volatile("int $0x80" : "=a"(result) : "a"(n), "b"(a) : "memory");
    return result;
}
long syscall2(long n, long a, long b) {
    long result;
    __asm__ volatile("int $0x80" : "=a"(result) : "a"(n), "b"(a), "c"(b) : "memory");
    return result;
}
long syscall3(long n, long a, long b, long c) {
    long result;
    __asm__ volatile("int $0x80" : "=a"(result) : "a"(n), "b"(a), "c"(b), "d"(c) : "memory");
    return result;
}
long syscall4(long n, long a, long b, long c, long d) {
    long result;
    __asm__ volatile("int $0x80"
                     : "=a"(result)
                     : "a"(n), "b"(a), "c"(b), "d"(c), "S"(d)
                     : "memory");
    return result;
}

void exit(int status) {
    for (;;) syscall1(SYS_exit_group, status);
}
ssize_t read(int fd, void *buffer, size_t count) {
    return syscall3(SYS_read, fd, (long)buffer, count);
}
ssize_t write(int fd, const void *buffer, size_t count) {
    return syscall3(SYS_write, fd, (long)buffer, count);
}
int open(const char *path, int flags) { return syscall3(SYS_open, (long)path, flags, 0); }
int close(int fd) { return syscall1(SYS_close, fd); }
pid_t getpid(void) { return syscall0(SYS_getpid); }
pid_t getppid(void) { return syscall0(SYS_getppid); }
pid_t getpgrp(void) { return syscall0(SYS_getpgrp); }
pid_t fork(void) { return syscall0(SYS_fork); }
int execve(const char *path, char *const argv[], char *const envp[]) {
    return syscall3(SYS_execve, (long)path, (long)argv, (long)envp);
}
pid_t waitpid(pid_t pid, int *status, int options) {
    return syscall4(SYS_wait4, pid, (long)status, options, 0);
}
int pipe(int fds[2]) { return syscall1(SYS_pipe, (long)fds); }
int dup(int fd) { return syscall1(SYS_dup, fd); }
int dup2(int fd, int to) { return syscall2(SYS_dup2, fd, to); }
int kill(pid_t pid, int signal) { return syscall2(SYS_kill, pid, signal); }
/* mmap (90) takes its six arguments as an array: no sixth register (EBP) is needed. */
void *mmap(void *address, size_t length, int prot, int flags, int fd, long offset) {
    long args[6] = {(long)address, (long)length, prot, flags, fd, offset};
    return (void *)syscall1(SYS_mmap, (long)args);
}
int munmap(void *address, size_t length) {
    return syscall2(SYS_munmap, (long)address, length);
}
int mprotect(void *address, size_t length, int prot) {
    return syscall3(SYS_mprotect, (long)address, length, prot);
}
int shmget(int key, size_t size, int flags) { return syscall3(SYS_shmget, key, size, flags); }
void *shmat(int id, const void *address, int flags) {
    return (void *)syscall3(SYS_shmat, id, (long)address, flags);
}
int shmdt(const void *address) { return syscall1(SYS_shmdt, (long)address); }
int shmctl(int id, int command, void *buffer) {
    return syscall3(SYS_shmctl, id, command, (long)buffer);
}
int mkdir(const char *path, int mode) { return syscall2(SYS_mkdir, (long)path, mode); }
int unlink(const char *path) { return syscall1(SYS_unlink, (long)path); }
int rename(const char *from, const char *to) {
    return syscall2(SYS_rename, (long)from, (long)to);
}
int uname(struct utsname *name) { return syscall1(SYS_uname, (long)name); }
int sched_yield(void) { return syscall0(SYS_sched_yield); }
int nanosleep(const struct timespec *request, struct timespec *remaining) {
    return syscall2(SYS_nanosleep, (long)request, (long)remaining);
}
int clock_gettime(int clock, struct timespec *now) {
    return syscall2(SYS_clock_gettime, clock, (long)now);
}
/* The raw syscall returns 20 - nice (never negative); this wrapper returns nice as glibc does. */
int getpriority(int which, int who) {
    long raw = syscall2(SYS_getpriority, which, who);
    return raw < 0 ? raw : 20 - raw;
}
int setpriority(int which, int who, int priority) {
    return syscall3(SYS_setpriority, which, who, priority);
}

/* ---- signals ---- */
/* Where a handler returns to (sa_restorer): straight into sigreturn, as glibc's __restore and
 * __restore_rt do. The plain one pops the signal number the kernel left above the return
 * address, so ESP is at the saved sigcontext. */
void __restore(void);
void __restore_rt(void);
__asm__(".text\n"
        "__restore:\n"
        "    popl %eax\n"
        "    movl $119, %eax\n" /* SYS_sigreturn */
        "    int $0x80\n"
        "__restore_rt:\n"
        "    movl $173, %eax\n" /* SYS_rt_sigreturn */
        "    int $0x80\n");

int sigaction(int signal, const struct sigaction *action, struct sigaction *old) {
    struct sigaction copy;
    if (action) {
        copy = *action;
        copy.sa_flags |= SA_RESTORER;
        copy.sa_restorer = copy.sa_flags & SA_SIGINFO ? __restore_rt : __restore;
        action = &copy;
    }
    return syscall4(SYS_rt_sigaction, signal, (long)action, (long)old, sizeof(sigset_t));
}
/* BSD semantics, as glibc's signal(): the handler stays, interrupted calls restart. */
sighandler_t signal(int signal, sighandler_t handler) {
    struct sigaction action = {0}, old;
    action.sa_handler = handler;
    action.sa_flags = SA_RESTART;
    if (sigaction(signal, &action, &old) < 0) return SIG_ERR;
    return old.sa_handler;
}
int raise(int signal) { return kill(getpid(), signal); }
int pause(void) { return syscall0(SYS_pause); }
unsigned alarm(unsigned seconds) { return syscall1(SYS_alarm, seconds); }
int sigprocmask(int how, const sigset_t *set, sigset_t *old) {
    return syscall4(SYS_rt_sigprocmask, how, (long)set, (long)old, sizeof(sigset_t));
}
int sigpending(sigset_t *set) { return syscall2(SYS_rt_sigpending, (long)set, sizeof(sigset_t)); }
int sigsuspend(const sigset_t *mask) {
    return syscall2(SYS_rt_sigsuspend, (long)mask, sizeof(sigset_t));
}
int sigemptyset(sigset_t *set) { *set = 0; return 0; }
int sigfillset(sigset_t *set) { *set = ~0ULL; return 0; }
int sigaddset(sigset_t *set, int signal) { *set |= 1ULL << (signal - 1); return 0; }
int sigdelset(sigset_t *set, int signal) { *set &= ~(1ULL << (signal - 1)); return 0; }
int sigismember(const sigset_t *set, int signal) { return (*set >> (signal - 1)) & 1; }

/* brk(0) reports the break; sbrk moves it and returns the old one, or (void *)-1. */
static char *current_break;
void *sbrk(int increment) {
    if (!current_break) current_break = (char *)syscall1(SYS_brk, 0);
    char *old = current_break;
    char *wanted = old + increment;
    char *got = (char *)syscall1(SYS_brk, (long)wanted);
    if (got != wanted) return (void *)-1;
    current_break = got;
    return old;
}

/* ---- strings ---- */
size_t strlen(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}
int strcmp(const char *a, const char *b) {
    while (*a && *a == *b) a++, b++;
    return (unsigned char)*a - (unsigned char)*b;
}
char *strcpy(char *to, const char *from) {
    char *start = to;
    while ((*to++ = *from++)) {}
    return start;
}
void *memcpy(void *to, const void *from, size_t n) {
    char *d = to;
    const char *s = from;
    while (n--) *d++ = *s++;
    return to;
}
void *memset(void *to, int value, size_t n) {
    char *d = to;
    while (n--) *d++ = (char)value;
    return to;
}
long atol(const char *s) {
    long sign = 1, value = 0;
    if (*s == '-') sign = -1, s++;
    while (*s >= '0' && *s <= '9') value = value * 10 + (*s++ - '0');
    return sign * value;
}

/* ---- formatted output: %d %i %u %x %p %s %c %% with optional '0' and a width, 'l' ignored ---- */
struct sink { char *out; size_t size, length; };

static void put(struct sink *sink, char c) {
    if (sink->length + 1 < sink->size) sink->out[sink->length] = c;
    sink->length++;
}

static void put_number(struct sink *sink, unsigned long value, unsigned base, int negative,
                       int width, char pad) {
    char digits[12];
    int count = 0;
    do {
        digits[count++] = "0123456789abcdef"[value % base];
        value /= base;
    } while (value);
    if (negative) {
        if (pad == '0') put(sink, '-');
        width--;
    }
    for (int i = count; i < width; i++) put(sink, pad);
    if (negative && pad != '0') put(sink, '-');
    while (count) put(sink, digits[--count]);
}

int vsnprintf(char *out, size_t size, const char *format, va_list args) {
    struct sink sink = {out, size, 0};
    for (; *format; format++) {
        if (*format != '%') {
            put(&sink, *format);
            continue;
        }
        char pad = ' ';
        int width = 0;
        format++;
        if (*format == '0') pad = '0', format++;
        while (*format >= '0' && *format <= '9') width = width * 10 + (*format++ - '0');
        while (*format == 'l') format++;
        switch (*format) {
        case 'd':
        case 'i': {
            long value = va_arg(args, long);
            put_number(&sink, value < 0 ? -(unsigned long)value : (unsigned long)value, 10,
                       value < 0, width, pad);
            break;
        }
        case 'u': put_number(&sink, va_arg(args, unsigned long), 10, 0, width, pad); break;
        case 'x': put_number(&sink, va_arg(args, unsigned long), 16, 0, width, pad); break;
        case 'p':
            put(&sink, '0');
            put(&sink, 'x');
            put_number(&sink, (unsigned long)va_arg(args, void *), 16, 0, 8, '0');
            break;
        case 's': {
            const char *s = va_arg(args, const char *);
            if (!s) s = "(null)";
            for (int n = strlen(s); n < width; n++) put(&sink, ' ');
            while (*s) put(&sink, *s++);
            break;
        }
        case 'c': put(&sink, (char)va_arg(args, int)); break;
        case '%': put(&sink, '%'); break;
        case '\0': format--; break;
        default: put(&sink, '%'); put(&sink, *format); break;
        }
    }
    if (size) out[sink.length < size ? sink.length : size - 1] = '\0';
    return sink.length;
}

int snprintf(char *out, size_t size, const char *format, ...) {
    va_list args;
    va_start(args, format);
    int length = vsnprintf(out, size, format, args);
    va_end(args);
    return length;
}

static int vdprintf(int fd, const char *format, va_list args) {
    char buffer[512];
    int length = vsnprintf(buffer, sizeof buffer, format, args);
    if (length > (int)sizeof buffer - 1) length = sizeof buffer - 1;
    return write(fd, buffer, length);
}

int dprintf(int fd, const char *format, ...) {
    va_list args;
    va_start(args, format);
    int result = vdprintf(fd, format, args);
    va_end(args);
    return result;
}

int printf(const char *format, ...) {
    va_list args;
    va_start(args, format);
    int result = vdprintf(1, format, args);
    va_end(args);
    return result;
}

int puts(const char *s) {
    write(1, s, strlen(s));
    return write(1, "\n", 1);
}

/* ---- malloc: a first-fit free list of blocks carved from the brk heap ---- */
struct block { size_t size; struct block *next; };
static struct block *free_list;

void *malloc(size_t size) {
    size = (size + 7) & ~7u;
    for (struct block **link = &free_list; *link; link = &(*link)->next) {
        struct block *found = *link;
        if (found->size >= size) {
            *link = found->next;
            return found + 1;
        }
    }
    struct block *fresh = sbrk(sizeof(struct block) + size);
    if (fresh == (void *)-1) return NULL;
    fresh->size = size;
    return fresh + 1;
}

void free(void *pointer) {
    if (!pointer) return;
    struct block *released = (struct block *)pointer - 1;
    released->next = free_list;
    free_list = released;
}
