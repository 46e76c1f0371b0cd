/*
 * cmd_task_add.c - `sked add`: create a task from options or a JSON file.
 *
 *   sked add [--name N] SCHEDULE TARGET [OPTIONS]     (see add_usage)
 *   sked add --file task.json | --file -
 *
 * The options are turned into the API's task JSON and sent to
 * POST /v1/tasks.  Here only the command line is checked (one schedule, one
 * target, options that belong to that target, numbers, enum values):
 * everything else (cron syntax, zones, durations, times) is the server's
 * to judge, so that its error names the field in one place and the message
 * is the same as the API's.  Usage errors exit 2 before anything is sent.
 *
 * Not here: the other task commands (cmd_task.c).
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"

#define MAX_FILE (16u << 20)

static const char add_usage[] =
    "usage: sked add [--name N] SCHEDULE TARGET [OPTIONS] [--json]\n"
    "       sked add --file FILE [--idempotency-key K] [--json]\n"
    "\n"
    "Create a task (POST /v1/tasks) and print its id, name and next run.\n"
    "\n"
    "SCHEDULE, exactly one of:\n"
    "  --cron EXPR [--tz ZONE]   cron expression, in ZONE (IANA name, default UTC)\n"
    "  --every DUR               every DUR (30s, 5m, 1h30m, 1d), on multiples of\n"
    "                            DUR since --start-at or the Unix epoch\n"
    "  --at TIME                 once, at TIME (RFC 3339: 2026-12-01T09:00:00Z)\n"
    "  --start-at TIME, --end-at TIME, --max-runs N, --jitter DUR\n"
    "\n"
    "TARGET, exactly one of:\n"
    "  --shell CMD               run CMD with /bin/sh -c\n"
    "      --env K=V (repeatable), --cwd DIR\n"
    "  --http URL                send a request to URL\n"
    "      --method M (default POST), --header 'K: V' (repeatable), --body TEXT\n"
    "  --timeout DUR             kill or abandon the run after DUR\n"
    "                            (default: shell 1h, http 30s)\n"
    "\n"
    "OPTIONS:\n"
    "  --queue Q                 the worker queue (default \"default\")\n"
    "  --retry N                 at most N attempts per run (retry.max_attempts)\n"
    "  --backoff DUR             wait before the first retry (retry.backoff)\n"
    "  --overlap allow|skip|queue_one   when the previous run is unfinished\n"
    "  --misfire run_once|skip|run_all  occurrences missed during an outage\n"
    "  --label K=V               (repeatable)\n"
    "  --idempotency-key K       a repeated request with K returns the same task\n"
    "  --file FILE               send FILE (a task's JSON; - for stdin) as is\n"
    "  --json                    print the created task's JSON\n"
    "\n"
    "Example: sked add --name backup --cron '0 3 * * *' --tz Europe/Berlin \\\n"
    "             --shell '/usr/local/bin/backup --full' --retry 3\n"
    "Exit status: 0 created, 1 the server refused or could not be reached,\n"
    "2 usage error (nothing sent).\n";

/* The options, in one table: single-valued ones first, then the repeatable
 * ones, which collect their values in order. */
enum {
    O_NAME, O_CRON, O_TZ, O_EVERY, O_AT, O_SHELL, O_HTTP, O_METHOD, O_BODY,
    O_QUEUE, O_RETRY, O_BACKOFF, O_OVERLAP, O_MISFIRE, O_TIMEOUT, O_START_AT,
    O_END_AT, O_MAX_RUNS, O_JITTER, O_CWD, O_IDEM, O_FILE,
    O_HEADER, O_LABEL, O_ENV, NOPTS
};
#define FIRST_MULTI O_HEADER
#define NMULTI (NOPTS - FIRST_MULTI)

static const char *const opt_names[NOPTS] = {
    "--name", "--cron", "--tz", "--every", "--at", "--shell", "--http",
    "--method", "--body", "--queue", "--retry", "--backoff", "--overlap",
    "--misfire", "--timeout", "--start-at", "--end-at", "--max-runs",
    "--jitter", "--cwd", "--idempotency-key", "--file",
    "--header", "--label", "--env",
};

typedef struct add_args {
    const char *v[NOPTS];
    const char **multi[NMULTI]; /* argv pointers */
    int nmulti[NMULTI];
    int json;
} add_args;

/* One line "sked add: ... (see sked add --help)"; returns SKED_EXIT_USAGE. */
__attribute__((format(printf, 1, 2)))
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("sked add: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see sked add --help)\n", stderr);
    va_end(ap);
    return SKED_EXIT_USAGE;
}

static int parse_args(int argc, char **argv, add_args *a)
{
    int i = 1;
    while (i < argc) {
        if (sked_cli_is_help(argv[i])) {
            fputs(add_usage, stdout);
            return -1;
        }
        if (strcmp(argv[i], "--json") == 0) {
            a->json = 1;
            i++;
            continue;
        }
        int k, r = 0;
        const char *val = NULL;
        for (k = 0; k < NOPTS; k++)
            if ((r = sked_cli_opt(argc, argv, &i, opt_names[k], &val)) != 0)
                break;
        if (r < 0)
            return SKED_EXIT_USAGE;
        if (k == NOPTS) {
            if (argv[i][0] == '-')
                return usage_error("unknown option %s", argv[i]);
            return usage_error("unexpected argument \"%s\"; quote a "
                               "command that has blanks, as in "
                               "--shell 'echo hi'", argv[i]);
        }
        if (k < FIRST_MULTI) {
            if (a->v[k] != NULL)
                return usage_error("%s given twice", opt_names[k]);
            a->v[k] = val;
        } else {
            int m = k - FIRST_MULTI;
            a->multi[m] = realloc(a->multi[m],
                                  (size_t)(a->nmulti[m] + 1) * sizeof(char *));
            if (a->multi[m] == NULL)
                abort();
            a->multi[m][a->nmulti[m]++] = val;
        }
    }
    return 0;
}

/* Non-zero when option k was given. */
static int given(const add_args *a, int k)
{
    return k < FIRST_MULTI ? a->v[k] != NULL : a->nmulti[k - FIRST_MULTI] > 0;
}

/* The checks that need no server; returns 0 or SKED_EXIT_USAGE. */
static int check_args(const add_args *a)
{
    const char *const *v = a->v;
    if (v[O_IDEM] != NULL) {
        size_t n = strlen(v[O_IDEM]);
        int printable = n > 0 && n <= 255;
        for (size_t k = 0; k < n && printable; k++)
            printable = v[O_IDEM][k] >= 0x20 && v[O_IDEM][k] <= 0x7e;
        if (!printable)
            return usage_error("--idempotency-key: expected 1 to 255 printable "
                               "ASCII characters");
    }
    if (v[O_FILE] != NULL) {
        for (int k = 0; k < NOPTS; k++)
            if (k != O_FILE && k != O_IDEM && given(a, k))
                return usage_error("--file takes the whole task; %s cannot "
                                   "be given with it", opt_names[k]);
        return 0;
    }
    int nsched = (v[O_CRON] != NULL) + (v[O_EVERY] != NULL) + (v[O_AT] != NULL);
    if (nsched == 0)
        return usage_error("no schedule: give --cron EXPR, --every DUR or "
                           "--at TIME");
    if (nsched > 1)
        return usage_error("give only one of --cron, --every and --at");
    if (v[O_TZ] != NULL && v[O_CRON] == NULL)
        return usage_error("--tz applies to --cron only");
    if (v[O_SHELL] == NULL && v[O_HTTP] == NULL)
        return usage_error("no target: give --shell CMD or --http URL");
    if (v[O_SHELL] != NULL && v[O_HTTP] != NULL)
        return usage_error("give only one of --shell and --http");
    static const int http_only[] = {O_METHOD, O_BODY, O_HEADER};
    static const int shell_only[] = {O_CWD, O_ENV};
    for (size_t k = 0; k < sizeof http_only / sizeof *http_only; k++) {
        int o = http_only[k];
        if (v[O_HTTP] == NULL && given(a, o))
            return usage_error("%s applies to --http targets only", opt_names[o]);
    }
    for (size_t k = 0; k < sizeof shell_only / sizeof *shell_only; k++) {
        int o = shell_only[k];
        if (v[O_SHELL] == NULL && given(a, o))
            return usage_error("%s applies to --shell targets only", opt_names[o]);
    }
    if (v[O_OVERLAP] != NULL && strcmp(v[O_OVERLAP], "allow") != 0 &&
        strcmp(v[O_OVERLAP], "skip") != 0 && strcmp(v[O_OVERLAP], "queue_one") != 0)
        return usage_error("--overlap: expected allow, skip or queue_one, "
                           "got \"%s\"", v[O_OVERLAP]);
    if (v[O_MISFIRE] != NULL && strcmp(v[O_MISFIRE], "run_once") != 0 &&
        strcmp(v[O_MISFIRE], "skip") != 0 && strcmp(v[O_MISFIRE], "run_all") != 0)
        return usage_error("--misfire: expected run_once, skip or run_all, "
                           "got \"%s\"", v[O_MISFIRE]);
    return 0;
}

/* A whole non-negative number for option name; -1 after a message. */
static long long count_arg(const char *name, const char *s)
{
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (*s < '0' || *s > '9' || *end != '\0' || errno != 0 || n > INT_MAX) {
        usage_error("%s: expected a whole number, got \"%s\"", name, s);
        return -1;
    }
    return n;
}

/* Split "K=V" (sep '=') or "K: V" (sep ':') into obj[K] = V; repeated keys
 * and empty keys are usage errors.  Returns 0 or SKED_EXIT_USAGE. */
static int add_pairs(json_t *obj, const char *opt, const char *const *vals,
                     int n, char sep)
{
    for (int k = 0; k < n; k++) {
        const char *s = vals[k], *at = strchr(s, sep);
        if (at == NULL || at == s) {
            fprintf(stderr, "sked add: %s: expected %s, got \"%s\" (see sked "
                            "add --help)\n", opt,
                    sep == ':' ? "'NAME: VALUE'" : "KEY=VALUE", s);
            return SKED_EXIT_USAGE;
        }
        char key[256];
        size_t klen = (size_t)(at - s);
        while (klen > 0 && sep == ':' && s[klen - 1] == ' ')
            klen--;
        if (klen == 0 || klen >= sizeof key) {
            fprintf(stderr, "sked add: %s: the key of \"%s\" is empty or "
                            "longer than %zu bytes\n", opt, s, sizeof key - 1);
            return SKED_EXIT_USAGE;
        }
        memcpy(key, s, klen);
        key[klen] = '\0';
        const char *val = at + 1;
        while (sep == ':' && (*val == ' ' || *val == '\t'))
            val++;
        if (json_object_get(obj, key) != NULL) {
            fprintf(stderr, "sked add: %s: \"%s\" given twice\n", opt, key);
            return SKED_EXIT_USAGE;
        }
        json_t *js = json_string(val);
        if (js == NULL) {
            fprintf(stderr, "sked add: %s: \"%s\" is not valid UTF-8\n", opt, s);
            return SKED_EXIT_USAGE;
        }
        json_object_set_new(obj, key, js);
    }
    return 0;
}

/* obj[key] = s when s is given.  Strings that are not UTF-8 are refused
 * here: jansson would drop them silently.  Returns 0 or SKED_EXIT_USAGE. */
static int set_str(json_t *obj, const char *key, const char *s, const char *opt)
{
    if (s == NULL)
        return 0;
    json_t *js = json_string(s);
    if (js == NULL) {
        fprintf(stderr, "sked add: %s: the value is not valid UTF-8\n", opt);
        return SKED_EXIT_USAGE;
    }
    json_object_set_new(obj, key, js);
    return 0;
}

/* The task JSON of the options; NULL after a usage message. */
static json_t *build_task(const add_args *a)
{
    const char *const *v = a->v;
    json_t *task = json_object(), *sched = json_object(), *target = json_object();
    json_t *pairs = NULL;
    long long n;
    int bad = 0;
    bad |= set_str(task, "name", v[O_NAME], "--name");

    json_object_set_new(task, "schedule", sched);
    bad |= set_str(sched, "cron", v[O_CRON], "--cron");
    bad |= set_str(sched, "timezone", v[O_TZ], "--tz");
    bad |= set_str(sched, "every", v[O_EVERY], "--every");
    bad |= set_str(sched, "at", v[O_AT], "--at");
    bad |= set_str(sched, "start_at", v[O_START_AT], "--start-at");
    bad |= set_str(sched, "end_at", v[O_END_AT], "--end-at");
    if (v[O_MAX_RUNS] != NULL) {
        if ((n = count_arg("--max-runs", v[O_MAX_RUNS])) < 0)
            goto fail;
        json_object_set_new(sched, "max_runs", json_integer(n));
    }
    bad |= set_str(sched, "jitter", v[O_JITTER], "--jitter");

    json_object_set_new(task, "target", target);
    if (v[O_SHELL] != NULL) {
        json_object_set_new(target, "type", json_string("shell"));
        bad |= set_str(target, "command", v[O_SHELL], "--shell");
        if (a->nmulti[O_ENV - FIRST_MULTI] > 0) {
            pairs = json_object();
            json_object_set_new(target, "env", pairs);
            bad |= add_pairs(pairs, "--env", a->multi[O_ENV - FIRST_MULTI],
                             a->nmulti[O_ENV - FIRST_MULTI], '=');
        }
        bad |= set_str(target, "cwd", v[O_CWD], "--cwd");
    } else {
        json_object_set_new(target, "type", json_string("http"));
        bad |= set_str(target, "url", v[O_HTTP], "--http");
        bad |= set_str(target, "method", v[O_METHOD], "--method");
        if (a->nmulti[O_HEADER - FIRST_MULTI] > 0) {
            pairs = json_object();
            json_object_set_new(target, "headers", pairs);
            bad |= add_pairs(pairs, "--header", a->multi[O_HEADER - FIRST_MULTI],
                             a->nmulti[O_HEADER - FIRST_MULTI], ':');
        }
        bad |= set_str(target, "body", v[O_BODY], "--body");
    }
    bad |= set_str(target, "timeout", v[O_TIMEOUT], "--timeout");

    bad |= set_str(task, "queue", v[O_QUEUE], "--queue");
    if (v[O_RETRY] != NULL || v[O_BACKOFF] != NULL) {
        json_t *retry = json_object();
        json_object_set_new(task, "retry", retry);
        if (v[O_RETRY] != NULL) {
            if ((n = count_arg("--retry", v[O_RETRY])) < 0)
                goto fail;
            json_object_set_new(retry, "max_attempts", json_integer(n));
        }
        bad |= set_str(retry, "backoff", v[O_BACKOFF], "--backoff");
    }
    bad |= set_str(task, "overlap", v[O_OVERLAP], "--overlap");
    bad |= set_str(task, "misfire", v[O_MISFIRE], "--misfire");
    if (a->nmulti[O_LABEL - FIRST_MULTI] > 0) {
        pairs = json_object();
        json_object_set_new(task, "labels", pairs);
        bad |= add_pairs(pairs, "--label", a->multi[O_LABEL - FIRST_MULTI],
                         a->nmulti[O_LABEL - FIRST_MULTI], '=');
    }
    if (bad)
        goto fail;
    return task;
fail:
    json_decref(task);
    return NULL;
}

/* The whole of FILE ("-": stdin), checked to be a JSON object.  Returns a
 * malloc'ed NUL-terminated text with its length in *len, or NULL after a
 * message. */
static char *read_task_file(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    const char *shown = f == stdin ? "stdin" : path;
    if (f == NULL) {
        fprintf(stderr, "sked add: --file: cannot open %s: %s\n", path,
                strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (buf == NULL)
        abort();
    for (;;) {
        if (n + 1 >= cap) {
            cap *= 2;
            if (cap > MAX_FILE + 2u) {
                fprintf(stderr, "sked add: --file: %s is larger than %u MiB\n",
                        shown, MAX_FILE >> 20);
                goto fail;
            }
            if ((buf = realloc(buf, cap)) == NULL)
                abort();
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        fprintf(stderr, "sked add: --file: cannot read %s: %s\n", shown,
                strerror(errno));
        goto fail;
    }
    buf[n] = '\0';
    json_error_t jerr;
    json_t *doc = json_loadb(buf, n, 0, &jerr);
    if (doc == NULL) {
        fprintf(stderr, "sked add: --file: %s:%d:%d: %s\n", shown, jerr.line,
                jerr.column, jerr.text);
        goto fail;
    }
    int is_obj = json_is_object(doc);
    json_decref(doc);
    if (!is_obj) {
        fprintf(stderr, "sked add: --file: %s holds JSON but not an object; "
                        "expected one task {\"schedule\":…,\"target\":…}\n", shown);
        goto fail;
    }
    if (f != stdin)
        fclose(f);
    *len = n;
    return buf;
fail:
    if (f != stdin)
        fclose(f);
    free(buf);
    return NULL;
}

int sked_cli_add(int argc, char **argv)
{
    add_args a;
    memset(&a, 0, sizeof a);
    json_t *task = NULL;
    char *text = NULL;
    size_t len = 0;
    sked_cli_client c = {0};
    sked_cli_answer ans = {0};
    int rc = parse_args(argc, argv, &a);
    if (rc != 0) {
        rc = rc < 0 ? SKED_EXIT_OK : rc; /* -1: --help was printed */
        goto done;
    }
    if ((rc = check_args(&a)) != 0)
        goto done;
    rc = SKED_EXIT_USAGE;
    if (a.v[O_FILE] != NULL) {
        if ((text = read_task_file(a.v[O_FILE], &len)) == NULL)
            goto done;
    } else {
        if ((task = build_task(&a)) == NULL)
            goto done;
        if ((text = json_dumps(task, JSON_COMPACT)) == NULL)
            abort();
        len = strlen(text);
    }

    if ((rc = sked_cli_client_init(&c, "add")) != 0)
        goto done;
    c.idempotency_key = a.v[O_IDEM];
    rc = SKED_EXIT_FAILED;
    if (sked_cli_call(&c, "POST", "/v1/tasks", text, len, &ans) < 0)
        goto done;
    if (ans.status != 200 && ans.status != 201) {
        sked_cli_print_error(&c, &ans);
        goto done;
    }
    if (!json_is_object(ans.json)) {
        fprintf(stderr, "sked add: the server answered %ld without a task "
                        "(is %s a sked server?)\n", ans.status, c.url);
        goto done;
    }
    rc = SKED_EXIT_OK;
    if (a.json) {
        sked_cli_print_raw(&ans);
    } else {
        const char *id = sked_cli_str(ans.json, "id");
        const char *name = sked_cli_str(ans.json, "name");
        const char *next = sked_cli_str(ans.json, "next_run_at");
        printf("%s  %s  next run %s%s\n", id ? id : "?", name ? name : "-",
               next ? next : "-",
               ans.status == 200 ? "  (existing task: same idempotency key)" : "");
    }
done:
    sked_cli_answer_deinit(&ans);
    if (c.curl != NULL)
        sked_cli_client_deinit(&c);
    json_decref(task);
    free(text);
    for (int m = 0; m < NMULTI; m++)
        free(a.multi[m]);
    return rc;
}
