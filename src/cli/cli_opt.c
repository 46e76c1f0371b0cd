/*
 * cli_opt.c - the small option matcher every subcommand shares.
 *
 * Options are written in full ("--tz ZONE" or "--tz=ZONE"); one-letter
 * aliases are passed as the name ("-n").  getopt is not used: cron
 * expressions and shell commands are arguments that must never be permuted
 * or taken apart.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

int sked_cli_opt(int argc, char **argv, int *i, const char *name,
                 const char **value)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *value = a + n + 1;
        (*i)++;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "sked: %s needs a value\n", name);
        return -1;
    }
    *value = argv[*i + 1];
    *i += 2;
    return 1;
}
