/*
 * store_sqlite_tokens.c - the token methods of the SQLite store: API tokens
 * by the SHA-256 of their secret, each bound to a namespace and a role.
 *
 * Same shape as store_sqlite_tasks.c: reads on a pooled read connection,
 * writes as jobs of the group-commit writer.  Not here: hashing or making
 * secrets (core/ids, model/token), deciding what a role may do (api/).
 */
#include "store/store_sqlite.h"

#include <stdlib.h>

#define S(st) ((sked_sqlite_store *)(st))

static void read_token(sqlite3_stmt *q, sked_token_rec *out)
{
    memset(out, 0, sizeof *out);
    sked_sqlite_col_fixed(q, 0, out->id, sizeof out->id);
    sked_sqlite_col_fixed(q, 1, out->hash, sizeof out->hash);
    sked_sqlite_col_fixed(q, 2, out->ns, sizeof out->ns);
    out->role = (sked_role)sqlite3_column_int(q, 3);
    out->created_at = sqlite3_column_int64(q, 4);
    out->revoked_at = sked_sqlite_col_time(q, 5);
}

static int token_insert_fn(sked_sqlite_conn *c, void *arg, sked_err *err)
{
    const sked_token_rec *t = arg;
    sqlite3_stmt *q;
    int rc = sked_sqlite_stmt(c, SKED_SQLITE_TOKEN_INSERT, &q, err);
    if (rc != 0)
        return rc;
    sked_sqlite_bind_text(q, 1, t->id);
    sked_sqlite_bind_text(q, 2, t->hash);
    sked_sqlite_bind_text(q, 3, t->ns);
    sqlite3_bind_int(q, 4, (int)t->role);
    sqlite3_bind_int64(q, 5, t->created_at);
    sked_sqlite_bind_time(q, 6, t->revoked_at);
    int src = sqlite3_step(q);
    sqlite3_reset(q);
    if (src == SQLITE_DONE)
        return 0;
    if (src == SQLITE_CONSTRAINT_PRIMARYKEY)
        return sked_err_set(err, SKED_ECONFLICT, "id", 0,
                            "token id %s already exists", t->id);
    if (src == SQLITE_CONSTRAINT_UNIQUE)
        return sked_err_set(err, SKED_ECONFLICT, "hash", 0,
                            "a token with this hash already exists");
    return sked_sqlite_fail(c->db, src, err, "token insert");
}

int sked_sqlite_token_insert(sked_store *st, const sked_token_rec *t,
                             sked_err *err)
{
    return sked_sqlite_write(S(st), token_insert_fn, (void *)t, err);
}

int sked_sqlite_token_find(sked_store *st, const char *hash,
                           sked_token_rec *out, sked_err *err)
{
    sked_sqlite_conn *c;
    sqlite3_stmt *q;
    int rc = sked_sqlite_reader_get(S(st), &c, err);
    if (rc != 0)
        return rc;
    if ((rc = sked_sqlite_stmt(c, SKED_SQLITE_TOKEN_FIND, &q, err)) == 0) {
        sked_sqlite_bind_text(q, 1, hash ? hash : "");
        int src = sqlite3_step(q);
        if (src == SQLITE_ROW)
            read_token(q, out);
        else if (src == SQLITE_DONE)
            rc = sked_err_set(err, SKED_ENOENT, NULL, 0, "unknown token");
        else
            rc = sked_sqlite_fail(c->db, src, err, "token find");
        sqlite3_reset(q);
    }
    sked_sqlite_reader_put(S(st), c);
    return rc;
}

int sked_sqlite_token_list(sked_store *st, const char *ns,
                           sked_token_rec **out, size_t *n, sked_err *err)
{
    *out = NULL;
    *n = 0;
    sked_sqlite_conn *c;
    sqlite3_stmt *q = NULL;
    size_t cap = 0;
    int src, rc = sked_sqlite_reader_get(S(st), &c, err);
    if (rc != 0)
        return rc;
    if ((rc = sked_sqlite_stmt(c, SKED_SQLITE_TOKEN_LIST, &q, err)) != 0)
        goto fail;
    sked_sqlite_bind_text(q, 1, ns);
    while ((src = sqlite3_step(q)) == SQLITE_ROW) {
        if (*n == cap) {
            size_t ncap = cap ? 2 * cap : 16;
            sked_token_rec *more = realloc(*out, ncap * sizeof **out);
            if (more == NULL) {
                rc = sked_err_set(err, SKED_ENOMEM, NULL, 0, "out of memory");
                goto fail;
            }
            *out = more;
            cap = ncap;
        }
        read_token(q, &(*out)[(*n)++]);
    }
    if (src != SQLITE_DONE) {
        rc = sked_sqlite_fail(c->db, src, err, "token list");
        goto fail;
    }
    sqlite3_reset(q);
    sked_sqlite_reader_put(S(st), c);
    return 0;
fail:
    if (q != NULL)
        sqlite3_reset(q);
    sked_sqlite_reader_put(S(st), c);
    free(*out);
    *out = NULL;
    *n = 0;
    return rc;
}

typedef struct revoke_job {
    const char *ns, *id;
    sked_walltime at;
} revoke_job;

static int token_revoke_fn(sked_sqlite_conn *c, void *arg, sked_err *err)
{
    const revoke_job *a = arg;
    sqlite3_stmt *q;
    int rc = sked_sqlite_stmt(c, SKED_SQLITE_TOKEN_REVOKE, &q, err);
    if (rc != 0)
        return rc;
    sked_sqlite_bind_text(q, 1, a->id);
    sked_sqlite_bind_text(q, 2, a->ns);
    sqlite3_bind_int64(q, 3, a->at);
    int src = sqlite3_step(q);
    sqlite3_reset(q);
    if (src != SQLITE_DONE)
        return sked_sqlite_fail(c->db, src, err, "token revoke");
    if (sqlite3_changes(c->db) == 0)
        return sked_err_set(err, SKED_ENOENT, NULL, 0, "no token %s", a->id);
    return 0;
}

int sked_sqlite_token_revoke(sked_store *st, const char *ns, const char *id,
                             sked_walltime at, sked_err *err)
{
    if (id == NULL)
        return sked_err_set(err, SKED_EINVAL, "id", 0, "no token id");
    revoke_job a = {.ns = ns, .id = id, .at = at};
    return sked_sqlite_write(S(st), token_revoke_fn, &a, err);
}
