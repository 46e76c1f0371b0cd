/*
 * metrics.h - a small thread-safe Prometheus registry and text writer.
 *
 * A registry holds metric families (a name, help text and a type: counter,
 * gauge or histogram); a family holds series, one per label set.  Label
 * sets are given preformatted, the way they appear between the braces of
 * the exposition format: `route="/v1/tasks",code="201"` ("" or NULL for
 * none; sked_metrics_labels builds such a string with the values escaped).
 * The string is the key as given: pass the labels in the same order each
 * time, or the same set becomes two series.
 *
 * The sked_*_get functions look a series up by (name, labels) and create it
 * on first use; the pointer they return lives as long as the registry, so
 * callers look up once and keep it.  Lookups take the registry's lock;
 * updates (inc, add, set, observe) are lock-free atomics and may be called
 * from any thread at any rate.  Every update function accepts NULL and does
 * nothing, so a failed lookup never crashes the hot path.
 *
 * sked_metrics_render writes the whole registry in the Prometheus text
 * exposition format 0.0.4 (what GET /metrics serves).
 *
 * Not here: HTTP (the route that serves the text), pushing, summaries,
 * exemplars, the OpenMetrics format.
 */
#ifndef SKED_METRICS_H
#define SKED_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct sked_metrics sked_metrics;
typedef struct sked_counter sked_counter;
typedef struct sked_gauge sked_gauge;
typedef struct sked_histogram sked_histogram;

/* Longest label string accepted, NUL excluded. */
#define SKED_METRICS_LABELS_MAX 512

/* Most buckets a histogram may have (+Inf not counted). */
#define SKED_METRICS_BUCKETS_MAX 64

/* --- the registry ------------------------------------------------------ */

/* A new empty registry; aborts when out of memory.  Free it with
 * sked_metrics_free once no thread updates its metrics any more. */
sked_metrics *sked_metrics_new(void);

/* Free the registry and every series in it; every pointer handed out by
 * it becomes invalid.  NULL is a no-op. */
void sked_metrics_free(sked_metrics *m);

/* The process-wide registry that the server roles share, created on first
 * call (thread-safe) and never freed. */
sked_metrics *sked_metrics_default(void);

/* Render the registry in the text format 0.0.4: per family, in the order
 * families were first created, "# HELP" and "# TYPE" once, then its series
 * in creation order; histograms as cumulative _bucket{...,le="..."} lines
 * ending with le="+Inf", then _sum and _count.  Gauge callbacks are called
 * here, under the registry lock.  Returns a malloc'ed NUL-terminated text
 * the caller frees, its length in *len (may be NULL); NULL when out of
 * memory. */
char *sked_metrics_render(sked_metrics *m, size_t *len);

/* Build a label string from a NULL-terminated list of alternating names
 * and values, escaping the values (backslash, double quote, newline):
 *   sked_metrics_labels(buf, sizeof buf, "route", "/v1/tasks",
 *                       "code", "201", NULL)  ->  route="/v1/tasks",code="201"
 * Returns the length written, or -1 (buf holds "") when it does not fit in
 * cap bytes or a name is not a valid label name. */
int sked_metrics_labels(char *buf, size_t cap, ...)
    __attribute__((sentinel));

/* --- get-or-create ------------------------------------------------------
 * name must match [a-zA-Z_:][a-zA-Z0-9_:]*, labels must be a well-formed
 * label string (name="value" pairs, comma-separated, values escaped, no
 * label named "le" on a histogram).  help is used when the family is
 * created and ignored after.  Each returns NULL when an argument is
 * malformed or when name already names a family of another type (or, for
 * histograms, with other bucket bounds): a programming error that tests
 * catch, never a crash.  Aborts when out of memory. */

sked_counter *sked_counter_get(sked_metrics *m, const char *name,
                               const char *help, const char *labels);

sked_gauge *sked_gauge_get(sked_metrics *m, const char *name,
                           const char *help, const char *labels);

/* A gauge whose value is fn(ctx), evaluated at each render.  fn runs on the
 * rendering thread with the registry locked, so it must not call
 * sked_metrics_render or any *_get on the same registry; it should be
 * quick.  To detach it before ctx dies, call sked_gauge_set_func(g, NULL,
 * NULL). */
typedef double (*sked_gauge_fn)(void *ctx);
sked_gauge *sked_gauge_get_func(sked_metrics *m, const char *name,
                                const char *help, const char *labels,
                                sked_gauge_fn fn, void *ctx);

/* bounds: n strictly increasing finite upper bounds (1 <= n <=
 * SKED_METRICS_BUCKETS_MAX), copied; +Inf is implied.  A later call for
 * the same name must pass the same bounds. */
sked_histogram *sked_histogram_get(sked_metrics *m, const char *name,
                                   const char *help, const char *labels,
                                   const double *bounds, int n);

/* --- updates: lock-free, any thread, NULL ignored ------------------------ */

void sked_counter_inc(sked_counter *c);
void sked_counter_add(sked_counter *c, uint64_t n);
uint64_t sked_counter_value(const sked_counter *c);

void sked_gauge_set(sked_gauge *g, double v);
void sked_gauge_add(sked_gauge *g, double delta); /* negative to decrease */
/* The stored value (a callback gauge's callback is not called). */
double sked_gauge_value(const sked_gauge *g);

/* Replace (fn non-NULL) or detach (fn NULL) the gauge's callback.  Takes
 * the registry lock: once it returns, the old fn is never called again.
 * A gauge without callback renders its stored value. */
void sked_gauge_set_func(sked_gauge *g, sked_gauge_fn fn, void *ctx);

/* Count v into the first bucket whose bound is >= v (and into +Inf), add
 * it to the sum.  NaN is ignored. */
void sked_histogram_observe(sked_histogram *h, double v);

#endif
