/*
 * exec_internal.h - what exec.c, exec_shell.c, exec_pool.c and exec_http.c
 * share: the executor's state, one run's state, and the small helpers
 * (output tail, deadline heap, epoll watches: exec_parts.c) that both
 * kinds of target use.
 *
 * Threads: fields marked (mu) are guarded by sked_exec.mu and touched by
 * any thread; everything else belongs to the executor thread alone.  A run
 * is created by sked_exec_submit, started, ended and freed by the executor
 * thread.
 *
 * Not for use outside src/worker/ (the tests include it only to force the
 * pidfd fallback, see sked_exec.no_pidfd).
 */
#ifndef SKED_EXEC_INTERNAL_H
#define SKED_EXEC_INTERNAL_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>

#include "worker/exec.h"

#define EXEC_BUCKETS 1024 /* run_id registry; chains stay short to ~10^4 runs */

/* What an epoll event points at.  Runs embed theirs; curl sockets get one
 * each (freed at the end of the loop iteration, so that a stale event in
 * the same epoll_wait batch still points at valid memory: fd == -1 then
 * means "ignore"). */
typedef enum watch_kind { W_WAKE, W_PIPE, W_PIDFD, W_CURL } watch_kind;

typedef struct watch {
    watch_kind kind;
    int fd;                    /* -1 once closed or removed              */
    struct run *run;           /* W_PIPE, W_PIDFD                        */
    struct watch *next_dead;   /* W_CURL waiting to be freed             */
} watch;

/* The last `max` bytes written, as a ring that grows on demand (most runs
 * print little, so no run pays max up front).  buf has cap + 1 bytes: the
 * spare one lets tail_take terminate in place. */
typedef struct tail {
    char *buf;
    size_t cap, start, len, max;
} tail;

/* Where a shell run is in its life.  Each state has at most one deadline. */
typedef enum shell_state {
    SH_RUNNING,     /* deadline: the timeout (or none)                   */
    SH_TERMINATING, /* SIGTERM sent; deadline: SIGKILL after the grace   */
    SH_KILLED,      /* SIGKILL sent; no deadline, the exit will come     */
    SH_DRAINING,    /* reaped, pipe still open; deadline: stop reading   */
} shell_state;

typedef struct run {
    struct sked_exec *ex;
    sked_job *job;
    struct run *hnext;         /* (mu) registry bucket chain              */
    struct run *pnext;         /* (mu) pending list; then the dead list   */
    int cancel_req;            /* (mu) sked_exec_cancel was accepted      */

    struct run *lprev, *lnext; /* live list: started, not yet ended       */
    int canceled, timed_out, ended;
    sked_job_result res;
    tail out;
    sked_monotime started_mono;

    /* deadline heap (shell only) */
    sked_monotime deadline;
    uint64_t seq;
    size_t heap_idx;           /* SIZE_MAX: not in the heap                */

    /* shell */
    shell_state state;
    pid_t pid;                 /* also the process group id; 0 once reaped */
    watch pipe_w, pidfd_w;     /* fd -1 when not open                      */
    int exited;                /* reaped; res.exit_code / term_signal set  */

    /* http */
    CURL *easy;
    struct curl_slist *headers;
    char denied[96];           /* set when the guard refused an address    */
    char errbuf[CURL_ERROR_SIZE];
} run;

/* One network of an allow or deny list, IPv4 held as ::ffff:a.b.c.d/96+n
 * so that one comparison covers both families and v4-mapped addresses. */
typedef struct net {
    unsigned char addr[16];
    int prefix;                /* 0..128 */
} net;

typedef struct sked_exec {
    /* configuration, fixed after sked_exec_new */
    size_t max_output;
    int64_t kill_grace_us;
    void (*started)(void *ctx, sked_job *job, sked_walltime at);
    void (*done)(void *ctx, sked_job *job, const sked_job_result *res);
    void *ctx;
    net *deny, *allow;
    size_t ndeny, nallow;
    int has_allow;             /* an allow list was given: unmatched -> deny */
    int no_pidfd;              /* tests: behave as if pidfd_open failed      */

    pthread_t thread;
    int epfd;
    watch wake;                /* eventfd: submissions, cancels, stop        */

    pthread_mutex_t mu;
    run *pend_head, *pend_tail;   /* (mu) submitted, not yet started        */
    run *buckets[EXEC_BUCKETS];   /* (mu) every run not yet ended, by run_id */
    int nlive;                    /* (mu) registry size                      */
    int ncancel;                  /* (mu) cancels to apply                   */
    int stopping;                 /* (mu) sked_exec_free was called          */

    /* executor thread only */
    run *back_head, *back_tail; /* taken from pend, not yet started         */
    run *live;                 /* started, not ended (doubly linked)        */
    run *dead;                 /* ended this iteration, freed at its end     */
    watch *dead_watches;
    run **heap;
    size_t heap_len, heap_cap;
    uint64_t seq;
    int npolled;               /* live shell runs without a pidfd            */
    int stop_seen;

    CURLM *multi;
    sked_monotime curl_deadline; /* INT64_MAX: no timer                     */

    struct shell_pool *pool;   /* pre-spawned shells; NULL: off (exec_pool.c) */
} sked_exec;

#define NO_DEADLINE INT64_MAX

/* now + us, saturating: a timeout of "forever" must not wrap around. */
static inline sked_monotime exec_after(sked_monotime now, int64_t us)
{
    return us >= NO_DEADLINE - 1 - now ? NO_DEADLINE - 1 : now + us;
}

/* exec.c */
void exec_finish(run *r, sked_job_outcome outcome);

/* exec_parts.c */
void exec_heap_set(sked_exec *ex, run *r, sked_monotime deadline);
void exec_heap_del(sked_exec *ex, run *r);
int exec_watch_add(sked_exec *ex, watch *w, uint32_t events);
void exec_watch_close(sked_exec *ex, watch *w);
void tail_append(tail *t, const char *p, size_t n);
/* Hand the tail over as a NUL-terminated malloc'ed string; t is empty
 * afterwards. */
char *tail_take(tail *t, size_t *len);
void tail_free(tail *t);
void *exec_xzalloc(size_t n);
char *exec_xstrdup(const char *s);
void exec_ms_text(int64_t us, char *buf, size_t len);

/* exec_shell.c */
void shell_start(run *r);
void shell_spawn_run(run *r);
void shell_running(run *r, pid_t pid, sked_walltime at);
int shell_spawn(pid_t *pid, char *const argv[], char *const envp[],
                const char *cwd, int out_fd, int job_fd);
int shell_env_kept(const sked_job *job, size_t i);
void shell_own_env(const sked_job *job, char own[4][96]);
int shell_cwd_error(const char *cwd);
int shell_fail_cwd(run *r);
void shell_on_pipe(run *r);
void shell_on_exit(run *r);
void shell_on_deadline(run *r);
void shell_cancel(run *r);
void shell_poll_exits(sked_exec *ex);

/* exec_pool.c */
int pool_init(sked_exec *ex, int size, int slots, sked_err *err);
void pool_deinit(sked_exec *ex);
int pool_start(run *r);
void pool_release(sked_exec *ex);

/* exec_http.c */
int http_init(sked_exec *ex, const char *const *deny, const char *const *allow, int slots,
              sked_err *err);
void http_deinit(sked_exec *ex);
void http_start(run *r);
void http_on_socket(sked_exec *ex, watch *w, uint32_t events);
void http_on_timer(sked_exec *ex);
void http_cancel(run *r);

#endif
