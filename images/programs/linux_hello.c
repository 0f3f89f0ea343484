/* linux_hello: a static Linux i386 program with no TradeKernel code at all: raw int 0x80
 * calls by Linux's numbers (write = 4, exit_group = 252). The same binary runs on Linux. */
static const char message[] = "hello from a plain Linux binary\n";

static long linux_syscall3(long number, long a, long b, long c) {
    long result;
    __asm__ volatile("int $0x80" : "=a"(result) : "a"(number), "b"(a), "c"(b), "d"(c) : "memory");
    return result;
}

void _start(void) {
    linux_syscall3(4, 1, (long)message, sizeof message - 1);
    linux_syscall3(252, 0, 0, 0);
    for (;;) {}
}
