/* tcpecho PORT [CONNECTIONS]: a TCP echo server. Accepts CONNECTIONS clients (default 1) one
 * after the other, sends back every byte each one sends until it closes, then exits. */
#include "net.h"

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        dprintf(2, "usage: tcpecho PORT [CONNECTIONS]\n");
        return 2;
    }
    int port = (int)atol(argv[1]), clients = argc == 3 ? (int)atol(argv[2]) : 1;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd < 0) {
        dprintf(2, "tcpecho: socket: error %d\n", -fd);
        return 1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in local = {AF_INET, htons((unsigned short)port), {INADDR_ANY}, {0}};
    int result = bind(fd, &local, sizeof local);
    if (result < 0 || (result = listen(fd, 4)) < 0) {
        dprintf(2, "tcpecho: port %d: error %d\n", port, -result);
        return 1;
    }
    printf("tcpecho: listening on port %d\n", port);
    static char buffer[8192];
    for (int served = 0; served < clients; served++) {
        struct sockaddr_in peer;
        socklen_t length = sizeof peer;
        int client = accept(fd, &peer, &length);
        if (client < 0) {
            dprintf(2, "tcpecho: accept: error %d\n", -client);
            return 1;
        }
        long total = 0;
        for (;;) {
            int count = (int)recv(client, buffer, sizeof buffer, 0);
            if (count <= 0) break;
            for (int done = 0; done < count;) {
                int sent = (int)send(client, buffer + done, count - done, 0);
                if (sent < 0) break;
                done += sent;
            }
            total += count;
        }
        close(client);
        printf("tcpecho: echoed %ld bytes\n", total);
    }
    close(fd);
    return 0;
}
