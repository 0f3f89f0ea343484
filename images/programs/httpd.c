/* httpd PORT [REQUESTS]: a small HTTP/1.0 file server. Answers REQUESTS requests (default 1),
 * one connection at a time: `GET /PATH` sends the file at /PATH on the volume with a 200 and
 * closes the connection at its end (HTTP/1.0: no Content-Length needed); a file that does not
 * open gets a 404, another method a 501, a request line that is not there within the first
 * REQUEST_MAX bytes a 400. Prints one line per request: the status, the path and the bytes
 * of the body sent. */
#include "net.h"

#define REQUEST_MAX 2048
#define PATH_MAX 256

static char request[REQUEST_MAX + 1];
static char buffer[16384];

static int send_all(int fd, const char *data, int count) {
    for (int done = 0; done < count;) {
        int sent = (int)send(fd, data + done, count - done, 0);
        if (sent < 0) return sent;
        done += sent;
    }
    return count;
}

static int reply_status(int fd, const char *status) {
    int length = snprintf(buffer, sizeof buffer,
                          "HTTP/1.0 %s\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
                          "%s\n", status, status);
    return send_all(fd, buffer, length);
}

/* The request head up to its blank line (NUL-terminated in `request`), or -1. */
static int read_head(int fd) {
    int have = 0;
    while (have < REQUEST_MAX) {
        int n = (int)recv(fd, request + have, REQUEST_MAX - have, 0);
        if (n <= 0) return -1;
        have += n;
        request[have] = 0;
        for (int i = 3; i < have; i++)
            if (request[i - 3] == '\r' && request[i - 2] == '\n' && request[i - 1] == '\r' &&
                request[i] == '\n')
                return have;
    }
    return -1;
}

static void serve(int client) {
    char path[PATH_MAX];
    if (read_head(client) < 0) {
        reply_status(client, "400 Bad Request");
        printf("httpd: 400 (no request head)\n");
        return;
    }
    if (request[0] != 'G' || request[1] != 'E' || request[2] != 'T' || request[3] != ' ') {
        reply_status(client, "501 Not Implemented");
        printf("httpd: 501 (not GET)\n");
        return;
    }
    int length = 0;
    for (const char *p = request + 4; *p && *p != ' ' && *p != '\r'; p++) {
        if (length == PATH_MAX - 1) {
            reply_status(client, "400 Bad Request");
            printf("httpd: 400 (path too long)\n");
            return;
        }
        path[length++] = *p;
    }
    path[length] = 0;
    int file = path[0] == '/' ? open(path, O_RDONLY) : -1;
    if (file < 0) {
        reply_status(client, "404 Not Found");
        printf("httpd: 404 %s\n", path);
        return;
    }
    const char *head = "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n"
                       "Connection: close\r\n\r\n";
    long total = 0;
    int n = send_all(client, head, (int)strlen(head));
    while (n >= 0 && (n = (int)read(file, buffer, sizeof buffer)) > 0) {
        if (send_all(client, buffer, n) < 0) break;
        total += n;
    }
    close(file);
    printf("httpd: 200 %s %ld bytes\n", path, total);
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        dprintf(2, "usage: httpd PORT [REQUESTS]\n");
        return 2;
    }
    int port = (int)atol(argv[1]), requests = argc == 3 ? (int)atol(argv[2]) : 1;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd < 0) {
        dprintf(2, "httpd: socket: error %d\n", -fd);
        return 1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in local = {AF_INET, htons((unsigned short)port), {INADDR_ANY}, {0}};
    int result = bind(fd, &local, sizeof local);
    if (result < 0 || (result = listen(fd, 4)) < 0) {
        dprintf(2, "httpd: port %d: error %d\n", port, -result);
        return 1;
    }
    printf("httpd: listening on port %d\n", port);
    for (int served = 0; served < requests; served++) {
        int client = accept(fd, 0, 0);
        if (client < 0) {
            dprintf(2, "httpd: accept: error %d\n", -client);
            return 1;
        }
        serve(client);
        shutdown(client, SHUT_WR);
        while (recv(client, buffer, sizeof buffer, 0) > 0) {
        }  /* the client's close, so the last bytes are not reset away */
        close(client);
    }
    close(fd);
    return 0;
}
