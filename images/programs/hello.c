/* hello: the first program: one line through write(2). */
#include "libc.h"

int main(void) {
    printf("hello, world\n");
    return 0;
}
