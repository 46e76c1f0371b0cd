/*
 * store_pg_tokens.c - the token methods of the PostgreSQL store: API
 * tokens by the SHA-256 of their secret, each bound to a namespace and a
 * role.
 *
 * Same shape as store_pg_tasks.c.  Not here: hashing or making secrets
 * (core/ids, model/token), deciding what a role may do (api/).
 */
#include "store/store_pg.h"

#include <stdlib.h>
#include <string.h>

#define S(st) ((sked_pg_store *)(st))

const char *sked_pg_token_sql(int slot)
{
    switch (slot) {
    case SKED_PG_TOKEN_INSERT:
        return "INSERT INTO tokens (" SKED_PG_TOKEN_COLS ") VALUES "
               "($1::text, $2::text, $3::text, $4::smallint, $5::bigint, "
               "$6::bigint)";
    case SKED_PG_TOKEN_FIND:
        return "SELECT " SKED_PG_TOKEN_COLS " FROM tokens "
               "WHERE hash = $1::text AND revoked_at IS NULL";
    case SKED_PG_TOKEN_LIST:
        return "SELECT " SKED_PG_TOKEN_COLS " FROM tokens "
               "WHERE $1::text IS NULL OR namespace = $1 "
               "ORDER BY created_at, id";
    case SKED_PG_TOKEN_REVOKE:
        return "UPDATE tokens SET revoked_at = coalesce(revoked_at, "
               "$3::bigint) WHERE id = $1::text "
               "AND ($2::text IS NULL OR namespace = $2)";
    }
    return NULL;
}

static void read_token(const PGresult *r, int row, sked_token_rec *out)
{
    memset(out, 0, sizeof *out);
    sked_pg_fixed(r, row, 0, out->id, sizeof out->id);
    sked_pg_fixed(r, row, 1, out->hash, sizeof out->hash);
    sked_pg_fixed(r, row, 2, out->ns, sizeof out->ns);
    out->role = (sked_role)sked_pg_i64(r, row, 3);
    out->created_at = sked_pg_i64(r, row, 4);
    out->revoked_at = sked_pg_time(r, row, 5);
}

static int token_insert_fn(sked_pg_tx *tx, void *arg, sked_err *err)
{
    const sked_token_rec *t = arg;
    sked_pg_params p = {0};
    PGresult *res;
    sked_pg_p_text(&p, t->id);
    sked_pg_p_text(&p, t->hash);
    sked_pg_p_text(&p, t->ns);
    sked_pg_p_i64(&p, (int64_t)t->role);
    sked_pg_p_i64(&p, t->created_at);
    sked_pg_p_time(&p, t->revoked_at);
    int rc = sked_pg_exec(tx->c, SKED_PG_TOKEN_INSERT, &p, &res,
                          "token insert", err);
    if (sked_pg_is_unique(res, "tokens_pkey"))
        rc = sked_err_set(err, SKED_ECONFLICT, "id", 0,
                          "token id %s already exists", t->id);
    else if (sked_pg_is_unique(res, "tokens_hash_key"))
        rc = sked_err_set(err, SKED_ECONFLICT, "hash", 0,
                          "a token with this hash already exists");
    PQclear(res);
    return rc;
}

int sked_pg_token_insert(sked_store *st, const sked_token_rec *t,
                         sked_err *err)
{
    return sked_pg_run(S(st), SKED_PG_WRITE, token_insert_fn, (void *)t, err);
}

typedef struct token_job {
    const char *ns, *id, *hash;
    sked_walltime at;
    sked_token_rec *v;                  /* out: found / listed */
    size_t n;                           /* out */
} token_job;

static int token_find_fn(sked_pg_tx *tx, void *arg, sked_err *err)
{
    token_job *a = arg;
    sked_pg_params p = {0};
    PGresult *res;
    sked_pg_p_text(&p, a->hash);
    int rc = sked_pg_exec(tx->c, SKED_PG_TOKEN_FIND, &p, &res, "token find",
                          err);
    a->n = 0;
    if (rc == 0 && PQntuples(res) > 0) {
        read_token(res, 0, a->v);
        a->n = 1;
    }
    PQclear(res);
    return rc;
}

int sked_pg_token_find(sked_store *st, const char *hash, sked_token_rec *out,
                       sked_err *err)
{
    token_job a = {.hash = hash ? hash : "", .v = out};
    int rc = sked_pg_run(S(st), SKED_PG_READ, token_find_fn, &a, err);
    if (rc == 0 && a.n == 0)
        rc = sked_err_set(err, SKED_ENOENT, NULL, 0, "unknown token");
    return rc;
}

static int token_list_fn(sked_pg_tx *tx, void *arg, sked_err *err)
{
    token_job *a = arg;
    sked_pg_params p = {0};
    PGresult *res;
    free(a->v);
    a->v = NULL;
    a->n = 0;
    sked_pg_p_text(&p, a->ns);
    int rc = sked_pg_exec(tx->c, SKED_PG_TOKEN_LIST, &p, &res, "token list",
                          err);
    size_t n = rc == 0 ? (size_t)PQntuples(res) : 0;
    if (n > 0 && (a->v = calloc(n, sizeof *a->v)) == NULL)
        rc = sked_err_set(err, SKED_ENOMEM, NULL, 0, "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++)
        read_token(res, (int)i, &a->v[a->n++]);
    PQclear(res);
    return rc;
}

int sked_pg_token_list(sked_store *st, const char *ns, sked_token_rec **out,
                       size_t *n, sked_err *err)
{
    token_job a = {.ns = ns};
    int rc = sked_pg_run(S(st), SKED_PG_READ, token_list_fn, &a, err);
    if (rc != 0) {
        free(a.v);
        a.v = NULL;
        a.n = 0;
    }
    *out = a.v;
    *n = a.n;
    return rc;
}

static int token_revoke_fn(sked_pg_tx *tx, void *arg, sked_err *err)
{
    const token_job *a = arg;
    sked_pg_params p = {0};
    PGresult *res;
    sked_pg_p_text(&p, a->id);
    sked_pg_p_text(&p, a->ns);
    sked_pg_p_i64(&p, a->at);
    int rc = sked_pg_exec(tx->c, SKED_PG_TOKEN_REVOKE, &p, &res,
                          "token revoke", err);
    if (rc == 0 && sked_pg_changed(res) == 0)
        rc = sked_err_set(err, SKED_ENOENT, NULL, 0, "no token %s", a->id);
    PQclear(res);
    return rc;
}

int sked_pg_token_revoke(sked_store *st, const char *ns, const char *id,
                         sked_walltime at, sked_err *err)
{
    if (id == NULL)
        return sked_err_set(err, SKED_EINVAL, "id", 0, "no token id");
    token_job a = {.ns = ns, .id = id, .at = at};
    return sked_pg_run(S(st), SKED_PG_WRITE, token_revoke_fn, &a, err);
}
