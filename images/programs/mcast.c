/* mcast listen GROUP PORT COUNT: join a UDP multicast group (as a market-data client does) and
 * print COUNT datagrams with their senders, waiting in poll(2) with a 10 s timeout each.
 * mcast send GROUP PORT TEXT: send TEXT to the group once (TTL 1). */
#include "net.h"

#define WAIT_MS 10000

static void print_address(unsigned int address) {
    unsigned char *b = (unsigned char *)&address;
    printf("%d.%d.%d.%d", b[0], b[1], b[2], b[3]);
}

static int listen_group(int fd, struct sockaddr_in *group, int count) {
    int result = bind(fd, &(struct sockaddr_in){AF_INET, group->sin_port, {INADDR_ANY}, {0}},
                      sizeof *group);
    if (result < 0) {
        dprintf(2, "mcast: bind: error %d\n", -result);
        return 1;
    }
    struct ip_mreq membership = {group->sin_addr, {INADDR_ANY}};
    result = setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &membership, sizeof membership);
    if (result < 0) {
        dprintf(2, "mcast: join: error %d\n", -result);
        return 1;
    }
    printf("mcast: joined, waiting for %d datagrams\n", count);
    static char buffer[2048];
    for (int seen = 0; seen < count; seen++) {
        struct pollfd wait = {fd, POLLIN, 0};
        result = poll(&wait, 1, WAIT_MS);
        if (result <= 0) {
            dprintf(2, "mcast: %s after %d datagrams\n", result == 0 ? "timed out" : "poll failed",
                    seen);
            return 1;
        }
        struct sockaddr_in sender;
        socklen_t length = sizeof sender;
        int size = (int)recvfrom(fd, buffer, sizeof buffer - 1, 0, &sender, &length);
        if (size < 0) {
            dprintf(2, "mcast: recvfrom: error %d\n", -size);
            return 1;
        }
        buffer[size] = 0;
        printf("from ");
        print_address(sender.sin_addr.s_addr);
        printf(":%d: %s\n", ntohs(sender.sin_port), buffer);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 5 || (strcmp(argv[1], "listen") && strcmp(argv[1], "send"))) {
        dprintf(2, "usage: mcast listen GROUP PORT COUNT | mcast send GROUP PORT TEXT\n");
        return 2;
    }
    struct sockaddr_in group = {AF_INET, htons((unsigned short)atol(argv[3])),
                                {inet_addr(argv[2])}, {0}};
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
        dprintf(2, "mcast: socket: error %d\n", -fd);
        return 1;
    }
    if (!strcmp(argv[1], "listen")) return listen_group(fd, &group, (int)atol(argv[4]));
    int sent = (int)sendto(fd, argv[4], strlen(argv[4]), 0, &group, sizeof group);
    if (sent < 0) {
        dprintf(2, "mcast: sendto: error %d\n", -sent);
        return 1;
    }
    return 0;
}
