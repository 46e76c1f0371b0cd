/*
 * client.h - the client commands of `sked` (add, ls, show, rm, pause,
 * resume, trigger, runs, cancel, workers) and the small HTTP/JSON client
 * they share.
 *
 * The commands follow cli.h: argv[0] is the command name, the return value
 * is the exit status (0 ok, 1 the server answered an error or could not be
 * reached, 2 usage or input error, in which case nothing was sent).
 *
 * The client reads the server's address from SKED_URL (default
 * http://127.0.0.1:7070) and the bearer token from SKED_TOKEN, else from
 * ./sked-data/admin.token, the file `sked server` writes on first start.
 * It speaks the API of API.md: JSON bodies, errors as
 * {"error":{"code","message","field"}}, which it turns into one stderr line.
 *
 * Not here: the server side (src/api/), local schedule evaluation
 * (cmd_cron.c).
 */
#ifndef SKED_CLI_CLIENT_H
#define SKED_CLI_CLIENT_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

/* ---- The commands ---------------------------------------------------- */

int sked_cli_add(int argc, char **argv);     /* cmd_task_add.c  */
int sked_cli_ls(int argc, char **argv);      /* cmd_task.c      */
int sked_cli_show(int argc, char **argv);
int sked_cli_rm(int argc, char **argv);
int sked_cli_pause(int argc, char **argv);
int sked_cli_resume(int argc, char **argv);
int sked_cli_trigger(int argc, char **argv); /* cmd_task_runs.c */
int sked_cli_runs(int argc, char **argv);
int sked_cli_cancel(int argc, char **argv);
int sked_cli_workers(int argc, char **argv);

/* ---- The HTTP client ------------------------------------------------- */

#define SKED_CLI_DEFAULT_URL "http://127.0.0.1:7070"
#define SKED_CLI_TOKEN_FILE "sked-data/admin.token"

typedef struct sked_cli_client {
    const char *cmd;      /* "add": the prefix of every message            */
    char *url;            /* base URL, no trailing slash; owned            */
    char *token;          /* owned                                         */
    const char *idempotency_key; /* sent as Idempotency-Key when non-NULL  */
    void *curl;           /* one easy handle: the connection is reused     */
} sked_cli_client;

/* What the server answered.  json is the parsed body, or NULL when the body
 * was empty or not JSON; raw is the body as received, NUL-terminated. */
typedef struct sked_cli_answer {
    long status;
    json_t *json;
    char *raw;
    size_t len;
} sked_cli_answer;

/* Find the URL and token and prepare a connection; cmd names the command in
 * messages.  Returns 0, or SKED_EXIT_FAILED after printing why (no token:
 * the message says how to provide one).  On success release with
 * sked_cli_client_deinit. */
int sked_cli_client_init(sked_cli_client *c, const char *cmd);
void sked_cli_client_deinit(sked_cli_client *c);

/* Send method to base URL + path (path starts with "/", already escaped;
 * see sked_cli_escape) with body[0..len) as application/json (body may be
 * NULL: no body).  Returns 0 when the server answered, whatever the status,
 * with *ans filled (release with sked_cli_answer_deinit); returns -1 when no
 * answer came (refused, timeout, bad URL), after printing one line such as
 * `sked: cannot reach http://127.0.0.1:7070 (is sked server running?)`. */
int sked_cli_call(sked_cli_client *c, const char *method, const char *path,
                  const char *body, size_t len, sked_cli_answer *ans);

/* sked_cli_call with a JSON body (or NULL), then insist on a 2xx answer
 * carrying JSON (204 may be empty).  Returns 0 with *ans filled, or
 * SKED_EXIT_FAILED after printing the error line; *ans is then empty. */
int sked_cli_request(sked_cli_client *c, const char *method, const char *path,
                     const json_t *body, sked_cli_answer *ans);

void sked_cli_answer_deinit(sked_cli_answer *ans);

/* Print a non-2xx answer as one stderr line: "sked CMD: FIELD: MESSAGE"
 * when the error names a field, else "sked CMD: MESSAGE (CODE)", with a
 * hint for 401/403; an answer that is not the API's error body is shown by
 * status and the start of the body. */
void sked_cli_print_error(const sked_cli_client *c, const sked_cli_answer *ans);

/* ---- Shared helpers of the commands ---------------------------------- */

/* s %-escaped for use as one path segment or query value (":" and "/"
 * included).  Returns a malloc'ed string the caller frees. */
char *sked_cli_escape(const char *s);

/* Path of a task's resource: "/v1/tasks/" + the escaped id or name +
 * suffix (":pause", "/runs", ""); malloc'ed. */
char *sked_cli_task_path(const char *task, const char *suffix);

/* obj[key] as a string, or NULL when absent, null or not a string. */
const char *sked_cli_str(const json_t *obj, const char *key);

/* obj[key] shown as text in buf: strings as they are, numbers, true/false,
 * "-" for absent or null, compact JSON for the rest.  Returns buf. */
const char *sked_cli_text(const json_t *obj, const char *key, char *buf,
                          size_t size);

/* Write the answer's JSON to stdout as the server sent it (a newline is
 * added when missing).  Returns SKED_EXIT_OK. */
int sked_cli_print_raw(const sked_cli_answer *ans);

/* Write v to stdout as indented JSON. */
void sked_cli_print_json(const json_t *v);

/* The instant text (RFC 3339) rewritten with the offset zone has at that
 * instant, into buf (SKED_RFC3339_MAX bytes); text itself when zone is
 * NULL or unknown, or text does not parse.  Returns the string to print. */
const char *sked_cli_time_in(const char *text, const char *zone, char *buf);

/* A text table: columns padded to the widest cell, two spaces apart. */
typedef struct sked_cli_table {
    int ncols;
    size_t nrows, cap;
    char **cells;         /* nrows * ncols owned copies; row 0 the header  */
} sked_cli_table;

void sked_cli_table_init(sked_cli_table *t, int ncols,
                         const char *const *header);
/* Append one row of ncols cells (NULL prints as "-"); the cells are copied. */
void sked_cli_table_add(sked_cli_table *t, const char *const *row);
void sked_cli_table_print(const sked_cli_table *t, FILE *out);
void sked_cli_table_deinit(sked_cli_table *t);

/* Non-zero when arg is --help or -h. */
int sked_cli_is_help(const char *arg);

/* Parse "CMD ARG [--json]" (ARG named what in messages, e.g. "TASK"; "--"
 * ends the options).  Returns 0 with *arg set, 1 when usage was printed for
 * --help (exit 0), or SKED_EXIT_USAGE after a message. */
int sked_cli_one_arg(int argc, char **argv, const char *usage,
                     const char *what, const char **arg, int *json);

/* The id of task (an id or a name): an id is used as it is, a name is
 * looked up with GET /v1/tasks/{name}.  Returns 0 with *id malloc'ed, or
 * SKED_EXIT_FAILED after the error line. */
int sked_cli_task_id(sked_cli_client *c, const char *task, char **id);

/* GET path (which may carry a query), a list page {"KEY":[…],
 * "next_cursor":…}.  With all, the following pages are fetched too and
 * their items appended to the first page's array, whose next_cursor is then
 * null.  Returns 0 with *ans the (first) page, or SKED_EXIT_FAILED after
 * the error line. */
int sked_cli_get_list(sked_cli_client *c, const char *path, const char *key,
                      int all, sked_cli_answer *ans);

/* Append "&name=escaped value" (or "?name=…" for the first) to the
 * malloc'ed *path when value is non-NULL. */
void sked_cli_query_add(char **path, const char *name, const char *value);

/* The runs of a list answer as a table on stdout (with a TASK column when
 * with_task); cmd_task_runs.c. */
void sked_cli_print_runs(const json_t *runs, int with_task);

#endif
