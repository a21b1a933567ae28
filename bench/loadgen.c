/*
 * loadgen: a small single-threaded WebSocket load generator for the Switchyard benchmarks.
 *
 * Why native: a Node `ws` client tops out around 90k msgs/s, far below what uWebSockets.js can
 * echo on one core, so a JS generator would measure itself instead of the server. One thread on
 * epoll with per-connection write batching keeps the generator's cost per message to a few hundred
 * nanoseconds, and it reports its own CPU use so a run can show it was not the bottleneck.
 *
 * Modes:
 *   echo  keep --inflight messages outstanding on each of --conns connections; after --warmup
 *         seconds count echoes and their round-trip latency for --duration seconds.
 *   idle  open --conns connections, wait for the first server frame on each, print a "ready"
 *         line, then hold them (answering heartbeats) until stdin closes or a line arrives,
 *         SIGTERM/SIGINT, or --hold seconds pass.
 * Protocols:
 *   native    Switchyard frames (also spoken by bench/bare-uws.ts, which echoes them verbatim).
 *   socketio  Engine.IO v4 / Socket.IO v5 packets over the websocket transport.
 *   signalr-json, signalr-msgpack  a SignalR hub over WebSockets (skipNegotiation): the handshake,
 *             then `invoke('echo', payload)` (an Invocation with an id; the Completion is the echo).
 *
 * Output: diagnostics on stderr; one JSON object on the last line of stdout. Before it, echo mode
 * prints {"phase":"measure"} when the measured window opens and idle mode prints {"ready":...}
 * once every connection has its first frame.
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

enum proto { PROTO_NATIVE, PROTO_SOCKETIO, PROTO_SIGNALR_JSON, PROTO_SIGNALR_MSGPACK };
static const char *const proto_names[] = {"native", "socketio", "signalr-json", "signalr-msgpack"};
enum mode { MODE_ECHO, MODE_IDLE };

static struct {
    const char *host;
    int port;
    const char *path;
    enum proto proto;
    enum mode mode;
    int conns;
    int inflight;
    int payload;
    double duration;
    double warmup;
    double connect_timeout;
    double hold;        /* idle mode: 0 = until stdin closes or a signal */
    int connect_batch;  /* handshakes in progress at once, so the server's accept backlog never overflows */
} opt = {
    .host = "127.0.0.1",
    .port = 0,
    .path = NULL,
    .proto = PROTO_NATIVE,
    .mode = MODE_ECHO,
    .conns = 50,
    .inflight = 16,
    .payload = 32,
    .duration = 5,
    .warmup = 1,
    .connect_timeout = 60,
    .hold = 0,
    .connect_batch = 256,
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

/* Log-linear buckets over nanoseconds: exact below 128 ns, then 64 buckets per power of two, so
 * every reported value is within ~1.6% of the true one while the whole table stays 30 KB and
 * recording is a couple of instructions. */
#define HIST_SUB_BITS 6
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

/* ---------------------------------------------------------------- connections */

enum conn_state {
    ST_IDLE,         /* not started yet */
    ST_CONNECTING,   /* non-blocking connect() in progress */
    ST_UPGRADING,    /* HTTP upgrade request sent, waiting for 101 */
    ST_WAIT_OPEN,    /* upgraded, waiting for the server's first frame */
    ST_WAIT_SIO,     /* socket.io: sent "40", waiting for the namespace connect ack */
    ST_READY,
    ST_DEAD,
};

struct buf {
    unsigned char *data;
    size_t len, cap;
};

struct conn {
    int fd;
    enum conn_state state;
    int want_out;        /* EPOLLOUT is registered because a write came up short */
    struct buf rbuf;     /* unparsed input */
    struct buf wbuf;     /* output not yet accepted by the kernel */
    size_t woff;
    struct buf frag;     /* a fragmented data message being reassembled */
    int frag_op;
    /* Send times of in-flight messages. The server answers each connection in order, so a FIFO
     * pairs every echo with its request without putting ids in the payload. */
    uint64_t *sent;
    unsigned ring_mask, head, count;
};

static struct conn *conns;
static int epfd;

/* global counters */
static int n_pending;    /* connections between connect() and ready */
static int n_started;    /* connections handed to connect() */
static int n_ready;
static int n_failed;     /* never became ready */
static int n_closed;     /* lost after being ready */
static uint64_t n_protocol_errors, n_pings, n_other_frames, n_unmatched;

/* echo-mode state */
enum phase { PH_CONNECT, PH_WARMUP, PH_MEASURE, PH_DONE };
static enum phase phase = PH_CONNECT;
static uint64_t measured_msgs;
static int sending;      /* new messages are sent for each echo while set */

static unsigned char *msg;   /* the message text every connection sends */
static size_t msg_len;

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) { (void)sig; stop_requested = 1; }

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

static void set_events(struct conn *c, int want_out) {
    if (c->want_out == want_out) return;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.u32 = (uint32_t)(c - conns)};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl mod");
    c->want_out = want_out;
}

static void start_more_connections(void);

static void conn_kill(struct conn *c, const char *why) {
    if (c->state == ST_DEAD) return;
    if (c->state == ST_READY) {
        n_closed++;
        n_ready--;
    } else {
        n_failed++;
        n_pending--;
    }
    if (n_failed + n_closed <= 5) fprintf(stderr, "loadgen: connection %d: %s\n", (int)(c - conns), why);
    c->state = ST_DEAD;
    close(c->fd);  /* also removes it from epoll */
    c->fd = -1;
    buf_free(&c->rbuf);
    buf_free(&c->wbuf);
    buf_free(&c->frag);
    start_more_connections();
}

/* Push queued output to the kernel; whatever does not fit waits for EPOLLOUT. */
static void conn_flush(struct conn *c) {
    while (c->woff < c->wbuf.len) {
        ssize_t n = send(c->fd, c->wbuf.data + c->woff, c->wbuf.len - c->woff, MSG_NOSIGNAL);
        if (n > 0) {
            c->woff += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_events(c, 1);
            return;
        }
        conn_kill(c, n == 0 ? "send returned 0" : strerror(errno));
        return;
    }
    c->wbuf.len = c->woff = 0;
    set_events(c, 0);
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

    buf_reserve(&c->wbuf, h + len);
    unsigned char *out = c->wbuf.data + c->wbuf.len;
    memcpy(out, hdr, h);
    out += h;
    for (size_t i = 0; i < len; i++) out[i] = data[i] ^ k[i & 3];
    c->wbuf.len += h + len;
}

static void queue_text(struct conn *c, const char *s) {
    queue_frame(c, 0x1, (const unsigned char *)s, strlen(s));
}

/* Send one benchmark message and remember when. */
static void send_message(struct conn *c, uint64_t t) {
    queue_frame(c, opt.proto == PROTO_SIGNALR_MSGPACK ? 0x2 : 0x1, msg, msg_len);
    if (c->count <= c->ring_mask) {
        c->sent[(c->head + c->count) & c->ring_mask] = t;
        c->count++;
    }
}

static void on_echo(struct conn *c, uint64_t t) {
    if (c->count == 0) {
        /* An echo we have no record of: the pairing is lost, so keep it out of the latency data. */
        n_unmatched++;
        return;
    }
    uint64_t sent_at = c->sent[c->head];
    c->head = (c->head + 1) & c->ring_mask;
    c->count--;
    if (phase == PH_MEASURE) {
        measured_msgs++;
        hist_add(t - sent_at);
    }
    if (sending) send_message(c, t);
}

static void became_ready(struct conn *c) {
    c->state = ST_READY;
    n_pending--;
    n_ready++;
    start_more_connections();
}

static int has(const unsigned char *p, size_t n, const char *needle) {
    return memmem(p, n, needle, strlen(needle)) != NULL;
}

/* A complete text (or binary) message from the server. */
static void on_message(struct conn *c, const unsigned char *p, size_t n, uint64_t t) {
    if (opt.proto == PROTO_NATIVE) {
        if (c->state == ST_WAIT_OPEN) {
            /* The gateway's `open` frame (or the bare server's hello) is always first. */
            became_ready(c);
            return;
        }
        if (has(p, n, "\"event\":\"echo\"")) {
            on_echo(c, t);
        } else if (n < 64 && has(p, n, "\"type\":\"ping\"")) {
            queue_text(c, "{\"type\":\"pong\"}");
            n_pings++;
        } else {
            n_other_frames++;
        }
        return;
    }

    if (opt.proto == PROTO_SIGNALR_JSON || opt.proto == PROTO_SIGNALR_MSGPACK) {
        if (c->state == ST_WAIT_OPEN) {
            /* the handshake response: {}\x1e (text for JSON, binary for MessagePack) */
            if (n >= 3 && p[0] == '{' && p[1] == '}') became_ready(c);
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
                if (has(p + i, len, "\"type\":3")) on_echo(c, t);
                else if (has(p + i, len, "\"type\":6")) {
                    queue_text(c, "{\"type\":6}\x1e");
                    n_pings++;
                } else n_other_frames++;
                i += len + 1;
            }
            return;
        }
        /* MessagePack: VarInt-length-prefixed arrays; [3, …] (fixarray 4 or 5) is a Completion */
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
            if ((p[i] == 0x95 || p[i] == 0x94) && p[i + 1] == 0x03) on_echo(c, t);
            else if (p[i] == 0x91 && p[i + 1] == 0x06) {
                static const unsigned char ping[] = {0x02, 0x91, 0x06};
                queue_frame(c, 0x2, ping, sizeof ping);
                n_pings++;
            } else n_other_frames++;
            i += len;
        }
        return;
    }

    /* Engine.IO packet types: 0 open, 1 close, 2 ping, 3 pong, 4 message (payload is a Socket.IO
     * packet: 0 connect, 2 event, 4 connect_error). */
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
            became_ready(c);
            return;
        }
        if (n >= 2 && p[1] == '4') {
            n_protocol_errors++;
            conn_kill(c, "socket.io connect_error");
            return;
        }
        if (n >= 10 && memcmp(p, "42[\"echo\"", 9) == 0 && c->state == ST_READY) {
            on_echo(c, t);
            return;
        }
        break;
    }
    n_other_frames++;
}

/* Parse every complete frame in the read buffer. Returns 0 if the connection died. */
static int parse_frames(struct conn *c, uint64_t t) {
    unsigned char *p = c->rbuf.data;
    size_t avail = c->rbuf.len, off = 0;
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
                if (op != 0) c->frag_op = op;
                buf_append(&c->frag, data, (size_t)len);
                if (fin) {
                    on_message(c, c->frag.data, c->frag.len, t);
                    if (c->state != ST_DEAD) c->frag.len = 0;
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
        if (c->state == ST_DEAD) return 0;
    }
    if (off > 0) {
        memmove(p, p + off, avail - off);
        c->rbuf.len = avail - off;
    }
    return 1;
}

/* Looks for the end of the HTTP 101 response; frames may follow in the same read. */
static int parse_upgrade(struct conn *c) {
    unsigned char *end = memmem(c->rbuf.data, c->rbuf.len, "\r\n\r\n", 4);
    if (!end) {
        if (c->rbuf.len > 16384) {
            conn_kill(c, "oversized upgrade response");
            return 0;
        }
        return 1;
    }
    /* Sec-WebSocket-Accept is not verified: it would need SHA-1 and only guards against
     * non-WebSocket servers answering 101, which cannot happen against our own servers. */
    if (c->rbuf.len < 12 || memcmp(c->rbuf.data, "HTTP/1.1 101", 12) != 0) {
        char line[80];
        size_t n = 0;
        while (n < sizeof line - 1 && n < c->rbuf.len && c->rbuf.data[n] != '\r') {
            line[n] = (char)c->rbuf.data[n];
            n++;
        }
        line[n] = 0;
        n_protocol_errors++;
        conn_kill(c, line);
        return 0;
    }
    size_t hlen = (size_t)(end + 4 - c->rbuf.data);
    memmove(c->rbuf.data, c->rbuf.data + hlen, c->rbuf.len - hlen);
    c->rbuf.len -= hlen;
    c->state = ST_WAIT_OPEN;
    /* a SignalR client speaks first: the hub protocol's handshake */
    if (opt.proto == PROTO_SIGNALR_JSON) queue_text(c, "{\"protocol\":\"json\",\"version\":1}\x1e");
    else if (opt.proto == PROTO_SIGNALR_MSGPACK) queue_text(c, "{\"protocol\":\"messagepack\",\"version\":1}\x1e");
    return 1;
}

static void send_upgrade(struct conn *c) {
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
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
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\n"
                     "Host: %s:%d\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "\r\n",
                     opt.path, opt.host, opt.port, key);
    buf_append(&c->wbuf, req, (size_t)n);
    c->state = ST_UPGRADING;
    conn_flush(c);
}

static struct sockaddr_in server_addr;

static void conn_start(struct conn *c) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    int one = 1;
    /* Without NODELAY, Nagle would hold back a small frame while an earlier one is unacknowledged
     * and the latency numbers would measure delayed-ACK timers instead of the server. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->state = ST_CONNECTING;
    c->want_out = 1;
    n_started++;
    n_pending++;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)(c - conns)};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl add");
    if (connect(fd, (struct sockaddr *)&server_addr, sizeof server_addr) < 0 && errno != EINPROGRESS)
        conn_kill(c, strerror(errno));
}

static void start_more_connections(void) {
    while (n_started < opt.conns && n_pending < opt.connect_batch) conn_start(&conns[n_started]);
}

static void on_writable(struct conn *c) {
    if (c->state == ST_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            conn_kill(c, strerror(err));
            return;
        }
        send_upgrade(c);
        return;
    }
    conn_flush(c);
}

static void on_readable(struct conn *c, uint64_t t) {
    for (;;) {
        buf_reserve(&c->rbuf, 4096);
        size_t room = c->rbuf.cap - c->rbuf.len;
        ssize_t n = recv(c->fd, c->rbuf.data + c->rbuf.len, room, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            conn_kill(c, strerror(errno));
            return;
        }
        if (n == 0) {
            conn_kill(c, "server closed the connection");
            return;
        }
        c->rbuf.len += (size_t)n;
        if (c->state == ST_UPGRADING) {
            if (!parse_upgrade(c)) return;
            if (c->state == ST_UPGRADING) continue;
        }
        if (!parse_frames(c, t)) return;
        /* A short read means the socket is drained; skip the extra recv() that would see EAGAIN. */
        if ((size_t)n < room) break;
    }
    /* Every reply produced by this read goes out in one send(). */
    if (c->wbuf.len > c->woff) conn_flush(c);
}

/* ---------------------------------------------------------------- output */

static void print_result(const char *status, double connect_s, double wall_s, double cpu_s) {
    double cpu_pct = wall_s > 0 ? 100.0 * cpu_s / wall_s : 0;
    printf("{\"status\":\"%s\",\"mode\":\"%s\",\"proto\":\"%s\",\"conns\":%d,\"ready\":%d,"
           "\"failed\":%d,\"closed\":%d,\"inflight\":%d,\"payload\":%d,\"connect_s\":%.3f",
           status, opt.mode == MODE_ECHO ? "echo" : "idle", proto_names[opt.proto],
           opt.conns, n_ready, n_failed, n_closed, opt.inflight, opt.payload, connect_s);
    if (opt.mode == MODE_ECHO) {
        printf(",\"duration_s\":%.4f,\"msgs\":%llu,\"msgs_per_s\":%.1f", wall_s,
               (unsigned long long)measured_msgs, wall_s > 0 ? measured_msgs / wall_s : 0);
        printf(",\"lat_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,\"mean\":%.1f}",
               hist_percentile_us(0.50), hist_percentile_us(0.90), hist_percentile_us(0.99),
               hist_percentile_us(0.999), hist_max / 1000.0,
               hist_count ? (double)hist_sum / hist_count / 1000.0 : 0);
    } else {
        printf(",\"held_s\":%.3f", wall_s);
    }
    printf(",\"cpu_pct\":%.1f,\"pings\":%llu,\"other_frames\":%llu,\"unmatched\":%llu,\"protocol_errors\":%llu}\n",
           cpu_pct, (unsigned long long)n_pings, (unsigned long long)n_other_frames,
           (unsigned long long)n_unmatched, (unsigned long long)n_protocol_errors);
    fflush(stdout);
}

/* ---------------------------------------------------------------- main */

static void usage(int status) {
    fprintf(status ? stderr : stdout,
            "usage: loadgen --port N [--host 127.0.0.1] [--path P] [--proto native|socketio|signalr-json|signalr-msgpack]\n"
            "               [--mode echo|idle] [--conns C] [--inflight K] [--payload B]\n"
            "               [--duration S] [--warmup S] [--connect-timeout S] [--hold S]\n"
            "               [--connect-batch N]\n");
    exit(status);
}

static void build_message(void) {
    char *pl = malloc((size_t)opt.payload + 1);
    memset(pl, 'x', (size_t)opt.payload);
    pl[opt.payload] = 0;
    size_t cap = (size_t)opt.payload + 128;
    msg = malloc(cap);
    int n;
    if (opt.proto == PROTO_SIGNALR_MSGPACK) {
        /* [1, {}, "0", "echo", [payload], []] with its VarInt length */
        unsigned char body[64 + 5];
        size_t b = 0;
        body[b++] = 0x96, body[b++] = 0x01, body[b++] = 0x80, body[b++] = 0xa1, body[b++] = '0';
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
        n = snprintf((char *)msg, cap, "{\"type\":1,\"invocationId\":\"0\",\"target\":\"echo\",\"arguments\":[\"%s\"]}\x1e", pl);
    } else {
        n = opt.proto == PROTO_NATIVE
                ? snprintf((char *)msg, cap, "{\"type\":\"event\",\"event\":\"echo\",\"args\":[\"%s\"]}", pl)
                : snprintf((char *)msg, cap, "42[\"echo\",\"%s\"]", pl);
    }
    msg_len = (size_t)n;
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
        {"connect-batch", required_argument, 0, 'B'}, {"help", no_argument, 0, 'u'}, {0, 0, 0, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'h': opt.host = optarg; break;
        case 'p': opt.port = atoi(optarg); break;
        case 'P': opt.path = optarg; break;
        case 'r':
            if (!strcmp(optarg, "native")) opt.proto = PROTO_NATIVE;
            else if (!strcmp(optarg, "socketio")) opt.proto = PROTO_SOCKETIO;
            else if (!strcmp(optarg, "signalr-json")) opt.proto = PROTO_SIGNALR_JSON;
            else if (!strcmp(optarg, "signalr-msgpack")) opt.proto = PROTO_SIGNALR_MSGPACK;
            else usage(64);
            break;
        case 'm':
            if (!strcmp(optarg, "echo")) opt.mode = MODE_ECHO;
            else if (!strcmp(optarg, "idle")) opt.mode = MODE_IDLE;
            else usage(64);
            break;
        case 'c': opt.conns = atoi(optarg); break;
        case 'k': opt.inflight = atoi(optarg); break;
        case 'b': opt.payload = atoi(optarg); break;
        case 'd': opt.duration = atof(optarg); break;
        case 'w': opt.warmup = atof(optarg); break;
        case 't': opt.connect_timeout = atof(optarg); break;
        case 'H': opt.hold = atof(optarg); break;
        case 'B': opt.connect_batch = atoi(optarg); break;
        case 'u': usage(0); break;
        default: usage(64);
        }
    }
    if (opt.port <= 0 || opt.conns <= 0 || opt.inflight <= 0 || opt.payload < 0 || opt.connect_batch <= 0) usage(64);
    /* the MessagePack message writes the payload's length in 16 bits */
    if (opt.proto == PROTO_SIGNALR_MSGPACK && opt.payload >= 65536) usage(64);
    if (!opt.path) opt.path = opt.proto == PROTO_NATIVE ? "/rt/ws" : opt.proto == PROTO_SOCKETIO ? "/socket.io/?EIO=4&transport=websocket" : "/hubs/demo";

    /* Each connection is one descriptor; lift the soft limit to the hard one. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    rng_state ^= now_ns() * 0x2545F4914F6CDD1Dull ^ (uint64_t)getpid();
    build_message();

    memset(&server_addr, 0, sizeof server_addr);
    server_addr.sin_family = AF_INET;
    server_addr.sin_port = htons((uint16_t)opt.port);
    if (inet_pton(AF_INET, opt.host, &server_addr.sin_addr) != 1) {
        fprintf(stderr, "loadgen: --host must be an IPv4 address\n");
        return 64;
    }

    unsigned ring = 1;
    while (ring < (unsigned)opt.inflight) ring <<= 1;
    conns = calloc((size_t)opt.conns, sizeof *conns);
    if (!conns) die("calloc");
    for (int i = 0; i < opt.conns; i++) {
        conns[i].fd = -1;
        if (opt.mode == MODE_ECHO) {
            conns[i].sent = malloc(ring * sizeof(uint64_t));
            conns[i].ring_mask = ring - 1;
        }
    }

    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) die("epoll_create1");
    int watch_stdin = 0;
    if (opt.mode == MODE_IDLE) {
        /* The harness closes our stdin (or writes a line) when it has read the memory numbers. */
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
        watch_stdin = epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev) == 0;
    }

    const uint64_t t_begin = now_ns();
    uint64_t t_phase = t_begin, t_warm_end = 0, t_measure_end = 0;
    double cpu_at_start = 0, connect_s = 0;
    int holding = 0;  /* idle mode: all connections are settled and we are only waiting */
    const char *status = "ok";
    start_more_connections();

    struct epoll_event events[512];
    for (;;) {
        /* Phase deadlines are checked after every wake-up; under load wake-ups are continuous,
         * and the 100 ms cap only matters while idle. */
        int n = epoll_wait(epfd, events, 512, 100);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        uint64_t t = now_ns();
        for (int i = 0; i < n; i++) {
            if (events[i].data.u32 == UINT32_MAX) {
                char tmp[256];
                ssize_t r = read(0, tmp, sizeof tmp);
                if (r <= 0 || memchr(tmp, '\n', (size_t)r)) stop_requested = 1;
                if (r <= 0) epoll_ctl(epfd, EPOLL_CTL_DEL, 0, NULL);
                continue;
            }
            struct conn *c = &conns[events[i].data.u32];
            if (c->state == ST_DEAD) continue;
            if (events[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
                on_writable(c);
                if (c->state == ST_DEAD) continue;
            }
            /* Timestamp each read rather than the whole batch: with hundreds of ready sockets
             * per wake-up, one stamp for all would shave the batch's processing time off the
             * latencies of the later ones. vDSO clock reads cost tens of nanoseconds. */
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c, now_ns());
        }

        if (phase == PH_CONNECT) {
            int settled = n_ready + n_failed + n_closed >= opt.conns;
            int timed_out = (double)(t - t_begin) / 1e9 > opt.connect_timeout;
            if (settled || timed_out || stop_requested) {
                connect_s = (double)(t - t_begin) / 1e9;
                if (!settled) fprintf(stderr, "loadgen: %d of %d connections ready after %.1fs\n", n_ready, opt.conns, connect_s);
                if (n_ready == 0 || (stop_requested && !settled)) {
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
                    cpu_at_start = cpu_seconds();
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

        if (opt.mode == MODE_IDLE && holding) {
            int timed_out = opt.hold > 0 && (double)(t - t_phase) / 1e9 >= opt.hold;
            if (stop_requested || timed_out || (!watch_stdin && opt.hold <= 0 && n_ready == 0)) {
                print_result(status, connect_s, (double)(t - t_phase) / 1e9, cpu_seconds() - cpu_at_start);
                return 0;
            }
            continue;
        }

        if (phase == PH_WARMUP && t >= t_warm_end) {
            phase = PH_MEASURE;
            t_phase = t;
            cpu_at_start = cpu_seconds();
            /* Lets the harness sample the server's CPU over exactly the measured window. */
            printf("{\"phase\":\"measure\"}\n");
            fflush(stdout);
        } else if ((phase == PH_MEASURE && t >= t_measure_end) || stop_requested || n_ready == 0) {
            double wall = phase == PH_MEASURE ? (double)(t - t_phase) / 1e9 : 0;
            double cpu = phase == PH_MEASURE ? cpu_seconds() - cpu_at_start : 0;
            if (stop_requested) status = "interrupted";
            else if (n_ready == 0) status = "all_closed";
            else if (n_closed) status = "partial";
            print_result(status, connect_s, wall, cpu);
            return n_ready == 0 ? 1 : 0;
        }
    }
}
