/*
 * test_metrics.c - the Prometheus registry: the exact text it renders,
 * get-or-create and its refusals, label and help escaping, and updates
 * from many threads at once.
 */
#include "harness.h"

#include <math.h>
#include <pthread.h>

#include "core/metrics.h"

static double workers_fn(void *ctx)
{
    return *(double *)ctx;
}

static void test_render_exact(void **state)
{
    (void)state;
    sked_metrics *m = sked_metrics_new();
    sked_counter *c201 = sked_counter_get(m, "sked_http_requests_total",
                                          "HTTP requests by route and code.",
                                          "route=\"/v1/tasks\",code=\"201\"");
    sked_counter *c400 = sked_counter_get(m, "sked_http_requests_total",
                                          "ignored: the family has its help",
                                          "route=\"/v1/tasks\",code=\"400\"");
    sked_gauge *depth = sked_gauge_get(m, "sked_queue_depth",
                                       "Messages waiting.", "queue=\"default\"");
    sked_gauge *up = sked_gauge_get(m, "sked_up", "1 when serving.", NULL);
    double workers = 3;
    sked_gauge *wg = sked_gauge_get_func(m, "sked_workers", "Live workers.",
                                         "", workers_fn, &workers);
    static const double bounds[] = {0.25, 0.5, 1, 2.5};
    sked_histogram *lag = sked_histogram_get(
        m, "sked_lag_seconds", "Start lag.", "queue=\"default\"", bounds, 4);
    sked_histogram *bare = sked_histogram_get(m, "sked_claim_seconds",
                                              "Claim latency.", NULL, bounds, 1);
    assert_non_null(c201);
    assert_non_null(c400);
    assert_non_null(depth);
    assert_non_null(up);
    assert_non_null(wg);
    assert_non_null(lag);
    assert_non_null(bare);

    for (int i = 0; i < 3; i++)
        sked_counter_inc(c201);
    sked_counter_add(c400, 2);
    sked_gauge_set(depth, 10);
    sked_gauge_add(depth, -2.5);
    sked_gauge_set(up, 1);
    /* 0.25 and 0.5 sit on bounds: le is inclusive */
    const double obs[] = {0.125, 0.25, 0.5, 2, 100};
    for (size_t i = 0; i < 5; i++)
        sked_histogram_observe(lag, obs[i]);
    sked_histogram_observe(lag, NAN); /* ignored */
    sked_histogram_observe(bare, 1);

    size_t len = 0;
    char *text = sked_metrics_render(m, &len);
    const char *want =
        "# HELP sked_http_requests_total HTTP requests by route and code.\n"
        "# TYPE sked_http_requests_total counter\n"
        "sked_http_requests_total{route=\"/v1/tasks\",code=\"201\"} 3\n"
        "sked_http_requests_total{route=\"/v1/tasks\",code=\"400\"} 2\n"
        "# HELP sked_queue_depth Messages waiting.\n"
        "# TYPE sked_queue_depth gauge\n"
        "sked_queue_depth{queue=\"default\"} 7.5\n"
        "# HELP sked_up 1 when serving.\n"
        "# TYPE sked_up gauge\n"
        "sked_up 1\n"
        "# HELP sked_workers Live workers.\n"
        "# TYPE sked_workers gauge\n"
        "sked_workers 3\n"
        "# HELP sked_lag_seconds Start lag.\n"
        "# TYPE sked_lag_seconds histogram\n"
        "sked_lag_seconds_bucket{queue=\"default\",le=\"0.25\"} 2\n"
        "sked_lag_seconds_bucket{queue=\"default\",le=\"0.5\"} 3\n"
        "sked_lag_seconds_bucket{queue=\"default\",le=\"1\"} 3\n"
        "sked_lag_seconds_bucket{queue=\"default\",le=\"2.5\"} 4\n"
        "sked_lag_seconds_bucket{queue=\"default\",le=\"+Inf\"} 5\n"
        "sked_lag_seconds_sum{queue=\"default\"} 102.875\n"
        "sked_lag_seconds_count{queue=\"default\"} 5\n"
        "# HELP sked_claim_seconds Claim latency.\n"
        "# TYPE sked_claim_seconds histogram\n"
        "sked_claim_seconds_bucket{le=\"0.25\"} 0\n"
        "sked_claim_seconds_bucket{le=\"+Inf\"} 1\n"
        "sked_claim_seconds_sum 1\n"
        "sked_claim_seconds_count 1\n";
    assert_non_null(text);
    assert_string_equal(text, want);
    assert_int_equal(len, strlen(want));
    free(text);

    /* the callback is evaluated at each render, and can be detached */
    workers = 5;
    text = sked_metrics_render(m, NULL);
    assert_non_null(strstr(text, "\nsked_workers 5\n"));
    free(text);
    sked_gauge_set_func(wg, NULL, NULL);
    sked_gauge_set(wg, 42);
    text = sked_metrics_render(m, NULL);
    assert_non_null(strstr(text, "\nsked_workers 42\n"));
    free(text);
    sked_metrics_free(m);
}

static void test_get_or_create(void **state)
{
    (void)state;
    sked_metrics *m = sked_metrics_new();
    static const double b2[] = {1, 2}, b3[] = {1, 2, 3}, bad[] = {2, 1};
    sked_counter *a = sked_counter_get(m, "a_total", "A.", "x=\"1\"");
    assert_non_null(a);
    assert_ptr_equal(sked_counter_get(m, "a_total", "A.", "x=\"1\""), a);
    assert_ptr_not_equal(sked_counter_get(m, "a_total", "A.", "x=\"2\""), a);
    /* "" and NULL are the same empty label set */
    assert_ptr_equal(sked_counter_get(m, "b_total", "B.", NULL),
                     sked_counter_get(m, "b_total", "B.", ""));
    /* another type under the same name */
    assert_null(sked_gauge_get(m, "a_total", "A.", "x=\"1\""));
    assert_null(sked_gauge_get(m, "a_total", "A.", "x=\"3\""));
    /* bad names and label strings */
    assert_null(sked_counter_get(m, "1abc", "", NULL));
    assert_null(sked_counter_get(m, "a-b", "", NULL));
    assert_null(sked_counter_get(m, "", "", NULL));
    assert_null(sked_counter_get(m, "ok", "", "x=1"));
    assert_null(sked_counter_get(m, "ok", "", "x=\"1"));
    assert_null(sked_counter_get(m, "ok", "", "x=\"1\","));
    assert_null(sked_counter_get(m, "ok", "", "x=\"a\\q\""));
    assert_null(sked_counter_get(m, "ok", "", "x:y=\"1\""));
    assert_non_null(sked_counter_get(m, "ns:ok_total", "", "x=\"a\\\"b\""));
    /* histograms: bounds must match and increase; no "le" label */
    sked_histogram *h = sked_histogram_get(m, "h_seconds", "H.", NULL, b2, 2);
    assert_non_null(h);
    assert_ptr_equal(sked_histogram_get(m, "h_seconds", "H.", NULL, b2, 2), h);
    assert_null(sked_histogram_get(m, "h_seconds", "H.", NULL, b3, 3));
    assert_null(sked_histogram_get(m, "h_seconds", "H.", "y=\"1\"", b3, 3));
    assert_null(sked_histogram_get(m, "h2_seconds", "H.", NULL, bad, 2));
    assert_null(sked_histogram_get(m, "h2_seconds", "H.", NULL, b2, 0));
    assert_null(sked_histogram_get(m, "h2_seconds", "H.", "le=\"1\"", b2, 2));
    /* updates through NULL are harmless */
    sked_counter_inc(NULL);
    sked_counter_add(NULL, 3);
    sked_gauge_set(NULL, 1);
    sked_gauge_add(NULL, 1);
    sked_gauge_set_func(NULL, NULL, NULL);
    sked_histogram_observe(NULL, 1);
    assert_int_equal(sked_counter_value(NULL), 0);
    /* the default registry is one */
    assert_non_null(sked_metrics_default());
    assert_ptr_equal(sked_metrics_default(), sked_metrics_default());
    sked_metrics_free(m);
}

static void test_values_formatting(void **state)
{
    (void)state;
    sked_metrics *m = sked_metrics_new();
    struct {
        double v;
        const char *want;
    } cases[] = {
        {-0.5, "-0.5"},       {0, "0"},        {1e300, "1e+300"},
        {0.1, "0.1"},         {1.0 / 3, "0.33333333333333331"},
        {123456789, "123456789"},
        {INFINITY, "+Inf"},   {-INFINITY, "-Inf"}, {NAN, "NaN"},
    };
    char labels[64], want[128];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(labels, sizeof labels, "i=\"%zu\"", i);
        sked_gauge_set(sked_gauge_get(m, "g", "G.", labels), cases[i].v);
    }
    char *text = sked_metrics_render(m, NULL);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(want, sizeof want, "\ng{i=\"%zu\"} %s\n", i, cases[i].want);
        if (strstr(text, want) == NULL)
            fail_msg("missing %s in\n%s", want, text);
    }
    free(text);
    sked_metrics_free(m);
}

static void test_label_escaping(void **state)
{
    (void)state;
    char buf[128];
    int n = sked_metrics_labels(buf, sizeof buf, "path", "a\"b\\c\nd", "code",
                                "201", NULL);
    const char *want = "path=\"a\\\"b\\\\c\\nd\",code=\"201\"";
    assert_string_equal(buf, want);
    assert_int_equal(n, (int)strlen(want));
    assert_int_equal(sked_metrics_labels(buf, sizeof buf, NULL), 0);
    assert_string_equal(buf, "");
    /* too small, bad label names */
    assert_int_equal(sked_metrics_labels(buf, 10, "path", "/v1/tasks", NULL),
                     -1);
    assert_string_equal(buf, "");
    assert_int_equal(sked_metrics_labels(buf, sizeof buf, "a-b", "1", NULL),
                     -1);
    assert_int_equal(sked_metrics_labels(buf, sizeof buf, "a:b", "1", NULL),
                     -1);

    /* what it builds is accepted and rendered verbatim; help is escaped */
    sked_metrics *m = sked_metrics_new();
    sked_metrics_labels(buf, sizeof buf, "path", "a\"b\\c\nd", NULL);
    sked_counter *c = sked_counter_get(m, "esc_total", "back\\slash\nnewline",
                                       buf);
    assert_non_null(c);
    sked_counter_inc(c);
    char *text = sked_metrics_render(m, NULL);
    assert_string_equal(text,
                        "# HELP esc_total back\\\\slash\\nnewline\n"
                        "# TYPE esc_total counter\n"
                        "esc_total{path=\"a\\\"b\\\\c\\nd\"} 1\n");
    free(text);
    sked_metrics_free(m);
}

#define NTHREADS 8
#define NITER 200000
#define NSERIES 200

typedef struct shared {
    sked_metrics *m;
    pthread_barrier_t start;
} shared;

static void *hammer(void *arg)
{
    shared *sh = arg;
    static const double bounds[] = {0.5, 1, 2};
    pthread_barrier_wait(&sh->start);
    /* every thread looks the series up itself: one series must result */
    sked_counter *c = sked_counter_get(sh->m, "hits_total", "Hits.", NULL);
    sked_gauge *g = sked_gauge_get(sh->m, "level", "Level.", NULL);
    sked_histogram *h =
        sked_histogram_get(sh->m, "obs", "Obs.", NULL, bounds, 3);
    for (int i = 0; i < NITER; i++) {
        sked_counter_inc(c);
        if (i % 10 == 0) {
            sked_gauge_add(g, 1);
            sked_histogram_observe(h, (i / 10) % 2 ? 1.0 : 3.0);
        }
    }
    /* and many new series at once, to grow the table under contention */
    char labels[64];
    for (int i = 0; i < NSERIES; i++) {
        snprintf(labels, sizeof labels, "t=\"%p\",n=\"%d\"", (void *)&labels,
                 i);
        sked_counter_inc(sked_counter_get(sh->m, "many_total", "Many.",
                                          labels));
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    (void)state;
    shared sh = {.m = sked_metrics_new()};
    pthread_barrier_init(&sh.start, NULL, NTHREADS);
    pthread_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &sh), 0);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&sh.start);

    sked_counter *c = sked_counter_get(sh.m, "hits_total", "Hits.", NULL);
    assert_int_equal(sked_counter_value(c), (uint64_t)NTHREADS * NITER);
    sked_gauge *g = sked_gauge_get(sh.m, "level", "Level.", NULL);
    assert_true(sked_gauge_value(g) == (double)NTHREADS * NITER / 10);

    char *text = sked_metrics_render(sh.m, NULL);
    char want[128];
    int nobs = NTHREADS * NITER / 10;
    snprintf(want, sizeof want, "\nobs_bucket{le=\"1\"} %d\n", nobs / 2);
    assert_non_null(strstr(text, want));
    snprintf(want, sizeof want, "\nobs_bucket{le=\"2\"} %d\n", nobs / 2);
    assert_non_null(strstr(text, want));
    snprintf(want, sizeof want, "\nobs_bucket{le=\"+Inf\"} %d\n", nobs);
    assert_non_null(strstr(text, want));
    snprintf(want, sizeof want, "\nobs_sum %d\n", nobs / 2 * 4);
    assert_non_null(strstr(text, want));
    snprintf(want, sizeof want, "\nobs_count %d\n", nobs);
    assert_non_null(strstr(text, want));
    /* NTHREADS * NSERIES series of many_total, each counted once */
    int lines = 0;
    for (const char *p = text; (p = strstr(p, "\nmany_total{")); p++) {
        lines++;
        const char *eol = strchr(p + 1, '\n');
        assert_true(eol - p > 3 && memcmp(eol - 2, " 1", 2) == 0);
    }
    assert_int_equal(lines, NTHREADS * NSERIES);
    assert_non_null(strstr(text, "# TYPE many_total counter\n"));
    assert_null(strstr(strstr(text, "# TYPE many_total") + 1,
                       "# TYPE many_total"));
    free(text);
    sked_metrics_free(sh.m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_exact),
        cmocka_unit_test(test_get_or_create),
        cmocka_unit_test(test_values_formatting),
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_concurrent),
    };
    return sked_test_run("metrics", tests, sizeof tests / sizeof tests[0]);
}
