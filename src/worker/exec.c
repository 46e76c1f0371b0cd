/*
 * exec.c - the executor's thread, its job queue, cancel and lifecycle (see
 * exec.h).  The targets themselves are in exec_shell.c and exec_http.c.
 *
 * One thread waits on one epoll set that holds everything a run can wait
 * for: an eventfd that other threads kick after queueing a submission or a
 * cancel, the output pipe and the pidfd of every child, and libcurl's
 * sockets.  Deadlines (timeouts, kill grace, output drain) sit in a binary
 * heap ordered by (deadline, sequence); curl's single timer sits next to
 * it; the nearest of them is epoll_wait's timeout.  So hundreds of runs
 * cost file descriptors, not threads, and nothing polls on a fixed beat
 * (except the rare child whose pidfd could not be opened, see
 * exec_shell.c).
 *
 * Hand-over between threads is a mutex-guarded pending list (the thread
 * moves it to its backlog and starts runs for START_SLICE_US per iteration) plus
 * a registry of every run not yet ended, keyed by run_id (attempt in the
 * entry), so that sked_exec_cancel can answer ENOENT at once and a second
 * copy of an attempt that is still executing is refused.  Another attempt
 * of the same run is not a copy: it is accepted (the scheduler gave the
 * earlier one up, and refuses and stops it when its start is reported).
 * Callbacks are called without the mutex held, so they may submit or
 * cancel.
 *
 * A run that ends is unlinked at once but freed only at the end of the
 * loop iteration: later events of the same epoll_wait batch may still
 * point at its watches.
 *
 * Not here: spawning, signals and pipes (exec_shell.c), the pre-spawned
 * shells (exec_pool.c), libcurl and the address guard (exec_http.c).
 */
#include "worker/exec_internal.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define DEFAULT_MAX_OUTPUT (64 * 1024)
#define DEFAULT_GRACE_US (5 * SKED_USEC_PER_SEC)
#define MAX_EVENTS 128
#define POLL_US (20 * SKED_USEC_PER_MSEC) /* children without a pidfd */
/* Time spent starting runs per loop iteration.  A burst of thousands
 * (every task due at the top of the hour) takes ~0.6 ms per spawn, ~10 us
 * per pool shell; in slices, output, exits, deadlines and HTTP traffic of
 * running jobs are served in between. */
#define START_SLICE_US (2 * SKED_USEC_PER_MSEC)

/* ---- registry (mu) --------------------------------------------------- */

static size_t bucket_of(const char *run_id)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)run_id; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % EXEC_BUCKETS;
}

/* The first entry from r on (a bucket's list) of run_id's attempt, or of
 * any attempt when attempt is 0. */
static run *registry_find(run *r, const char *run_id, int attempt)
{
    for (; r; r = r->hnext)
        if (strcmp(r->job->run_id, run_id) == 0 && (attempt == 0 || r->job->attempt == attempt))
            return r;
    return NULL;
}

static void registry_remove(sked_exec *ex, run *r)
{
    run **pp = &ex->buckets[bucket_of(r->job->run_id)];
    while (*pp != r)
        pp = &(*pp)->hnext;
    *pp = r->hnext;
    ex->nlive--;
}

/* ---- a run's end ----------------------------------------------------- */

static void live_unlink(sked_exec *ex, run *r)
{
    if (r->lprev == NULL && ex->live != r)
        return; /* never started */
    if (r->lprev)
        r->lprev->lnext = r->lnext;
    else
        ex->live = r->lnext;
    if (r->lnext)
        r->lnext->lprev = r->lprev;
    r->lprev = r->lnext = NULL;
}

static void live_link(sked_exec *ex, run *r)
{
    r->lprev = NULL;
    r->lnext = ex->live;
    if (ex->live)
        ex->live->lprev = r;
    ex->live = r;
}

/* End r: report it through done() and queue it for freeing.  The target
 * code has released its own resources (fds, child, easy handle) and set
 * res.error where it has something to say. */
void exec_finish(run *r, sked_job_outcome outcome)
{
    sked_exec *ex = r->ex;
    r->ended = 1;
    exec_heap_del(ex, r);
    live_unlink(ex, r);
    pthread_mutex_lock(&ex->mu);
    registry_remove(ex, r);
    pthread_mutex_unlock(&ex->mu);

    r->res.outcome = outcome;
    if (outcome == SKED_JOB_CANCELED && r->res.error[0] == '\0')
        snprintf(r->res.error, sizeof r->res.error, "canceled");
    if (outcome == SKED_JOB_SUCCEEDED)
        r->res.error[0] = '\0';
    r->res.finished_at = sked_clock_wall_now();
    r->res.output = tail_take(&r->out, &r->res.output_len);
    if (ex->done)
        ex->done(ex->ctx, r->job, &r->res);
    free(r->res.output);
    r->res.output = NULL;
    r->pnext = ex->dead;
    ex->dead = r;
}

static void free_dead(sked_exec *ex)
{
    while (ex->dead) {
        run *r = ex->dead;
        ex->dead = r->pnext;
        tail_free(&r->out);
        free(r);
    }
    while (ex->dead_watches) {
        watch *w = ex->dead_watches;
        ex->dead_watches = w->next_dead;
        free(w);
    }
}

/* ---- the thread ------------------------------------------------------ */

static void start_run(run *r)
{
    live_link(r->ex, r);
    r->started_mono = sked_clock_mono_now();
    if (r->job->kind == SKED_JOB_SHELL)
        shell_start(r);
    else
        http_start(r);
}

static void cancel_run(run *r)
{
    r->canceled = 1;
    if (r->job->kind == SKED_JOB_SHELL)
        shell_cancel(r);
    else
        http_cancel(r);
}

/* The eventfd fired: move the submissions to the backlog, apply cancels,
 * notice a stop.  Flags are read under the mutex; the work (signals,
 * callbacks) is done after releasing it, because done() may call
 * sked_exec_submit. */
static void on_wake(sked_exec *ex)
{
    uint64_t v;
    while (read(ex->wake.fd, &v, sizeof v) < 0 && errno == EINTR)
        ;
    pthread_mutex_lock(&ex->mu);
    if (ex->pend_head) {
        if (ex->back_tail)
            ex->back_tail->pnext = ex->pend_head;
        else
            ex->back_head = ex->pend_head;
        ex->back_tail = ex->pend_tail;
        ex->pend_head = ex->pend_tail = NULL;
    }
    int stop = ex->stopping && !ex->stop_seen;
    if (stop)
        ex->stop_seen = 1;
    /* mark (under mu) which live runs to cancel; act below */
    if (ex->ncancel > 0 || stop) {
        for (run *r = ex->live; r; r = r->lnext)
            if (!r->canceled && (r->cancel_req || stop))
                r->canceled = -1; /* to apply */
        ex->ncancel = 0;
    }
    pthread_mutex_unlock(&ex->mu);

    for (run *r = ex->live, *next; r; r = next) {
        next = r->lnext; /* cancel_run may end r */
        if (r->canceled == -1)
            cancel_run(r);
    }
}

/* Start runs of the backlog, in submission order, for up to START_SLICE_US
 * (at least one).  A run canceled (or caught by a stop) before its turn
 * ends without starting.  Runs that pool shells take are released
 * together at the end (pool_release). */
static void start_backlog(sked_exec *ex)
{
    sked_monotime until = sked_clock_mono_now() + START_SLICE_US;
    for (;;) {
        pthread_mutex_lock(&ex->mu);
        run *r = ex->back_head;
        if (r) {
            ex->back_head = r->pnext;
            if (ex->back_head == NULL)
                ex->back_tail = NULL;
            r->pnext = NULL;
            r->canceled = r->cancel_req || ex->stopping;
        }
        pthread_mutex_unlock(&ex->mu);
        if (r == NULL)
            break;
        if (r->canceled)
            exec_finish(r, SKED_JOB_CANCELED); /* never started */
        else
            start_run(r);
        if (sked_clock_mono_now() >= until)
            break;
    }
    pool_release(ex);
}

static int epoll_timeout_ms(sked_exec *ex)
{
    sked_monotime next = ex->curl_deadline;
    if (ex->heap_len > 0 && ex->heap[0]->deadline < next)
        next = ex->heap[0]->deadline;
    sked_monotime now = sked_clock_mono_now();
    if (ex->npolled > 0 && now + POLL_US < next)
        next = now + POLL_US;
    if (ex->back_head)
        return 0;
    if (next == NO_DEADLINE)
        return -1;
    if (next <= now)
        return 0;
    int64_t ms = (next - now + 999) / 1000; /* round up: never spin early */
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

static void run_deadlines(sked_exec *ex)
{
    sked_monotime now = sked_clock_mono_now();
    /* Popping one at a time is safe: acting on a deadline only sets a
     * later one on the same run, never a due one on another. */
    while (ex->heap_len > 0 && ex->heap[0]->deadline <= now) {
        run *r = ex->heap[0];
        exec_heap_del(ex, r);
        shell_on_deadline(r);
    }
    if (ex->curl_deadline <= now)
        http_on_timer(ex);
}

static int should_exit(sked_exec *ex)
{
    pthread_mutex_lock(&ex->mu);
    int done = ex->stop_seen && ex->nlive == 0; /* counts pend, backlog */
    pthread_mutex_unlock(&ex->mu);
    return done;
}

static void *exec_thread(void *arg)
{
    sked_exec *ex = arg;
    struct epoll_event evs[MAX_EVENTS];
    /* Writing a job to a pool shell that has died raises SIGPIPE: it must
     * not end the process (exec_pool.c takes it off the pending set). */
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);
    for (;;) {
        int n = epoll_wait(ex->epfd, evs, MAX_EVENTS, epoll_timeout_ms(ex));
        for (int i = 0; i < n; i++) {
            watch *w = evs[i].data.ptr;
            if (w->fd < 0)
                continue; /* closed earlier in this batch */
            switch (w->kind) {
            case W_WAKE:
                on_wake(ex);
                break;
            case W_PIPE:
                if (!w->run->ended)
                    shell_on_pipe(w->run);
                break;
            case W_PIDFD:
                if (!w->run->ended)
                    shell_on_exit(w->run);
                break;
            case W_CURL:
                http_on_socket(ex, w, evs[i].events);
                break;
            }
        }
        start_backlog(ex);
        run_deadlines(ex);
        if (ex->npolled > 0)
            shell_poll_exits(ex);
        free_dead(ex);
        if (ex->stop_seen && should_exit(ex))
            break;
    }
    return NULL;
}

static void wake(sked_exec *ex)
{
    uint64_t one = 1;
    /* Can only fail on counter overflow (2^64 kicks unread): ignore. */
    ssize_t rc = write(ex->wake.fd, &one, sizeof one);
    (void)rc;
}

/* ---- the API --------------------------------------------------------- */

int sked_exec_new(const sked_exec_config *cfg, sked_exec **out,
                  sked_err *err)
{
    *out = NULL;
    if (cfg == NULL || cfg->done == NULL)
        return sked_err_set(err, SKED_EINVAL, "done", 0,
                            "executor needs a done callback");
    sked_exec *ex = exec_xzalloc(sizeof *ex);
    ex->max_output = cfg->max_output ? cfg->max_output : DEFAULT_MAX_OUTPUT;
    ex->kill_grace_us = cfg->kill_grace_us > 0 ? cfg->kill_grace_us
                                               : DEFAULT_GRACE_US;
    ex->started = cfg->started;
    ex->done = cfg->done;
    ex->ctx = cfg->ctx;
    ex->epfd = -1;
    ex->wake.kind = W_WAKE;
    ex->wake.fd = -1;
    ex->curl_deadline = NO_DEADLINE;
    pthread_mutex_init(&ex->mu, NULL);
    int rc;

    if ((rc = http_init(ex, cfg->http_deny, cfg->http_allow, cfg->slots, err)) < 0)
        goto fail;
    ex->epfd = epoll_create1(EPOLL_CLOEXEC);
    ex->wake.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (ex->epfd < 0 || ex->wake.fd < 0) {
        rc = sked_err_set(err, SKED_EIO, NULL, 0, "executor: %s",
                          strerror(errno));
        goto fail;
    }
    if ((rc = exec_watch_add(ex, &ex->wake, EPOLLIN)) < 0) {
        rc = sked_err_set(err, SKED_EIO, NULL, 0, "executor: epoll: %s",
                          strerror(-rc));
        goto fail;
    }
    if ((rc = pool_init(ex, cfg->shell_pool, cfg->slots, err)) < 0)
        goto fail;
    if ((rc = pthread_create(&ex->thread, NULL, exec_thread, ex)) != 0) {
        rc = sked_err_set(err, SKED_EAGAIN, NULL, 0,
                          "executor: cannot start thread: %s", strerror(rc));
        goto fail;
    }
    *out = ex;
    return 0;

fail:
    pool_deinit(ex);
    if (ex->wake.fd >= 0)
        close(ex->wake.fd);
    if (ex->epfd >= 0)
        close(ex->epfd);
    http_deinit(ex);
    pthread_mutex_destroy(&ex->mu);
    free(ex);
    return rc;
}

static int submit(sked_exec *ex, sked_job *job, int now, sked_err *err)
{
    if (job == NULL)
        return sked_err_set(err, SKED_EINVAL, "job", 0, "no job");
    size_t idlen = strnlen(job->run_id, sizeof job->run_id);
    if (idlen == 0 || idlen == sizeof job->run_id)
        return sked_err_set(err, SKED_EINVAL, "run_id", 0,
                            "job needs a run_id of 1-%zu bytes",
                            sizeof job->run_id - 1);
    if (strnlen(job->task_id, sizeof job->task_id) == sizeof job->task_id)
        return sked_err_set(err, SKED_EINVAL, "task_id", 0,
                            "task_id is not terminated");
    if (job->kind == SKED_JOB_SHELL && job->command == NULL)
        return sked_err_set(err, SKED_EINVAL, "command", 0,
                            "shell job without a command");
    if (job->kind == SKED_JOB_HTTP && job->url == NULL)
        return sked_err_set(err, SKED_EINVAL, "url", 0,
                            "http job without a url");
    if (job->kind != SKED_JOB_SHELL && job->kind != SKED_JOB_HTTP)
        return sked_err_set(err, SKED_EINVAL, "kind", 0, "unknown job kind");

    run *r = exec_xzalloc(sizeof *r);
    r->ex = ex;
    r->job = job;
    r->heap_idx = SIZE_MAX;
    r->pipe_w = (watch){.kind = W_PIPE, .fd = -1, .run = r};
    r->pidfd_w = (watch){.kind = W_PIDFD, .fd = -1, .run = r};
    r->res.exit_code = -1;
    r->out.max = ex->max_output;

    size_t b = bucket_of(job->run_id);
    pthread_mutex_lock(&ex->mu);
    int rc = 0;
    if (ex->stopping)
        rc = sked_err_set(err, SKED_EUNAVAIL, NULL, 0,
                          "executor is shutting down");
    else if (registry_find(ex->buckets[b], job->run_id, job->attempt))
        rc = sked_err_set(err, SKED_EEXIST, "run_id", 0,
                          "run %s attempt %d is already executing", job->run_id,
                          job->attempt);
    if (rc == 0) {
        r->hnext = ex->buckets[b];
        ex->buckets[b] = r;
        ex->nlive++;
        if (ex->pend_tail)
            ex->pend_tail->pnext = r;
        else
            ex->pend_head = r;
        ex->pend_tail = r;
    }
    pthread_mutex_unlock(&ex->mu);
    if (rc < 0) {
        free(r);
        return rc;
    }
    if (now)
        wake(ex);
    return 0;
}

int sked_exec_submit(sked_exec *ex, sked_job *job, sked_err *err)
{
    return submit(ex, job, 1, err);
}

int sked_exec_submit_held(sked_exec *ex, sked_job *job, sked_err *err)
{
    return submit(ex, job, 0, err);
}

void sked_exec_kick(sked_exec *ex)
{
    wake(ex);
}

int sked_exec_cancel(sked_exec *ex, const char *run_id, int attempt)
{
    if (run_id == NULL)
        return SKED_ENOENT;
    int found = 0;
    pthread_mutex_lock(&ex->mu);
    run *r = ex->buckets[bucket_of(run_id)];
    for (; (r = registry_find(r, run_id, attempt)) != NULL; r = r->hnext) {
        found = 1;
        if (!r->cancel_req) {
            r->cancel_req = 1;
            ex->ncancel++;
        }
    }
    pthread_mutex_unlock(&ex->mu);
    if (!found)
        return SKED_ENOENT;
    wake(ex);
    return 0;
}

int sked_exec_running(sked_exec *ex)
{
    pthread_mutex_lock(&ex->mu);
    int n = ex->nlive;
    pthread_mutex_unlock(&ex->mu);
    return n;
}

void sked_exec_free(sked_exec *ex)
{
    if (ex == NULL)
        return;
    pthread_mutex_lock(&ex->mu);
    ex->stopping = 1;
    pthread_mutex_unlock(&ex->mu);
    wake(ex);
    pthread_join(ex->thread, NULL);
    pool_deinit(ex); /* the idle shells: killed and reaped */
    http_deinit(ex); /* may still report sockets of idle connections */
    free_dead(ex);
    exec_watch_close(ex, &ex->wake);
    close(ex->epfd);
    free(ex->heap);
    pthread_mutex_destroy(&ex->mu);
    free(ex);
}

static void free_strv(char **v)
{
    if (v == NULL)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

void sked_job_free(sked_job *job)
{
    if (job == NULL)
        return;
    free(job->command);
    free_strv(job->env);
    free(job->cwd);
    free(job->url);
    free(job->method);
    free(job->body);
    free_strv(job->headers);
    free(job);
}
