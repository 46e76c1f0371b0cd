/*
 * tz.c - IANA time zones: the TZif reader, the zone cache, and conversions
 * between UTC instants and local wall time.
 *
 * A TZif file (RFC 8536, versions 1-4) is read into two compact arrays: the
 * instants at which the UT offset changes, and the offset in force between
 * them.  Transitions that only change an abbreviation or the isdst flag are
 * merged away, so every listed transition is a real gap or fold.  Instants
 * from the file's last transition on follow the footer's POSIX TZ rule
 * (tz_rule.c), as glibc does.  Every count, index and offset in the file is
 * checked against the buffer before it is used: a hostile file gets
 * SKED_EINVAL, never a crash.
 *
 * Lookups (span_at and everything built on it) allocate nothing and take no
 * lock: a binary search over the array, or rule arithmetic past its end.
 * Only sked_tz_get takes the cache mutex.  Not here: the POSIX TZ grammar
 * (tz_rule.c), calendar arithmetic (civil.h), cron (cron.h).
 */
#include "time/tz.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "time/tz_rule.h"

struct sked_tz {
    const char *name;
    const int64_t *trans;  /* n instants, strictly increasing              */
    const int32_t *offs;   /* n + 1 offsets: offs[i] from trans[i - 1]      */
    size_t n;
    bool has_rule;
    int64_t rule_from;     /* instants >= rule_from follow rule            */
    int64_t tail_end;      /* end of the span that begins at trans[n - 1]   */
    sked_tz_rule rule;
    int32_t umin, umax;    /* least and greatest offset ever in force      */
    struct sked_tz *next;  /* the cache's list                             */
};

static const int32_t utc_offs[1] = {0};
static struct sked_tz utc_zone = {
    .name = "UTC",
    .offs = utc_offs,
    .rule_from = INT64_MAX,
    .tail_end = INT64_MAX,
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sked_tz *cache; /* loaded zones, never freed */

#define DEFAULT_TZDIR "/usr/share/zoneinfo"
#define MAX_NAME      255
#define MAX_FILE      (1 << 20) /* real TZif files are under 10 KiB */
#define HDR_LEN       44
/* The first and last local second whose year an int32 holds: to_local
 * saturates there (civil.h is only defined for such years). */
#define LOCAL_MIN     INT64_C(-67768100567971200)
#define LOCAL_MAX     INT64_C(67767976233532799)
/* RFC 8536 section 3.2: offsets should lie in (-25h, +26h). */
#define MIN_UTOFF     (-89999)
#define MAX_UTOFF     93599

/* ------------------------------------------------------------------------ */
/* Lookups                                                                   */

void sked_tz_span_at(const sked_tz *tz, int64_t t, sked_tz_span *out)
{
    size_t n = tz->n;
    if (tz->has_rule && t >= tz->rule_from) {
        sked_tz_rule_span(&tz->rule, t, out);
        if (out->start <= tz->rule_from) {
            /* The rule's span reaches back past rule_from, where the table's
             * last offset (equal to it by construction) took over. */
            out->start = n ? tz->trans[n - 1] : INT64_MIN;
            out->prev_utoff = n ? tz->offs[n - 1] : out->utoff;
        }
        return;
    }
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->trans[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    out->start = lo ? tz->trans[lo - 1] : INT64_MIN;
    out->end = lo < n ? tz->trans[lo] : tz->tail_end;
    out->utoff = tz->offs[lo];
    out->prev_utoff = tz->offs[lo ? lo - 1 : 0];
}

int32_t sked_tz_utoff_at(const sked_tz *tz, int64_t t)
{
    sked_tz_span s;
    sked_tz_span_at(tz, t, &s);
    return s.utoff;
}

/* Instants whose wall time falls outside the years an int32 holds give the
 * first or last second of those years. */
void sked_tz_to_local(const sked_tz *tz, int64_t t, sked_civil *out,
                      int32_t *utoff)
{
    int32_t off = sked_tz_utoff_at(tz, t);
    /* Clamped, t is far from the int64 limits: adding off cannot overflow. */
    int64_t local = t < LOCAL_MIN ? LOCAL_MIN : t > LOCAL_MAX ? LOCAL_MAX : t;
    local += off;
    local = local < LOCAL_MIN ? LOCAL_MIN : local > LOCAL_MAX ? LOCAL_MAX : local;
    sked_civil_from_secs(local, out);
    if (utoff)
        *utoff = off;
}

/* The local seconds of lt, in 64-bit arithmetic throughout: fields out of
 * their usual ranges count on, as with mktime, and cannot overflow. */
static int64_t local_secs(const sked_civil *lt)
{
    return sked_civil_days(lt->year, lt->mon, lt->mday) * 86400 +
           (int64_t)lt->hour * 3600 + (int64_t)lt->min * 60 + lt->sec;
}

/* Looks at every span that could hold an instant reading as lt: those
 * within [local - umax, local - umin], two or three for real zones.  Should
 * a hostile zone repeat a wall time more than twice, out[] gets the first
 * and the last instant. */
sked_tz_kind sked_tz_from_local(const sked_tz *tz, const sked_civil *lt,
                                int64_t out[2])
{
    int64_t local = local_secs(lt);
    /* Every instant that reads as `local` lies in [lo, hi]. */
    int64_t lo = local - tz->umax, hi = local - tz->umin;
    int found = 0;
    int64_t gap = 0;
    bool have_gap = false;
    sked_tz_span s;

    sked_tz_span_at(tz, lo, &s);
    for (;;) {
        int64_t t = local - s.utoff;
        if (t >= s.start && t < s.end) {
            out[found ? 1 : 0] = t;
            found++;
        } else if (t < s.start && !have_gap) {
            /* The first span whose wall clock starts after `local`: when
             * nothing matches, its start ends the gap. */
            gap = s.start;
            have_gap = true;
        }
        if (s.end > hi)
            break;
        sked_tz_span_at(tz, s.end, &s);
    }
    if (found == 0) {
        out[0] = out[1] = gap;
        return SKED_TZ_GAP;
    }
    if (found == 1) {
        out[1] = out[0];
        return SKED_TZ_UNIQUE;
    }
    return SKED_TZ_FOLD;
}

const sked_tz *sked_tz_utc(void)
{
    return &utc_zone;
}

const char *sked_tz_name(const sked_tz *tz)
{
    return tz->name;
}

int sked_tz_is_utc(const sked_tz *tz)
{
    return tz->umin == 0 && tz->umax == 0;
}

/* ------------------------------------------------------------------------ */
/* TZif                                                                      */

typedef struct tzif_hdr {
    int version; /* 1 for a version-1 file, else 2 and up */
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
} tzif_hdr;

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static int32_t get_s32(const uint8_t *p)
{
    uint32_t u = get_u32(p);
    return u <= INT32_MAX ? (int32_t)u : -(int32_t)(~u) - 1;
}

static int64_t get_s64(const uint8_t *p)
{
    uint64_t u = (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
    return u <= INT64_MAX ? (int64_t)u : -(int64_t)(~u) - 1;
}

/* A transition or leap time of tsz (4 or 8) bytes. */
static int64_t get_time(const uint8_t *p, unsigned tsz)
{
    return tsz == 4 ? get_s32(p) : get_s64(p);
}

static const char *read_header(const uint8_t *p, size_t len, tzif_hdr *h)
{
    if (len < HDR_LEN)
        return "truncated TZif header";
    if (memcmp(p, "TZif", 4) != 0)
        return "not a TZif file";
    if (p[4] != 0 && p[4] < '2')
        return "unknown TZif version";
    h->version = p[4] == 0 ? 1 : p[4] - '0';
    h->isutcnt = get_u32(p + 20);
    h->isstdcnt = get_u32(p + 24);
    h->leapcnt = get_u32(p + 28);
    h->timecnt = get_u32(p + 32);
    h->typecnt = get_u32(p + 36);
    h->charcnt = get_u32(p + 40);
    if (h->typecnt == 0 || h->charcnt == 0 ||
        (h->isutcnt != 0 && h->isutcnt != h->typecnt) ||
        (h->isstdcnt != 0 && h->isstdcnt != h->typecnt))
        return "bad counts in TZif header";
    return NULL;
}

/* Length of a data block; cannot overflow: every count is below 2^32. */
static uint64_t body_len(const tzif_hdr *h, unsigned tsz)
{
    return (uint64_t)h->timecnt * (tsz + 1) + (uint64_t)h->typecnt * 6 +
           h->charcnt + (uint64_t)h->leapcnt * (tsz + 4) + h->isstdcnt +
           h->isutcnt;
}

/* The parts of the data block in use, located and checked. */
typedef struct tzif_body {
    const uint8_t *times, *idx, *types, *leaps;
    unsigned tsz;
} tzif_body;

static const char *check_body(const tzif_hdr *h, const uint8_t *p,
                              unsigned tsz, tzif_body *b)
{
    b->tsz = tsz;
    b->times = p;
    b->idx = b->times + (size_t)h->timecnt * tsz;
    b->types = b->idx + h->timecnt;
    const uint8_t *chars = b->types + (size_t)h->typecnt * 6;
    b->leaps = chars + h->charcnt;
    const uint8_t *flags = b->leaps + (size_t)h->leapcnt * (tsz + 4);

    for (uint32_t i = 0; i < h->typecnt; i++) {
        const uint8_t *ty = b->types + (size_t)i * 6;
        int32_t off = get_s32(ty);
        if (off < MIN_UTOFF || off > MAX_UTOFF)
            return "UT offset out of range";
        if (ty[4] > 1 || ty[5] >= h->charcnt)
            return "bad local time type";
    }
    for (uint32_t i = 0; i < h->timecnt; i++) {
        if (b->idx[i] >= h->typecnt)
            return "transition type index out of range";
        if (i > 0 && get_time(b->times + (size_t)i * tsz, tsz) <=
                         get_time(b->times + (size_t)(i - 1) * tsz, tsz))
            return "transition times out of order";
    }
    for (uint32_t i = 1; i < h->leapcnt; i++)
        if (get_time(b->leaps + (size_t)i * (tsz + 4), tsz) <=
            get_time(b->leaps + (size_t)(i - 1) * (tsz + 4), tsz))
            return "leap seconds out of order";
    for (uint32_t i = 0; i < h->isstdcnt + h->isutcnt; i++)
        if (flags[i] > 1)
            return "bad standard/UT indicator";
    return NULL;
}

/* Transition i as a POSIX instant.  Files with leap seconds (the right/
 * zones) count them in their times; sked's instants do not, so subtract
 * the correction in force.  *leap walks forward through the leap table. */
static bool transition_time(const tzif_hdr *h, const tzif_body *b,
                            uint32_t i, uint32_t *leap, int32_t *corr,
                            int64_t *out)
{
    unsigned lsz = b->tsz + 4;
    int64_t t = get_time(b->times + (size_t)i * b->tsz, b->tsz);
    while (*leap < h->leapcnt &&
           get_time(b->leaps + (size_t)*leap * lsz, b->tsz) <= t) {
        *corr = get_s32(b->leaps + (size_t)*leap * lsz + b->tsz);
        ++*leap;
    }
    return !__builtin_sub_overflow(t, *corr, out);
}

static void set_range(struct sked_tz *z)
{
    z->umin = z->umax = z->offs[0];
    for (size_t i = 1; i <= z->n; i++) {
        z->umin = z->offs[i] < z->umin ? z->offs[i] : z->umin;
        z->umax = z->offs[i] > z->umax ? z->offs[i] : z->umax;
    }
    if (z->has_rule) {
        int32_t a = z->rule.std_off, c = z->rule.dst_off;
        z->umin = a < z->umin ? a : z->umin;
        z->umin = c < z->umin ? c : z->umin;
        z->umax = a > z->umax ? a : z->umax;
        z->umax = c > z->umax ? c : z->umax;
    }
}

int sked_tz_parse(const char *name, const uint8_t *buf, size_t len,
                  sked_tz **out, sked_err *err)
{
    struct sked_tz *z = NULL;
    const char *why;
    int code = SKED_EINVAL;
    tzif_hdr h;
    tzif_body b;
    size_t off;

    name = name ? name : "";
    *out = NULL;
    if ((why = read_header(buf, len, &h)) != NULL)
        goto fail;
    off = HDR_LEN;
    unsigned tsz = 4;
    if (h.version >= 2) {
        /* Skip the 32-bit block; the 64-bit one follows with its header. */
        why = "truncated TZif data";
        if (body_len(&h, 4) > len - off)
            goto fail;
        off += (size_t)body_len(&h, 4);
        if ((why = read_header(buf + off, len - off, &h)) != NULL)
            goto fail;
        off += HDR_LEN;
        tsz = 8;
    }
    why = "truncated TZif data";
    if (body_len(&h, tsz) > len - off)
        goto fail;
    if ((why = check_body(&h, buf + off, tsz, &b)) != NULL)
        goto fail;
    off += (size_t)body_len(&h, tsz);

    sked_tz_rule rule;
    bool has_rule = false;
    if (tsz == 8) {
        /* The footer: "\n" TZ-string "\n"; an empty string means none. */
        const uint8_t *nl;
        why = "missing TZif footer";
        if (off >= len || buf[off] != '\n' ||
            (nl = memchr(buf + off + 1, '\n', len - off - 1)) == NULL)
            goto fail;
        size_t slen = (size_t)(nl - (buf + off + 1));
        if (slen > 0 &&
            sked_tz_rule_parse((const char *)buf + off + 1, slen, &rule,
                               &why) != 0)
            goto fail;
        has_rule = slen > 0;
    }

    /* One block: the struct, transitions, offsets, name.  A rule may add
     * one transition where it takes over. */
    size_t cap = (size_t)h.timecnt + 1, nlen = strlen(name);
    z = malloc(sizeof *z + cap * sizeof(int64_t) + (cap + 1) * sizeof(int32_t) +
               nlen + 1);
    if (z == NULL) {
        code = SKED_ENOMEM;
        why = "out of memory";
        goto fail;
    }
    int64_t *trans = (int64_t *)(z + 1);
    int32_t *offs = (int32_t *)(trans + cap);
    char *zname = (char *)(offs + cap + 1);
    memcpy(zname, name, nlen + 1);
    *z = (struct sked_tz){.name = zname, .trans = trans, .offs = offs,
                          .has_rule = has_rule, .rule_from = INT64_MAX,
                          .tail_end = INT64_MAX};

    /* Decode every transition time, then merge in place. */
    uint32_t leap = 0, cnt = h.timecnt;
    int32_t corr = 0;
    why = "transition times out of order";
    for (uint32_t i = 0; i < cnt; i++)
        if (!transition_time(&h, &b, i, &leap, &corr, &trans[i]) ||
            (i > 0 && trans[i] <= trans[i - 1]))
            goto fail;
    if (cnt > 0 && trans[cnt - 1] == INT64_MAX)
        cnt--; /* changes nothing a caller can ask about */
    /* With a rule, it decides from the last transition on (as in glibc). */
    uint32_t merge = has_rule && cnt > 0 ? cnt - 1 : cnt;
    size_t n = 0;
    offs[0] = get_s32(b.types);
    for (uint32_t i = 0; i < merge; i++) {
        int32_t o = get_s32(b.types + (size_t)b.idx[i] * 6);
        if (trans[i] == INT64_MIN) {
            offs[0] = o; /* nothing came before it */
        } else if (o != offs[n]) {
            trans[n] = trans[i];
            offs[++n] = o;
        }
    }
    if (has_rule) {
        sked_tz_span rs;
        int64_t from = cnt > 0 ? trans[cnt - 1] : INT64_MIN;
        sked_tz_rule_span(&rule, from, &rs);
        if (from == INT64_MIN) {
            offs[0] = rs.utoff;
        } else if (rs.utoff != offs[n]) {
            trans[n] = from;
            offs[++n] = rs.utoff;
        }
        z->rule = rule;
        z->rule_from = from;
        z->tail_end = rs.end;
    }
    z->n = n;
    set_range(z);
    *out = z;
    return 0;

fail:
    free(z);
    return sked_err_set(err, code, NULL, 0, "zone \"%s\": %s", name, why);
}

void sked_tz_free(sked_tz *tz)
{
    if (tz != &utc_zone)
        free(tz);
}

/* ------------------------------------------------------------------------ */
/* The cache                                                                 */

/* Why name cannot be a zone, or NULL if it may be one. */
static const char *check_name(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0)
        return "empty";
    if (len > MAX_NAME)
        return "too long";
    if (name[0] == '/')
        return "absolute path";
    if (strstr(name, "..") != NULL)
        return "contains \"..\"";
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '/' || c == '_' || c == '+' ||
              c == '-'))
            return "bad character";
    }
    return NULL;
}

static int unknown_zone(const char *name, sked_err *err)
{
    return sked_err_set(err, SKED_ENOENT, NULL, 0, "unknown zone \"%s\"",
                        name);
}

static int io_error(const char *name, int errnum, sked_err *err)
{
    char ebuf[128];
    return sked_err_set(err, SKED_EIO, NULL, 0, "zone \"%s\": %s", name,
                        strerror_r(errnum, ebuf, sizeof ebuf));
}

/* Read and parse $TZDIR/name.  Called with cache_lock held. */
static int load(const char *name, sked_tz **out, sked_err *err)
{
    const char *dir = getenv("TZDIR");
    char path[4096];
    uint8_t *buf = NULL;
    int fd = -1, rc;
    struct stat st;

    if (dir == NULL || dir[0] == '\0')
        dir = DEFAULT_TZDIR;
    rc = SKED_ENOENT; /* until the file is found */
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
        goto fail;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0 && (errno == ENOENT || errno == ENOTDIR || errno == EISDIR ||
                   errno == ENAMETOOLONG))
        goto fail;
    if (fd < 0 || fstat(fd, &st) != 0) {
        rc = io_error(name, errno, err);
        goto fail;
    }
    if (!S_ISREG(st.st_mode))
        goto fail; /* a directory such as "America" is no zone either */
    if (st.st_size > MAX_FILE) {
        rc = sked_err_set(err, SKED_EINVAL, NULL, 0,
                          "zone \"%s\": file too large", name);
        goto fail;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        rc = sked_err_set(err, SKED_ENOMEM, NULL, 0, "out of memory");
        goto fail;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = io_error(name, errno, err);
            goto fail;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    rc = sked_tz_parse(name, buf, got, out, err);

fail:
    if (rc == SKED_ENOENT)
        unknown_zone(name, err);
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

int sked_tz_get(const char *name, const sked_tz **out, sked_err *err)
{
    const char *why = check_name(name);
    sked_tz *z;
    int rc = 0;

    if (why != NULL)
        return sked_err_set(err, SKED_EINVAL, NULL, 0,
                            "invalid zone name \"%.64s\": %s",
                            name ? name : "", why);
    if (strcmp(name, "UTC") == 0) {
        *out = &utc_zone;
        return 0;
    }
    pthread_mutex_lock(&cache_lock);
    for (z = cache; z != NULL; z = z->next)
        if (strcmp(z->name, name) == 0)
            break;
    if (z == NULL && (rc = load(name, &z, err)) == 0) {
        z->next = cache;
        cache = z;
    }
    pthread_mutex_unlock(&cache_lock);
    if (rc == 0)
        *out = z;
    return rc;
}
