/*
 * store_sqlite_migrate.c - the embedded store's schema: bring a file to
 * the newest migration this sked embeds (the files of sql/sqlite, one
 * transaction each with its schema_version row), and refuse a file a
 * newer sked has written.  Safe against another process migrating the
 * same file at the same time.
 */
#include "store/store_sqlite.h"

#include "store/migrate.h"

static int schema_version(sqlite3 *db, int *out, sked_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(
        db, "SELECT coalesce(max(version), 0) FROM schema_version", -1, &st,
        NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        rc = sked_sqlite_fail(db, rc, err, "reading schema_version");
        sqlite3_finalize(st);
        return rc;
    }
    *out = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return 0;
}

/* Apply migration m in its own transaction with its schema_version row,
 * unless another process got there first (hence BEGIN IMMEDIATE and a
 * second look at the version). */
static int apply_one(sqlite3 *db, const sked_migration *m, sked_err *err)
{
    char *ins = NULL;
    int cur = 0;
    int rc = sked_sqlite_exec(db, "BEGIN IMMEDIATE", err);
    if (rc != 0)
        return rc;
    rc = schema_version(db, &cur, err);
    if (rc != 0)
        goto fail;
    if (m->number > cur) {
        if (sqlite3_exec(db, m->sql, NULL, NULL, NULL) != SQLITE_OK) {
            rc = sked_err_set(err, SKED_EINTERNAL, NULL, 0,
                              "sqlite store: migration %s failed: %s",
                              m->name, sqlite3_errmsg(db));
            goto fail;
        }
        ins = sqlite3_mprintf("INSERT INTO schema_version VALUES "
                              "(%d, %Q, %lld)", m->number, m->name,
                              (long long)sked_clock_wall_now());
        if (ins == NULL) {
            rc = sked_err_set(err, SKED_ENOMEM, NULL, 0, "out of memory");
            goto fail;
        }
        if ((rc = sked_sqlite_exec(db, ins, err)) != 0)
            goto fail;
    }
    if ((rc = sked_sqlite_exec(db, "COMMIT", err)) != 0)
        goto fail;
    sqlite3_free(ins);
    return 0;
fail:
    sqlite3_free(ins);
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Bring the file to the newest embedded schema; refuse a file written by a
 * newer sked. */
int sked_sqlite_migrate(sqlite3 *db, const char *path, sked_err *err)
{
    const sked_migration *m = sked_sqlite_migrations;
    size_t count = sked_sqlite_migrations_count;
    int known = count > 0 ? m[count - 1].number : 0;
    int cur = 0;
    int rc = sked_sqlite_exec(db,
                  "CREATE TABLE IF NOT EXISTS schema_version ("
                  " version INTEGER PRIMARY KEY,"
                  " name TEXT NOT NULL,"
                  " applied_at INTEGER NOT NULL)",
                  err);
    if (rc == 0)
        rc = schema_version(db, &cur, err);
    if (rc != 0)
        return rc;
    if (cur > known)
        return sked_err_set(err, SKED_EINVAL, "store", 0,
                            "sqlite store: %s has schema version %d, newer "
                            "than this sked knows (%d); use a newer sked",
                            path, cur, known);
    for (size_t i = 0; i < count; i++)
        if (m[i].number > cur && (rc = apply_one(db, &m[i], err)) != 0)
            return rc;
    return 0;
}
