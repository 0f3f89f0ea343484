/* shmring: a single-producer, single-consumer ring of words in shared memory.
 *   shmring [-m] [N]        fork: the parent produces N words (default 100000), the child
 *                           consumes them; a System V segment, or with -m an anonymous
 *                           MAP_SHARED mapping
 *   shmring produce KEY N   two unrelated processes meeting through the segment with KEY
 *   shmring consume KEY N   (start the producer in the background: it creates the segment)
 * The consumer prints how many words arrived and whether their checksum matches the one it
 * computes itself. A side that must wait yields the CPU a few times (the other side is
 * probably ready to run), then sleeps a millisecond at a time. */
#include "libc.h"

#define RING_WORDS 1024

struct ring {
    volatile unsigned head, tail; /* written only by the producer, the consumer */
    volatile unsigned ready;      /* the producer has attached and reset the ring */
    volatile unsigned joined;     /* the consumer has attached */
    unsigned words[RING_WORDS];
};

static unsigned word(unsigned i) { return i * 2654435761u + 12345; }

static void wait_a_little(unsigned *waits) {
    static const struct timespec millisecond = {0, 1000000};
    if (++*waits < 64)
        sched_yield();
    else
        nanosleep(&millisecond, NULL);
}

static void produce(struct ring *ring, unsigned count) {
    for (unsigned i = 0, waits = 0; i < count; i++, waits = 0) {
        while (ring->head - ring->tail == RING_WORDS) wait_a_little(&waits);
        ring->words[ring->head % RING_WORDS] = word(i);
        ring->head = ring->head + 1;
    }
}

static int consume(struct ring *ring, unsigned count) {
    unsigned sum = 0, expected = 0, got = 0, waits = 0;
    while (!ring->ready) wait_a_little(&waits);
    ring->joined = 1;
    for (unsigned i = 0; i < count; i++, waits = 0) {
        while (ring->tail == ring->head) wait_a_little(&waits);
        sum = sum * 31 + ring->words[ring->tail % RING_WORDS];
        ring->tail = ring->tail + 1;
        expected = expected * 31 + word(i);
        got++;
    }
    printf("shmring: consumer got %u words, checksum %x %s\n", got, sum,
           sum == expected ? "ok" : "MISMATCH");
    return sum == expected ? 0 : 1;
}

/* Attach the segment with `key` (made if `create`); its id goes to *id. */
static struct ring *attach(int key, int create, int *id_out) {
    int id = shmget(key, sizeof(struct ring), create ? IPC_CREAT | 0600 : 0);
    if (id < 0) {
        printf("shmring: shmget(%d) failed (%d)\n", key, id);
        exit(1);
    }
    struct ring *ring = shmat(id, NULL, 0);
    if (IS_ERROR(ring)) {
        printf("shmring: shmat failed (%d)\n", (int)(long)ring);
        exit(1);
    }
    *id_out = id;
    return ring;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "produce") == 0) {
        int id;
        struct ring *ring = attach(atol(argv[2]), 1, &id);
        ring->head = ring->tail = ring->joined = 0;
        ring->ready = 1;
        unsigned waits = 0;
        while (!ring->joined) wait_a_little(&waits);
        shmctl(id, IPC_RMID, NULL); /* both attached: the segment goes when both detach */
        produce(ring, atol(argv[3]));
        while (ring->tail != ring->head) wait_a_little(&waits); /* attached until drained */
        return shmdt(ring) == 0 ? 0 : 1;
    }
    if (argc == 4 && strcmp(argv[1], "consume") == 0) {
        int id;
        return consume(attach(atol(argv[2]), 0, &id), atol(argv[3]));
    }
    int anonymous = argc > 1 && strcmp(argv[1], "-m") == 0;
    unsigned count = argc > 1 + anonymous ? atol(argv[1 + anonymous]) : 100000;
    struct ring *ring;
    if (anonymous) {
        ring = mmap(NULL, sizeof *ring, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (IS_ERROR(ring)) {
            printf("shmring: mmap failed (%d)\n", (int)(long)ring);
            return 1;
        }
    } else {
        int id;
        ring = attach(IPC_PRIVATE, 1, &id);
        shmctl(id, IPC_RMID, NULL); /* the child inherits the attachment; gone after both */
    }
    ring->ready = 1;
    pid_t child = fork();
    if (child < 0) {
        printf("shmring: fork failed (%d)\n", child);
        return 1;
    }
    if (child == 0) return consume(ring, count);
    produce(ring, count);
    int status = 0;
    waitpid(child, &status, 0);
    printf("shmring: %s, consumer exit %d\n", anonymous ? "mmap MAP_SHARED" : "System V segment",
           (status >> 8) & 0xff);
    return 0;
}
