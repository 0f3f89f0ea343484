/* mdtaker SYMBOL [EVENTS [crash|loop]]: a ring-3 momentum taker on /dev/market (lib/market.h).
 *
 * It subscribes to SYMBOL and keeps the mid of the last WINDOW tops. When the mid has moved
 * by the current spread or more across the window it takes liquidity in that direction: an IOC
 * order of LOTS at the far touch (a buy at the ask on a rise, a sell at the bid on a fall),
 * within +-MAX_POSITION lots, one order at a time, then waits a whole window again. After
 * EVENTS market events (default 2000; 0: no limit), or at the end of a backtest's data (a
 * read of 0 bytes: `backtest /bin/mdtaker DATA -- SYMBOL 0`), it prints one line and exits:
 *     mdtaker: events E orders O fills F lots L position P cash C
 * (cash in ticks x lots: minus what it paid, plus what it got). With `crash` it first rests a
 * bid 1/128 below the market, and once it has read EVENTS events it writes through a null
 * pointer: the kernel kills it with SIGSEGV and cancels the bid when /dev/market closes.
 * With `loop` it spins for ever once it has read EVENTS events (a backtest kills it). */
#include "libc.h"
#include "market.h"

#define WINDOW 20
#define LOTS 100
#define MAX_POSITION 300
#define BATCH 32

static struct mkt_event events[BATCH];

static int command(int fd, unsigned op, const char *symbol, int side, long long price,
                   long long qty, unsigned tif, unsigned tag) {
    struct mkt_command c;
    memset(&c, 0, sizeof c);
    c.op = op;
    c.side = side;
    c.tif = tif;
    c.tag = tag;
    c.price = price;
    c.qty = qty;
    for (int i = 0; i < 8 && symbol[i]; i++) c.symbol[i] = symbol[i];
    return write(fd, &c, sizeof c);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        printf("usage: mdtaker SYMBOL [EVENTS [crash|loop]]\n");
        return 2;
    }
    const char *symbol = argv[1];
    long limit = argc > 2 ? atol(argv[2]) : 2000;
    if (limit <= 0) limit = 0x7fffffffL;
    int crash = argc > 3 && strcmp(argv[3], "crash") == 0;
    int loop = argc > 3 && strcmp(argv[3], "loop") == 0;
    int fd = open(MKT_DEVICE, 2);
    if (fd < 0) {
        printf("mdtaker: cannot open %s (%d)\n", MKT_DEVICE, fd);
        return 1;
    }
    if (command(fd, MKT_SUBSCRIBE, symbol, 0, 0, 0, 0, 0) != (int)sizeof(struct mkt_command)) {
        printf("mdtaker: cannot subscribe to %s\n", symbol);
        return 1;
    }
    long long mids[WINDOW];
    int seen = 0, pending = 0, rested = 0;
    long market = 0, orders = 0, fills = 0, lots = 0;
    long long position = 0, cash = 0;
    while (market < limit) {
        int got = read(fd, events, sizeof events);
        if (got == 0) break; /* the end of a backtest's data */
        if (got < 0 || got % (int)sizeof(struct mkt_event)) {
            printf("mdtaker: read returned %d\n", got);
            return 1;
        }
        for (int i = 0; i < got / (int)sizeof(struct mkt_event); i++) {
            struct mkt_event *e = &events[i];
            switch (e->type) {
            case MKT_EV_TOP:
                market++;
                if ((e->flags & (MKT_F_BID | MKT_F_ASK)) != (MKT_F_BID | MKT_F_ASK)) break;
                if (crash && !rested) {
                    rested = 1;
                    command(fd, MKT_SUBMIT, symbol, MKT_BUY, e->a - (e->a >> 7), LOTS, MKT_GTC, 99);
                }
                mids[seen % WINDOW] = e->a + e->c; /* twice the mid: exact in ticks */
                seen++;
                if (seen <= WINDOW || pending) break;
                long long move = mids[(seen - 1) % WINDOW] - mids[seen % WINDOW];
                long long spread2 = 2 * (e->c - e->a); /* the spread, in the mids' units */
                int side = move >= spread2 ? MKT_BUY : move <= -spread2 ? MKT_SELL : 0;
                if (!side || (position + side * LOTS) * side > MAX_POSITION) break;
                if (command(fd, MKT_SUBMIT, symbol, side, side == MKT_BUY ? e->c : e->a, LOTS,
                            MKT_IOC, (unsigned)orders + 1) > 0) {
                    orders++;
                    pending = 1;
                    seen = 0;
                }
                break;
            case MKT_EV_TRADE:
                market++;
                break;
            case MKT_EV_FILL:
                fills++;
                lots += e->b;
                position += e->side * e->b;
                cash -= e->side * e->a * e->b;
                if (e->d == 0) pending = 0;
                break;
            case MKT_EV_CANCELLED:
            case MKT_EV_REJECTED:
                if (e->tag != 99) pending = 0;
                break;
            }
        }
    }
    if (crash) *(volatile int *)0 = 1;
    for (volatile int spin = loop; spin;) {
    }
    printf("mdtaker: events %ld orders %ld fills %ld lots %ld position %ld cash %ld\n", market,
           orders, fills, lots, (long)position, (long)cash);
    return 0;
}
