/*
 * loadgen: a small single-threaded load generator for the Switchyard benchmarks.
 *
 * Why native: a Node `ws` client tops out around 90k msgs/s, far below what uWebSockets.js can
 * echo on one core, so a JS generator would measure itself instead of the server. One thread on
 * epoll with per-connection write batching keeps the generator's cost per message to a few hundred
 * nanoseconds, and it reports its own CPU use so a run can show it was not the bottleneck.
 *
 * Modes:
 *   echo    keep --inflight messages outstanding on each of --conns connections; after --warmup
 *           seconds count echoes and their round-trip latency for --duration seconds. Every echo's
 *           payload (and ack id) is checked against the message it answers.
 *   idle    open --conns connections, wait for the first server frame on each, print a "ready"
 *           line, then hold them (answering heartbeats) until stdin closes or a line arrives,
 *           SIGTERM/SIGINT, or --hold seconds pass.
 *   open    --conns slots, each repeatedly: connect, handshake, wait for the first server frame,
 *           close (RST: SO_LINGER 0, so no TIME_WAIT piles up), again. Counts opens and the
 *           connect → first-frame time.
 *   fanout  --conns connections join room `bench`; connection 0 broadcasts (`say`) keeping
 *           --inflight broadcasts outstanding; a broadcast completes when every member has it.
 *           With --ports P1,P2 the members are spread round-robin over several servers (connection
 *           i on port i % n; connection 0, the sender, on P1): a room across two gateways.
 * Protocols:
 *   native    Switchyard frames over WebSocket (also spoken by bench/bare-uws.ts, which echoes them
 *             verbatim and implements join/say with uWS pub/sub).
 *   native-sse, native-poll  the same frames over SSE or long-polling, sent by POST /rt/send
 *             (one keep-alive sender socket per connection, in-flight sends batched per POST).
 *   sockjs    the SockJS websocket transport; each message is one native frame as a SockJS string.
 *   socketio  Engine.IO v4 / Socket.IO v5 packets over the websocket transport.
 *   signalr-json, signalr-msgpack  a SignalR hub over WebSockets (skipNegotiation): the handshake,
 *             then `invoke('echo', payload)` (an Invocation with an id; the Completion is the echo).
 *
 * Output: diagnostics on stderr; one JSON object on the last line of stdout. Before it, the timed
 * modes print {"phase":"measure"} when the measured window opens and {"phase":"done"} the moment it
 * closes (before any teardown); idle mode prints {"ready":...} once every connection has its first
 * frame.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- options */

enum proto { PROTO_NATIVE, PROTO_SOCKETIO, PROTO_SIGNALR_JSON, PROTO_SIGNALR_MSGPACK, PROTO_SOCKJS, PROTO_SSE, PROTO_POLL };
static const char *const proto_names[] = {"native", "socketio", "signalr-json", "signalr-msgpack", "sockjs", "native-sse", "native-poll"};
enum mode { MODE_ECHO, MODE_IDLE, MODE_OPEN, MODE_FANOUT };
static const char *const mode_names[] = {"echo", "idle", "open", "fanout"};

#define IS_HTTP (opt.proto == PROTO_SSE || opt.proto == PROTO_POLL)
/* protocols whose messages are native frames (possibly wrapped) */
#define IS_NATIVE_FAMILY (opt.proto == PROTO_NATIVE || opt.proto == PROTO_SOCKJS || IS_HTTP)

static struct {
    const char *host;
    int port;
    const char *path;
    enum proto proto;
    enum mode mode;
    int conns;
    int inflight;
    int payload;
    int acks;
    double duration;
    double warmup;
    double connect_timeout;
    double hold;        /* idle mode: 0 = until stdin closes or a signal */
    int connect_batch;  /* handshakes in progress at once, so the server's accept backlog never overflows */
    long broadcasts;    /* fanout: end the measured window after this many broadcasts (0 = by time) */
} opt = {
    .host = "127.0.0.1",
    .port = 0,
    .path = NULL,
    .proto = PROTO_NATIVE,
    .mode = MODE_ECHO,
    .conns = 50,
    .inflight = 16,
    .payload = 32,
    .acks = 0,
    .duration = 5,
    .warmup = 1,
    .connect_timeout = 60,
    .hold = 0,
    .connect_batch = 256,
    .broadcasts = 0,
};

/* ---------------------------------------------------------------- time, randomness */

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* RFC 6455 wants an unpredictable masking key per frame so that a hostile page cannot steer the
 * bytes on the wire (cache poisoning of intermediaries). Nothing hostile runs here; xorshift gives
 * a fresh key per frame at negligible cost, which is all the servers can observe. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static inline uint32_t rng32(void) {
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return (uint32_t)(x >> 32);
}

/* ---------------------------------------------------------------- latency histogram */

/* Log-linear buckets over nanoseconds: exact below 2048 ns, then 1024 buckets per power of two, so
 * every bucket's midpoint is within 0.05% of any value in it (HDR-histogram grade, 3 significant
 * digits). The table is 450 KB; recording is a couple of instructions. */
#define HIST_SUB_BITS 10
#define HIST_BUCKETS ((64 - HIST_SUB_BITS) * (1 << HIST_SUB_BITS) + (2 << HIST_SUB_BITS))
static uint64_t hist[HIST_BUCKETS];
static uint64_t hist_count, hist_max, hist_sum;

static inline int hist_index(uint64_t v) {
    if (v < (2u << HIST_SUB_BITS)) return (int)v;
    int msb = 63 - __builtin_clzll(v);
    int shift = msb - HIST_SUB_BITS;
    return (shift << HIST_SUB_BITS) + (int)(v >> shift);
}

static double hist_bucket_mid(int idx) {
    if (idx < (2 << HIST_SUB_BITS)) return idx;
    int shift = (idx >> HIST_SUB_BITS) - 1;
    uint64_t mant = (uint64_t)idx - ((uint64_t)shift << HIST_SUB_BITS);
    return (double)(mant << shift) + (double)(1ull << shift) / 2.0;
}

static inline void hist_add(uint64_t ns) {
    hist[hist_index(ns)]++;
    hist_count++;
    hist_sum += ns;
    if (ns > hist_max) hist_max = ns;
}

static double hist_percentile_us(double p) {
    if (hist_count == 0) return 0;
    uint64_t rank = (uint64_t)ceil(p * (double)hist_count);
    if (rank < 1) rank = 1;
    uint64_t seen = 0;
    for (int i = 0; i < HIST_BUCKETS; i++) {
        seen += hist[i];
        if (seen >= rank) return hist_bucket_mid(i) / 1000.0;
    }
    return hist_max / 1000.0;
}

/* The histogram as sparse [µs, count] pairs (bucket midpoints rounded to whole µs, equal values
 * merged), for an HDR histogram on the harness side. */
static void hist_print_pairs(void) {
    printf(",\"hist\":[");
    int first = 1;
    uint64_t cur_v = 0, cur_n = 0;
    for (int i = 0; i < HIST_BUCKETS; i++) {
        if (!hist[i]) continue;
        uint64_t v = (uint64_t)llround(hist_bucket_mid(i) / 1000.0);
        if (cur_n && v == cur_v) {
            cur_n += hist[i];
            continue;
        }
        if (cur_n) printf("%s[%llu,%llu]", first ? "" : ",", (unsigned long long)cur_v, (unsigned long long)cur_n), first = 0;
        cur_v = v;
        cur_n = hist[i];
    }
    if (cur_n) printf("%s[%llu,%llu]", first ? "" : ",", (unsigned long long)cur_v, (unsigned long long)cur_n);
    printf("]");
}

/* ---------------------------------------------------------------- buffers */

struct buf {
    unsigned char *data;
    size_t len, cap;
};

static void die(const char *what) {
    fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void buf_reserve(struct buf *b, size_t extra) {
    if (b->len + extra <= b->cap) return;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + extra) cap *= 2;
    unsigned char *p = realloc(b->data, cap);
    if (!p) die("realloc");
    b->data = p;
    b->cap = cap;
}

static void buf_append(struct buf *b, const void *p, size_t n) {
    buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}


static void buf_free(struct buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static void buf_consume(struct buf *b, size_t n) {
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

/* ---------------------------------------------------------------- connections */

enum conn_state {
    ST_IDLE,         /* not started yet */
    ST_CONNECTING,   /* non-blocking connect() in progress */
    ST_UPGRADING,    /* HTTP upgrade request (or the SSE / poll GET) sent, waiting for the answer */
    ST_WAIT_OPEN,    /* upgraded, waiting for the server's first frame */
    ST_WAIT_SIO,     /* socket.io: sent "40", waiting for the namespace connect ack */
    ST_CLOSING,      /* open mode: said goodbye, waiting for the server to close */
    ST_READY,
    ST_JOINING,      /* fanout: sent join with an ack, waiting for the reply */
    ST_JOINED,
    ST_DEAD,
};

/* An HTTP/1.1 response being read: head, then a body by Content-Length, chunked, or to EOF. */
struct http_resp {
    int in_body;
    int status;
    int chunked;
    long clen;         /* -1: until the connection closes (or chunked) */
    size_t left;       /* bytes left in the current chunk / the body */
    int ch_state;      /* 0 size line, 1 data, 2 CRLF after data */
};

struct sock {
    int fd;
    int want_out;      /* EPOLLOUT is registered (connecting, or a write came up short) */
    int connected;
    struct buf rbuf;   /* unparsed input */
    struct buf wbuf;   /* output not yet accepted by the kernel */
    size_t woff;
    struct http_resp resp;
};

struct slot {
    uint64_t t;
    uint32_t id;
};

struct conn {
    struct sock s[2];    /* 0: the WebSocket, SSE stream or poll; 1: the POST sender (HTTP only) */
    uint32_t gen;        /* bumped on every (re)start so stale epoll events are recognised */
    enum conn_state state;
    int dirty;           /* queued output waits for the end-of-batch flush */
    struct buf frag;     /* a fragmented data message being reassembled */
    /* In-flight messages. The server answers each connection in order, so a FIFO pairs every
     * echo with its request; the id goes into the payload (and ack) so the pairing is checked. */
    struct slot *sent;
    unsigned ring_mask, head, count;
    uint32_t next_id;
    uint64_t t_start;    /* open mode: when connect() was called, then when the goodbye went out */
    /* native over HTTP */
    char sid[128], token[256];
    unsigned long long last_seq;
    unsigned long long acked_seq; /* newest seq acknowledged to the gateway ({"type":"ack"}) */
    struct buf body;     /* the stream's decoded body (SSE) or the current poll answer */
    struct buf postq;    /* frames waiting for the next POST, comma-separated */
    int post_busy;
};

static struct conn *conns;
/* --ports: connection i talks to ports[i % n_ports] (without it, the one --port) */
#define MAX_PORTS 16
static int ports[MAX_PORTS];
static int n_ports = 0;
/* the port connection c talks to (--ports spreads the connections round-robin) */
static int conn_port(const struct conn *c) { return ports[(c - conns) % n_ports]; }
static int epfd;
static int *dirty_list;
static int n_dirty;
static int *retry_list;  /* open mode: slots whose attempt failed */
static int n_retry;

/* global counters */
static int n_pending;    /* connections between connect() and ready */
static int n_started;    /* connections handed to connect() */
static int n_ready;
static int n_failed;     /* never became ready */
static int n_closed;     /* lost after being ready */
static int n_joined;
static uint64_t n_protocol_errors, n_pings, n_other_frames, n_unmatched, n_bad_payload;

enum phase { PH_CONNECT, PH_JOIN, PH_WARMUP, PH_MEASURE, PH_DONE };
static enum phase phase = PH_CONNECT;
static uint64_t t_phase;     /* when the current phase began */
static double cpu_at_start;  /* the generator's CPU seconds when the measured window opened */

/* The measured window opens; the harness samples the server's CPU over exactly this window. */
static void start_measuring(uint64_t t) {
    phase = PH_MEASURE;
    t_phase = t;
    cpu_at_start = cpu_seconds();
    printf("{\"phase\":\"measure\"}\n");
    fflush(stdout);
}
static uint64_t measured_msgs;
static int sending;      /* new messages are sent for each echo while set */
static uint64_t opens_measured;

/* fanout */
struct bslot {
    uint64_t t;
    uint32_t seq;
    int remaining;
    int active;
};
static struct bslot *bring;
static unsigned bring_mask;
static uint32_t b_next_seq;
static int b_outstanding, b_members;
static uint64_t b_completed, deliveries;

/* The echo message: a template whose payload ends in `pay_digits` hex digits of the message id
 * (at pay_off) and, with --acks or SignalR, whose ack / invocation id is 9 decimal digits (at
 * ack_off). Both are patched in per message. */
static unsigned char *msg;
static size_t msg_len, pay_off, ack_off;
static int pay_digits, has_ack;
static char *xs;         /* payload - pay_digits 'x' characters */
static int xs_len;
static unsigned char *say_msg;  /* fanout: the broadcast frame, same scheme */
static size_t say_len, say_pay_off;

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) { (void)sig; stop_requested = 1; }

static struct sockaddr_in server_addr[MAX_PORTS];

static void start_more_connections(void);
static void conn_start(struct conn *c);
static void became_ready(struct conn *c, uint64_t t);

static inline uint64_t ev_key(struct conn *c, int which) {
    return ((uint64_t)c->gen << 32) | ((uint64_t)(c - conns) << 1) | (uint64_t)which;
}

static void set_events(struct conn *c, int which, int want_out) {
    struct sock *s = &c->s[which];
    if (s->want_out == want_out) return;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.u64 = ev_key(c, which)};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, s->fd, &ev) < 0) die("epoll_ctl mod");
    s->want_out = want_out;
}

static void mark_dirty(struct conn *c) {
    if (c->dirty) return;
    c->dirty = 1;
    dirty_list[n_dirty++] = (int)(c - conns);
}

static void sock_close(struct sock *s, int rst) {
    if (s->fd < 0) return;
    if (rst) {
        /* An RST instead of a FIN: the client side keeps no TIME_WAIT entry, so an open-rate run
         * does not run out of ephemeral ports. */
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(s->fd);  /* also removes it from epoll */
    s->fd = -1;
    s->want_out = s->connected = 0;
    s->rbuf.len = s->wbuf.len = s->woff = 0;
    memset(&s->resp, 0, sizeof s->resp);
}

static void conn_reset(struct conn *c, int rst) {
    c->gen++;  /* whatever is still on the stack for the old connection sees that it is gone */
    sock_close(&c->s[0], rst);
    sock_close(&c->s[1], rst);
    c->frag.len = 0;
    c->body.len = 0;
    c->postq.len = 0;
    c->post_busy = 0;
    c->head = c->count = 0;
    c->sid[0] = c->token[0] = 0;
    c->last_seq = 0;
    c->acked_seq = 0;
}

static void conn_kill(struct conn *c, const char *why) {
    if (c->state == ST_DEAD || c->state == ST_IDLE) return;
    if (opt.mode == MODE_OPEN) {
        /* the server closed after our goodbye (the normal end), or an attempt failed: either way
         * the slot starts again after this wake-up (not from here: a connect() that fails at
         * once would recurse) */
        if (c->state != ST_CLOSING) {
            if (n_failed < 5) fprintf(stderr, "loadgen: connection %d: %s\n", (int)(c - conns), why);
            n_failed++;
            n_pending--;
        }
        conn_reset(c, 1);
        c->state = ST_IDLE;
        retry_list[n_retry++] = (int)(c - conns);
        return;
    }
    int was_ready = c->state >= ST_READY;
    if (n_failed + n_closed < 5) fprintf(stderr, "loadgen: connection %d: %s\n", (int)(c - conns), why);
    if (was_ready) {
        n_closed++;
        n_ready--;
        if (c->state == ST_JOINED) n_joined--;
    } else {
        n_failed++;
        n_pending--;
    }
    c->state = ST_DEAD;
    conn_reset(c, 0);
    buf_free(&c->s[0].rbuf), buf_free(&c->s[0].wbuf), buf_free(&c->s[1].rbuf), buf_free(&c->s[1].wbuf);
    buf_free(&c->frag), buf_free(&c->body), buf_free(&c->postq);
    start_more_connections();
}

/* Push queued output to the kernel; whatever does not fit waits for EPOLLOUT. */
static void sock_flush(struct conn *c, int which) {
    struct sock *s = &c->s[which];
    if (s->fd < 0 || !s->connected) return;
    while (s->woff < s->wbuf.len) {
        ssize_t n = send(s->fd, s->wbuf.data + s->woff, s->wbuf.len - s->woff, MSG_NOSIGNAL);
        if (n > 0) {
            s->woff += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_events(c, which, 1);
            return;
        }
        conn_kill(c, n == 0 ? "send returned 0" : strerror(errno));
        return;
    }
    s->wbuf.len = s->woff = 0;
    set_events(c, which, 0);
}

static void conn_flush(struct conn *c) {
    if (c->s[0].wbuf.len > c->s[0].woff) sock_flush(c, 0);
    if (c->state != ST_DEAD && c->s[1].wbuf.len > c->s[1].woff) sock_flush(c, 1);
}

/* Queue one masked client frame (RFC 6455 section 5.2/5.3). */
static void queue_frame(struct conn *c, int opcode, const unsigned char *data, size_t len) {
    unsigned char hdr[14];
    size_t h = 0;
    hdr[h++] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        hdr[h++] = (unsigned char)(0x80 | len);
    } else if (len <= 0xffff) {
        hdr[h++] = 0x80 | 126;
        hdr[h++] = (unsigned char)(len >> 8);
        hdr[h++] = (unsigned char)len;
    } else {
        hdr[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--) hdr[h++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    uint32_t key = rng32();
    unsigned char k[4];
    memcpy(k, &key, 4);
    memcpy(hdr + h, k, 4);
    h += 4;

    struct buf *w = &c->s[0].wbuf;
    buf_reserve(w, h + len);
    unsigned char *out = w->data + w->len;
    memcpy(out, hdr, h);
    out += h;
    for (size_t i = 0; i < len; i++) out[i] = data[i] ^ k[i & 3];
    w->len += h + len;
    mark_dirty(c);
}

static void queue_text(struct conn *c, const char *s) {
    queue_frame(c, 0x1, (const unsigned char *)s, strlen(s));
}

/* ---------------------------------------------------------------- native over HTTP: sending */

static int sock_open(struct conn *c, int which);

static void post_flush(struct conn *c) {
    if (c->post_busy || c->postq.len == 0 || c->state == ST_DEAD) return;
    /* its keep-alive connection timed out: a new one (the request waits in wbuf until it connects) */
    if (c->s[1].fd < 0 && sock_open(c, 1) < 0) {
        conn_kill(c, strerror(errno));
        return;
    }
    char head[768];
    int n = snprintf(head, sizeof head,
                     "POST /rt/send?sid=%s&token=%s HTTP/1.1\r\n"
                     "Host: %s:%d\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %zu\r\n"
                     "\r\n[",
                     c->sid, c->token, opt.host, conn_port(c), c->postq.len + 2);
    struct buf *w = &c->s[1].wbuf;
    buf_append(w, head, (size_t)n);
    buf_append(w, c->postq.data, c->postq.len);
    buf_append(w, "]", 1);
    c->postq.len = 0;
    c->post_busy = 1;
    mark_dirty(c);
}

/* The bundled client acknowledges what it has received every ACK_EVERY frames, so that the
 * gateway releases them from the session's outbox (docs/protocol.md, "Resume"); so does the
 * generator: over WebSocket a frame of its own, over SSE with the next POST. */
#define ACK_EVERY 32

static const unsigned char *find(const unsigned char *p, size_t n, const char *needle);

static int ack_due(struct conn *c) { return c->last_seq >= c->acked_seq + ACK_EVERY; }

static size_t ack_frame(struct conn *c, char *out, size_t cap) {
    c->acked_seq = c->last_seq;
    return (size_t)snprintf(out, cap, "{\"type\":\"ack\",\"last\":%llu}", c->last_seq);
}

/* the seq of a gateway frame ({"type":…,"seq":N,…}), 0 when it has none */
static unsigned long long frame_seq(const unsigned char *p, size_t n) {
    const unsigned char *s = find(p, n < 40 ? n : 40, "\"seq\":");
    return s ? strtoull((const char *)s + 6, NULL, 10) : 0;
}

/* Queue one native frame's text on whatever carries it. */
static void send_native(struct conn *c, const unsigned char *p, size_t n) {
    if (IS_HTTP) {
        if (opt.proto == PROTO_SSE && ack_due(c)) {
            char a[64];
            size_t k = ack_frame(c, a, sizeof a);
            if (c->postq.len) buf_append(&c->postq, ",", 1);
            buf_append(&c->postq, a, k);
        }
        if (c->postq.len) buf_append(&c->postq, ",", 1);
        buf_append(&c->postq, p, n);
        post_flush(c);
        return;
    }
    if (opt.proto == PROTO_SOCKJS) {
        /* a SockJS client message: a JSON array of strings */
        unsigned char tmp[4096];
        size_t o = 0;
        tmp[o++] = '[', tmp[o++] = '"';
        for (size_t i = 0; i < n && o < sizeof tmp - 8; i++) {
            if (p[i] == '"' || p[i] == '\\') tmp[o++] = '\\';
            tmp[o++] = p[i];
        }
        tmp[o++] = '"', tmp[o++] = ']';
        queue_frame(c, 0x1, tmp, o);
        return;
    }
    queue_frame(c, 0x1, p, n);
}

static void send_native_str(struct conn *c, const char *s) { send_native(c, (const unsigned char *)s, strlen(s)); }

/* ---------------------------------------------------------------- messages and checks */

static const char hexd[] = "0123456789abcdef";

static inline void put_hex(unsigned char *out, uint32_t id, int digits) {
    for (int i = digits - 1; i >= 0; i--, id >>= 4) out[i] = (unsigned char)hexd[id & 15];
}

static inline uint32_t ack_value(uint32_t id) { return 100000000u + id % 900000000u; }

static inline void put_ack(unsigned char *out, uint32_t id) {
    uint32_t v = ack_value(id);
    for (int i = 8; i >= 0; i--, v /= 10) out[i] = (unsigned char)('0' + v % 10);
}

/* Does p (at least n bytes) start with the payload of message `id`? */
static inline int payload_at(const unsigned char *p, size_t n, uint32_t id) {
    if (n < (size_t)opt.payload) return 0;
    if (xs_len && memcmp(p, xs, (size_t)xs_len) != 0) return 0;
    unsigned char d[8];
    put_hex(d, id, pay_digits);
    return memcmp(p + xs_len, d, (size_t)pay_digits) == 0;
}

static inline int ack_at(const unsigned char *p, size_t n, uint32_t id) {
    if (n < 10) return 0;
    unsigned char d[9];
    put_ack(d, id);
    return memcmp(p, d, 9) == 0 && !(p[9] >= '0' && p[9] <= '9');
}

static const unsigned char *find(const unsigned char *p, size_t n, const char *needle) {
    return memmem(p, n, needle, strlen(needle));
}

static int has(const unsigned char *p, size_t n, const char *needle) { return find(p, n, needle) != NULL; }

/* Send one benchmark message and remember when. */
static void send_message(struct conn *c, uint64_t t) {
    uint32_t id = c->next_id++;
    unsigned char tmp[512];
    unsigned char *m = msg_len <= sizeof tmp ? tmp : malloc(msg_len);
    memcpy(m, msg, msg_len);
    put_hex(m + pay_off, id, pay_digits);
    if (has_ack) put_ack(m + ack_off, id);
    if (IS_NATIVE_FAMILY && opt.proto != PROTO_SOCKJS) send_native(c, m, msg_len);
    else queue_frame(c, opt.proto == PROTO_SIGNALR_MSGPACK ? 0x2 : 0x1, m, msg_len);
    if (m != tmp) free(m);
    if (c->count <= c->ring_mask) {
        struct slot *s = &c->sent[(c->head + c->count) & c->ring_mask];
        s->t = t;
        s->id = id;
        c->count++;
    }
}

/* An answer to the oldest in-flight message: ok says whether it carried that message's payload. */
static void on_echo(struct conn *c, uint64_t t, int ok) {
    if (c->count == 0) {
        /* An echo we have no record of: the pairing is lost, so keep it out of the latency data. */
        n_unmatched++;
        return;
    }
    uint64_t sent_at = c->sent[c->head].t;
    c->head = (c->head + 1) & c->ring_mask;
    c->count--;
    if (!ok) {
        if (n_bad_payload++ < 3) fprintf(stderr, "loadgen: connection %d: an echo that does not match its message\n", (int)(c - conns));
    } else if (phase == PH_MEASURE) {
        measured_msgs++;
        hist_add(t - sent_at);
    }
    if (sending) send_message(c, t);
}

static inline uint32_t head_id(struct conn *c) { return c->count ? c->sent[c->head].id : 0; }

/* native echo: 1 it matches the oldest message, 0 it is an echo that does not, -1 not an echo */
static int native_echo_check(struct conn *c, const unsigned char *p, size_t n) {
    uint32_t id = head_id(c);
    if (opt.acks) {
        /* the gateway answers {"type":"reply","seq":N,"ack":A,"args":[…]}; bare uWS returns the
         * event frame itself, ack included */
        const unsigned char *a = find(p, n, "\"ack\":");
        if (!a) return -1;
        a += 6;
        if (!ack_at(a, (size_t)(p + n - a), id)) return 0;
    } else if (!has(p, n, "\"event\":\"echo\"")) {
        return -1;
    }
    const unsigned char *g = find(p, n, "\"args\":[\"");
    if (!g) return 0;
    g += 9;
    size_t left = (size_t)(p + n - g);
    return payload_at(g, left, id) && left > (size_t)opt.payload && g[opt.payload] == '"';
}

/* ---------------------------------------------------------------- fanout */

static void send_broadcast(uint64_t t) {
    struct conn *c = &conns[0];
    uint32_t seq = b_next_seq++;
    struct bslot *b = &bring[seq & bring_mask];
    b->t = t;
    b->seq = seq;
    b->remaining = b_members;
    b->active = 1;
    b_outstanding++;
    unsigned char tmp[512];
    unsigned char *m = say_len <= sizeof tmp ? tmp : malloc(say_len);
    memcpy(m, say_msg, say_len);
    put_hex(m + say_pay_off, seq, pay_digits);
    send_native(c, m, say_len);
    if (m != tmp) free(m);
}

static void on_said(const unsigned char *p, size_t n, uint64_t t) {
    const unsigned char *g = find(p, n, "\"args\":[\"bench\",\"");
    if (!g) {
        n_bad_payload++;
        return;
    }
    g += 17;
    size_t left = (size_t)(p + n - g);
    if (left <= (size_t)opt.payload || g[opt.payload] != '"' || (xs_len && memcmp(g, xs, (size_t)xs_len) != 0)) {
        n_bad_payload++;
        return;
    }
    uint32_t seq = 0;
    for (int i = 0; i < pay_digits; i++) {
        unsigned char ch = g[xs_len + i];
        int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
        if (v < 0) {
            n_bad_payload++;
            return;
        }
        seq = (seq << 4) | (uint32_t)v;
    }
    /* with fewer than 8 digits the seq wraps; the ring is far smaller than the wrap */
    uint32_t mask = pay_digits >= 8 ? 0xffffffffu : ((1u << (4 * pay_digits)) - 1);
    struct bslot *b = NULL;
    for (unsigned k = 0; k <= bring_mask; k++) {
        struct bslot *x = &bring[k];
        if (x->active && (x->seq & mask) == seq) {
            b = x;
            break;
        }
    }
    if (!b) {
        n_unmatched++;
        return;
    }
    if (phase == PH_MEASURE) deliveries++;
    if (--b->remaining > 0) return;
    b->active = 0;
    b_outstanding--;
    if (phase == PH_MEASURE) {
        b_completed++;
        hist_add(t - b->t);
    }
    if (sending && conns[0].state == ST_JOINED) send_broadcast(t);
}

/* ---------------------------------------------------------------- receiving */

/* one native frame's text, from any transport */
static void on_native(struct conn *c, const unsigned char *p, size_t n, uint64_t t) {
    if (c->state == ST_CLOSING) {
        if (has(p, n, "\"type\":\"close\"")) conn_kill(c, "closed");
        else n_other_frames++;
        return;
    }
    if (c->state == ST_WAIT_OPEN) {
        if (IS_HTTP) {
            /* the open frame names the session the POSTs address */
            const unsigned char *a = find(p, n, "\"sid\":\""), *b = find(p, n, "\"token\":\"");
            if (!a || !b) {
                n_protocol_errors++;
                conn_kill(c, "no sid/token in the open frame");
                return;
            }
            a += 7, b += 9;
            size_t i = 0;
            while (a + i < p + n && a[i] != '"' && i < sizeof c->sid - 1) c->sid[i] = (char)a[i], i++;
            c->sid[i] = 0;
            i = 0;
            while (b + i < p + n && b[i] != '"' && i < sizeof c->token - 1) c->token[i] = (char)b[i], i++;
            c->token[i] = 0;
        }
        /* The gateway's `open` frame (or the bare server's hello) is always first. */
        became_ready(c, t);
        return;
    }
    if (n < 64 && has(p, n, "\"type\":\"ping\"")) {
        send_native_str(c, "{\"type\":\"pong\"}");
        n_pings++;
        return;
    }
    if (c->state == ST_JOINING) {
        if (has(p, n, "\"type\":\"reply\"")) {
            c->state = ST_JOINED;
            n_joined++;
        } else {
            n_other_frames++;
        }
        return;
    }
    if (opt.mode == MODE_FANOUT) {
        if (has(p, n, "\"event\":\"said\"")) on_said(p, n, t);
        else n_other_frames++;
        return;
    }
    if (n < 128 && has(p, n, "\"type\":\"close\"")) {
        conn_kill(c, "server sent a close frame");
        return;
    }
    int r = native_echo_check(c, p, n);
    if (r < 0) n_other_frames++;
    else on_echo(c, t, r);
}

/* SockJS frames: o (open), h (heartbeat), a[...] (messages), c[code,reason] (close) */
static void on_sockjs(struct conn *c, const unsigned char *p, size_t n, uint64_t t) {
    if (n == 0) {
        n_other_frames++;
        return;
    }
    switch (p[0]) {
    case 'o':
        if (c->state == ST_WAIT_OPEN) became_ready(c, t);
        else n_other_frames++;
        return;
    case 'h':
        n_pings++;
        return;
    case 'c':
        /* in open mode, the answer to our goodbye */
        if (c->state != ST_CLOSING) n_protocol_errors++;
        conn_kill(c, "sockjs close frame");
        return;
    case 'a':
        break;
    default:
        n_protocol_errors++;
        return;
    }
    /* a JSON array of strings: unescape each and hand it on as a native frame */
    unsigned char tmp[8192];
    size_t i = 1;
    while (i < n) {
        while (i < n && p[i] != '"') i++;
        if (i >= n) break;
        i++;
        size_t o = 0;
        while (i < n && p[i] != '"') {
            unsigned char ch = p[i++];
            if (ch == '\\' && i < n) {
                ch = p[i++];
                if (ch == 'n') ch = '\n';
                else if (ch == 't') ch = '\t';
                else if (ch == 'r') ch = '\r';
                else if (ch == 'u' && i + 4 <= n) {
                    unsigned v = 0;
                    for (int k = 0; k < 4; k++) {
                        unsigned char h = p[i++];
                        v = v * 16 + (h >= '0' && h <= '9' ? h - '0' : (h | 32) - 'a' + 10);
                    }
                    ch = v < 128 ? (unsigned char)v : '?';  /* only ASCII is ever sent here */
                }
            }
            if (o < sizeof tmp) tmp[o++] = ch;
        }
        i++;
        if (c->state == ST_DEAD) return;
        on_native(c, tmp, o, t);
    }
}

/* A complete text (or binary) WebSocket message from the server. */
static void on_message(struct conn *c, const unsigned char *p, size_t n, uint64_t t) {
    if (opt.proto == PROTO_NATIVE) {
        unsigned long long seq = frame_seq(p, n);
        if (seq > c->last_seq) c->last_seq = seq;
        on_native(c, p, n, t);
        if (ack_due(c) && c->state != ST_DEAD && c->state != ST_CLOSING) {
            char a[64];
            queue_frame(c, 0x1, (const unsigned char *)a, ack_frame(c, a, sizeof a));
        }
        return;
    }
    if (opt.proto == PROTO_SOCKJS) {
        on_sockjs(c, p, n, t);
        return;
    }

    if (opt.proto == PROTO_SIGNALR_JSON || opt.proto == PROTO_SIGNALR_MSGPACK) {
        if (c->state == ST_WAIT_OPEN) {
            /* the handshake response: {}\x1e (text for JSON, binary for MessagePack) */
            if (n >= 3 && p[0] == '{' && p[1] == '}') became_ready(c, t);
            else {
                n_protocol_errors++;
                conn_kill(c, "signalr handshake refused");
            }
            return;
        }
        if (opt.proto == PROTO_SIGNALR_JSON) {
            /* one or more records ending with 0x1e: Completions are the echoes, Pings are answered */
            size_t i = 0;
            while (i < n) {
                unsigned char *end = memchr(p + i, 0x1e, n - i);
                size_t len = end ? (size_t)(end - (p + i)) : n - i;
                const unsigned char *r = p + i;
                if (has(r, len, "\"type\":3")) {
                    uint32_t id = head_id(c);
                    const unsigned char *a = find(r, len, "\"invocationId\":\"");
                    const unsigned char *v = find(r, len, "\"result\":\"");
                    int ok = a && v && ack_at(a + 16, (size_t)(r + len - a - 16), id) &&
                             payload_at(v + 10, (size_t)(r + len - v - 10), id) &&
                             (size_t)(r + len - v - 10) > (size_t)opt.payload && v[10 + opt.payload] == '"';
                    on_echo(c, t, ok);
                } else if (has(r, len, "\"type\":6")) {
                    queue_text(c, "{\"type\":6}\x1e");
                    n_pings++;
                } else n_other_frames++;
                i += len + 1;
            }
            return;
        }
        /* MessagePack: VarInt-length-prefixed arrays; [3, {}, id, 3, result] is a Completion */
        size_t i = 0;
        while (i < n) {
            size_t len = 0;
            int shift = 0;
            while (i < n) {
                unsigned char b = p[i++];
                len |= (size_t)(b & 0x7f) << shift;
                shift += 7;
                if (!(b & 0x80)) break;
            }
            if (i + len > n || len < 2) {
                n_protocol_errors++;
                return;
            }
            const unsigned char *r = p + i;
            if ((r[0] == 0x95 || r[0] == 0x94) && r[1] == 0x03) {
                uint32_t id = head_id(c);
                int ok = 0;
                /* 0x80 (no headers), 0xa9 + 9 id digits, 0x03 (has a result), the string */
                if (len >= 15 && r[2] == 0x80 && r[3] == 0xa9 && ack_at(r + 4, 10, id) && r[13] == 0x03) {
                    size_t k = 14, sl = 0;
                    if ((r[k] & 0xe0) == 0xa0) sl = r[k] & 0x1f, k += 1;
                    else if (r[k] == 0xd9 && k + 1 < len) sl = r[k + 1], k += 2;
                    else if (r[k] == 0xda && k + 2 < len) sl = ((size_t)r[k + 1] << 8) | r[k + 2], k += 3;
                    ok = sl == (size_t)opt.payload && k + sl <= len && payload_at(r + k, sl, id);
                }
                on_echo(c, t, ok);
            } else if (r[0] == 0x91 && r[1] == 0x06) {
                static const unsigned char ping[] = {0x02, 0x91, 0x06};
                queue_frame(c, 0x2, ping, sizeof ping);
                n_pings++;
            } else n_other_frames++;
            i += len;
        }
        return;
    }

    /* Engine.IO packet types: 0 open, 1 close, 2 ping, 3 pong, 4 message (payload is a Socket.IO
     * packet: 0 connect, 2 event, 3 ack, 4 connect_error). */
    if (n == 0) {
        n_other_frames++;
        return;
    }
    switch (p[0]) {
    case '2':
        queue_text(c, "3");
        n_pings++;
        return;
    case '1':
        conn_kill(c, "engine.io close packet");
        return;
    case '0':
        if (c->state == ST_WAIT_OPEN) {
            queue_text(c, "40");  /* join the main namespace */
            c->state = ST_WAIT_SIO;
            return;
        }
        break;
    case '4':
        if (n >= 2 && p[1] == '0' && c->state == ST_WAIT_SIO) {
            became_ready(c, t);
            return;
        }
        if (n >= 2 && p[1] == '4') {
            n_protocol_errors++;
            conn_kill(c, "socket.io connect_error");
            return;
        }
        if (c->state < ST_READY) break;
        if (!opt.acks && n >= 11 && memcmp(p, "42[\"echo\",\"", 11) == 0) {
            /* 42["echo","<payload>"…] (the gateway may add its recovery offset as one more arg) */
            size_t left = n - 11;
            int ok = payload_at(p + 11, left, head_id(c)) && left > (size_t)opt.payload + 1 && p[11 + opt.payload] == '"' &&
                     (p[12 + opt.payload] == ',' || p[12 + opt.payload] == ']');
            on_echo(c, t, ok);
            return;
        }
        if (opt.acks && n >= 2 && p[1] == '3') {
            /* exactly 43<ack>["<payload>"]: an ack answer carries the handler's args and nothing else */
            uint32_t id = head_id(c);
            int ok = n == 2 + 9 + 4 + (size_t)opt.payload && ack_at(p + 2, n - 2, id) && p[11] == '[' && p[12] == '"' &&
                     payload_at(p + 13, n - 13, id) && p[n - 2] == '"' && p[n - 1] == ']';
            on_echo(c, t, ok);
            return;
        }
        break;
    }
    n_other_frames++;
}

/* Parse every complete WebSocket frame in the read buffer. Returns 0 if the connection died. */
static int parse_frames(struct conn *c, uint64_t t) {
    struct buf *rb = &c->s[0].rbuf;
    unsigned char *p = rb->data;
    size_t avail = rb->len, off = 0;
    uint32_t gen = c->gen;
    while (avail - off >= 2) {
        unsigned char *f = p + off;
        size_t left = avail - off;
        int fin = f[0] & 0x80, op = f[0] & 0x0f, masked = f[1] & 0x80;
        uint64_t len = f[1] & 0x7f;
        size_t h = 2;
        if (len == 126) {
            if (left < 4) break;
            len = ((uint64_t)f[2] << 8) | f[3];
            h = 4;
        } else if (len == 127) {
            if (left < 10) break;
            len = 0;
            for (int i = 0; i < 8; i++) len = (len << 8) | f[2 + i];
            h = 10;
        }
        if (len > (64u << 20)) {
            n_protocol_errors++;
            conn_kill(c, "frame larger than 64 MiB");
            return 0;
        }
        size_t mask_at = h;
        if (masked) h += 4;  /* servers must not mask, but tolerate it */
        if (left < h + len) break;
        unsigned char *data = f + h;
        if (masked)
            for (uint64_t i = 0; i < len; i++) data[i] ^= f[mask_at + (i & 3)];
        off += h + (size_t)len;

        switch (op) {
        case 0x0:  /* continuation */
        case 0x1:  /* text */
        case 0x2:  /* binary */
            if (op != 0 && fin && c->frag.len == 0) {
                on_message(c, data, (size_t)len, t);
            } else {
                /* Neither uWS nor ws fragment small messages, but a correct client reassembles. */
                buf_append(&c->frag, data, (size_t)len);
                if (fin) {
                    on_message(c, c->frag.data, c->frag.len, t);
                    if (c->state != ST_DEAD && c->gen == gen) c->frag.len = 0;
                }
            }
            break;
        case 0x8:  /* close */
            conn_kill(c, "server sent close");
            return 0;
        case 0x9:  /* ping: answer with the same payload */
            queue_frame(c, 0xA, data, (size_t)len);
            n_pings++;
            break;
        case 0xA:  /* pong */
            break;
        default:
            n_protocol_errors++;
            conn_kill(c, "unknown opcode");
            return 0;
        }
        /* dead, or recycled by open mode */
        if (c->state == ST_DEAD || c->gen != gen) return 0;
    }
    if (off > 0) buf_consume(rb, off);
    return 1;
}

/* ---------------------------------------------------------------- HTTP */

/* Parses what it can of one response on s. Decoded body bytes go to out (if not NULL).
 * Returns -1 on a protocol error, 1 when the response is complete, 0 when more is needed. */
static int http_read(struct sock *s, struct buf *out) {
    struct http_resp *r = &s->resp;
    struct buf *in = &s->rbuf;
    if (!r->in_body) {
        unsigned char *end = memmem(in->data, in->len, "\r\n\r\n", 4);
        if (!end) return in->len > 16384 ? -1 : 0;
        if (in->len < 12 || memcmp(in->data, "HTTP/1.1 ", 9) != 0) return -1;
        r->status = atoi((const char *)in->data + 9);
        size_t hl = (size_t)(end + 4 - in->data);
        r->clen = -1;
        r->chunked = 0;
        /* header names compared case-insensitively */
        for (size_t i = 0; i + 1 < hl; i++) {
            if (in->data[i] != '\n') continue;
            const char *line = (const char *)in->data + i + 1;
            if (!strncasecmp(line, "content-length:", 15)) r->clen = atol(line + 15);
            else if (!strncasecmp(line, "transfer-encoding:", 18) && memmem(line, 40, "chunked", 7)) r->chunked = 1;
        }
        if (r->status == 204 || r->status == 304 || r->status < 200) r->clen = 0;
        buf_consume(in, hl);
        r->in_body = 1;
        r->ch_state = 0;
        r->left = r->clen >= 0 ? (size_t)r->clen : 0;
        if (!r->chunked && r->clen == 0) goto complete;
    }
    if (r->chunked) {
        size_t off = 0;
        for (;;) {
            if (r->ch_state == 0) {
                unsigned char *nl = memmem(in->data + off, in->len - off, "\r\n", 2);
                if (!nl) break;
                size_t sz = strtoul((const char *)in->data + off, NULL, 16);
                size_t next = (size_t)(nl + 2 - in->data);
                if (sz == 0) {
                    /* the last chunk, then a CRLF (no trailers are ever sent here) */
                    if (in->len - next < 2) break;
                    buf_consume(in, next + 2);
                    goto complete;
                }
                off = next;
                r->left = sz;
                r->ch_state = 1;
            }
            if (r->ch_state == 1) {
                size_t take = in->len - off < r->left ? in->len - off : r->left;
                if (out) buf_append(out, in->data + off, take);
                off += take;
                r->left -= take;
                if (r->left) break;
                r->ch_state = 2;
            }
            if (r->ch_state == 2) {
                if (in->len - off < 2) break;
                off += 2;
                r->ch_state = 0;
            }
        }
        buf_consume(in, off);
        return 0;
    }
    if (r->clen < 0) {
        if (out) buf_append(out, in->data, in->len);
        in->len = 0;
        return 0;
    }
    {
        size_t take = in->len < r->left ? in->len : r->left;
        if (out) buf_append(out, in->data, take);
        buf_consume(in, take);
        r->left -= take;
        if (r->left) return 0;
    }
complete:
    r->in_body = 0;
    return 1;
}

static void poll_request(struct conn *c) {
    char req[768];
    int n;
    if (c->sid[0])
        n = snprintf(req, sizeof req, "GET %s?sid=%s&token=%s&last=%llu HTTP/1.1\r\nHost: %s:%d\r\n\r\n", opt.path,
                     c->sid, c->token, c->last_seq, opt.host, conn_port(c));
    else
        n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n", opt.path, opt.host, conn_port(c));
    buf_append(&c->s[0].wbuf, req, (size_t)n);
    mark_dirty(c);
}

/* one frame of an SSE stream or a poll answer */
static void on_http_frame(struct conn *c, const unsigned char *p, size_t n, uint64_t t) {
    unsigned long long seq = frame_seq(p, n);
    if (seq > c->last_seq) c->last_seq = seq;
    on_native(c, p, n, t);
}

/* The SSE stream's decoded body: events separated by blank lines, frames on `data:` lines. */
static void sse_consume(struct conn *c, uint64_t t) {
    struct buf *b = &c->body;
    size_t off = 0;
    uint32_t gen = c->gen;
    for (;;) {
        unsigned char *nl = memchr(b->data + off, '\n', b->len - off);
        if (!nl) break;
        size_t ll = (size_t)(nl - (b->data + off));
        const unsigned char *line = b->data + off;
        off += ll + 1;
        if (ll && line[ll - 1] == '\r') ll--;
        if (ll >= 5 && memcmp(line, "data:", 5) == 0) {
            size_t k = line[5] == ' ' ? 6 : 5;
            on_http_frame(c, line + k, ll - k, t);
            if (c->state == ST_DEAD || c->gen != gen) return;
        }
    }
    buf_consume(b, off);
}

/* A complete poll answer: a JSON array of frames. */
static void poll_consume(struct conn *c, uint64_t t) {
    struct buf *b = &c->body;
    const unsigned char *p = b->data;
    size_t n = b->len, i = 0;
    uint32_t gen = c->gen;
    while (i < n) {
        if (p[i] != '{') {
            i++;
            continue;
        }
        size_t start = i;
        int depth = 0, in_str = 0;
        for (; i < n; i++) {
            unsigned char ch = p[i];
            if (in_str) {
                if (ch == '\\') i++;
                else if (ch == '"') in_str = 0;
            } else if (ch == '"') in_str = 1;
            else if (ch == '{' || ch == '[') depth++;
            else if (ch == '}' || ch == ']') {
                if (--depth == 0) break;
            }
        }
        i++;
        on_http_frame(c, p + start, i - start, t);
        if (c->state == ST_DEAD || c->gen != gen) return;
    }
    b->len = 0;
    /* the next poll, unless open mode is saying goodbye on this socket */
    if (c->state != ST_CLOSING) poll_request(c);
}

static void http_readable(struct conn *c, int which, uint64_t t) {
    struct sock *s = &c->s[which];
    uint32_t gen = c->gen;
    for (;;) {
        if (which == 1) {
            int r = http_read(s, NULL);
            if (r < 0) {
                n_protocol_errors++;
                conn_kill(c, "bad HTTP response to a POST");
                return;
            }
            if (r == 0) return;
            if (s->resp.status != 204 && s->resp.status != 200) {
                n_protocol_errors++;
                conn_kill(c, "POST /rt/send refused");
                return;
            }
            c->post_busy = 0;
            post_flush(c);
            continue;
        }
        int r = http_read(s, &c->body);
        if (c->state == ST_CLOSING) {
            /* open mode: the answer to the goodbye POST */
            if (r != 0) conn_kill(c, "closed");
            return;
        }
        if (r < 0) {
            n_protocol_errors++;
            conn_kill(c, "bad HTTP response");
            return;
        }
        if (s->resp.status && s->resp.status != 200) {
            char why[64];
            snprintf(why, sizeof why, "HTTP %d", s->resp.status);
            n_protocol_errors++;
            conn_kill(c, why);
            return;
        }
        if (opt.proto == PROTO_SSE) {
            sse_consume(c, t);
            if (r == 1 && c->state != ST_DEAD && c->gen == gen) conn_kill(c, "the SSE stream ended");
            return;
        }
        if (r == 0) return;
        poll_consume(c, t);
        if (c->state == ST_DEAD || c->gen != gen) return;
    }
}

/* ---------------------------------------------------------------- handshakes */

/* Looks for the end of the HTTP 101 response; frames may follow in the same read. */
static int parse_upgrade(struct conn *c) {
    struct buf *rb = &c->s[0].rbuf;
    unsigned char *end = memmem(rb->data, rb->len, "\r\n\r\n", 4);
    if (!end) {
        if (rb->len > 16384) {
            conn_kill(c, "oversized upgrade response");
            return 0;
        }
        return 1;
    }
    /* Sec-WebSocket-Accept is not verified: it would need SHA-1 and only guards against
     * non-WebSocket servers answering 101, which cannot happen against our own servers. */
    if (rb->len < 12 || memcmp(rb->data, "HTTP/1.1 101", 12) != 0) {
        char line[80];
        size_t n = 0;
        while (n < sizeof line - 1 && n < rb->len && rb->data[n] != '\r') {
            line[n] = (char)rb->data[n];
            n++;
        }
        line[n] = 0;
        n_protocol_errors++;
        conn_kill(c, line);
        return 0;
    }
    buf_consume(rb, (size_t)(end + 4 - rb->data));
    c->state = ST_WAIT_OPEN;
    /* a SignalR client speaks first: the hub protocol's handshake */
    if (opt.proto == PROTO_SIGNALR_JSON) queue_text(c, "{\"protocol\":\"json\",\"version\":1}\x1e");
    else if (opt.proto == PROTO_SIGNALR_MSGPACK) queue_text(c, "{\"protocol\":\"messagepack\",\"version\":1}\x1e");
    return 1;
}

static void send_upgrade(struct conn *c) {
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char req[1024];
    int n;
    if (IS_HTTP) {
        /* the SSE stream or the first poll (which answers [open]) */
        if (opt.proto == PROTO_SSE)
            n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n\r\n", opt.path,
                         opt.host, conn_port(c));
        else
            n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n", opt.path, opt.host, conn_port(c));
        buf_append(&c->s[0].wbuf, req, (size_t)n);
        c->state = ST_WAIT_OPEN;
        c->s[0].resp.in_body = 0;
        sock_flush(c, 0);
        return;
    }
    unsigned char raw[18] = {0};
    for (int i = 0; i < 16; i += 4) {
        uint32_t r = rng32();
        memcpy(raw + i, &r, 4);
    }
    char key[25];
    int k = 0;
    for (int i = 0; i < 18; i += 3) {
        uint32_t v = ((uint32_t)raw[i] << 16) | ((uint32_t)raw[i + 1] << 8) | raw[i + 2];
        key[k++] = b64[(v >> 18) & 63];
        key[k++] = b64[(v >> 12) & 63];
        key[k++] = b64[(v >> 6) & 63];
        key[k++] = b64[v & 63];
    }
    key[22] = key[23] = '=';  /* 16 bytes encode to 22 characters plus padding */
    key[24] = 0;
    char path[512];
    if (opt.proto == PROTO_SOCKJS) {
        /* <prefix>/<server: 3 digits>/<session: random>/websocket */
        char sess[13];
        for (int i = 0; i < 12; i++) sess[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[rng32() % 36];
        sess[12] = 0;
        snprintf(path, sizeof path, "%s/%03u/%s/websocket", opt.path, rng32() % 1000, sess);
    } else {
        snprintf(path, sizeof path, "%s", opt.path);
    }
    n = snprintf(req, sizeof req,
                 "GET %s HTTP/1.1\r\n"
                 "Host: %s:%d\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Key: %s\r\n"
                 "Sec-WebSocket-Version: 13\r\n"
                 "\r\n",
                 path, opt.host, conn_port(c), key);
    buf_append(&c->s[0].wbuf, req, (size_t)n);
    c->state = ST_UPGRADING;
    sock_flush(c, 0);
}

static int sock_open(struct conn *c, int which) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    /* Without NODELAY, Nagle would hold back a small frame while an earlier one is unacknowledged
     * and the latency numbers would measure delayed-ACK timers instead of the server. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sock *s = &c->s[which];
    s->fd = fd;
    s->want_out = 1;
    s->connected = 0;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u64 = ev_key(c, which)};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl add");
    const struct sockaddr_in *to = &server_addr[(c - conns) % n_ports];
    if (connect(fd, (const struct sockaddr *)to, sizeof *to) < 0 && errno != EINPROGRESS) return -1;
    return 0;
}

static void conn_start(struct conn *c) {
    c->gen++;
    c->state = ST_CONNECTING;
    c->t_start = now_ns();
    n_pending++;
    if (sock_open(c, 0) < 0) {
        conn_kill(c, strerror(errno));
        return;
    }
    /* the POST sender; open mode only waits for the first frame and needs none */
    if (IS_HTTP && opt.mode != MODE_OPEN && sock_open(c, 1) < 0) conn_kill(c, strerror(errno));
}

static void start_more_connections(void) {
    if (opt.mode == MODE_OPEN) return;
    while (n_started < opt.conns && n_pending < opt.connect_batch) conn_start(&conns[n_started++]);
}

static void became_ready(struct conn *c, uint64_t t) {
    if (opt.mode == MODE_OPEN) {
        /* one open done: count it, drop the connection (RST), and start the next */
        if (phase == PH_MEASURE) {
            opens_measured++;
            hist_add(t - c->t_start);
        }
        /* Say goodbye and let the server close: a native session ends only on its client's
         * `close` frame (a dropped connection would wait out its resume window, and sessions
         * would pile up over the run), and the side that closes first keeps the TIME_WAIT entry,
         * here the server. SSE has no upstream on its socket: its sessions are dropped (RST) and
         * expire on their own. */
        n_pending--;
        c->t_start = t;
        if (opt.proto == PROTO_SSE) {
            c->state = ST_CLOSING;
            conn_kill(c, "done");
            return;
        }
        if (opt.proto == PROTO_POLL) {
            char req[768];
            int n = snprintf(req, sizeof req,
                             "POST /rt/send?sid=%s&token=%s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                             "Content-Length: 18\r\nConnection: close\r\n\r\n[{\"type\":\"close\"}]",
                             c->sid, c->token, opt.host, conn_port(c));
            buf_append(&c->s[0].wbuf, req, (size_t)n);
        } else {
            if (opt.proto == PROTO_NATIVE || opt.proto == PROTO_SOCKJS) send_native_str(c, "{\"type\":\"close\"}");
            static const unsigned char normal[] = {0x03, 0xe8};  /* close code 1000 */
            queue_frame(c, 0x8, normal, sizeof normal);
        }
        c->state = ST_CLOSING;
        sock_flush(c, 0);
        return;
    }
    c->state = ST_READY;
    n_pending--;
    n_ready++;
    start_more_connections();
}

static void on_writable(struct conn *c, int which) {
    struct sock *s = &c->s[which];
    if (!s->connected) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            conn_kill(c, strerror(err));
            return;
        }
        s->connected = 1;
        if (which == 0) send_upgrade(c);
        else sock_flush(c, 1);
        return;
    }
    sock_flush(c, which);
}

static void on_readable(struct conn *c, int which, uint64_t t) {
    struct sock *s = &c->s[which];
    uint32_t gen = c->gen;
    for (;;) {
        buf_reserve(&s->rbuf, 4096);
        size_t room = s->rbuf.cap - s->rbuf.len;
        ssize_t n = recv(s->fd, s->rbuf.data + s->rbuf.len, room, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            conn_kill(c, strerror(errno));
            return;
        }
        if (n == 0) {
            /* the POST socket, idle between POSTs, closed by the server's HTTP keep-alive timeout
             * (uWS: about 10 s): a client simply opens a new one for its next POST */
            if (IS_HTTP && which == 1 && !c->post_busy) {
                sock_close(s, 0);
                return;
            }
            conn_kill(c, "server closed the connection");
            return;
        }
        s->rbuf.len += (size_t)n;
        if (IS_HTTP) {
            http_readable(c, which, t);
        } else {
            if (c->state == ST_UPGRADING) {
                if (!parse_upgrade(c)) return;
                if (c->state == ST_UPGRADING) continue;
            }
            parse_frames(c, t);
        }
        if (c->state == ST_DEAD || c->gen != gen) return;
        /* A short read means the socket is drained; skip the extra recv() that would see EAGAIN. */
        if ((size_t)n < room) break;
    }
    /* Every reply produced by this read goes out in one send(). */
    conn_flush(c);
}

/* ---------------------------------------------------------------- output */

static void print_result(const char *status, double connect_s, double wall_s, double cpu_s) {
    double cpu_pct = wall_s > 0 ? 100.0 * cpu_s / wall_s : 0;
    printf("{\"status\":\"%s\",\"mode\":\"%s\",\"proto\":\"%s\",\"conns\":%d,\"ready\":%d,"
           "\"failed\":%d,\"closed\":%d,\"inflight\":%d,\"payload\":%d,\"acks\":%s,\"connect_s\":%.3f",
           status, mode_names[opt.mode], proto_names[opt.proto], opt.conns, n_ready, n_failed, n_closed, opt.inflight,
           opt.payload, opt.acks ? "true" : "false", connect_s);
    if (opt.mode != MODE_IDLE) {
        printf(",\"duration_s\":%.4f", wall_s);
        if (opt.mode == MODE_ECHO)
            printf(",\"msgs\":%llu,\"msgs_per_s\":%.1f", (unsigned long long)measured_msgs, wall_s > 0 ? measured_msgs / wall_s : 0);
        else if (opt.mode == MODE_OPEN)
            printf(",\"opens\":%llu,\"opens_per_s\":%.1f", (unsigned long long)opens_measured, wall_s > 0 ? opens_measured / wall_s : 0);
        else
            printf(",\"members\":%d,\"broadcasts\":%llu,\"deliveries\":%llu,\"deliveries_per_s\":%.1f", b_members,
                   (unsigned long long)b_completed, (unsigned long long)deliveries, wall_s > 0 ? deliveries / wall_s : 0);
        printf(",\"lat_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,\"mean\":%.1f}",
               hist_percentile_us(0.50), hist_percentile_us(0.90), hist_percentile_us(0.99),
               hist_percentile_us(0.999), hist_max / 1000.0,
               hist_count ? (double)hist_sum / hist_count / 1000.0 : 0);
    } else {
        printf(",\"held_s\":%.3f", wall_s);
    }
    printf(",\"bad_payload\":%llu", (unsigned long long)n_bad_payload);
    printf(",\"cpu_pct\":%.1f,\"pings\":%llu,\"other_frames\":%llu,\"unmatched\":%llu,\"protocol_errors\":%llu",
           cpu_pct, (unsigned long long)n_pings, (unsigned long long)n_other_frames,
           (unsigned long long)n_unmatched, (unsigned long long)n_protocol_errors);
    if (opt.mode != MODE_IDLE) hist_print_pairs();
    printf("}\n");
    fflush(stdout);
}

/* ---------------------------------------------------------------- main */

static void usage(int status) {
    fprintf(status ? stderr : stdout,
            "usage: loadgen --port N [--ports N1,N2,...] [--host 127.0.0.1] [--path P]\n"
            "               [--proto native|native-sse|native-poll|sockjs|socketio|signalr-json|signalr-msgpack]\n"
            "               [--mode echo|idle|open|fanout] [--conns C] [--inflight K] [--payload B] [--acks]\n"
            "               [--duration S] [--warmup S] [--connect-timeout S] [--hold S]\n"
            "               [--connect-batch N] [--broadcasts B]\n"
            "  --ports N1,N2,...  connection i talks to the (i %% n)th port (any mode; replaces --port)\n");
    exit(status);
}

/* Writes `s` into out as the body of a JSON string (only " and \ occur here). */
static size_t json_escape(unsigned char *out, const unsigned char *s, size_t n) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\') out[o++] = '\\';
        out[o++] = s[i];
    }
    return o;
}

static void build_messages(void) {
    pay_digits = opt.payload < 8 ? opt.payload : 8;
    xs_len = opt.payload - pay_digits;
    xs = malloc((size_t)xs_len + 1);
    memset(xs, 'x', (size_t)xs_len);
    xs[xs_len] = 0;
    /* placeholders: '#' for the payload's id digits, '@' for the ack / invocation id */
    char *pl = malloc((size_t)opt.payload + 1);
    memset(pl, 'x', (size_t)xs_len);
    memset(pl + xs_len, '#', (size_t)pay_digits);
    pl[opt.payload] = 0;
    size_t cap = (size_t)opt.payload * 2 + 256;
    msg = malloc(cap);
    int n;
    has_ack = opt.acks || opt.proto == PROTO_SIGNALR_JSON || opt.proto == PROTO_SIGNALR_MSGPACK;
    if (opt.proto == PROTO_SIGNALR_MSGPACK) {
        /* [1, {}, "<9-digit id>", "echo", [payload], []] with its VarInt length */
        unsigned char body[64];
        size_t b = 0;
        body[b++] = 0x96, body[b++] = 0x01, body[b++] = 0x80;
        body[b++] = 0xa9, memset(body + b, '@', 9), b += 9;
        body[b++] = 0xa4, memcpy(body + b, "echo", 4), b += 4;
        body[b++] = 0x91;
        if (opt.payload < 32) body[b++] = (unsigned char)(0xa0 | opt.payload);
        else if (opt.payload < 256) body[b++] = 0xd9, body[b++] = (unsigned char)opt.payload;
        else body[b++] = 0xda, body[b++] = (unsigned char)(opt.payload >> 8), body[b++] = (unsigned char)opt.payload;
        size_t total = b + (size_t)opt.payload + 1;
        unsigned char *out = msg;
        size_t o = 0;
        size_t v = total;
        do {
            unsigned char byte = v & 0x7f;
            v >>= 7;
            out[o++] = v ? byte | 0x80 : byte;
        } while (v);
        memcpy(out + o, body, b), o += b;
        memcpy(out + o, pl, (size_t)opt.payload), o += (size_t)opt.payload;
        out[o++] = 0x90;
        n = (int)o;
    } else if (opt.proto == PROTO_SIGNALR_JSON) {
        n = snprintf((char *)msg, cap, "{\"type\":1,\"invocationId\":\"@@@@@@@@@\",\"target\":\"echo\",\"arguments\":[\"%s\"]}\x1e", pl);
    } else if (opt.proto == PROTO_SOCKETIO) {
        n = opt.acks ? snprintf((char *)msg, cap, "42@@@@@@@@@[\"echo\",\"%s\"]", pl)
                     : snprintf((char *)msg, cap, "42[\"echo\",\"%s\"]", pl);
    } else {
        n = opt.acks ? snprintf((char *)msg, cap, "{\"type\":\"event\",\"event\":\"echo\",\"args\":[\"%s\"],\"ack\":@@@@@@@@@}", pl)
                     : snprintf((char *)msg, cap, "{\"type\":\"event\",\"event\":\"echo\",\"args\":[\"%s\"]}", pl);
        if (opt.proto == PROTO_SOCKJS) {
            unsigned char *w = malloc(cap * 2 + 8);
            size_t o = 0;
            w[o++] = '[', w[o++] = '"';
            o += json_escape(w + o, msg, (size_t)n);
            w[o++] = '"', w[o++] = ']';
            free(msg);
            msg = w;
            n = (int)o;
        }
    }
    msg_len = (size_t)n;
    unsigned char *h = memchr(msg, '#', msg_len);
    pay_off = h ? (size_t)(h - msg) : 0;
    unsigned char *a = memchr(msg, '@', msg_len);
    ack_off = a ? (size_t)(a - msg) : 0;

    say_msg = malloc((size_t)opt.payload + 128);
    say_len = (size_t)sprintf((char *)say_msg, "{\"type\":\"event\",\"event\":\"say\",\"args\":[\"bench\",\"%s\"]}", pl);
    unsigned char *sh = memchr(say_msg, '#', say_len);
    say_pay_off = sh ? (size_t)(sh - say_msg) : 0;
    free(pl);
}

int main(int argc, char **argv) {
    static const struct option longopts[] = {
        {"host", required_argument, 0, 'h'},     {"port", required_argument, 0, 'p'},
        {"path", required_argument, 0, 'P'},     {"proto", required_argument, 0, 'r'},
        {"mode", required_argument, 0, 'm'},     {"conns", required_argument, 0, 'c'},
        {"inflight", required_argument, 0, 'k'}, {"payload", required_argument, 0, 'b'},
        {"duration", required_argument, 0, 'd'}, {"warmup", required_argument, 0, 'w'},
        {"connect-timeout", required_argument, 0, 't'}, {"hold", required_argument, 0, 'H'},
        {"connect-batch", required_argument, 0, 'B'}, {"acks", no_argument, 0, 'a'},
        {"broadcasts", required_argument, 0, 'n'}, {"ports", required_argument, 0, 'O'}, {"help", no_argument, 0, 'u'}, {0, 0, 0, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'h': opt.host = optarg; break;
        case 'p': opt.port = atoi(optarg); break;
        case 'O': {
            /* connection i goes to the (i % n)th port: e.g. a room's members over two gateways */
            n_ports = 0;
            for (char *tok = strtok(optarg, ","); tok; tok = strtok(NULL, ",")) {
                if (n_ports == MAX_PORTS || atoi(tok) <= 0) usage(64);
                ports[n_ports++] = atoi(tok);
            }
            if (n_ports == 0) usage(64);
            opt.port = ports[0];
            break;
        }
        case 'P': opt.path = optarg; break;
        case 'r': {
            int found = 0;
            for (int i = 0; i < (int)(sizeof proto_names / sizeof *proto_names); i++)
                if (!strcmp(optarg, proto_names[i])) opt.proto = (enum proto)i, found = 1;
            if (!found) usage(64);
            break;
        }
        case 'm': {
            int found = 0;
            for (int i = 0; i < (int)(sizeof mode_names / sizeof *mode_names); i++)
                if (!strcmp(optarg, mode_names[i])) opt.mode = (enum mode)i, found = 1;
            if (!found) usage(64);
            break;
        }
        case 'c': opt.conns = atoi(optarg); break;
        case 'k': opt.inflight = atoi(optarg); break;
        case 'b': opt.payload = atoi(optarg); break;
        case 'a': opt.acks = 1; break;
        case 'd': opt.duration = atof(optarg); break;
        case 'w': opt.warmup = atof(optarg); break;
        case 't': opt.connect_timeout = atof(optarg); break;
        case 'H': opt.hold = atof(optarg); break;
        case 'B': opt.connect_batch = atoi(optarg); break;
        case 'n': opt.broadcasts = atol(optarg); break;
        case 'u': usage(0); break;
        default: usage(64);
        }
    }
    if (opt.port <= 0 || opt.conns <= 0 || opt.inflight <= 0 || opt.payload < 0 || opt.connect_batch <= 0) usage(64);
    /* the MessagePack message writes the payload's length in 16 bits; messages fit a small stack buffer */
    if (opt.payload >= 65536 || (opt.proto == PROTO_SOCKJS && opt.payload > 3000)) usage(64);
    if (opt.mode == MODE_FANOUT && !(opt.proto == PROTO_NATIVE || opt.proto == PROTO_SSE || opt.proto == PROTO_POLL)) {
        fprintf(stderr, "loadgen: fanout speaks native frames (native, native-sse, native-poll)\n");
        return 64;
    }
    if (!opt.path) {
        switch (opt.proto) {
        case PROTO_NATIVE: opt.path = "/rt/ws"; break;
        case PROTO_SSE: opt.path = "/rt/sse"; break;
        case PROTO_POLL: opt.path = "/rt/poll"; break;
        case PROTO_SOCKJS: opt.path = "/sockjs"; break;
        case PROTO_SOCKETIO: opt.path = "/socket.io/?EIO=4&transport=websocket"; break;
        default: opt.path = "/hubs/demo";
        }
    }

    /* Each connection is one descriptor (two over HTTP); lift the soft limit to the hard one. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && (rlim_t)opt.conns * (IS_HTTP ? 2 : 1) + 16 > rl.rlim_cur)
        fprintf(stderr, "loadgen: %d connections need %d descriptors; the limit is %llu\n", opt.conns,
                opt.conns * (IS_HTTP ? 2 : 1) + 16, (unsigned long long)rl.rlim_cur);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    rng_state ^= now_ns() * 0x2545F4914F6CDD1Dull ^ (uint64_t)getpid();
    build_messages();

    if (n_ports == 0) ports[n_ports++] = opt.port;
    memset(server_addr, 0, sizeof server_addr);
    for (int i = 0; i < n_ports; i++) {
        server_addr[i].sin_family = AF_INET;
        server_addr[i].sin_port = htons((uint16_t)ports[i]);
        if (inet_pton(AF_INET, opt.host, &server_addr[i].sin_addr) != 1) {
            fprintf(stderr, "loadgen: --host must be an IPv4 address\n");
            return 64;
        }
    }

    unsigned ring = 1;
    while (ring < (unsigned)opt.inflight) ring <<= 1;
    conns = calloc((size_t)opt.conns, sizeof *conns);
    dirty_list = calloc((size_t)opt.conns, sizeof *dirty_list);
    retry_list = calloc((size_t)opt.conns, sizeof *retry_list);
    if (!conns || !dirty_list || !retry_list) die("calloc");
    for (int i = 0; i < opt.conns; i++) {
        conns[i].s[0].fd = conns[i].s[1].fd = -1;
        if (opt.mode == MODE_ECHO) {
            conns[i].sent = malloc(ring * sizeof(struct slot));
            conns[i].ring_mask = ring - 1;
        }
    }
    if (opt.mode == MODE_FANOUT) {
        bring = calloc(ring, sizeof *bring);
        bring_mask = ring - 1;
    }

    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) die("epoll_create1");
    int watch_stdin = 0;
    if (opt.mode == MODE_IDLE) {
        /* The harness closes our stdin (or writes a line) when it has read the memory numbers. */
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
        watch_stdin = epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev) == 0;
    }

    const uint64_t t_begin = now_ns();
    uint64_t t_warm_end = 0, t_measure_end = 0;
    double connect_s = 0;
    t_phase = t_begin;
    int holding = 0;  /* idle mode: all connections are settled and we are only waiting */
    const char *status = "ok";
    if (opt.mode == MODE_OPEN) {
        /* every slot starts at once; warm-up and window run by time from here */
        phase = PH_WARMUP;
        t_warm_end = t_begin + (uint64_t)(opt.warmup * 1e9);
        t_measure_end = t_warm_end + (uint64_t)(opt.duration * 1e9);
        for (int i = 0; i < opt.conns; i++) conn_start(&conns[i]);
    } else {
        start_more_connections();
    }

    struct epoll_event events[512];
    for (;;) {
        /* Phase deadlines are checked after every wake-up; under load wake-ups are continuous,
         * and the 100 ms cap only matters while idle. */
        int n = epoll_wait(epfd, events, 512, 100);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        uint64_t t = now_ns();
        for (int i = 0; i < n; i++) {
            uint64_t key = events[i].data.u64;
            if (key == UINT64_MAX) {
                char tmp[256];
                ssize_t r = read(0, tmp, sizeof tmp);
                if (r <= 0 || memchr(tmp, '\n', (size_t)r)) stop_requested = 1;
                if (r <= 0) epoll_ctl(epfd, EPOLL_CTL_DEL, 0, NULL);
                continue;
            }
            struct conn *c = &conns[(key & 0xffffffffu) >> 1];
            int which = (int)(key & 1);
            if ((uint32_t)(key >> 32) != c->gen || c->state == ST_DEAD || c->state == ST_IDLE) continue;
            if (events[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
                on_writable(c, which);
                if ((uint32_t)(key >> 32) != c->gen || c->state == ST_DEAD) continue;
            }
            /* Timestamp each read rather than the whole batch: with hundreds of ready sockets
             * per wake-up, one stamp for all would shave the batch's processing time off the
             * latencies of the later ones. vDSO clock reads cost tens of nanoseconds. */
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c, which, now_ns());
        }
        /* output queued on other connections than the one being read (fan-out's sender, pongs) */
        for (int i = 0; i < n_dirty; i++) {
            struct conn *c = &conns[dirty_list[i]];
            c->dirty = 0;
            if (c->state != ST_DEAD && c->state != ST_IDLE) conn_flush(c);
        }
        n_dirty = 0;

        if (opt.mode == MODE_OPEN) {
            int retry = n_retry;
            n_retry = 0;
            for (int i = 0; i < retry && phase != PH_DONE; i++) conn_start(&conns[retry_list[i]]);
            static uint64_t t_scan;
            if (t - t_scan > 100000000ull) {
                /* a server that never closes after the goodbye gets an RST after a second */
                t_scan = t;
                for (int i = 0; i < opt.conns; i++)
                    if (conns[i].state == ST_CLOSING && t - conns[i].t_start > 1000000000ull) conn_kill(&conns[i], "no close");
            }
            if (phase == PH_WARMUP && t >= t_warm_end) {
                start_measuring(t);
            } else if ((phase == PH_MEASURE && t >= t_measure_end) || stop_requested) {
                double wall = phase == PH_MEASURE ? (double)(t - t_phase) / 1e9 : 0;
                double cpu = phase == PH_MEASURE ? cpu_seconds() - cpu_at_start : 0;
                phase = PH_DONE;
                printf("{\"phase\":\"done\"}\n");
                fflush(stdout);
                print_result(stop_requested ? "interrupted" : opens_measured ? "ok" : "no_opens", 0, wall, cpu);
                return opens_measured ? 0 : 1;
            }
            continue;
        }

        if (phase == PH_CONNECT) {
            int settled = n_ready + n_failed + n_closed >= opt.conns;
            int timed_out = (double)(t - t_begin) / 1e9 > opt.connect_timeout;
            if (settled || timed_out || stop_requested) {
                connect_s = (double)(t - t_begin) / 1e9;
                if (!settled) fprintf(stderr, "loadgen: %d of %d connections ready after %.1fs\n", n_ready, opt.conns, connect_s);
                if (n_ready == 0 || (stop_requested && !settled) || (opt.mode == MODE_FANOUT && conns[0].state != ST_READY)) {
                    print_result(n_ready == 0 && !stop_requested ? "no_connections" : "interrupted", connect_s, 0, 0);
                    return 1;
                }
                if (!settled) status = "connect_timeout";
                else if (n_failed) status = "partial";
                if (opt.mode == MODE_IDLE) {
                    printf("{\"ready\":true,\"opened\":%d,\"failed\":%d,\"connect_s\":%.3f}\n", n_ready, n_failed, connect_s);
                    fflush(stdout);
                    holding = 1;
                    phase = PH_MEASURE;
                    t_phase = t;
                    cpu_at_start = cpu_seconds();  /* (idle mode prints its ready line instead of a phase mark) */
                } else if (opt.mode == MODE_FANOUT) {
                    /* every member joins the room (with an ack) before the first broadcast */
                    static const char join[] = "{\"type\":\"event\",\"event\":\"join\",\"args\":[\"bench\"],\"ack\":1}";
                    for (int i = 0; i < opt.conns; i++) {
                        struct conn *c = &conns[i];
                        if (c->state != ST_READY) continue;
                        c->state = ST_JOINING;
                        send_native_str(c, join);
                        conn_flush(c);
                    }
                    phase = PH_JOIN;
                    t_phase = t;
                } else {
                    /* Fill every pipe at once so the warm-up reaches steady state quickly. */
                    sending = 1;
                    for (int i = 0; i < opt.conns; i++) {
                        struct conn *c = &conns[i];
                        if (c->state != ST_READY) continue;
                        for (int k = 0; k < opt.inflight; k++) send_message(c, t);
                        conn_flush(c);
                    }
                    phase = PH_WARMUP;
                    t_warm_end = t + (uint64_t)(opt.warmup * 1e9);
                    t_measure_end = t_warm_end + (uint64_t)(opt.duration * 1e9);
                }
            }
            continue;
        }

        if (phase == PH_JOIN) {
            if (n_joined >= n_ready || stop_requested || (double)(t - t_phase) / 1e9 > opt.connect_timeout) {
                if (n_joined < n_ready || conns[0].state != ST_JOINED) {
                    fprintf(stderr, "loadgen: %d of %d members joined\n", n_joined, n_ready);
                    print_result(stop_requested ? "interrupted" : "join_failed", connect_s, 0, 0);
                    return 1;
                }
                b_members = n_joined;
                sending = 1;
                for (int k = 0; k < opt.inflight; k++) send_broadcast(t);
                conn_flush(&conns[0]);
                phase = PH_WARMUP;
                t_warm_end = t + (uint64_t)(opt.warmup * 1e9);
                t_measure_end = t_warm_end + (uint64_t)(opt.duration * 1e9);
            }
            continue;
        }

        if (opt.mode == MODE_IDLE && holding) {
            int timed_out = opt.hold > 0 && (double)(t - t_phase) / 1e9 >= opt.hold;
            if (stop_requested || timed_out || (!watch_stdin && opt.hold <= 0 && n_ready == 0)) {
                print_result(status, connect_s, (double)(t - t_phase) / 1e9, cpu_seconds() - cpu_at_start);
                return 0;
            }
            continue;
        }

        int enough = opt.mode == MODE_FANOUT && opt.broadcasts > 0 && phase == PH_MEASURE && b_completed >= (uint64_t)opt.broadcasts;
        int members_lost = opt.mode == MODE_FANOUT && n_joined < b_members;
        if (phase == PH_WARMUP && t >= t_warm_end) {
            start_measuring(t);
        } else if ((phase == PH_MEASURE && (t >= t_measure_end || enough)) || stop_requested || n_ready == 0 || members_lost) {
            double wall = phase == PH_MEASURE ? (double)(t - t_phase) / 1e9 : 0;
            double cpu = phase == PH_MEASURE ? cpu_seconds() - cpu_at_start : 0;
            if (phase == PH_MEASURE) {
                /* the window is closed: the harness stops sampling the server's CPU now */
                printf("{\"phase\":\"done\"}\n");
                fflush(stdout);
            }
            phase = PH_DONE;
            if (stop_requested) status = "interrupted";
            else if (n_ready == 0) status = "all_closed";
            else if (n_closed || members_lost) status = "partial";
            print_result(status, connect_s, wall, cpu);
            return n_ready == 0 ? 1 : 0;
        }
    }
}
