/*
 * cmd_task_runs.c - runs and workers from the command line: `sked trigger`,
 * `sked runs`, `sked cancel`, `sked workers`.
 *
 * Thin commands over POST /v1/tasks/{id}:trigger, GET /v1/tasks/{id}/runs
 * or /v1/runs, POST /v1/runs/{id}:cancel and GET /v1/workers, in the style
 * of cmd_task.c: a table by default, the API's JSON with --json.
 *
 * Not here: the task commands (cmd_task.c, cmd_task_add.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"

static const char trigger_usage[] =
    "usage: sked trigger TASK [--json]\n"
    "\n"
    "Run a task (an id or a name) now, outside its schedule, and print the\n"
    "new run.\n";

static const char runs_usage[] =
    "usage: sked runs [TASK] [--status S] [--limit N] [--all] [--json]\n"
    "\n"
    "List runs, newest first: of one task (an id or a name), or of the whole\n"
    "namespace.  S is scheduled, dispatched, running, succeeded, failed,\n"
    "timed_out, skipped or canceled.  --limit sets the page size; --all\n"
    "follows the pages to the end.\n";

static const char cancel_usage[] =
    "usage: sked cancel RUN [--json]\n"
    "\n"
    "Cancel a run that has not finished; a running shell process is killed.\n";

static const char workers_usage[] =
    "usage: sked workers [--json]\n"
    "\n"
    "List the live workers: id, queues, slots, busy slots, last heartbeat.\n";

/* What a run came to, in a few words: "exit 0", "HTTP 503", "overlap". */
static void result_text(const json_t *run, char *buf, size_t size)
{
    const json_t *exit_code = json_object_get(run, "exit_code");
    const json_t *http = json_object_get(run, "http_status");
    const char *reason = sked_cli_str(run, "reason");
    const char *error = sked_cli_str(run, "error");
    if (reason != NULL)
        snprintf(buf, size, "%s", reason);
    else if (json_is_integer(exit_code))
        snprintf(buf, size, "exit %" JSON_INTEGER_FORMAT,
                 json_integer_value(exit_code));
    else if (json_is_integer(http))
        snprintf(buf, size, "HTTP %" JSON_INTEGER_FORMAT, json_integer_value(http));
    else if (error != NULL)
        snprintf(buf, size, "%.60s", error);
    else
        snprintf(buf, size, "-");
}

void sked_cli_print_runs(const json_t *runs, int with_task)
{
    static const char *const header[] = {"ID", "TASK", "SCHEDULED", "STATUS",
                                         "ATTEMPT", "RESULT", "DURATION"};
    sked_cli_table t;
    /* Without the TASK column, the header and rows skip index 1. */
    const char *h[7];
    int n = 0;
    for (int k = 0; k < 7; k++)
        if (k != 1 || with_task)
            h[n++] = header[k];
    sked_cli_table_init(&t, n, h);
    size_t i;
    json_t *run;
    json_array_foreach(runs, i, run) {
        char attempt[32], result[80], dur[48];
        sked_cli_text(run, "attempt", attempt, sizeof attempt);
        result_text(run, result, sizeof result);
        const json_t *ms = json_object_get(run, "duration_ms");
        if (json_is_number(ms))
            snprintf(dur, sizeof dur, "%.0fms", json_number_value(ms));
        else
            snprintf(dur, sizeof dur, "-");
        const char *cells[7] = {
            sked_cli_str(run, "id"), sked_cli_str(run, "task_id"),
            sked_cli_str(run, "scheduled_at"), sked_cli_str(run, "status"),
            attempt, result, dur,
        };
        const char *row[7];
        int m = 0;
        for (int k = 0; k < 7; k++)
            if (k != 1 || with_task)
                row[m++] = cells[k];
        sked_cli_table_add(&t, row);
    }
    sked_cli_table_print(&t, stdout);
    sked_cli_table_deinit(&t);
}

/* One run, one line: "RUN  TASK  scheduled T  STATUS". */
static void print_run(const json_t *run)
{
    const char *id = sked_cli_str(run, "id");
    const char *task = sked_cli_str(run, "task_id");
    const char *at = sked_cli_str(run, "scheduled_at");
    const char *status = sked_cli_str(run, "status");
    printf("%s  task %s  scheduled %s  %s\n", id ? id : "?", task ? task : "-",
           at ? at : "-", status ? status : "?");
}

int sked_cli_trigger(int argc, char **argv)
{
    const char *task;
    int json = 0;
    int rc = sked_cli_one_arg(argc, argv, trigger_usage, "TASK", &task, &json);
    if (rc != 0)
        return rc == 1 ? SKED_EXIT_OK : rc;
    sked_cli_client c;
    if ((rc = sked_cli_client_init(&c, "trigger")) != 0)
        return rc;
    char *id = NULL;
    if ((rc = sked_cli_task_id(&c, task, &id)) == 0) {
        sked_cli_answer ans;
        char *path = sked_cli_task_path(id, ":trigger");
        rc = sked_cli_request(&c, "POST", path, NULL, &ans);
        free(path);
        if (rc == 0) {
            if (json)
                sked_cli_print_raw(&ans);
            else
                print_run(ans.json);
            sked_cli_answer_deinit(&ans);
        }
    }
    free(id);
    sked_cli_client_deinit(&c);
    return rc;
}

int sked_cli_runs(int argc, char **argv)
{
    const char *task = NULL, *status = NULL, *limit = NULL, *v;
    int all = 0, json = 0, i = 1, r;
    while (i < argc) {
        if (sked_cli_is_help(argv[i])) {
            fputs(runs_usage, stdout);
            return SKED_EXIT_OK;
        }
        if (strcmp(argv[i], "--all") == 0) {
            all = 1;
            i++;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
            i++;
        } else if ((r = sked_cli_opt(argc, argv, &i, "--status", &v)) != 0) {
            if (r < 0)
                return SKED_EXIT_USAGE;
            status = v;
        } else if ((r = sked_cli_opt(argc, argv, &i, "--limit", &v)) != 0) {
            if (r < 0)
                return SKED_EXIT_USAGE;
            limit = v;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "sked runs: unknown option %s (see sked runs "
                            "--help)\n", argv[i]);
            return SKED_EXIT_USAGE;
        } else if (task == NULL) {
            task = argv[i++];
        } else {
            fprintf(stderr, "sked runs: one TASK only; \"%s\" is one too many\n",
                    argv[i]);
            return SKED_EXIT_USAGE;
        }
    }
    if (limit != NULL && (limit[0] == '\0' || strlen(limit) > 9 ||
                          strspn(limit, "0123456789") != strlen(limit))) {
        fprintf(stderr, "sked runs: --limit: expected a whole number, got "
                        "\"%s\"\n", limit);
        return SKED_EXIT_USAGE;
    }

    sked_cli_client c;
    int rc = sked_cli_client_init(&c, "runs");
    if (rc != 0)
        return rc;
    char *id = NULL, *path = NULL;
    if (task != NULL) {
        if ((rc = sked_cli_task_id(&c, task, &id)) != 0)
            goto done;
        path = sked_cli_task_path(id, "/runs");
    } else {
        path = strdup("/v1/runs");
        if (path == NULL)
            abort();
    }
    sked_cli_query_add(&path, "status", status);
    sked_cli_query_add(&path, "limit", limit);
    sked_cli_answer ans;
    if ((rc = sked_cli_get_list(&c, path, "runs", all, &ans)) != 0)
        goto done;
    if (json && all)
        sked_cli_print_json(ans.json);
    else if (json)
        sked_cli_print_raw(&ans);
    else
        sked_cli_print_runs(json_object_get(ans.json, "runs"), task == NULL);
    if (!json) {
        const char *more = sked_cli_str(ans.json, "next_cursor");
        if (more != NULL && more[0] != '\0')
            fprintf(stderr, "sked runs: more runs follow; use --all to list "
                            "them all\n");
    }
    sked_cli_answer_deinit(&ans);
done:
    free(path);
    free(id);
    sked_cli_client_deinit(&c);
    return rc;
}

int sked_cli_cancel(int argc, char **argv)
{
    const char *run;
    int json = 0;
    int rc = sked_cli_one_arg(argc, argv, cancel_usage, "RUN", &run, &json);
    if (rc != 0)
        return rc == 1 ? SKED_EXIT_OK : rc;
    sked_cli_client c;
    if ((rc = sked_cli_client_init(&c, "cancel")) != 0)
        return rc;
    char *esc = sked_cli_escape(run);
    size_t n = strlen(esc) + 32;
    char *path = malloc(n);
    if (path == NULL)
        abort();
    snprintf(path, n, "/v1/runs/%s:cancel", esc);
    sked_cli_answer ans;
    if ((rc = sked_cli_request(&c, "POST", path, NULL, &ans)) == 0) {
        if (json)
            sked_cli_print_raw(&ans);
        else
            print_run(ans.json);
        sked_cli_answer_deinit(&ans);
    }
    free(path);
    free(esc);
    sked_cli_client_deinit(&c);
    return rc;
}

/* obj's first present member among keys, as text. */
static const char *first_of(const json_t *obj, const char *const *keys,
                            char *buf, size_t size)
{
    for (int k = 0; keys[k] != NULL; k++)
        if (json_object_get(obj, keys[k]) != NULL)
            return sked_cli_text(obj, keys[k], buf, size);
    return "-";
}

int sked_cli_workers(int argc, char **argv)
{
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (sked_cli_is_help(argv[i])) {
            fputs(workers_usage, stdout);
            return SKED_EXIT_OK;
        }
        if (strcmp(argv[i], "--json") != 0) {
            fprintf(stderr, "sked workers: unexpected \"%s\" (see sked workers "
                            "--help)\n", argv[i]);
            return SKED_EXIT_USAGE;
        }
        json = 1;
    }
    sked_cli_client c;
    int rc = sked_cli_client_init(&c, "workers");
    if (rc != 0)
        return rc;
    sked_cli_answer ans;
    if ((rc = sked_cli_get_list(&c, "/v1/workers", "workers", 0, &ans)) != 0)
        goto done;
    if (json) {
        sked_cli_print_raw(&ans);
    } else {
        static const char *const header[] = {"ID", "QUEUES", "SLOTS", "BUSY",
                                             "LAST HEARTBEAT"};
        static const char *const beat[] = {"last_heartbeat", "last_heartbeat_at",
                                           "heartbeat_at", NULL};
        sked_cli_table t;
        sked_cli_table_init(&t, 5, header);
        size_t i;
        json_t *w;
        json_array_foreach(json_object_get(ans.json, "workers"), i, w) {
            char queues[512] = "", slots[32], busy[32], hb[64];
            const json_t *q = json_object_get(w, "queues");
            if (json_is_array(q)) {
                size_t k;
                json_t *name;
                json_array_foreach(q, k, name) {
                    size_t len = strlen(queues);
                    snprintf(queues + len, sizeof queues - len, "%s%s",
                             k ? "," : "",
                             json_string_value(name) ? json_string_value(name)
                                                     : "?");
                }
            } else {
                sked_cli_text(w, "queues", queues, sizeof queues);
            }
            const char *row[] = {
                sked_cli_str(w, "id"), queues,
                sked_cli_text(w, "slots", slots, sizeof slots),
                sked_cli_text(w, "busy", busy, sizeof busy),
                first_of(w, beat, hb, sizeof hb),
            };
            sked_cli_table_add(&t, row);
        }
        sked_cli_table_print(&t, stdout);
        sked_cli_table_deinit(&t);
    }
    sked_cli_answer_deinit(&ans);
done:
    sked_cli_client_deinit(&c);
    return rc;
}
