/*
 * cmd_task.c - the task commands besides add: `sked ls`, `sked show`,
 * `sked rm`, `sked pause`, `sked resume`.
 *
 * Each is one or a few calls of the API (GET /v1/tasks, GET /v1/tasks/{id},
 * DELETE, :pause, :resume) and prints either a human table or, with
 * --json, the API's JSON as it came.  A TASK is an id or a name.
 *
 * Not here: creating tasks (cmd_task_add.c), runs and workers
 * (cmd_task_runs.c), the HTTP client (client.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "time/rfc3339.h"

static const char ls_usage[] =
    "usage: sked ls [--state S] [--queue Q] [--label K:V] [--name-prefix P]\n"
    "               [--limit N] [--all] [--json]\n"
    "\n"
    "List the tasks of the namespace (GET /v1/tasks): ID NAME SCHEDULE\n"
    "NEXT RUN STATE.  S is active, paused or completed.  --limit sets the\n"
    "page size (default 100, at most 1000); --all follows the pages to the end.\n";

static const char show_usage[] =
    "usage: sked show TASK [--json]\n"
    "\n"
    "Show one task (an id or a name): its fields, its next 5 fire times and\n"
    "its last runs.  --json prints the task as the API gives it.\n";

static const char rm_usage[] =
    "usage: sked rm TASK [--json]\n"
    "\n"
    "Delete a task (an id or a name); its unfinished runs are canceled.\n";

static const char pause_usage[] =
    "usage: sked pause TASK [--json]\n"
    "\n"
    "Pause a task (an id or a name): it fires no more until resumed.\n";

static const char resume_usage[] =
    "usage: sked resume TASK [--json]\n"
    "\n"
    "Resume a paused task; its next occurrence is computed from now.\n";

/* The schedule in a few words: "0 3 * * * Europe/Berlin", "every 5m". */
static void schedule_text(const json_t *sched, char *buf, size_t size)
{
    const char *cron = sked_cli_str(sched, "cron");
    const char *tz = sked_cli_str(sched, "timezone");
    const char *every = sked_cli_str(sched, "every");
    const char *at = sked_cli_str(sched, "at");
    if (cron != NULL && tz != NULL && strcmp(tz, "UTC") != 0)
        snprintf(buf, size, "%s (%s)", cron, tz);
    else if (cron != NULL)
        snprintf(buf, size, "%s", cron);
    else if (every != NULL)
        snprintf(buf, size, "every %s", every);
    else if (at != NULL)
        snprintf(buf, size, "at %s", at);
    else
        snprintf(buf, size, "?");
}

int sked_cli_ls(int argc, char **argv)
{
    static const char *const names[] = {"--state", "--queue", "--label",
                                        "--name-prefix", "--limit"};
    static const char *const params[] = {"state", "queue", "label",
                                         "name_prefix", "limit"};
    enum { N = sizeof names / sizeof *names };
    const char *vals[N] = {0};
    int all = 0, json = 0, i = 1;
    while (i < argc) {
        if (sked_cli_is_help(argv[i])) {
            fputs(ls_usage, stdout);
            return SKED_EXIT_OK;
        }
        if (strcmp(argv[i], "--all") == 0) {
            all = 1;
            i++;
            continue;
        }
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
            i++;
            continue;
        }
        int k, r = 0;
        for (k = 0; k < N; k++)
            if ((r = sked_cli_opt(argc, argv, &i, names[k], &vals[k])) != 0)
                break;
        if (r < 0)
            return SKED_EXIT_USAGE;
        if (k == N) {
            fprintf(stderr, "sked ls: %s \"%s\" (see sked ls --help)\n",
                    argv[i][0] == '-' ? "unknown option" : "unexpected argument",
                    argv[i]);
            return SKED_EXIT_USAGE;
        }
    }
    const char *limit = vals[N - 1];
    if (limit != NULL && (strspn(limit, "0123456789") != strlen(limit) ||
                          limit[0] == '\0' || strlen(limit) > 9)) {
        fprintf(stderr, "sked ls: --limit: expected a whole number, got \"%s\"\n",
                limit);
        return SKED_EXIT_USAGE;
    }

    sked_cli_client c;
    sked_cli_answer ans;
    int rc = sked_cli_client_init(&c, "ls");
    if (rc != 0)
        return rc;
    char *path = strdup("/v1/tasks");
    if (path == NULL)
        abort();
    for (int k = 0; k < N; k++)
        sked_cli_query_add(&path, params[k], vals[k]);
    rc = sked_cli_get_list(&c, path, "tasks", all, &ans);
    free(path);
    if (rc != 0)
        goto done;
    if (json) {
        if (all)
            sked_cli_print_json(ans.json);
        else
            sked_cli_print_raw(&ans);
    } else {
        static const char *const header[] = {"ID", "NAME", "SCHEDULE",
                                             "NEXT RUN", "STATE"};
        sked_cli_table t;
        sked_cli_table_init(&t, 5, header);
        size_t n;
        json_t *task;
        json_array_foreach(json_object_get(ans.json, "tasks"), n, task) {
            char sched[512];
            schedule_text(json_object_get(task, "schedule"), sched, sizeof sched);
            const char *row[] = {
                sked_cli_str(task, "id"), sked_cli_str(task, "name"), sched,
                sked_cli_str(task, "next_run_at"), sked_cli_str(task, "state"),
            };
            sked_cli_table_add(&t, row);
        }
        sked_cli_table_print(&t, stdout);
        sked_cli_table_deinit(&t);
        const char *more = sked_cli_str(ans.json, "next_cursor");
        if (more != NULL && more[0] != '\0')
            fprintf(stderr, "sked ls: more tasks follow; use --all to list "
                            "them all\n");
    }
    sked_cli_answer_deinit(&ans);
done:
    sked_cli_client_deinit(&c);
    return rc;
}

/* ---- show ---------------------------------------------------------------- */

static void line(const char *label, const char *value)
{
    printf("%-15s %s\n", label, value ? value : "-");
}

/* Print obj's members that are not in known[] (NULL-terminated), one per
 * line under indent: what the server adds stays visible. */
static void rest(const json_t *obj, const char *const *known, const char *indent)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        int k = 0;
        while (known[k] != NULL && strcmp(known[k], key) != 0)
            k++;
        if (known[k] != NULL)
            continue;
        char label[80], buf[1024];
        snprintf(label, sizeof label, "%s%s:", indent, key);
        line(label, sked_cli_text(obj, key, buf, sizeof buf));
    }
}

/* A member printed as "  label: value" when present and not null. */
static void sub(const json_t *obj, const char *key, const char *label)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v))
        return;
    char buf[1024], lab[64];
    snprintf(lab, sizeof lab, "  %s:", label);
    line(lab, sked_cli_text(obj, key, buf, sizeof buf));
}

/* Each member of the object obj[key] on its own line "  label: K<sep>V". */
static void pairs(const json_t *obj, const char *key, const char *label,
                  const char *sep)
{
    const char *k;
    json_t *v;
    char lab[64], buf[1024], val[1200];
    snprintf(lab, sizeof lab, "%s:", label);
    json_object_foreach(json_object_get(obj, key), k, v) {
        snprintf(val, sizeof val, "%s%s%s", k, sep,
                 sked_cli_text(json_object_get(obj, key), k, buf, sizeof buf));
        line(lab, val);
    }
}

static void show_task(const json_t *t)
{
    static const char *const known[] = {
        "id", "name", "namespace", "state", "schedule", "target", "queue",
        "retry", "overlap", "misfire", "misfire_grace", "labels", "next_run_at", "run_count",
        "version", "created_at", "updated_at", NULL};
    static const char *const sched_known[] = {
        "cron", "timezone", "every", "at", "start_at", "end_at", "max_runs",
        "jitter", NULL};
    static const char *const target_known[] = {
        "type", "command", "env", "cwd", "url", "method", "headers", "body",
        "timeout", NULL};
    char buf[1024];
    const json_t *sched = json_object_get(t, "schedule");
    const json_t *target = json_object_get(t, "target");

    line("id:", sked_cli_str(t, "id"));
    line("name:", sked_cli_str(t, "name"));
    line("namespace:", sked_cli_str(t, "namespace"));
    line("state:", sked_cli_str(t, "state"));
    schedule_text(sched, buf, sizeof buf);
    line("schedule:", buf);
    sub(sched, "start_at", "start at");
    sub(sched, "end_at", "end at");
    sub(sched, "max_runs", "max runs");
    sub(sched, "jitter", "jitter");
    rest(sched, sched_known, "  ");

    const char *type = sked_cli_str(target, "type");
    if (type != NULL && strcmp(type, "http") == 0) {
        const char *method = sked_cli_str(target, "method");
        snprintf(buf, sizeof buf, "http %s %s", method ? method : "POST",
                 sked_cli_str(target, "url") ? sked_cli_str(target, "url") : "?");
        line("target:", buf);
        pairs(target, "headers", "  header", ": ");
        sub(target, "body", "body");
    } else {
        const char *cmd = sked_cli_str(target, "command");
        snprintf(buf, sizeof buf, "%s %s", type ? type : "?", cmd ? cmd : "");
        line("target:", buf);
        pairs(target, "env", "  env", "=");
        sub(target, "cwd", "cwd");
    }
    sub(target, "timeout", "timeout");
    rest(target, target_known, "  ");

    line("queue:", sked_cli_str(t, "queue"));
    const json_t *retry = json_object_get(t, "retry");
    if (json_is_object(retry)) {
        /* Each setting as key=value: the server's full policy, in its words. */
        char all[1024] = "";
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)retry, k, v) {
            size_t len = strlen(all);
            (void)v;
            snprintf(all + len, sizeof all - len, "%s%s=%s", len ? " " : "", k,
                     sked_cli_text(retry, k, buf, sizeof buf));
        }
        line("retry:", all);
    }
    line("overlap:", sked_cli_text(t, "overlap", buf, sizeof buf));
    line("misfire:", sked_cli_text(t, "misfire", buf, sizeof buf));
    if (json_object_get(t, "misfire_grace") != NULL)
        line("misfire grace:", sked_cli_text(t, "misfire_grace", buf, sizeof buf));
    pairs(t, "labels", "label", "=");
    line("next run:", sked_cli_str(t, "next_run_at"));
    line("run count:", sked_cli_text(t, "run_count", buf, sizeof buf));
    line("version:", sked_cli_text(t, "version", buf, sizeof buf));
    line("created:", sked_cli_str(t, "created_at"));
    line("updated:", sked_cli_str(t, "updated_at"));
    rest(t, known, "");
}

/* The next 5 fire times, in the task's zone; nothing when the server cannot
 * say (a one-time task that ran, an older server). */
static void show_next(sked_cli_client *c, const json_t *t)
{
    const json_t *sched = json_object_get(t, "schedule");
    if (!json_is_object(sched))
        return;
    json_t *body = json_pack("{s:O,s:i}", "schedule", sched, "count", 5);
    sked_cli_answer ans;
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    int rc = sked_cli_call(c, "POST", "/v1/schedules:preview", text, strlen(text),
                       &ans);
    free(text);
    if (rc != 0)
        return;
    json_t *next = json_object_get(ans.json, "next");
    if (ans.status == 200 && json_is_array(next)) {
        const char *zone = sked_cli_str(sched, "timezone");
        printf("\nnext fire times%s%s%s:\n", zone ? " (" : "", zone ? zone : "",
               zone ? ")" : "");
        if (json_array_size(next) == 0)
            printf("  none\n");
        size_t k;
        json_t *v;
        json_array_foreach(next, k, v) {
            char buf[SKED_RFC3339_MAX];
            printf("  %s\n", sked_cli_time_in(json_string_value(v), zone, buf));
        }
    }
    sked_cli_answer_deinit(&ans);
}

/* The last runs, when the server lists them. */
static void show_runs(sked_cli_client *c, const char *id)
{
    char *path = sked_cli_task_path(id, "/runs?limit=5");
    sked_cli_answer ans;
    int rc = sked_cli_call(c, "GET", path, NULL, 0, &ans);
    free(path);
    if (rc != 0)
        return;
    json_t *runs = json_object_get(ans.json, "runs");
    if (ans.status == 200 && json_is_array(runs)) {
        printf("\nlast runs:\n");
        if (json_array_size(runs) == 0)
            printf("  none yet\n");
        else
            sked_cli_print_runs(runs, 0);
    }
    sked_cli_answer_deinit(&ans);
}

int sked_cli_show(int argc, char **argv)
{
    const char *task;
    int json = 0;
    int rc = sked_cli_one_arg(argc, argv, show_usage, "TASK", &task, &json);
    if (rc != 0)
        return rc == 1 ? SKED_EXIT_OK : rc;
    sked_cli_client c;
    if ((rc = sked_cli_client_init(&c, "show")) != 0)
        return rc;
    sked_cli_answer ans;
    char *path = sked_cli_task_path(task, "");
    rc = sked_cli_request(&c, "GET", path, NULL, &ans);
    free(path);
    if (rc == 0) {
        if (json) {
            sked_cli_print_raw(&ans);
        } else {
            show_task(ans.json);
            show_next(&c, ans.json);
            const char *id = sked_cli_str(ans.json, "id");
            show_runs(&c, id ? id : task);
        }
        sked_cli_answer_deinit(&ans);
    }
    sked_cli_client_deinit(&c);
    return rc;
}

/* ---- rm, pause, resume --------------------------------------------------- */

/* One call on one task: method on /v1/tasks/{id}<suffix>; prints the task
 * (or, for a 204, what was done) unless --json. */
static int task_action(int argc, char **argv, const char *usage,
                       const char *method, const char *suffix, const char *done)
{
    const char *task;
    int json = 0;
    int rc = sked_cli_one_arg(argc, argv, usage, "TASK", &task, &json);
    if (rc != 0)
        return rc == 1 ? SKED_EXIT_OK : rc;
    sked_cli_client c;
    if ((rc = sked_cli_client_init(&c, argv[0])) != 0)
        return rc;
    char *id = NULL;
    if ((rc = sked_cli_task_id(&c, task, &id)) != 0)
        goto out;
    sked_cli_answer ans;
    char *path = sked_cli_task_path(id, suffix);
    rc = sked_cli_request(&c, method, path, NULL, &ans);
    free(path);
    if (rc != 0)
        goto out;
    if (json) {
        sked_cli_print_raw(&ans);
    } else if (ans.json == NULL) {
        printf("%s %s\n", done, task);
    } else {
        const char *name = sked_cli_str(ans.json, "name");
        const char *state = sked_cli_str(ans.json, "state");
        const char *next = sked_cli_str(ans.json, "next_run_at");
        printf("%s  %s  %s", id, name ? name : "-", state ? state : "?");
        if (state != NULL && strcmp(state, "active") == 0 && next != NULL)
            printf(", next run %s", next);
        putchar('\n');
    }
    sked_cli_answer_deinit(&ans);
out:
    free(id);
    sked_cli_client_deinit(&c);
    return rc;
}

int sked_cli_rm(int argc, char **argv)
{
    return task_action(argc, argv, rm_usage, "DELETE", "", "deleted");
}

int sked_cli_pause(int argc, char **argv)
{
    return task_action(argc, argv, pause_usage, "POST", ":pause", "paused");
}

int sked_cli_resume(int argc, char **argv)
{
    return task_action(argc, argv, resume_usage, "POST", ":resume", "resumed");
}
