/*
 * worker_outbox.c - the worker's way back: started and finished events
 * from the executor's callbacks go into the outbox, and one thread
 * publishes whatever has gathered in one batch (several events to a
 * message, one round of publisher confirms on RabbitMQ, which the
 * executor thread must never wait for), then acknowledges the deliveries
 * whose finished event went out.
 */
#include "worker/worker_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/metrics.h"
#include "model/run.h"
#include "sched/sched.h"

void sked_worker_publish_event(sked_worker *w, const sked_event *e)
{
    size_t len;
    char *text = sked_event_encode(e, &len);
    sked_err err = {0};
    /* the events queue is the only way back: keep trying briefly */
    for (int i = 0; text && i < 50; i++) {
        if (sked_queue_publish(w->cfg.queue, SKED_EVENTS_QUEUE, text, len, &err) == 0)
            break;
        usleep(100000);
    }
    free(text);
}

/* A new item: e's text (a start's at flush), if any; nothing to settle
 * yet. */
static outbox_item *item_new(const sked_event *e)
{
    outbox_item *it = calloc(1, sizeof *it);
    if (it == NULL)
        abort();
    it->start_at = SKED_TIME_NONE;
    it->put_at = sked_clock_wall_now();
    if (e) {
        if (e->type == SKED_EVENT_STARTED)
            it->start_at = e->at;
        else
            it->text = sked_event_encode(e, &it->len);
        snprintf(it->run_id, sizeof it->run_id, "%s", e->run_id);
        it->run_attempt = e->attempt;
        it->finished_with_start = e->type == SKED_EVENT_FINISHED &&
                                  e->started_at != SKED_TIME_NONE;
    }
    return it;
}

/* Append it to the outbox (caller holds w->mu). */
static void append_locked(sked_worker *w, outbox_item *it)
{
    if (it->text != NULL) {
        /* its started event has not gone out yet: a finished one that
         * says when it started is sent alone (half the events under
         * load); before any other (a return) the start goes out at once,
         * held no longer.  Looked for from the newest back, where a
         * short run's start is. */
        for (outbox_item *o = w->out_tail; o; o = o->prev)
            if (o->start_at != SKED_TIME_NONE && o->run_attempt == it->run_attempt &&
                strcmp(o->run_id, it->run_id) == 0) {
                if (it->finished_with_start)
                    o->start_at = SKED_TIME_NONE;
                else
                    o->urgent = 1;
                break;
            }
    }
    it->prev = w->out_tail;
    if (w->out_tail)
        w->out_tail->next = it;
    else
        w->out_head = it;
    w->out_tail = it;
    pthread_cond_signal(&w->out_cond);
}

void sked_worker_outbox_put(sked_worker *w, const sked_event *e)
{
    outbox_item *it = item_new(e);
    pthread_mutex_lock(&w->mu);
    append_locked(w, it);
    pthread_mutex_unlock(&w->mu);
}

/* The count and the append under one hold: the settlement is queued
 * behind every event of the delivery's jobs, whichever thread settles
 * last (the executor's callbacks, a consumer thread's returned jobs). */
void sked_worker_settle_job(sked_worker *w, slot_ref *ref, const sked_event *e)
{
    outbox_item *it = item_new(e);
    pthread_mutex_lock(&w->mu);
    int last = --ref->left == 0;
    if (last) {
        it->consumer = ref->consumer;
        it->tag = ref->tag;
    }
    if (last || e)
        append_locked(w, it);
    else
        free(it);
    pthread_mutex_unlock(&w->mu);
    if (last)
        free(ref);
}

void sked_worker_return_job(sked_worker *w, sked_job *job, int unstarted)
{
    sked_event e = {.type = SKED_EVENT_RETURNED, .attempt = job->attempt,
                    .at = sked_clock_wall_now(), .unstarted = unstarted,
                    .dispatched_at = job->dispatched_at};
    snprintf(e.run_id, sizeof e.run_id, "%.36s", job->run_id);
    snprintf(e.worker, sizeof e.worker, "%s", w->id);
    sked_worker_settle_job(w, job->user, &e);
    sked_job_free(job);
}

/* Events gathered in one flush go out several to a message, one event per
 * line (the events thread splits them, sched_events.c): a run then costs
 * the broker a share of its job message and of one event message. */
#define PACK_EVENTS 256
#define PACK_BYTES (256 * 1024)

/* Pack the items' texts into messages (bodies malloc'ed); their number.
 * The starts still there are encoded now (worker w's). */
static size_t outbox_pack(const sked_worker *w, outbox_item *items, sked_message *m)
{
    size_t nm = 0, count = 0, starts = 0;
    char *body = NULL;
    size_t len = 0;
    for (outbox_item *it = items; it; it = it->next) {
        if (it->start_at != SKED_TIME_NONE) {
            starts++;
            sked_event e = {.type = SKED_EVENT_STARTED, .attempt = it->run_attempt,
                            .at = it->start_at};
            snprintf(e.run_id, sizeof e.run_id, "%s", it->run_id);
            snprintf(e.worker, sizeof e.worker, "%s", w->id);
            it->text = sked_event_encode(&e, &it->len);
        }
        if (it->text == NULL)
            continue;
        if (body && (count == PACK_EVENTS || len + 1 + it->len > PACK_BYTES)) {
            m[nm++] = (sked_message){.queue = SKED_EVENTS_QUEUE, .body = body, .len = len};
            body = NULL;
        }
        if (body == NULL)
            len = count = 0;
        char *grown = realloc(body, len + (len ? 1 : 0) + it->len + 1);
        if (grown == NULL)
            abort();
        body = grown;
        if (len)
            body[len++] = '\n';
        memcpy(body + len, it->text, it->len);
        len += it->len;
        count++;
    }
    if (starts > 0)
        sked_counter_add(sked_counter_get(sked_metrics_default(), "sked_worker_starts_sent_total",
                                          "Started events sent on their own, not carried by "
                                          "their run's finished event.",
                                          ""),
                         starts);
    if (body)
        m[nm++] = (sked_message){.queue = SKED_EVENTS_QUEUE, .body = body, .len = len};
    return nm;
}

/* Publish a gathered list of items, packed, retrying what failed for a few
 * seconds, then settle their deliveries in order. */
static void outbox_flush(sked_worker *w, outbox_item *items)
{
    size_t n = 0;
    for (outbox_item *it = items; it; it = it->next)
        n++;
    sked_message *m = calloc(n ? n : 1, sizeof *m);
    if (m == NULL)
        abort();
    size_t nm = outbox_pack(w, items, m), total = nm;
    sked_message *all = calloc(nm ? nm : 1, sizeof *all);
    if (all == NULL)
        abort();
    memcpy(all, m, nm * sizeof *m);
    sked_err err = {0};
    for (int round = 0; nm > 0 && round < 50; round++) {
        if (sked_queue_publish_batch(w->cfg.queue, m, nm, &err) == 0) {
            nm = 0;
            break;
        }
        size_t k = 0; /* keep the failed ones, in order */
        for (size_t i = 0; i < nm; i++)
            if (m[i].result != 0)
                m[k++] = m[i];
        nm = k;
        usleep(100000);
    }
    if (nm > 0)
        sked_log(SKED_LOG_ERROR, "events not published; their runs' leases will run out",
                 "error", err.msg, NULL);
    while (items) {
        outbox_item *it = items;
        items = it->next;
        if (it->consumer)
            sked_queue_ack(it->consumer, it->tag, &err);
        free(it->text);
        free(it);
    }
    for (size_t i = 0; i < total; i++)
        free((void *)all[i].body);
    free(all);
    free(m);
}

/* After the first event of a quiet spell the outbox waits this long for
 * the others: the runs of one instant start in a burst, and their events
 * go out together once it is over, instead of one message (and one store
 * write on the scheduler's side) per event while the burst still needs
 * the CPU. */
#define LINGER_US (5 * SKED_USEC_PER_MSEC)
/* A started event waits up to this long for its run's finished event,
 * which then carries the start: one event, and one store write on the
 * scheduler's side, for every run that ends by then (in a burst of HTTP
 * runs, most of them).  The run shows `dispatched` that much longer; the
 * start time it reports is the worker's, as before. */
#define HOLD_START_US (100 * SKED_USEC_PER_MSEC)

/* Under w->mu: take the outbox's items out but the starts still held
 * (none once stopping), which stay in order.  *until: when the first of
 * those is due to go (INT64_MAX: none held). */
static outbox_item *outbox_take_locked(sked_worker *w, sked_walltime *until)
{
    sked_walltime now = sked_clock_wall_now();
    outbox_item *take = NULL, *take_tail = NULL, *next;
    outbox_item *keep = NULL, *keep_tail = NULL;
    *until = INT64_MAX;
    for (outbox_item *it = w->out_head; it; it = next) {
        next = it->next;
        int hold = !w->out_stop && it->text == NULL && it->consumer == NULL &&
                   it->start_at != SKED_TIME_NONE && !it->urgent && now >= it->put_at &&
                   now - it->put_at < HOLD_START_US;
        outbox_item **head = hold ? &keep : &take, **tail = hold ? &keep_tail : &take_tail;
        it->prev = *tail;
        it->next = NULL;
        if (*tail)
            (*tail)->next = it;
        else
            *head = it;
        *tail = it;
        if (hold && it->put_at + HOLD_START_US < *until)
            *until = it->put_at + HOLD_START_US;
    }
    w->out_head = keep;
    w->out_tail = keep_tail;
    return take;
}

void *sked_worker_outbox_main(void *arg)
{
    sked_worker *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->out_head == NULL && !w->out_stop)
            pthread_cond_wait(&w->out_cond, &w->mu);
        if (!w->out_stop) {
            pthread_mutex_unlock(&w->mu);
            usleep(LINGER_US);
            pthread_mutex_lock(&w->mu);
        }
        sked_walltime until;
        outbox_item *items = outbox_take_locked(w, &until);
        if (items == NULL && w->out_stop)
            break;
        if (items == NULL) { /* only starts held: until one is due, or more come */
            struct timespec ts = sked_clock_timespec(until);
            pthread_cond_timedwait(&w->out_cond, &w->mu, &ts);
            continue;
        }
        pthread_mutex_unlock(&w->mu);
        outbox_flush(w, items);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

void sked_worker_on_started(void *ctx, sked_job *job, sked_walltime at)
{
    sked_worker *w = ctx;
    sked_event e = {.type = SKED_EVENT_STARTED, .attempt = job->attempt, .at = at};
    snprintf(e.run_id, sizeof e.run_id, "%.36s", job->run_id);
    sked_worker_outbox_put(w, &e); /* its worker is filled in at flush */
    sked_log(SKED_LOG_DEBUG, "run started", "run", job->run_id, "task", job->task_id, NULL);
}

void sked_worker_on_done(void *ctx, sked_job *job, const sked_job_result *res)
{
    sked_worker *w = ctx;
    sked_event e = {.type = SKED_EVENT_FINISHED, .attempt = job->attempt,
                    .at = res->finished_at, .outcome = res->outcome,
                    .started_at = res->started_at ? res->started_at : SKED_TIME_NONE,
                    .exit_code = res->exit_code >= 0 || res->term_signal == 0 ? res->exit_code : SKED_NO_CODE,
                    .http_status = res->http_status,
                    .error = res->error[0] ? (char *)res->error : NULL,
                    .output = res->output};
    if (job->kind == SKED_JOB_HTTP)
        e.exit_code = SKED_NO_CODE;
    snprintf(e.run_id, sizeof e.run_id, "%.36s", job->run_id);
    snprintf(e.worker, sizeof e.worker, "%s", w->id);
    pthread_mutex_lock(&w->mu);
    int stopping = w->stop;
    pthread_mutex_unlock(&w->mu);
    /* the slot is free; the broker's prefetch (= slots) still counts the
     * delivery until the outbox acknowledges it */
    sked_worker_slot_free(w, job);
    if (stopping && res->outcome == SKED_JOB_CANCELED) {
        /* killed because this worker stops, not because anyone canceled
         * the run: reported back, not finished - the scheduler cuts the
         * RUNNING run's lease and the sweep charges the lost attempt */
        sked_worker_return_job(w, job, 0);
    } else {
        sked_worker_settle_job(w, job->user, &e); /* job->user may be freed now */
        sked_job_free(job);
    }
    sked_worker_start_pending(w);
}
