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
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "core/clock.h"
#include "store/migrate.h"
#include "store/store.h"
#include "store/store_sqlite.h"
#include "store/store_sqlite_sync.h"

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

typedef struct idem_arg {
    sked_store *st;
    const char *ns;
    char id[SKED_ID_LEN + 1];           /* in: own id; out: the task's */
    int rc;
} idem_arg;

static void *idem_thread(void *p)
{
    idem_arg *a = p;
    sked_task_rec r;
    sked_err err = {0};
    sked_idem k = {.key = "same-key", .request_hash = "abcd"};
    mk(&r, a->ns, "retried", NULL, NULL);
    a->rc = sked_store_task_insert(a->st, &r, 1, &k, &err);
    memcpy(a->id, r.id, sizeof a->id);
    return NULL;
}

/* The same request retried at once from several clients (a load balancer
 * retrying, an impatient user): one creates the task, every other one is
 * told it exists and gets its id - never a conflict on the name. */
static void test_idempotency_concurrent(void **state)
{
    fixture *f = *state;
    enum { T = 8 };
    pthread_t th[T];
    idem_arg a[T];
    for (int i = 0; i < T; i++) {
        a[i] = (idem_arg){.st = f->st, .ns = f->ns};
        pthread_create(&th[i], NULL, idem_thread, &a[i]);
    }
    int created = -1;
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        if (a[i].rc == 0) {
            assert_int_equal(created, -1);
            created = i;
        } else {
            assert_int_equal(a[i].rc, SKED_EEXIST);
        }
    }
    assert_true(created >= 0);
    for (int i = 0; i < T; i++)
        assert_string_equal(a[i].id, a[created].id);
    assert_int_equal(count_all(f->st, all_of(f->ns), 100), 1);
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

/* Text that an encoding could trip on (quotes, backslashes, braces,
 * commas, the word NULL, the empty string, non-ASCII) comes back byte for
 * byte, through a batch insert, an update and a listing. */
static void test_odd_text(void **state)
{
    fixture *f = *state;
    static const char *const odd[] = {
        "NULL", "{\"a\":\"b\\\"c\"}", "x,y}{\"", "back\\slash\\",
        "caf\xc3\xa9 \xe2\x8f\xb0", " spaced ", "'quoted'", "$1::text",
    };
    enum { N = sizeof odd / sizeof odd[0] };
    sked_task_rec recs[N], got;
    sked_err err = {0};
    for (int i = 0; i < N; i++) {
        mk(&recs[i], f->ns, odd[i], NULL, odd[(i + 1) % N]);
        recs[i].queue[0] = '"';
    }
    assert_int_equal(sked_store_task_insert(f->st, recs, N, NULL, &err), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(sked_store_task_get(f->st, f->ns, odd[i], &got, &err),
                         0);
        assert_same_task(&recs[i], &got);
        sked_task_rec_deinit(&got);
    }
    sked_task_filter q = all_of(f->ns);
    q.name_prefix = "back\\";
    assert_int_equal(count_all(f->st, q, 10), 1);
    recs[0].spec = "";
    assert_int_equal(sked_store_task_update(f->st, &recs[0], 0, &err), 0);
    assert_int_equal(sked_store_task_get(f->st, f->ns, "NULL", &got, &err), 0);
    assert_string_equal(got.spec, "");
    sked_task_rec_deinit(&got);
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

/* ---- runs: helpers ------------------------------------------------------ */

/* Claims and sweeps are global, not per namespace, so the run tests live
 * in synthetic time: each test gets a base instant of its own, lower than
 * every earlier test's (and far before the real clock, where the task
 * tests put their next_run_at), and keeps its times within 11 days of it.
 * A test's horizon therefore never reaches another test's tasks or runs;
 * teardown_runs deletes the test's tasks, canceling their open runs. */
static atomic_uint bases;

static sked_walltime new_base(void)
{
    unsigned k = atomic_fetch_add(&bases, 1) + 1;
    return INT64_C(1000000000000000) -
           (sked_walltime)k * INT64_C(1000000000000);
}

#define SEC SKED_USEC_PER_SEC

static void new_owner(char *out, size_t cap)
{
    unsigned n = atomic_fetch_add(&counter, 1);
    snprintf(out, cap, "sched-%08x-%u-%u", salt, (unsigned)getpid(), n);
}

static void delete_all(sked_store *st, const char *ns)
{
    for (;;) {
        sked_task_page p;
        sked_err err = {0};
        sked_task_filter q = all_of(ns);
        if (sked_store_task_list(st, &q, &p, &err) != 0)
            return;
        for (size_t i = 0; i < p.n; i++)
            sked_store_task_delete(st, ns, p.recs[i].id, &err);
        size_t n = p.n;
        sked_task_page_deinit(&p);
        if (n == 0)
            return;
    }
}

static int teardown_runs(void **state)
{
    fixture *f = *state;
    delete_all(f->st, f->ns);
    delete_all(f->st, f->ns2);
    return teardown(state);
}

/* The policy of these tests: one occurrence at next_run_at, the next one
 * 60 s later.  Specs steer it: "at" completes the task, "bad" fails;
 * `overlap` records an occurrence as skipped while a run is unfinished. */
typedef struct tpolicy {
    int overlap;
    int dispatch;              /* 1: when nothing is unfinished; 2: always */
    atomic_int calls;
} tpolicy;

static int tadvance(void *ctx, const sked_task_rec *t, int unfinished,
                    sked_advance *out)
{
    tpolicy *p = ctx;
    if (p != NULL)
        atomic_fetch_add(&p->calls, 1);
    if (strstr(t->spec, "\"bad\"") != NULL)
        return SKED_EINVAL;
    out->nocc = 1;
    out->occ[0] = (sked_occurrence){.scheduled_at = t->next_run_at,
                                    .due_at = t->next_run_at};
    if (p != NULL && p->overlap && unfinished > 0) {
        out->occ[0].skipped = 1;
        out->occ[0].reason = "overlap";
    }
    if (p != NULL && (p->dispatch == 2 || (p->dispatch == 1 && unfinished == 0)))
        out->occ[0].dispatch = 1;
    if (strstr(t->spec, "\"at\"") != NULL) {
        out->next_run_at = SKED_TIME_NONE;
        out->state = SKED_TASK_COMPLETED;
    } else {
        out->next_run_at = t->next_run_at + 60 * SEC;
        out->state = SKED_TASK_ACTIVE;
    }
    return 0;
}

/* n tasks of ns due at `at` (borrowed specs; ids into ids if not NULL). */
static void mk_due(sked_store *st, const char *ns, int n, sked_walltime at,
                   const char *spec, char (*ids)[SKED_ID_LEN + 1])
{
    sked_task_rec *recs = calloc((size_t)n, sizeof *recs);
    for (int i = 0; i < n; i++) {
        mk(&recs[i], ns, NULL, "q-runs", spec);
        recs[i].next_run_at = at;
        if (ids != NULL)
            memcpy(ids[i], recs[i].id, sizeof ids[i]);
    }
    sked_err err = {0};
    int rc = sked_store_task_insert(st, recs, (size_t)n, NULL, &err);
    if (rc != 0)
        fail_msg("insert due tasks: %s", err.msg);
    free(recs);
}

static sked_claim claim_of(const char *owner, sked_walltime now,
                           sked_walltime horizon, int limit, tpolicy *p)
{
    return (sked_claim){.owner = owner, .now = now, .horizon = horizon,
                        .limit = limit, .lease_us = 30 * SEC,
                        .advance = tadvance, .ctx = p};
}

static void claim_ok(sked_store *st, sked_claim *c)
{
    sked_err err = {0};
    int rc = sked_store_claim_due(st, c, &err);
    if (rc != 0)
        fail_msg("claim: %s (%s)", err.msg, sked_err_name(rc));
}

static sked_task_rec task_of(sked_store *st, const char *ns, const char *id)
{
    sked_task_rec t;
    sked_err err = {0};
    if (sked_store_task_get(st, ns, id, &t, &err) != 0)
        fail_msg("task %s: %s", id, err.msg);
    return t;
}

static sked_run_rec run_of(sked_store *st, const char *ns, const char *id)
{
    sked_run_rec r;
    sked_err err = {0};
    if (sked_store_run_get(st, ns, id, &r, &err) != 0)
        fail_msg("run %s: %s", id, err.msg);
    return r;
}

/* Every run of a listing, all pages (free with sked_run_page_deinit). */
static sked_run_page runs_where(sked_store *st, sked_run_filter f)
{
    sked_run_page all = {0};
    char before[SKED_ID_LEN + 1] = "";
    size_t cap = 0;
    f.limit = 1000;
    for (;;) {
        sked_run_page p;
        sked_err err = {0};
        f.before_id = before[0] ? before : NULL;
        if (sked_store_run_list(st, &f, &p, &err) != 0)
            fail_msg("run list: %s", err.msg);
        if (all.n + p.n > cap) {
            cap = all.n + p.n + 64;
            all.recs = realloc(all.recs, cap * sizeof *all.recs);
        }
        if (p.n > 0) {
            memcpy(all.recs + all.n, p.recs, p.n * sizeof *p.recs);
            memcpy(before, p.recs[p.n - 1].id, sizeof before);
        }
        all.n += p.n;
        int more = p.more;
        free(p.recs); /* the records moved to all */
        if (!more)
            break;
    }
    return all;
}

static sked_run_filter runs_of_task(const char *ns, const char *task_id)
{
    return (sked_run_filter){.ns = ns, .task_id = task_id,
                             .since = SKED_TIME_NONE,
                             .until = SKED_TIME_NONE, .limit = 1000};
}

static size_t count_runs(sked_store *st, sked_run_filter f)
{
    sked_run_page p = runs_where(st, f);
    size_t n = p.n;
    sked_run_page_deinit(&p);
    return n;
}

/* A run of task t (of ns) at `at`, inserted as a trigger would be. */
static void mk_run(sked_run_rec *r, const char *ns, const char *task_id,
                   sked_walltime at)
{
    memset(r, 0, sizeof *r);
    new_id(r->id);
    snprintf(r->task_id, sizeof r->task_id, "%s", task_id);
    snprintf(r->ns, sizeof r->ns, "%s", ns);
    snprintf(r->queue, sizeof r->queue, "q-runs");
    r->scheduled_at = r->due_at = at;
    r->status = SKED_RUN_SCHEDULED;
    r->attempt = 1;
    r->lease_expires_at = SKED_TIME_NONE;
    r->dispatched_at = r->started_at = r->finished_at = SKED_TIME_NONE;
    r->lag_us = r->marked_at = SKED_TIME_NONE;
    r->exit_code = SKED_NO_CODE;
}

static void run_insert_ok(sked_store *st, const sked_run_rec *r)
{
    sked_err err = {0};
    int rc = sked_store_run_insert(st, r, &err);
    if (rc != 0)
        fail_msg("run insert: %s (%s)", err.msg, sked_err_name(rc));
}

/* Write r over the stored run, fenced on its current attempt and status. */
static int change1(sked_store *st, const sked_run_rec *r, int attempt,
                   unsigned from)
{
    sked_run_change ch = {.rec = r, .attempt = attempt, .from = from};
    sked_err err = {0};
    int rc = sked_store_run_update(st, &ch, 1, &err);
    if (rc != 0)
        fail_msg("run update: %s", err.msg);
    return ch.result;
}

/* What a scheduler does with a claim: mark every run dispatched. */
static void dispatch_all(sked_store *st, const sked_claim *c,
                         sked_walltime now)
{
    if (c->nruns == 0)
        return;
    sked_run_rec *recs = calloc(c->nruns, sizeof *recs);
    sked_run_change *ch = calloc(c->nruns, sizeof *ch);
    for (size_t i = 0; i < c->nruns; i++) {
        recs[i] = c->runs[i];
        recs[i].status = SKED_RUN_DISPATCHED;
        recs[i].dispatched_at = now;
        ch[i] = (sked_run_change){.rec = &recs[i],
                                  .attempt = c->runs[i].attempt,
                                  .from = SKED_RUN_BIT(SKED_RUN_SCHEDULED)};
    }
    sked_err err = {0};
    int rc = sked_store_run_update(st, ch, c->nruns, &err);
    if (rc != 0)
        fail_msg("dispatch: %s", err.msg);
    for (size_t i = 0; i < c->nruns; i++)
        if (ch[i].result != 0)
            fail_msg("dispatch of %s: %s", recs[i].id,
                     sked_err_name(ch[i].result));
    free(recs);
    free(ch);
}

static int claimed(const sked_claim *c, const char *run_id)
{
    for (size_t i = 0; i < c->nruns; i++)
        if (strcmp(c->runs[i].id, run_id) == 0)
            return 1;
    return 0;
}

static void assert_same_run(const sked_run_rec *a, const sked_run_rec *b)
{
    assert_string_equal(a->id, b->id);
    assert_string_equal(a->task_id, b->task_id);
    assert_string_equal(a->ns, b->ns);
    assert_true(a->scheduled_at == b->scheduled_at);
    assert_true(a->due_at == b->due_at);
    assert_int_equal(a->status, b->status);
    assert_string_equal(a->reason, b->reason);
    assert_int_equal(a->attempt, b->attempt);
    assert_string_equal(a->queue, b->queue);
    assert_string_equal(a->worker, b->worker);
    assert_string_equal(a->lease_owner, b->lease_owner);
    assert_true(a->lease_expires_at == b->lease_expires_at);
    assert_true(a->dispatched_at == b->dispatched_at);
    assert_true(a->started_at == b->started_at);
    assert_true(a->finished_at == b->finished_at);
    assert_true(a->lag_us == b->lag_us);
    assert_int_equal(a->exit_code, b->exit_code);
    assert_int_equal(a->http_status, b->http_status);
    if (a->error == NULL || b->error == NULL)
        assert_true(a->error == NULL && b->error == NULL);
    else
        assert_string_equal(a->error, b->error);
    if (a->output == NULL || b->output == NULL)
        assert_true(a->output == NULL && b->output == NULL);
    else
        assert_string_equal(a->output, b->output);
}

/* ---- claim -------------------------------------------------------------- */

/* Tasks ids[0..n) moved back to next_run_at `at`, as a writer racing a
 * claim could leave them. */
static void write_back(sked_store *st, const char *ns, char (*ids)[SKED_ID_LEN + 1], int n,
                       sked_walltime at)
{
    for (int i = 0; i < n; i++) {
        sked_task_rec t = task_of(st, ns, ids[i]);
        sked_err err = {0};
        t.next_run_at = at;
        assert_int_equal(sked_store_task_update(st, &t, 0, &err), 0);
        sked_task_rec_deinit(&t);
    }
}

static void test_claim_basic(void **state)
{
    fixture *f = *state;
    sked_walltime T = new_base();
    char ids[3][SKED_ID_LEN + 1], later[1][SKED_ID_LEN + 1];
    char owner[64];
    new_owner(owner, sizeof owner);
    mk_due(f->st, f->ns, 3, T, "{\"n\":1}", ids);
    mk_due(f->st, f->ns, 1, T + 10 * SEC, NULL, later);
    /* Paused and completed tasks are never claimed, due or not. */
    sked_task_rec paused;
    mk(&paused, f->ns, NULL, NULL, NULL);
    paused.next_run_at = T;
    paused.state = SKED_TASK_PAUSED;
    insert_ok(f->st, &paused);

    tpolicy pol = {0};
    sked_claim c = claim_of(owner, T, T + SEC, 100, &pol);
    claim_ok(f->st, &c);
    assert_int_equal(c.nruns, 3);
    assert_int_equal(c.more, 0);
    assert_int_equal(atomic_load(&pol.calls), 3);
    for (size_t i = 0; i < c.nruns; i++) {
        sked_run_rec *r = &c.runs[i];
        assert_string_equal(c.specs[i], "{\"n\":1}");
        assert_string_equal(r->ns, f->ns);
        assert_string_equal(r->queue, "q-runs");
        assert_int_equal(r->status, SKED_RUN_SCHEDULED);
        assert_int_equal(r->attempt, 1);
        assert_true(r->scheduled_at == T && r->due_at == T);
        assert_string_equal(r->lease_owner, owner);
        assert_true(r->lease_expires_at == T + 30 * SEC);
        assert_string_equal(r->reason, "");
        assert_string_equal(r->worker, "");
        assert_true(r->dispatched_at == SKED_TIME_NONE);
        assert_true(r->finished_at == SKED_TIME_NONE);
        assert_true(r->lag_us == SKED_TIME_NONE);
        assert_int_equal(r->exit_code, SKED_NO_CODE);
        assert_int_equal(r->http_status, 0);
        assert_null(r->error);
        sked_run_rec got = run_of(f->st, f->ns, r->id);
        assert_same_run(r, &got);
        sked_run_rec_deinit(&got);
        if (i > 0)
            assert_true(strcmp(c.runs[i - 1].id, r->id) < 0);
    }
    /* Each due task advanced: next occurrence, one run, same version. */
    for (int i = 0; i < 3; i++) {
        sked_task_rec t = task_of(f->st, f->ns, ids[i]);
        assert_true(t.next_run_at == T + 60 * SEC);
        assert_int_equal(t.run_count, 1);
        assert_int_equal(t.version, 1);
        assert_int_equal(t.state, SKED_TASK_ACTIVE);
        assert_int_equal(count_runs(f->st, runs_of_task(f->ns, ids[i])), 1);
        sked_task_rec_deinit(&t);
    }
    sked_task_rec t = task_of(f->st, f->ns, later[0]);
    assert_true(t.next_run_at == T + 10 * SEC);
    assert_int_equal(t.run_count, 0);
    sked_task_rec_deinit(&t);
    t = task_of(f->st, f->ns, paused.id);
    assert_true(t.next_run_at == T);
    assert_int_equal(t.run_count, 0);
    sked_task_rec_deinit(&t);

    /* The same owner claiming again (a restart under the same id) gets
     * the same runs back, and nothing new is recorded. */
    sked_claim again = claim_of(owner, T + 1, T + SEC, 100, &pol);
    claim_ok(f->st, &again);
    assert_int_equal(again.nruns, 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(again.runs[i].id, c.runs[i].id);
    sked_claim_deinit(&again);
    sked_claim_deinit(&c);
    assert_int_equal(count_runs(f->st, runs_of_task(f->ns, ids[0])), 1);

    /* Another owner sees nothing of them. */
    char other[64];
    new_owner(other, sizeof other);
    sked_claim o = claim_of(other, T + 2, T + SEC, 100, &pol);
    claim_ok(f->st, &o);
    assert_int_equal(o.nruns, 0);
    sked_claim_deinit(&o);
}

static void test_claim_invalid(void **state)
{
    fixture *f = *state;
    sked_err err = {0};
    sked_claim c = claim_of("", 1, 2, 10, NULL);
    assert_int_equal(sked_store_claim_due(f->st, &c, &err), SKED_EINVAL);
    c = claim_of("x", 1, 2, 0, NULL);
    assert_int_equal(sked_store_claim_due(f->st, &c, &err), SKED_EINVAL);
    c = claim_of("x", 1, 2, 10, NULL);
    c.advance = NULL;
    assert_int_equal(sked_store_claim_due(f->st, &c, &err), SKED_EINVAL);
    c = claim_of("x", 1, 2, 10, NULL);
    c.lease_us = 0;
    assert_int_equal(sked_store_claim_due(f->st, &c, &err), SKED_EINVAL);
    assert_int_equal(c.nruns, 0);
    assert_null(c.runs);
}

/* A claim made while the owner dispatches some of its runs leaves those
 * out and fills its limit with the runs after them; a limit reached past
 * the excluded ones says more. */
static void test_claim_exclude(void **state)
{
    fixture *f = *state;
    sked_walltime T = new_base();
    char owner[64];
    new_owner(owner, sizeof owner);
    mk_due(f->st, f->ns, 5, T, NULL, NULL);
    sked_claim c = claim_of(owner, T, T + SEC, 100, NULL);
    claim_ok(f->st, &c);
    assert_int_equal(c.nruns, 5);
    const char *ex[3] = {c.runs[0].id, c.runs[2].id, "no-such-run"};
    sked_claim d = claim_of(owner, T, T + SEC, 2, NULL);
    d.exclude = ex;
    d.nexclude = 3;
    claim_ok(f->st, &d);
    assert_int_equal(d.nruns, 2);
    assert_int_equal(d.more, 1);
    assert_string_equal(d.runs[0].id, c.runs[1].id);
    assert_string_equal(d.runs[1].id, c.runs[3].id);
    sked_claim_deinit(&d);
    d = claim_of(owner, T, T + SEC, 3, NULL);
    d.exclude = ex;
    d.nexclude = 3;
    claim_ok(f->st, &d);
    assert_int_equal(d.nruns, 3);
    assert_int_equal(d.more, 0);
    assert_string_equal(d.runs[2].id, c.runs[4].id);
    for (size_t i = 0; i < d.nruns; i++)
        assert_string_not_equal(d.runs[i].id, c.runs[0].id);
    sked_claim_deinit(&d);
    /* a list said to be there but missing is refused */
    sked_err err = {0};
    d = claim_of(owner, T, T + SEC, 3, NULL);
    d.nexclude = 1;
    assert_int_equal(sked_store_claim_due(f->st, &d, &err), SKED_EINVAL);
    assert_string_equal(err.field, "exclude");
    sked_claim_deinit(&c);
}

/* Occurrences the policy says to dispatch: recorded DISPATCHED with the
 * dispatch lease and handed back in `dispatched` (not in runs) - but only
 * when the claim gives a dispatch lease, and only when the row is new. */
/* One-time tasks (a canonical spec's `"schedule":{"at":`) are claimed up
 * to once_horizon, further than horizon; recurring tasks only up to
 * horizon; one limit counts both, the earliest first.  A run the claim
 * records dispatched has the claim's now as its marked_at. */
static void test_claim_once_ahead(void **state)
{
    fixture *f = *state;
    static const char *every = "{\"schedule\":{\"every\":\"1m\"}}";
    static const char *at = "{\"schedule\":{\"at\":1}}";
    sked_walltime T = new_base();
    char near[1][SKED_ID_LEN + 1], rec[1][SKED_ID_LEN + 1], once[2][SKED_ID_LEN + 1],
        late[1][SKED_ID_LEN + 1], owner[64];
    new_owner(owner, sizeof owner);
    tpolicy pol = {.dispatch = 1};
    mk_due(f->st, f->ns, 1, T + SEC, every, near);
    mk_due(f->st, f->ns, 1, T + 20 * SEC, every, rec);
    mk_due(f->st, f->ns, 2, T + 20 * SEC, at, once);
    mk_due(f->st, f->ns, 1, T + 40 * SEC, at, late);
    sked_claim c = claim_of(owner, T, T + 2 * SEC, 100, &pol);
    c.once_horizon = T + 30 * SEC;
    c.dispatch_lease_us = 60 * SEC;
    claim_ok(f->st, &c);
    assert_int_equal(c.ndispatched, 3);
    assert_int_equal(c.more, 0);
    int seen_once = 0;
    for (size_t i = 0; i < c.ndispatched; i++) {
        sked_run_rec *r = &c.dispatched[i];
        assert_true(r->marked_at == T);
        sked_run_rec got = run_of(f->st, f->ns, r->id);
        assert_true(got.marked_at == T);
        sked_run_rec_deinit(&got);
        if (strcmp(r->task_id, near[0]) == 0) {
            assert_true(r->dispatched_at == T + SEC);
            continue;
        }
        assert_true(strcmp(r->task_id, once[0]) == 0 || strcmp(r->task_id, once[1]) == 0);
        assert_true(r->dispatched_at == T + 20 * SEC); /* goes out when due */
        assert_true(r->lease_expires_at == T + 80 * SEC);
        seen_once++;
    }
    assert_int_equal(seen_once, 2);
    sked_claim_deinit(&c);
    sked_task_rec t = task_of(f->st, f->ns, rec[0]); /* recurring: not yet */
    assert_int_equal(t.run_count, 0);
    assert_true(t.next_run_at == T + 20 * SEC);
    sked_task_rec_deinit(&t);
    t = task_of(f->st, f->ns, late[0]); /* beyond once_horizon */
    assert_int_equal(t.run_count, 0);
    sked_task_rec_deinit(&t);
    t = task_of(f->st, f->ns, once[1]);
    assert_int_equal(t.run_count, 1);
    assert_int_equal(t.state, SKED_TASK_COMPLETED);
    sked_task_rec_deinit(&t);

    /* without once_horizon (or one before horizon) nothing further */
    c = claim_of(owner, T, T + 2 * SEC, 100, &pol);
    c.once_horizon = T;
    c.dispatch_lease_us = 60 * SEC;
    claim_ok(f->st, &c);
    assert_int_equal(c.ndispatched, 0);
    sked_claim_deinit(&c);

    /* the limit: the task due within horizon first, then one-time ones */
    sked_walltime U = new_base();
    char near2[1][SKED_ID_LEN + 1], once2[3][SKED_ID_LEN + 1];
    mk_due(f->st, f->ns, 3, U + 10 * SEC, at, once2);
    mk_due(f->st, f->ns, 1, U + SEC, every, near2);
    c = claim_of(owner, U, U + 2 * SEC, 2, &pol);
    c.once_horizon = U + 30 * SEC;
    c.dispatch_lease_us = 60 * SEC;
    claim_ok(f->st, &c);
    assert_int_equal(c.ndispatched, 2);
    assert_int_equal(c.more, 1);
    assert_true(strcmp(c.dispatched[0].task_id, near2[0]) == 0 ||
                strcmp(c.dispatched[1].task_id, near2[0]) == 0);
    sked_claim_deinit(&c);
    c = claim_of(owner, U, U + 2 * SEC, 100, &pol);
    c.once_horizon = U + 30 * SEC;
    c.dispatch_lease_us = 60 * SEC;
    claim_ok(f->st, &c);
    assert_int_equal(c.ndispatched, 2); /* the other two */
    assert_int_equal(c.more, 0);
    sked_claim_deinit(&c);
}

static void test_claim_dispatch(void **state)
{
    fixture *f = *state;
    enum { N = 3 };
    sked_walltime T = new_base();
    char a_ids[2][SKED_ID_LEN + 1], ids[N][SKED_ID_LEN + 1], owner[64];
    new_owner(owner, sizeof owner);
    tpolicy pol = {.dispatch = 1};

    mk_due(f->st, f->ns, 2, T, NULL, a_ids);
    sked_claim c = claim_of(owner, T, T + SEC, 100, &pol);
    claim_ok(f->st, &c); /* no dispatch lease: scheduled as usual */
    assert_int_equal(c.nruns, 2);
    assert_int_equal(c.ndispatched, 0);
    sked_claim_deinit(&c);

    sked_walltime now = T + 2 * SEC;
    mk_due(f->st, f->ns, N, now, "{\"n\":3}", ids);
    c = claim_of(owner, now, now + SEC, 100, &pol);
    c.dispatch_lease_us = 60 * SEC;
    claim_ok(f->st, &c);
    assert_int_equal(c.nruns, 2); /* the first two, still scheduled */
    assert_int_equal(c.ndispatched, N);
    for (size_t i = 0; i < c.ndispatched; i++) {
        sked_run_rec *r = &c.dispatched[i];
        assert_false(claimed(&c, r->id));
        assert_string_equal(c.dispatched_specs[i], "{\"n\":3}");
        assert_int_equal(r->status, SKED_RUN_DISPATCHED);
        assert_int_equal(r->attempt, 1);
        assert_string_equal(r->lease_owner, owner);
        assert_true(r->lease_expires_at == now + 60 * SEC);
        assert_true(r->dispatched_at == now);
        assert_true(r->scheduled_at == now && r->due_at == now);
        assert_string_equal(r->queue, "q-runs");
        sked_run_rec got = run_of(f->st, f->ns, r->id);
        assert_same_run(r, &got);
        sked_run_rec_deinit(&got);
    }
    sked_claim_deinit(&c);
    for (int i = 0; i < N; i++) {
        sked_task_rec t = task_of(f->st, f->ns, ids[i]);
        assert_int_equal(t.run_count, 1);
        assert_true(t.next_run_at == now + 60 * SEC);
        sked_task_rec_deinit(&t);
    }

    /* Written back to the same instant: the occurrence exists, nothing is
     * handed back to publish a second time. */
    write_back(f->st, f->ns, ids, N, now);
    pol.dispatch = 2;
    c = claim_of(owner, now, now + SEC, 100, &pol);
    c.dispatch_lease_us = 60 * SEC;
    claim_ok(f->st, &c);
    assert_int_equal(c.ndispatched, 0);
    sked_claim_deinit(&c);
    for (int i = 0; i < N; i++)
        assert_int_equal(count_runs(f->st, runs_of_task(f->ns, ids[i])), 1);

    sked_err err = {0};
    c = claim_of(owner, now, now + SEC, 100, &pol);
    c.dispatch_lease_us = -1;
    assert_int_equal(sked_store_claim_due(f->st, &c, &err), SKED_EINVAL);
    assert_string_equal(err.field, "dispatch_lease_us");

    /* One due after the claim's now (the scheduler's premark lead) goes
     * out at its due time: that is its dispatched_at, and its lease runs
     * from there. */
    sked_walltime due = now + 10 * SEC;
    char later[1][SKED_ID_LEN + 1];
    mk_due(f->st, f->ns, 1, due, "{\"n\":4}", later);
    pol.dispatch = 1;
    c = claim_of(owner, due - 700 * SKED_USEC_PER_MSEC, due, 100, &pol);
    c.dispatch_lease_us = 60 * SEC;
    claim_ok(f->st, &c);
    assert_int_equal(c.ndispatched, 1);
    sked_run_rec *r = &c.dispatched[0];
    assert_string_equal(r->task_id, later[0]);
    assert_int_equal(r->status, SKED_RUN_DISPATCHED);
    assert_true(r->dispatched_at == due);
    assert_true(r->lease_expires_at == due + 60 * SEC);
    sked_run_rec got = run_of(f->st, f->ns, r->id);
    assert_same_run(r, &got);
    sked_run_rec_deinit(&got);
    sked_claim_deinit(&c);
}

/* Two owners on the same due tasks: each occurrence is one row, held by
 * one owner; a claim that sees an occurrence already recorded (a task
 * written back to an older next_run_at) records nothing. */
static void test_claim_two_owners(void **state)
{
    fixture *f = *state;
    enum { N = 20 };
    sked_walltime T = new_base();
    char ids[N][SKED_ID_LEN + 1], a[64], b[64];
    new_owner(a, sizeof a);
    new_owner(b, sizeof b);
    mk_due(f->st, f->ns, N, T, NULL, ids);

    sked_claim ca = claim_of(a, T, T + SEC, 5, NULL);
    claim_ok(f->st, &ca);
    assert_int_equal(ca.nruns, 5);
    assert_int_equal(ca.more, 1);
    sked_claim cb = claim_of(b, T, T + SEC, 100, NULL);
    claim_ok(f->st, &cb);
    assert_int_equal(cb.nruns, N - 5);
    assert_int_equal(cb.more, 0);
    for (size_t i = 0; i < cb.nruns; i++)
        assert_false(claimed(&ca, cb.runs[i].id));
    sked_claim_deinit(&cb);
    sked_claim ca2 = claim_of(a, T, T + SEC, 100, NULL);
    claim_ok(f->st, &ca2);
    assert_int_equal(ca2.nruns, 5);
    for (size_t i = 0; i < ca.nruns; i++)
        assert_true(claimed(&ca2, ca.runs[i].id));
    sked_claim_deinit(&ca2);
    sked_claim_deinit(&ca);

    /* Every task back to T, as a racing writer could leave it. */
    write_back(f->st, f->ns, ids, N, T);
    cb = claim_of(b, T, T + SEC, 100, NULL);
    claim_ok(f->st, &cb);
    assert_int_equal(cb.nruns, N - 5); /* b's own, nothing new */
    sked_claim_deinit(&cb);
    for (int i = 0; i < N; i++) {
        assert_int_equal(count_runs(f->st, runs_of_task(f->ns, ids[i])), 1);
        sked_task_rec t = task_of(f->st, f->ns, ids[i]);
        assert_int_equal(t.run_count, 1);
        assert_true(t.next_run_at == T + 60 * SEC);
        sked_task_rec_deinit(&t);
    }
}

typedef struct claimer {
    sked_store *st;
    sked_walltime now;
    char owner[64];
    char (*got)[SKED_ID_LEN + 1];
    size_t n, cap;
    int failed;
    tpolicy *pol;                     /* counts advance calls, or NULL */
} claimer;

/* Claim and dispatch in batches of 50 until the store has no more. */
static void *claim_thread(void *p)
{
    claimer *a = p;
    for (int round = 0; round < 1000; round++) {
        sked_claim c = claim_of(a->owner, a->now, a->now + SEC, 50, a->pol);
        sked_err err = {0};
        if (sked_store_claim_due(a->st, &c, &err) != 0) {
            a->failed++;
            return NULL;
        }
        for (size_t i = 0; i < c.nruns; i++) {
            if (a->n == a->cap) {
                a->cap = a->cap ? 2 * a->cap : 64;
                a->got = realloc(a->got, a->cap * sizeof *a->got);
            }
            memcpy(a->got[a->n++], c.runs[i].id, SKED_ID_LEN + 1);
        }
        /* Dispatch: a run still held by us after this is a failure. */
        sked_run_rec *recs = calloc(c.nruns + 1, sizeof *recs);
        sked_run_change *ch = calloc(c.nruns + 1, sizeof *ch);
        for (size_t i = 0; i < c.nruns; i++) {
            recs[i] = c.runs[i];
            recs[i].status = SKED_RUN_DISPATCHED;
            ch[i] = (sked_run_change){.rec = &recs[i], .attempt = 1,
                                      .from = SKED_RUN_BIT(0)};
        }
        if (c.nruns > 0 &&
            sked_store_run_update(a->st, ch, c.nruns, &err) != 0)
            a->failed++;
        for (size_t i = 0; i < c.nruns; i++)
            if (ch[i].result != 0)
                a->failed++;
        free(recs);
        free(ch);
        int more = c.more;
        sked_claim_deinit(&c);
        if (!more)
            break;
    }
    return NULL;
}

static int cmp_id(const void *x, const void *y)
{
    return strcmp(x, y);
}

/* Four schedulers claim and dispatch N due tasks at once: on f->st, or
 * half of them on `second` (another handle on the same store, as another
 * process would be). */
static void claim_race(fixture *f, sked_store *second)
{
    enum { N = 500, T4 = 4 };
    sked_walltime T = new_base();
    mk_due(f->st, f->ns, N, T, NULL, NULL);
    pthread_t th[T4];
    claimer cl[T4];
    for (int i = 0; i < T4; i++) {
        cl[i] = (claimer){.st = i % 2 && second ? second : f->st, .now = T};
        new_owner(cl[i].owner, sizeof cl[i].owner);
        pthread_create(&th[i], NULL, claim_thread, &cl[i]);
    }
    size_t total = 0;
    for (int i = 0; i < T4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(cl[i].failed, 0);
        total += cl[i].n;
    }
    /* The union is every occurrence, each handed to exactly one owner. */
    char (*all)[SKED_ID_LEN + 1] = calloc(total + 1, sizeof *all);
    size_t k = 0;
    for (int i = 0; i < T4; i++) {
        if (cl[i].n > 0)
            memcpy(all + k, cl[i].got, cl[i].n * sizeof *all);
        k += cl[i].n;
        free(cl[i].got);
    }
    qsort(all, total, sizeof *all, cmp_id);
    for (size_t i = 1; i < total; i++)
        assert_true(strcmp(all[i - 1], all[i]) != 0);
    assert_int_equal(total, N);
    free(all);
    sked_run_filter q = runs_of_task(f->ns, NULL);
    sked_run_page p = runs_where(f->st, q);
    assert_int_equal(p.n, N);
    for (size_t i = 0; i < p.n; i++)
        assert_int_equal(p.recs[i].status, SKED_RUN_DISPATCHED);
    sked_run_page_deinit(&p);
    /* Nothing is left to claim. */
    char late[64];
    new_owner(late, sizeof late);
    sked_claim c = claim_of(late, T, T + SEC, 1000, NULL);
    claim_ok(second ? second : f->st, &c);
    assert_int_equal(c.nruns, 0);
    sked_claim_deinit(&c);
}

static void test_claim_concurrent(void **state)
{
    claim_race(*state, NULL);
}

/* The same race between two handles on one store (on PostgreSQL, two
 * connection pools: schedulers in two processes). */
static void test_claim_two_stores(void **state)
{
    fixture *f = *state;
    sked_store *second = open_store();
    claim_race(f, second);
    sked_store_close(second);
}

/* Overlap: an occurrence due while a run is unfinished is recorded as
 * skipped, with its reason, and counts in run_count. */
static void test_claim_skipped(void **state)
{
    fixture *f = *state;
    sked_walltime T = new_base();
    char ids[1][SKED_ID_LEN + 1], owner[64];
    new_owner(owner, sizeof owner);
    mk_due(f->st, f->ns, 1, T, NULL, ids);
    tpolicy pol = {.overlap = 1};
    sked_claim c = claim_of(owner, T, T + SEC, 10, &pol);
    claim_ok(f->st, &c);
    assert_int_equal(c.nruns, 1);
    char first[SKED_ID_LEN + 1];
    memcpy(first, c.runs[0].id, sizeof first);
    sked_claim_deinit(&c);

    sked_walltime T2 = T + 60 * SEC;
    c = claim_of(owner, T2, T2 + SEC, 10, &pol);
    claim_ok(f->st, &c);
    assert_int_equal(c.nruns, 1); /* the first, still ours */
    assert_string_equal(c.runs[0].id, first);
    sked_claim_deinit(&c);

    sked_run_filter q = runs_of_task(f->ns, ids[0]);
    q.status_mask = SKED_RUN_BIT(SKED_RUN_SKIPPED);
    sked_run_page p = runs_where(f->st, q);
    assert_int_equal(p.n, 1);
    sked_run_rec *s = &p.recs[0];
    assert_string_equal(s->reason, "overlap");
    assert_true(s->scheduled_at == T2);
    assert_true(s->finished_at == T2);
    assert_string_equal(s->lease_owner, "");
    assert_true(s->lease_expires_at == SKED_TIME_NONE);
    sked_run_page_deinit(&p);
    sked_task_rec t = task_of(f->st, f->ns, ids[0]);
    assert_int_equal(t.run_count, 2);
    assert_true(t.next_run_at == T2 + 60 * SEC);
    sked_task_rec_deinit(&t);
}

/* A one-time task completes; a task whose advance fails is left alone. */
static void test_claim_complete_and_fail(void **state)
{
    fixture *f = *state;
    sked_walltime T = new_base();
    char once[1][SKED_ID_LEN + 1], bad[1][SKED_ID_LEN + 1], owner[64];
    new_owner(owner, sizeof owner);
    mk_due(f->st, f->ns, 1, T, "{\"bad\":1}", bad);
    mk_due(f->st, f->ns, 1, T, "{\"schedule\":{\"at\":\"x\"}}", once);
    sked_claim c = claim_of(owner, T, T + SEC, 10, NULL);
    claim_ok(f->st, &c);
    assert_int_equal(c.nruns, 1);
    assert_string_equal(c.runs[0].task_id, once[0]);
    sked_claim_deinit(&c);
    sked_task_rec t = task_of(f->st, f->ns, once[0]);
    assert_int_equal(t.state, SKED_TASK_COMPLETED);
    assert_true(t.next_run_at == SKED_TIME_NONE);
    assert_int_equal(t.run_count, 1);
    sked_task_rec_deinit(&t);
    t = task_of(f->st, f->ns, bad[0]);
    assert_int_equal(t.state, SKED_TASK_ACTIVE);
    assert_true(t.next_run_at == T);
    assert_int_equal(t.run_count, 0);
    assert_int_equal(t.version, 1);
    sked_task_rec_deinit(&t);
    assert_int_equal(count_runs(f->st, runs_of_task(f->ns, bad[0])), 0);
    /* Completed: a later claim does not touch it. */
    tpolicy pol = {0};
    c = claim_of(owner, T + 120 * SEC, T + 121 * SEC, 10, &pol);
    claim_ok(f->st, &c);
    assert_int_equal(atomic_load(&pol.calls), 1); /* only "bad" again */
    sked_claim_deinit(&c);
    assert_int_equal(count_runs(f->st, runs_of_task(f->ns, once[0])), 1);
}

/* A retry: the run back to SCHEDULED with a later due_at and no lease is
 * claimed (by anyone) only once it is due. */
static void test_claim_retry_when_due(void **state)
{
    fixture *f = *state;
    sked_walltime T = new_base();
    char a[64], b[64];
    new_owner(a, sizeof a);
    new_owner(b, sizeof b);
    mk_due(f->st, f->ns, 1, T, NULL, NULL);
    sked_claim c = claim_of(a, T, T + SEC, 10, NULL);
    claim_ok(f->st, &c);
    assert_int_equal(c.nruns, 1);
    dispatch_all(f->st, &c, T);
    sked_run_rec r = c.runs[0];
    r.error = r.output = NULL;
    sked_claim_deinit(&c);

    /* Attempt 1 failed: retry in 30 s, as a new attempt, unleased. */
    r.status = SKED_RUN_SCHEDULED;
    r.attempt = 2;
    r.due_at = T + 30 * SEC;
    r.lease_owner[0] = '\0';
    r.lease_expires_at = SKED_TIME_NONE;
    r.error = "exit status 1";
    assert_int_equal(change1(f->st, &r, 1, SKED_RUN_BIT(SKED_RUN_DISPATCHED)),
                     0);

    c = claim_of(b, T + 10 * SEC, T + 11 * SEC, 10, NULL);
    claim_ok(f->st, &c);
    assert_int_equal(c.nruns, 0);
    sked_claim_deinit(&c);
    c = claim_of(b, T + 29 * SEC, T + 30 * SEC, 10, NULL);
    claim_ok(f->st, &c);
    assert_int_equal(c.nruns, 1);
    assert_string_equal(c.runs[0].id, r.id);
    assert_int_equal(c.runs[0].attempt, 2);
    assert_string_equal(c.runs[0].lease_owner, b);
    assert_true(c.runs[0].lease_expires_at == T + 60 * SEC);
    assert_string_equal(c.runs[0].error, "exit status 1");
    sked_claim_deinit(&c);
}

/* Runs leased to A are B's only once A's lease expired. */
static void test_claim_lease_expiry(void **state)
{
    fixture *f = *state;
    sked_walltime T = new_base();
    char a[64], b[64];
    new_owner(a, sizeof a);
    new_owner(b, sizeof b);
    mk_due(f->st, f->ns, 3, T, NULL, NULL);
    sked_claim c = claim_of(a, T, T + SEC, 10, NULL);
    c.lease_us = 5 * SEC;
    claim_ok(f->st, &c);
    assert_int_equal(c.nruns, 3);
    sked_claim_deinit(&c);

    c = claim_of(b, T + 4 * SEC, T + 5 * SEC, 10, NULL);
    claim_ok(f->st, &c);
    assert_int_equal(c.nruns, 0); /* A's lease holds until T+5 */
    sked_claim_deinit(&c);
    c = claim_of(b, T + 6 * SEC, T + 7 * SEC, 10, NULL);
    claim_ok(f->st, &c);
    assert_int_equal(c.nruns, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(c.runs[i].lease_owner, b);
        /* Leased from now, not from the long-past due time. */
        assert_true(c.runs[i].lease_expires_at == T + 36 * SEC);
    }
    sked_claim_deinit(&c);
    c = claim_of(a, T + 6 * SEC, T + 7 * SEC, 10, NULL);
    claim_ok(f->st, &c);
    assert_int_equal(c.nruns, 0);
    sked_claim_deinit(&c);

    /* An occurrence found late gets a lease from now as well. */
    sked_walltime L = T + 3600 * SEC;
    mk_due(f->st, f->ns, 1, T + 100 * SEC, NULL, NULL);
    c = claim_of(a, L, L + SEC, 10, NULL);
    claim_ok(f->st, &c);
    int found = 0;
    for (size_t i = 0; i < c.nruns; i++)
        if (c.runs[i].scheduled_at == T + 100 * SEC) {
            found++;
            assert_true(c.runs[i].lease_expires_at == L + 30 * SEC);
        }
    assert_int_equal(found, 1);
    sked_claim_deinit(&c);
}

/* ---- run_update, sweep -------------------------------------------------- */

static void test_run_update_fencing(void **state)
{
    fixture *f = *state;
    sked_walltime T = new_base();
    char ids[1][SKED_ID_LEN + 1];
    mk_due(f->st, f->ns, 1, T + 3600 * SEC, NULL, ids);
    sked_run_rec r1, r2;
    mk_run(&r1, f->ns, ids[0], T);
    mk_run(&r2, f->ns, ids[0], T + SEC);
    run_insert_ok(f->st, &r1);
    run_insert_ok(f->st, &r2);

    /* Every column written and read back. */
    sked_run_rec d = r1;
    d.status = SKED_RUN_RUNNING;
    d.due_at = T + 5;
    snprintf(d.worker, sizeof d.worker, "host-a/3121");
    snprintf(d.lease_owner, sizeof d.lease_owner, "host-a/3121");
    d.lease_expires_at = T + 90 * SEC;
    d.dispatched_at = T + 1;
    d.started_at = T + 2;
    d.lag_us = 2;
    d.exit_code = 0;
    d.http_status = 204;
    d.error = "none yet";
    d.output = "hello\n";
    snprintf(d.reason, sizeof d.reason, "misfire");
    assert_int_equal(change1(f->st, &d, 1, SKED_RUN_BIT(SKED_RUN_SCHEDULED)),
                     0);
    sked_run_rec got = run_of(f->st, f->ns, r1.id);
    assert_same_run(&d, &got);
    sked_run_rec_deinit(&got);

    /* Wrong status, wrong attempt: fenced, row unchanged. */
    sked_run_rec late = d;
    late.status = SKED_RUN_SUCCEEDED;
    late.error = NULL;
    assert_int_equal(change1(f->st, &late, 1, SKED_RUN_BIT(SKED_RUN_SCHEDULED)),
                     SKED_EPRECOND);
    assert_int_equal(change1(f->st, &late, 2, SKED_RUN_BIT(SKED_RUN_RUNNING)),
                     SKED_EPRECOND);
    got = run_of(f->st, f->ns, r1.id);
    assert_same_run(&d, &got);
    sked_run_rec_deinit(&got);

    /* Absent values: NULLs both ways; an owner-less lease is no lease. */
    sked_run_rec z = d;
    z.status = SKED_RUN_FAILED;
    z.worker[0] = z.reason[0] = z.lease_owner[0] = '\0';
    z.lease_expires_at = T + 99;
    z.exit_code = SKED_NO_CODE;
    z.http_status = 0;
    z.lag_us = SKED_TIME_NONE;
    z.finished_at = T + 10;
    z.error = z.output = NULL;
    assert_int_equal(change1(f->st, &z, 1, SKED_RUN_UNFINISHED), 0);
    got = run_of(f->st, f->ns, r1.id);
    z.lease_expires_at = SKED_TIME_NONE;
    assert_same_run(&z, &got);
    sked_run_rec_deinit(&got);

    /* A batch with mixed results. */
    sked_run_rec ok2 = r2, ghost = r2, fin = z;
    ok2.status = SKED_RUN_DISPATCHED;
    ok2.dispatched_at = T + 7;
    new_id(ghost.id);
    fin.status = SKED_RUN_SUCCEEDED;
    sked_run_change ch[3] = {
        {.rec = &ok2, .attempt = 1, .from = SKED_RUN_BIT(SKED_RUN_SCHEDULED)},
        {.rec = &ghost, .attempt = 1, .from = SKED_RUN_UNFINISHED},
        {.rec = &fin, .attempt = 1, .from = SKED_RUN_UNFINISHED},
    };
    sked_err err = {0};
    assert_int_equal(sked_store_run_update(f->st, ch, 3, &err), 0);
    assert_int_equal(ch[0].result, 0);
    assert_int_equal(ch[1].result, SKED_ENOENT);
    assert_int_equal(ch[2].result, SKED_EPRECOND);
    got = run_of(f->st, f->ns, r2.id);
    assert_same_run(&ok2, &got);
    sked_run_rec_deinit(&got);
    got = run_of(f->st, f->ns, r1.id);
    assert_int_equal(got.status, SKED_RUN_FAILED);
    sked_run_rec_deinit(&got);

    /* A malformed change fails the whole call; nothing applied. */
    sked_run_rec badst = ok2;
    badst.status = (sked_run_status)9;
    sked_run_rec again = ok2;
    again.status = SKED_RUN_RUNNING;
    sked_run_change bad[2] = {
        {.rec = &again, .attempt = 1, .from = SKED_RUN_UNFINISHED},
        {.rec = &badst, .attempt = 1, .from = SKED_RUN_UNFINISHED},
    };
    assert_int_equal(sked_store_run_update(f->st, bad, 2, &err), SKED_EINVAL);
    got = run_of(f->st, f->ns, r2.id);
    assert_int_equal(got.status, SKED_RUN_DISPATCHED);
    sked_run_rec_deinit(&got);
}

static void test_sweep_expired(void **state)
{
    fixture *f = *state;
    sked_walltime T = new_base();
    char ids[1][SKED_ID_LEN + 1];
    mk_due(f->st, f->ns, 1, T + 3600 * SEC, "{\"sweep\":1}", ids);
    /* dispatched and running, expired; running, not expired; scheduled
     * and expired (a claim's business, not a sweep's); finished. */
    static const struct {
        sked_run_status st;
        int64_t lease_s;
    } rows[] = {
        {SKED_RUN_RUNNING, 2},   {SKED_RUN_DISPATCHED, 1},
        {SKED_RUN_RUNNING, 100}, {SKED_RUN_SCHEDULED, 1},
        {SKED_RUN_SUCCEEDED, 1},
    };
    char rid[5][SKED_ID_LEN + 1];
    for (int i = 0; i < 5; i++) {
        sked_run_rec r;
        mk_run(&r, f->ns, ids[0], T + i * SEC);
        r.status = rows[i].st;
        snprintf(r.lease_owner, sizeof r.lease_owner, "w");
        r.lease_expires_at = T + rows[i].lease_s * SEC;
        run_insert_ok(f->st, &r);
        memcpy(rid[i], r.id, sizeof rid[i]);
    }
    sked_claim c = {0};
    sked_err err = {0};
    assert_int_equal(sked_store_sweep_expired(f->st, T + 50 * SEC, 10, &c,
                                              &err),
                     0);
    assert_int_equal(c.nruns, 2);
    assert_int_equal(c.more, 0);
    assert_string_equal(c.runs[0].id, rid[1]); /* oldest lease first */
    assert_string_equal(c.runs[1].id, rid[0]);
    assert_string_equal(c.specs[0], "{\"sweep\":1}");
    sked_claim_deinit(&c);
    assert_int_equal(sked_store_sweep_expired(f->st, T + 50 * SEC, 1, &c,
                                              &err),
                     0);
    assert_int_equal(c.nruns, 1);
    assert_int_equal(c.more, 1);
    sked_claim_deinit(&c);
    /* Expiry is strict: a lease ending now is still held. */
    assert_int_equal(sked_store_sweep_expired(f->st, T + SEC, 10, &c, &err),
                     0);
    assert_int_equal(c.nruns, 0);
    sked_claim_deinit(&c);
    /* Once the task is gone its open runs are canceled: no sweep. */
    assert_int_equal(sked_store_task_delete(f->st, f->ns, ids[0], &err), 0);
    assert_int_equal(sked_store_sweep_expired(f->st, T + 500 * SEC, 10, &c,
                                              &err),
                     0);
    assert_int_equal(c.nruns, 0);
    sked_claim_deinit(&c);
}

/* ---- run_insert, get, list ---------------------------------------------- */

static void test_run_insert(void **state)
{
    fixture *f = *state;
    sked_walltime T = new_base();
    char ids[1][SKED_ID_LEN + 1], owner[64];
    new_owner(owner, sizeof owner);
    mk_due(f->st, f->ns, 1, T + 3600 * SEC, "{\"trig\":1}", ids);
    sked_run_rec r, got;
    mk_run(&r, f->ns, ids[0], T);
    run_insert_ok(f->st, &r);
    got = run_of(f->st, f->ns, r.id);
    assert_same_run(&r, &got);
    sked_run_rec_deinit(&got);
    sked_task_rec t = task_of(f->st, f->ns, ids[0]);
    assert_int_equal(t.run_count, 1);
    assert_int_equal(t.version, 1);
    sked_task_rec_deinit(&t);

    sked_err err = {0};
    sked_run_rec dup;
    mk_run(&dup, f->ns, ids[0], T);
    assert_int_equal(sked_store_run_insert(f->st, &dup, &err), SKED_ECONFLICT);
    assert_string_equal(err.field, "scheduled_at");
    assert_int_equal(sked_store_run_get(f->st, f->ns, dup.id, &got, &err),
                     SKED_ENOENT);
    sked_run_rec ghost;
    mk_run(&ghost, f->ns, "no-such-task", T);
    assert_int_equal(sked_store_run_insert(f->st, &ghost, &err), SKED_ENOENT);
    mk_run(&ghost, f->ns2, ids[0], T + 1); /* another namespace's task */
    assert_int_equal(sked_store_run_insert(f->st, &ghost, &err), SKED_ENOENT);
    assert_int_equal(sked_store_run_get(f->st, f->ns2, r.id, &got, &err),
                     SKED_ENOENT);
    t = task_of(f->st, f->ns, ids[0]);
    assert_int_equal(t.run_count, 1);
    sked_task_rec_deinit(&t);

    /* The trigger is claimed by the next claim, with its spec. */
    sked_claim c = claim_of(owner, T, T + SEC, 10, NULL);
    claim_ok(f->st, &c);
    assert_int_equal(c.nruns, 1);
    assert_string_equal(c.runs[0].id, r.id);
    assert_string_equal(c.specs[0], "{\"trig\":1}");
    sked_claim_deinit(&c);
}

static void test_run_list_filters(void **state)
{
    fixture *f = *state;
    sked_walltime T = new_base();
    char ids[2][SKED_ID_LEN + 1];
    mk_due(f->st, f->ns, 2, T + 3600 * SEC, NULL, ids);
    mk_due(f->st, f->ns2, 1, T + 3600 * SEC, NULL, NULL);
    /* 30 runs: task i%2, status i%8, scheduled at T + i s. */
    char rid[30][SKED_ID_LEN + 1];
    for (int i = 0; i < 30; i++) {
        sked_run_rec r;
        mk_run(&r, f->ns, ids[i % 2], T + i * SEC);
        r.status = (sked_run_status)(i % 8);
        run_insert_ok(f->st, &r);
        memcpy(rid[i], r.id, sizeof rid[i]);
    }
    sked_run_filter q = runs_of_task(f->ns, NULL);
    sked_run_page p = runs_where(f->st, q);
    assert_int_equal(p.n, 30);
    for (size_t i = 0; i < p.n; i++) /* newest first */
        assert_string_equal(p.recs[i].id, rid[29 - i]);
    sked_run_page_deinit(&p);
    assert_int_equal(count_runs(f->st, runs_of_task(f->ns2, NULL)), 0);

    q = runs_of_task(f->ns, ids[1]);
    assert_int_equal(count_runs(f->st, q), 15);
    q.status_mask =
        SKED_RUN_BIT(SKED_RUN_FAILED) | SKED_RUN_BIT(SKED_RUN_RUNNING);
    /* Task 1 has the odd i, and i % 8 in {2, 4} needs an even i. */
    assert_int_equal(count_runs(f->st, q), 0);
    q.task_id = ids[0];
    assert_int_equal(count_runs(f->st, q), 8); /* i in 2,4,10,12,18,20,26,28 */
    q = runs_of_task(f->ns, NULL);
    q.status_mask = SKED_RUN_UNFINISHED;
    assert_int_equal(count_runs(f->st, q), 12); /* i%8 in 0..2 */
    /* since inclusive, until exclusive. */
    q = runs_of_task(f->ns, NULL);
    q.since = T + 10 * SEC;
    q.until = T + 20 * SEC;
    p = runs_where(f->st, q);
    assert_int_equal(p.n, 10);
    assert_string_equal(p.recs[0].id, rid[19]);
    assert_string_equal(p.recs[9].id, rid[10]);
    sked_run_page_deinit(&p);
    q.until = SKED_TIME_NONE;
    assert_int_equal(count_runs(f->st, q), 20);
    q.since = SKED_TIME_NONE;
    q.until = T + 5 * SEC;
    assert_int_equal(count_runs(f->st, q), 5);
    q.task_id = ids[0];
    q.status_mask = SKED_RUN_BIT(SKED_RUN_SCHEDULED) |
                    SKED_RUN_BIT(SKED_RUN_RUNNING);
    assert_int_equal(count_runs(f->st, q), 2); /* i = 0, 2 */

    /* run_get: namespace-scoped. */
    sked_run_rec got;
    sked_err err = {0};
    assert_int_equal(sked_store_run_get(f->st, f->ns, rid[3], &got, &err), 0);
    assert_int_equal(got.status, 3);
    sked_run_rec_deinit(&got);
    assert_int_equal(sked_store_run_get(f->st, f->ns2, rid[3], &got, &err),
                     SKED_ENOENT);
    assert_int_equal(sked_store_run_get(f->st, f->ns, "nope", &got, &err),
                     SKED_ENOENT);
    /* Without a namespace: any (the scheduler knows only the id). */
    assert_int_equal(sked_store_run_get(f->st, NULL, rid[3], &got, &err), 0);
    assert_string_equal(got.ns, f->ns);
    sked_run_rec_deinit(&got);
    assert_int_equal(sked_store_run_get(f->st, NULL, "nope", &got, &err),
                     SKED_ENOENT);
    /* Bad listings. */
    q = runs_of_task(f->ns, NULL);
    q.limit = 0;
    assert_int_equal(sked_store_run_list(f->st, &q, &p, &err), SKED_EINVAL);
    q.limit = 1001;
    assert_int_equal(sked_store_run_list(f->st, &q, &p, &err), SKED_EINVAL);
    q = runs_of_task(NULL, NULL);
    assert_int_equal(sked_store_run_list(f->st, &q, &p, &err), SKED_EINVAL);
}

/* Newest first, page by page, while new runs keep arriving: every run
 * that existed at the start is seen exactly once, in id order. */
static void test_run_list_pagination(void **state)
{
    fixture *f = *state;
    enum { N = 100 };
    sked_walltime T = new_base();
    char ids[1][SKED_ID_LEN + 1];
    mk_due(f->st, f->ns, 1, T + 3600 * SEC, NULL, ids);
    static char rid[N][SKED_ID_LEN + 1];
    for (int i = 0; i < N; i++) {
        sked_run_rec r;
        mk_run(&r, f->ns, ids[0], T + i * SEC);
        run_insert_ok(f->st, &r);
        memcpy(rid[i], r.id, sizeof rid[i]);
    }
    int seen[N] = {0};
    char before[SKED_ID_LEN + 1] = "";
    int extra = 0, pages = 0;
    for (;;) {
        sked_run_filter q = runs_of_task(f->ns, NULL);
        q.limit = 7;
        q.before_id = before[0] ? before : NULL;
        sked_run_page p;
        sked_err err = {0};
        assert_int_equal(sked_store_run_list(f->st, &q, &p, &err), 0);
        pages++;
        for (size_t i = 0; i < p.n; i++) {
            if (before[0])
                assert_true(strcmp(p.recs[i].id, before) < 0);
            int k = 0;
            while (k < N && strcmp(rid[k], p.recs[i].id) != 0)
                k++;
            assert_true(k < N);
            seen[k]++;
            memcpy(before, p.recs[i].id, sizeof before);
        }
        int more = p.more;
        sked_run_page_deinit(&p);
        /* A newer run arrives between pages. */
        sked_run_rec r;
        mk_run(&r, f->ns, ids[0], T + (N + extra++) * SEC);
        run_insert_ok(f->st, &r);
        if (!more)
            break;
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], 1);
    assert_int_equal(pages, (N + 6) / 7);
}

/* ---- retention, task delete, workers ------------------------------------ */

/* Runs of task_id: n finished at F + i s (scheduled T + i s), then u
 * unfinished after them. */
static void mk_history(sked_store *st, const char *ns, const char *task_id,
                       sked_walltime T, sked_walltime F, int n, int u)
{
    for (int i = 0; i < n + u; i++) {
        sked_run_rec r;
        mk_run(&r, ns, task_id, T + i * SEC);
        if (i < n) {
            r.status = SKED_RUN_SUCCEEDED;
            r.finished_at = F + i * SEC;
        } else {
            r.status = SKED_RUN_RUNNING;
        }
        run_insert_ok(st, &r);
    }
}

static void prune_ok(sked_store *st, sked_walltime older, int keep, int limit,
                     int64_t *deleted)
{
    sked_err err = {0};
    int rc = sked_store_run_prune(st, older, keep, limit, deleted, &err);
    if (rc != 0)
        fail_msg("prune: %s", err.msg);
}

/* A whole pass of retention: a backend may walk the table a slice per
 * call, so call it until a pass must have covered this suite's runs. */
static void prune_pass(sked_store *st, sked_walltime older, int keep)
{
    for (int i = 0; i < 20; i++) {
        int64_t deleted;
        prune_ok(st, older, keep, 100000, &deleted);
    }
}

/* The oldest scheduled_at among runs of a task. */
static sked_walltime oldest(sked_store *st, const char *ns, const char *t)
{
    sked_run_page p = runs_where(st, runs_of_task(ns, t));
    sked_walltime m = INT64_MAX;
    for (size_t i = 0; i < p.n; i++)
        if (p.recs[i].scheduled_at < m)
            m = p.recs[i].scheduled_at;
    sked_run_page_deinit(&p);
    return m;
}

static void test_run_prune(void **state)
{
    fixture *f = *state;
    sked_walltime T = new_base();
    char ids[2][SKED_ID_LEN + 1];
    mk_due(f->st, f->ns, 2, T + 3600 * SEC, NULL, ids);
    mk_history(f->st, f->ns, ids[0], T, T, 10, 2);
    mk_history(f->st, f->ns, ids[1], T, T + 100 * SEC, 3, 0);
    int64_t deleted = -1;

    /* Nothing to do without a rule. */
    prune_ok(f->st, SKED_TIME_NONE, 0, 100, &deleted);
    assert_int_equal(deleted, 0);

    /* By age: task 0's runs finished before T+4s (4 of them). */
    prune_pass(f->st, T + 4 * SEC, 0);
    assert_int_equal(count_runs(f->st, runs_of_task(f->ns, ids[0])), 8);
    assert_true(oldest(f->st, f->ns, ids[0]) == T + 4 * SEC);
    assert_int_equal(count_runs(f->st, runs_of_task(f->ns, ids[1])), 3);

    /* By count: the newest 4 finished stay, and every unfinished one. */
    prune_pass(f->st, SKED_TIME_NONE, 4);
    assert_int_equal(count_runs(f->st, runs_of_task(f->ns, ids[0])), 6);
    assert_true(oldest(f->st, f->ns, ids[0]) == T + 6 * SEC);
    sked_run_filter q = runs_of_task(f->ns, ids[0]);
    q.status_mask = SKED_RUN_UNFINISHED;
    assert_int_equal(count_runs(f->st, q), 2);
    assert_int_equal(count_runs(f->st, runs_of_task(f->ns, ids[1])), 3);

    /* At most limit per call. */
    mk_history(f->st, f->ns, ids[1], T + 50 * SEC, T + 10, 5, 0);
    prune_ok(f->st, T + 200 * SEC, 0, 2, &deleted);
    assert_int_equal(deleted, 2);
    for (int i = 0; i < 10 && deleted > 0; i++)
        prune_ok(f->st, T + 200 * SEC, 0, 2, &deleted);
    assert_int_equal(count_runs(f->st, runs_of_task(f->ns, ids[1])), 0);
    assert_int_equal(count_runs(f->st, runs_of_task(f->ns, ids[0])), 2);
}

static void test_task_delete_cancels_runs(void **state)
{
    fixture *f = *state;
    sked_walltime T = new_base();
    char ids[2][SKED_ID_LEN + 1];
    mk_due(f->st, f->ns, 2, T + 3600 * SEC, NULL, ids);
    static const sked_run_status sts[] = {
        SKED_RUN_SCHEDULED, SKED_RUN_DISPATCHED, SKED_RUN_RUNNING,
        SKED_RUN_SUCCEEDED, SKED_RUN_SKIPPED,
    };
    sked_run_rec runs[5], other;
    for (int i = 0; i < 5; i++) {
        mk_run(&runs[i], f->ns, ids[0], T + i * SEC);
        runs[i].status = sts[i];
        if (i >= 3)
            runs[i].finished_at = T + 100;
        run_insert_ok(f->st, &runs[i]);
    }
    mk_run(&other, f->ns, ids[1], T);
    run_insert_ok(f->st, &other);

    sked_walltime before = sked_clock_wall_now();
    sked_err err = {0};
    assert_int_equal(sked_store_task_delete(f->st, f->ns, ids[0], &err), 0);
    sked_walltime after = sked_clock_wall_now();
    for (int i = 0; i < 5; i++) {
        sked_run_rec got = run_of(f->st, f->ns, runs[i].id);
        if (i < 3) {
            assert_int_equal(got.status, SKED_RUN_CANCELED);
            assert_string_equal(got.error, "task deleted");
            assert_true(got.finished_at >= before && got.finished_at <= after);
        } else {
            assert_same_run(&runs[i], &got);
        }
        sked_run_rec_deinit(&got);
    }
    sked_run_rec got = run_of(f->st, f->ns, other.id);
    assert_int_equal(got.status, SKED_RUN_SCHEDULED);
    sked_run_rec_deinit(&got);
    /* History stays listable; the canceled scheduled run is not claimed. */
    assert_int_equal(count_runs(f->st, runs_of_task(f->ns, ids[0])), 5);
    char owner[64];
    new_owner(owner, sizeof owner);
    sked_claim c = claim_of(owner, T + 10 * SEC, T + 11 * SEC, 10, NULL);
    claim_ok(f->st, &c);
    assert_int_equal(c.nruns, 1);
    assert_string_equal(c.runs[0].id, other.id);
    sked_claim_deinit(&c);
    /* Deleting a missing task changes nothing. */
    assert_int_equal(sked_store_task_delete(f->st, f->ns, ids[0], &err),
                     SKED_ENOENT);
}

static const sked_worker_rec *find_worker(const sked_worker_rec *v, size_t n,
                                          const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].id, id) == 0)
            return &v[i];
    return NULL;
}

static void free_workers(sked_worker_rec *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].queues);
    free(v);
}

static void test_workers(void **state)
{
    fixture *f = *state;
    sked_walltime T = new_base();
    sked_worker_rec w1 = {0}, w2 = {0};
    snprintf(w1.id, sizeof w1.id, "%s/w1", f->ns);
    snprintf(w2.id, sizeof w2.id, "%s/w2", f->ns);
    snprintf(w1.host, sizeof w1.host, "host-a");
    snprintf(w2.host, sizeof w2.host, "host-b");
    snprintf(w1.version, sizeof w1.version, "0.2.0");
    snprintf(w2.version, sizeof w2.version, "0.2.0");
    w1.queues = "[\"default\"]";
    w2.queues = NULL;
    w1.slots = 8;
    w2.slots = 2;
    w1.last_heartbeat = T;
    w2.last_heartbeat = T + 10 * SEC;
    sked_err err = {0};
    assert_int_equal(sked_store_worker_upsert(f->st, &w1, &err), 0);
    assert_int_equal(sked_store_worker_upsert(f->st, &w2, &err), 0);
    w1.busy = 3;
    w1.last_heartbeat = T + 20 * SEC;
    w1.queues = "[\"default\",\"bulk\"]";
    assert_int_equal(sked_store_worker_upsert(f->st, &w1, &err), 0);

    sked_worker_rec *v;
    size_t n;
    assert_int_equal(sked_store_worker_list(f->st, T + 5 * SEC, &v, &n, &err),
                     0);
    const sked_worker_rec *g1 = find_worker(v, n, w1.id);
    const sked_worker_rec *g2 = find_worker(v, n, w2.id);
    assert_non_null(g1);
    assert_non_null(g2);
    assert_string_equal(g1->host, "host-a");
    assert_string_equal(g1->queues, "[\"default\",\"bulk\"]");
    assert_int_equal(g1->slots, 8);
    assert_int_equal(g1->busy, 3);
    assert_true(g1->last_heartbeat == T + 20 * SEC);
    assert_string_equal(g1->version, "0.2.0");
    assert_string_equal(g2->queues, "[]");
    free_workers(v, n);
    /* Strictly after since. */
    assert_int_equal(sked_store_worker_list(f->st, T + 10 * SEC, &v, &n, &err),
                     0);
    assert_non_null(find_worker(v, n, w1.id));
    assert_null(find_worker(v, n, w2.id));
    free_workers(v, n);
    sked_worker_rec bad = {0};
    assert_int_equal(sked_store_worker_upsert(f->st, &bad, &err), SKED_EINVAL);
}

/* The measurement behind the scheduler's 10,000-runs-in-a-second goal:
 * 10,000 due tasks claimed in batches of 1000, each batch dispatched with
 * one run_update.  Prints the times; the bound only catches disasters. */
static double ms_since(struct timespec t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
           (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
}

static void test_claim_throughput(void **state)
{
    fixture *f = *state;
    enum { N = 10000, BATCH = 1000 };
    sked_walltime T = new_base();
    for (int i = 0; i < N / BATCH; i++)
        mk_due(f->st, f->ns, BATCH, T, NULL, NULL);
    char owner[64];
    new_owner(owner, sizeof owner);
    double claim_ms = 0, update_ms = 0;
    size_t total = 0;
    int claims = 0;
    for (;;) {
        sked_claim c = claim_of(owner, T, T + SEC, BATCH, NULL);
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        claim_ok(f->st, &c);
        claim_ms += ms_since(t0);
        claims++;
        total += c.nruns;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        dispatch_all(f->st, &c, T);
        update_ms += ms_since(t0);
        int more = c.more;
        sked_claim_deinit(&c);
        if (!more)
            break;
        assert_true(claims < 100);
    }
    assert_int_equal(total, N);
    print_message("claim of %d due tasks in batches of %d: %.1f ms "
                  "(%d claims); run_update of %zu changes: %.1f ms\n",
                  N, BATCH, claim_ms, claims, total, update_ms);
    assert_true(claim_ms < 20000 && update_ms < 20000);
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

/* Claims whose group commit is aborted by a poisoned neighbour run again
 * from scratch: still one row per occurrence, every task claimed once,
 * and what each claim returned is exactly what it holds. */
static void test_sqlite_claim_group_abort(void **state)
{
    fixture *f = *state;
    if (!is_sqlite())
        skip();
    enum { N = 300 };
    sked_walltime T = new_base();
    mk_due(f->st, f->ns, N, T, NULL, NULL);
    poison_arg pa = {.st = f->st, .n = 100};
    pthread_t th;
    pthread_create(&th, NULL, poison_thread, &pa);
    pthread_t ct[2];
    claimer cl[2];
    tpolicy pol = {0};
    for (int i = 0; i < 2; i++) {
        cl[i] = (claimer){.st = f->st, .now = T, .pol = &pol};
        new_owner(cl[i].owner, sizeof cl[i].owner);
        pthread_create(&ct[i], NULL, claim_thread, &cl[i]);
    }
    size_t total = 0;
    for (int i = 0; i < 2; i++) {
        pthread_join(ct[i], NULL);
        assert_int_equal(cl[i].failed, 0);
        total += cl[i].n;
        free(cl[i].got);
    }
    pthread_join(th, NULL);
    assert_int_equal(pa.failures, pa.n);
    assert_int_equal(total, N);
    /* Each retried claim asked the policy again. */
    assert_true(atomic_load(&pol.calls) >= N);
    if (getenv("SKED_TEST_VERBOSE"))
        print_message("advance calls: %d for %d tasks\n",
                      atomic_load(&pol.calls), N);
    sked_run_page p = runs_where(f->st, runs_of_task(f->ns, NULL));
    assert_int_equal(p.n, N);
    for (size_t i = 0; i < p.n; i++)
        assert_int_equal(p.recs[i].status, SKED_RUN_DISPATCHED);
    sked_run_page_deinit(&p);
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

/* Poll the SQLite store's sync counters every 10 ms, for up to max_ms,
 * until done(now, before) holds; the last reading is in *now. */
static void sync_wait(sked_store *st, const sked_sqlite_sync_stats *before,
                      int (*done)(const sked_sqlite_sync_stats *, const sked_sqlite_sync_stats *),
                      int max_ms, sked_sqlite_sync_stats *now)
{
    for (int ms = 0;; ms += 10) {
        usleep(10000);
        sked_sqlite_store_sync_stats(st, now);
        if (done(now, before) || ms >= max_ms)
            return;
    }
}

static int all_synced(const sked_sqlite_sync_stats *now, const sked_sqlite_sync_stats *before)
{
    return now->unsynced == 0 && now->syncs > before->syncs;
}

static int checkpointed(const sked_sqlite_sync_stats *now, const sked_sqlite_sync_stats *before)
{
    return now->checkpoints > before->checkpoints;
}

/* A lazy commit (a heartbeat) is on disk within moments without anyone
 * waiting for it: the sync thread fsyncs the WAL; a durable commit after
 * it covers it at once. */
static void test_sqlite_lazy_synced(void **state)
{
    fixture *f = *state;
    if (!is_sqlite())
        skip();
    sked_sqlite_sync_stats s0, s1;
    sked_sqlite_store_sync_stats(f->st, &s0);
    sked_worker_rec w = {.slots = 1, .last_heartbeat = new_base()};
    snprintf(w.id, sizeof w.id, "%s/lazy", f->ns);
    sked_err err = {0};
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    assert_int_equal(sked_store_worker_upsert(f->st, &w, &err), 0);
    sync_wait(f->st, &s0, all_synced, 5000, &s1);
    assert_int_equal(s1.unsynced, 0);
    assert_true(s1.syncs > s0.syncs);
    /* and the thread slept until then (it once spun on a timed wait) */
    getrusage(RUSAGE_SELF, &ru1);
    int64_t cpu_us = (ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec -
                      ru0.ru_stime.tv_sec) * 1000000LL +
                     (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec -
                      ru0.ru_stime.tv_usec);
    assert_true(cpu_us < 25000);

    /* a durable commit right after a lazy one leaves nothing to sync */
    w.last_heartbeat += SEC;
    assert_int_equal(sked_store_worker_upsert(f->st, &w, &err), 0);
    mk_due(f->st, f->ns, 1, new_base(), NULL, NULL);
    sked_sqlite_store_sync_stats(f->st, &s1);
    assert_int_equal(s1.unsynced, 0);

    /* but one that wrote nothing (a refused revoke) synced nothing: the
     * lazy commit before it is still synced by the thread */
    sked_sqlite_store_sync_stats(f->st, &s0);
    w.last_heartbeat += SEC;
    assert_int_equal(sked_store_worker_upsert(f->st, &w, &err), 0);
    assert_int_equal(sked_store_token_revoke(f->st, f->ns, "no-such-token", new_base(), &err),
                     SKED_ENOENT);
    sync_wait(f->st, &s0, all_synced, 5000, &s1);
    assert_int_equal(s1.unsynced, 0);
    assert_true(s1.syncs > s0.syncs);
}

/* The writer does not checkpoint (its automatic checkpoints are off, and
 * the WAL stays far below the length that makes it do one): the sync
 * thread does. */
static void test_sqlite_checkpointed(void **state)
{
    fixture *f = *state;
    if (!is_sqlite())
        skip();
    sked_sqlite_sync_stats s0, s1;
    sked_sqlite_store_sync_stats(f->st, &s0);
    /* each heartbeat is a commit of a page or more: over 1,000 frames */
    sked_worker_rec w = {.slots = 1, .last_heartbeat = new_base()};
    sked_err err = {0};
    for (int i = 0; i < 1500; i++) {
        snprintf(w.id, sizeof w.id, "%s/ckpt-%d", f->ns, i % 50);
        w.last_heartbeat += SEC;
        assert_int_equal(sked_store_worker_upsert(f->st, &w, &err), 0);
    }
    sync_wait(f->st, &s0, checkpointed, 10000, &s1);
    assert_true(s1.checkpoints > s0.checkpoints);
    assert_int_equal(s1.writer_checkpoints, s0.writer_checkpoints);
}

/* ---- PostgreSQL only ---------------------------------------------------- */

static int is_pg(void) { return strncmp(url, "postgres", 8) == 0; }

/* url with one more query parameter ("key=value", already escaped). */
static void url_plus(char *out, size_t cap, const char *param)
{
    snprintf(out, cap, "%s%s%s", url, strchr(url, '?') ? "&" : "?", param);
}

static void no_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* A direct libpq connection to the suite's database, for what the store
 * interface does not show (schemas, backends, notifications). */
static PGconn *admin_conn(void)
{
    PGconn *db = PQconnectdb(url);
    if (PQstatus(db) != CONNECTION_OK)
        fail_msg("connect %s: %s", url, PQerrorMessage(db));
    PQsetNoticeProcessor(db, no_notice, NULL);
    return db;
}

static void admin_exec(PGconn *db, const char *sql)
{
    PGresult *r = PQexec(db, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(db));
    PQclear(r);
}

/* The first column of the first row of sql, as a number. */
static long admin_long(PGconn *db, const char *sql)
{
    PGresult *r = PQexec(db, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1)
        fail_msg("%s: %s", sql, PQerrorMessage(db));
    long v = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

/* Not PostgreSQL-only: a URL libpq cannot parse, and a server that is not
 * there, fail cleanly whatever the suite runs on. */
static void test_open_pg_errors(void **state)
{
    (void)state;
    sked_store *st = NULL;
    sked_err err = {0};
    assert_int_equal(sked_store_open("postgres://[::1", &st, &err),
                     SKED_EINVAL);
    assert_null(st);
    assert_int_equal(sked_store_open("postgresql://127.0.0.1:1/sked"
                                     "?connect_timeout=2",
                                     &st, &err),
                     SKED_EUNAVAIL);
    assert_null(st);
    assert_non_null(strstr(err.msg, "connect"));
}

typedef struct opener {
    const char *url;
    int rc;
    sked_err err;
} opener;

static void *open_thread(void *p)
{
    opener *o = p;
    sked_store *st = NULL;
    o->rc = sked_store_open(o->url, &st, &o->err);
    sked_store_close(st);
    return NULL;
}

/* Eight processes starting at once on an empty schema: each migration is
 * applied exactly once (pg_advisory_xact_lock), everyone opens.  Then a
 * schema newer than this sked is refused. */
static void test_pg_migrate_concurrent(void **state)
{
    (void)state;
    if (!is_pg())
        skip();
    char schema[64], sql[256], param[128], u[4400];
    snprintf(schema, sizeof schema, "sked_mig_%08x_%u", salt,
             (unsigned)getpid());
    PGconn *db = admin_conn();
    snprintf(sql, sizeof sql, "CREATE SCHEMA %s", schema);
    admin_exec(db, sql);
    snprintf(param, sizeof param, "options=-csearch_path%%3D%s", schema);
    url_plus(u, sizeof u, param);
    enum { T = 8 };
    pthread_t th[T];
    opener o[T];
    for (int i = 0; i < T; i++) {
        o[i] = (opener){.url = u};
        pthread_create(&th[i], NULL, open_thread, &o[i]);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        if (o[i].rc != 0)
            fail_msg("open %d: %s", i, o[i].err.msg);
    }
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM %s.schema_version", schema);
    assert_int_equal(admin_long(db, sql),
                     (long)sked_postgres_migrations_count);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_tables WHERE schemaname = '%s' AND "
             "tablename IN ('tasks', 'runs', 'tokens', 'workers', "
             "'idempotency_keys')",
             schema);
    assert_int_equal(admin_long(db, sql), 5);

    snprintf(sql, sizeof sql, "INSERT INTO %s.schema_version VALUES "
                              "(9999, '9999_future.sql', 0)", schema);
    admin_exec(db, sql);
    sked_store *st = NULL;
    sked_err err = {0};
    assert_int_equal(sked_store_open(u, &st, &err), SKED_EINVAL);
    assert_null(st);
    assert_non_null(strstr(err.msg, "9999"));
    snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE", schema);
    admin_exec(db, sql);
    PQfinish(db);
}

/* End every server session of the store whose application_name is app,
 * and wait until the server has let them go. */
static void kill_sessions(PGconn *db, const char *app)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
             "WHERE application_name = '%s'", app);
    assert_true(admin_long(db, sql) >= 1);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_stat_activity "
             "WHERE application_name = '%s'", app);
    for (int i = 0; i < 200 && admin_long(db, sql) > 0; i++)
        usleep(10000);
    assert_int_equal(admin_long(db, sql), 0);
}

/* The server ends the store's connections (a restart, a failover, an
 * idle timeout): the next read and the next writes reconnect and go
 * through; nothing is lost or doubled. */
static void test_pg_reconnect(void **state)
{
    fixture *f = *state;
    if (!is_pg())
        skip();
    char app[64], param[96], u[4400];
    snprintf(app, sizeof app, "sked-rc-%08x-%u", salt, (unsigned)getpid());
    snprintf(param, sizeof param, "application_name=%s", app);
    url_plus(u, sizeof u, param);
    sked_store *st = NULL;
    sked_err err = {0};
    assert_int_equal(sked_store_open(u, &st, &err), 0);
    PGconn *db = admin_conn();

    sked_task_rec a, got;
    mk(&a, f->ns, "before", NULL, NULL);
    insert_ok(st, &a);
    kill_sessions(db, app);
    /* A read. */
    assert_int_equal(sked_store_task_get(st, f->ns, "before", &got, &err), 0);
    sked_task_rec_deinit(&got);
    kill_sessions(db, app);
    /* A write. */
    sked_task_rec b;
    mk(&b, f->ns, "after", NULL, NULL);
    insert_ok(st, &b);
    kill_sessions(db, app);
    /* A claim. */
    sked_walltime T = new_base();
    char owner[64];
    new_owner(owner, sizeof owner);
    mk_due(f->st, f->ns, 3, T, NULL, NULL);
    sked_claim c = claim_of(owner, T, T + SEC, 10, NULL);
    claim_ok(st, &c);
    assert_int_equal(c.nruns, 3);
    sked_claim_deinit(&c);
    assert_int_equal(sked_store_ping(st, &err), 0);
    assert_int_equal(count_all(f->st, all_of(f->ns), 100), 5);
    PQfinish(db);
    sked_store_close(st);
    delete_all(f->st, f->ns);
}

/* The next notification on sked_wake within ms milliseconds: 1 and its
 * payload, or 0. */
static int next_wake(PGconn *db, int ms, char *payload, size_t cap)
{
    for (int waited = 0; waited <= ms; waited += 10) {
        PQconsumeInput(db);
        PGnotify *n = PQnotifies(db);
        if (n != NULL) {
            int ours = strcmp(n->relname, "sked_wake") == 0;
            snprintf(payload, cap, "%s", n->extra);
            PQfreemem(n);
            if (ours)
                return 1;
        }
        usleep(10000);
    }
    return 0;
}

/* NOTIFY sked_wake goes with the commit of anything due within a few
 * seconds (a task inserted, updated, resumed; a run inserted), carrying
 * its due time; not for later ones, nor for a write that failed. */
static void test_pg_notify(void **state)
{
    fixture *f = *state;
    if (!is_pg())
        skip();
    PGconn *db = admin_conn();
    admin_exec(db, "LISTEN sked_wake");
    char pl[64], want[32];
    sked_walltime now = sked_clock_wall_now();
    sked_err err = {0};

    sked_task_rec soon, later, paused;
    mk(&soon, f->ns, "soon", NULL, NULL);
    soon.next_run_at = now + 200 * SKED_USEC_PER_MSEC;
    insert_ok(f->st, &soon);
    assert_true(next_wake(db, 2000, pl, sizeof pl));
    snprintf(want, sizeof want, "%lld", (long long)soon.next_run_at);
    assert_string_equal(pl, want);

    mk(&later, f->ns, "later", NULL, NULL);
    later.next_run_at = now + 3600 * SEC;
    insert_ok(f->st, &later);
    mk(&paused, f->ns, "paused", NULL, NULL);
    paused.next_run_at = now;
    paused.state = SKED_TASK_PAUSED;
    insert_ok(f->st, &paused);
    sked_task_rec dup;
    mk(&dup, f->ns, "soon", NULL, NULL);
    dup.next_run_at = now;
    assert_int_equal(insert1(f->st, &dup, &err), SKED_ECONFLICT);
    assert_false(next_wake(db, 300, pl, sizeof pl));

    /* Resumed. */
    paused.state = SKED_TASK_ACTIVE;
    paused.next_run_at = now + SEC;
    assert_int_equal(sked_store_task_update(f->st, &paused, 0, &err), 0);
    assert_true(next_wake(db, 2000, pl, sizeof pl));
    snprintf(want, sizeof want, "%lld", (long long)paused.next_run_at);
    assert_string_equal(pl, want);

    /* A triggered run. */
    sked_run_rec r;
    mk_run(&r, f->ns, later.id, now + 10);
    run_insert_ok(f->st, &r);
    assert_true(next_wake(db, 2000, pl, sizeof pl));
    snprintf(want, sizeof want, "%lld", (long long)r.due_at);
    assert_string_equal(pl, want);
    PQfinish(db);
    delete_all(f->st, f->ns);
}

/* Overlap across schedulers: runs dispatched or running, per task, in the
 * order asked, whoever dispatched them. */
static void test_tasks_active(void **state)
{
    fixture *f = *state;
    sked_walltime T = new_base();
    char ids[3][SKED_ID_LEN + 1];
    mk_due(f->st, f->ns, 3, T + 3600 * SEC, NULL, ids);
    sked_run_rec r[5];
    int status[5] = {SKED_RUN_SCHEDULED, SKED_RUN_DISPATCHED, SKED_RUN_RUNNING,
                     SKED_RUN_SUCCEEDED, SKED_RUN_RUNNING};
    const char *task_of_run[5] = {ids[0], ids[0], ids[0], ids[1], ids[1]};
    for (int i = 0; i < 5; i++) {
        mk_run(&r[i], f->ns, task_of_run[i], T + i * SEC);
        run_insert_ok(f->st, &r[i]);
        if (status[i] != SKED_RUN_SCHEDULED) {
            r[i].status = status[i];
            assert_int_equal(change1(f->st, &r[i], 1, SKED_RUN_BIT(SKED_RUN_SCHEDULED)), 0);
        }
    }
    const char *ask[5] = {ids[2], ids[0], "no-such-task", ids[1], ids[0]};
    int counts[5] = {9, 9, 9, 9, 9};
    sked_err err = {0};
    assert_int_equal(sked_store_tasks_active(f->st, ask, 5, counts, &err), 0);
    assert_int_equal(counts[0], 0);
    assert_int_equal(counts[1], 2);
    assert_int_equal(counts[2], 0);
    assert_int_equal(counts[3], 1);
    assert_int_equal(counts[4], 2);
    /* settling one changes the count */
    r[2].status = SKED_RUN_SUCCEEDED;
    assert_int_equal(change1(f->st, &r[2], 1, SKED_RUN_BIT(SKED_RUN_RUNNING)), 0);
    assert_int_equal(sked_store_tasks_active(f->st, ask + 1, 1, counts, &err), 0);
    assert_int_equal(counts[0], 1);
    assert_int_equal(sked_store_tasks_active(f->st, ask, 0, counts, &err), 0);
}

/* Several runs in one call, any namespace; repeated and unknown ids; with
 * their tasks' specs as they are now, none once a task is deleted. */
static void test_run_get_many(void **state)
{
    fixture *f = *state;
    sked_walltime T = new_base();
    char ids[2][SKED_ID_LEN + 1];
    mk_due(f->st, f->ns, 1, T + 3600 * SEC, "{\"spec\":\"a\"}", ids);
    mk_due(f->st, f->ns2, 1, T + 3600 * SEC, "{\"spec\":\"b\"}", ids + 1);
    sked_run_rec a, b;
    mk_run(&a, f->ns, ids[0], T);
    mk_run(&b, f->ns2, ids[1], T + SEC);
    run_insert_ok(f->st, &a);
    run_insert_ok(f->st, &b);
    const char *ask[4] = {b.id, "no-such-run", a.id, b.id};
    sked_run_rec out[4];
    int found[4] = {7, 7, 7, 7};
    sked_err err = {0};
    assert_int_equal(sked_store_run_get_many(f->st, ask, 4, out, found, NULL, &err), 0);
    assert_int_equal(found[0], 1);
    assert_int_equal(found[1], 0);
    assert_int_equal(found[2], 1);
    assert_int_equal(found[3], 1);
    assert_same_run(&b, &out[0]);
    assert_same_run(&a, &out[2]);
    assert_same_run(&b, &out[3]);
    for (int i = 0; i < 4; i++)
        if (found[i])
            sked_run_rec_deinit(&out[i]);
    assert_int_equal(sked_store_run_get_many(f->st, ask, 0, out, found, NULL, &err), 0);

    char *specs[4] = {"x", "x", "x", "x"};
    assert_int_equal(sked_store_task_delete(f->st, f->ns, ids[0], &err), 0);
    assert_int_equal(sked_store_run_get_many(f->st, ask, 4, out, found, specs, &err), 0);
    assert_int_equal(found[0] + found[1] + found[2] + found[3], 3);
    assert_string_equal(specs[0], "{\"spec\":\"b\"}");
    assert_null(specs[1]);
    assert_null(specs[2]); /* a's task is gone */
    assert_int_equal(out[2].status, SKED_RUN_CANCELED);
    assert_string_equal(specs[3], "{\"spec\":\"b\"}");
    for (int i = 0; i < 4; i++) {
        if (found[i])
            sked_run_rec_deinit(&out[i]);
        free(specs[i]);
    }
}

static void test_sqlite_wait_wake(void **state)
{
    fixture *f = *state;
    sked_err err = {0};
    assert_int_equal(sked_store_wait_wake(f->st, 1000, &err), SKED_ENOTSUP);
}

/* LISTEN: another process's write that makes something due soon wakes a
 * waiting scheduler; nothing else does. */
static void test_pg_wait_wake(void **state)
{
    fixture *f = *state;
    sked_store *other = open_store();
    sked_err err = {0};
    /* the first call only starts listening, and says "woken" */
    assert_int_equal(sked_store_wait_wake(f->st, 1000, &err), 0);
    assert_int_equal(sked_store_wait_wake(f->st, 200 * 1000, &err), SKED_EAGAIN);

    sked_task_rec later;
    mk(&later, f->ns, "later", NULL, NULL);
    later.next_run_at = sked_clock_wall_now() + 3600 * SEC;
    insert_ok(other, &later);
    assert_int_equal(sked_store_wait_wake(f->st, 300 * 1000, &err), SKED_EAGAIN);

    sked_task_rec soon;
    mk(&soon, f->ns, "soon", NULL, NULL);
    soon.next_run_at = sked_clock_wall_now() + 200 * SKED_USEC_PER_MSEC;
    sked_monotime t0 = sked_clock_mono_now();
    insert_ok(other, &soon);
    assert_int_equal(sked_store_wait_wake(f->st, 5 * SEC, &err), 0);
    assert_true(sked_clock_mono_now() - t0 < 2 * SEC);
    sked_store_close(other);
    delete_all(f->st, f->ns);
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

/* ---- schedulers' heartbeats and the runs a dead one left in doubt ------- */

/* The rows of beat answer rows[0..n) whose id starts with prefix. */
static size_t rows_with(const sked_sched_rec *rows, size_t n, const char *prefix,
                        sked_sched_rec *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(rows[i].id, prefix, strlen(prefix)) == 0)
            out[k++] = rows[i];
    return k;
}

static size_t beat(sked_store *st, const char *id, int64_t beats, sked_walltime at,
                   sked_walltime published_to, sked_walltime prune_before,
                   const char *prefix, sked_sched_rec *mine)
{
    sked_sched_rec me = {.beats = beats, .beat_at = at, .published_to = published_to};
    snprintf(me.id, sizeof me.id, "%s", id);
    sked_sched_rec *rows = NULL;
    size_t n = 0;
    sked_err err = {0};
    int rc = sked_store_sched_beat(st, &me, prune_before, &rows, &n, &err);
    if (rc != 0)
        fail_msg("beat %s: %s (%s)", id, err.msg, sked_err_name(rc));
    for (size_t i = 1; i < n; i++)
        assert_true(strcmp(rows[i - 1].id, rows[i].id) < 0); /* by id */
    size_t k = rows_with(rows, n, prefix, mine);
    free(rows);
    return k;
}

static void test_sched_beat(void **state)
{
    (void)state;
    fixture *f = *state;
    sked_walltime T = new_base();
    char a[64], b[64], pre[40];
    new_owner(pre, sizeof pre);
    snprintf(a, sizeof a, "%s-a", pre);
    snprintf(b, sizeof b, "%s-b", pre);
    sked_sched_rec got[4];
    /* the first beat of a: nothing of ours before it */
    assert_int_equal(beat(f->st, a, 1, T, T - 5, SKED_TIME_NONE, pre, got), 0);
    /* b sees a as written */
    assert_int_equal(beat(f->st, b, 7, T + 1, T - 9, SKED_TIME_NONE, pre, got), 1);
    assert_string_equal(got[0].id, a);
    assert_int_equal(got[0].beats, 1);
    assert_true(got[0].beat_at == T && got[0].published_to == T - 5);
    /* a's second beat reads the table as it was: its own old row too */
    assert_int_equal(beat(f->st, a, 2, T + 1000, T + 500, SKED_TIME_NONE, pre, got), 2);
    assert_string_equal(got[0].id, a);
    assert_int_equal(got[0].beats, 1);
    assert_string_equal(got[1].id, b);
    assert_true(got[1].beats == 7 && got[1].beat_at == T + 1 && got[1].published_to == T - 9);
    /* replaced, not added */
    assert_int_equal(beat(f->st, b, 8, T + 2000, T + 1500, SKED_TIME_NONE, pre, got), 2);
    assert_true(got[0].beats == 2 && got[0].beat_at == T + 1000 &&
                got[0].published_to == T + 500);
    /* pruning: a's last beat (T + 1000) is before T + 1500, b's own row
     * (T + 2000 before T + 9000 too) is never deleted by its own beat */
    assert_int_equal(beat(f->st, b, 9, T + 2000, T + 1500, T + 1500, pre, got), 2);
    assert_int_equal(beat(f->st, b, 10, T + 2000, T + 1500, T + 9000, pre, got), 1);
    assert_string_equal(got[0].id, b);
    assert_int_equal(beat(f->st, b, 11, T + 2000, T + 1500, SKED_TIME_NONE, pre, got), 1);
    /* bad rows change nothing */
    sked_sched_rec bad = {.beats = 1, .beat_at = T, .published_to = T};
    sked_sched_rec *rows = NULL;
    size_t n = 0;
    sked_err err = {0};
    assert_int_equal(sked_store_sched_beat(f->st, &bad, SKED_TIME_NONE, &rows, &n, &err),
                     SKED_EINVAL);
    assert_string_equal(err.field, "id");
    assert_null(rows);
    snprintf(bad.id, sizeof bad.id, "%s-c", pre);
    bad.published_to = SKED_TIME_NONE;
    assert_int_equal(sked_store_sched_beat(f->st, &bad, SKED_TIME_NONE, &rows, &n, &err),
                     SKED_EINVAL);
    assert_int_equal(beat(f->st, b, 12, T + 2000, T + 1500, SKED_TIME_NONE, pre, got), 1);

    /* keep_older: the stored watermark stays where it is the smaller */
    sked_sched_rec k = {.beats = 13, .beat_at = T + 3000, .published_to = T + 2500,
                        .keep_older = 1};
    snprintf(k.id, sizeof k.id, "%s", b);
    assert_int_equal(sked_store_sched_beat(f->st, &k, SKED_TIME_NONE, &rows, &n, &err), 0);
    free(rows);
    k.published_to = T + 700;
    k.beats = 14;
    assert_int_equal(sked_store_sched_beat(f->st, &k, SKED_TIME_NONE, &rows, &n, &err), 0);
    assert_int_equal(rows_with(rows, n, pre, got), 1);
    assert_true(got[0].beats == 13 && got[0].published_to == T + 1500); /* kept */
    free(rows);
    assert_int_equal(beat(f->st, b, 15, T + 3000, T + 2600, SKED_TIME_NONE, pre, got), 1);
    assert_true(got[0].beats == 14 && got[0].published_to == T + 700); /* the smaller */
    assert_int_equal(beat(f->st, b, 16, T + 3000, T + 2600, SKED_TIME_NONE, pre, got), 1);
    assert_true(got[0].published_to == T + 2600); /* replaced without keep_older */
    /* clean up for later tests: b's row ages out */
    assert_int_equal(beat(f->st, a, 3, T, T, T + 3001, pre, got), 1);
    assert_int_equal(beat(f->st, a, 4, T, T, SKED_TIME_NONE, pre, got), 1);
}

static void test_runs_in_doubt(void **state)
{
    fixture *f = *state;
    sked_walltime T = new_base();
    char ids[1][SKED_ID_LEN + 1], o[40], p[40];
    new_owner(o, sizeof o);
    new_owner(p, sizeof p);
    mk_due(f->st, f->ns, 1, T + 3600 * SEC, "{\"doubt\":1}", ids);
    /* dispatched by o after its watermark (T), twice; dispatched by o
     * before it; dispatched by p; running under o (a worker took it: not
     * in doubt; its marked_at is not kept); scheduled; and two marked
     * ahead by o, due long after their marks: one marked before the cut
     * below (T + 5 s), one after it (a later life's) */
    static const struct {
        sked_run_status st;
        int owner_p;
        int64_t at_s, marked_s; /* marked_s 99: none */
    } rows[] = {
        {SKED_RUN_DISPATCHED, 0, 4, 99}, {SKED_RUN_DISPATCHED, 0, -1, 99},
        {SKED_RUN_DISPATCHED, 1, 2, 99}, {SKED_RUN_RUNNING, 0, 3, 1},
        {SKED_RUN_DISPATCHED, 0, 0, 99}, {SKED_RUN_SCHEDULED, 0, 5, 99},
        {SKED_RUN_DISPATCHED, 0, 30, -1}, {SKED_RUN_DISPATCHED, 0, 20, 8},
    };
    enum { NROWS = sizeof rows / sizeof rows[0] };
    char rid[NROWS][SKED_ID_LEN + 1];
    for (int i = 0; i < NROWS; i++) {
        sked_run_rec r;
        mk_run(&r, f->ns, ids[0], T + i * SEC);
        r.status = rows[i].st;
        snprintf(r.lease_owner, sizeof r.lease_owner, "%s", rows[i].owner_p ? p : o);
        r.lease_expires_at = T + 60 * SEC;
        r.dispatched_at = T + rows[i].at_s * SEC;
        if (rows[i].marked_s != 99)
            r.marked_at = T + rows[i].marked_s * SEC;
        run_insert_ok(f->st, &r);
        memcpy(rid[i], r.id, sizeof rid[i]);
    }
    sked_claim c = {0};
    sked_err err = {0};
    assert_int_equal(sked_store_runs_in_doubt(f->st, o, T, INT64_MAX, 10, &c, &err), 0);
    assert_int_equal(c.nruns, 4);
    assert_int_equal(c.more, 0);
    assert_string_equal(c.runs[0].id, rid[4]); /* dispatched_at T: included */
    assert_string_equal(c.runs[1].id, rid[0]);
    assert_string_equal(c.runs[2].id, rid[7]);
    assert_string_equal(c.runs[3].id, rid[6]);
    assert_string_equal(c.specs[1], "{\"doubt\":1}");
    assert_true(c.runs[0].marked_at == SKED_TIME_NONE);
    assert_true(c.runs[3].marked_at == T - SEC);
    sked_claim_deinit(&c);
    /* the cut: marked before T + 5 s, or without a mark dispatched so */
    assert_int_equal(sked_store_runs_in_doubt(f->st, o, T, T + 5 * SEC, 10, &c, &err), 0);
    assert_int_equal(c.nruns, 3);
    assert_string_equal(c.runs[0].id, rid[4]);
    assert_string_equal(c.runs[1].id, rid[0]);
    assert_string_equal(c.runs[2].id, rid[6]);
    sked_claim_deinit(&c);
    assert_int_equal(sked_store_runs_in_doubt(f->st, o, T, T + 4 * SEC, 10, &c, &err), 0);
    assert_int_equal(c.nruns, 2); /* rid[0], dispatched at T + 4 s unmarked, is out */
    assert_string_equal(c.runs[1].id, rid[6]);
    sked_claim_deinit(&c);
    assert_int_equal(sked_store_runs_in_doubt(f->st, o, T, INT64_MAX, 1, &c, &err), 0);
    assert_int_equal(c.nruns, 1);
    assert_int_equal(c.more, 1);
    sked_claim_deinit(&c);
    assert_int_equal(sked_store_runs_in_doubt(f->st, p, T + 3 * SEC, INT64_MAX, 10, &c, &err),
                     0);
    assert_int_equal(c.nruns, 0);
    sked_claim_deinit(&c);
    /* a run that is not DISPATCHED keeps no marked_at */
    sked_run_rec got;
    assert_int_equal(sked_store_run_get(f->st, f->ns, rid[3], &got, &err), 0);
    assert_true(got.marked_at == SKED_TIME_NONE);
    sked_run_rec_deinit(&got);
    assert_int_equal(sked_store_runs_in_doubt(f->st, "", T, INT64_MAX, 10, &c, &err),
                     SKED_EINVAL);
    assert_string_equal(err.field, "owner");
    assert_int_equal(sked_store_runs_in_doubt(f->st, o, T, INT64_MAX, 0, &c, &err), SKED_EINVAL);
    assert_string_equal(err.field, "limit");
}

/* The sweep and retention take at most 100,000 rows a call, at least 1. */
static void test_batch_limits(void **state)
{
    fixture *f = *state;
    sked_claim c = {0};
    sked_err err = {0};
    int64_t deleted = 7;
    int bad[] = {0, -1, 100001};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&err, 0, sizeof err);
        assert_int_equal(sked_store_sweep_expired(f->st, new_base(), bad[i], &c, &err),
                         SKED_EINVAL);
        assert_string_equal(err.field, "limit");
        assert_int_equal(c.nruns, 0);
        sked_claim_deinit(&c);
        memset(&err, 0, sizeof err);
        assert_int_equal(sked_store_run_prune(f->st, new_base(), 0, bad[i], &deleted, &err),
                         SKED_EINVAL);
        assert_string_equal(err.field, "limit");
        assert_int_equal(deleted, 0);
    }
    assert_int_equal(sked_store_sweep_expired(f->st, new_base(), 100000, &c, &err), 0);
    sked_claim_deinit(&c);
}

/* A pause cancels the task's runs not yet published: scheduled ones, and
 * those marked dispatched ahead of their due time (dispatched_at still to
 * come: the scheduler reads them again before it publishes them).  Runs
 * already published or running are left to finish. */
static void test_pause_cancels_unpublished(void **state)
{
    fixture *f = *state;
    sked_walltime T = new_base();
    char ids[1][SKED_ID_LEN + 1];
    mk_due(f->st, f->ns, 1, T + 3600 * SEC, NULL, ids);
    static const struct {
        sked_run_status st;
        int64_t dispatched_s;    /* relative to the pause at T */
        sked_run_status after;
    } rows[] = {
        {SKED_RUN_SCHEDULED, 0, SKED_RUN_CANCELED},
        {SKED_RUN_DISPATCHED, 1, SKED_RUN_CANCELED},   /* marked ahead */
        {SKED_RUN_DISPATCHED, -1, SKED_RUN_DISPATCHED}, /* published */
        {SKED_RUN_RUNNING, -2, SKED_RUN_RUNNING},
    };
    char rid[4][SKED_ID_LEN + 1];
    for (int i = 0; i < 4; i++) {
        sked_run_rec r;
        mk_run(&r, f->ns, ids[0], T + i * SEC);
        r.status = rows[i].st;
        if (rows[i].st != SKED_RUN_SCHEDULED)
            r.dispatched_at = T + rows[i].dispatched_s * SEC;
        run_insert_ok(f->st, &r);
        memcpy(rid[i], r.id, sizeof rid[i]);
    }
    sked_task_rec t = task_of(f->st, f->ns, ids[0]);
    t.state = SKED_TASK_PAUSED;
    t.next_run_at = SKED_TIME_NONE;
    t.updated_at = T;
    sked_err err = {0};
    assert_int_equal(sked_store_task_update(f->st, &t, 0, &err), 0);
    sked_task_rec_deinit(&t);
    for (int i = 0; i < 4; i++) {
        sked_run_rec got = run_of(f->st, f->ns, rid[i]);
        assert_int_equal(got.status, rows[i].after);
        if (rows[i].after == SKED_RUN_CANCELED) {
            assert_string_equal(got.error, "task paused");
            assert_true(got.finished_at == T);
        }
        sked_run_rec_deinit(&got);
    }
}

/* A run stored DISPATCHED to sched-b at T (*r), and *back: the same run
 * given back, SCHEDULED and unleased, as a change would write it. */
static void stored_dispatched(fixture *f, sked_walltime T, sked_run_rec *r,
                              sked_run_rec *back)
{
    char ids[1][SKED_ID_LEN + 1];
    mk_due(f->st, f->ns, 1, T + 3600 * SEC, NULL, ids);
    mk_run(r, f->ns, ids[0], T);
    r->status = SKED_RUN_DISPATCHED;
    snprintf(r->lease_owner, sizeof r->lease_owner, "sched-b");
    r->lease_expires_at = T + 60 * SEC;
    r->dispatched_at = T;
    run_insert_ok(f->st, r);
    *back = *r;
    back->status = SKED_RUN_SCHEDULED;
    back->lease_owner[0] = '\0';
    back->lease_expires_at = back->dispatched_at = SKED_TIME_NONE;
}

/* A change fenced on the stored dispatched_at applies only over that
 * dispatch: a worker's `returned` about one dispatch must not undo the
 * next dispatch of the same attempt. */
static void test_run_update_dispatch_fence(void **state)
{
    fixture *f = *state;
    sked_walltime T = new_base();
    sked_run_rec r, back;
    stored_dispatched(f, T, &r, &back);
    sked_run_change ch = {.rec = &back, .attempt = 1,
                          .from = SKED_RUN_BIT(SKED_RUN_DISPATCHED),
                          .dispatched_fence = T + 1};
    sked_err err = {0};
    assert_int_equal(sked_store_run_update(f->st, &ch, 1, &err), 0);
    assert_int_equal(ch.result, SKED_EPRECOND);
    sked_run_rec got = run_of(f->st, f->ns, r.id);
    assert_int_equal(got.status, SKED_RUN_DISPATCHED);
    sked_run_rec_deinit(&got);
    ch.dispatched_fence = T;
    assert_int_equal(sked_store_run_update(f->st, &ch, 1, &err), 0);
    assert_int_equal(ch.result, 0);
    got = run_of(f->st, f->ns, r.id);
    assert_int_equal(got.status, SKED_RUN_SCHEDULED);
    sked_run_rec_deinit(&got);
}

typedef struct update_arg {
    sked_store *st;
    sked_run_change *ch;
    size_t n;
    int rc;
    sked_err err;
} update_arg;

static void *update_thread(void *p)
{
    update_arg *a = p;
    a->rc = sked_store_run_update(a->st, a->ch, a->n, &a->err);
    return NULL;
}

/* While `hold` holds run b and a writer waits for it: whether the writer
 * holds a (it locks in id order) rather than c.  Waits until the writer is
 * blocked by hold and by nothing else; *waits says whether it ever was. */
static int holds_first_not_last(PGconn *hold, PGconn *look, const char *a, const char *c,
                                 int *waits)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_stat_activity "
             "WHERE %d = ANY (pg_blocking_pids(pid))", PQbackendPID(hold));
    *waits = 0;
    for (int i = 0; i < 500 && !*waits; i++) {
        *waits = admin_long(look, sql) > 0;
        if (!*waits)
            usleep(10000);
    }
    /* the rows of a and c nobody holds */
    admin_exec(look, "BEGIN");
    snprintf(sql, sizeof sql, "SELECT id FROM runs WHERE id IN ('%s', '%s') "
             "FOR UPDATE SKIP LOCKED", a, c);
    PGresult *free_rows = PQexec(look, sql);
    int ok = PQresultStatus(free_rows) == PGRES_TUPLES_OK && PQntuples(free_rows) == 1 &&
             strcmp(PQgetvalue(free_rows, 0, 0), c) == 0;
    PQclear(free_rows);
    admin_exec(look, "ROLLBACK");
    return ok;
}

/* Runs a < b < c stored c, b, a (so the table and a plain index scan have
 * them backwards), and a transaction on `hold` holding b. */
static void runs_backwards_b_held(fixture *f, sked_walltime T, const char tasks[][SKED_ID_LEN + 1],
                                  sked_run_rec r[3], PGconn *hold)
{
    for (int i = 0; i < 3; i++)
        mk_run(&r[i], f->ns, tasks[i], T + i * SEC); /* ids ascending */
    for (int i = 2; i >= 0; i--)
        run_insert_ok(f->st, &r[i]);
    char sql[256];
    admin_exec(hold, "BEGIN");
    snprintf(sql, sizeof sql, "SELECT 1 FROM runs WHERE id = '%s' FOR UPDATE", r[1].id);
    admin_exec(hold, sql);
}

/* A batch of run changes locks its runs in id order before changing any,
 * whatever order the batch and the table have them in, so two batches
 * that share runs (schedulers writing events of the same runs) wait for
 * each other and never deadlock.  Runs a < b < c are stored c, b, a and
 * changed as [c, b, a] while another transaction holds b: the waiting
 * batch must hold a (id order), not c (the batch's and the table's). */
static void test_pg_run_update_lock_order(void **state)
{
    fixture *f = *state;
    sked_walltime T = new_base();
    char tasks[3][SKED_ID_LEN + 1];
    mk_due(f->st, f->ns, 3, T + 3600 * SEC, NULL, tasks);
    sked_run_rec r[3], w[3];
    sked_run_change ch[3];
    PGconn *hold = admin_conn(), *look = admin_conn();
    runs_backwards_b_held(f, T, (const char (*)[SKED_ID_LEN + 1])tasks, r, hold);
    for (int k = 0; k < 3; k++) {
        w[k] = r[2 - k];
        w[k].due_at = T + 1;
        ch[k] = (sked_run_change){.rec = &w[k], .attempt = 1,
                                  .from = SKED_RUN_BIT(SKED_RUN_SCHEDULED)};
    }
    update_arg a = {.st = f->st, .ch = ch, .n = 3};
    pthread_t th;
    pthread_create(&th, NULL, update_thread, &a);
    int waits;
    int in_order = holds_first_not_last(hold, look, r[0].id, r[2].id, &waits);
    admin_exec(hold, "COMMIT");
    pthread_join(th, NULL); /* before any assert: nothing left waiting */
    assert_true(waits);
    assert_true(in_order);
    assert_int_equal(a.rc, 0);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(ch[k].result, 0);
        sked_run_rec got = run_of(f->st, f->ns, r[k].id);
        assert_int_equal(got.due_at, T + 1);
        sked_run_rec_deinit(&got);
    }
    PQfinish(hold);
    PQfinish(look);
}

typedef struct pause_arg {
    sked_store *st;
    sked_task_rec *t;
    int rc;
} pause_arg;

static void *pause_thread(void *p)
{
    pause_arg *a = p;
    sked_err err = {0};
    a->rc = sked_store_task_update(a->st, a->t, 0, &err);
    return NULL;
}

/* A pause cancels its task's unpublished runs locking them in id order
 * too (an event batch of the same runs must not deadlock with it): three
 * runs of one task a < b < c stored c, b, a, b held; the waiting pause
 * holds a, not c. */
static void test_pg_pause_lock_order(void **state)
{
    fixture *f = *state;
    sked_walltime T = new_base();
    char task[1][SKED_ID_LEN + 1], tasks[3][SKED_ID_LEN + 1];
    mk_due(f->st, f->ns, 1, T + 3600 * SEC, NULL, task);
    for (int i = 0; i < 3; i++)
        memcpy(tasks[i], task[0], sizeof tasks[i]);
    sked_run_rec r[3];
    PGconn *hold = admin_conn(), *look = admin_conn();
    runs_backwards_b_held(f, T, (const char (*)[SKED_ID_LEN + 1])tasks, r, hold);
    sked_task_rec t = task_of(f->st, f->ns, task[0]);
    t.state = SKED_TASK_PAUSED;
    t.next_run_at = SKED_TIME_NONE;
    t.updated_at = T;
    pause_arg a = {.st = f->st, .t = &t};
    pthread_t th;
    pthread_create(&th, NULL, pause_thread, &a);
    int waits;
    int in_order = holds_first_not_last(hold, look, r[0].id, r[2].id, &waits);
    admin_exec(hold, "COMMIT");
    pthread_join(th, NULL);
    sked_task_rec_deinit(&t);
    assert_true(waits);
    assert_true(in_order);
    assert_int_equal(a.rc, 0);
    for (int k = 0; k < 3; k++) {
        sked_run_rec got = run_of(f->st, f->ns, r[k].id);
        assert_int_equal(got.status, SKED_RUN_CANCELED);
        sked_run_rec_deinit(&got);
    }
    PQfinish(hold);
    PQfinish(look);
}

/* A change fenced on the lease owner: a give-back by one scheduler does
 * not undo another's mark of the same attempt. */
static void test_run_update_owner_fence(void **state)
{
    fixture *f = *state;
    sked_walltime T = new_base();
    sked_run_rec r, back;
    stored_dispatched(f, T, &r, &back);
    sked_run_change ch = {.rec = &back, .attempt = 1,
                          .from = SKED_RUN_BIT(SKED_RUN_DISPATCHED), .owner = "sched-a"};
    sked_err err = {0};
    assert_int_equal(sked_store_run_update(f->st, &ch, 1, &err), 0);
    assert_int_equal(ch.result, SKED_EPRECOND);
    sked_run_rec got = run_of(f->st, f->ns, r.id);
    assert_int_equal(got.status, SKED_RUN_DISPATCHED);
    assert_string_equal(got.lease_owner, "sched-b");
    sked_run_rec_deinit(&got);
    ch.owner = "sched-b";
    assert_int_equal(sked_store_run_update(f->st, &ch, 1, &err), 0);
    assert_int_equal(ch.result, 0);
    got = run_of(f->st, f->ns, r.id);
    assert_int_equal(got.status, SKED_RUN_SCHEDULED);
    assert_string_equal(got.lease_owner, "");
    sked_run_rec_deinit(&got);
    /* repeated (its answer lost, say): fenced, as nobody owns it now */
    assert_int_equal(sked_store_run_update(f->st, &ch, 1, &err), 0);
    assert_int_equal(ch.result, SKED_EPRECOND);
    ch.owner = "";
    assert_int_equal(sked_store_run_update(f->st, &ch, 1, &err), SKED_EINVAL);
    assert_string_equal(err.field, "owner");
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
#define R(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown_runs)
    struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_bad_url),
        T(test_ping),
        T(test_insert_get),
        T(test_insert_duplicate_name),
        T(test_batch_1000),
        T(test_batch_all_or_nothing),
        T(test_idempotency),
        T(test_idempotency_concurrent),
        T(test_namespaces_isolated),
        T(test_list_filters),
        T(test_list_pagination),
        T(test_list_invalid),
        T(test_update),
        T(test_update_concurrent_if_match),
        T(test_delete),
        T(test_odd_text),
        T(test_tokens),
        T(test_durable_across_reopen),
        T(test_concurrent_inserts),
        T(test_two_openers),
        R(test_claim_basic),
        R(test_claim_invalid),
        R(test_claim_exclude),
        R(test_claim_dispatch),
        R(test_claim_once_ahead),
        R(test_claim_two_owners),
        R(test_claim_concurrent),
        R(test_claim_two_stores),
        R(test_claim_skipped),
        R(test_claim_complete_and_fail),
        R(test_claim_retry_when_due),
        R(test_claim_lease_expiry),
        R(test_run_update_fencing),
        R(test_sweep_expired),
        R(test_run_insert),
        R(test_run_list_filters),
        R(test_run_list_pagination),
        R(test_run_prune),
        R(test_task_delete_cancels_runs),
        R(test_workers),
        R(test_claim_throughput),
        cmocka_unit_test(test_sqlite_schema_too_new),
        T(test_sqlite_group_abort),
        R(test_sqlite_claim_group_abort),
        T(test_sqlite_wal),
        T(test_sqlite_lazy_synced),
        T(test_sqlite_checkpointed),
        cmocka_unit_test(test_open_pg_errors),
        cmocka_unit_test(test_pg_migrate_concurrent),
        T(test_pg_reconnect),
        T(test_pg_notify),
        R(test_tasks_active),
        R(test_run_get_many),
        R(test_sched_beat),
        R(test_runs_in_doubt),
        R(test_batch_limits),
        R(test_run_update_owner_fence),
        R(test_pg_run_update_lock_order),
        R(test_pg_pause_lock_order),
        R(test_run_update_dispatch_fence),
        R(test_pause_cancels_unpublished),
        T(test_sqlite_wait_wake),
        T(test_pg_wait_wake),
    };
#undef T
#undef R
    /* "store_sqlite", "store_postgres": the summary names the backend. */
    char name[32];
    snprintf(name, sizeof name, "store_%.*s", (int)strcspn(url, ":"), url);
    char scheme[16];
    snprintf(scheme, sizeof scheme, "%.*s", (int)strcspn(url, ":"), url);
    size_t n = sked_test_for_backend(tests, sizeof tests / sizeof tests[0], scheme);
    int rc = sked_test_run(name, tests, n);
    remove_tmpdir();
    return rc;
}
