/* nc: netcat-traditional's basic forms. `nc HOST PORT` connects, `nc -l -p PORT` listens for
 * one peer; `-u` uses UDP (a listener answers whoever sent the first datagram). Standard input
 * goes to the peer (its end shuts our sending side down, TCP), the peer's bytes go to standard
 * output, until the peer closes. Waits in poll(2) on both. HOST is an IPv4 address. */
#include "net.h"

static char buffer[4096];

static int usage(void) {
    dprintf(2, "usage: nc [-u] HOST PORT | nc [-u] -l -p PORT\n");
    return 2;
}

int main(int argc, char **argv) {
    int udp = 0, listening = 0, port = 0;
    const char *host = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-u")) udp = 1;
        else if (!strcmp(argv[i], "-l")) listening = 1;
        else if (!strcmp(argv[i], "-p") && i + 1 < argc) port = (int)atol(argv[++i]);
        else if (!host && !listening) host = argv[i];
        else if (!port) port = (int)atol(argv[i]);
        else return usage();
    }
    if (port <= 0 || port > 65535 || (!listening && !host)) return usage();
    int fd = socket(AF_INET, udp ? SOCK_DGRAM : SOCK_STREAM, 0), result;
    if (fd < 0) {
        dprintf(2, "nc: socket: error %d\n", -fd);
        return 1;
    }
    struct sockaddr_in address = {AF_INET, htons((unsigned short)port), {INADDR_ANY}, {0}};
    int first = 0; /* a UDP listener's first datagram, already read into buffer */
    if (listening) {
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if ((result = bind(fd, &address, sizeof address)) < 0 ||
            (!udp && (result = listen(fd, 1)) < 0)) {
            dprintf(2, "nc: port %d: error %d\n", port, -result);
            return 1;
        }
        if (udp) {
            socklen_t length = sizeof address;
            first = (int)recvfrom(fd, buffer, sizeof buffer, 0, &address, &length);
            if (first < 0 || (result = connect(fd, &address, sizeof address)) < 0) {
                dprintf(2, "nc: receive: error %d\n", first < 0 ? -first : -result);
                return 1;
            }
            write(1, buffer, first);
        } else {
            int peer = accept(fd, 0, 0);
            if (peer < 0) {
                dprintf(2, "nc: accept: error %d\n", -peer);
                return 1;
            }
            close(fd);
            fd = peer;
        }
    } else {
        address.sin_addr.s_addr = inet_addr(host);
        if (address.sin_addr.s_addr == 0xffffffffu) {
            dprintf(2, "nc: %s: not an IPv4 address\n", host);
            return 1;
        }
        if ((result = connect(fd, &address, sizeof address)) < 0) {
            dprintf(2, "nc: %s %d: error %d\n", host, port, -result);
            return 1;
        }
    }
    int input_open = 1;
    for (;;) {
        struct pollfd wait[2] = {{fd, POLLIN, 0}, {input_open ? 0 : -1, POLLIN, 0}};
        if (poll(wait, 2, -1) < 0) return 1;
        if (wait[0].revents) {
            int n = (int)recv(fd, buffer, sizeof buffer, 0);
            if (n <= 0) break; /* the peer closed (or failed) */
            write(1, buffer, n);
        }
        if (input_open && wait[1].revents) {
            int n = (int)read(0, buffer, sizeof buffer);
            if (n <= 0) {
                input_open = 0;
                if (!udp) shutdown(fd, SHUT_WR);
                else break;
                continue;
            }
            for (int done = 0; done < n;) {
                int sent = (int)send(fd, buffer + done, n - done, 0);
                if (sent < 0) {
                    dprintf(2, "nc: send: error %d\n", -sent);
                    return 1;
                }
                done += sent;
            }
        }
    }
    close(fd);
    return 0;
}
