/* The TradeKernel user library: Linux i386 system calls through int 0x80, strings, a small
 * printf family, and malloc on brk. Return values follow Linux: a negative result is -errno
 * (these wrappers do not use a global errno). */
#ifndef TK_LIBC_H
#define TK_LIBC_H

typedef unsigned int size_t;
typedef int ssize_t;
typedef int pid_t;
typedef __builtin_va_list va_list;
#define va_start(ap, last) __builtin_va_start(ap, last)
#define va_arg(ap, type) __builtin_va_arg(ap, type)
#define va_end(ap) __builtin_va_end(ap)
#define NULL ((void *)0)

#define SYS_exit 1
#define SYS_fork 2
#define SYS_read 3
#define SYS_write 4
#define SYS_open 5
#define SYS_close 6
#define SYS_unlink 10
#define SYS_execve 11
#define SYS_lseek 19
#define SYS_getpid 20
#define SYS_alarm 27
#define SYS_pause 29
#define SYS_kill 37
#define SYS_rename 38
#define SYS_mkdir 39
#define SYS_dup 41
#define SYS_pipe 42
#define SYS_brk 45
#define SYS_dup2 63
#define SYS_getppid 64
#define SYS_getpgrp 65
#define SYS_mmap 90
#define SYS_munmap 91
#define SYS_getpriority 96
#define SYS_setpriority 97
#define SYS_wait4 114
#define SYS_sigreturn 119
#define SYS_uname 122
#define SYS_mprotect 125
#define SYS_sched_yield 158
#define SYS_nanosleep 162
#define SYS_rt_sigreturn 173
#define SYS_rt_sigaction 174
#define SYS_rt_sigprocmask 175
#define SYS_rt_sigpending 176
#define SYS_rt_sigsuspend 179
#define SYS_getdents64 220
#define SYS_exit_group 252
#define SYS_clock_gettime 265
#define SYS_shmget 395
#define SYS_shmctl 396
#define SYS_shmat 397
#define SYS_shmdt 398

#define O_RDONLY 0
#define CLOCK_MONOTONIC 1
#define PROT_NONE 0
#define PROT_READ 1
#define PROT_WRITE 2
#define MAP_SHARED 0x01
#define MAP_PRIVATE 0x02
#define MAP_FIXED 0x10
#define MAP_ANONYMOUS 0x20
#define IPC_PRIVATE 0
#define IPC_CREAT 01000
#define IPC_RMID 0
#define IPC_STAT 2
#define IPC_64 0x100
/* A result in -4095..-1 is -errno, for the calls that return addresses. */
#define IS_ERROR(value) ((unsigned long)(value) > 0xfffff000ul)
#define EINTR 4

/* Signals: Linux i386 numbers; sigset_t is the kernel's 64-bit set. */
#define SIGHUP 1
#define SIGINT 2
#define SIGQUIT 3
#define SIGILL 4
#define SIGABRT 6
#define SIGKILL 9
#define SIGUSR1 10
#define SIGSEGV 11
#define SIGUSR2 12
#define SIGPIPE 13
#define SIGALRM 14
#define SIGTERM 15
#define SIGCHLD 17
#define SIGCONT 18
#define SIGSTOP 19
#define SIGTSTP 20
#define SIGTTIN 21
#define SIGTTOU 22
#define SIG_DFL ((sighandler_t)0)
#define SIG_IGN ((sighandler_t)1)
#define SIG_ERR ((sighandler_t)-1)
#define SIG_BLOCK 0
#define SIG_UNBLOCK 1
#define SIG_SETMASK 2
#define SA_NOCLDSTOP 1
#define SA_SIGINFO 4
#define SA_RESTORER 0x04000000
#define SA_RESTART 0x10000000
#define SA_NODEFER 0x40000000
#define SA_RESETHAND 0x80000000
#define SI_USER 0
#define CLD_EXITED 1
#define CLD_KILLED 2
#define CLD_STOPPED 5
#define CLD_CONTINUED 6

/* waitpid's options and what its status says (glibc's macros). */
#define WNOHANG 1
#define WUNTRACED 2
#define WCONTINUED 8
#define WIFEXITED(status) (((status) & 0x7f) == 0)
#define WEXITSTATUS(status) (((status) >> 8) & 0xff)
#define WIFSIGNALED(status) (((status) & 0x7f) != 0 && ((status) & 0x7f) != 0x7f)
#define WTERMSIG(status) ((status) & 0x7f)
#define WIFSTOPPED(status) (((status) & 0xff) == 0x7f)
#define WSTOPSIG(status) WEXITSTATUS(status)
#define WIFCONTINUED(status) ((status) == 0xffff)

struct timespec { long tv_sec; long tv_nsec; };
typedef void (*sighandler_t)(int);
typedef unsigned long long sigset_t;
typedef struct {
    int si_signo, si_errno, si_code;
    union {
        struct { int si_pid, si_uid, si_status; }; /* kill: pid, uid; SIGCHLD: and status */
        void *si_addr; /* SIGSEGV, SIGBUS, SIGFPE, SIGILL: where the fault was */
    };
    int pad[26];
} siginfo_t;
struct sigcontext { /* what the kernel saves on the stack (Linux's i386 struct sigcontext) */
    unsigned short gs, __gsh, fs, __fsh, es, __esh, ds, __dsh;
    unsigned long edi, esi, ebp, esp, ebx, edx, ecx, eax, trapno, err, eip;
    unsigned short cs, __csh;
    unsigned long eflags, esp_at_signal;
    unsigned short ss, __ssh;
    unsigned long fpstate, oldmask, cr2;
};
typedef struct {
    unsigned long uc_flags;
    void *uc_link;
    struct { void *ss_sp; int ss_flags; size_t ss_size; } uc_stack;
    struct sigcontext uc_mcontext;
    sigset_t uc_sigmask;
} ucontext_t;
/* The kernel's struct sigaction (rt_sigaction's layout). */
struct sigaction {
    union {
        sighandler_t sa_handler;
        void (*sa_sigaction)(int, siginfo_t *, void *);
    };
    unsigned long sa_flags;
    void (*sa_restorer)(void);
    sigset_t sa_mask;
};
struct utsname {
    char sysname[65], nodename[65], release[65], version[65], machine[65], domainname[65];
};

long syscall0(long n);
long syscall1(long n, long a);
long syscall2(long n, long a, long b);
long syscall3(long n, long a, long b, long c);
long syscall4(long n, long a, long b, long c, long d);

void exit(int status) __attribute__((noreturn));
ssize_t read(int fd, void *buffer, size_t count);
ssize_t write(int fd, const void *buffer, size_t count);
int open(const char *path, int flags);
int close(int fd);
pid_t getpid(void);
pid_t getppid(void);
pid_t getpgrp(void);
int kill(pid_t pid, int signal);
void *sbrk(int increment);
int uname(struct utsname *name);
int sched_yield(void);
int nanosleep(const struct timespec *request, struct timespec *remaining);
int clock_gettime(int clock, struct timespec *now);
int getpriority(int which, int who);
pid_t fork(void);
int execve(const char *path, char *const argv[], char *const envp[]);
pid_t waitpid(pid_t pid, int *status, int options);
int pipe(int fds[2]);
int dup(int fd);
int dup2(int fd, int to);
int setpriority(int which, int who, int priority);
void *mmap(void *address, size_t length, int prot, int flags, int fd, long offset);
int munmap(void *address, size_t length);
int mprotect(void *address, size_t length, int prot);
int shmget(int key, size_t size, int flags);
void *shmat(int id, const void *address, int flags);
int shmdt(const void *address);
int shmctl(int id, int command, void *buffer);
int mkdir(const char *path, int mode);
int unlink(const char *path);
int rename(const char *from, const char *to);

int sigaction(int signal, const struct sigaction *action, struct sigaction *old);
sighandler_t signal(int signal, sighandler_t handler);
int raise(int signal);
int pause(void);
unsigned alarm(unsigned seconds);
int sigprocmask(int how, const sigset_t *set, sigset_t *old);
int sigpending(sigset_t *set);
int sigsuspend(const sigset_t *mask);
int sigemptyset(sigset_t *set);
int sigfillset(sigset_t *set);
int sigaddset(sigset_t *set, int signal);
int sigdelset(sigset_t *set, int signal);
int sigismember(const sigset_t *set, int signal);

size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
char *strcpy(char *to, const char *from);
void *memcpy(void *to, const void *from, size_t n);
void *memset(void *to, int value, size_t n);
long atol(const char *s);

int vsnprintf(char *out, size_t size, const char *format, va_list args);
int snprintf(char *out, size_t size, const char *format, ...);
int dprintf(int fd, const char *format, ...);
int printf(const char *format, ...);
int puts(const char *s);

void *malloc(size_t size);
void free(void *pointer);

#endif
