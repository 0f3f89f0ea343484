/* sockpair: socketpair(2) from ring 3, over socketcall(8) as a libc does. One message each way,
 * the refusals Linux gives, 1 MiB from a forked child through the pair (blocking writes and
 * reads, checked byte by byte), end of stream once the writer is gone, EPIPE with MSG_NOSIGNAL,
 * then SIGPIPE for a plain write: the last line must never print. */
#include "net.h"

#define MSG_NOSIGNAL 0x4000
#define TOTAL (1 << 20)

static int socketpair(int family, int type, int protocol, int sv[2]) {
    long a[4] = {family, type, protocol, (long)sv};
    return (int)socketcall(8, a);
}

static char out[4000], in[3000];

int main(void) {
    int sv[2], bad[2];
    int result = socketpair(1, 1, 0, sv);
    printf("socketpair %d\n", result);
    if (result < 0) return 1;
    char buffer[8] = {0};
    write(sv[0], "ping", 4);
    int n = (int)read(sv[1], buffer, sizeof buffer - 1);
    printf("read %d %s\n", n, buffer);
    write(sv[1], "pong", 4);
    n = (int)recv(sv[0], buffer, sizeof buffer - 1, 0);
    printf("recv %d %s\n", n, buffer);
    printf("inet %d dgram %d proto %d\n", socketpair(2, 1, 0, bad), socketpair(1, 2, 0, bad),
           socketpair(1, 1, 6, bad));
    pid_t child = fork();
    if (child == 0) {
        close(sv[1]);
        int sent = 0;
        while (sent < TOTAL) {
            int chunk = TOTAL - sent < (int)sizeof out ? TOTAL - sent : (int)sizeof out;
            for (int i = 0; i < chunk; i++) out[i] = (char)((sent + i) * 7);
            int k = (int)write(sv[0], out, chunk);
            if (k <= 0) exit(3);
            sent += k;
        }
        exit(0);
    }
    close(sv[0]);
    int got = 0, wrong = 0;
    for (;;) {
        n = (int)read(sv[1], in, sizeof in);
        if (n <= 0) break;
        for (int i = 0; i < n; i++) wrong += in[i] != (char)((got + i) * 7);
        got += n;
    }
    int status = -1;
    waitpid(child, &status, 0);
    printf("got %d wrong %d end %d child %d\n", got, wrong, n, status);
    printf("nosignal %d\n", (int)send(sv[1], "x", 1, MSG_NOSIGNAL));
    write(sv[1], "x", 1);
    printf("not reached\n");
    return 0;
}
