/*
 * cmd_node.c - the long-running roles of the one sked binary:
 *
 *   sked server     the API, a scheduler and a worker in one process; by
 *                   default over the embedded SQLite store in --data DIR
 *                   and the in-process queue, or over --store/--queue
 *   sked api        the HTTP API only            (--store, --queue optional)
 *   sked scheduler  claims, dispatches, sweeps, writes the workers' events
 *                                                (--store and --queue)
 *   sked worker     runs jobs from the queue     (--queue only: DESIGN §1)
 *
 * Any number of each may run against one store and queue; none is a
 * leader, any may be killed at any moment (DESIGN §1, §2).
 *
 * On first start `sked server --data DIR` creates DIR (mode 0700), the
 * store DIR/sked.db and an admin token in DIR/admin.token (mode 0600), and
 * says where.  A process that serves HTTP prints `listening on
 * http://HOST:PORT` on stdout once it serves (tests read the port from
 * there when started with port 0); every process then prints `started
 * ROLE ID` once all its roles run.  SIGINT or SIGTERM stop it cleanly:
 * requests in flight finish, runs drain, the store is closed.
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

enum { ROLE_API = 1, ROLE_SCHED = 2, ROLE_WORKER = 4 };

/* Runs are marked dispatched this long before they are due and published
 * at their due time by another thread, so neither the mark (a batch of
 * 1,000 in 15-25 ms on SQLite; a PostgreSQL COMMIT) nor a write the kernel
 * holds up (lazy commits of 100-900 ms were seen on this VM's disk)
 * delays a start.
 * Not a whole second: the marks of whole-second schedules then fall 100 ms
 * after the previous second's runs start, not on them. */
#define PREMARK_US (900 * SKED_USEC_PER_MSEC)

static const char usage[] =
    "usage: sked server    [--data DIR | --store URL [--queue URL]] [OPTIONS]\n"
    "       sked api       --store URL [--queue URL] [OPTIONS]\n"
    "       sked scheduler --store URL --queue URL [OPTIONS]\n"
    "       sked worker    --queue URL [OPTIONS]\n"
    "\n"
    "server runs every role in one process, by default on the embedded store\n"
    "(SQLite in DIR) and the in-process queue; api, scheduler and worker run\n"
    "one role each against a shared store and queue, any number of each.\n"
    "  --data DIR       server: data directory (default ./sked-data)\n"
    "  --store URL      postgres://... (or sqlite:FILE)\n"
    "  --queue URL      amqp://user:pass@host:port[,host:port...]/ (or mem:)\n"
    "  --name NAME      this process's id as scheduler and worker\n"
    "                   (default ROLE@HOST/PID; server --data: server@HOST)\n"
    "  --listen ADDR    server, api: address to serve HTTP on (default\n"
    "                   127.0.0.1:7070; port 0 picks a free one)\n"
    "  --threads N      server, api: HTTP worker threads (default 16)\n"
    "  --metrics ADDR   scheduler, worker: serve /metrics and /healthz on ADDR\n"
    "                   (the api and server serve them with the API)\n"
    "  --workers N      server, worker: runs executed at once (default 100)\n"
    "  --shell-pool N   server, worker: idle shells kept spawned for shell\n"
    "                   runs (default: --workers, at most 128; -1: none)\n"
    "  --queues Q1,Q2   server, worker: queues to take work from (default:\n"
    "                   default)\n"
    "  --jobs-per-message N\n"
    "                   server, scheduler: jobs of one queue packed into one\n"
    "                   queue message, at most (1-64, default 1); see\n"
    "                   docs/operations.md before raising it\n"
    "  --keep-runs N    server, scheduler: finished runs kept per task\n"
    "                   (default 1000)\n"
    "  --keep-runs-for DURATION\n"
    "                   finished runs older than this are deleted (default 7d)\n"
    "  --log-level L    debug, info, warn or error (default info)\n"
    "On first start, server --data writes an admin token to DIR/admin.token\n"
    "(0600); elsewhere create tokens with `sked token create --store URL`.\n";

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
    server_ctx *sc = ctx;
    if (sc->sched) /* elsewhere the store's own notification wakes them */
        sked_sched_wake(sc->sched);
}

/* /readyz beyond the store: the queue, for a process that schedules or
 * runs work.  An api alone only sends cancel orders through the queue: it
 * stays ready (creates, lists) while RabbitMQ is away. */
static int on_ready(void *ctx, sked_err *err)
{
    server_ctx *sc = ctx;
    return sc->queue && (sc->sched || sc->worker) ? sked_queue_ping(sc->queue, err) : 0;
}

static void on_canceled(void *ctx, const sked_run_rec *r)
{
    server_ctx *sc = ctx;
    if (sc->sched)
        sked_sched_forget_run(sc->sched, r->id);
    if (sc->worker && sked_worker_cancel(sc->worker, r->id) == 0)
        return;
    /* another process's worker runs it: tell it through its inbox, for
     * every attempt of it there (a run not started yet is stopped by its
     * scheduler when it starts) */
    sked_err err = {0};
    if (sc->queue && r->worker[0] &&
        sked_worker_send_cancel(sc->queue, r->worker, r->id, 0, &err) < 0)
        sked_log(SKED_LOG_WARN, "cancel order not sent", "run", r->id, "worker", r->worker,
                 "error", err.msg, NULL);
}

/* What a scheduler or worker serves with --metrics: nothing else. */
static void metrics_dispatch(void *ctx, const sked_http_req *req, sked_http_resp *resp)
{
    (void)ctx;
    if (strcmp(req->method, "GET") == 0 && strcmp(req->path, "/metrics") == 0) {
        resp->status = 200;
        resp->body = sked_metrics_render(sked_metrics_default(), &resp->body_len);
        resp->content_type = "text/plain; version=0.0.4";
    } else if (strcmp(req->method, "GET") == 0 && strcmp(req->path, "/healthz") == 0) {
        resp->status = 200;
        resp->body = strdup("{\"status\":\"ok\"}");
        resp->body_len = strlen(resp->body);
    } else {
        resp->status = 404;
        resp->body = strdup("{\"error\":{\"code\":\"not_found\",\"message\":"
                            "\"only GET /metrics and /healthz here\"}}");
        resp->body_len = strlen(resp->body);
    }
}

typedef struct node_opts {
    const char *cmd;            /* "server", "api", ...: for messages */
    int roles;
    const char *data, *store, *queue, *name, *listen, *level, *queues, *metrics;
    int threads, slots, keep_runs, shell_pool, jobs_per_message;
    int64_t keep_for;
} node_opts;

/* argv -> o; SKED_EXIT_OK to go on, else the exit status. */
static int parse_opts(int argc, char **argv, node_opts *o)
{
    const char *v, *bad = NULL;
    int r;
    for (int i = 1; i < argc;) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return -1;
        }
        if ((r = sked_cli_opt(argc, argv, &i, "--data", &v)) != 0) {
            o->data = v, bad = o->roles != (ROLE_API | ROLE_SCHED | ROLE_WORKER) ? "--data" : bad;
        } else if ((r = sked_cli_opt(argc, argv, &i, "--store", &v)) != 0) {
            o->store = v, bad = o->roles == ROLE_WORKER ? "--store (a worker needs only the queue)" : bad;
        } else if ((r = sked_cli_opt(argc, argv, &i, "--queue", &v)) != 0) {
            o->queue = v;
        } else if ((r = sked_cli_opt(argc, argv, &i, "--name", &v)) != 0) {
            o->name = v;
        } else if ((r = sked_cli_opt(argc, argv, &i, "--listen", &v)) != 0) {
            o->listen = v, bad = !(o->roles & ROLE_API) ? "--listen" : bad;
        } else if ((r = sked_cli_opt(argc, argv, &i, "--metrics", &v)) != 0) {
            o->metrics = v, bad = (o->roles & ROLE_API) ? "--metrics (the API serves /metrics)" : bad;
        } else if ((r = sked_cli_opt(argc, argv, &i, "--log-level", &v)) != 0) {
            o->level = v;
        } else if ((r = sked_cli_opt(argc, argv, &i, "--workers", &v)) != 0) {
            o->slots = atoi(v), bad = !(o->roles & ROLE_WORKER) ? "--workers" : bad;
            if (o->slots < 1 || o->slots > 10000) {
                fprintf(stderr, "sked %s: --workers: a number from 1 to 10000\n", o->cmd);
                return SKED_EXIT_USAGE;
            }
        } else if ((r = sked_cli_opt(argc, argv, &i, "--shell-pool", &v)) != 0) {
            bad = !(o->roles & ROLE_WORKER) ? "--shell-pool" : bad;
            char *end;
            long n = strtol(v, &end, 10);
            if (*v == '\0' || *end != '\0' || n < -1 || n > 10000) {
                fprintf(stderr, "sked %s: --shell-pool: a number from -1 to 10000\n", o->cmd);
                return SKED_EXIT_USAGE;
            }
            o->shell_pool = n == 0 ? -1 : (int)n; /* 0 idle shells: no pool */
        } else if ((r = sked_cli_opt(argc, argv, &i, "--keep-runs-for", &v)) != 0) {
            bad = !(o->roles & ROLE_SCHED) ? "--keep-runs-for" : bad;
            if (sked_duration_parse(v, strlen(v), &o->keep_for, NULL) < 0 ||
                o->keep_for < SKED_USEC_PER_SEC) {
                fprintf(stderr, "sked %s: --keep-runs-for: a duration like 7d or 12h\n", o->cmd);
                return SKED_EXIT_USAGE;
            }
        } else if ((r = sked_cli_opt(argc, argv, &i, "--jobs-per-message", &v)) != 0) {
            bad = !(o->roles & ROLE_SCHED) ? "--jobs-per-message" : bad;
            char *end;
            long n = strtol(v, &end, 10);
            if (*v == '\0' || *end != '\0' || n < 1 || n > SKED_SCHED_JOBS_PER_MESSAGE_MAX) {
                fprintf(stderr, "sked %s: --jobs-per-message: a number from 1 to %d\n", o->cmd,
                        SKED_SCHED_JOBS_PER_MESSAGE_MAX);
                return SKED_EXIT_USAGE;
            }
            o->jobs_per_message = (int)n;
        } else if ((r = sked_cli_opt(argc, argv, &i, "--keep-runs", &v)) != 0) {
            o->keep_runs = atoi(v), bad = !(o->roles & ROLE_SCHED) ? "--keep-runs" : bad;
            if (o->keep_runs < 1) {
                fprintf(stderr, "sked %s: --keep-runs: a number >= 1\n", o->cmd);
                return SKED_EXIT_USAGE;
            }
        } else if ((r = sked_cli_opt(argc, argv, &i, "--queues", &v)) != 0) {
            o->queues = v, bad = !(o->roles & ROLE_WORKER) ? "--queues" : bad;
        } else if ((r = sked_cli_opt(argc, argv, &i, "--threads", &v)) != 0) {
            o->threads = atoi(v), bad = !(o->roles & ROLE_API) ? "--threads" : bad;
            if (o->threads < 1 || o->threads > 1024) {
                fprintf(stderr, "sked %s: --threads: a number from 1 to 1024\n", o->cmd);
                return SKED_EXIT_USAGE;
            }
        } else {
            fprintf(stderr, "sked %s: unknown argument %s (see --help)\n", o->cmd, argv[i]);
            return SKED_EXIT_USAGE;
        }
        if (r < 0)
            return SKED_EXIT_USAGE;
        if (bad) {
            fprintf(stderr, "sked %s: %s is not an option of this role (see --help)\n", o->cmd, bad);
            return SKED_EXIT_USAGE;
        }
    }
    if (o->data && o->store) {
        fprintf(stderr, "sked %s: --data and --store: give one\n", o->cmd);
        return SKED_EXIT_USAGE;
    }
    if ((o->roles & (ROLE_SCHED | ROLE_API)) && o->roles != (ROLE_API | ROLE_SCHED | ROLE_WORKER) &&
        o->store == NULL) {
        fprintf(stderr, "sked %s: --store URL is required\n", o->cmd);
        return SKED_EXIT_USAGE;
    }
    if ((o->roles == ROLE_SCHED || o->roles == ROLE_WORKER) && o->queue == NULL) {
        fprintf(stderr, "sked %s: --queue URL is required\n", o->cmd);
        return SKED_EXIT_USAGE;
    }
    if (sked_log_init(o->level) < 0) {
        fprintf(stderr, "sked %s: --log-level: debug, info, warn or error\n", o->cmd);
        return SKED_EXIT_USAGE;
    }
    return SKED_EXIT_OK;
}

/* Start what o->roles asks for, wait for SIGINT/SIGTERM, stop. */
static int run_node(node_opts *o)
{
    int all = o->roles == (ROLE_API | ROLE_SCHED | ROLE_WORKER);
    int embedded = all && o->store == NULL;
    if (embedded && o->data == NULL)
        o->data = "./sked-data";
    if (embedded && make_dirs(o->data) < 0) {
        fprintf(stderr, "sked %s: cannot create %s: %s\n", o->cmd, o->data, strerror(errno));
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
    if (embedded)
        snprintf(url, sizeof url, "sqlite:%s/sked.db", o->data);
    else if (o->store)
        snprintf(url, sizeof url, "%s", o->store);
    const char *queue_url = o->queue ? o->queue : all ? "mem:" : NULL;
    sked_err err = {0};
    sked_store *st = NULL;
    sked_queue *q = NULL;
    sked_sched *sched = NULL;
    sked_worker *worker = NULL;
    sked_api *api = NULL;
    sked_http_server *srv = NULL;
    int rc = SKED_EXIT_FAILED;
    if ((o->roles & (ROLE_API | ROLE_SCHED)) && sked_store_open(url, &st, &err) < 0) {
        fprintf(stderr, "sked %s: store: %s\n", o->cmd, err.msg);
        return SKED_EXIT_FAILED;
    }
    if (embedded && ensure_admin_token(st, o->data) < 0)
        goto out;
    if (queue_url && sked_queue_open(queue_url, &q, &err) < 0) {
        fprintf(stderr, "sked %s: queue: %s\n", o->cmd, err.msg);
        goto out;
    }
    /* One embedded server per data directory: a stable owner lets a
     * restarted server take its claimed runs back at once instead of
     * waiting for their leases.  Elsewhere every process is its own. */
    char id[128], hostname[64] = "";
    gethostname(hostname, sizeof hostname - 1);
    if (o->name)
        snprintf(id, sizeof id, "%s", o->name);
    else if (embedded)
        snprintf(id, sizeof id, "server@%s", hostname);
    else
        snprintf(id, sizeof id, "%s@%s/%d", o->cmd, hostname, (int)getpid());
    if (o->roles & ROLE_SCHED) {
        sked_sched_config sc = {.store = st, .queue = q, .owner = id,
                                .retention_keep = o->keep_runs, .retention_age_us = o->keep_for,
                                .recover_all_on_start = embedded,
                                .premark_us = PREMARK_US,
                                .jobs_per_message = o->jobs_per_message};
        if (sked_sched_start(&sc, &sched, &err) < 0) {
            fprintf(stderr, "sked %s: scheduler: %s\n", o->cmd, err.msg);
            goto out;
        }
    }
    /* --queues a,b -> {"a","b",NULL} */
    char qbuf[1024];
    const char *qnames[33] = {0};
    snprintf(qbuf, sizeof qbuf, "%s", o->queues);
    int nq = 0;
    for (char *save, *tok = strtok_r(qbuf, ",", &save); tok && nq < 32;
         tok = strtok_r(NULL, ",", &save))
        qnames[nq++] = tok;
    if (o->roles & ROLE_WORKER) {
        char wid[160];
        if (o->name)
            snprintf(wid, sizeof wid, "%s", o->name);
        else
            snprintf(wid, sizeof wid, "%s/%d", hostname, (int)getpid());
        sked_worker_config wc = {.queue = q, .id = wid, .queues = qnames, .slots = o->slots,
                                 .shell_pool = o->shell_pool};
        if (sked_worker_start(&wc, &worker, &err) < 0) {
            fprintf(stderr, "sked %s: worker: %s\n", o->cmd, err.msg);
            goto out;
        }
    }
    server_ctx ctx = {.sched = sched, .worker = worker, .queue = q};
    sked_metrics *m = sked_metrics_default();
    sked_gauge *g_busy = NULL, *g_free = NULL, *g_pool = NULL;
    depth_ctx depths[33];
    sked_gauge *g_depth[33] = {0};
    if (worker) {
        g_busy = sked_gauge_get_func(m, "sked_worker_slots_busy", "Worker slots running a run now.",
                                     "", gauge_busy, &ctx);
        g_free = sked_gauge_get_func(m, "sked_worker_slots_free", "Worker slots free now.", "",
                                     gauge_free, &ctx);
        g_pool = sked_gauge_get_func(m, "sked_shell_pool_idle",
                                     "Idle pre-spawned shells ready for shell runs.", "",
                                     gauge_pool, &ctx);
        for (int k = 0; k < nq; k++) {
            char labels[200];
            depths[k].queue = q;
            snprintf(depths[k].name, sizeof depths[k].name, "%s", qnames[k]);
            if (sked_metrics_labels(labels, sizeof labels, "queue", qnames[k], NULL) >= 0)
                g_depth[k] = sked_gauge_get_func(m, "sked_queue_depth",
                                                 "Messages ready in a queue, not yet delivered.",
                                                 labels, gauge_depth, &depths[k]);
        }
    }
    char where[300] = "";
    if (o->roles & ROLE_API) {
        sked_api_hooks hooks = {.changed = on_changed, .canceled = on_canceled,
                                .ready = on_ready, .ctx = &ctx};
        api = sked_api_new(st, &hooks);
        sked_http_config cfg = {.listen = o->listen, .threads = o->threads,
                                .dispatch = sked_api_dispatch, .ctx = api};
        if (sked_http_start(&cfg, &srv, &err) < 0) {
            fprintf(stderr, "sked %s: --listen %s: %s\n", o->cmd, o->listen, err.msg);
            goto out;
        }
        /* HOST of HOST:PORT as given ("" means every interface) */
        char host[256];
        const char *colon = strrchr(o->listen, ':');
        size_t hl = colon ? (size_t)(colon - o->listen) : 0;
        snprintf(host, sizeof host, "%.*s", (int)hl, o->listen);
        if (host[0] == '\0')
            snprintf(host, sizeof host, "0.0.0.0");
        snprintf(where, sizeof where, "http://%s:%d", host, sked_http_port(srv));
        printf("listening on %s\n", where);
        fflush(stdout);
    }
    printf("started %s %s\n", o->cmd, id);
    fflush(stdout);
    if (o->metrics) {
        sked_http_config mc = {.listen = o->metrics, .threads = 2,
                               .dispatch = metrics_dispatch, .ctx = NULL};
        if (sked_http_start(&mc, &srv, &err) < 0) {
            fprintf(stderr, "sked %s: --metrics %s: %s\n", o->cmd, o->metrics, err.msg);
            goto out;
        }
        printf("metrics on http://%.*s:%d/metrics\n",
               (int)(strrchr(o->metrics, ':') ? strrchr(o->metrics, ':') - o->metrics : 0),
               o->metrics, sked_http_port(srv));
        fflush(stdout);
    }
    sked_log(SKED_LOG_INFO, "sked started", "role", o->cmd, "id", id, "version", SKED_VERSION,
             "url", where[0] ? where : NULL, "data", embedded ? o->data : NULL, NULL);

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

static int node_main(const char *cmd, int roles, int argc, char **argv)
{
    /* Handlers block on the durable commit, so threads bound how many
     * writes share one group commit: more than the CPU count. */
    node_opts o = {.cmd = cmd, .roles = roles, .listen = "127.0.0.1:7070", .level = "info",
                   .queues = "default", .threads = 16, .slots = 100, .keep_runs = 1000,
                   .keep_for = INT64_C(7) * 86400 * SKED_USEC_PER_SEC};
    int rc = parse_opts(argc, argv, &o);
    if (rc < 0)
        return SKED_EXIT_OK; /* --help */
    return rc != SKED_EXIT_OK ? rc : run_node(&o);
}

int sked_cli_server(int argc, char **argv)
{
    return node_main("server", ROLE_API | ROLE_SCHED | ROLE_WORKER, argc, argv);
}
int sked_cli_api(int argc, char **argv) { return node_main("api", ROLE_API, argc, argv); }
int sked_cli_scheduler(int argc, char **argv) { return node_main("scheduler", ROLE_SCHED, argc, argv); }
int sked_cli_worker(int argc, char **argv) { return node_main("worker", ROLE_WORKER, argc, argv); }
