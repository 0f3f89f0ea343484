/* /dev/market: market data and order entry for ring-3 strategies (the kernel side is
 * tradekernel/kernel/trading/marketport.py, the file behind it kernel/fs/recordfile.py).
 *
 * open("/dev/market", O_RDWR) gives a session of its own: an owner name "PROGRAM-PID" (a
 * further open by the same process: "PROGRAM-PID.1", ...) under
 * which its orders enter the kernel's trading engine (risk limits, self-trade prevention, the
 * kill switch and the audit log apply to it as to anyone). Everything is little-endian,
 * fixed-size, prices in ticks and sizes in lots of the instrument.
 *
 * write(): whole mkt_command records (48 bytes each; a length that is not a multiple is
 * EINVAL). A malformed command (unknown op, side, time in force or instrument) fails the
 * write with EINVAL, after the commands before it in the same write have been carried out:
 * the return value then counts their bytes. An order the engine refuses (risk, band) is not
 * an error of the write: it comes back as an MKT_EV_REJECTED event with the reason, and a
 * cancel or replace of an order that is no longer live as MKT_EV_ERROR.
 *
 * read(): whole mkt_event records (96 bytes each; a buffer smaller than one is EINVAL). A
 * read takes as many queued events as fit and sleeps while none is queued (EAGAIN with
 * O_NONBLOCK); poll(2) says POLLIN when one is. The session sees every event of its own
 * orders, and the book tops and trades of the instruments it subscribed to. At most
 * MKT_QUEUE_MAX events wait; past that new ones are dropped, and the first event queued
 * after the gap has MKT_F_LOST set.
 *
 * close() (or the program's death, a segfault included) cancels the session's live orders.
 *
 * The same program runs unchanged as the strategy of a backtest (`backtest /bin/PROGRAM DATA
 * [-- ARGS]` in the OS's shell; kernel/trading/program.py): its session then trades in the
 * backtest's simulated venue on replayed data, and its virtual time is its own CPU time, so
 * what it computes between reading an event and writing an order is its tick-to-order
 * latency. There a read never sleeps (the replay runs until there is an event for it) and,
 * once the data is done, returns 0: end of file (a live read never does); writes then fail
 * with EPIPE. One session per program: a second open's writes fail with EBUSY.
 */
#ifndef TK_MARKET_H
#define TK_MARKET_H

#define MKT_DEVICE "/dev/market"
#define MKT_QUEUE_MAX 4096

/* mkt_command.op */
#define MKT_SUBSCRIBE 1   /* symbol: its tops and trades from now on (the current top first) */
#define MKT_UNSUBSCRIBE 2 /* symbol */
#define MKT_SUBMIT 3      /* symbol, side, tif, price (not for MKT_MARKET), qty, tag */
#define MKT_CANCEL 4      /* order_id */
#define MKT_REPLACE 5     /* order_id, price (0: unchanged), qty (total, 0: unchanged) */

/* sides, mkt_command.tif */
#define MKT_BUY 1
#define MKT_SELL (-1)
#define MKT_GTC 0    /* rest until filled or cancelled */
#define MKT_IOC 1    /* immediate or cancel */
#define MKT_FOK 2    /* fill in full now or not at all */
#define MKT_POST 3   /* post-only: refused if it would cross */
#define MKT_MARKET 4 /* a market order (IOC, no price) */

struct mkt_command {       /* 48 bytes */
    unsigned int op;       /*  0 */
    unsigned int order_id; /*  4 MKT_CANCEL, MKT_REPLACE */
    unsigned int tag;      /*  8 MKT_SUBMIT: echoed in the order's events (0: none) */
    int side;              /* 12 MKT_BUY or MKT_SELL */
    char symbol[8];        /* 16 NUL-padded */
    long long price;       /* 24 ticks */
    long long qty;         /* 32 lots */
    unsigned int tif;      /* 40 MKT_GTC ... MKT_MARKET */
    unsigned int reserved; /* 44 zero */
};

/* mkt_event.type */
#define MKT_EV_TOP 1       /* a = bid, b = bid size, c = ask, d = ask size (see MKT_F_BID/ASK) */
#define MKT_EV_TRADE 2     /* a = price, b = qty, side = aggressor (0: unknown) */
#define MKT_EV_ACCEPTED 3  /* order_id, tag, side, a = price (MKT_F_MARKET: none), b = qty */
#define MKT_EV_REJECTED 4  /* tag, text = reason (order_id: the number it would have had) */
#define MKT_EV_FILL 5      /* side, a = price, b = qty, c = filled so far, d = leaves (0: done) */
#define MKT_EV_CANCELLED 6 /* b = qty cancelled, text = reason */
#define MKT_EV_REPLACED 7  /* a = new price, b = new total qty */
#define MKT_EV_ERROR 8     /* a cancel/replace that could not apply: order_id, text = why */

/* mkt_event.flags */
#define MKT_F_LOST 1   /* events were dropped before this one (the queue was full) */
#define MKT_F_BID 2    /* MKT_EV_TOP: a and b hold a bid */
#define MKT_F_ASK 4    /* MKT_EV_TOP: c and d hold an ask */
#define MKT_F_MARKET 8 /* MKT_EV_ACCEPTED: a market order, a is 0 */

struct mkt_event {         /* 96 bytes */
    unsigned int type;     /*  0 */
    unsigned int flags;    /*  4 */
    unsigned long long ts_ns; /* 8 virtual ns of the machine's clock */
    unsigned int order_id; /* 16 */
    unsigned int tag;      /* 20 */
    char symbol[8];        /* 24 NUL-padded */
    int side;              /* 32 */
    unsigned int reserved; /* 36 */
    long long a, b, c, d;  /* 40 */
    char text[24];         /* 72 NUL-padded, may be cut short */
};

#endif
