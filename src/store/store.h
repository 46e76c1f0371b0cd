/*
 * store.h - where sked keeps tasks, runs, tokens and workers.
 *
 * A store backend is a versioned table of function pointers, after SQLite's
 * sqlite3_vfs: `version` and `name` come first, methods are only ever
 * appended, and the core calls the thin sked_store_* wrappers below, never
 * the table.  Backends are found by URL scheme: "sqlite:PATH" (embedded,
 * default) and, later, "postgres://..." (distributed).
 *
 * Contract for every method:
 *   - returns 0 or a negative SKED_E* code, with detail in err;
 *   - a failed method changed nothing (each write is one transaction);
 *   - a method that returned 0 for a write has made it durable (SQLite
 *     synchronous=FULL in WAL, PostgreSQL COMMIT);
 *   - methods are safe to call from many threads at once on one sked_store;
 *   - strings handed in are borrowed for the call; records handed out are
 *     owned by the caller and released with the matching *_deinit function.
 *
 * Change procedure: to add a method, append it to sked_store_ops, bump
 * SKED_STORE_OPS_VERSION, add a wrapper that returns SKED_ENOTSUP when
 * ops->version is older, and add its cases to tests/backend/test_store.c,
 * which every backend runs.
 */
#ifndef SKED_STORE_H
#define SKED_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"
#include "core/err.h"

#define SKED_STORE_OPS_VERSION 1

/* "No time" in a sked_walltime column (next_run_at of a paused task...). */
#define SKED_TIME_NONE INT64_MIN

#define SKED_ID_LEN 36   /* UUID text, without the NUL */
#define SKED_NS_MAX 63   /* namespace and queue names  */
#define SKED_NAME_MAX 200

typedef enum sked_task_state {
    SKED_TASK_ACTIVE = 0,
    SKED_TASK_PAUSED = 1,
    SKED_TASK_COMPLETED = 2,
} sked_task_state;

/* A task as the store keeps it.  The user's specification travels as JSON
 * text (`spec`, canonical: validated, defaults filled, see model/task.h);
 * the store reads from it only what it filters on. */
typedef struct sked_task_rec {
    char id[SKED_ID_LEN + 1];
    char ns[SKED_NS_MAX + 1];
    char *name;                /* NULL: no name                         */
    char queue[SKED_NS_MAX + 1];
    char *spec;                /* canonical spec JSON, NUL-terminated    */
    sked_task_state state;
    sked_walltime next_run_at; /* SKED_TIME_NONE when nothing is due     */
    int64_t run_count;
    int64_t version;           /* 1 on create, +1 on every change        */
    sked_walltime created_at, updated_at;
} sked_task_rec;

/* Release what a record owns (name, spec); the struct itself is the
 * caller's. */
void sked_task_rec_deinit(sked_task_rec *r);

/* Filters of a task listing.  NULL / empty fields do not filter. */
typedef struct sked_task_filter {
    const char *ns;            /* required */
    int state;                 /* -1: any */
    const char *queue;
    const char *label_key;     /* with label_value: spec.labels[key] == value */
    const char *label_value;
    const char *name_prefix;
    const char *after_id;      /* cursor: ids strictly greater */
    int limit;                 /* 1..1000 */
} sked_task_filter;

typedef struct sked_task_page {
    sked_task_rec *recs;       /* n records, ordered by id ascending     */
    size_t n;
    int more;                  /* more records follow the last one       */
} sked_task_page;

void sked_task_page_deinit(sked_task_page *p);

/* An API token.  Only its SHA-256 (hex) is stored. */
typedef enum sked_role {
    SKED_ROLE_READ = 0,
    SKED_ROLE_WRITE = 1,
    SKED_ROLE_SHELL = 2,
    SKED_ROLE_ADMIN = 3,
} sked_role;

typedef struct sked_token_rec {
    char id[SKED_ID_LEN + 1];
    char hash[65];
    char ns[SKED_NS_MAX + 1];
    sked_role role;
    sked_walltime created_at;
    sked_walltime revoked_at;  /* SKED_TIME_NONE while valid */
} sked_token_rec;

/* A remembered Idempotency-Key: the same key and request hash within a
 * namespace give back the task created the first time. */
typedef struct sked_idem {
    const char *key;           /* NULL: no idempotency */
    const char *request_hash;  /* hex SHA-256 of the request body */
} sked_idem;

typedef struct sked_store sked_store;

typedef struct sked_store_ops {
    int version;               /* SKED_STORE_OPS_VERSION of the backend */
    const char *name;          /* "sqlite", "postgres" */
    const char *scheme;        /* URL scheme it serves, without ':' */

    /* Open the store at url, creating and migrating it as needed.  On
     * error nothing is left open. */
    int (*open)(const char *url, sked_store **out, sked_err *err);
    void (*close)(sked_store *st);
    /* Cheap round trip: 0 when the store answers (for /readyz). */
    int (*ping)(sked_store *st, sked_err *err);

    /* Insert n tasks, all or nothing.  Errors: SKED_ECONFLICT with
     * err->field "name" (and the index in err->column, 1-based) when a
     * name is taken in the namespace or repeated in the batch.
     * Idempotency (idem->key not NULL): when the key was seen in recs[0].ns
     * with the same request_hash, nothing is inserted, SKED_EEXIST is
     * returned and recs[0].id is overwritten with the first task's id;
     * with another hash, SKED_ECONFLICT with err->field "Idempotency-Key".
     * Otherwise the key is remembered with recs[0].id in the same
     * transaction. */
    int (*task_insert)(sked_store *st, sked_task_rec *recs, size_t n,
                       const sked_idem *idem, sked_err *err);
    /* The task of namespace ns whose id, or else name, is key.
     * SKED_ENOENT when there is none. */
    int (*task_get)(sked_store *st, const char *ns, const char *key,
                    sked_task_rec *out, sked_err *err);
    /* A page of tasks, by id ascending. */
    int (*task_list)(sked_store *st, const sked_task_filter *f,
                     sked_task_page *out, sked_err *err);
    /* Write rec over the stored task rec->id of rec->ns (name, queue, spec,
     * state, next_run_at, run_count), setting version = old version + 1 and
     * updated_at = rec->updated_at; on success rec->version holds the new
     * version.  expect_version > 0: SKED_EPRECOND when the stored version
     * differs.  SKED_ENOENT, SKED_ECONFLICT (name taken) as above. */
    int (*task_update)(sked_store *st, sked_task_rec *rec,
                       int64_t expect_version, sked_err *err);
    /* Delete task id of namespace ns (runs: canceled, part 2).
     * SKED_ENOENT when there is none. */
    int (*task_delete)(sked_store *st, const char *ns, const char *id,
                       sked_err *err);

    /* Tokens.  token_find: by hash, SKED_ENOENT when unknown or revoked. */
    int (*token_insert)(sked_store *st, const sked_token_rec *t, sked_err *err);
    int (*token_find)(sked_store *st, const char *hash, sked_token_rec *out,
                      sked_err *err);
    /* All tokens (ns NULL) or those of one namespace, oldest first; *out is
     * malloc'ed, free() it. */
    int (*token_list)(sked_store *st, const char *ns, sked_token_rec **out,
                      size_t *n, sked_err *err);
    /* Revoke token id (of namespace ns unless ns is NULL).  SKED_ENOENT. */
    int (*token_revoke)(sked_store *st, const char *ns, const char *id,
                        sked_walltime at, sked_err *err);

    /* Scheduling (bodies in part 2; SKED_ENOTSUP until then). */
    int (*claim_due)(sked_store *st, void *claim, sked_err *err);
    int (*run_transition)(sked_store *st, void *transition, sked_err *err);
    int (*sweep_expired)(sked_store *st, void *sweep, sked_err *err);
} sked_store_ops;

/* Every store instance begins with a pointer to its ops. */
struct sked_store {
    const sked_store_ops *ops;
};

/* Open the backend whose scheme starts url ("sqlite:/var/lib/sked/db").
 * SKED_EINVAL for an unknown scheme. */
int sked_store_open(const char *url, sked_store **out, sked_err *err);
void sked_store_close(sked_store *st);
int sked_store_ping(sked_store *st, sked_err *err);
int sked_store_task_insert(sked_store *st, sked_task_rec *recs, size_t n,
                           const sked_idem *idem, sked_err *err);
int sked_store_task_get(sked_store *st, const char *ns, const char *key,
                        sked_task_rec *out, sked_err *err);
int sked_store_task_list(sked_store *st, const sked_task_filter *f,
                         sked_task_page *out, sked_err *err);
int sked_store_task_update(sked_store *st, sked_task_rec *rec,
                           int64_t expect_version, sked_err *err);
int sked_store_task_delete(sked_store *st, const char *ns, const char *id,
                           sked_err *err);
int sked_store_token_insert(sked_store *st, const sked_token_rec *t,
                            sked_err *err);
int sked_store_token_find(sked_store *st, const char *hash,
                          sked_token_rec *out, sked_err *err);
int sked_store_token_list(sked_store *st, const char *ns,
                          sked_token_rec **out, size_t *n, sked_err *err);
int sked_store_token_revoke(sked_store *st, const char *ns, const char *id,
                            sked_walltime at, sked_err *err);

/* The SQLite backend's ops (store_sqlite.c). */
extern const sked_store_ops sked_store_sqlite_ops;

#endif
