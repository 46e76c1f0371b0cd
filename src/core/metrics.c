/*
 * metrics.c - the Prometheus registry and text writer (see metrics.h).
 *
 * Layout: a registry owns a list of families in creation order; each
 * family owns its series in creation order; a hash table over (family
 * name, label string) finds a series on lookup.  The lock guards only that
 * structure (lookup, create, render, callback changes).  Each series' live
 * values sit in their own cache-line-aligned block of atomics, so hot-path
 * updates never take the lock and series updated by different threads do
 * not share cache lines.
 *
 * Doubles (gauges, histogram sums) are kept as their bit patterns in
 * 64-bit atomics; adding is a compare-and-swap loop.
 */
#include "core/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_LINE 64

typedef enum kind { COUNTER, GAUGE, HISTOGRAM } kind;

static const char *const kind_names[] = {"counter", "gauge", "histogram"};

struct sked_counter {
    _Atomic uint64_t v;
};

struct sked_gauge {
    _Atomic uint64_t bits;     /* a double */
    sked_metrics *m;           /* for the lock in sked_gauge_set_func */
    sked_gauge_fn fn;          /* guarded by m->lock */
    void *ctx;
};

struct sked_histogram {
    _Atomic uint64_t sum_bits; /* a double */
    int n;                     /* finite bounds; counts has n + 1 */
    const double *bounds;      /* the family's */
    _Atomic uint64_t counts[]; /* per bucket, not cumulative; [n] is +Inf */
};

typedef struct family family;

typedef struct series {
    struct series *next;       /* in the family, creation order */
    struct series *hnext;      /* hash chain */
    family *fam;
    uint32_t hash;
    char *labels;              /* "" when none */
    void *metric;              /* sked_counter / sked_gauge / sked_histogram */
} series;

struct family {
    family *next;
    char *name;
    char *help;
    kind kind;
    double *bounds;            /* histograms */
    int nbounds;
    series *first, *last;
};

struct sked_metrics {
    pthread_mutex_t lock;
    family *first, *last;
    series **table;
    size_t nbuckets;           /* a power of two */
    size_t nseries;
};

/* --- small helpers -------------------------------------------------------- */

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (p == NULL)
        abort();
    return p;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL)
        abort();
    return p;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}

/* Zeroed, on its own cache lines. */
static void *alloc_line(size_t n)
{
    n = (n + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
    void *p = aligned_alloc(CACHE_LINE, n);
    if (p == NULL)
        abort();
    return memset(p, 0, n);
}

static uint64_t dbits(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

static double bitsd(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
}

static void atomic_add_double(_Atomic uint64_t *a, double delta)
{
    uint64_t old = atomic_load_explicit(a, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(
        a, &old, dbits(bitsd(old) + delta), memory_order_relaxed,
        memory_order_relaxed))
        ;
}

/* FNV-1a over name, a separator and labels. */
static uint32_t hash_key(const char *name, const char *labels)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 16777619u;
    h = (h ^ 0xff) * 16777619u;
    for (const unsigned char *p = (const unsigned char *)labels; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

static int name_ok(const char *s, int colons)
{
    if (s == NULL || *s == '\0')
        return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    c == '_' || (colons && c == ':');
        if (!alpha && (p == s || c < '0' || c > '9'))
            return 0;
    }
    return 1;
}

/* Grammar:  labels := "" | pair ("," pair)*
 *           pair   := lname "=" '"' (char | "\\" | "\"" | "\n")* '"'
 * where char is any byte but '"', '\\' and a newline.  no_le rejects a
 * label named le (reserved for histogram buckets). */
static int labels_ok(const char *s, int no_le)
{
    if (strlen(s) > SKED_METRICS_LABELS_MAX)
        return 0;
    const char *p = s;
    while (*p) {
        const char *n = p;
        while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
               *p == '_' || (p > n && *p >= '0' && *p <= '9'))
            p++;
        if (p == n || p[0] != '=' || p[1] != '"')
            return 0;
        if (no_le && p - n == 2 && n[0] == 'l' && n[1] == 'e')
            return 0;
        for (p += 2; *p != '"'; p++) {
            if (*p == '\0' || *p == '\n')
                return 0;
            if (*p == '\\') {
                p++;
                if (*p != '\\' && *p != '"' && *p != 'n')
                    return 0;
            }
        }
        p++;
        if (*p == ',' && p[1] != '\0')
            p++;
        else if (*p != '\0')
            return 0;
    }
    return 1;
}

/* --- the registry ------------------------------------------------------- */

sked_metrics *sked_metrics_new(void)
{
    sked_metrics *m = xcalloc(1, sizeof *m);
    pthread_mutex_init(&m->lock, NULL);
    m->nbuckets = 64;
    m->table = xcalloc(m->nbuckets, sizeof *m->table);
    return m;
}

void sked_metrics_free(sked_metrics *m)
{
    if (m == NULL)
        return;
    family *f = m->first;
    while (f) {
        family *fnext = f->next;
        series *s = f->first;
        while (s) {
            series *snext = s->next;
            free(s->metric);
            free(s->labels);
            free(s);
            s = snext;
        }
        free(f->name);
        free(f->help);
        free(f->bounds);
        free(f);
        f = fnext;
    }
    free(m->table);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static sked_metrics *default_registry;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void default_init(void) { default_registry = sked_metrics_new(); }

sked_metrics *sked_metrics_default(void)
{
    pthread_once(&default_once, default_init);
    return default_registry;
}

static void grow_table(sked_metrics *m)
{
    size_t nb = m->nbuckets * 2;
    series **t = xcalloc(nb, sizeof *t);
    for (size_t i = 0; i < m->nbuckets; i++) {
        series *s = m->table[i];
        while (s) {
            series *next = s->hnext;
            s->hnext = t[s->hash & (nb - 1)];
            t[s->hash & (nb - 1)] = s;
            s = next;
        }
    }
    free(m->table);
    m->table = t;
    m->nbuckets = nb;
}

static family *find_family(sked_metrics *m, const char *name)
{
    for (family *f = m->first; f; f = f->next)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

static int same_bounds(const family *f, const double *bounds, int n)
{
    return f->nbounds == n &&
           memcmp(f->bounds, bounds, (size_t)n * sizeof *bounds) == 0;
}

/* The series (name, labels), created when missing.  Called locked.
 * Returns NULL on a kind or bounds mismatch. */
static series *lookup(sked_metrics *m, kind k, const char *name,
                      const char *help, const char *labels,
                      const double *bounds, int n)
{
    uint32_t h = hash_key(name, labels);
    for (series *s = m->table[h & (m->nbuckets - 1)]; s; s = s->hnext)
        if (s->hash == h && strcmp(s->fam->name, name) == 0 &&
            strcmp(s->labels, labels) == 0)
            return s->fam->kind == k &&
                           (k != HISTOGRAM || same_bounds(s->fam, bounds, n))
                       ? s
                       : NULL;

    family *f = find_family(m, name);
    if (f && (f->kind != k || (k == HISTOGRAM && !same_bounds(f, bounds, n))))
        return NULL;
    if (f == NULL) {
        f = xcalloc(1, sizeof *f);
        f->name = xstrdup(name);
        f->help = xstrdup(help ? help : "");
        f->kind = k;
        if (k == HISTOGRAM) {
            f->bounds = xmalloc((size_t)n * sizeof *bounds);
            memcpy(f->bounds, bounds, (size_t)n * sizeof *bounds);
            f->nbounds = n;
        }
        if (m->last)
            m->last->next = f;
        else
            m->first = f;
        m->last = f;
    }

    series *s = xcalloc(1, sizeof *s);
    s->fam = f;
    s->hash = h;
    s->labels = xstrdup(labels);
    switch (k) {
    case COUNTER:
        s->metric = alloc_line(sizeof(sked_counter));
        break;
    case GAUGE: {
        sked_gauge *g = alloc_line(sizeof *g);
        g->m = m;
        s->metric = g;
        break;
    }
    case HISTOGRAM: {
        sked_histogram *hi = alloc_line(
            sizeof *hi + (size_t)(n + 1) * sizeof hi->counts[0]);
        hi->n = n;
        hi->bounds = f->bounds;
        s->metric = hi;
        break;
    }
    }
    if (f->last)
        f->last->next = s;
    else
        f->first = s;
    f->last = s;
    s->hnext = m->table[h & (m->nbuckets - 1)];
    m->table[h & (m->nbuckets - 1)] = s;
    if (++m->nseries > 2 * m->nbuckets)
        grow_table(m);
    return s;
}

static void *get(sked_metrics *m, kind k, const char *name, const char *help,
                 const char *labels, const double *bounds, int n)
{
    if (labels == NULL)
        labels = "";
    if (m == NULL || !name_ok(name, 1) || !labels_ok(labels, k == HISTOGRAM))
        return NULL;
    pthread_mutex_lock(&m->lock);
    series *s = lookup(m, k, name, help, labels, bounds, n);
    pthread_mutex_unlock(&m->lock);
    return s ? s->metric : NULL;
}

sked_counter *sked_counter_get(sked_metrics *m, const char *name,
                               const char *help, const char *labels)
{
    return get(m, COUNTER, name, help, labels, NULL, 0);
}

sked_gauge *sked_gauge_get(sked_metrics *m, const char *name,
                           const char *help, const char *labels)
{
    return get(m, GAUGE, name, help, labels, NULL, 0);
}

sked_gauge *sked_gauge_get_func(sked_metrics *m, const char *name,
                                const char *help, const char *labels,
                                sked_gauge_fn fn, void *ctx)
{
    sked_gauge *g = get(m, GAUGE, name, help, labels, NULL, 0);
    sked_gauge_set_func(g, fn, ctx);
    return g;
}

sked_histogram *sked_histogram_get(sked_metrics *m, const char *name,
                                   const char *help, const char *labels,
                                   const double *bounds, int n)
{
    if (bounds == NULL || n < 1 || n > SKED_METRICS_BUCKETS_MAX)
        return NULL;
    for (int i = 0; i < n; i++)
        if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
            return NULL;
    return get(m, HISTOGRAM, name, help, labels, bounds, n);
}

/* --- updates -------------------------------------------------------------- */

void sked_counter_inc(sked_counter *c)
{
    if (c)
        atomic_fetch_add_explicit(&c->v, 1, memory_order_relaxed);
}

void sked_counter_add(sked_counter *c, uint64_t n)
{
    if (c)
        atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
}

uint64_t sked_counter_value(const sked_counter *c)
{
    return c ? atomic_load_explicit(&((sked_counter *)c)->v,
                                    memory_order_relaxed)
             : 0;
}

void sked_gauge_set(sked_gauge *g, double v)
{
    if (g)
        atomic_store_explicit(&g->bits, dbits(v), memory_order_relaxed);
}

void sked_gauge_add(sked_gauge *g, double delta)
{
    if (g)
        atomic_add_double(&g->bits, delta);
}

double sked_gauge_value(const sked_gauge *g)
{
    return g ? bitsd(atomic_load_explicit(&((sked_gauge *)g)->bits,
                                          memory_order_relaxed))
             : 0.0;
}

void sked_gauge_set_func(sked_gauge *g, sked_gauge_fn fn, void *ctx)
{
    if (g == NULL)
        return;
    pthread_mutex_lock(&g->m->lock);
    g->fn = fn;
    g->ctx = fn ? ctx : NULL;
    pthread_mutex_unlock(&g->m->lock);
}

void sked_histogram_observe(sked_histogram *h, double v)
{
    if (h == NULL || isnan(v))
        return;
    /* first bound >= v; n when none */
    int lo = 0, hi = h->n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (h->bounds[mid] >= v)
            hi = mid;
        else
            lo = mid + 1;
    }
    atomic_fetch_add_explicit(&h->counts[lo], 1, memory_order_relaxed);
    atomic_add_double(&h->sum_bits, v);
}

/* --- label strings ---------------------------------------------------------- */

int sked_metrics_labels(char *buf, size_t cap, ...)
{
    va_list ap;
    va_start(ap, cap);
    size_t n = 0;
    const char *name;
    int ok = cap > 0;
    while (ok && (name = va_arg(ap, const char *)) != NULL) {
        const char *v = va_arg(ap, const char *);
        if (!name_ok(name, 0) || v == NULL) {
            ok = 0;
            break;
        }
        /* worst case: separator, name, =", every byte escaped, ", NUL */
        size_t need = 1 + strlen(name) + 2 + 2 * strlen(v) + 1 + 1;
        if (need > cap - n) {
            ok = 0;
            break;
        }
        n += (size_t)sprintf(buf + n, "%s%s=\"", n ? "," : "", name);
        for (const char *p = v; *p; p++) {
            if (*p == '\\' || *p == '"') {
                buf[n++] = '\\';
                buf[n++] = *p;
            } else if (*p == '\n') {
                buf[n++] = '\\';
                buf[n++] = 'n';
            } else {
                buf[n++] = *p;
            }
        }
        buf[n++] = '"';
        buf[n] = '\0';
    }
    va_end(ap);
    if (!ok) {
        if (cap > 0)
            buf[0] = '\0';
        return -1;
    }
    if (n == 0)
        buf[0] = '\0';
    return (int)n;
}

/* --- rendering -------------------------------------------------------------- */

typedef struct out {
    char *p;
    size_t len, cap;
    int failed;
} out;

static void put(out *o, const char *s, size_t n)
{
    if (o->failed)
        return;
    if (n + 1 > o->cap - o->len) {
        size_t cap = o->cap * 2;
        while (n + 1 > cap - o->len)
            cap *= 2;
        char *p = realloc(o->p, cap);
        if (p == NULL) {
            o->failed = 1;
            return;
        }
        o->p = p;
        o->cap = cap;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static void puts_(out *o, const char *s) { put(o, s, strlen(s)); }

/* Shortest text that reads back as v; Prometheus spellings of the
 * non-finite values. */
static void fmt_double(double v, char *buf, size_t cap)
{
    if (isnan(v))
        snprintf(buf, cap, "NaN");
    else if (isinf(v))
        snprintf(buf, cap, v > 0 ? "+Inf" : "-Inf");
    else {
        snprintf(buf, cap, "%.15g", v);
        if (strtod(buf, NULL) != v)
            snprintf(buf, cap, "%.17g", v);
    }
}

static void put_double(out *o, double v)
{
    char buf[40];
    fmt_double(v, buf, sizeof buf);
    puts_(o, buf);
}

static void put_u64(out *o, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    puts_(o, buf);
}

/* name[suffix][{labels[,extra]}] and a blank */
static void put_series_name(out *o, const char *name, const char *suffix,
                            const char *labels, const char *extra)
{
    puts_(o, name);
    puts_(o, suffix);
    if (labels[0] || extra) {
        puts_(o, "{");
        puts_(o, labels);
        if (extra) {
            if (labels[0])
                puts_(o, ",");
            puts_(o, extra);
        }
        puts_(o, "}");
    }
    puts_(o, " ");
}

static void put_help(out *o, const char *help)
{
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            puts_(o, "\\\\");
        else if (*p == '\n')
            puts_(o, "\\n");
        else
            put(o, p, 1);
    }
}

static void render_histogram(out *o, const family *f, const series *s)
{
    sked_histogram *h = s->metric;
    uint64_t cum = 0;
    char le[64], num[40];
    for (int i = 0; i <= h->n; i++) {
        cum += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        if (i < h->n) {
            fmt_double(h->bounds[i], num, sizeof num);
            snprintf(le, sizeof le, "le=\"%s\"", num);
        } else {
            snprintf(le, sizeof le, "le=\"+Inf\"");
        }
        put_series_name(o, f->name, "_bucket", s->labels, le);
        put_u64(o, cum);
        puts_(o, "\n");
    }
    put_series_name(o, f->name, "_sum", s->labels, NULL);
    put_double(o, bitsd(atomic_load_explicit(&h->sum_bits,
                                             memory_order_relaxed)));
    puts_(o, "\n");
    put_series_name(o, f->name, "_count", s->labels, NULL);
    put_u64(o, cum);
    puts_(o, "\n");
}

char *sked_metrics_render(sked_metrics *m, size_t *len)
{
    out o = {.cap = 4096};
    o.p = malloc(o.cap);
    if (o.p == NULL)
        return NULL;
    o.p[0] = '\0';
    pthread_mutex_lock(&m->lock);
    for (const family *f = m->first; f; f = f->next) {
        puts_(&o, "# HELP ");
        puts_(&o, f->name);
        puts_(&o, " ");
        put_help(&o, f->help);
        puts_(&o, "\n# TYPE ");
        puts_(&o, f->name);
        puts_(&o, " ");
        puts_(&o, kind_names[f->kind]);
        puts_(&o, "\n");
        for (const series *s = f->first; s; s = s->next) {
            if (f->kind == HISTOGRAM) {
                render_histogram(&o, f, s);
                continue;
            }
            put_series_name(&o, f->name, "", s->labels, NULL);
            if (f->kind == COUNTER) {
                put_u64(&o, sked_counter_value(s->metric));
            } else {
                sked_gauge *g = s->metric;
                put_double(&o, g->fn ? g->fn(g->ctx) : sked_gauge_value(g));
            }
            puts_(&o, "\n");
        }
    }
    pthread_mutex_unlock(&m->lock);
    if (o.failed) {
        free(o.p);
        return NULL;
    }
    if (len)
        *len = o.len;
    return o.p;
}
