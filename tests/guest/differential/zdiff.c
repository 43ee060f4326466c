/* zdiff: drive two zoned NVMe namespaces (QEMU's emulated ZNS device and zns over NVMe/TCP) with the same
 * commands through the kernel's passthrough char devices and compare every answer: status (SCT, SC, DNR),
 * CQE DW0/DW1, data read back, zone reports byte by byte. Prints TAP lines.
 *   zdiff CASEFILE NGDEV_A NGDEV_B CTRL_A CTRL_B ZSZE SEED COUNT [NG2_A NG2_B]
 * CASEFILE: named cases, one command per line (see cases.txt); then a generated sequence of COUNT commands
 * from SEED. Addresses may be written zN+OFF (zone N, block OFF). NG2_A/NG2_B: namespace 2 of each device, for
 * commands prefixed "@2" (a source namespace of cross-namespace Copy). */
#include <errno.h>
#include <fcntl.h>
#include <linux/nvme_ioctl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define BS 4096
#define MAXBUF (1 << 20)
static int fa, fb, ca, cb, fa2 = -1, fb2 = -1, tap;
static uint64_t zsze, nzones;
static uint8_t *ba, *bb, *wbuf;
static uint64_t rng;
static unsigned allowed_count;

static uint64_t rnd(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }

struct cmd { uint8_t opc; uint32_t c10, c11, c12, c13; uint32_t len; int dir; /* 1 h2c, 2 c2h */ int admin; int ns; /* I/O: 0 or 1 = nsid 1, 2 = nsid 2 */
             uint32_t nsid; /* admin */ int nodata_cmp; char desc[160]; };
struct ans { int status; uint64_t result; };

static struct ans issue(int fd, struct cmd *c, uint8_t *buf)
{
    struct nvme_passthru_cmd64 p = { 0 };
    struct ans a;
    p.opcode = c->opc;
    p.nsid = c->admin ? c->nsid : c->ns == 2 ? 2 : 1;
    p.cdw10 = c->c10; p.cdw11 = c->c11; p.cdw12 = c->c12; p.cdw13 = c->c13;
    p.addr = (uint64_t)(uintptr_t)buf; p.data_len = c->len; p.timeout_ms = 30000;
    if (c->dir == 1) memcpy(buf, wbuf, c->len); else if (c->len) memset(buf, 0xA5, c->len);
    int r = ioctl(fd, c->admin ? NVME_IOCTL_ADMIN64_CMD : NVME_IOCTL_IO64_CMD, &p);
    a.status = r < 0 ? -errno : r;
    a.result = p.result;
    return a;
}

/* Identify fields that describe the namespace, compared at their offsets; QEMU's 8 LBA formats versus zns's one
 * are compared through the format in use. */
static int identify_differs(struct cmd *c, char *why)
{
    uint8_t cns = c->c10 & 0xff, csi = c->c11 >> 24;
    if (cns == 0x00) {
        int fa_ = ba[26] & 0xf, fb_ = bb[26] & 0xf;
        if (memcmp(ba, bb, 24)) return sprintf(why, "NSZE/NCAP/NUSE"), 1;
        if (ba[128 + 4 * fa_ + 2] != bb[128 + 4 * fb_ + 2]) return sprintf(why, "LBADS"), 1;
        if (memcmp(ba + 74, bb + 74, 7)) return sprintf(why, "MSSRL/MCL/MSRC"), 1;
        if (ba[33] != bb[33]) return sprintf(why, "DLFEAT %02x vs %02x", ba[33], bb[33]), 1;
        return 0;
    }
    if (cns == 0x05 && csi == 2) {
        int fa_ = 0, fb_ = 0;
        if (memcmp(ba, bb, 12)) return sprintf(why, "ZOC/OZCS/MAR/MOR"), 1;
        if (memcmp(ba + 44, bb + 44, 9)) return sprintf(why, "NUMZRWA/ZRWAFG/ZRWAS/ZRWACAP"), 1;
        fa_ = 4; fb_ = 0; /* 4 KiB blocks: QEMU's format 4, zns's format 0 */
        if (memcmp(ba + 2816 + 16 * fa_, bb + 2816 + 16 * fb_, 9)) return sprintf(why, "LBAFE ZSZE/ZDES"), 1;
        return 0;
    }
    if (cns == 0x06 && csi == 0) return memcmp(ba, bb, 16) ? (sprintf(why, "VSL/DMRL/DMRSL/DMSL"), 1) : 0;
    if (cns == 0x06 && csi == 2) return ba[0] != bb[0] ? (sprintf(why, "ZASL"), 1) : 0;
    if (cns == 0x01) {
        /* MDTS, VWC, ONCS without QEMU's bits 9-10 (All Fast Copy, not implemented: allow-list), OCFS, AERL */
        uint16_t oa = (ba[520] | ba[521] << 8) & ~0x600, ob = bb[520] | bb[521] << 8;
        if (ba[77] != bb[77] || ba[525] != bb[525] || oa != ob) return sprintf(why, "MDTS/VWC/ONCS"), 1;
        if (ba[534] != bb[534] || ba[535] != bb[535]) return sprintf(why, "OCFS %02x%02x vs %02x%02x", ba[535], ba[534], bb[535], bb[534]), 1;
        if (ba[259] != bb[259]) return sprintf(why, "AERL %u vs %u", ba[259], bb[259]), 1;
        return 0;
    }
    if (!memcmp(ba, bb, c->len)) return 0;
    uint32_t i = 0;
    while (ba[i] == bb[i]) i++;
    return sprintf(why, "data at byte %u (%02x vs %02x)", i, ba[i], bb[i]), 1;
}

static unsigned ncmds;
/* Runs one command on both devices; returns 0 when the answers agree. */
static int run(struct cmd *c, int verbose)
{
    int fdA = c->admin ? ca : c->ns == 2 ? fa2 : fa, fdB = c->admin ? cb : c->ns == 2 ? fb2 : fb;
    if (fdA < 0 || fdB < 0) { printf("#   %s: no namespace 2 devices given\n", c->desc); return 1; }
    struct ans x = issue(fdA, c, ba), y = issue(fdB, c, bb);
    char why[96] = "";
    int bad = 0;
    ncmds++;
    if (x.status != y.status) bad = 1, sprintf(why, "status");
    else if (x.result != y.result && !(c->admin && c->opc == 0x0a && (c->c10 & 0xff) == 0x0e)) bad = 1, sprintf(why, "DW0/DW1");
    else if (x.status == 0 && c->dir == 2 && !c->nodata_cmp) {
        if (c->admin) bad = identify_differs(c, why);
        else if (memcmp(ba, bb, c->len)) {
            uint32_t i = 0;
            while (ba[i] == bb[i]) i++;
            bad = 1; sprintf(why, "data at byte %u (%02x vs %02x)", i, ba[i], bb[i]);
        }
    }
    if (bad || verbose)
        printf("#   %s: qemu status 0x%x (sct %x sc %02x dnr %d) dw 0x%llx | zns status 0x%x (sct %x sc %02x dnr %d) dw 0x%llx%s%s\n",
               c->desc, x.status, (x.status >> 8) & 7, x.status & 0xff, (x.status >> 14) & 1, (unsigned long long)x.result,
               y.status, (y.status >> 8) & 7, y.status & 0xff, (y.status >> 14) & 1, (unsigned long long)y.result,
               bad ? " DIFFERS: " : "", why);
    return bad;
}

static uint64_t lba(const char *s)
{
    if (s[0] == 'z') { char *e; uint64_t z = strtoull(s + 1, &e, 0); return z * zsze + (*e == '+' ? strtoull(e + 1, 0, 0) : 0); }
    return strtoull(s, 0, 0);
}

static void fill(uint32_t len, uint32_t tag) { for (uint32_t i = 0; i < len; i++) wbuf[i] = (uint8_t)(tag * 31 + i / 512 + (i & 7)); }

static void rw(struct cmd *c, uint8_t opc, uint64_t slba, uint32_t nlb, int dir, uint32_t flags)
{
    memset(c, 0, sizeof *c);
    c->opc = opc; c->c10 = (uint32_t)slba; c->c11 = slba >> 32; c->c12 = (nlb - 1) | flags;
    c->dir = dir; c->len = dir ? nlb * BS : 0;
}

static void zsend(struct cmd *c, uint64_t slba, int zsa, int all, int zsaso)
{
    memset(c, 0, sizeof *c);
    c->opc = 0x79; c->c10 = (uint32_t)slba; c->c11 = slba >> 32; c->c13 = zsa | (all << 8) | (zsaso << 9);
    if (zsa == 0x10) { c->dir = 1; c->len = 64; fill(64, (uint32_t)slba); }
}

static void zrecv(struct cmd *c, uint64_t slba, uint32_t bytes, int zra, int zrasf, int partial)
{
    memset(c, 0, sizeof *c);
    c->opc = 0x7a; c->c10 = (uint32_t)slba; c->c11 = slba >> 32; c->c12 = bytes / 4 - 1;
    c->c13 = zra | (zrasf << 8) | (partial << 16); c->dir = 2; c->len = bytes;
}

static void copy(struct cmd *c, uint64_t sdlba, int format, int n, const uint64_t *s, const uint32_t *nl, const uint32_t *sn)
{
    memset(c, 0, sizeof *c);
    c->opc = 0x19; c->c10 = (uint32_t)sdlba; c->c11 = sdlba >> 32; c->c12 = (n - 1) | (format << 8);
    c->dir = 1; c->len = n * 32;
    memset(wbuf, 0, c->len);
    for (int i = 0; i < n; i++) {
        if (sn) memcpy(wbuf + i * 32, &sn[i], 4);
        memcpy(wbuf + i * 32 + 8, &s[i], 8); uint16_t v = nl[i] - 1; memcpy(wbuf + i * 32 + 16, &v, 2);
    }
}

static const char *zsa_names[] = { [1] = "close", [2] = "finish", [3] = "open", [4] = "reset", [5] = "offline", [0x10] = "setzde", [0x11] = "flush" };

static int zsa_of(const char *s)
{
    for (int i = 0; i < 0x12; i++) if (zsa_names[i] && !strcmp(zsa_names[i], s)) return i;
    return (int)strtol(s, 0, 0);
}

/* Parses one case line into a command (returns 0 for blank/comment lines). */
static int parse(char *line, struct cmd *c, unsigned tag)
{
    char *t[12]; int n = 0;
    for (char *p = strtok(line, " \t\n"); p && n < 12; p = strtok(0, " \t\n")) { if (*p == '#') break; t[n++] = p; }
    if (!n) return 0;
    char desc[160] = ""; for (int i = 0; i < n; i++) { strcat(desc, t[i]); if (i + 1 < n) strcat(desc, " "); }
    int ns = 0;
    if (!strcmp(t[0], "@2")) { ns = 2; for (int i = 1; i < n; i++) t[i - 1] = t[i]; n--; }
    if (!strcmp(t[0], "w") || !strcmp(t[0], "a") || !strcmp(t[0], "cmp") || !strcmp(t[0], "wfua")) {
        uint32_t nlb = strtoul(t[2], 0, 0);
        uint8_t opc = t[0][0] == 'a' ? 0x7d : t[0][1] == 'm' ? 0x05 : 0x01;
        rw(c, opc, lba(t[1]), nlb, 1, !strcmp(t[0], "wfua") ? 1u << 30 : 0);
        fill(nlb * BS, n > 3 ? strtoul(t[3], 0, 0) : tag);
    } else if (!strcmp(t[0], "big")) {  /* big w|r|a|cmp SLBA NLB: NLB in the command, a one-block buffer (beyond MDTS) */
        uint8_t opc = !strcmp(t[1], "w") ? 0x01 : !strcmp(t[1], "r") ? 0x02 : !strcmp(t[1], "a") ? 0x7d : 0x05;
        rw(c, opc, lba(t[2]), strtoul(t[3], 0, 0), opc == 0x02 ? 2 : 1, 0);
        c->len = BS; fill(BS, tag);
    } else if (!strcmp(t[0], "hbs")) {  /* hbs CDFE: Set Features Host Behavior Support, CDFE at bytes 5:4 */
        memset(c, 0, sizeof *c); c->admin = 1; c->opc = 0x09; c->c10 = 0x16; c->dir = 1; c->len = 512;
        memset(wbuf, 0, 512); uint16_t cdfe = strtoul(t[1], 0, 0); memcpy(wbuf + 4, &cdfe, 2);
    } else if (!strcmp(t[0], "gf")) {   /* gf FID SEL LEN: Get Features; data compared for SEL 0 (QEMU moves none for others) */
        memset(c, 0, sizeof *c); c->admin = 1; c->opc = 0x0a; c->c10 = strtoul(t[1], 0, 0) | strtoul(t[2], 0, 0) << 8;
        c->len = strtoul(t[3], 0, 0); c->dir = c->len ? 2 : 0; c->nodata_cmp = strtoul(t[2], 0, 0) != 0;
    } else if (!strcmp(t[0], "sf")) {   /* sf FID CDW11: Set Features without data */
        memset(c, 0, sizeof *c); c->admin = 1; c->opc = 0x09; c->c10 = strtoul(t[1], 0, 0); c->c11 = strtoul(t[2], 0, 0);
    } else if (!strcmp(t[0], "r")) rw(c, 0x02, lba(t[1]), strtoul(t[2], 0, 0), 2, 0);
    else if (!strcmp(t[0], "wz")) rw(c, 0x08, lba(t[1]), strtoul(t[2], 0, 0), 0, 0);
    else if (!strcmp(t[0], "v")) rw(c, 0x0c, lba(t[1]), strtoul(t[2], 0, 0), 0, 0);
    else if (!strcmp(t[0], "fl")) { memset(c, 0, sizeof *c); c->opc = 0; }
    else if (!strcmp(t[0], "zs")) zsend(c, lba(t[1]), zsa_of(t[2]), n > 3 && strchr(t[3], 'a') != 0, n > 3 && strchr(t[3], 'z') != 0);
    else if (!strcmp(t[0], "zr")) zrecv(c, lba(t[1]), strtoul(t[2], 0, 0), atoi(t[3]), atoi(t[4]), atoi(t[5]));
    else if (!strcmp(t[0], "dsm")) {
        memset(c, 0, sizeof *c); c->opc = 0x09; c->c11 = 4; c->dir = 1; c->len = 4096;
        memset(wbuf, 0, 4096); uint64_t s = lba(t[1]); uint32_t nl = strtoul(t[2], 0, 0);
        memcpy(wbuf + 4, &nl, 4); memcpy(wbuf + 8, &s, 8);
    } else if (!strcmp(t[0], "cp")) {   /* cp SDLBA FORMAT [SNSID/]SLBA:NLB[,...] | cp SDLBA FORMAT nN (N one-block ranges) */
        uint64_t s[256]; uint32_t nl[256], sn[256]; int k = 0, format = atoi(t[2]);
        uint32_t own = format >= 2 ? (ns == 2 ? 2 : 1) : 0;   /* formats 2h/3h: the command's NSID unless given */
        if (t[3][0] == 'n') { k = atoi(t[3] + 1); for (int i = 0; i < k; i++) s[i] = 0, nl[i] = 1, sn[i] = own; }
        else for (char *p = strtok(t[3], ","); p; p = strtok(0, ",")) {
            char *sl = strchr(p, '/'); sn[k] = sl ? (uint32_t)strtoul(p, 0, 0) : own; if (sl) p = sl + 1;
            char *col = strchr(p, ':'); *col = 0; s[k] = lba(p); nl[k++] = strtoul(col + 1, 0, 0);
        }
        copy(c, lba(t[1]), format, k, s, nl, sn);
    } else if (!strcmp(t[0], "id")) {   /* id CNS CSI */
        memset(c, 0, sizeof *c); c->admin = 1; c->opc = 0x06; c->c10 = strtoul(t[1], 0, 0); c->c11 = strtoul(t[2], 0, 0) << 24;
        c->dir = 2; c->len = 4096; c->nsid = c->c10 == 0x00 || c->c10 == 0x05 ? 1 : 0;
    } else { fprintf(stderr, "zdiff: bad line: %s\n", desc); exit(2); }
    if (ns && c->admin) { fprintf(stderr, "zdiff: @2 on an admin command: %s\n", desc); exit(2); }
    c->ns = ns;
    snprintf(c->desc, sizeof c->desc, "%s", desc);
    return 1;
}

/* Reads zone Z's write pointer and state from device A (the report itself is compared too). */
static int zone_of(uint64_t z, uint64_t *wp, int *state, int *za)
{
    struct cmd c; char d[64];
    zrecv(&c, z * zsze, 128, 0, 0, 1);
    snprintf(d, sizeof d, "zr z%llu 128 0 0 1", (unsigned long long)z); strcpy(c.desc, d);
    int bad = run(&c, 0);
    memcpy(wp, ba + 64 + 24, 8); *state = ba[64 + 1] >> 4; *za = ba[64 + 2];
    return bad;
}

static int generated(unsigned count, uint64_t seed)
{
    rng = seed ? seed : 1;
    for (unsigned i = 0; i < count; i++) {
        struct cmd c; char line[200];
        uint64_t z = rnd() % nzones, wp; int st, za;
        if (zone_of(z, &wp, &st, &za)) { printf("#   seed %llu, command %u\n", (unsigned long long)seed, ncmds); return 1; }
        if (wp == ~0ull) wp = z * zsze;
        uint64_t off = wp - z * zsze;
        unsigned k = rnd() % 100, nlb = 1 + rnd() % 8;
        if (k < 25) snprintf(line, sizeof line, "w z%llu+%llu %u", (unsigned long long)z, (unsigned long long)(rnd() % 8 ? off : off + rnd() % 3), nlb);
        else if (k < 35) snprintf(line, sizeof line, "a z%llu %u", (unsigned long long)z, nlb);
        else if (k < 45) snprintf(line, sizeof line, "r z%llu+%llu %u", (unsigned long long)z, (unsigned long long)(rnd() % zsze), nlb);
        else if (k < 48) snprintf(line, sizeof line, "wz z%llu+%llu %u", (unsigned long long)z, (unsigned long long)off, nlb);
        else if (k < 64) {
            static const char *acts[] = { "open", "close", "finish", "reset", "offline", "open", "close", "reset" };
            int all = rnd() % 6 == 0;
            snprintf(line, sizeof line, "zs z%llu %s %s", (unsigned long long)z, acts[rnd() % 8], all ? "a" : "-");
        } else if (k < 68) {
            /* ZRWA allocation only for zones without an open state or a ZRWA (QEMU counts the resource again there) */
            if (st == 2 || st == 3 || (za & 8)) { i--; continue; }
            snprintf(line, sizeof line, "zs z%llu open z", (unsigned long long)z);
        } else if (k < 72) snprintf(line, sizeof line, "zs z%llu+%llu flush", (unsigned long long)z, (unsigned long long)(off + rnd() % 10));
        else if (k < 80) snprintf(line, sizeof line, "zr z%llu %u %u %u %u", (unsigned long long)z, 64 * (1 + (unsigned)(rnd() % 8)), 0, (unsigned)(rnd() % 8), (unsigned)(rnd() % 2));
        else if (k < 84) snprintf(line, sizeof line, "dsm z%llu+%llu %u", (unsigned long long)z, (unsigned long long)(rnd() % zsze), nlb);
        else if (k < 90) {
            if (za & 8) { i--; continue; }   /* Copy into a ZRWA: allow-listed */
            uint64_t sz = rnd() % nzones;
            snprintf(line, sizeof line, "cp z%llu+%llu 0 z%llu+%llu:%u,z%llu+%llu:%u", (unsigned long long)z, (unsigned long long)off,
                     (unsigned long long)sz, (unsigned long long)(rnd() % zsze), nlb, (unsigned long long)sz, (unsigned long long)(rnd() % 16), 1 + (unsigned)(rnd() % 4));
        } else if (k < 94) snprintf(line, sizeof line, "v z%llu+%llu %u", (unsigned long long)z, (unsigned long long)(rnd() % zsze), nlb);
        else if (k < 98) snprintf(line, sizeof line, "cmp z%llu %u %u", (unsigned long long)z, nlb, (unsigned)(rnd() % 3));
        else snprintf(line, sizeof line, "fl");
        char copy_[200]; strcpy(copy_, line);
        if (!parse(copy_, &c, i) ) continue;
        if (run(&c, 0)) { printf("#   seed %llu, generated command %u of %u: %s\n", (unsigned long long)seed, i, count, line); return 1; }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 9 && argc != 11) { fprintf(stderr, "usage: zdiff CASEFILE NG_A NG_B CTRL_A CTRL_B ZSZE SEED COUNT [NG2_A NG2_B]\n"); return 2; }
    if (argc == 11 && ((fa2 = open(argv[9], O_RDWR)) < 0 || (fb2 = open(argv[10], O_RDWR)) < 0)) { perror("zdiff: open namespace 2"); return 2; }
    FILE *f = fopen(argv[1], "r");
    fa = open(argv[2], O_RDWR); fb = open(argv[3], O_RDWR); ca = open(argv[4], O_RDWR); cb = open(argv[5], O_RDWR);
    if (!f || fa < 0 || fb < 0 || ca < 0 || cb < 0) { perror("zdiff: open"); return 2; }
    zsze = strtoull(argv[6], 0, 0);
    posix_memalign((void **)&ba, 4096, MAXBUF); posix_memalign((void **)&bb, 4096, MAXBUF); posix_memalign((void **)&wbuf, 4096, MAXBUF);
    /* zone count from a report header */
    struct cmd c; zrecv(&c, 0, 64, 0, 0, 0); strcpy(c.desc, "zone count"); run(&c, 0); memcpy(&nzones, ba, 8);
    char line[512], name[512] = ""; int failed = 0, casebad = 0, n = 0; unsigned tag = 1;
    while (1) {
        char *got = fgets(line, sizeof line, f);
        if (!got || !strncmp(line, "case ", 5)) {
            if (name[0]) { printf("%sok %d - differential: %s\n", casebad ? "not " : "", ++tap, name); failed += casebad; }
            if (!got) break;
            snprintf(name, sizeof name, "%s", line + 5); name[strcspn(name, "\n")] = 0; casebad = 0;
            zsend(&c, 0, 4, 1, 0); strcpy(c.desc, "reset all"); casebad |= run(&c, 0);
            continue;
        }
        if (!strncmp(line, "allow ", 6)) { printf("# allow-listed: %s", line + 6); allowed_count++; continue; }
        if (parse(line, &c, tag++)) { casebad |= run(&c, 0); n++; }
    }
    zsend(&c, 0, 4, 1, 0); strcpy(c.desc, "reset all"); run(&c, 0);
    unsigned before = ncmds;
    uint64_t seed = strtoull(argv[7], 0, 0);
    int gbad = generated(atoi(argv[8]), seed);
    printf("%sok %d - differential: generated sequence, seed %llu, %u commands (%u zone reports steering it)\n", gbad ? "not " : "", ++tap,
           (unsigned long long)seed, ncmds - before, (ncmds - before) / 2);
    failed += gbad;
    printf("# %d named cases (%d commands), %u allow-listed differences printed above\n", tap - 1, n, allowed_count);
    return failed ? 1 : 0;
}
