/* illegal [ud2|cli|hlt|in|out]: an instruction ring 3 may not run (ud2 is the default). */
#include "libc.h"

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "ud2";
    printf("illegal: trying %s\n", what);
    if (!strcmp(what, "cli")) __asm__ volatile("cli");
    else if (!strcmp(what, "hlt")) __asm__ volatile("hlt");
    else if (!strcmp(what, "in")) __asm__ volatile("inb $0x60, %%al" ::: "eax");
    else if (!strcmp(what, "out")) __asm__ volatile("outb %%al, $0x80" ::: "eax");
    else __asm__ volatile("ud2");
    printf("illegal: %s did not fault\n", what);
    return 1;
}
