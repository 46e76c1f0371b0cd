/*
 * test_store.c - the store conformance suite: every method's contract from
 * src/store/store.h, run against whichever backend SKED_TEST_STORE_URL
 * names (default: a fresh sqlite: file in a temporary directory).
 *
 * The suite never assumes an empty store: each test works in namespaces of
 * its own (unique per run), so it can be pointed at a long-lived PostgreSQL
 * database.  Tests that only make sense for one backend say so and skip
 * elsewhere.
 */
#include "../unit/harness.h"

#include <dirent.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "store/store.h"
#include "store/store_sqlite.h"

static char url[4200];
static char tmpdir[256];       /* ours to remove at exit, or empty */
static unsigned salt;
static atomic_uint counter;

/* ---- helpers ----------------------------------------------------------- */

/* A fresh UUID-shaped id, increasing within the run. */
static void new_id(char out[SKED_ID_LEN + 1])
{
    unsigned n = atomic_fetch_add(&counter, 1);
    snprintf(out, SKED_ID_LEN + 1, "%08x-%04x-7000-8000-%012x", salt,
             (unsigned)getpid() & 0xffff, n);
}

static void new_ns(char *out, size_t cap)
{
    unsigned n = atomic_fetch_add(&counter, 1);
    snprintf(out, cap, "t%08x-%u-%u", salt, (unsigned)getpid(), n);
}

typedef struct fixture {
    sked_store *st;
    char ns[SKED_NS_MAX + 1];
    char ns2[SKED_NS_MAX + 1];
} fixture;

static sked_store *open_store(void)
{
    sked_store *st = NULL;
    sked_err err = {0};
    int rc = sked_store_open(url, &st, &err);
    if (rc != 0)
        fail_msg("open %s: %s", url, err.msg);
    return st;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->st = open_store();
    new_ns(f->ns, sizeof f->ns);
    new_ns(f->ns2, sizeof f->ns2);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    sked_store_close(f->st);
    free(f);
    return 0;
}

/* A task record borrowing name and spec (never deinit'ed). */
static void mk(sked_task_rec *r, const char *ns, const char *name,
               const char *queue, const char *spec)
{
    memset(r, 0, sizeof *r);
    new_id(r->id);
    snprintf(r->ns, sizeof r->ns, "%s", ns);
    snprintf(r->queue, sizeof r->queue, "%s", queue ? queue : "default");
    r->name = (char *)name;
    r->spec = (char *)(spec ? spec : "{\"schedule\":{\"every\":\"1m\"}}");
    r->state = SKED_TASK_ACTIVE;
    r->next_run_at = sked_clock_wall_now() + 60 * SKED_USEC_PER_SEC;
    r->version = 1;
    r->created_at = r->updated_at = sked_clock_wall_now();
}

static int insert1(sked_store *st, sked_task_rec *r, sked_err *err)
{
    return sked_store_task_insert(st, r, 1, NULL, err);
}

static void insert_ok(sked_store *st, sked_task_rec *r)
{
    sked_err err = {0};
    int rc = insert1(st, r, &err);
    if (rc != 0)
        fail_msg("insert %s: %s (%s)", r->id, err.msg, sked_err_name(rc));
}

static void assert_same_task(const sked_task_rec *a, const sked_task_rec *b)
{
    assert_string_equal(a->id, b->id);
    assert_string_equal(a->ns, b->ns);
    if (a->name == NULL || b->name == NULL)
        assert_true(a->name == NULL && b->name == NULL);
    else
        assert_string_equal(a->name, b->name);
    assert_string_equal(a->queue, b->queue);
    assert_string_equal(a->spec, b->spec);
    assert_int_equal(a->state, b->state);
    assert_true(a->next_run_at == b->next_run_at);
    assert_int_equal(a->run_count, b->run_count);
    assert_int_equal(a->version, b->version);
    assert_true(a->created_at == b->created_at);
    assert_true(a->updated_at == b->updated_at);
}

/* rc of a get, releasing what it returned. */
static int get_rc(sked_store *st, const char *ns, const char *key)
{
    sked_task_rec r;
    sked_err err = {0};
    int rc = sked_store_task_get(st, ns, key, &r, &err);
    if (rc == 0)
        sked_task_rec_deinit(&r);
    return rc;
}

/* Walk every page of a listing with page size `limit`; returns how many
 * records were seen, checks ids strictly increase and `more` is right. */
static size_t count_all(sked_store *st, sked_task_filter f, int limit)
{
    char after[SKED_ID_LEN + 1] = "";
    size_t total = 0;
    f.limit = limit;
    for (;;) {
        sked_task_page p;
        sked_err err = {0};
        f.after_id = after[0] ? after : NULL;
        int rc = sked_store_task_list(st, &f, &p, &err);
        if (rc != 0)
            fail_msg("list: %s", err.msg);
        assert_true(p.n <= (size_t)limit);
        for (size_t i = 0; i < p.n; i++) {
            assert_true(strcmp(p.recs[i].id, after) > 0);
            snprintf(after, sizeof after, "%s", p.recs[i].id);
        }
        total += p.n;
        int more = p.more;
        if (more)
            assert_int_equal(p.n, limit);
        sked_task_page_deinit(&p);
        if (!more)
            break;
    }
    return total;
}

static sked_task_filter all_of(const char *ns)
{
    return (sked_task_filter){.ns = ns, .state = -1, .limit = 1000};
}

/* ---- open -------------------------------------------------------------- */

static void test_open_bad_url(void **state)
{
    (void)state;
    sked_store *st = NULL;
    sked_err err = {0};
    assert_int_equal(sked_store_open("nope:/tmp/x", &st, &err), SKED_EINVAL);
    assert_non_null(strstr(err.msg, "nope"));
    assert_null(st);
    assert_int_equal(sked_store_open("no-scheme", &st, &err), SKED_EINVAL);
    assert_int_equal(sked_store_open("sqlite:", &st, &err), SKED_EINVAL);
    assert_int_equal(sked_store_open("sqlite:/nonexistent-dir/x/y.db", &st,
                                     &err),
                     SKED_EIO);
    assert_null(st);
}

static void test_ping(void **state)
{
    fixture *f = *state;
    sked_err err = {0};
    assert_int_equal(sked_store_ping(f->st, &err), 0);
}

/* ---- insert and get ---------------------------------------------------- */

static void test_insert_get(void **state)
{
    fixture *f = *state;
    sked_task_rec r, got;
    sked_err err = {0};
    mk(&r, f->ns, "nightly", "reports",
       "{\"schedule\":{\"cron\":\"0 3 * * *\"},\"labels\":{\"team\":\"d\"}}");
    r.run_count = 7;
    insert_ok(f->st, &r);

    assert_int_equal(sked_store_task_get(f->st, f->ns, r.id, &got, &err), 0);
    assert_same_task(&r, &got);
    sked_task_rec_deinit(&got);
    assert_int_equal(sked_store_task_get(f->st, f->ns, "nightly", &got, &err),
                     0);
    assert_same_task(&r, &got);
    sked_task_rec_deinit(&got);

    /* No name, nothing due: NULLs both ways; several unnamed tasks. */
    sked_task_rec u1, u2;
    mk(&u1, f->ns, NULL, NULL, NULL);
    mk(&u2, f->ns, NULL, NULL, NULL);
    u1.next_run_at = SKED_TIME_NONE;
    u1.state = SKED_TASK_PAUSED;
    insert_ok(f->st, &u1);
    insert_ok(f->st, &u2);
    assert_int_equal(sked_store_task_get(f->st, f->ns, u1.id, &got, &err), 0);
    assert_same_task(&u1, &got);
    assert_null(got.name);
    assert_true(got.next_run_at == SKED_TIME_NONE);
    sked_task_rec_deinit(&got);

    assert_int_equal(get_rc(f->st, f->ns, "no-such-task"), SKED_ENOENT);
}

static void test_insert_duplicate_name(void **state)
{
    fixture *f = *state;
    sked_task_rec a, b;
    sked_err err = {0};
    mk(&a, f->ns, "same", NULL, NULL);
    mk(&b, f->ns, "same", NULL, NULL);
    insert_ok(f->st, &a);
    assert_int_equal(insert1(f->st, &b, &err), SKED_ECONFLICT);
    assert_string_equal(err.field, "name");
    assert_int_equal(get_rc(f->st, f->ns, b.id), SKED_ENOENT);
    /* The same name in another namespace is fine. */
    mk(&b, f->ns2, "same", NULL, NULL);
    insert_ok(f->st, &b);
}

static void test_batch_1000(void **state)
{
    fixture *f = *state;
    enum { N = 1000 };
    sked_task_rec *recs = calloc(N, sizeof *recs);
    char (*names)[32] = calloc(N, sizeof *names);
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "batch-%d", i);
        mk(&recs[i], f->ns, names[i], NULL, NULL);
    }
    sked_err err = {0};
    assert_int_equal(sked_store_task_insert(f->st, recs, N, NULL, &err), 0);
    assert_int_equal(count_all(f->st, all_of(f->ns), 1000), N);
    assert_int_equal(count_all(f->st, all_of(f->ns), 333), N);
    sked_task_rec got;
    assert_int_equal(
        sked_store_task_get(f->st, f->ns, "batch-999", &got, &err), 0);
    assert_same_task(&recs[999], &got);
    sked_task_rec_deinit(&got);
    free(recs);
    free(names);
}

/* A name repeated inside the batch, or taken by a stored task: the whole
 * batch fails, naming the element, and nothing of it is stored. */
static void test_batch_all_or_nothing(void **state)
{
    fixture *f = *state;
    enum { N = 1000 };
    sked_task_rec *recs = calloc(N, sizeof *recs);
    char (*names)[32] = calloc(N, sizeof *names);
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "b-%d", i);
        mk(&recs[i], f->ns, names[i], NULL, NULL);
    }
    recs[700].name = names[10];
    sked_err err = {0};
    assert_int_equal(sked_store_task_insert(f->st, recs, N, NULL, &err),
                     SKED_ECONFLICT);
    assert_string_equal(err.field, "name");
    assert_int_equal(err.column, 701);
    assert_int_equal(count_all(f->st, all_of(f->ns), 1000), 0);

    sked_task_rec stored;
    mk(&stored, f->ns, "taken", NULL, NULL);
    insert_ok(f->st, &stored);
    recs[700].name = names[700];
    recs[5].name = "taken";
    sked_err_clear(&err);
    assert_int_equal(sked_store_task_insert(f->st, recs, N, NULL, &err),
                     SKED_ECONFLICT);
    assert_string_equal(err.field, "name");
    assert_int_equal(err.column, 6);
    assert_int_equal(count_all(f->st, all_of(f->ns), 1000), 1);
    assert_int_equal(get_rc(f->st, f->ns, recs[0].id), SKED_ENOENT);
    free(recs);
    free(names);
}

static void test_idempotency(void **state)
{
    fixture *f = *state;
    sked_task_rec a, b;
    sked_err err = {0};
    sked_idem k = {.key = "key-1", .request_hash = "aaaa"};
    mk(&a, f->ns, "idem", NULL, NULL);
    assert_int_equal(sked_store_task_insert(f->st, &a, 1, &k, &err), 0);

    /* The retry: same key, same body. */
    mk(&b, f->ns, "idem", NULL, NULL);
    char retry_id[SKED_ID_LEN + 1];
    memcpy(retry_id, b.id, sizeof retry_id);
    assert_int_equal(sked_store_task_insert(f->st, &b, 1, &k, &err),
                     SKED_EEXIST);
    assert_string_equal(b.id, a.id);
    assert_int_equal(get_rc(f->st, f->ns, retry_id), SKED_ENOENT);

    /* Same key, another body. */
    sked_idem other = {.key = "key-1", .request_hash = "bbbb"};
    mk(&b, f->ns, "idem-2", NULL, NULL);
    sked_err_clear(&err);
    assert_int_equal(sked_store_task_insert(f->st, &b, 1, &other, &err),
                     SKED_ECONFLICT);
    assert_string_equal(err.field, "Idempotency-Key");
    assert_int_equal(get_rc(f->st, f->ns, b.id), SKED_ENOENT);

    /* Keys are per namespace. */
    mk(&b, f->ns2, "idem", NULL, NULL);
    assert_int_equal(sked_store_task_insert(f->st, &b, 1, &other, &err), 0);
    assert_int_equal(get_rc(f->st, f->ns2, b.id), 0);

    /* A failed insert does not remember its key. */
    sked_idem k3 = {.key = "key-3", .request_hash = "cccc"};
    mk(&b, f->ns, "idem", NULL, NULL); /* name taken */
    assert_int_equal(sked_store_task_insert(f->st, &b, 1, &k3, &err),
                     SKED_ECONFLICT);
    assert_string_equal(err.field, "name");
    mk(&b, f->ns, "idem-3", NULL, NULL);
    assert_int_equal(sked_store_task_insert(f->st, &b, 1, &k3, &err), 0);
}

static void test_namespaces_isolated(void **state)
{
    fixture *f = *state;
    sked_task_rec a;
    sked_err err = {0};
    mk(&a, f->ns, "mine", NULL, NULL);
    insert_ok(f->st, &a);
    assert_int_equal(get_rc(f->st, f->ns2, a.id), SKED_ENOENT);
    assert_int_equal(get_rc(f->st, f->ns2, "mine"), SKED_ENOENT);
    assert_int_equal(count_all(f->st, all_of(f->ns2), 100), 0);

    sked_task_rec u = a;
    snprintf(u.ns, sizeof u.ns, "%s", f->ns2);
    assert_int_equal(sked_store_task_update(f->st, &u, 0, &err), SKED_ENOENT);
    assert_int_equal(sked_store_task_delete(f->st, f->ns2, a.id, &err),
                     SKED_ENOENT);
    assert_int_equal(get_rc(f->st, f->ns, a.id), 0);
}

/* ---- list -------------------------------------------------------------- */

static void test_list_filters(void **state)
{
    fixture *f = *state;
    static const char *specs[] = {
        "{\"labels\":{\"team\":\"data\",\"tier\":\"1\"}}",
        "{\"labels\":{\"team\":\"web\"}}",
        "{\"labels\":{}}",
        "{\"other\":{\"team\":\"data\"}}",
    };
    static const char *names[] = {"report-a", "report-b", "rebuild", NULL};
    /* 24 tasks: state i%3, queue i%2, spec i%4, name i%4 (+ suffix). */
    char nm[24][32];
    for (int i = 0; i < 24; i++) {
        sked_task_rec r;
        const char *n = NULL;
        if (names[i % 4] != NULL) {
            snprintf(nm[i], sizeof nm[i], "%s-%d", names[i % 4], i);
            n = nm[i];
        }
        mk(&r, f->ns, n, i % 2 ? "q1" : "q0", specs[i % 4]);
        r.state = (sked_task_state)(i % 3);
        insert_ok(f->st, &r);
    }
    sked_task_filter q = all_of(f->ns);
    assert_int_equal(count_all(f->st, q, 5), 24);
    q.state = SKED_TASK_PAUSED;
    assert_int_equal(count_all(f->st, q, 5), 8);
    q = all_of(f->ns);
    q.queue = "q1";
    assert_int_equal(count_all(f->st, q, 5), 12);
    q.queue = "nope";
    assert_int_equal(count_all(f->st, q, 5), 0);
    q = all_of(f->ns);
    q.label_key = "team";
    q.label_value = "data";
    assert_int_equal(count_all(f->st, q, 5), 6);
    q.label_value = "web";
    assert_int_equal(count_all(f->st, q, 5), 6);
    q.label_key = "tier";
    assert_int_equal(count_all(f->st, q, 5), 0);
    q.label_value = "1";
    assert_int_equal(count_all(f->st, q, 5), 6);
    q = all_of(f->ns);
    q.name_prefix = "report-";
    assert_int_equal(count_all(f->st, q, 5), 12);
    q.name_prefix = "re";
    assert_int_equal(count_all(f->st, q, 5), 18);
    q.name_prefix = "report-a";
    q.queue = "q0";
    q.state = SKED_TASK_ACTIVE;
    q.label_key = "team";
    q.label_value = "data";
    /* i % 4 == 0 and i % 3 == 0: i in {0, 12}; queue q0 holds. */
    assert_int_equal(count_all(f->st, q, 1), 2);
    /* Empty strings do not filter. */
    q = all_of(f->ns);
    q.queue = "";
    q.name_prefix = "";
    q.label_key = "";
    assert_int_equal(count_all(f->st, q, 100), 24);
}

static void test_list_pagination(void **state)
{
    fixture *f = *state;
    enum { N = 250 };
    static char ids[N][SKED_ID_LEN + 1];
    for (int i = 0; i < N; i++) {
        sked_task_rec r;
        mk(&r, f->ns, NULL, NULL, NULL);
        insert_ok(f->st, &r);
        memcpy(ids[i], r.id, sizeof ids[i]);
    }
    /* Every task exactly once, in id order, across pages of 7. */
    int seen[N] = {0};
    sked_task_filter q = all_of(f->ns);
    q.limit = 7;
    char after[SKED_ID_LEN + 1] = "";
    int pages = 0;
    for (;;) {
        sked_task_page p;
        sked_err err = {0};
        q.after_id = after[0] ? after : NULL;
        assert_int_equal(sked_store_task_list(f->st, &q, &p, &err), 0);
        pages++;
        for (size_t i = 0; i < p.n; i++) {
            int k = 0;
            while (k < N && strcmp(ids[k], p.recs[i].id) != 0)
                k++;
            assert_true(k < N);
            seen[k]++;
            memcpy(after, p.recs[i].id, sizeof after);
        }
        int more = p.more;
        sked_task_page_deinit(&p);
        if (!more)
            break;
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], 1);
    assert_int_equal(pages, (N + 6) / 7);

    /* An exact multiple: the last full page says there is no more. */
    assert_int_equal(count_all(f->st, all_of(f->ns), 125), N);
    assert_int_equal(count_all(f->st, all_of(f->ns), 250), N);
    sked_task_page p;
    sked_err err = {0};
    q.limit = 250;
    q.after_id = NULL;
    assert_int_equal(sked_store_task_list(f->st, &q, &p, &err), 0);
    assert_int_equal(p.n, N);
    assert_int_equal(p.more, 0);
    sked_task_page_deinit(&p);
    q.limit = 249;
    assert_int_equal(sked_store_task_list(f->st, &q, &p, &err), 0);
    assert_int_equal(p.more, 1);
    sked_task_page_deinit(&p);
}

static void test_list_invalid(void **state)
{
    fixture *f = *state;
    sked_task_page p;
    sked_err err = {0};
    sked_task_filter q = all_of(f->ns);
    q.limit = 0;
    assert_int_equal(sked_store_task_list(f->st, &q, &p, &err), SKED_EINVAL);
    assert_string_equal(err.field, "limit");
    q.limit = 1001;
    assert_int_equal(sked_store_task_list(f->st, &q, &p, &err), SKED_EINVAL);
    q = all_of(NULL);
    assert_int_equal(sked_store_task_list(f->st, &q, &p, &err), SKED_EINVAL);
}

/* ---- update, delete ---------------------------------------------------- */

static void test_update(void **state)
{
    fixture *f = *state;
    sked_task_rec a, b, got;
    sked_err err = {0};
    mk(&a, f->ns, "upd", NULL, "{\"v\":1}");
    mk(&b, f->ns, "other", NULL, NULL);
    insert_ok(f->st, &a);
    insert_ok(f->st, &b);

    /* Without a precondition. */
    a.spec = "{\"v\":2}";
    a.queue[0] = 'q';
    a.state = SKED_TASK_PAUSED;
    a.next_run_at = SKED_TIME_NONE;
    a.run_count = 3;
    a.updated_at += 5;
    assert_int_equal(sked_store_task_update(f->st, &a, 0, &err), 0);
    assert_int_equal(a.version, 2);
    assert_int_equal(sked_store_task_get(f->st, f->ns, "upd", &got, &err), 0);
    assert_same_task(&a, &got);
    sked_task_rec_deinit(&got);

    /* With the right and with a stale version. */
    a.spec = "{\"v\":3}";
    assert_int_equal(sked_store_task_update(f->st, &a, 2, &err), 0);
    assert_int_equal(a.version, 3);
    sked_task_rec stale = a;
    stale.spec = "{\"v\":\"stale\"}";
    assert_int_equal(sked_store_task_update(f->st, &stale, 2, &err),
                     SKED_EPRECOND);
    assert_int_equal(sked_store_task_get(f->st, f->ns, a.id, &got, &err), 0);
    assert_string_equal(got.spec, "{\"v\":3}");
    assert_int_equal(got.version, 3);
    sked_task_rec_deinit(&got);

    /* Renaming onto a taken name; renaming; dropping the name. */
    a.name = "other";
    sked_err_clear(&err);
    assert_int_equal(sked_store_task_update(f->st, &a, 3, &err),
                     SKED_ECONFLICT);
    assert_string_equal(err.field, "name");
    a.name = "renamed";
    assert_int_equal(sked_store_task_update(f->st, &a, 3, &err), 0);
    assert_int_equal(get_rc(f->st, f->ns, "upd"), SKED_ENOENT);
    assert_int_equal(get_rc(f->st, f->ns, "renamed"), 0);
    a.name = NULL;
    assert_int_equal(sked_store_task_update(f->st, &a, 0, &err), 0);
    assert_int_equal(a.version, 5);

    /* No such task. */
    sked_task_rec ghost;
    mk(&ghost, f->ns, NULL, NULL, NULL);
    assert_int_equal(sked_store_task_update(f->st, &ghost, 0, &err),
                     SKED_ENOENT);
    assert_int_equal(sked_store_task_update(f->st, &ghost, 1, &err),
                     SKED_ENOENT);
}

typedef struct cas_arg {
    sked_store *st;
    const char *ns, *id;
    int wins;
} cas_arg;

/* Read, then write with If-Match; count how many writes won. */
static void *cas_thread(void *p)
{
    cas_arg *a = p;
    for (int i = 0; i < 50; i++) {
        sked_task_rec r;
        sked_err err = {0};
        if (sked_store_task_get(a->st, a->ns, a->id, &r, &err) != 0)
            abort();
        int rc = sked_store_task_update(a->st, &r, r.version, &err);
        if (rc == 0)
            a->wins++;
        else if (rc != SKED_EPRECOND)
            abort();
        sked_task_rec_deinit(&r);
    }
    return NULL;
}

static void test_update_concurrent_if_match(void **state)
{
    fixture *f = *state;
    sked_task_rec a, got;
    sked_err err = {0};
    mk(&a, f->ns, "cas", NULL, NULL);
    insert_ok(f->st, &a);
    enum { T = 4 };
    pthread_t th[T];
    cas_arg args[T];
    for (int i = 0; i < T; i++) {
        args[i] = (cas_arg){.st = f->st, .ns = f->ns, .id = a.id};
        pthread_create(&th[i], NULL, cas_thread, &args[i]);
    }
    int wins = 0;
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        wins += args[i].wins;
    }
    assert_int_equal(sked_store_task_get(f->st, f->ns, a.id, &got, &err), 0);
    assert_int_equal(got.version, 1 + wins);
    assert_true(wins >= 50);
    sked_task_rec_deinit(&got);
}

static void test_delete(void **state)
{
    fixture *f = *state;
    sked_task_rec a, b;
    sked_err err = {0};
    mk(&a, f->ns, "del", NULL, NULL);
    mk(&b, f->ns, "keep", NULL, NULL);
    insert_ok(f->st, &a);
    insert_ok(f->st, &b);
    assert_int_equal(sked_store_task_delete(f->st, f->ns, a.id, &err), 0);
    assert_int_equal(get_rc(f->st, f->ns, a.id), SKED_ENOENT);
    assert_int_equal(get_rc(f->st, f->ns, "del"), SKED_ENOENT);
    assert_int_equal(get_rc(f->st, f->ns, "keep"), 0);
    assert_int_equal(sked_store_task_delete(f->st, f->ns, a.id, &err),
                     SKED_ENOENT);
    /* The name is free again. */
    mk(&a, f->ns, "del", NULL, NULL);
    insert_ok(f->st, &a);
}

/* ---- tokens ------------------------------------------------------------ */

static void mk_token(sked_token_rec *t, const char *ns, sked_role role,
                     sked_walltime at)
{
    memset(t, 0, sizeof *t);
    new_id(t->id);
    unsigned n = atomic_fetch_add(&counter, 1);
    snprintf(t->hash, sizeof t->hash, "%032x%08x%08x%016x", n, salt,
             (unsigned)getpid(), n);
    snprintf(t->ns, sizeof t->ns, "%s", ns);
    t->role = role;
    t->created_at = at;
    t->revoked_at = SKED_TIME_NONE;
}

static int has_token(const sked_token_rec *v, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].id, id) == 0)
            return 1;
    return 0;
}

static void test_tokens(void **state)
{
    fixture *f = *state;
    sked_err err = {0};
    sked_walltime now = sked_clock_wall_now();
    sked_token_rec t1, t2, t3, got;
    mk_token(&t1, f->ns, SKED_ROLE_ADMIN, now);
    mk_token(&t2, f->ns, SKED_ROLE_READ, now + 1);
    mk_token(&t3, f->ns2, SKED_ROLE_SHELL, now + 2);
    assert_int_equal(sked_store_token_insert(f->st, &t1, &err), 0);
    assert_int_equal(sked_store_token_insert(f->st, &t2, &err), 0);
    assert_int_equal(sked_store_token_insert(f->st, &t3, &err), 0);

    assert_int_equal(sked_store_token_find(f->st, t2.hash, &got, &err), 0);
    assert_string_equal(got.id, t2.id);
    assert_string_equal(got.ns, f->ns);
    assert_int_equal(got.role, SKED_ROLE_READ);
    assert_true(got.created_at == now + 1);
    assert_true(got.revoked_at == SKED_TIME_NONE);
    assert_int_equal(sked_store_token_find(f->st, "00", &got, &err),
                     SKED_ENOENT);

    sked_token_rec *v;
    size_t n;
    assert_int_equal(sked_store_token_list(f->st, f->ns, &v, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].id, t1.id); /* oldest first */
    assert_string_equal(v[1].id, t2.id);
    free(v);
    assert_int_equal(sked_store_token_list(f->st, NULL, &v, &n, &err), 0);
    assert_true(n >= 3);
    assert_true(has_token(v, n, t1.id) && has_token(v, n, t3.id));
    free(v);

    /* Duplicate hash. */
    sked_token_rec dup = t1;
    new_id(dup.id);
    assert_int_equal(sked_store_token_insert(f->st, &dup, &err),
                     SKED_ECONFLICT);

    /* Revoke: wrong namespace, unknown id, then for real. */
    assert_int_equal(sked_store_token_revoke(f->st, f->ns2, t1.id, now, &err),
                     SKED_ENOENT);
    assert_int_equal(sked_store_token_revoke(f->st, f->ns, "nope", now, &err),
                     SKED_ENOENT);
    assert_int_equal(
        sked_store_token_revoke(f->st, f->ns, t1.id, now + 10, &err), 0);
    assert_int_equal(sked_store_token_find(f->st, t1.hash, &got, &err),
                     SKED_ENOENT);
    assert_int_equal(sked_store_token_revoke(f->st, NULL, t3.id, now, &err),
                     0);
    assert_int_equal(sked_store_token_find(f->st, t3.hash, &got, &err),
                     SKED_ENOENT);
    assert_int_equal(sked_store_token_find(f->st, t2.hash, &got, &err), 0);
    assert_int_equal(sked_store_token_list(f->st, f->ns, &v, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_true(v[0].revoked_at == now + 10);
    assert_true(v[1].revoked_at == SKED_TIME_NONE);
    free(v);
}

/* ---- durability, several openers, concurrency --------------------------- */

static void test_durable_across_reopen(void **state)
{
    fixture *f = *state;
    sked_task_rec a, got;
    sked_token_rec t;
    sked_err err = {0};
    mk(&a, f->ns, "durable", NULL, NULL);
    insert_ok(f->st, &a);
    mk_token(&t, f->ns, SKED_ROLE_WRITE, sked_clock_wall_now());
    assert_int_equal(sked_store_token_insert(f->st, &t, &err), 0);
    sked_store_close(f->st);
    f->st = open_store();
    assert_int_equal(sked_store_task_get(f->st, f->ns, "durable", &got, &err),
                     0);
    assert_same_task(&a, &got);
    sked_task_rec_deinit(&got);
    sked_token_rec tg;
    assert_int_equal(sked_store_token_find(f->st, t.hash, &tg, &err), 0);
}

typedef struct ins_arg {
    sked_store *st;
    const char *ns;
    int thread, n, ok, conflicts, other;
    char (*ids)[SKED_ID_LEN + 1];
} ins_arg;

/* Insert a->n single tasks; every 10th is named "dup-<k>", a name every
 * thread tries, so exactly one insert of each wins. */
static void *ins_thread(void *p)
{
    ins_arg *a = p;
    for (int i = 0; i < a->n; i++) {
        char name[48];
        if (i % 10 == 0)
            snprintf(name, sizeof name, "dup-%d", i / 10);
        else
            snprintf(name, sizeof name, "t%d-%d", a->thread, i);
        sked_task_rec r, got;
        sked_err err = {0};
        mk(&r, a->ns, name, NULL, NULL);
        int rc = insert1(a->st, &r, &err);
        if (rc == 0) {
            a->ok++;
            /* Read-your-writes from another connection. */
            if (sked_store_task_get(a->st, a->ns, r.id, &got, &err) != 0)
                a->other++;
            else
                sked_task_rec_deinit(&got);
        } else if (rc == SKED_ECONFLICT && i % 10 == 0) {
            a->conflicts++;
        } else {
            a->other++;
        }
    }
    return NULL;
}

static void run_inserters(sked_store *st1, sked_store *st2, const char *ns)
{
    enum { T = 8, N = 500 };
    pthread_t th[T];
    ins_arg args[T];
    for (int i = 0; i < T; i++) {
        args[i] = (ins_arg){.st = i % 2 && st2 ? st2 : st1, .ns = ns,
                            .thread = i, .n = N};
        pthread_create(&th[i], NULL, ins_thread, &args[i]);
    }
    int ok = 0, conflicts = 0, other = 0;
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        ok += args[i].ok;
        conflicts += args[i].conflicts;
        other += args[i].other;
    }
    assert_int_equal(other, 0);
    assert_int_equal(ok, T * (N - N / 10) + N / 10);
    assert_int_equal(conflicts, (T - 1) * (N / 10));
    assert_int_equal(count_all(st1, all_of(ns), 1000), ok);
    if (st2)
        assert_int_equal(count_all(st2, all_of(ns), 1000), ok);
}

static void test_concurrent_inserts(void **state)
{
    fixture *f = *state;
    run_inserters(f->st, NULL, f->ns);
}

/* Two openers of one store (as `sked token create` beside the server):
 * both write, nothing is lost. */
static void test_two_openers(void **state)
{
    fixture *f = *state;
    sked_store *second = open_store();
    run_inserters(f->st, second, f->ns);
    sked_store_close(second);
}

/* ---- SQLite only ------------------------------------------------------- */

static int is_sqlite(void) { return strncmp(url, "sqlite:", 7) == 0; }

static void test_sqlite_schema_too_new(void **state)
{
    (void)state;
    if (!is_sqlite())
        skip();
    char dir[] = "/tmp/sked-store-new-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[512], u[600];
    snprintf(path, sizeof path, "%s/db", dir);
    snprintf(u, sizeof u, "sqlite:%s", path);
    sked_store *st = NULL;
    sked_err err = {0};
    assert_int_equal(sked_store_open(u, &st, &err), 0);
    sked_store_close(st);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "INSERT INTO schema_version VALUES "
                                      "(9999, '9999_future.sql', 0)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    st = NULL;
    assert_int_equal(sked_store_open(u, &st, &err), SKED_EINVAL);
    assert_null(st);
    assert_non_null(strstr(err.msg, "9999"));
    char f1[600];
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(f1, sizeof f1, "%s%s", path, sfx[i]);
        unlink(f1);
    }
    rmdir(dir);
}

/* A job that fails in a way that ends the whole transaction (as SQLite
 * does on an I/O error or a full disk) while other callers' jobs share its
 * group: it gets its error, the others are run again and committed. */
static int poison_fn(sked_sqlite_conn *c, void *arg, sked_err *err)
{
    (void)arg;
    sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    return sked_err_set(err, SKED_EIO, NULL, 0, "poisoned");
}

typedef struct poison_arg {
    sked_store *st;
    int failures, n;
} poison_arg;

static void *poison_thread(void *p)
{
    poison_arg *a = p;
    for (int i = 0; i < a->n; i++) {
        sked_err err = {0};
        if (sked_sqlite_write((sked_sqlite_store *)a->st, poison_fn, NULL,
                              &err) == SKED_EIO)
            a->failures++;
        usleep(100);
    }
    return NULL;
}

static void test_sqlite_group_abort(void **state)
{
    fixture *f = *state;
    if (!is_sqlite())
        skip();
    poison_arg pa = {.st = f->st, .n = 200};
    pthread_t th;
    pthread_create(&th, NULL, poison_thread, &pa);
    run_inserters(f->st, NULL, f->ns);
    pthread_join(th, NULL);
    assert_int_equal(pa.failures, pa.n);
}

/* The file is in WAL mode, and the store still works after the file was
 * opened by someone else in between. */
static void test_sqlite_wal(void **state)
{
    fixture *f = *state;
    if (!is_sqlite())
        skip();
    sqlite3 *db;
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_open(url + 7, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q,
                                        NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
    sqlite3_finalize(q);
    sqlite3_close(db);
    sked_err err = {0};
    assert_int_equal(sked_store_ping(f->st, &err), 0);
}

/* ---- main -------------------------------------------------------------- */

static void remove_tmpdir(void)
{
    if (tmpdir[0] == '\0')
        return;
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char p[600];
        snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(tmpdir);
}

int main(void)
{
    salt = (unsigned)time(NULL);
    const char *env = getenv("SKED_TEST_STORE_URL");
    if (env != NULL && env[0] != '\0') {
        snprintf(url, sizeof url, "%s", env);
    } else {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/sked-store-XXXXXX");
        if (mkdtemp(tmpdir) == NULL) {
            perror("mkdtemp");
            return 2;
        }
        snprintf(url, sizeof url, "sqlite:%s/sked.db", tmpdir);
    }
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_bad_url),
        T(test_ping),
        T(test_insert_get),
        T(test_insert_duplicate_name),
        T(test_batch_1000),
        T(test_batch_all_or_nothing),
        T(test_idempotency),
        T(test_namespaces_isolated),
        T(test_list_filters),
        T(test_list_pagination),
        T(test_list_invalid),
        T(test_update),
        T(test_update_concurrent_if_match),
        T(test_delete),
        T(test_tokens),
        T(test_durable_across_reopen),
        T(test_concurrent_inserts),
        T(test_two_openers),
        cmocka_unit_test(test_sqlite_schema_too_new),
        T(test_sqlite_group_abort),
        T(test_sqlite_wal),
    };
#undef T
    /* "store_sqlite", "store_postgres": the summary names the backend. */
    char name[32];
    snprintf(name, sizeof name, "store_%.*s", (int)strcspn(url, ":"), url);
    int rc = sked_test_run(name, tests, sizeof tests / sizeof tests[0]);
    remove_tmpdir();
    return rc;
}
