/*
 * exec_pool.c - pre-spawned shells: a shell run starts with one write(2)
 * on the executor's thread instead of a posix_spawn (≈ 0.6 ms each, so
 * the 100th of 100 runs due at once used to start ≈ 60 ms late).
 *
 * Contract.  While the pool is on, a spawner thread keeps up to `size`
 * idle members: /bin/sh processes spawned by shell_spawn exactly like a
 * run (own process group, empty signal mask, default dispositions, stdin
 * /dev/null, stdout+stderr the write end of a fresh output pipe), with
 * the read end of a "job pipe" as fd 3, running `. /dev/fd/3`: blocked
 * reading their job.  A shell run starts in steps on the executor's
 * thread: pool_start takes an idle member for it, watches its output pipe
 * and builds its script (build_script); pool_release, once per batch of
 * starts, hands each script to its member (hand_over) and closes the job
 * pipe, then does the bookkeeping.  From then on
 * the member is that run's process - same pid, process group, output
 * pipe, pidfd, timeout, cancel and reaping as a spawned one
 * (shell_running).  The script sets the run's environment and directory
 * and ends in `exec /bin/sh -c COMMAND sh`, so the command runs in a
 * fresh shell just as if spawned directly; what can still be told apart
 * is listed in docs/architecture.md.
 *
 * Scheduling policy.  When sked itself runs under SCHED_OTHER, idle
 * members wait under SCHED_BATCH, whose wake-ups do not preempt the
 * running thread: the executor hands over a whole batch before the shells
 * it wakes take its CPU (measured: 100 hand-overs every second, the last
 * one started 20-50 ms late in a third to a half of the seconds before,
 * in about one second in eight after; the others within 4 ms).
 * hand_over puts a member back under SCHED_OTHER before it writes the
 * line that execs the command, so no command - nor anything it
 * forks - ever runs under SCHED_BATCH; only the member's own builtins
 * (cd, export) do.
 *
 * Invariants:
 *   - An idle member is in no list of runs: it is never counted, never
 *     canceled or signaled for a run, and holds no run's pipe (every fd
 *     of ours is O_CLOEXEC, and shell_spawn closes the rest in the child).
 *   - Only sked holds the write end of a member's job pipe, so when sked
 *     dies, however, the member reads EOF, runs an empty script and
 *     exits: no orphans.  pool_deinit kills and reaps the idle ones.
 *   - The executor thread never spawns a member.  It takes one, or, when
 *     none is idle (or the script is larger than SCRIPT_MAX or than the
 *     pipe holds), the run is spawned directly, as without the pool; a
 *     member found dead when its script is written is reaped and its run
 *     spawned directly too.
 *   - A member is signaled only while unreaped (its pid is its group's
 *     id), like a run.
 *
 * Not here: the direct spawn, signals and exits of runs (exec_shell.c).
 */
#include "worker/exec_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define DEFAULT_SLOTS 100
#define MAX_DEFAULT_SIZE 128
/* Larger scripts are spawned directly: a job pipe holds 64 KiB, or only
 * 4 KiB once the user is over pipe-user-pages-soft (cap is checked too). */
#define SCRIPT_MAX (32 * 1024)
#define REFILL_DELAY_US (20 * SKED_USEC_PER_MSEC)
#define BACKLOG_QUIET_US (100 * SKED_USEC_PER_MSEC)
#define BACKOFF_MIN_US (10 * SKED_USEC_PER_MSEC)
#define BACKOFF_MAX_US (1 * SKED_USEC_PER_SEC)

typedef struct member {
    pid_t pid;                 /* also its process group id               */
    int out_fd;                /* read end of its output pipe, O_NONBLOCK */
    int job_fd;                /* write end of its job pipe, O_NONBLOCK   */
    size_t cap;                /* bytes the job pipe holds                */
    run *run;                  /* pending: the run it is about to start,  */
    char *script;              /* its script, len bytes,                  */
    size_t len;
    size_t split;              /* script bytes before its exec line       */
    int batch;                 /* waits under SCHED_BATCH                 */
    int written;               /* handed over (pool_release)              */
    sked_walltime started_at;  /* then                                    */
    struct member *next;       /* in idle, or in pend                     */
} member;

typedef struct shell_pool {
    int size;                  /* idle members wanted                     */
    int batch;                 /* idle members wait under SCHED_BATCH     */
    pthread_t thread;          /* the spawner                             */
    pthread_mutex_t mu;
    pthread_cond_t cond;       /* waiting ended, or stop                  */
    member *idle;              /* (mu) newest first                       */
    int nidle;                 /* (mu)                                    */
    int waiting;               /* (mu) spawner asleep until a take        */
    int stop;                  /* (mu)                                    */
    uint64_t spawned, used, direct; /* (mu) for sked_exec_pool_stats     */
    sked_monotime last_direct; /* (mu) the last run spawned directly      */
    /* executor thread only */
    member *pend, **pend_tail; /* taken for a run, script not yet written */
    char script[SCRIPT_MAX];   /* the script being built                  */
} shell_pool;

/* ---- members (spawner thread, and pool_deinit) -------------------------- */

/* Move a child-bound fd above 3: shell_spawn dup2s onto 1, 2 and 3 in that
 * order, and must not overwrite one source with another. */
static int above_stdio(int fd)
{
    if (fd < 0 || fd > 3)
        return fd;
    int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 4);
    close(fd);
    return nfd;
}

static void close_fd(int fd)
{
    if (fd >= 0)
        close(fd);
}

/* A new idle member, or NULL (out of fds or processes). */
static member *member_spawn(const shell_pool *p)
{
    char *argv[] = {"sh", "-c", ". /dev/fd/3", NULL};
    int out[2] = {-1, -1}, job[2] = {-1, -1};
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(job, O_CLOEXEC) < 0)
        goto fail;
    out[1] = above_stdio(out[1]);
    job[0] = above_stdio(job[0]);
    if (out[1] < 0 || job[0] < 0)
        goto fail;
    pid_t pid;
    if (shell_spawn(&pid, argv, environ, NULL, out[1], job[0]) != 0)
        goto fail;
    close(out[1]);
    close(job[0]);
    /* Our ends only: the member's writes to its output must block. */
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    fcntl(job[1], F_SETFL, O_NONBLOCK);
    int cap = fcntl(job[1], F_GETPIPE_SZ);
    member *m = exec_xzalloc(sizeof *m);
    m->pid = pid;
    m->out_fd = out[0];
    m->job_fd = job[1];
    m->cap = cap > 0 ? (size_t)cap : 4096;
    /* Not through posix_spawn's attributes: a member that cannot be
     * switched is still a member, under SCHED_OTHER. */
    struct sched_param zero = {0};
    m->batch = p->batch && sched_setscheduler(pid, SCHED_BATCH, &zero) == 0;
    return m;

fail:
    for (int i = 0; i < 2; i++) {
        close_fd(out[i]);
        close_fd(job[i]);
    }
    return NULL;
}

/* Make m exit: SIGKILL to its group (still unreaped, so still its own),
 * and EOF on its job pipe for good measure.  Reap it with member_reap. */
static void member_kill(member *m)
{
    kill(-m->pid, SIGKILL);
    close_fd(m->job_fd);
    m->job_fd = -1;
}

static void member_reap(member *m)
{
    while (waitpid(m->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    close_fd(m->out_fd);
    close_fd(m->job_fd);
    free(m);
}

/* Wait until `us` have passed or stop, with mu held; other signals of
 * cond are ignored meanwhile. */
static void pause_for(shell_pool *p, int64_t us)
{
    struct timespec until = sked_clock_timespec(sked_clock_mono_now() + us);
    while (!p->stop &&
           pthread_cond_timedwait(&p->cond, &p->mu, &until) != ETIMEDOUT)
        ;
}

/* Keep the pool full.  When the pool is full the spawner sleeps until a
 * member is taken, then waits REFILL_DELAY_US before it spawns: a burst
 * is handed out meanwhile without the spawner competing for the CPU with
 * the executor and the burst's own shells.  Spawning happens without the
 * mutex, so the executor can take members meanwhile.  When spawning fails
 * (no fds, no processes) it retries after a growing pause instead of
 * spinning; the executor spawns directly in the meantime. */
static void *spawner_main(void *arg)
{
    shell_pool *p = arg;
    int64_t backoff = 0;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        if (p->nidle >= p->size) {
            p->waiting = 1;
            while (p->waiting && !p->stop)
                pthread_cond_wait(&p->cond, &p->mu);
            pause_for(p, REFILL_DELAY_US);
            continue;
        }
        /* More runs than the pool holds are starting (the executor spawns
         * directly): a member made now would cost its run a second exec
         * and the backlog CPU.  Refill once that has stopped for a while. */
        sked_monotime since = sked_clock_mono_now() - p->last_direct;
        if (p->last_direct && since < BACKLOG_QUIET_US) {
            pause_for(p, BACKLOG_QUIET_US - since);
            continue;
        }
        pthread_mutex_unlock(&p->mu);
        member *m = member_spawn(p);
        pthread_mutex_lock(&p->mu);
        if (m) {
            m->next = p->idle;
            p->idle = m;
            p->nidle++;
            p->spawned++;
            backoff = 0;
            continue;
        }
        backoff = backoff ? 2 * backoff : BACKOFF_MIN_US;
        if (backoff > BACKOFF_MAX_US)
            backoff = BACKOFF_MAX_US;
        pause_for(p, backoff);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* ---- the script (executor thread) ---------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int over;                  /* did not fit */
} sbuf;

static void put(sbuf *b, const char *s, size_t n)
{
    if (b->over || n > b->cap - b->len) {
        b->over = 1;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void puts_(sbuf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* s as one shell word: in single quotes, each ' written as '\''. */
static void put_quoted(sbuf *b, const char *s)
{
    put(b, "'", 1);
    for (const char *q; (q = strchr(s, '\'')) != NULL; s = q + 1) {
        put(b, s, (size_t)(q - s));
        put(b, "'\\''", 4);
    }
    puts_(b, s);
    put(b, "'", 1);
}

/* A name the shell accepts in `export`.  dash drops other names from the
 * environment it passes on anyway, so skipping them changes nothing. */
static int shell_name(const char *kv)
{
    const char *p = kv;
    if (!(*p == '_' || (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')))
        return 0;
    while (*p == '_' || (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
           (*p >= '0' && *p <= '9'))
        p++;
    return *p == '=';
}

static void put_export(sbuf *b, const char *kv)
{
    if (!shell_name(kv))
        return;
    const char *eq = strchr(kv, '=');
    puts_(b, "export ");
    put(b, kv, (size_t)(eq - kv + 1));
    put_quoted(b, eq + 1);
    put(b, "\n", 1);
}

/* What a member runs for job: the environment a direct spawn would give
 * (the member already has the worker's; the job's env, then the SKED_*
 * four, override it, as in build_env), the directory, then the command in
 * a fresh /bin/sh, without our fd 3.
 *   - `cd -P`: the physical path, as a spawn's chdir would leave $PWD.
 *   - cd also sets and exports OLDPWD, which a spawned shell inherits
 *     unchanged from the worker: put it back.
 *   - `|| exit 126` is reached only if the directory vanished after
 *     pool_start checked it (dash then prints "can't cd to DIR").
 * Returns the length in buf, or 0 when it does not fit in cap bytes;
 * *split is where the exec line begins. */
static size_t build_script(const sked_job *job, char *buf, size_t cap,
                           size_t *split)
{
    sbuf b = {.p = buf, .cap = cap};
    if (job->cwd) {
        puts_(&b, "cd -P -- ");
        if (job->cwd[0] != '/')
            puts_(&b, "./"); /* as chdir would: no $CDPATH, "-" is a name */
        put_quoted(&b, job->cwd);
        puts_(&b, " || exit 126\n");
        const char *old = getenv("OLDPWD");
        if (old) {
            puts_(&b, "export OLDPWD=");
            put_quoted(&b, old);
            put(&b, "\n", 1);
        } else {
            puts_(&b, "unset OLDPWD\n");
        }
    }
    for (size_t i = 0; job->env && job->env[i]; i++)
        if (shell_env_kept(job, i))
            put_export(&b, job->env[i]);
    char own[4][96];
    shell_own_env(job, own);
    for (int i = 0; i < 4; i++)
        put_export(&b, own[i]);
    *split = b.len;
    puts_(&b, "exec /bin/sh -c ");
    put_quoted(&b, job->command);
    puts_(&b, " sh 3<&-\n");
    return b.over ? 0 : b.len;
}

/* ---- taking a member (executor thread) ----------------------------------- */

static member *take(shell_pool *p)
{
    pthread_mutex_lock(&p->mu);
    member *m = p->idle;
    if (m) {
        p->idle = m->next;
        p->nidle--;
        if (p->waiting) { /* the spawner sleeps: it has work now */
            p->waiting = 0;
            pthread_cond_signal(&p->cond);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return m;
}

/* A write to the job pipe of a member that died raises SIGPIPE; the
 * executor thread blocks it (exec.c), so take it off the pending set. */
static void drop_sigpipe(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    struct timespec zero = {0, 0};
    while (sigtimedwait(&set, NULL, &zero) == SIGPIPE)
        ;
}

/* Step 1 of a start, for each run of the batch: take an idle member for
 * r, watch its output pipe, build its script; r waits in p->pend for
 * pool_release.  Returns 1 if r is taken care of (pending, or ended
 * because its cwd is unusable), 0 if the caller must spawn it directly. */
int pool_start(run *r)
{
    sked_exec *ex = r->ex;
    shell_pool *p = ex->pool;
    if (p == NULL)
        return 0;
    /* The check a direct spawn makes when its chdir fails, made first:
     * same error, and the run never starts. */
    if (r->job->cwd && shell_fail_cwd(r)) {
        exec_finish(r, SKED_JOB_FAILED);
        return 1;
    }
    size_t split = 0;
    size_t len = build_script(r->job, p->script, sizeof p->script, &split);
    member *m = len > 0 ? take(p) : NULL;
    if (m && len <= m->cap) {
        r->pipe_w.fd = m->out_fd;
        if (exec_watch_add(ex, &r->pipe_w, EPOLLIN) == 0) {
            m->run = r;
            m->script = exec_xzalloc(len);
            memcpy(m->script, p->script, len);
            m->len = len;
            m->split = split;
            m->next = NULL;
            *p->pend_tail = m;
            p->pend_tail = &m->next;
            return 1;
        }
        r->pipe_w.fd = -1;
    }
    if (m) { /* unusable for this run: replace it */
        member_kill(m);
        member_reap(m);
    }
    pthread_mutex_lock(&p->mu);
    p->direct++;
    p->last_direct = sked_clock_mono_now();
    pthread_mutex_unlock(&p->mu);
    return 0;
}

/* Write m's script into its job pipe (empty, and holding all of it) and
 * close it: first the settings, then, with m back under SCHED_OTHER, the
 * exec line.  The member runs the settings and waits for more meanwhile,
 * so it cannot exec before the switch.  Returns 0 if m is unusable (died,
 * or could not be switched back): its run has not started. */
static int hand_over(member *m)
{
    size_t rest = m->len - m->split;
    if (write(m->job_fd, m->script, m->split) != (ssize_t)m->split)
        return 0;
    struct sched_param zero = {0};
    if (m->batch && sched_setscheduler(m->pid, SCHED_OTHER, &zero) < 0)
        return 0;
    if (write(m->job_fd, m->script + m->split, rest) != (ssize_t)rest)
        return 0;
    close(m->job_fd); /* EOF after the script */
    m->job_fd = -1;
    return 1;
}

/* Steps 2 and 3, once per batch.  Step 2 hands each pending script over
 * - the run has started - and nothing else: the
 * shells begin to compete for the CPU as soon as they have their job, and
 * on 2 cores an executor that is still busy with the rest of the batch
 * then waits behind them (measured: preempted for 20-60 ms after ~1 ms of
 * a slower loop).  Step 3 does the bookkeeping (shell_running) with the
 * start times of step 2.  A member found dead in step 2 (the write fails)
 * is reaped and its run spawned directly. */
void pool_release(sked_exec *ex)
{
    shell_pool *p = ex->pool;
    if (p == NULL || p->pend == NULL)
        return;
    for (member *m = p->pend; m; m = m->next) {
        m->written = hand_over(m);
        if (m->written)
            m->started_at = sked_clock_wall_now();
        else
            drop_sigpipe(); /* if the member had died */
    }
    uint64_t used = 0, direct = 0;
    member *m;
    while ((m = p->pend) != NULL) {
        p->pend = m->next;
        run *r = m->run;
        free(m->script);
        m->script = NULL;
        if (m->written) {
            shell_running(r, m->pid, m->started_at);
            free(m);
            used++;
            continue;
        }
        epoll_ctl(ex->epfd, EPOLL_CTL_DEL, m->out_fd, NULL);
        r->pipe_w.fd = -1; /* m's still: closed by member_reap */
        member_kill(m);
        member_reap(m);
        direct++;
        shell_spawn_run(r);
    }
    p->pend_tail = &p->pend;
    pthread_mutex_lock(&p->mu);
    p->used += used;
    p->direct += direct;
    pthread_mutex_unlock(&p->mu);
}

/* ---- lifecycle ------------------------------------------------------------ */

int pool_init(sked_exec *ex, int size, int slots, sked_err *err)
{
    if (size == 0) {
        size = slots > 0 ? slots : DEFAULT_SLOTS;
        if (size > MAX_DEFAULT_SIZE)
            size = MAX_DEFAULT_SIZE;
    }
    struct stat st;
    if (size < 0 || stat("/dev/fd/", &st) < 0)
        return 0; /* off; without /dev/fd a member could not read its job */
    shell_pool *p = exec_xzalloc(sizeof *p);
    p->size = size;
    /* under another policy (BATCH, IDLE, real-time) members keep sked's */
    p->batch = sched_getscheduler(0) == SCHED_OTHER;
    p->pend_tail = &p->pend;
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &ca);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&p->thread, NULL, spawner_main, p);
    if (rc != 0) {
        pthread_cond_destroy(&p->cond);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return sked_err_set(err, SKED_EAGAIN, NULL, 0,
                            "executor: cannot start the shell pool: %s",
                            strerror(rc));
    }
    ex->pool = p;
    return 0;
}

void pool_deinit(sked_exec *ex)
{
    shell_pool *p = ex->pool;
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    /* all killed first, then reaped: they die in parallel */
    for (member *m = p->idle; m; m = m->next)
        member_kill(m);
    while (p->idle) {
        member *m = p->idle;
        p->idle = m->next;
        member_reap(m);
    }
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->mu);
    free(p);
    ex->pool = NULL;
}

void sked_exec_pool_stats(sked_exec *ex, sked_shell_pool_stats *out)
{
    memset(out, 0, sizeof *out);
    shell_pool *p = ex->pool;
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    out->size = p->size;
    out->idle = p->nidle;
    out->spawned = p->spawned;
    out->used = p->used;
    out->direct = p->direct;
    pthread_mutex_unlock(&p->mu);
}
