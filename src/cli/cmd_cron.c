/*
 * cmd_cron.c - `sked cron next` and `sked cron explain`: schedules evaluated
 * locally, with no server.
 *
 *   sked cron next [--tz ZONE] [--from RFC3339] [-n N] [--] EXPR
 *   sked cron explain [--] EXPR
 *
 * EXPR may be given as one argument or as several, which are joined with
 * single spaces (`sked cron next -- 0 3 '*' '*' '*'`).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/clock.h"
#include "time/cron.h"
#include "time/rfc3339.h"
#include "time/tz.h"

#define MAX_COUNT 100000

static const char next_usage[] =
    "usage: sked cron next [--tz ZONE] [--from RFC3339] [-n N] [--] EXPR\n"
    "\n"
    "Print the next N (default 5) fire instants of the cron expression EXPR\n"
    "strictly after --from (default: now), one RFC 3339 instant per line with\n"
    "the zone's offset at that instant.  ZONE is an IANA name (default UTC).\n"
    "EXPR: 5 fields (minute hour day-of-month month day-of-week), 6 with a\n"
    "leading seconds field, a macro (@daily ...) or @every DURATION.\n"
    "Exit status: 0 ok, 2 invalid expression, zone or option.\n";

static const char explain_usage[] =
    "usage: sked cron explain [--] EXPR\n"
    "\n"
    "Describe the cron expression EXPR in English.\n";

static const char cron_usage[] =
    "usage: sked cron next|explain ...\n"
    "\n"
    "  next      print the next fire times of an expression\n"
    "  explain   describe an expression in English\n"
    "\n"
    "Run `sked cron COMMAND --help` for a command's options.\n";

/* Join argv[i..argc) with single spaces into a new string. */
static char *join(int argc, char **argv, int i)
{
    size_t n = 1;
    for (int k = i; k < argc; k++)
        n += strlen(argv[k]) + 1;
    char *s = malloc(n);
    if (s == NULL)
        abort();
    s[0] = '\0';
    for (int k = i; k < argc; k++) {
        if (k > i)
            strcat(s, " ");
        strcat(s, argv[k]);
    }
    return s;
}

static int parse_expr(const char *cmd, const char *text, sked_cron *c)
{
    sked_err err = {0};
    if (sked_cron_parse(text, strlen(text), c, &err) < 0) {
        fprintf(stderr, "sked cron %s: %s\n", cmd, err.msg);
        return -1;
    }
    return 0;
}

static int cron_next(int argc, char **argv)
{
    const char *zone = "UTC", *from = NULL, *count = NULL, *v;
    int i = 1, r;
    while (i < argc) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(next_usage, stdout);
            return SKED_EXIT_OK;
        }
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        if ((r = sked_cli_opt(argc, argv, &i, "--tz", &v)) != 0) {
            if (r < 0) return SKED_EXIT_USAGE;
            zone = v;
        } else if ((r = sked_cli_opt(argc, argv, &i, "--from", &v)) != 0) {
            if (r < 0) return SKED_EXIT_USAGE;
            from = v;
        } else if ((r = sked_cli_opt(argc, argv, &i, "-n", &v)) != 0) {
            if (r < 0) return SKED_EXIT_USAGE;
            count = v;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "sked cron next: unknown option %s (see --help)\n",
                    argv[i]);
            return SKED_EXIT_USAGE;
        } else {
            break;
        }
    }
    if (i >= argc) {
        fprintf(stderr, "sked cron next: missing EXPR (see --help)\n");
        return SKED_EXIT_USAGE;
    }
    long n = 5;
    if (count) {
        char *end;
        n = strtol(count, &end, 10);
        if (*count == '\0' || *end != '\0' || n < 1 || n > MAX_COUNT) {
            fprintf(stderr, "sked cron next: -n: expected a count from 1 to %d, "
                            "got \"%s\"\n", MAX_COUNT, count);
            return SKED_EXIT_USAGE;
        }
    }
    sked_err err = {0};
    const sked_tz *tz;
    if (sked_tz_get(zone, &tz, &err) < 0) {
        fprintf(stderr, "sked cron next: --tz: %s\n", err.msg);
        return SKED_EXIT_USAGE;
    }
    sked_walltime t = sked_clock_wall_now();
    if (from && sked_rfc3339_parse(from, strlen(from), &t, NULL, &err) < 0) {
        fprintf(stderr, "sked cron next: --from: %s\n", err.msg);
        return SKED_EXIT_USAGE;
    }
    char *text = join(argc, argv, i);
    sked_cron c;
    int rc = parse_expr("next", text, &c);
    free(text);
    if (rc < 0)
        return SKED_EXIT_USAGE;
    for (long k = 0; k < n; k++) {
        if (sked_cron_next(&c, tz, t, &t) < 0) {
            if (k == 0) {
                fprintf(stderr, "sked cron next: the expression never fires "
                                "(no occurrence within %d years)\n",
                        SKED_CRON_HORIZON_YEARS);
                return SKED_EXIT_USAGE;
            }
            break; /* the horizon or year 9999 was reached */
        }
        char buf[SKED_RFC3339_MAX];
        if (sked_rfc3339_format_tz(t, tz, buf) == 0)
            break;
        puts(buf);
    }
    return SKED_EXIT_OK;
}

static int cron_explain(int argc, char **argv)
{
    int i = 1;
    if (i < argc && (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)) {
        fputs(explain_usage, stdout);
        return SKED_EXIT_OK;
    }
    if (i < argc && strcmp(argv[i], "--") == 0)
        i++;
    if (i >= argc) {
        fprintf(stderr, "sked cron explain: missing EXPR (see --help)\n");
        return SKED_EXIT_USAGE;
    }
    char *text = join(argc, argv, i);
    sked_cron c;
    int rc = parse_expr("explain", text, &c);
    free(text);
    if (rc < 0)
        return SKED_EXIT_USAGE;
    char buf[512];
    sked_cron_explain(&c, buf, sizeof buf);
    puts(buf);
    return SKED_EXIT_OK;
}

int sked_cli_cron(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(cron_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? SKED_EXIT_USAGE : SKED_EXIT_OK;
    }
    if (strcmp(argv[1], "next") == 0)
        return cron_next(argc - 1, argv + 1);
    if (strcmp(argv[1], "explain") == 0)
        return cron_explain(argc - 1, argv + 1);
    fprintf(stderr, "sked cron: unknown command \"%s\" (next, explain)\n", argv[1]);
    return SKED_EXIT_USAGE;
}
