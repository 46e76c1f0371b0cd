/*
 * client.c - the HTTP/JSON client of the `sked` client commands, and the
 * output helpers they share (tables, times, JSON).
 *
 * One libcurl easy handle per command, reused across its calls so that
 * `ls --all` or `show` keep one connection.  Every failure ends as one line
 * on stderr that says what to fix: no token, server unreachable, or the
 * server's own error body ("sked add: schedule.cron: field 2 (hour): 25 is
 * out of range 0-23").  The commands decide the exit status.
 *
 * Not here: what each command sends and prints (cmd_task*.c).
 */
#include "cli/client.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cli/cli.h"
#include "core/version.h"
#include "time/rfc3339.h"
#include "time/tz.h"

/* The largest answer read; a page of 1000 tasks is well below this. */
#define MAX_ANSWER (64u << 20)
#define MAX_TOKEN 4096

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (p == NULL)
        abort();
    return p;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (d == NULL)
        abort();
    return d;
}

/* Strip leading and trailing whitespace of s in place; returns s moved past
 * the leading part. */
static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* The token: SKED_TOKEN, else the first start's admin token file.  Returns
 * a malloc'ed string, or NULL after printing what to do. */
static char *find_token(const char *cmd)
{
    const char *env = getenv("SKED_TOKEN");
    char buf[MAX_TOKEN + 2];
    char *tok;
    if (env != NULL && env[0] != '\0') {
        if (strlen(env) > MAX_TOKEN) {
            fprintf(stderr, "sked %s: SKED_TOKEN is longer than %d bytes; "
                            "is it a token?\n", cmd, MAX_TOKEN);
            return NULL;
        }
        strcpy(buf, env);
        tok = trim(buf);
    } else {
        FILE *f = fopen(SKED_CLI_TOKEN_FILE, "r");
        if (f == NULL) {
            if (errno == ENOENT)
                fprintf(stderr, "sked %s: no token: set SKED_TOKEN, or run "
                                "in the directory holding %s (written by "
                                "`sked server` on first start)\n",
                        cmd, SKED_CLI_TOKEN_FILE);
            else
                fprintf(stderr, "sked %s: cannot read %s: %s (set SKED_TOKEN "
                                "instead)\n", cmd, SKED_CLI_TOKEN_FILE,
                        strerror(errno));
            return NULL;
        }
        size_t n = fread(buf, 1, MAX_TOKEN + 1, f);
        fclose(f);
        buf[n] = '\0';
        if (n > MAX_TOKEN) {
            fprintf(stderr, "sked %s: %s is longer than %d bytes; is it a "
                            "token?\n", cmd, SKED_CLI_TOKEN_FILE, MAX_TOKEN);
            return NULL;
        }
        tok = trim(buf);
        if (tok[0] == '\0') {
            fprintf(stderr, "sked %s: %s is empty; set SKED_TOKEN instead\n",
                    cmd, SKED_CLI_TOKEN_FILE);
            return NULL;
        }
    }
    for (const char *p = tok; *p; p++) {
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e) {
            fprintf(stderr, "sked %s: the token holds a blank or control "
                            "character; check SKED_TOKEN or %s\n",
                    cmd, SKED_CLI_TOKEN_FILE);
            return NULL;
        }
    }
    return xstrdup(tok);
}

int sked_cli_client_init(sked_cli_client *c, const char *cmd)
{
    static int curl_ready;
    memset(c, 0, sizeof *c);
    c->cmd = cmd;
    c->token = find_token(cmd);
    if (c->token == NULL)
        return SKED_EXIT_FAILED;
    const char *url = getenv("SKED_URL");
    if (url == NULL || url[0] == '\0')
        url = SKED_CLI_DEFAULT_URL;
    c->url = xstrdup(url);
    size_t n = strlen(c->url);
    while (n > 0 && c->url[n - 1] == '/')
        c->url[--n] = '\0';
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            abort();
        curl_ready = 1;
    }
    c->curl = curl_easy_init();
    if (c->curl == NULL)
        abort();
    return 0;
}

void sked_cli_client_deinit(sked_cli_client *c)
{
    if (c->curl)
        curl_easy_cleanup(c->curl);
    free(c->url);
    free(c->token);
    memset(c, 0, sizeof *c);
}

/* The answer's body grows here; past MAX_ANSWER the transfer is stopped. */
static size_t on_data(char *data, size_t size, size_t nmemb, void *ctx)
{
    sked_cli_answer *a = ctx;
    size_t n = size * nmemb;
    if (n > MAX_ANSWER - a->len)
        return 0;
    char *p = realloc(a->raw, a->len + n + 1);
    if (p == NULL)
        return 0;
    a->raw = p;
    memcpy(a->raw + a->len, data, n);
    a->len += n;
    a->raw[a->len] = '\0';
    return n;
}

int sked_cli_call(sked_cli_client *c, const char *method, const char *path,
                  const char *body, size_t len, sked_cli_answer *ans)
{
    CURL *h = c->curl;
    char errbuf[CURL_ERROR_SIZE] = "";
    memset(ans, 0, sizeof *ans);
    curl_easy_reset(h);

    size_t ulen = strlen(c->url) + strlen(path) + 1;
    char *url = xrealloc(NULL, ulen);
    snprintf(url, ulen, "%s%s", c->url, path);
    size_t alen = strlen(c->token) + 32;
    char *auth = xrealloc(NULL, alen);
    snprintf(auth, alen, "Authorization: Bearer %s", c->token);
    char idem[1024] = "";
    if (c->idempotency_key != NULL)
        snprintf(idem, sizeof idem, "Idempotency-Key: %s", c->idempotency_key);

    struct curl_slist *hdrs = NULL;
    hdrs = curl_slist_append(hdrs, auth);
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (body != NULL)
        hdrs = curl_slist_append(hdrs,
                                 "Content-Type: application/json; charset=utf-8");
    if (idem[0] != '\0')
        hdrs = curl_slist_append(hdrs, idem);
    if (hdrs == NULL)
        abort();

    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "sked/" SKED_VERSION);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, ans);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        /* POST always sends a body, empty when there is none, so that the
         * request carries Content-Length: 0 ("no body needed"). */
        if (body != NULL || strcmp(method, "POST") == 0) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                             (curl_off_t)(body ? len : 0));
        }
    }

    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(hdrs);
    free(auth);
    free(url);
    if (rc != CURLE_OK) {
        if (rc == CURLE_COULDNT_CONNECT)
            fprintf(stderr, "sked: cannot reach %s (is sked server running?)\n",
                    c->url);
        else if (rc == CURLE_WRITE_ERROR)
            fprintf(stderr, "sked %s: the server's answer is larger than "
                            "%u MiB\n", c->cmd, MAX_ANSWER >> 20);
        else if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL)
            fprintf(stderr, "sked: SKED_URL \"%s\" is not a usable URL: %s\n",
                    c->url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
        else
            fprintf(stderr, "sked: cannot reach %s: %s\n", c->url,
                    errbuf[0] ? errbuf : curl_easy_strerror(rc));
        sked_cli_answer_deinit(ans);
        return -1;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &ans->status);
    if (ans->raw == NULL)
        ans->raw = xstrdup("");
    if (ans->len > 0)
        ans->json = json_loadb(ans->raw, ans->len, 0, NULL);
    return 0;
}

int sked_cli_request(sked_cli_client *c, const char *method, const char *path,
                     const json_t *body, sked_cli_answer *ans)
{
    char *text = NULL;
    if (body != NULL) {
        text = json_dumps(body, JSON_COMPACT);
        if (text == NULL)
            abort();
    }
    int rc = sked_cli_call(c, method, path, text, text ? strlen(text) : 0, ans);
    free(text);
    if (rc < 0)
        return SKED_EXIT_FAILED;
    if (ans->status < 200 || ans->status > 299) {
        sked_cli_print_error(c, ans);
        sked_cli_answer_deinit(ans);
        return SKED_EXIT_FAILED;
    }
    if (ans->json == NULL && ans->status != 204) {
        fprintf(stderr, "sked %s: the server answered %ld without a JSON body "
                        "(is %s a sked server?)\n", c->cmd, ans->status, c->url);
        sked_cli_answer_deinit(ans);
        return SKED_EXIT_FAILED;
    }
    return 0;
}

void sked_cli_answer_deinit(sked_cli_answer *ans)
{
    json_decref(ans->json);
    free(ans->raw);
    memset(ans, 0, sizeof *ans);
}

void sked_cli_print_error(const sked_cli_client *c, const sked_cli_answer *ans)
{
    json_t *e = json_object_get(ans->json, "error");
    const char *code = sked_cli_str(e, "code");
    const char *msg = sked_cli_str(e, "message");
    const char *field = sked_cli_str(e, "field");
    if (msg == NULL && code == NULL) {
        /* Not the API's error body: a proxy, or not a sked server. */
        char start[201];
        size_t n = 0;
        while (n < sizeof start - 1 && n < ans->len && ans->raw[n] != '\n' &&
               ans->raw[n] != '\r')
            n++;
        memcpy(start, ans->raw ? ans->raw : "", n);
        start[n] = '\0';
        fprintf(stderr, "sked %s: the server answered %ld%s%s\n", c->cmd,
                ans->status, n ? ": " : "", start);
        return;
    }
    if (msg == NULL)
        msg = code;
    const char *hint = "";
    if (ans->status == 401)
        hint = "; check SKED_TOKEN";
    else if (ans->status == 403)
        hint = "; this token's role does not allow it";
    size_t flen = field ? strlen(field) : 0;
    /* The field leads the line, once: some messages already start with it. */
    if (flen > 0 && !(strncmp(msg, field, flen) == 0 && msg[flen] == ':'))
        fprintf(stderr, "sked %s: %s: %s", c->cmd, field, msg);
    else
        fprintf(stderr, "sked %s: %s", c->cmd, msg);
    if (code != NULL && (field == NULL || field[0] == '\0' || hint[0]))
        fprintf(stderr, " (%s%s)", code, hint);
    fputc('\n', stderr);
}

/* ---- Shared helpers ------------------------------------------------------ */

char *sked_cli_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = xrealloc(NULL, strlen(s) * 3 + 1), *p = out;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            *p++ = (char)ch;
        } else {
            *p++ = '%';
            *p++ = hex[ch >> 4];
            *p++ = hex[ch & 15];
        }
    }
    *p = '\0';
    return out;
}

char *sked_cli_task_path(const char *task, const char *suffix)
{
    char *id = sked_cli_escape(task);
    size_t n = strlen("/v1/tasks/") + strlen(id) + strlen(suffix) + 1;
    char *path = xrealloc(NULL, n);
    snprintf(path, n, "/v1/tasks/%s%s", id, suffix);
    free(id);
    return path;
}

const char *sked_cli_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

const char *sked_cli_text(const json_t *obj, const char *key, char *buf,
                          size_t size)
{
    const json_t *v = json_object_get(obj, key);
    char *dump;
    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_STRING:
        snprintf(buf, size, "%s", json_string_value(v));
        break;
    case JSON_INTEGER:
        snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        snprintf(buf, size, "%g", json_real_value(v));
        break;
    case JSON_TRUE:
        snprintf(buf, size, "true");
        break;
    case JSON_FALSE:
        snprintf(buf, size, "false");
        break;
    case JSON_NULL:
        snprintf(buf, size, "-");
        break;
    default:
        dump = json_dumps(v, JSON_COMPACT);
        snprintf(buf, size, "%s", dump ? dump : "?");
        free(dump);
        break;
    }
    return buf;
}

int sked_cli_print_raw(const sked_cli_answer *ans)
{
    if (ans->len > 0) {
        fwrite(ans->raw, 1, ans->len, stdout);
        if (ans->raw[ans->len - 1] != '\n')
            putchar('\n');
    }
    return SKED_EXIT_OK;
}

void sked_cli_print_json(const json_t *v)
{
    /* 15 digits: lag_ms 3.2 prints as 3.2, not 3.2000000000000002. */
    json_dumpf(v, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
    putchar('\n');
}

const char *sked_cli_time_in(const char *text, const char *zone, char *buf)
{
    sked_walltime t;
    const sked_tz *tz;
    if (text == NULL)
        return "-";
    if (zone == NULL || sked_tz_get(zone, &tz, NULL) < 0)
        return text;
    if (sked_rfc3339_parse(text, strlen(text), &t, NULL, NULL) < 0)
        return text;
    if (sked_rfc3339_format_tz(t, tz, buf) == 0)
        return text;
    return buf;
}

/* ---- Tables -------------------------------------------------------------- */

void sked_cli_table_init(sked_cli_table *t, int ncols,
                         const char *const *header)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
    sked_cli_table_add(t, header);
}

void sked_cli_table_add(sked_cli_table *t, const char *const *row)
{
    if (t->nrows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->cells = xrealloc(t->cells, t->cap * (size_t)t->ncols * sizeof *t->cells);
    }
    char **cell = t->cells + t->nrows * (size_t)t->ncols;
    for (int k = 0; k < t->ncols; k++) {
        const char *s = row[k] ? row[k] : "-";
        /* One line per row: a newline or tab inside a cell would break the
         * columns, so blanks stand in for them. */
        cell[k] = xstrdup(s);
        for (char *p = cell[k]; *p; p++)
            if (*p == '\n' || *p == '\r' || *p == '\t')
                *p = ' ';
    }
    t->nrows++;
}

/* Width in columns of UTF-8 text: one per code point. */
static size_t width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

void sked_cli_table_print(const sked_cli_table *t, FILE *out)
{
    size_t *w = xrealloc(NULL, (size_t)t->ncols * sizeof *w);
    for (int k = 0; k < t->ncols; k++) {
        w[k] = 0;
        for (size_t r = 0; r < t->nrows; r++) {
            size_t n = width(t->cells[r * (size_t)t->ncols + (size_t)k]);
            if (n > w[k])
                w[k] = n;
        }
    }
    for (size_t r = 0; r < t->nrows; r++) {
        for (int k = 0; k < t->ncols; k++) {
            const char *s = t->cells[r * (size_t)t->ncols + (size_t)k];
            fputs(s, out);
            if (k + 1 < t->ncols)
                fprintf(out, "%*s", (int)(w[k] - width(s) + 2), "");
        }
        fputc('\n', out);
    }
    free(w);
}

void sked_cli_table_deinit(sked_cli_table *t)
{
    for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}

int sked_cli_is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

int sked_cli_one_arg(int argc, char **argv, const char *usage,
                     const char *what, const char **arg, int *json)
{
    int i = 1, opts = 1;
    *arg = NULL;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (opts && sked_cli_is_help(a)) {
            fputs(usage, stdout);
            return 1;
        }
        if (opts && strcmp(a, "--") == 0) {
            opts = 0;
        } else if (opts && strcmp(a, "--json") == 0) {
            *json = 1;
        } else if (opts && a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "sked %s: unknown option %s (see sked %s --help)\n",
                    argv[0], a, argv[0]);
            return SKED_EXIT_USAGE;
        } else if (*arg == NULL) {
            *arg = a;
        } else {
            fprintf(stderr, "sked %s: one %s only; \"%s\" is one too many\n",
                    argv[0], what, a);
            return SKED_EXIT_USAGE;
        }
    }
    if (*arg == NULL || (*arg)[0] == '\0') {
        fprintf(stderr, "sked %s: missing %s (see sked %s --help)\n", argv[0],
                what, argv[0]);
        return SKED_EXIT_USAGE;
    }
    return 0;
}

/* The shape of the ids the server hands out (UUIDs): such an argument is
 * taken for an id without asking. */
static int looks_like_id(const char *s)
{
    if (strlen(s) != 36)
        return 0;
    for (int k = 0; k < 36; k++) {
        if (k == 8 || k == 13 || k == 18 || k == 23) {
            if (s[k] != '-')
                return 0;
        } else if (!isxdigit((unsigned char)s[k])) {
            return 0;
        }
    }
    return 1;
}

int sked_cli_task_id(sked_cli_client *c, const char *task, char **id)
{
    if (looks_like_id(task)) {
        *id = xstrdup(task);
        return 0;
    }
    sked_cli_answer ans;
    char *path = sked_cli_task_path(task, "");
    int rc = sked_cli_request(c, "GET", path, NULL, &ans);
    free(path);
    if (rc != 0)
        return rc;
    const char *found = sked_cli_str(ans.json, "id");
    if (found == NULL) {
        fprintf(stderr, "sked %s: the server's task \"%s\" has no id\n",
                c->cmd, task);
        sked_cli_answer_deinit(&ans);
        return SKED_EXIT_FAILED;
    }
    *id = xstrdup(found);
    sked_cli_answer_deinit(&ans);
    return 0;
}

void sked_cli_query_add(char **path, const char *name, const char *value)
{
    if (value == NULL)
        return;
    char *v = sked_cli_escape(value);
    size_t n = strlen(*path) + strlen(name) + strlen(v) + 3;
    char *p = xrealloc(NULL, n);
    snprintf(p, n, "%s%c%s=%s", *path, strchr(*path, '?') ? '&' : '?', name, v);
    free(v);
    free(*path);
    *path = p;
}

/* The page limit: `ls --all` over a misbehaving cursor must end. */
#define MAX_PAGES 100000

int sked_cli_get_list(sked_cli_client *c, const char *path, const char *key,
                      int all, sked_cli_answer *ans)
{
    int rc = sked_cli_request(c, "GET", path, NULL, ans);
    if (rc != 0)
        return rc;
    json_t *items = json_object_get(ans->json, key);
    if (!json_is_array(items)) {
        fprintf(stderr, "sked %s: the server's answer has no \"%s\" list\n",
                c->cmd, key);
        sked_cli_answer_deinit(ans);
        return SKED_EXIT_FAILED;
    }
    for (int page = 0; all && page < MAX_PAGES; page++) {
        const char *cursor = sked_cli_str(ans->json, "next_cursor");
        if (cursor == NULL || cursor[0] == '\0')
            break;
        char *next = xstrdup(path);
        sked_cli_query_add(&next, "cursor", cursor);
        sked_cli_answer more;
        rc = sked_cli_request(c, "GET", next, NULL, &more);
        free(next);
        if (rc != 0) {
            sked_cli_answer_deinit(ans);
            return rc;
        }
        json_t *more_items = json_object_get(more.json, key);
        if (json_is_array(more_items))
            json_array_extend(items, more_items);
        json_t *nc = json_object_get(more.json, "next_cursor");
        /* A cursor that does not move would loop for ever. */
        if (json_is_string(nc) &&
            strcmp(json_string_value(nc), cursor) == 0)
            nc = NULL;
        json_object_set(ans->json, "next_cursor", nc ? nc : json_null());
        sked_cli_answer_deinit(&more);
    }
    if (all)
        json_object_set_new(ans->json, "next_cursor", json_null());
    return 0;
}
