/*
 * cmd_token.c - `sked token create|ls|revoke`: tokens managed directly in a
 * server's data directory, which works while the server runs (the store is
 * SQLite in WAL mode; the server reads tokens from it on every request, so
 * a new token works at once).  Over the network, admins use POST/GET/DELETE
 * /v1/tokens instead.
 *
 *   sked token create [--data DIR | --store URL] --namespace NS --role ROLE
 *   sked token ls [--data DIR | --store URL] [--json]
 *   sked token revoke [--data DIR | --store URL] ID
 *
 * --store URL reaches a distributed deployment's store (postgres://...).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "model/token.h"
#include "store/store.h"
#include "time/rfc3339.h"

static const char usage[] =
    "usage: sked token create [--data DIR | --store URL] --namespace NS --role ROLE\n"
    "       sked token ls [--data DIR | --store URL] [--json]\n"
    "       sked token revoke [--data DIR | --store URL] ID\n"
    "\n"
    "Manage API tokens in a sked data directory (default ./sked-data) or in\n"
    "the store at URL (postgres://...); works while servers run.  ROLE: read,\n"
    "write, shell or admin.  `create` prints the new token on stdout; it is\n"
    "not shown again.\n";

static sked_store *open_data(const char *data, const char *store_url)
{
    char db[PATH_MAX], url[PATH_MAX + 16];
    sked_store *st;
    sked_err err = {0};
    if (store_url) {
        if (sked_store_open(store_url, &st, &err) < 0) {
            fprintf(stderr, "sked token: --store: %s\n", err.msg);
            return NULL;
        }
        return st;
    }
    snprintf(db, sizeof db, "%s/sked.db", data);
    if (access(db, F_OK) < 0) {
        fprintf(stderr, "sked token: no sked data in %s (start `sked server "
                        "--data %s` once, or pass --data)\n", data, data);
        return NULL;
    }
    snprintf(url, sizeof url, "sqlite:%s", db);
    if (sked_store_open(url, &st, &err) < 0) {
        fprintf(stderr, "sked token: %s: %s\n", db, err.msg);
        return NULL;
    }
    return st;
}

int sked_cli_token(int argc, char **argv)
{
    const char *data = "./sked-data", *store_url = NULL, *ns = NULL, *role = NULL, *v;
    const char *cmd = argc > 1 ? argv[1] : NULL, *arg = NULL;
    int json = 0, r;
    if (cmd == NULL || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        fputs(usage, cmd ? stdout : stderr);
        return cmd ? SKED_EXIT_OK : SKED_EXIT_USAGE;
    }
    for (int i = 2; i < argc;) {
        if (strcmp(argv[i], "--help") == 0) {
            fputs(usage, stdout);
            return SKED_EXIT_OK;
        }
        if ((r = sked_cli_opt(argc, argv, &i, "--data", &v)) != 0) {
            if (r < 0) return SKED_EXIT_USAGE;
            data = v;
        } else if ((r = sked_cli_opt(argc, argv, &i, "--store", &v)) != 0) {
            if (r < 0) return SKED_EXIT_USAGE;
            store_url = v;
        } else if ((r = sked_cli_opt(argc, argv, &i, "--namespace", &v)) != 0) {
            if (r < 0) return SKED_EXIT_USAGE;
            ns = v;
        } else if ((r = sked_cli_opt(argc, argv, &i, "--role", &v)) != 0) {
            if (r < 0) return SKED_EXIT_USAGE;
            role = v;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1, i++;
        } else if (argv[i][0] != '-' && arg == NULL) {
            arg = argv[i++];
        } else {
            fprintf(stderr, "sked token: unexpected argument %s (see --help)\n", argv[i]);
            return SKED_EXIT_USAGE;
        }
    }
    if (strcmp(cmd, "create") == 0) {
        if (ns == NULL || role == NULL || sked_role_parse(role) < 0 || arg) {
            fprintf(stderr, "sked token create: --namespace NS and --role "
                            "read|write|shell|admin are required\n");
            return SKED_EXIT_USAGE;
        }
    } else if (strcmp(cmd, "revoke") == 0) {
        if (arg == NULL) {
            fprintf(stderr, "sked token revoke: which token? (an ID from sked token ls)\n");
            return SKED_EXIT_USAGE;
        }
    } else if (strcmp(cmd, "ls") != 0) {
        fprintf(stderr, "sked token: unknown command \"%s\" (create, ls, revoke)\n", cmd);
        return SKED_EXIT_USAGE;
    }
    sked_store *st = open_data(data, store_url);
    if (st == NULL)
        return SKED_EXIT_FAILED;
    sked_err err = {0};
    int rc = SKED_EXIT_OK;
    if (strcmp(cmd, "create") == 0) {
        char secret[SKED_TOKEN_TEXT];
        if (sked_token_make(st, ns, (sked_role)sked_role_parse(role), secret, NULL, &err) < 0) {
            fprintf(stderr, "sked token create: %s\n", err.msg);
            rc = err.code == SKED_EINVAL ? SKED_EXIT_USAGE : SKED_EXIT_FAILED;
        } else {
            puts(secret);
        }
    } else if (strcmp(cmd, "revoke") == 0) {
        if (sked_store_token_revoke(st, NULL, arg, sked_clock_wall_now(), &err) < 0) {
            fprintf(stderr, "sked token revoke: %s\n",
                    err.code == SKED_ENOENT ? "no such token" : err.msg);
            rc = SKED_EXIT_FAILED;
        }
    } else {
        sked_token_rec *t = NULL;
        size_t n = 0;
        if (sked_store_token_list(st, NULL, &t, &n, &err) < 0) {
            fprintf(stderr, "sked token ls: %s\n", err.msg);
            rc = SKED_EXIT_FAILED;
        } else {
            if (!json)
                printf("%-36s  %-20s  %-5s  %-20s  %s\n", "ID", "NAMESPACE", "ROLE",
                       "CREATED", "REVOKED");
            else
                printf("{\"tokens\":[");
            for (size_t i = 0; i < n; i++) {
                char c1[SKED_RFC3339_MAX], c2[SKED_RFC3339_MAX] = "-";
                sked_rfc3339_format(t[i].created_at, 0, 1, c1);
                if (t[i].revoked_at != SKED_TIME_NONE)
                    sked_rfc3339_format(t[i].revoked_at, 0, 1, c2);
                if (json)
                    printf("%s{\"id\":\"%s\",\"namespace\":\"%s\",\"role\":\"%s\","
                           "\"created_at\":\"%s\",\"revoked_at\":%s%s%s}",
                           i ? "," : "", t[i].id, t[i].ns, sked_role_name(t[i].role), c1,
                           c2[0] == '-' ? "" : "\"", c2[0] == '-' ? "null" : c2,
                           c2[0] == '-' ? "" : "\"");
                else
                    printf("%-36s  %-20s  %-5s  %-20.20s  %s\n", t[i].id, t[i].ns,
                           sked_role_name(t[i].role), c1, c2);
            }
            if (json)
                printf("]}\n");
            free(t);
        }
    }
    sked_store_close(st);
    return rc;
}
