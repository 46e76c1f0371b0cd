/*
 * store.c - the backend-independent half of the store: finding a backend
 * by URL scheme, the thin sked_store_* wrappers the core calls, and the
 * release functions of the records the store hands out.
 *
 * Not here: anything about SQL (store_sqlite*.c, store_pg*.c).  A wrapper
 * does nothing but check that the backend has the method (SKED_ENOTSUP
 * when its ops version predates the method or leaves it NULL) and call
 * it.
 */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"

/* Every backend linked into the binary, by the URL schemes it serves
 * (its ops->scheme and aliases), tried in order. */
static const struct {
    const char *scheme;
    const sked_store_ops *ops;
} backends[] = {
    {"sqlite", &sked_store_sqlite_ops},
    {"postgres", &sked_store_pg_ops},
    {"postgresql", &sked_store_pg_ops},
};

/* Does the backend have this method?  `since` is the ops version that
 * introduced it. */
#define HAS(st, since, method)                                          \
    ((st) != NULL && (st)->ops->version >= (since) &&                   \
     (st)->ops->method != NULL)

static int notsup(sked_store *st, const char *method, sked_err *err)
{
    return sked_err_set(err, SKED_ENOTSUP, NULL, 0,
                        "store backend %s does not support %s",
                        st ? st->ops->name : "(none)", method);
}

int sked_store_open(const char *url, sked_store **out, sked_err *err)
{
    *out = NULL;
    if (url == NULL || url[0] == '\0')
        return sked_err_set(err, SKED_EINVAL, "store", 0, "empty store URL");
    const char *colon = strchr(url, ':');
    if (colon == NULL)
        return sked_err_set(err, SKED_EINVAL, "store", 0,
                            "store URL \"%s\" has no scheme "
                            "(expected e.g. sqlite:PATH)", url);
    size_t len = (size_t)(colon - url);
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++) {
        const char *scheme = backends[i].scheme;
        if (strlen(scheme) == len && strncmp(scheme, url, len) == 0)
            return backends[i].ops->open(url, out, err);
    }
    return sked_err_set(err, SKED_EINVAL, "store", 0,
                        "unknown store scheme \"%.*s\" "
                        "(known: sqlite, postgres, postgresql)",
                        (int)(len > 32 ? 32 : len), url);
}

void sked_store_close(sked_store *st)
{
    if (st != NULL)
        st->ops->close(st);
}

int sked_store_ping(sked_store *st, sked_err *err)
{
    if (!HAS(st, 1, ping))
        return notsup(st, "ping", err);
    return st->ops->ping(st, err);
}

static int check_task(const sked_task_rec *r, int i, sked_err *err);
static int check_token(const sked_token_rec *t, sked_err *err);

int sked_store_task_insert(sked_store *st, sked_task_rec *recs, size_t n,
                           const sked_idem *idem, sked_err *err)
{
    if (!HAS(st, 1, task_insert))
        return notsup(st, "task_insert", err);
    if (idem != NULL && idem->key == NULL)
        idem = NULL;
    if (n == 0 && idem == NULL)
        return 0;
    if (n == 0)
        return sked_err_set(err, SKED_EINVAL, NULL, 0,
                            "an Idempotency-Key needs at least one task");
    if (idem != NULL && idem->request_hash == NULL)
        return sked_err_set(err, SKED_EINVAL, "Idempotency-Key", 0,
                            "Idempotency-Key without a request hash");
    for (size_t i = 0; i < n; i++) {
        int rc = check_task(&recs[i], (int)i + 1, err);
        if (rc != 0)
            return rc;
    }
    return st->ops->task_insert(st, recs, n, idem, err);
}

int sked_store_task_get(sked_store *st, const char *ns, const char *key,
                        sked_task_rec *out, sked_err *err)
{
    if (!HAS(st, 1, task_get))
        return notsup(st, "task_get", err);
    return st->ops->task_get(st, ns, key, out, err);
}

int sked_store_task_list(sked_store *st, const sked_task_filter *f,
                         sked_task_page *out, sked_err *err)
{
    if (!HAS(st, 1, task_list))
        return notsup(st, "task_list", err);
    return st->ops->task_list(st, f, out, err);
}

int sked_store_task_update(sked_store *st, sked_task_rec *rec,
                           int64_t expect_version, sked_err *err)
{
    if (!HAS(st, 1, task_update))
        return notsup(st, "task_update", err);
    int rc = check_task(rec, 0, err);
    if (rc != 0)
        return rc;
    return st->ops->task_update(st, rec, expect_version, err);
}

int sked_store_task_delete(sked_store *st, const char *ns, const char *id,
                           sked_err *err)
{
    if (!HAS(st, 1, task_delete))
        return notsup(st, "task_delete", err);
    return st->ops->task_delete(st, ns, id, err);
}

int sked_store_token_insert(sked_store *st, const sked_token_rec *t,
                            sked_err *err)
{
    if (!HAS(st, 1, token_insert))
        return notsup(st, "token_insert", err);
    int rc = check_token(t, err);
    if (rc != 0)
        return rc;
    return st->ops->token_insert(st, t, err);
}

int sked_store_token_find(sked_store *st, const char *hash,
                          sked_token_rec *out, sked_err *err)
{
    if (!HAS(st, 1, token_find))
        return notsup(st, "token_find", err);
    return st->ops->token_find(st, hash, out, err);
}

int sked_store_token_list(sked_store *st, const char *ns,
                          sked_token_rec **out, size_t *n, sked_err *err)
{
    if (!HAS(st, 1, token_list))
        return notsup(st, "token_list", err);
    return st->ops->token_list(st, ns, out, n, err);
}

int sked_store_token_revoke(sked_store *st, const char *ns, const char *id,
                            sked_walltime at, sked_err *err)
{
    if (!HAS(st, 1, token_revoke))
        return notsup(st, "token_revoke", err);
    return st->ops->token_revoke(st, ns, id, at, err);
}

/* ---- what every backend relies on in its arguments ------------------------ */

/* Longest claim, and longest lease, a caller may ask for; the most runs a
 * sweep reads, or a prune deletes, in one call. */
#define CLAIM_MAX_LIMIT 10000
#define CLAIM_MAX_LEASE (INT64_C(86400) * SKED_USEC_PER_SEC)
#define BATCH_MAX_LIMIT 100000

static int check_limit(int limit, int max, sked_err *err)
{
    if (limit < 1 || limit > max)
        return sked_err_set(err, SKED_EINVAL, "limit", 0, "limit %d is not within 1..%d",
                            limit, max);
    return 0;
}

static int check_len(const char *s, size_t max, const char *field, int col, sked_err *err)
{
    if (s == NULL || s[0] == '\0')
        return sked_err_set(err, SKED_EINVAL, field, col, "%s is empty", field);
    if (strlen(s) > max)
        return sked_err_set(err, SKED_EINVAL, field, col, "%s is longer than %zu bytes",
                            field, max);
    return 0;
}

/* A task the store writes; i is a 1-based index into a batch, or 0. */
static int check_task(const sked_task_rec *r, int i, sked_err *err)
{
    int rc;
    if ((rc = check_len(r->id, SKED_ID_LEN, "id", i, err)) ||
        (rc = check_len(r->ns, SKED_NS_MAX, "namespace", i, err)) ||
        (rc = check_len(r->queue, SKED_NS_MAX, "queue", i, err)))
        return rc;
    if (r->name != NULL && (rc = check_len(r->name, SKED_NAME_MAX, "name", i, err)))
        return rc;
    if (r->spec == NULL)
        return sked_err_set(err, SKED_EINVAL, "spec", i, "spec is missing");
    if (r->state < SKED_TASK_ACTIVE || r->state > SKED_TASK_COMPLETED)
        return sked_err_set(err, SKED_EINVAL, "state", i,
                            "state %d is not a task state", (int)r->state);
    return 0;
}

static int check_token(const sked_token_rec *t, sked_err *err)
{
    int rc;
    if ((rc = check_len(t->id, SKED_ID_LEN, "id", 0, err)) ||
        (rc = check_len(t->hash, 64, "hash", 0, err)) ||
        (rc = check_len(t->ns, SKED_NS_MAX, "namespace", 0, err)))
        return rc;
    if (t->role < SKED_ROLE_READ || t->role > SKED_ROLE_ADMIN)
        return sked_err_set(err, SKED_EINVAL, "role", 0,
                            "role %d is not a token role", (int)t->role);
    return 0;
}

/* A run the store writes; i is a 1-based index into a batch, or 0. */
static int check_run(const sked_run_rec *r, int i, sked_err *err)
{
    if (r == NULL)
        return sked_err_set(err, SKED_EINVAL, "run", i, "no run record");
    if (strnlen(r->id, sizeof r->id) == 0)
        return sked_err_set(err, SKED_EINVAL, "id", i, "run id is empty");
    if ((int)r->status < SKED_RUN_SCHEDULED || (int)r->status > SKED_RUN_CANCELED)
        return sked_err_set(err, SKED_EINVAL, "status", i,
                            "status %d is not a run status", (int)r->status);
    if (r->attempt < 1)
        return sked_err_set(err, SKED_EINVAL, "attempt", i, "attempt %d is below 1",
                            r->attempt);
    if (r->due_at == SKED_TIME_NONE)
        return sked_err_set(err, SKED_EINVAL, "due_at", i, "a run needs a due_at");
    return 0;
}

static int check_claim(const sked_claim *c, sked_err *err)
{
    int rc = check_len(c->owner, SKED_OWNER_MAX, "owner", 0, err);
    if (rc != 0)
        return rc;
    if ((rc = check_limit(c->limit, CLAIM_MAX_LIMIT, err)) != 0)
        return rc;
    if (c->lease_us <= 0 || c->lease_us > CLAIM_MAX_LEASE)
        return sked_err_set(err, SKED_EINVAL, "lease_us", 0,
                            "lease of %lld us is not within 1 us..1 day",
                            (long long)c->lease_us);
    if (c->advance == NULL)
        return sked_err_set(err, SKED_EINVAL, "advance", 0,
                            "a claim needs an advance function");
    if (c->now == SKED_TIME_NONE || c->horizon == SKED_TIME_NONE)
        return sked_err_set(err, SKED_EINVAL, "horizon", 0, "a claim needs now and a horizon");
    if (c->dispatch_lease_us < 0 || c->dispatch_lease_us > CLAIM_MAX_LEASE)
        return sked_err_set(err, SKED_EINVAL, "dispatch_lease_us", 0,
                            "dispatch lease of %lld us is not within 0..1 day",
                            (long long)c->dispatch_lease_us);
    if (c->nexclude > 0 && c->exclude == NULL)
        return sked_err_set(err, SKED_EINVAL, "exclude", 0, "a claim's exclude list is missing");
    return 0;
}

/* The backends answer with up to limit + nexclude runs, the excluded ones
 * among them (PostgreSQL's anti-join against an array parameter cost
 * hundreds of milliseconds per claim): leave those out and keep at most
 * limit, in order. */
static void claim_exclude(sked_claim *c)
{
    const char **ex = NULL;
    if (c->nexclude > 0) {
        ex = malloc(c->nexclude * sizeof *ex);
        if (ex == NULL)
            abort();
        memcpy(ex, c->exclude, c->nexclude * sizeof *ex);
        qsort(ex, c->nexclude, sizeof *ex, sked_id_ptr_cmp);
    }
    size_t k = 0;
    for (size_t i = 0; i < c->nruns; i++) {
        const char *id = c->runs[i].id;
        int excluded = ex != NULL && bsearch(&id, ex, c->nexclude, sizeof *ex, sked_id_ptr_cmp) != NULL;
        if (!excluded && k == (size_t)c->limit)
            c->more = 1;
        if (excluded || k == (size_t)c->limit) {
            sked_run_rec_deinit(&c->runs[i]);
            if (c->specs != NULL)
                free(c->specs[i]);
            continue;
        }
        c->runs[k] = c->runs[i];
        if (c->specs != NULL)
            c->specs[k] = c->specs[i];
        k++;
    }
    c->nruns = k;
    free(ex);
}

/* A claim's out fields, empty: sked_claim_deinit is safe on them whatever
 * the method answers. */
static void claim_out_empty(sked_claim *c)
{
    c->runs = NULL;
    c->specs = NULL;
    c->nruns = 0;
    c->more = 0;
    c->dispatched = NULL;
    c->dispatched_specs = NULL;
    c->ndispatched = 0;
}

int sked_store_claim_due(sked_store *st, sked_claim *c, sked_err *err)
{
    if (!HAS(st, 1, claim_due))
        return notsup(st, "claim_due", err);
    claim_out_empty(c);
    int rc = check_claim(c, err);
    if (rc == 0)
        rc = st->ops->claim_due(st, c, err);
    if (rc == 0)
        claim_exclude(c);
    return rc;
}

int sked_store_run_update(sked_store *st, sked_run_change *changes, size_t n,
                          sked_err *err)
{
    if (!HAS(st, 1, run_update))
        return notsup(st, "run_update", err);
    if (n == 0)
        return 0;
    if (changes == NULL)
        return sked_err_set(err, SKED_EINVAL, NULL, 0, "no changes");
    for (size_t i = 0; i < n; i++) {
        int rc = check_run(changes[i].rec, (int)i + 1, err);
        if (rc == 0 && changes[i].owner != NULL)
            rc = check_len(changes[i].owner, SKED_OWNER_MAX, "owner", (int)i + 1, err);
        if (rc != 0)
            return rc;
    }
    return st->ops->run_update(st, changes, n, err);
}

int sked_store_sweep_expired(sked_store *st, sked_walltime now, int limit,
                             sked_claim *out, sked_err *err)
{
    claim_out_empty(out);
    if (!HAS(st, 1, sweep_expired))
        return notsup(st, "sweep_expired", err);
    int rc = check_limit(limit, BATCH_MAX_LIMIT, err);
    return rc != 0 ? rc : st->ops->sweep_expired(st, now, limit, out, err);
}

int sked_store_run_insert(sked_store *st, const sked_run_rec *r, sked_err *err)
{
    if (!HAS(st, 1, run_insert))
        return notsup(st, "run_insert", err);
    int rc = check_run(r, 0, err);
    if (rc == 0 && ((rc = check_len(r->id, SKED_ID_LEN, "id", 0, err)) ||
                    (rc = check_len(r->task_id, SKED_ID_LEN, "task_id", 0, err)) ||
                    (rc = check_len(r->ns, SKED_NS_MAX, "namespace", 0, err)) ||
                    (rc = check_len(r->queue, SKED_NS_MAX, "queue", 0, err))))
        return rc;
    if (rc == 0 && r->scheduled_at == SKED_TIME_NONE)
        rc = sked_err_set(err, SKED_EINVAL, "scheduled_at", 0, "a run needs a scheduled_at");
    return rc != 0 ? rc : st->ops->run_insert(st, r, err);
}

int sked_store_run_get(sked_store *st, const char *ns, const char *id,
                       sked_run_rec *out, sked_err *err)
{
    if (!HAS(st, 1, run_get))
        return notsup(st, "run_get", err);
    return st->ops->run_get(st, ns, id, out, err);
}

int sked_store_run_list(sked_store *st, const sked_run_filter *f,
                        sked_run_page *out, sked_err *err)
{
    if (!HAS(st, 1, run_list))
        return notsup(st, "run_list", err);
    return st->ops->run_list(st, f, out, err);
}

int sked_store_run_prune(sked_store *st, sked_walltime older_than,
                         int keep_per_task, int limit, int64_t *deleted,
                         sked_err *err)
{
    *deleted = 0;
    if (!HAS(st, 1, run_prune))
        return notsup(st, "run_prune", err);
    int rc = check_limit(limit, BATCH_MAX_LIMIT, err);
    return rc != 0 ? rc : st->ops->run_prune(st, older_than, keep_per_task, limit, deleted, err);
}

int sked_store_worker_upsert(sked_store *st, const sked_worker_rec *w,
                             sked_err *err)
{
    if (!HAS(st, 1, worker_upsert))
        return notsup(st, "worker_upsert", err);
    return st->ops->worker_upsert(st, w, err);
}

int sked_store_worker_list(sked_store *st, sked_walltime since,
                           sked_worker_rec **out, size_t *n, sked_err *err)
{
    if (!HAS(st, 1, worker_list))
        return notsup(st, "worker_list", err);
    return st->ops->worker_list(st, since, out, n, err);
}

void sked_task_rec_deinit(sked_task_rec *r)
{
    if (r == NULL)
        return;
    free(r->name);
    free(r->spec);
    r->name = NULL;
    r->spec = NULL;
}

void sked_task_page_deinit(sked_task_page *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n; i++)
        sked_task_rec_deinit(&p->recs[i]);
    free(p->recs);
    p->recs = NULL;
    p->n = 0;
    p->more = 0;
}

void sked_run_rec_deinit(sked_run_rec *r)
{
    if (r == NULL)
        return;
    free(r->error);
    free(r->output);
    r->error = NULL;
    r->output = NULL;
}

sked_walltime sked_run_marked_at(const sked_run_rec *r)
{
    return r->status == SKED_RUN_DISPATCHED ? r->marked_at : SKED_TIME_NONE;
}

int sked_claim_dispatched_rec(const sked_claim *c, const sked_task_rec *t,
                              const char *run_id, const sked_occurrence *o,
                              sked_run_rec *out)
{
    memset(out, 0, sizeof *out);
    if (!o->dispatch || o->skipped || c->dispatch_lease_us <= 0)
        return 0;
    snprintf(out->id, sizeof out->id, "%s", run_id);
    snprintf(out->task_id, sizeof out->task_id, "%s", t->id);
    snprintf(out->ns, sizeof out->ns, "%s", t->ns);
    snprintf(out->queue, sizeof out->queue, "%s", t->queue);
    snprintf(out->lease_owner, sizeof out->lease_owner, "%s", c->owner);
    out->scheduled_at = o->scheduled_at;
    out->due_at = o->due_at == SKED_TIME_NONE ? o->scheduled_at : o->due_at;
    out->status = SKED_RUN_DISPATCHED;
    out->attempt = 1;
    /* one due later (the scheduler's premark lead) goes out at its time */
    out->dispatched_at = out->due_at > c->now ? out->due_at : c->now;
    out->lease_expires_at = out->dispatched_at > INT64_MAX - c->dispatch_lease_us
                                ? INT64_MAX : out->dispatched_at + c->dispatch_lease_us;
    out->marked_at = c->now; /* the claim is its mark */
    out->started_at = out->finished_at = out->lag_us = SKED_TIME_NONE;
    out->exit_code = SKED_NO_CODE;
    return 1;
}

int sked_claim_list_add(sked_run_rec **runs, char ***specs, size_t *n,
                        const sked_run_rec *r, const char *spec, sked_err *err)
{
    /* room for 16, then doubled whenever full */
    if (*n == 0 || (*n >= 16 && (*n & (*n - 1)) == 0)) {
        size_t cap = *n ? *n * 2 : 16;
        sked_run_rec *nr = realloc(*runs, cap * sizeof *nr);
        if (nr != NULL)
            *runs = nr;
        char **ns = nr ? realloc(*specs, cap * sizeof *ns) : NULL;
        if (ns != NULL)
            *specs = ns;
        if (nr == NULL || ns == NULL)
            return sked_err_set(err, SKED_ENOMEM, NULL, 0, "out of memory claiming");
    }
    char *copy = spec ? strdup(spec) : NULL;
    if (spec != NULL && copy == NULL)
        return sked_err_set(err, SKED_ENOMEM, NULL, 0, "out of memory claiming");
    (*runs)[*n] = *r;
    (*specs)[*n] = copy;
    (*n)++;
    return 0;
}

void sked_claim_list_free(sked_run_rec **runs, char ***specs, size_t *n)
{
    for (size_t i = 0; i < *n; i++) {
        sked_run_rec_deinit(&(*runs)[i]);
        free((*specs)[i]);
    }
    free(*runs);
    free(*specs);
    *runs = NULL;
    *specs = NULL;
    *n = 0;
}

void sked_claim_deinit(sked_claim *c)
{
    if (c == NULL)
        return;
    sked_claim_list_free(&c->dispatched, &c->dispatched_specs, &c->ndispatched);
    for (size_t i = 0; i < c->nruns; i++) {
        sked_run_rec_deinit(&c->runs[i]);
        if (c->specs != NULL)
            free(c->specs[i]);
    }
    free(c->runs);
    free(c->specs);
    c->runs = NULL;
    c->specs = NULL;
    c->nruns = 0;
    c->more = 0;
}

void sked_run_page_deinit(sked_run_page *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n; i++)
        sked_run_rec_deinit(&p->recs[i]);
    free(p->recs);
    p->recs = NULL;
    p->n = 0;
    p->more = 0;
}

int sked_store_tasks_active(sked_store *st, const char *const *task_ids,
                            size_t n, int *counts, sked_err *err)
{
    if (!HAS(st, 2, tasks_active))
        return notsup(st, "tasks_active", err);
    for (size_t i = 0; i < n; i++)
        counts[i] = 0;
    if (n == 0)
        return 0;
    if (task_ids == NULL || counts == NULL)
        return sked_err_set(err, SKED_EINVAL, NULL, 0, "tasks_active needs ids and counts");
    return st->ops->tasks_active(st, task_ids, n, counts, err);
}

int sked_store_wait_wake(sked_store *st, int64_t timeout_us, sked_err *err)
{
    if (!HAS(st, 2, wait_wake))
        return notsup(st, "wait_wake", err);
    return st->ops->wait_wake(st, timeout_us, err);
}

int sked_store_run_get_many(sked_store *st, const char *const *ids, size_t n,
                            sked_run_rec *out, int *found, char **specs, sked_err *err)
{
    for (size_t i = 0; i < n; i++) {
        found[i] = 0;
        if (specs)
            specs[i] = NULL;
    }
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i] == NULL)
            return sked_err_set(err, SKED_EINVAL, NULL, (int)i + 1, "run get: NULL id");
    if (HAS(st, 2, run_get_many))
        return st->ops->run_get_many(st, ids, n, out, found, specs, err);
    if (specs != NULL)
        return notsup(st, "run_get_many", err);
    if (!HAS(st, 1, run_get))
        return notsup(st, "run_get", err);
    for (size_t i = 0; i < n; i++) {
        sked_err e = {0};
        int rc = st->ops->run_get(st, NULL, ids[i], &out[i], &e);
        if (rc == 0)
            found[i] = 1;
        else if (rc != SKED_ENOENT) {
            for (size_t k = 0; k < i; k++)
                if (found[k]) {
                    sked_run_rec_deinit(&out[k]);
                    found[k] = 0;
                }
            if (err)
                *err = e;
            return rc;
        }
    }
    return 0;
}

int sked_store_sched_beat(sked_store *st, const sked_sched_rec *me,
                          sked_walltime prune_before, sked_sched_rec **out,
                          size_t *n, sked_err *err)
{
    *out = NULL;
    *n = 0;
    if (!HAS(st, 3, sched_beat))
        return notsup(st, "sched_beat", err);
    int rc = me == NULL ? sked_err_set(err, SKED_EINVAL, "scheduler", 0, "no scheduler row")
                        : check_len(me->id, SKED_OWNER_MAX, "id", 0, err);
    if (rc == 0 && (me->beat_at == SKED_TIME_NONE || me->published_to == SKED_TIME_NONE))
        rc = sked_err_set(err, SKED_EINVAL, "beat_at", 0,
                          "a heartbeat needs its time and its watermark");
    return rc != 0 ? rc : st->ops->sched_beat(st, me, prune_before, out, n, err);
}

int sked_store_runs_in_doubt(sked_store *st, const char *owner, sked_walltime since,
                             sked_walltime marked_before, int limit, sked_claim *out,
                             sked_err *err)
{
    claim_out_empty(out);
    if (!HAS(st, 3, runs_in_doubt))
        return notsup(st, "runs_in_doubt", err);
    int rc = check_len(owner, SKED_OWNER_MAX, "owner", 0, err);
    if (rc == 0)
        rc = check_limit(limit, CLAIM_MAX_LIMIT, err);
    return rc != 0 ? rc : st->ops->runs_in_doubt(st, owner, since, marked_before, limit, out,
                                                           err);
}
