/*
 * worker.c - the worker role: queue consumers, executor, events.
 *
 * One consumer thread per queue name takes deliveries while a slot is
 * free and hands each job to the executor.  The executor's callbacks only
 * put the started and finished events into the outbox (worker_outbox.c),
 * whose thread publishes them in batches and then acknowledges the
 * deliveries.  A heartbeat thread reports the worker and its running runs
 * every few seconds, which keeps their leases alive in the store.
 */
#include "worker/worker_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "core/log.h"
#include "core/version.h"
#include "model/run.h"
#include "sched/sched.h"
#include "time/duration.h"

/* --- job messages ------------------------------------------------------------ */

static char *dup_str(json_t *v)
{
    const char *s = json_string_value(v);
    return s ? strdup(s) : NULL;
}

/* {"K":"V",...} -> NULL-terminated "K<sep>V" list. */
static char **pairs(json_t *obj, const char *sep)
{
    size_t n = json_object_size(obj), i = 0;
    if (!json_is_object(obj) || n == 0)
        return NULL;
    char **out = calloc(n + 1, sizeof *out);
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        const char *s = json_string_value(v);
        size_t len = strlen(k) + strlen(sep) + (s ? strlen(s) : 0) + 1;
        out[i] = malloc(len);
        snprintf(out[i++], len, "%s%s%s", k, sep, s ? s : "");
    }
    return out;
}

int sked_job_decode(const char *text, size_t len, sked_job **out, sked_err *err)
{
    json_error_t je;
    json_t *m = json_loadb(text, len, 0, &je);
    if (m == NULL)
        return sked_err_set(err, SKED_EINVAL, NULL, 0, "job message: %s", je.text);
    json_t *t = json_object_get(json_object_get(m, "spec"), "target");
    const char *run = json_string_value(json_object_get(m, "run_id"));
    const char *task = json_string_value(json_object_get(m, "task_id"));
    const char *type = json_string_value(json_object_get(t, "type"));
    if (!run || !task || !type) {
        json_decref(m);
        return sked_err_set(err, SKED_EINVAL, NULL, 0, "job message: run_id, task_id or target missing");
    }
    sked_job *j = calloc(1, sizeof *j);
    snprintf(j->run_id, sizeof j->run_id, "%s", run);
    snprintf(j->task_id, sizeof j->task_id, "%s", task);
    j->attempt = (int)json_integer_value(json_object_get(m, "attempt"));
    j->scheduled_at = json_integer_value(json_object_get(m, "scheduled_at"));
    json_t *da = json_object_get(m, "dispatched_at");
    j->dispatched_at = json_is_integer(da) ? json_integer_value(da) : SKED_TIME_NONE;
    const char *to = json_string_value(json_object_get(t, "timeout"));
    j->timeout_us = 3600 * SKED_USEC_PER_SEC;
    if (to)
        sked_duration_parse(to, strlen(to), &j->timeout_us, NULL);
    if (strcmp(type, "shell") == 0) {
        j->kind = SKED_JOB_SHELL;
        j->command = dup_str(json_object_get(t, "command"));
        j->cwd = dup_str(json_object_get(t, "cwd"));
        j->env = pairs(json_object_get(t, "env"), "=");
    } else {
        j->kind = SKED_JOB_HTTP;
        j->url = dup_str(json_object_get(t, "url"));
        j->method = dup_str(json_object_get(t, "method"));
        j->body = dup_str(json_object_get(t, "body"));
        j->headers = pairs(json_object_get(t, "headers"), ": ");
        const char *ex = json_string_value(json_object_get(t, "expect"));
        j->expect_lo = 200, j->expect_hi = 299;
        int a, b;
        if (ex && strlen(ex) == 3 && ex[1] == 'x')
            j->expect_lo = (ex[0] - '0') * 100, j->expect_hi = j->expect_lo + 99;
        else if (ex && sscanf(ex, "%d-%d", &a, &b) == 2)
            j->expect_lo = a, j->expect_hi = b;
        else if (ex && sscanf(ex, "%d", &a) == 1)
            j->expect_lo = j->expect_hi = a;
    }
    json_decref(m);
    if ((j->kind == SKED_JOB_SHELL && !j->command) || (j->kind == SKED_JOB_HTTP && !j->url)) {
        sked_job_free(j);
        return sked_err_set(err, SKED_EINVAL, NULL, 0, "job message: no command or url");
    }
    *out = j;
    return 0;
}

/* --- threads ------------------------------------------------------------------- */

/* Does this worker run job's attempt now? */
static int runs_here_locked(const sked_worker *w, const sked_job *job)
{
    for (const running *r = w->runs; r; r = r->next)
        if (strcmp(r->run_id, job->run_id) == 0 && r->attempt == job->attempt)
            return 1;
    return 0;
}

static int runs_here(sked_worker *w, const sked_job *job)
{
    pthread_mutex_lock(&w->mu);
    int found = runs_here_locked(w, job);
    pthread_mutex_unlock(&w->mu);
    return found;
}

/* Hand job (of delivery job->user) to the executor: held (see
 * sked_exec_submit_held) or at once.  Returns 1 if it was handed over;
 * else it is settled and freed. */
static int start_job(sked_worker *w, sked_job *job, int held)
{
    sked_err err = {0};
    running *r = calloc(1, sizeof *r);
    if (r == NULL)
        abort();
    snprintf(r->run_id, sizeof r->run_id, "%.36s", job->run_id);
    r->attempt = job->attempt;
    pthread_mutex_lock(&w->mu);
    w->busy++;
    r->next = w->runs;
    w->runs = r;
    pthread_mutex_unlock(&w->mu);
    int rc = held ? sked_exec_submit_held(w->exec, job, &err) : sked_exec_submit(w->exec, job, &err);
    if (rc == 0)
        return 1;
    sked_log(SKED_LOG_ERROR, "cannot start run", "run", job->run_id, "error", err.msg, NULL);
    sked_worker_slot_free(w, job);
    if (rc == SKED_EEXIST) {
        /* the same attempt already runs here: a duplicate delivery */
        sked_worker_settle_job(w, job->user, NULL);
        sked_job_free(job);
    } else {
        sked_worker_return_job(w, job, 0); /* another worker's, then */
    }
    return 0;
}

void sked_worker_slot_free(sked_worker *w, const sked_job *job)
{
    running *gone = NULL;
    pthread_mutex_lock(&w->mu);
    /* the newest entry of its run and attempt: two are there only while a
     * duplicate delivery is refused, and they are alike */
    for (running **pp = &w->runs; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->run_id, job->run_id) == 0 && (*pp)->attempt == job->attempt) {
            gone = *pp;
            *pp = gone->next;
            break;
        }
    w->busy--;
    /* nobody else waits on it: no wake-up per finished run */
    if (w->room_waiters > 0 || w->stop)
        pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
    free(gone);
}

void sked_worker_start_pending(sked_worker *w)
{
    /* as many as there are free slots: a job that cannot start frees its
     * slot again, and the next one must not wait for another run's end */
    for (;;) {
        pthread_mutex_lock(&w->mu);
        pending_job *p = NULL;
        if (!w->stop && w->busy < w->cfg.slots && (p = w->pend_head) != NULL) {
            w->pend_head = p->next;
            if (w->pend_head == NULL)
                w->pend_tail = NULL;
            w->npend--;
        }
        pthread_mutex_unlock(&w->mu);
        if (p == NULL)
            return;
        start_job(w, p->job, 0);
        free(p);
    }
}

/* One job of delivery ref (text[0..len), one line of it): handed to the
 * executor, held, or left waiting for a slot (a message with more jobs
 * than free slots), or reported back, or dropped.  Returns 1 if it was
 * handed over. */
static int take_job(qthread *q, slot_ref *ref, const char *text, size_t len, int redelivered)
{
    sked_worker *w = q->w;
    sked_err err = {0};
    sked_job *job;
    if (sked_job_decode(text, len, &job, &err) < 0) {
        sked_log(SKED_LOG_ERROR, "bad job message dropped", "queue", q->name, "error", err.msg, NULL);
        return 0;
    }
    job->user = ref;
    pthread_mutex_lock(&w->mu);
    ref->left++;
    pthread_mutex_unlock(&w->mu);
    if (redelivered && !runs_here(w, job)) {
        /* it was delivered before, to a worker that is gone (or cut
         * off): not ours to run again silently — the scheduler charges
         * it an attempt, or publishes it again if it never started */
        sked_log(SKED_LOG_WARN, "job came back from the queue; reported, not run",
                 "run", job->run_id, "task", job->task_id, NULL);
        sked_worker_return_job(w, job, 0);
        return 0;
    }
    pthread_mutex_lock(&w->mu);
    int full = w->busy >= w->cfg.slots;
    if (full) {
        pending_job *p = calloc(1, sizeof *p);
        if (p == NULL)
            abort();
        p->job = job;
        p->fresh = !redelivered && !runs_here_locked(w, job);
        if (w->pend_tail)
            w->pend_tail->next = p;
        else
            w->pend_head = p;
        w->pend_tail = p;
        w->npend++;
    }
    pthread_mutex_unlock(&w->mu);
    return full ? 0 : start_job(w, job, 1);
}

/* Take delivery d: a message of one or more jobs, one per line (a
 * scheduler packs the runs of one batch for one queue, sched_publish.c).
 * It is settled once every job of it is (slot_ref): this function holds
 * one count of it until every line is taken, so that a job that ends at
 * once cannot settle it early.  Returns how many jobs were handed over. */
static int take_delivery(qthread *q, sked_delivery *d)
{
    slot_ref *ref = calloc(1, sizeof *ref);
    if (ref == NULL)
        abort();
    ref->consumer = q->consumer;
    ref->tag = d->tag;
    ref->left = 1;
    int held = 0;
    const char *p = d->body, *end = d->body + d->len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        if (line_end > p)
            held += take_job(q, ref, p, (size_t)(line_end - p), d->redelivered);
        p = line_end + 1;
    }
    sked_worker_settle_job(q->w, ref, NULL);
    sked_delivery_deinit(d);
    return held;
}

/* Wait for a delivery while a slot is free, then take every delivery that
 * is already there too, while slots stay free (the other queues' consumers
 * take them too), before the executor is kicked: a dispatch batch starts
 * in one pass (measured: a second's 100 runs used to reach the executor in
 * two or three pieces, and the shells of the first took the CPU from the
 * rest). */
static void *consume_main(void *arg)
{
    qthread *q = arg;
    sked_worker *w = q->w;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        while (!w->stop && w->busy + w->npend >= w->cfg.slots) {
            w->room_waiters++;
            pthread_cond_wait(&w->cond, &w->mu);
            w->room_waiters--;
        }
        int stop = w->stop;
        pthread_mutex_unlock(&w->mu);
        if (stop)
            break;
        int held = 0;
        for (int64_t timeout = -1;; timeout = 0) { /* only the first waits */
            pthread_mutex_lock(&w->mu);
            int room = w->busy + w->npend < w->cfg.slots;
            pthread_mutex_unlock(&w->mu);
            sked_delivery d;
            sked_err err = {0};
            if (!room || sked_queue_consumer_next(q->consumer, timeout, &d, &err) < 0)
                break;
            held += take_delivery(q, &d);
        }
        if (held > 0)
            sked_exec_kick(w->exec);
    }
    return NULL;
}

static void inbox_name(const char *worker_id, char *buf, size_t cap)
{
    /* a queue name is at most SKED_QUEUE_NAME_MAX bytes: long ids are cut */
    snprintf(buf, cap, SKED_QUEUE_INBOX_PREFIX "%.*s",
             (int)(SKED_QUEUE_NAME_MAX - strlen(SKED_QUEUE_INBOX_PREFIX)), worker_id);
}

int sked_worker_send_cancel(sked_queue *q, const char *worker_id, const char *run_id,
                            int attempt, sked_err *err)
{
    char name[SKED_QUEUE_NAME_MAX + 1];
    inbox_name(worker_id, name, sizeof name);
    sked_event e = {.type = SKED_EVENT_CANCEL, .attempt = attempt, .at = sked_clock_wall_now()};
    snprintf(e.run_id, sizeof e.run_id, "%.36s", run_id);
    snprintf(e.worker, sizeof e.worker, "%s", worker_id);
    size_t len;
    char *text = sked_event_encode(&e, &len);
    if (text == NULL)
        return sked_err_set(err, SKED_ENOMEM, NULL, 0, "out of memory");
    int rc = sked_queue_publish(q, name, text, len, err);
    free(text);
    return rc;
}

/* Orders to this worker: cancel a run it runs (another process canceled
 * it through the API, or its start was refused). */
static void *inbox_main(void *arg)
{
    sked_worker *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        int stop = w->stop;
        pthread_mutex_unlock(&w->mu);
        if (stop)
            break;
        sked_delivery d;
        sked_err err = {0};
        if (sked_queue_consumer_next(w->inbox, -1, &d, &err) < 0)
            continue;
        sked_event e;
        if (sked_event_decode(d.body, d.len, &e, &err) == 0 && e.type == SKED_EVENT_CANCEL) {
            int rc = sked_exec_cancel(w->exec, e.run_id, e.attempt);
            sked_log(rc == 0 ? SKED_LOG_INFO : SKED_LOG_DEBUG,
                     rc == 0 ? "run canceled by order" : "cancel order for a run not here",
                     "run", e.run_id, NULL);
            sked_event_deinit(&e);
        } else {
            sked_log(SKED_LOG_WARN, "bad order dropped", "error", err.msg, NULL);
        }
        sked_queue_ack(w->inbox, d.tag, &err);
        sked_delivery_deinit(&d);
    }
    return NULL;
}

static void heartbeat(sked_worker *w)
{
    sked_event e = {.type = SKED_EVENT_HEARTBEAT, .at = sked_clock_wall_now(),
                    .slots = w->cfg.slots, .queues = w->queues_json};
    snprintf(e.worker, sizeof e.worker, "%s", w->id);
    snprintf(e.host, sizeof e.host, "%s", w->host);
    pthread_mutex_lock(&w->mu);
    e.busy = w->busy;
    size_t n = 0;
    for (running *r = w->runs; r; r = r->next)
        n++;
    e.runs = calloc(n ? n : 1, sizeof *e.runs);
    e.run_attempts = calloc(n ? n : 1, sizeof *e.run_attempts);
    for (running *r = w->runs; r; r = r->next, e.nruns++) {
        snprintf(e.runs[e.nruns], sizeof e.runs[e.nruns], "%s", r->run_id);
        e.run_attempts[e.nruns] = r->attempt;
    }
    pthread_mutex_unlock(&w->mu);
    sked_worker_publish_event(w, &e);
    free(e.runs);
    free(e.run_attempts);
}

static void *heartbeat_main(void *arg)
{
    sked_worker *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        pthread_mutex_unlock(&w->mu);
        heartbeat(w);
        pthread_mutex_lock(&w->mu);
        sked_walltime until = sked_clock_wall_now() + w->cfg.heartbeat_us;
        struct timespec ts = sked_clock_timespec(until);
        while (!w->stop && sked_clock_wall_now() < until)
            pthread_cond_timedwait(&w->hb_cond, &w->mu, &ts);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* --- lifecycle ------------------------------------------------------------------- */

int sked_worker_start(const sked_worker_config *cfg, sked_worker **out, sked_err *err)
{
    static const char *const default_queues[] = {"default", NULL};
    sked_worker *w = calloc(1, sizeof *w);
    w->cfg = *cfg;
    if (!w->cfg.queues) w->cfg.queues = default_queues;
    if (!w->cfg.slots) w->cfg.slots = 100;
    if (!w->cfg.heartbeat_us) w->cfg.heartbeat_us = 5 * SKED_USEC_PER_SEC;
    if (!w->cfg.drain_us) w->cfg.drain_us = 10 * SKED_USEC_PER_SEC;
    gethostname(w->host, sizeof w->host - 1);
    if (cfg->id)
        snprintf(w->id, sizeof w->id, "%s", cfg->id);
    else
        snprintf(w->id, sizeof w->id, "%.100s/%d", w->host, (int)getpid());
    json_t *qa = json_array();
    for (int i = 0; w->cfg.queues[i]; i++, w->nq++)
        json_array_append_new(qa, json_string(w->cfg.queues[i]));
    w->queues_json = json_dumps(qa, JSON_COMPACT);
    json_decref(qa);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cond, NULL);
    pthread_cond_init(&w->hb_cond, NULL);
    pthread_cond_init(&w->out_cond, NULL);
    pthread_create(&w->out, NULL, sked_worker_outbox_main, w);
    sked_exec_config ec = {.max_output = cfg->max_output, .http_deny = cfg->http_deny,
                           .http_allow = cfg->http_allow, .shell_pool = cfg->shell_pool,
                           .slots = w->cfg.slots, .started = sked_worker_on_started,
                           .done = sked_worker_on_done, .ctx = w};
    if (sked_exec_new(&ec, &w->exec, err) < 0)
        goto fail;
    sked_shell_pool_stats ps;
    sked_exec_pool_stats(w->exec, &ps);
    char pool_size[16];
    snprintf(pool_size, sizeof pool_size, "%d", ps.size);
    sked_log(SKED_LOG_INFO, ps.size ? "shell pool started" : "shell pool off",
             "size", pool_size, NULL);
    w->qs = calloc((size_t)w->nq, sizeof *w->qs);
    for (int i = 0; i < w->nq; i++) {
        qthread *q = &w->qs[i];
        q->w = w;
        snprintf(q->name, sizeof q->name, "%s", w->cfg.queues[i]);
        if (sked_queue_consumer_open(cfg->queue, q->name, w->cfg.slots, &q->consumer, err) < 0) {
            w->nq = i;
            sked_worker_stop(w);
            return err ? err->code : SKED_EINTERNAL;
        }
        pthread_create(&q->th, NULL, consume_main, q);
    }
    char inbox[SKED_QUEUE_NAME_MAX + 1];
    inbox_name(w->id, inbox, sizeof inbox);
    if (sked_queue_consumer_open(cfg->queue, inbox, 64, &w->inbox, err) < 0) {
        sked_worker_stop(w);
        return err ? err->code : SKED_EINTERNAL;
    }
    pthread_create(&w->inbox_th, NULL, inbox_main, w);
    pthread_create(&w->hb, NULL, heartbeat_main, w);
    *out = w;
    return 0;
fail:
    pthread_mutex_lock(&w->mu);
    w->out_stop = 1;
    pthread_cond_signal(&w->out_cond);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->out, NULL);
    pthread_cond_destroy(&w->out_cond);
    free(w->queues_json);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cond);
    pthread_cond_destroy(&w->hb_cond);
    free(w);
    return err ? err->code : SKED_EINTERNAL;
}

int sked_worker_cancel(sked_worker *w, const char *run_id)
{
    return w ? sked_exec_cancel(w->exec, run_id, 0) : SKED_ENOENT;
}

int sked_worker_busy(sked_worker *w)
{
    pthread_mutex_lock(&w->mu);
    int b = w->busy;
    pthread_mutex_unlock(&w->mu);
    return b;
}

int sked_worker_slots(sked_worker *w) { return w->cfg.slots; }

int sked_worker_shell_pool_idle(sked_worker *w)
{
    sked_shell_pool_stats ps;
    sked_exec_pool_stats(w->exec, &ps);
    return ps.idle;
}

void sked_worker_stop(sked_worker *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_broadcast(&w->cond);
    pthread_cond_broadcast(&w->hb_cond);
    pthread_mutex_unlock(&w->mu);
    for (int i = 0; i < w->nq; i++)
        sked_queue_consumer_wake(w->qs[i].consumer);
    for (int i = 0; i < w->nq; i++)
        pthread_join(w->qs[i].th, NULL);
    if (w->hb)
        pthread_join(w->hb, NULL);
    if (w->inbox_th) {
        sked_queue_consumer_wake(w->inbox);
        pthread_join(w->inbox_th, NULL);
    }
    /* Drain: runs that finish within the grace report as usual; what is
     * still running after it is killed and reported back (`returned`:
     * the scheduler cuts its lease, and the sweep charges the lost
     * attempt, retried per its policy). */
    sked_walltime until = sked_clock_wall_now() + w->cfg.drain_us;
    pthread_mutex_lock(&w->mu);
    while (w->busy > 0 && sked_clock_wall_now() < until) {
        struct timespec ts = sked_clock_timespec(until);
        pthread_cond_timedwait(&w->cond, &w->mu, &ts);
    }
    pthread_mutex_unlock(&w->mu);
    sked_exec_free(w->exec); /* kills what still runs */
    /* jobs that waited for a slot never started: reported back, as the
     * same attempt when this worker had their only delivery */
    pthread_mutex_lock(&w->mu);
    pending_job *pend = w->pend_head;
    w->pend_head = w->pend_tail = NULL;
    w->npend = 0;
    pthread_mutex_unlock(&w->mu);
    while (pend != NULL) {
        pending_job *next = pend->next;
        sked_log(SKED_LOG_INFO, "waiting job reported back at stop", "run", pend->job->run_id,
                 "task", pend->job->task_id, NULL);
        sked_worker_return_job(w, pend->job, pend->fresh);
        free(pend);
        pend = next;
    }
    /* what finished goes out and is acknowledged before the consumers
     * close (which would hand their deliveries back) */
    pthread_mutex_lock(&w->mu);
    w->out_stop = 1;
    pthread_cond_signal(&w->out_cond);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->out, NULL);
    for (int i = 0; i < w->nq; i++)
        sked_queue_consumer_close(w->qs[i].consumer);
    sked_queue_consumer_close(w->inbox);
    while (w->runs) {
        running *r = w->runs;
        w->runs = r->next;
        free(r);
    }
    free(w->qs);
    free(w->queues_json);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cond);
    pthread_cond_destroy(&w->hb_cond);
    pthread_cond_destroy(&w->out_cond);
    free(w);
}
