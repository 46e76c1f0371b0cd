/*
 * harness.h - the glue between cmocka and `make test`'s summary.
 *
 * Each tests/unit/test_<module>.c is one program.  It builds an array of
 * CMUnitTest (statically, or at run time from a data table: one test per
 * row) and hands it to sked_test_run, which runs the group and prints
 *
 *     <name>: N passed, M failed
 *
 * as its last line; tests/run adds those lines up.  Data tables live in
 * tests/unit/data/ and are found through SKED_TEST_DATA (default
 * tests/unit/data, relative to the source tree where `make test` runs).
 */
#ifndef SKED_TEST_HARNESS_H
#define SKED_TEST_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static inline int sked_test_run(const char *name, const struct CMUnitTest *tests,
                                size_t n)
{
    int failed = _cmocka_run_group_tests(name, tests, n, NULL, NULL);
    printf("%s: %zu passed, %d failed\n", name, n - (size_t)failed, failed);
    return failed ? 1 : 0;
}

/* Conformance suites run against several backends; a test that belongs to
 * one backend is named test_<backend>_... (test_sqlite_wal, test_pg_notify,
 * test_mem_named_brokers).  Keep only the tests that apply to `backend`
 * (the URL scheme: "sqlite", "postgres", "mem", "amqp"), so that a run
 * reports what it ran and never counts a skipped test as passed.
 * Compacts tests in place and returns the new count. */
static inline size_t sked_test_for_backend(struct CMUnitTest *tests, size_t n,
                                           const char *backend)
{
    static const char *const owners[][2] = {
        {"test_sqlite_", "sqlite"}, {"test_pg_", "postgres"}, {"test_mem_", "mem"},
        {"test_amqp_", "amqp"}};
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int keep = 1;
        for (size_t o = 0; o < sizeof owners / sizeof owners[0]; o++)
            if (strncmp(tests[i].name, owners[o][0], strlen(owners[o][0])) == 0)
                keep = strncmp(backend, owners[o][1], strlen(owners[o][1])) == 0;
        if (keep)
            tests[k++] = tests[i];
    }
    return k;
}

/* Path of a data table: $SKED_TEST_DATA/file.  Returns a static buffer. */
static inline const char *sked_test_data_path(const char *file)
{
    static char path[4096];
    const char *dir = getenv("SKED_TEST_DATA");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/unit/data", file);
    return path;
}

/* Decode a table cell: \xNN escapes become bytes, "<empty>" is the empty
 * string.  Returns a malloc'ed copy and its length in *len (it may hold
 * NUL bytes). */
static inline char *sked_test_unescape(const char *s, size_t *len)
{
    char *out = malloc(strlen(s) + 1);
    size_t n = 0;
    if (strcmp(s, "<empty>") != 0) {
        for (size_t i = 0; s[i]; i++) {
            if (s[i] == '\\' && s[i + 1] == 'x' && s[i + 2] && s[i + 3]) {
                char hex[3] = {s[i + 2], s[i + 3], 0};
                out[n++] = (char)strtol(hex, NULL, 16);
                i += 3;
            } else {
                out[n++] = s[i];
            }
        }
    }
    out[n] = '\0';
    *len = n;
    return out;
}

/* Read a table: one record per line, '#' comments and blank lines skipped,
 * fields separated by " | " (so cron text may hold single spaces), surrounding
 * blanks trimmed.  Calls row(fields, nfields, lineno, ctx) per record.
 * Aborts the program when the file cannot be read: a missing table must
 * fail, never pass vacuously. */
typedef void (*sked_test_row_fn)(char **fields, int nfields, int lineno,
                                 void *ctx);

static inline void sked_test_read_table(const char *file, sked_test_row_fn row,
                                        void *ctx)
{
    const char *path = sked_test_data_path(file);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "cannot open test table %s\n", path);
        exit(2);
    }
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0;
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '#' || *p == '\n' || *p == '\0')
            continue;
        char *fields[16];
        int n = 0;
        char *s = p;
        for (;;) {
            char *sep = strstr(s, " | ");
            if (sep)
                *sep = '\0';
            /* trim */
            while (*s == ' ' || *s == '\t')
                s++;
            char *e = s + strlen(s);
            while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' ||
                             e[-1] == '\r'))
                *--e = '\0';
            if (n < 16)
                fields[n++] = s;
            if (!sep)
                break;
            s = sep + 3;
        }
        row(fields, n, lineno, ctx);
    }
    free(line);
    fclose(f);
}

#endif
