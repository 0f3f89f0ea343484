/* fpu [ROUNDS [SPIN]]: x87 and SSE state must belong to each process.
 * Checks a clean start (FCW 0x037F, FSW 0, MXCSR 0x1F80, xmm0-7 zero), forks with live FPU
 * state (the child must inherit it), then parent and child each keep their own values in
 * xmm0-xmm7, MXCSR, FCW and four x87 registers for ROUNDS rounds of sched_yield, and each
 * round also adds SPIN times in st0 and xmm7 with no system call, so timer preemption lands
 * while the registers are in use. Every round checks everything. The compiler never uses
 * the FPU here (-march=i386, no floating point in C), so the registers are the asm's alone. */
#include "libc.h"

typedef struct { unsigned v[4]; } xmm_t;

static void load_state(const xmm_t x[8], const int st[4], unsigned mxcsr, unsigned short fcw) {
    __asm__ volatile(
        "movups 0(%0), %%xmm0\n movups 16(%0), %%xmm1\n movups 32(%0), %%xmm2\n"
        "movups 48(%0), %%xmm3\n movups 64(%0), %%xmm4\n movups 80(%0), %%xmm5\n"
        "movups 96(%0), %%xmm6\n movups 112(%0), %%xmm7\n"
        "fninit\n fildl 12(%1)\n fildl 8(%1)\n fildl 4(%1)\n fildl 0(%1)\n"
        "ldmxcsr %2\n fldcw %3\n"
        : : "r"(x), "r"(st), "m"(mxcsr), "m"(fcw) : "memory");
}

static void read_sse(xmm_t x[8], unsigned *mxcsr, unsigned short *fcw, unsigned short *fsw) {
    __asm__ volatile(
        "movups %%xmm0, 0(%0)\n movups %%xmm1, 16(%0)\n movups %%xmm2, 32(%0)\n"
        "movups %%xmm3, 48(%0)\n movups %%xmm4, 64(%0)\n movups %%xmm5, 80(%0)\n"
        "movups %%xmm6, 96(%0)\n movups %%xmm7, 112(%0)\n"
        "stmxcsr %1\n fnstcw %2\n fnstsw %3\n"
        : : "r"(x), "m"(*mxcsr), "m"(*fcw), "m"(*fsw) : "memory");
}

/* Also st0-st3, without popping them (fld st(i) then fistp). */
static void read_state(xmm_t x[8], int st[4], unsigned *mxcsr, unsigned short *fcw) {
    unsigned short fsw;
    read_sse(x, mxcsr, fcw, &fsw);
    __asm__ volatile(
        "fld %%st(0)\n fistpl 0(%0)\n fld %%st(1)\n fistpl 4(%0)\n"
        "fld %%st(2)\n fistpl 8(%0)\n fld %%st(3)\n fistpl 12(%0)\n"
        : : "r"(st) : "memory");
}

/* st0 += st1 and xmm7 += xmm6 (dwords), `count` times, all in registers. */
static void spin_add(long count) {
    if (count <= 0) return;
    __asm__ volatile("1:\n fadd %%st(1), %%st(0)\n paddd %%xmm6, %%xmm7\n dec %0\n jnz 1b\n"
                     : "+r"(count) : : "cc");
}

struct state {
    xmm_t x[8];
    int st[4];
    unsigned mxcsr;
    unsigned short fcw;
};

static void pattern(struct state *s, unsigned seed) {
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 4; j++) s->x[i].v[j] = seed * 0x01010101u + i * 16 + j;
    for (int i = 0; i < 4; i++) s->st[i] = (int)(seed * 100 + i);
    s->st[1] = 1; /* the increment st0 gets from spin_add */
    for (int j = 0; j < 4; j++) s->x[6].v[j] = j + 1; /* xmm7's increment */
    s->mxcsr = seed & 1 ? 0x7F80 : 0x3F80; /* round toward zero / down */
    s->fcw = seed & 1 ? 0x0F7F : 0x077F;
}

static int differs(const char *who, long round, const struct state *want) {
    struct state got;
    read_state(got.x, got.st, &got.mxcsr, &got.fcw);
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 4; j++)
            if (got.x[i].v[j] != want->x[i].v[j]) {
                printf("fpu: %s round %ld: xmm%d[%d] = 0x%x, want 0x%x\n", who, round, i, j,
                       got.x[i].v[j], want->x[i].v[j]);
                return 1;
            }
    for (int i = 0; i < 4; i++)
        if (got.st[i] != want->st[i]) {
            printf("fpu: %s round %ld: st%d = %d, want %d\n", who, round, i, got.st[i],
                   want->st[i]);
            return 1;
        }
    if (got.mxcsr != want->mxcsr || got.fcw != want->fcw) {
        printf("fpu: %s round %ld: mxcsr 0x%x fcw 0x%x, want 0x%x 0x%x\n", who, round, got.mxcsr,
               got.fcw, want->mxcsr, want->fcw);
        return 1;
    }
    return 0;
}

static int run(const char *who, unsigned seed, long rounds, long spin) {
    struct state s;
    pattern(&s, seed);
    load_state(s.x, s.st, s.mxcsr, s.fcw);
    for (long round = 0; round < rounds; round++) {
        sched_yield();
        spin_add(spin);
        s.st[0] += spin;
        for (int j = 0; j < 4; j++) s.x[7].v[j] += (unsigned)spin * (j + 1);
        if (differs(who, round, &s)) return 1;
    }
    printf("fpu: %s: %ld rounds ok\n", who, rounds);
    return 0;
}

int main(int argc, char **argv) {
    long rounds = argc > 1 ? atol(argv[1]) : 1000;
    long spin = argc > 2 ? atol(argv[2]) : 0;
    struct state clean;
    unsigned short fsw;
    read_sse(clean.x, &clean.mxcsr, &clean.fcw, &fsw);
    int dirty = clean.mxcsr != 0x1F80 || clean.fcw != 0x037F || fsw != 0;
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 4; j++) dirty |= clean.x[i].v[j] != 0;
    printf("fpu: %s start (mxcsr 0x%x fcw 0x%x fsw 0x%x)\n", dirty ? "dirty" : "clean",
           clean.mxcsr, clean.fcw, fsw);
    struct state before;
    pattern(&before, 0x5A);
    load_state(before.x, before.st, before.mxcsr, before.fcw);
    pid_t child = fork();
    if (child < 0) {
        printf("fpu: fork failed (%d)\n", child);
        return 1;
    }
    if (child == 0) {
        if (differs("child after fork", 0, &before)) return 1;
        return run("child", 0xC3, rounds, spin);
    }
    int failed = run("parent", 0x96, rounds, spin);
    int status = 0;
    waitpid(child, &status, 0);
    printf("fpu: child exit %d\n", (status >> 8) & 0xff);
    return failed || status != 0;
}
