/* mmaptest: anonymous mappings as Linux gives them. Prints one line per check, "ok" or
 * "FAIL", then "mmaptest: N failures". With "protect" it ends by writing to a page it made
 * read-only, so the kernel must kill it with a segmentation fault. */
#include "libc.h"

static int failures;

static void check(const char *what, int ok) {
    printf("mmaptest: %s %s\n", what, ok ? "ok" : "FAIL");
    if (!ok) failures++;
}

int main(int argc, char **argv) {
    size_t size = 1 << 20;
    unsigned char *private = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                                  -1, 0);
    check("private mapping", !IS_ERROR(private));
    if (IS_ERROR(private)) return 1;
    int zero = 1;
    for (size_t i = 0; i < size; i += 4096) zero &= private[i] == 0;
    check("zero filled", zero);
    for (size_t i = 0; i < size; i++) private[i] = (unsigned char)(i * 13);
    int *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    check("shared mapping", !IS_ERROR(shared));
    *shared = 1;
    pid_t child = fork();
    if (child == 0) {
        private[0] = 99; /* the parent must not see this: private means copy-on-write */
        *shared = 2;     /* but this it must */
        exit(private[1] == 13 ? 0 : 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    check("child saw the parent's data", status == 0);
    check("private stays private", private[0] == 0);
    check("shared is shared", *shared == 2);
    check("bad length", mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) ==
                            (void *)-22);
    check("files need a mapping kind this kernel lacks",
          mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, 0, 0) == (void *)-19);
    check("bad argument block", syscall1(SYS_mmap, 16) == -14);
    check("more than memory holds",
          mmap(NULL, 1u << 30, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == (void *)-12);
    unsigned char *fixed = mmap(private + 8192, 4096, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    check("MAP_FIXED replaces a page",
          fixed == private + 8192 && fixed[0] == 0 && private[8193 + 4096] == (unsigned char)((8193 + 4096) * 13));
    check("munmap", munmap(private, size) == 0);
    check("munmap again", munmap(private, size) == 0);
    check("write from unmapped memory", write(1, private, 1) == -14);
    check("mprotect unmapped", mprotect(private, 4096, PROT_READ) == -12);
    int key = 4242;
    int id = shmget(key, 8192, IPC_CREAT | 0600);
    check("shmget", id >= 0);
    int *first = shmat(id, NULL, 0), *second = shmat(id, NULL, 0);
    check("shmat twice", !IS_ERROR(first) && !IS_ERROR(second) && first != second);
    first[1000] = 77;
    check("one segment, two addresses", second[1000] == 77);
    unsigned stat[21];
    check("shmctl IPC_STAT", shmctl(id, IPC_STAT | IPC_64, stat) == 0 && stat[9] == 8192 &&
                                 stat[18] == 2);
    check("shmget finds the key", shmget(key, 4096, 0) == id);
    check("shmctl IPC_RMID", shmctl(id, IPC_RMID, NULL) == 0);
    check("removed key is gone", shmget(key, 4096, 0) == -2);
    check("still attached after IPC_RMID", second[1000] == 77);
    check("shmdt", shmdt(first) == 0 && shmdt(second) == 0);
    check("segment gone after the last shmdt", shmctl(id, IPC_STAT | IPC_64, stat) == -22);
    printf("mmaptest: %d failures\n", failures);
    if (argc > 1 && strcmp(argv[1], "protect") == 0) {
        int *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        *page = 1;
        mprotect(page, 4096, PROT_READ);
        printf("mmaptest: read-only page reads %d; writing it\n", *page);
        *page = 2;
        printf("mmaptest: FAIL: the write went through\n");
    }
    return failures != 0;
}
