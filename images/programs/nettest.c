/* nettest: bulk transfers for measuring the network path from ring 3.
 *   nettest tcpsend IP PORT KIB   connect and send KIB KiB, then close
 *   nettest tcprecv PORT          accept one connection, count bytes until it closes
 *   nettest udprecv PORT COUNT    receive COUNT datagrams (an empty one ends early)
 *   nettest udprecvmm PORT COUNT  the same, BATCH at a time with recvmmsg(MSG_WAITFORONE), as
 *                                 market-data handlers read
 * Each prints one line with the byte or datagram count and the virtual time it took (for
 * datagrams: from the first to the last one counted). */
#include "net.h"

static long long now_us(void) {
    struct timespec t;
    clock_gettime(1, &t);
    return (long long)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static int fail(const char *what, int error) {
    dprintf(2, "nettest: %s: error %d\n", what, -error);
    return 1;
}

static int listening(int type, int port) {
    int fd = socket(AF_INET, type, 0), one = 1;
    if (fd < 0) return fd;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in local = {AF_INET, htons((unsigned short)port), {INADDR_ANY}, {0}};
    int result = bind(fd, &local, sizeof local);
    if (result < 0) return result;
    if (type == SOCK_STREAM && (result = listen(fd, 1)) < 0) return result;
    printf("nettest: ready on port %d\n", port);
    return fd;
}

static char buffer[65536];

#define BATCH 64
#define SLOT 1024 /* BATCH * SLOT = sizeof buffer */
static struct mmsghdr messages[BATCH];
static struct iovec pieces[BATCH];

/* Up to BATCH datagrams with one recvmmsg: how many came before an empty one (which ends the
 * count), or the error. */
static int take_batch(int fd) {
    for (int i = 0; i < BATCH; i++) {
        pieces[i].iov_base = buffer + i * SLOT;
        pieces[i].iov_len = SLOT;
        messages[i].msg_hdr = (struct msghdr){0, 0, &pieces[i], 1, 0, 0, 0};
    }
    int n = recvmmsg(fd, messages, BATCH, MSG_WAITFORONE, 0);
    if (n < 0) return n;
    for (int i = 0; i < n; i++)
        if (!messages[i].msg_len) return i;
    return n;
}

int main(int argc, char **argv) {
    if (argc >= 5 && !strcmp(argv[1], "tcpsend")) {
        struct sockaddr_in peer = {AF_INET, htons((unsigned short)atol(argv[3])),
                                   {inet_addr(argv[2])}, {0}};
        int fd = socket(AF_INET, SOCK_STREAM, 0), result;
        if (fd < 0) return fail("socket", fd);
        if ((result = connect(fd, &peer, sizeof peer)) < 0) return fail("connect", result);
        long long total = atol(argv[4]) * 1024LL, sent = 0, start = now_us();
        for (int i = 0; i < (int)sizeof buffer; i++) buffer[i] = (char)i;
        while (sent < total) {
            long chunk = total - sent < (long long)sizeof buffer ? (long)(total - sent)
                                                                 : (long)sizeof buffer;
            int n = (int)send(fd, buffer, chunk, 0);
            if (n < 0) return fail("send", n);
            sent += n;
        }
        close(fd);
        printf("nettest: sent %ld bytes in %ld us\n", (long)sent, (long)(now_us() - start));
        return 0;
    }
    if (argc >= 3 && !strcmp(argv[1], "tcprecv")) {
        int fd = listening(SOCK_STREAM, (int)atol(argv[2]));
        if (fd < 0) return fail("listen", fd);
        int client = accept(fd, 0, 0);
        if (client < 0) return fail("accept", client);
        long long total = 0, start = now_us();
        for (;;) {
            int n = (int)recv(client, buffer, sizeof buffer, 0);
            if (n < 0) return fail("recv", n);
            if (n == 0) break;
            total += n;
        }
        printf("nettest: received %ld bytes in %ld us\n", (long)total, (long)(now_us() - start));
        return 0;
    }
    if (argc >= 4 && (!strcmp(argv[1], "udprecv") || !strcmp(argv[1], "udprecvmm"))) {
        int fd = listening(SOCK_DGRAM, (int)atol(argv[2])), batch = argv[1][7] == 'm';
        if (fd < 0) return fail("bind", fd);
        long count = atol(argv[3]), seen = 0;
        long long start = 0, last = 0;
        while (seen < count) {
            int n = batch ? take_batch(fd) : (int)recv(fd, buffer, sizeof buffer, 0);
            if (n < 0) return fail(batch ? "recvmmsg" : "recv", n);
            if (n == 0) break;
            if (!batch) n = 1;
            last = now_us();
            if (!seen) start = last;
            seen += n;
        }
        printf("nettest: received %ld datagrams in %ld us\n", seen, (long)(last - start));
        return 0;
    }
    dprintf(2, "usage: nettest tcpsend IP PORT KIB | tcprecv PORT | udprecv[mm] PORT COUNT\n");
    return 2;
}
