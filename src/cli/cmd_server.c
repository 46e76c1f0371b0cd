/*
 * cmd_server.c - `sked server`: every role in one process: the API, a
 * scheduler and a worker, over the embedded SQLite store and the
 * in-process queue.
 *
 *   sked server [--data DIR] [--listen ADDR] [--threads N] [--workers N]
 *               [--queues Q1,Q2] [--log-level L]
 *
 * On first start it creates DIR (mode 0700), the store DIR/sked.db and an
 * admin token in DIR/admin.token (mode 0600), and says where.  It prints
 * `listening on http://HOST:PORT` on stdout once it serves (tests read the
 * port from there when started with port 0).  SIGINT or SIGTERM stop it
 * cleanly: requests in flight finish, the store is closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "api/http.h"
#include "cli/cli.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/version.h"
#include "model/token.h"
#include "queue/queue.h"
#include "sched/sched.h"
#include "store/store.h"
#include "time/duration.h"
#include "worker/worker.h"

static const char usage[] =
    "usage: sked server [--data DIR] [--listen ADDR] [--threads N] [--log-level L]\n"
    "\n"
    "Run sked on the embedded store (SQLite in DIR).\n"
    "  --data DIR       data directory (default ./sked-data)\n"
    "  --listen ADDR    address to serve HTTP on (default 127.0.0.1:7070;\n"
    "                   port 0 picks a free one)\n"
    "  --threads N      HTTP worker threads (default 16)\n"
    "  --workers N      runs executed at once (default 100)\n"
    "  --shell-pool N   idle shells kept spawned for shell runs (default:\n"
    "                   --workers, at most 128; -1 turns the pool off)\n"
    "  --queues Q1,Q2   queues this server's worker takes work from\n"
    "                   (default: default)\n"
    "  --keep-runs N    finished runs kept per task (default 1000)\n"
    "  --keep-runs-for DURATION\n"
    "                   finished runs older than this are deleted (default 7d)\n"
    "  --log-level L    debug, info, warn or error (default info)\n"
    "On first start an admin token is written to DIR/admin.token (0600).\n";

/* mkdir -p with mode 0700 for what it creates. */
static int make_dirs(const char *dir)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return -1;
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* Write the first admin token, unless DIR/admin.token exists. */
static int ensure_admin_token(sked_store *st, const char *dir)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    snprintf(path, sizeof path, "%s/admin.token", dir);
    if (access(path, F_OK) == 0) {
        printf("admin token: %s\n", path);
        return 0;
    }
    char secret[SKED_TOKEN_TEXT];
    sked_err err = {0};
    sked_token_rec rec;
    if (sked_token_make(st, "default", SKED_ROLE_ADMIN, secret, &rec, &err) < 0) {
        fprintf(stderr, "sked server: cannot store the admin token: %s\n", err.msg);
        return -1;
    }
    snprintf(tmp, sizeof tmp, "%s/.admin.token.%d", dir, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        goto fail;
    size_t n = strlen(secret);
    secret[n] = '\n';
    if (write(fd, secret, n + 1) != (ssize_t)(n + 1) || fsync(fd) < 0) {
        close(fd);
        unlink(tmp);
        goto fail;
    }
    close(fd);
    if (rename(tmp, path) < 0) {
        unlink(tmp);
        goto fail;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    printf("wrote admin token (namespace default) to %s\n", path);
    sked_log(SKED_LOG_INFO, "admin token created", "token_id", rec.id, "path", path, NULL);
    return 0;
fail:
    fprintf(stderr, "sked server: cannot write %s: %s\n", path, strerror(errno));
    return -1;
}

typedef struct server_ctx {
    sked_sched *sched;
    sked_worker *worker;
    sked_queue *queue;
} server_ctx;

/* Gauges read at scrape time. */
static double gauge_busy(void *ctx) { return sked_worker_busy(((server_ctx *)ctx)->worker); }
static double gauge_pool(void *ctx)
{
    return sked_worker_shell_pool_idle(((server_ctx *)ctx)->worker);
}
static double gauge_free(void *ctx)
{
    server_ctx *sc = ctx;
    return sked_worker_slots(sc->worker) - sked_worker_busy(sc->worker);
}

typedef struct depth_ctx {
    sked_queue *queue;
    char name[SKED_QUEUE_NAME_MAX + 1];
} depth_ctx;

static double gauge_depth(void *ctx)
{
    depth_ctx *d = ctx;
    int64_t ready = 0, unacked = 0;
    sked_queue_depth(d->queue, d->name, &ready, &unacked, NULL);
    return (double)ready;
}

static void on_changed(void *ctx)
{
    sked_sched_wake(((server_ctx *)ctx)->sched);
}

static int on_ready(void *ctx, sked_err *err)
{
    return sked_queue_ping(((server_ctx *)ctx)->queue, err);
}

static void on_canceled(void *ctx, const char *run_id)
{
    server_ctx *sc = ctx;
    sked_worker_cancel(sc->worker, run_id);
    sked_sched_forget_run(sc->sched, run_id);
}

int sked_cli_server(int argc, char **argv)
{
    const char *data = "./sked-data", *listen = "127.0.0.1:7070", *v;
    const char *level = "info";
    /* Handlers block on the durable commit, so threads bound how many
     * writes share one group commit: more than the CPU count. */
    int threads = 16, slots = 100, shell_pool = 0, r;
    const char *queues = "default";
    int keep_runs = 1000;
    int64_t keep_for = INT64_C(7) * 86400 * SKED_USEC_PER_SEC;
    for (int i = 1; i < argc;) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return SKED_EXIT_OK;
        }
        if ((r = sked_cli_opt(argc, argv, &i, "--data", &v)) != 0) {
            if (r < 0) return SKED_EXIT_USAGE;
            data = v;
        } else if ((r = sked_cli_opt(argc, argv, &i, "--listen", &v)) != 0) {
            if (r < 0) return SKED_EXIT_USAGE;
            listen = v;
        } else if ((r = sked_cli_opt(argc, argv, &i, "--log-level", &v)) != 0) {
            if (r < 0) return SKED_EXIT_USAGE;
            level = v;
        } else if ((r = sked_cli_opt(argc, argv, &i, "--workers", &v)) != 0) {
            if (r < 0) return SKED_EXIT_USAGE;
            slots = atoi(v);
            if (slots < 1 || slots > 10000) {
                fprintf(stderr, "sked server: --workers: a number from 1 to 10000\n");
                return SKED_EXIT_USAGE;
            }
        } else if ((r = sked_cli_opt(argc, argv, &i, "--shell-pool", &v)) != 0) {
            if (r < 0) return SKED_EXIT_USAGE;
            char *end;
            long n = strtol(v, &end, 10);
            if (*v == '\0' || *end != '\0' || n < -1 || n > 10000) {
                fprintf(stderr, "sked server: --shell-pool: a number from -1 to 10000\n");
                return SKED_EXIT_USAGE;
            }
            shell_pool = n == 0 ? -1 : (int)n; /* 0 idle shells: no pool */
        } else if ((r = sked_cli_opt(argc, argv, &i, "--keep-runs-for", &v)) != 0) {
            if (r < 0) return SKED_EXIT_USAGE;
            if (sked_duration_parse(v, strlen(v), &keep_for, NULL) < 0 ||
                keep_for < SKED_USEC_PER_SEC) {
                fprintf(stderr, "sked server: --keep-runs-for: a duration like 7d or 12h\n");
                return SKED_EXIT_USAGE;
            }
        } else if ((r = sked_cli_opt(argc, argv, &i, "--keep-runs", &v)) != 0) {
            if (r < 0) return SKED_EXIT_USAGE;
            keep_runs = atoi(v);
            if (keep_runs < 1) {
                fprintf(stderr, "sked server: --keep-runs: a number >= 1\n");
                return SKED_EXIT_USAGE;
            }
        } else if ((r = sked_cli_opt(argc, argv, &i, "--queues", &v)) != 0) {
            if (r < 0) return SKED_EXIT_USAGE;
            queues = v;
        } else if ((r = sked_cli_opt(argc, argv, &i, "--threads", &v)) != 0) {
            if (r < 0) return SKED_EXIT_USAGE;
            threads = atoi(v);
            if (threads < 1 || threads > 1024) {
                fprintf(stderr, "sked server: --threads: a number from 1 to 1024\n");
                return SKED_EXIT_USAGE;
            }
        } else {
            fprintf(stderr, "sked server: unknown argument %s (see --help)\n", argv[i]);
            return SKED_EXIT_USAGE;
        }
    }
    if (sked_log_init(level) < 0) {
        fprintf(stderr, "sked server: --log-level: debug, info, warn or error\n");
        return SKED_EXIT_USAGE;
    }
    if (make_dirs(data) < 0) {
        fprintf(stderr, "sked server: cannot create %s: %s\n", data, strerror(errno));
        return SKED_EXIT_FAILED;
    }
    /* Signals are taken by sigwait below: block them before any thread
     * starts so that every thread inherits the mask. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    char url[PATH_MAX + 16];
    snprintf(url, sizeof url, "sqlite:%s/sked.db", data);
    sked_err err = {0};
    sked_store *st = NULL;
    sked_queue *q = NULL;
    sked_sched *sched = NULL;
    sked_worker *worker = NULL;
    sked_api *api = NULL;
    sked_http_server *srv = NULL;
    int rc = SKED_EXIT_FAILED;
    if (sked_store_open(url, &st, &err) < 0) {
        fprintf(stderr, "sked server: store %s: %s\n", url, err.msg);
        return SKED_EXIT_FAILED;
    }
    if (ensure_admin_token(st, data) < 0)
        goto out;
    if (sked_queue_open("mem:", &q, &err) < 0) {
        fprintf(stderr, "sked server: queue: %s\n", err.msg);
        goto out;
    }
    /* One server per data directory: a stable owner lets a restarted
     * server take its claimed runs back at once instead of waiting for
     * their leases. */
    char owner[128], worker_id[128], hostname[64] = "";
    gethostname(hostname, sizeof hostname - 1);
    snprintf(owner, sizeof owner, "server@%s", hostname);
    snprintf(worker_id, sizeof worker_id, "%s/%d", hostname, (int)getpid());
    sked_sched_config sc = {.store = st, .queue = q, .owner = owner,
                            .retention_keep = keep_runs, .retention_age_us = keep_for,
                            .recover_all_on_start = 1};
    if (sked_sched_start(&sc, &sched, &err) < 0) {
        fprintf(stderr, "sked server: scheduler: %s\n", err.msg);
        goto out;
    }
    /* --queues a,b -> {"a","b",NULL} */
    char qbuf[1024];
    const char *qnames[33] = {0};
    snprintf(qbuf, sizeof qbuf, "%s", queues);
    int nq = 0;
    for (char *save, *tok = strtok_r(qbuf, ",", &save); tok && nq < 32;
         tok = strtok_r(NULL, ",", &save))
        qnames[nq++] = tok;
    sked_worker_config wc = {.queue = q, .id = worker_id, .queues = qnames, .slots = slots,
                             .shell_pool = shell_pool};
    if (sked_worker_start(&wc, &worker, &err) < 0) {
        fprintf(stderr, "sked server: worker: %s\n", err.msg);
        goto out;
    }
    server_ctx ctx = {.sched = sched, .worker = worker, .queue = q};
    sked_metrics *m = sked_metrics_default();
    sked_gauge *g_busy = sked_gauge_get_func(m, "sked_worker_slots_busy",
                                             "Worker slots running a run now.", "",
                                             gauge_busy, &ctx);
    sked_gauge *g_free = sked_gauge_get_func(m, "sked_worker_slots_free",
                                             "Worker slots free now.", "", gauge_free, &ctx);
    sked_gauge *g_pool = sked_gauge_get_func(m, "sked_shell_pool_idle",
                                             "Idle pre-spawned shells ready for shell runs.",
                                             "", gauge_pool, &ctx);
    depth_ctx depths[33];
    sked_gauge *g_depth[33] = {0};
    for (int k = 0; k < nq; k++) {
        char labels[200];
        depths[k].queue = q;
        snprintf(depths[k].name, sizeof depths[k].name, "%s", qnames[k]);
        if (sked_metrics_labels(labels, sizeof labels, "queue", qnames[k], NULL) >= 0)
            g_depth[k] = sked_gauge_get_func(m, "sked_queue_depth",
                                             "Messages ready in a queue, not yet delivered.",
                                             labels, gauge_depth, &depths[k]);
    }
    sked_api_hooks hooks = {.changed = on_changed, .canceled = on_canceled,
                            .ready = on_ready, .ctx = &ctx};
    api = sked_api_new(st, &hooks);
    sked_http_config cfg = {.listen = listen, .threads = threads,
                            .dispatch = sked_api_dispatch, .ctx = api};
    if (sked_http_start(&cfg, &srv, &err) < 0) {
        fprintf(stderr, "sked server: --listen %s: %s\n", listen, err.msg);
        goto out;
    }
    /* HOST of HOST:PORT as given ("" means every interface) */
    char host[256];
    const char *colon = strrchr(listen, ':');
    size_t hl = colon ? (size_t)(colon - listen) : 0;
    snprintf(host, sizeof host, "%.*s", (int)hl, listen);
    if (host[0] == '\0')
        snprintf(host, sizeof host, "0.0.0.0");
    char where[300];
    snprintf(where, sizeof where, "http://%s:%d", host, sked_http_port(srv));
    printf("listening on %s\n", where);
    fflush(stdout);
    sked_log(SKED_LOG_INFO, "sked server started", "version", SKED_VERSION,
             "url", where, "data", data, NULL);

    int sig = 0;
    sigwait(&stop, &sig);
    sked_log(SKED_LOG_INFO, "shutting down", "signal", sig == SIGINT ? "SIGINT" : "SIGTERM", NULL);
    rc = SKED_EXIT_OK;
    sked_gauge_set_func(g_busy, NULL, NULL); /* their contexts end here */
    sked_gauge_set_func(g_free, NULL, NULL);
    sked_gauge_set_func(g_pool, NULL, NULL);
    for (int k = 0; k < nq; k++)
        sked_gauge_set_func(g_depth[k], NULL, NULL);
out:
    /* outside in: no new requests, no new runs, then the scheduler */
    if (srv)
        sked_http_stop(srv);
    sked_worker_stop(worker);
    sked_sched_stop(sched);
    sked_api_free(api);
    if (q)
        sked_queue_close(q);
    sked_store_close(st);
    if (rc == SKED_EXIT_OK)
        sked_log(SKED_LOG_INFO, "stopped", NULL);
    return rc;
}
