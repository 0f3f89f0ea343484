/* BSD sockets for TradeKernel programs: the usual calls as Linux i386's direct system calls
 * (359-373, recvmmsg 337), Linux i386 numbers and structures. Header-only, so programs that do
 * not use the network are unchanged. Like the rest of this libc, a failing call returns -errno. */
#ifndef TK_NET_H
#define TK_NET_H
#include "libc.h"

#define AF_INET 2
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define SOCK_NONBLOCK 04000
#define IPPROTO_IP 0
#define IPPROTO_TCP 6
#define SOL_SOCKET 1
#define SO_REUSEADDR 2
#define TCP_NODELAY 1
#define IP_ADD_MEMBERSHIP 35
#define INADDR_ANY 0u
#define SHUT_WR 1
#define POLLIN 0x1
#define POLLOUT 0x4
#define POLLERR 0x8
#define POLLHUP 0x10

typedef unsigned int socklen_t;
struct in_addr { unsigned int s_addr; };
struct sockaddr_in {
    unsigned short sin_family;
    unsigned short sin_port; /* network byte order */
    struct in_addr sin_addr; /* network byte order */
    unsigned char sin_zero[8];
};
struct sockaddr { unsigned short sa_family; char sa_data[14]; };
struct ip_mreq { struct in_addr imr_multiaddr; struct in_addr imr_interface; };
struct pollfd { int fd; short events; short revents; };

static inline unsigned short htons(unsigned short v) { return (unsigned short)(v << 8 | v >> 8); }
static inline unsigned short ntohs(unsigned short v) { return htons(v); }

/* "a.b.c.d" -> network order, or 0xffffffff (INADDR_NONE) */
static inline unsigned int inet_addr(const char *text) {
    unsigned int parts[4] = {0, 0, 0, 0};
    int part = 0, digits = 0;
    for (; *text; text++) {
        if (*text == '.' && digits && part < 3) { part++; digits = 0; continue; }
        if (*text < '0' || *text > '9' || ++digits > 3) return 0xffffffffu;
        parts[part] = parts[part] * 10 + (unsigned)(*text - '0');
        if (parts[part] > 255) return 0xffffffffu;
    }
    if (part != 3 || !digits) return 0xffffffffu;
    return parts[0] | parts[1] << 8 | parts[2] << 16 | parts[3] << 24;
}

/* The direct system calls (Linux i386 since 4.3): the arguments in registers, where socketcall
 * (102) has the kernel copy an argument block from user memory first. socketcall stays for
 * programs that use it as older libcs do. */
static inline long socketcall(int call, long *args) { return syscall2(102, call, (long)args); }
static inline long syscall5(long n, long a, long b, long c, long d, long e) {
    long result;
    __asm__ volatile("int $0x80"
                     : "=a"(result)
                     : "a"(n), "b"(a), "c"(b), "d"(c), "S"(d), "D"(e)
                     : "memory");
    return result;
}
/* The sixth argument goes in EBP, which may be the frame pointer and leaves no register free
 * for a seventh operand: EAX brings the address of {number, sixth}, both loaded from there
 * once EBP is saved. */
static inline long syscall6(long n, long a, long b, long c, long d, long e, long f) {
    long result;
    long block[2] = {n, f};
    __asm__ volatile("pushl %%ebp\n\t"
                     "movl 4(%%eax), %%ebp\n\t"
                     "movl (%%eax), %%eax\n\t"
                     "int $0x80\n\t"
                     "popl %%ebp"
                     : "=a"(result)
                     : "0"(block), "b"(a), "c"(b), "d"(c), "S"(d), "D"(e), "m"(block)
                     : "memory");
    return result;
}
#define SYS_socket 359
#define SYS_bind 361
#define SYS_connect 362
#define SYS_listen 363
#define SYS_accept4 364
#define SYS_setsockopt 366
#define SYS_sendto 369
#define SYS_recvfrom 371
#define SYS_shutdown 373
#define SYS_recvmmsg 337

static inline int socket(int family, int type, int protocol) {
    return (int)syscall3(SYS_socket, family, type, protocol);
}
static inline int bind(int fd, const void *address, socklen_t length) {
    return (int)syscall3(SYS_bind, fd, (long)address, (long)length);
}
static inline int connect(int fd, const void *address, socklen_t length) {
    return (int)syscall3(SYS_connect, fd, (long)address, (long)length);
}
static inline int listen(int fd, int backlog) { return (int)syscall2(SYS_listen, fd, backlog); }
static inline int accept(int fd, void *address, socklen_t *length) {
    return (int)syscall4(SYS_accept4, fd, (long)address, (long)length, 0);
}
static inline ssize_t sendto(int fd, const void *buffer, size_t count, int flags,
                             const void *address, socklen_t length) {
    return syscall6(SYS_sendto, fd, (long)buffer, (long)count, flags, (long)address,
                    (long)length);
}
static inline ssize_t recvfrom(int fd, void *buffer, size_t count, int flags, void *address,
                               socklen_t *length) {
    return syscall6(SYS_recvfrom, fd, (long)buffer, (long)count, flags, (long)address,
                    (long)length);
}
static inline ssize_t send(int fd, const void *buffer, size_t count, int flags) {
    return sendto(fd, buffer, count, flags, 0, 0);
}
static inline ssize_t recv(int fd, void *buffer, size_t count, int flags) {
    return recvfrom(fd, buffer, count, flags, 0, 0);
}
static inline int shutdown(int fd, int how) { return (int)syscall2(SYS_shutdown, fd, how); }
static inline int setsockopt(int fd, int level, int name, const void *value, socklen_t length) {
    return (int)syscall5(SYS_setsockopt, fd, level, name, (long)value, (long)length);
}
typedef struct { unsigned int bits[32]; } fd_set; /* FD_SETSIZE 1024 */
struct timeval { long tv_sec; long tv_usec; };
#define FD_ZERO(set) memset((set), 0, sizeof(fd_set))
#define FD_SET(fd, set) ((set)->bits[(fd) / 32] |= 1u << ((fd) % 32))
#define FD_ISSET(fd, set) (((set)->bits[(fd) / 32] >> ((fd) % 32)) & 1u)

static inline int select(int count, fd_set *read, fd_set *write, fd_set *except,
                         struct timeval *timeout) {
    long result;
    __asm__ volatile("int $0x80"
                     : "=a"(result)
                     : "a"(142), "b"(count), "c"(read), "d"(write), "S"(except), "D"(timeout)
                     : "memory");
    return (int)result;
}
static inline int poll(struct pollfd *fds, unsigned int count, int timeout_ms) {
    return (int)syscall3(168, (long)fds, (long)count, timeout_ms);
}

/* recvmmsg(2): many datagrams in one call, as market-data handlers take them */
#define MSG_DONTWAIT 0x40
#define MSG_WAITFORONE 0x10000
struct iovec { void *iov_base; size_t iov_len; };
struct msghdr {
    void *msg_name;
    socklen_t msg_namelen;
    struct iovec *msg_iov;
    size_t msg_iovlen;
    void *msg_control;
    size_t msg_controllen;
    int msg_flags;
};
struct mmsghdr { struct msghdr msg_hdr; unsigned int msg_len; };
static inline int recvmmsg(int fd, struct mmsghdr *vector, unsigned int count, int flags,
                           struct timespec *timeout) {
    return (int)syscall5(SYS_recvmmsg, fd, (long)vector, (long)count, flags, (long)timeout);
}
#endif
