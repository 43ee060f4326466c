// A small NVMe/TCP initiator and bare request/response client for the `target` benchmark, in C so that its own cost
// per I/O is small and known (it prints its CPU time). One thread per connection keeps QD commands in flight on a
// blocking socket: nothing is allocated per I/O, no timers, no locks.
//
// usage: zns-bench-client nvme|bare PORT NQN WARMUP SECONDS Read|Write|Append SIZE QD CONNECTIONS
// prints "START" when the measured window opens and "END ops seconds 0 cpu-seconds" when it closes, as the
// managed client does.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { BLOCK = 4096, ZONE_BLOCKS = 4096, READ_ZONES = 4, WRITE_ZONE_BASE = 8, APPEND_ZONE_BASE = 192, APPEND_ZONES = 64 };
enum { CAPSULE_HDR = 72, RESP_LEN = 24, DATA_HDR = 24 };
enum { KIND_READ, KIND_WRITE, KIND_APPEND };
static const char *HOST_NQN = "nqn.2014-08.org.nvmexpress:uuid:6d1f2c9a-0b7e-4f43-9a51-3c2b8e0f7a11";
static const uint8_t HOST_ID[16] = {0x6d,0x1f,0x2c,0x9a,0x0b,0x7e,0x4f,0x43,0x9a,0x51,0x3c,0x2b,0x8e,0x0f,0x7a,0x11};

static int g_port, g_kind, g_size, g_qd, g_conns, g_bare;
static const char *g_nqn;
static uint16_t g_cntlid;
static uint32_t g_in_capsule_max = 8192;   // I/O queues: IOCCSZ * 16 - 64 from Identify Controller, as the Linux host
static atomic_int g_append_current;
static atomic_long *g_ops;

static void die(const char *what) { fprintf(stderr, "zns-bench-client: %s: %s\n", what, strerror(errno)); exit(1); }
static void fail(const char *what) { fprintf(stderr, "zns-bench-client: %s\n", what); exit(1); }

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

typedef struct {
    int fd;
    uint8_t *rx;
    size_t rx_len, rx_cap;
    uint8_t *tx;
} conn_t;

static void send_all(conn_t *c, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t s = send(c->fd, p, n, MSG_NOSIGNAL);
        if (s < 0) { if (errno == EINTR) continue; die("send"); }
        p += s; n -= (size_t)s;
    }
}

static int open_conn(conn_t *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0) die("socket");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)g_port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
    c->rx_cap = 4u << 20;
    c->rx = malloc(c->rx_cap);
    c->tx = malloc(CAPSULE_HDR + (1u << 20) + DATA_HDR);
    c->rx_len = 0;
    return 0;
}

// Returns the next whole PDU (or bare response of `fixed` bytes) at c->rx; its length in *len. Consume with eat().
static uint8_t *next_pdu(conn_t *c, size_t fixed, size_t *len)
{
    for (;;) {
        size_t need = fixed;
        if (!fixed && c->rx_len >= 8) need = get32(c->rx + 4);
        if (need && c->rx_len >= need) { *len = need; return c->rx; }
        if (c->rx_len == c->rx_cap) fail("PDU larger than the receive buffer");
        ssize_t r = recv(c->fd, c->rx + c->rx_len, c->rx_cap - c->rx_len, 0);
        if (r < 0) { if (errno == EINTR) continue; die("recv"); }
        if (r == 0) fail("target closed the connection");
        c->rx_len += (size_t)r;
    }
}

static void eat(conn_t *c, size_t n) { memmove(c->rx, c->rx + n, c->rx_len - n); c->rx_len -= n; }

// ---------------------------------------------------------------- NVMe/TCP

static void icreq(conn_t *c)
{
    uint8_t p[128] = {0};
    p[0] = 0x00; p[2] = 128; put32(p + 4, 128);   // ICReq, HLEN 128, PLEN 128; PFV 0, no digests, MAXR2T 0
    send_all(c, p, sizeof p);
    size_t n;
    uint8_t *r = next_pdu(c, 0, &n);
    if (r[0] != 0x01) fail("no ICResp");
    eat(c, n);
}

// Writes a CapsuleCmd with `data` in-capsule (or none) into c->tx; returns its length. SQE fields after SGL1 come
// from cdw10..cdw13.
static size_t capsule(conn_t *c, uint8_t opcode, uint8_t fctype, uint16_t cid, uint32_t nsid, uint32_t sgl_len,
    const uint8_t *data, uint32_t in_capsule, uint32_t cdw10, uint32_t cdw11, uint32_t cdw12, uint32_t cdw13)
{
    uint8_t *p = c->tx;
    memset(p, 0, CAPSULE_HDR);
    p[0] = 0x04; p[2] = CAPSULE_HDR; p[3] = in_capsule ? CAPSULE_HDR : 0; put32(p + 4, CAPSULE_HDR + in_capsule);
    uint8_t *s = p + 8;
    s[0] = opcode; s[1] = 0x40; put16(s + 2, cid);
    if (opcode == 0x7F) s[4] = fctype; else put32(s + 4, nsid);
    put32(s + 32, sgl_len); s[39] = in_capsule || sgl_len == 0 ? 0x01 : 0x5A;   // in-capsule, or transport data block
    put32(s + 40, cdw10); put32(s + 44, cdw11); put32(s + 48, cdw12); put32(s + 52, cdw13);
    if (in_capsule) memcpy(p + CAPSULE_HDR, data, in_capsule);
    return CAPSULE_HDR + in_capsule;
}

// Waits for the CapsuleResp of `cid` (setup only); returns DW0/DW1, fails on an error status.
static uint64_t await_resp(conn_t *c, uint16_t cid, const char *what)
{
    for (;;) {
        size_t n;
        uint8_t *r = next_pdu(c, 0, &n);
        if (r[0] == 0x05 && get16(r + 20) == cid) {
            uint64_t result = get64(r + 8);
            uint16_t status = get16(r + 22) >> 1;
            eat(c, n);
            if (status) { fprintf(stderr, "%s: status %#x\n", what, status); exit(1); }
            return result;
        }
        eat(c, n);
    }
}

static void fabrics_connect(conn_t *c, uint16_t qid, uint16_t sqsize, uint16_t cntlid)
{
    uint8_t data[1024] = {0};
    memcpy(data, HOST_ID, 16);
    put16(data + 16, cntlid);
    strncpy((char *)data + 256, g_nqn, 255);
    strncpy((char *)data + 512, HOST_NQN, 255);
    // CDW10: RECFMT 0, QID; CDW11: SQSIZE; CDW12: KATO 0.
    size_t n = capsule(c, 0x7F, 0x01, 0x77, 0, sizeof data, data, sizeof data, (uint32_t)qid << 16, sqsize, 0, 0);
    send_all(c, c->tx, n);
    uint64_t r = await_resp(c, 0x77, "connect");
    if (qid == 0) g_cntlid = (uint16_t)r;
}

static uint64_t property(conn_t *c, int set, uint32_t offset, uint64_t value)
{
    size_t n = capsule(c, 0x7F, set ? 0x00 : 0x04, 0x78, 0, 0, NULL, 0, 0, offset, (uint32_t)value, (uint32_t)(value >> 32));
    send_all(c, c->tx, n);
    return await_resp(c, 0x78, set ? "property set" : "property get");
}

// Identify Controller (CNS 1) on the admin queue: the in-capsule data limit of I/O queues comes from IOCCSZ
// (bytes 1795:1792), which is how the Linux host decides between in-capsule data and R2T.
static void identify_in_capsule_limit(conn_t *c)
{
    size_t n = capsule(c, 0x06, 0, 0x79, 0, 4096, NULL, 0, 0x01, 0, 0, 0);
    send_all(c, c->tx, n);
    uint8_t id[4096];
    size_t have = 0;
    for (;;) {
        size_t len;
        uint8_t *r = next_pdu(c, 0, &len);
        if (r[0] == 0x07 && get16(r + 8) == 0x79) {               // C2HData: PDO at byte 3, DATAO at 12, DATAL at 16
            uint32_t off = get32(r + 12), dl = get32(r + 16);
            if (off + dl > sizeof id) fail("identify data out of range");
            memcpy(id + off, r + r[3], dl);
            have += dl;
            eat(c, len);
            continue;
        }
        if (r[0] == 0x05 && get16(r + 20) == 0x79) {
            uint16_t status = get16(r + 22) >> 1;
            eat(c, len);
            if (status || have != sizeof id) fail("identify controller failed");
            break;
        }
        eat(c, len);
    }
    uint32_t ioccsz = get32(id + 1792);
    if (ioccsz < 4) fail("IOCCSZ below 4");
    g_in_capsule_max = ioccsz * 16 - 64;
}

typedef struct {
    int worker;          // global index: connection * QD + slot
    uint64_t lba;        // reads: next LBA; writes: offset in the zone
    int resetting;
    int append_zone;     // the ring position this slot appended to
} slot_t;

static uint8_t g_payload[1 << 20];

static size_t next_command(conn_t *c, slot_t *s, uint16_t cid)
{
    int nlb = g_size / BLOCK;
    switch (g_kind) {
    case KIND_READ: {
        uint64_t span = (uint64_t)READ_ZONES * ZONE_BLOCKS;
        uint64_t lba = s->lba;
        s->lba += nlb;
        if (s->lba + nlb > span) s->lba = 0;
        return capsule(c, 0x02, 0, cid, 1, g_size, NULL, 0, (uint32_t)lba, (uint32_t)(lba >> 32), nlb - 1, 0);
    }
    case KIND_WRITE: {
        uint64_t zslba = (uint64_t)(WRITE_ZONE_BASE + s->worker) * ZONE_BLOCKS;
        if (s->lba + nlb > ZONE_BLOCKS) {
            s->lba = 0;
            s->resetting = 1;
            return capsule(c, 0x79, 0, cid, 1, 0, NULL, 0, (uint32_t)zslba, (uint32_t)(zslba >> 32), 0, 0x04);
        }
        uint64_t lba = zslba + s->lba;
        s->lba += nlb;
        uint32_t in = g_size <= g_in_capsule_max ? (uint32_t)g_size : 0;
        return capsule(c, 0x01, 0, cid, 1, g_size, g_payload, in, (uint32_t)lba, (uint32_t)(lba >> 32), nlb - 1, 0);
    }
    default: {
        int current = atomic_load(&g_append_current);
        s->append_zone = current;
        uint64_t zslba = (uint64_t)(APPEND_ZONE_BASE + current % APPEND_ZONES) * ZONE_BLOCKS;
        uint32_t in = g_size <= g_in_capsule_max ? (uint32_t)g_size : 0;
        return capsule(c, 0x7D, 0, cid, 1, g_size, g_payload, in, (uint32_t)zslba, (uint32_t)(zslba >> 32), nlb - 1, 0);
    }
    }
}

static void *nvme_worker(void *arg)
{
    int conn = (int)(intptr_t)arg;
    conn_t c;
    open_conn(&c);
    icreq(&c);
    fabrics_connect(&c, (uint16_t)(conn + 1), 127, g_cntlid);
    slot_t *slots = calloc((size_t)g_qd, sizeof *slots);
    int nlb = g_size / BLOCK;
    for (int i = 0; i < g_qd; i++) {
        slots[i].worker = conn * g_qd + i;
        slots[i].lba = (uint64_t)slots[i].worker * 997 * nlb % ((uint64_t)READ_ZONES * ZONE_BLOCKS);
        if (g_kind != KIND_READ) slots[i].lba = 0;
        size_t n = next_command(&c, &slots[i], (uint16_t)i);
        send_all(&c, c.tx, n);
    }
    long ops = 0;
    for (;;) {
        size_t n;
        uint8_t *p = next_pdu(&c, 0, &n);
        switch (p[0]) {
        case 0x07: eat(&c, n); break;                      // C2HData: the payload is not looked at
        case 0x09: {                                        // R2T: send all the data solicited
            uint16_t cid = get16(p + 8), ttag = get16(p + 10);
            uint32_t off = get32(p + 12), len = get32(p + 16);
            eat(&c, n);
            uint8_t h[DATA_HDR] = {0};
            h[0] = 0x06; h[1] = 0x04; h[2] = DATA_HDR; h[3] = DATA_HDR; put32(h + 4, DATA_HDR + len);
            put16(h + 8, cid); put16(h + 10, ttag); put32(h + 12, off); put32(h + 16, len);
            memcpy(c.tx, h, DATA_HDR);
            memcpy(c.tx + DATA_HDR, g_payload, len);
            send_all(&c, c.tx, DATA_HDR + len);
            break;
        }
        case 0x05: {
            uint16_t cid = get16(p + 20);
            uint16_t status = get16(p + 22) >> 1;
            eat(&c, n);
            slot_t *s = &slots[cid];
            if (status) {
                if (g_kind == KIND_APPEND) {
                    // The shared zone is full: move the ring on and reset the zone two ahead, as the managed client does.
                    int cur = s->append_zone;
                    if (atomic_compare_exchange_strong(&g_append_current, &cur, cur + 1)) {
                        uint64_t ahead = (uint64_t)(APPEND_ZONE_BASE + (s->append_zone + 2) % APPEND_ZONES) * ZONE_BLOCKS;
                        s->resetting = 1;
                        size_t m = capsule(&c, 0x79, 0, cid, 1, 0, NULL, 0, (uint32_t)ahead, (uint32_t)(ahead >> 32), 0, 0x04);
                        send_all(&c, c.tx, m);
                        break;
                    }
                } else {
                    fprintf(stderr, "I/O failed: status %#x\n", status);
                    exit(1);
                }
            } else if (s->resetting) {
                s->resetting = 0;
            } else {
                atomic_store_explicit(&g_ops[conn * 16], ++ops, memory_order_relaxed);
            }
            size_t m = next_command(&c, s, cid);
            send_all(&c, c.tx, m);
            break;
        }
        default:
            fprintf(stderr, "unexpected PDU type %#x\n", p[0]);
            exit(1);
        }
    }
    return NULL;
}

// ---------------------------------------------------------------- bare loop

static void *bare_worker(void *arg)
{
    int conn = (int)(intptr_t)arg;
    conn_t c;
    open_conn(&c);
    int payload = g_kind == KIND_READ ? 0 : g_size;
    int response = g_kind == KIND_READ ? DATA_HDR + g_size + RESP_LEN : RESP_LEN;
    size_t request = CAPSULE_HDR + (size_t)payload;
    memset(c.tx, 0, request);
    put32(c.tx, (uint32_t)payload);
    put32(c.tx + 4, (uint32_t)response);
    for (int i = 0; i < g_qd; i++)
        send_all(&c, c.tx, request);
    long ops = 0;
    for (;;) {
        size_t n;
        next_pdu(&c, (size_t)response, &n);
        eat(&c, n);
        atomic_store_explicit(&g_ops[conn * 16], ++ops, memory_order_relaxed);
        send_all(&c, c.tx, request);
    }
    return NULL;
}

// ---------------------------------------------------------------- main

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static double cpu(void)
{
    struct rusage u; getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}
static long total(void) { long s = 0; for (int i = 0; i < g_conns; i++) s += atomic_load(&g_ops[i * 16]); return s; }
static void sleep_for(double s) { struct timespec t = { (time_t)s, (long)((s - (time_t)s) * 1e9) }; while (nanosleep(&t, &t) && errno == EINTR) { } }

int main(int argc, char **argv)
{
    if (argc != 10) { fprintf(stderr, "usage: %s nvme|bare PORT NQN WARMUP SECONDS Read|Write|Append SIZE QD CONNECTIONS\n", argv[0]); return 2; }
    g_bare = strcmp(argv[1], "bare") == 0;
    g_port = atoi(argv[2]);
    g_nqn = argv[3];
    double warmup = atof(argv[4]), seconds = atof(argv[5]);
    g_kind = strcmp(argv[6], "Read") == 0 ? KIND_READ : strcmp(argv[6], "Write") == 0 ? KIND_WRITE : KIND_APPEND;
    g_size = atoi(argv[7]);
    g_qd = atoi(argv[8]);
    g_conns = atoi(argv[9]);
    if (g_size <= 0 || g_size > (int)sizeof g_payload || g_qd < 1 || g_qd > 127 || g_conns < 1) fail("bad arguments");
    for (size_t i = 0; i < sizeof g_payload; i++) g_payload[i] = (uint8_t)(i * 131 + 7);
    g_ops = calloc((size_t)g_conns * 16, sizeof *g_ops);

    if (!g_bare) {
        conn_t admin;
        open_conn(&admin);
        icreq(&admin);
        fabrics_connect(&admin, 0, 31, 0xFFFF);
        property(&admin, 1, 0x14, 0x00460061);             // CC: EN, all I/O command sets, 64-byte SQEs, 16-byte CQEs
        while ((property(&admin, 0, 0x1C, 0) & 1) == 0)    // CSTS.RDY
            sleep_for(0.001);
        identify_in_capsule_limit(&admin);
    }
    pthread_t *threads = calloc((size_t)g_conns, sizeof *threads);
    for (int i = 0; i < g_conns; i++)
        pthread_create(&threads[i], NULL, g_bare ? bare_worker : nvme_worker, (void *)(intptr_t)i);

    sleep_for(warmup);
    long ops0 = total();
    double t0 = now(), c0 = cpu();
    printf("START\n");
    fflush(stdout);
    sleep_for(seconds);
    long ops1 = total();
    double t1 = now(), c1 = cpu();
    printf("END %ld %.6f 0 %.6f\n", ops1 - ops0, t1 - t0, c1 - c0);
    fflush(stdout);
    _exit(0);
}
