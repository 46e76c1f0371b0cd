/*
 * store_pg_sql.c - how the PostgreSQL store talks SQL through libpq:
 * statement parameters, array literals (a batch travels as a few arrays
 * unnest()ed by one statement, not as a statement per row), prepared
 * statements by slot, and the small readers and checks every method
 * file shares.
 *
 * Parameters: numbers and array literals go as text; strings go in
 * binary format with their length (for `text`, binary is the bytes
 * themselves), so fixed-size record fields need neither a copy nor a NUL.
 * Results come back as text.
 *
 * Not here: connections, transactions, error mapping (store_pg.c).
 */
#include "store/store_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parameters -------------------------------------------------------- */

static int param_slot(sked_pg_params *p)
{
    if (p->n >= SKED_PG_MAXP)
        abort(); /* a statement with more parameters than the table */
    return p->n++;
}

void sked_pg_p_null(sked_pg_params *p)
{
    int i = param_slot(p);
    p->v[i] = NULL;
    p->len[i] = 0;
    p->fmt[i] = 0;
}

/* Strings go as binary `text` with their length: no copy, no NUL needed. */
void sked_pg_p_bytes(sked_pg_params *p, const char *s, size_t n)
{
    int i = param_slot(p);
    p->v[i] = s;
    p->len[i] = (int)n;
    p->fmt[i] = 1;
}

void sked_pg_p_text(sked_pg_params *p, const char *s)
{
    if (s == NULL)
        sked_pg_p_null(p);
    else
        sked_pg_p_bytes(p, s, strlen(s));
}

void sked_pg_p_fixed(sked_pg_params *p, const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    if (n == 0)
        sked_pg_p_null(p);
    else
        sked_pg_p_bytes(p, s, n);
}

void sked_pg_p_i64(sked_pg_params *p, int64_t v)
{
    int i = param_slot(p);
    snprintf(p->num[i], sizeof p->num[i], "%lld", (long long)v);
    p->v[i] = p->num[i];
    p->len[i] = 0;
    p->fmt[i] = 0;
}

void sked_pg_p_time(sked_pg_params *p, sked_walltime t)
{
    if (t == SKED_TIME_NONE)
        sked_pg_p_null(p);
    else
        sked_pg_p_i64(p, t);
}

void sked_pg_p_own(sked_pg_params *p, char *literal)
{
    int i = param_slot(p);
    p->own[i] = literal;
    p->v[i] = literal;
    p->len[i] = 0;
    p->fmt[i] = 0;
}

void sked_pg_p_raw(sked_pg_params *p, const char *literal)
{
    int i = param_slot(p);
    p->v[i] = literal;
    p->len[i] = 0;
    p->fmt[i] = 0;
}

void sked_pg_params_free(sked_pg_params *p)
{
    for (int i = 0; i < p->n; i++) {
        free(p->own[i]);
        p->own[i] = NULL;
    }
    p->n = 0;
}

/* ---- array literals ---------------------------------------------------- */

static void arr_put(sked_pg_arr *a, const char *s, size_t n)
{
    if (a->oom)
        return;
    if (a->len + n + 1 > a->cap) {
        size_t ncap = a->cap ? a->cap : 256;
        while (a->len + n + 1 > ncap)
            ncap *= 2;
        char *b = realloc(a->buf, ncap);
        if (b == NULL) {
            a->oom = 1;
            return;
        }
        a->buf = b;
        a->cap = ncap;
    }
    memcpy(a->buf + a->len, s, n);
    a->len += n;
    a->buf[a->len] = '\0';
}

static void arr_sep(sked_pg_arr *a)
{
    if (a->n++ > 0)
        arr_put(a, ",", 1);
}

void sked_pg_arr_begin(sked_pg_arr *a)
{
    memset(a, 0, sizeof *a);
    arr_put(a, "{", 1);
}

void sked_pg_arr_null(sked_pg_arr *a)
{
    arr_sep(a);
    arr_put(a, "NULL", 4);
}

/* An element in double quotes: inside them only " and \ need a \. */
static void arr_quoted(sked_pg_arr *a, const char *s, size_t n)
{
    arr_sep(a);
    arr_put(a, "\"", 1);
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '"' && s[i] != '\\')
            continue;
        arr_put(a, s + from, i - from);
        arr_put(a, "\\", 1);
        from = i;
    }
    arr_put(a, s + from, n - from);
    arr_put(a, "\"", 1);
}

void sked_pg_arr_text(sked_pg_arr *a, const char *s)
{
    if (s == NULL)
        sked_pg_arr_null(a);
    else
        arr_quoted(a, s, strlen(s));
}

void sked_pg_arr_fixed(sked_pg_arr *a, const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    if (n == 0)
        sked_pg_arr_null(a);
    else
        arr_quoted(a, s, n);
}

void sked_pg_arr_i64(sked_pg_arr *a, int64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%lld", (long long)v);
    arr_sep(a);
    arr_put(a, num, (size_t)n);
}

void sked_pg_arr_time(sked_pg_arr *a, sked_walltime t)
{
    if (t == SKED_TIME_NONE)
        sked_pg_arr_null(a);
    else
        sked_pg_arr_i64(a, t);
}

char *sked_pg_arr_end(sked_pg_arr *a)
{
    arr_put(a, "}", 1);
    if (a->oom) {
        sked_pg_arr_free(a);
        return NULL;
    }
    char *b = a->buf;
    memset(a, 0, sizeof *a);
    return b;
}

void sked_pg_arr_free(sked_pg_arr *a)
{
    free(a->buf);
    memset(a, 0, sizeof *a);
}

/* ---- statements -------------------------------------------------------- */

/* The SQL of a fixed statement: each file answers for its own. */
static const char *sql_of(int slot)
{
    static const char *(*const files[])(int) = {
        sked_pg_task_sql, sked_pg_token_sql, sked_pg_claim_sql,
        sked_pg_run_sql, sked_pg_prune_sql, sked_pg_sched_sql,
    };
    if (slot == SKED_PG_PING)
        return "SELECT 1";
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        const char *sql = files[i](slot);
        if (sql != NULL)
            return sql;
    }
    return NULL;
}

int sked_pg_prepare(sked_pg_conn *c, int slot, const char *sql, int nparams,
                    const Oid *types, sked_err *err)
{
    if (c->prepared[slot])
        return 0;
    char name[16];
    snprintf(name, sizeof name, "sked%d", slot);
    PGresult *r = PQprepare(c->db, name, sql, nparams, types);
    int rc = 0;
    if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = sked_pg_fail(c, r, "prepare", err);
    else
        c->prepared[slot] = 1;
    PQclear(r);
    return rc;
}

int sked_pg_exec(sked_pg_conn *c, int slot, const sked_pg_params *p,
                 PGresult **out, const char *what, sked_err *err)
{
    if (out != NULL)
        *out = NULL;
    if (!c->prepared[slot]) {
        const char *sql = sql_of(slot);
        if (sql == NULL)
            return sked_err_set(err, SKED_EINTERNAL, NULL, 0,
                                "postgres store: no statement %d", slot);
        int rc = sked_pg_prepare(c, slot, sql, 0, NULL, err);
        if (rc != 0)
            return rc;
    }
    char name[16];
    snprintf(name, sizeof name, "sked%d", slot);
    PGresult *r = PQexecPrepared(c->db, name, p ? p->n : 0, p ? p->v : NULL,
                                 p ? p->len : NULL, p ? p->fmt : NULL, 0);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    int rc = 0;
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
        rc = sked_pg_fail(c, r, what, err);
    if (out != NULL)
        *out = r;
    else
        PQclear(r);
    return rc;
}

/* ---- shared helpers ---------------------------------------------------- */

int sked_pg_check_page(const char *ns, int limit, sked_err *err)
{
    if (!sked_pg_given(ns))
        return sked_err_set(err, SKED_EINVAL, "namespace", 0,
                            "a listing needs a namespace");
    if (limit < 1 || limit > 1000)
        return sked_err_set(err, SKED_EINVAL, "limit", 0,
                            "limit %d is not within 1..1000", limit);
    return 0;
}

int sked_pg_dup(const PGresult *r, int row, int col, char **out,
                const char *what, sked_err *err)
{
    *out = NULL;
    if (PQgetisnull(r, row, col))
        return 0;
    size_t n = (size_t)PQgetlength(r, row, col);
    if ((*out = malloc(n + 1)) == NULL)
        return sked_err_set(err, SKED_ENOMEM, NULL, 0,
                            "out of memory reading %s", what);
    memcpy(*out, PQgetvalue(r, row, col), n + 1);
    return 0;
}
