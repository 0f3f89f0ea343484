/* httpget IP PORT PATH: an HTTP/1.0 GET over a TCP socket; the reply's body goes to standard
 * output, the status line to standard error. Exit status 0 for a 200, 1 otherwise. */
#include "net.h"

static int all(int fd, const char *data, int count) {
    while (count > 0) {
        int sent = (int)send(fd, data, count, 0);
        if (sent < 0) return sent;
        data += sent;
        count -= sent;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        dprintf(2, "usage: httpget IP PORT PATH\n");
        return 2;
    }
    struct sockaddr_in peer = {AF_INET, htons((unsigned short)atol(argv[2])), {inet_addr(argv[1])}, {0}};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        dprintf(2, "httpget: socket: error %d\n", -fd);
        return 1;
    }
    int result = connect(fd, &peer, sizeof peer);
    if (result < 0) {
        dprintf(2, "httpget: connect %s:%s: error %d\n", argv[1], argv[2], -result);
        return 1;
    }
    char request[512];
    int length = snprintf(request, sizeof request, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", argv[3],
                          argv[1]);
    if ((result = all(fd, request, length)) < 0) {
        dprintf(2, "httpget: send: error %d\n", -result);
        return 1;
    }
    static char buffer[4096];
    int in_body = 0, matched = 0, ok = 0, first = 1;
    for (;;) {
        int count = (int)recv(fd, buffer, sizeof buffer, 0);
        if (count < 0) {
            dprintf(2, "httpget: recv: error %d\n", -count);
            return 1;
        }
        if (count == 0) break;
        int start = 0;
        if (first) {
            first = 0;
            int end = 0;
            while (end < count && buffer[end] != '\r' && buffer[end] != '\n') end++;
            write(2, buffer, end);
            write(2, "\n", 1);
            ok = count > 12 && buffer[9] == '2' && buffer[10] == '0' && buffer[11] == '0';
        }
        if (!in_body) {
            static const char blank[] = "\r\n\r\n";
            for (; start < count && !in_body; start++) {
                matched = buffer[start] == blank[matched] ? matched + 1
                                                          : (buffer[start] == '\r' ? 1 : 0);
                in_body = matched == 4;
            }
        }
        if (in_body && start < count) write(1, buffer + start, count - start);
    }
    close(fd);
    return ok ? 0 : 1;
}
