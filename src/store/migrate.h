/*
 * migrate.h - numbered schema migrations, embedded in the binary.
 *
 * sql/<backend>/NNNN_name.sql files are append-only: a released migration
 * is never edited, a change is a new file with the next number.  At build
 * time scripts/embed-sql turns each backend's directory into an array of
 * sked_migration, sorted by number (build/gen/sql_<backend>.c).  A store
 * applies, at open, every migration whose number is above the one recorded
 * in its schema_version table, each in its own transaction with the
 * version bump.
 */
#ifndef SKED_MIGRATE_H
#define SKED_MIGRATE_H

#include <stddef.h>

typedef struct sked_migration {
    int number;                /* NNNN of the file name, from 1 */
    const char *name;          /* the file name */
    const char *sql;           /* its text */
} sked_migration;

extern const sked_migration sked_sqlite_migrations[];
extern const size_t sked_sqlite_migrations_count;
extern const sked_migration sked_postgres_migrations[];
extern const size_t sked_postgres_migrations_count;

#endif
