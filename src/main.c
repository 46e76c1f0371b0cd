/*
 * main.c - argv -> the subcommand.
 *
 * The one `sked` binary carries every role and client command; this file
 * only picks the command and returns its exit status (0 ok, 1 the call
 * failed, 2 usage or input error).
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/version.h"

static const char usage[] =
    "usage: sked COMMAND [ARGS]\n"
    "\n"
    "sked is a distributed task scheduler.  Commands:\n"
    "\n"
    "  cron next      print the next fire times of a cron expression\n"
    "  cron explain   describe a cron expression in English\n"
    "\n"
    "Options: --help, --version.  `sked COMMAND --help` for a command.\n";

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return SKED_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
        strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return SKED_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("sked %s\n", SKED_VERSION);
        return SKED_EXIT_OK;
    }
    if (strcmp(cmd, "cron") == 0)
        return sked_cli_cron(argc - 1, argv + 1);
    fprintf(stderr, "sked: unknown command \"%s\" (see sked --help)\n", cmd);
    return SKED_EXIT_USAGE;
}
