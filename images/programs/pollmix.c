/* pollmix: poll(2) and select(2) over a pipe and a UDP socket together. A child writes to the
 * pipe after 100 ms while the parent sleeps in select; then a datagram the parent sends to its
 * own socket (over 127.0.0.1) wakes poll; then select with nothing ready times out. Each step
 * prints what became ready. The socket is made and bound with the direct system calls (359,
 * 361), the rest through socketcall (102). */
#include "net.h"

int main(void) {
    int fds[2];
    if (pipe(fds) < 0) return 1;
    int sock = (int)syscall3(359, AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in any = {AF_INET, htons(6000), {INADDR_ANY}, {0}};
    struct sockaddr_in local = {AF_INET, htons(6000), {inet_addr("127.0.0.1")}, {0}};
    if (sock < 0 || syscall3(361, sock, (long)&any, sizeof any) < 0) {
        dprintf(2, "pollmix: socket/bind failed\n");
        return 1;
    }
    if (fork() == 0) {
        struct timespec nap = {0, 100000000};
        nanosleep(&nap, 0);
        write(fds[1], "x", 1);
        exit(0);
    }
    fd_set readable;
    FD_ZERO(&readable);
    FD_SET(fds[0], &readable);
    FD_SET(sock, &readable);
    struct timeval limit = {5, 0};
    int ready = select(sock + 1, &readable, 0, 0, &limit);
    printf("select: %d ready, pipe %d, socket %d\n", ready, FD_ISSET(fds[0], &readable),
           FD_ISSET(sock, &readable));
    char byte;
    read(fds[0], &byte, 1);

    sendto(sock, "ping", 4, 0, &local, sizeof local);
    struct pollfd both[2] = {{fds[0], POLLIN, 0}, {sock, POLLIN, 0}};
    ready = poll(both, 2, 5000);
    printf("poll: %d ready, pipe %d, socket %d\n", ready, both[0].revents, both[1].revents);
    char text[8] = {0};
    recv(sock, text, sizeof text - 1, 0);
    printf("datagram: %s\n", text);

    FD_ZERO(&readable);
    FD_SET(fds[0], &readable);
    FD_SET(sock, &readable);
    limit.tv_sec = 0;
    limit.tv_usec = 200000;
    ready = select(sock + 1, &readable, 0, 0, &limit);
    printf("select with nothing ready: %d\n", ready);
    return 0;
}
