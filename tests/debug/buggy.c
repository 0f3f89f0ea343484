/* buggy: the ring-3 program with a known bug that tests/debug/test_debug_command.py finds with
 * the OS's own debugger (`debug buggy`). Built -O0 -g -fno-omit-frame-pointer there.
 * The bug: find() looks one slot past the end of the book and, for a price it does not hold,
 * returns a null pointer that notional() dereferences. */
#include "libc.h"

struct order {
    int price;
    int quantity;
};

struct order book[3] = {{101, 10}, {102, 20}, {103, 30}};
int filled; /* written once per notional() */

static struct order *find(int price) {
    for (int i = 0; i <= 3; i++) /* BUG: <= reads book[3], past the end */
        if (book[i].price == price)
            return &book[i];
    return 0;
}

int notional(int price) {
    struct order *order = find(price);
    filled = filled + 1;
    return order->price * order->quantity; /* crashes for a price not in the book */
}

int main(void) {
    int total = notional(102);
    printf("buggy: notional of 102 is %d\n", total);
    total += notional(105);
    printf("buggy: total %d\n", total);
    return 0;
}
