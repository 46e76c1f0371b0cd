/*
 * main.c - argv -> the subcommand.
 *
 * The one `sked` binary carries every role and client command; this file
 * only picks the command and returns its exit status (0 ok, 1 the call
 * failed, 2 usage or input error).
 */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "core/version.h"

static const char usage[] =
    "usage: sked COMMAND [ARGS]\n"
    "\n"
    "sked is a distributed task scheduler.  Commands:\n"
    "\n"
    "  server         run every role in one process (embedded store by default)\n"
    "  api            run the HTTP API against --store URL\n"
    "  scheduler      run a scheduler against --store URL and --queue URL\n"
    "  worker         run a worker against --queue URL\n"
    "  token          create, list and revoke API tokens in a data directory\n"
    "  add            create a task: sked add --cron EXPR|--every DUR|--at TIME\n"
    "                 --shell CMD|--http URL\n"
    "  ls             list tasks\n"
    "  show TASK      show a task, its next fire times and last runs\n"
    "  rm TASK        delete a task\n"
    "  pause TASK     stop a task from firing\n"
    "  resume TASK    resume a paused task\n"
    "  trigger TASK   run a task now\n"
    "  runs [TASK]    list runs\n"
    "  cancel RUN     cancel an unfinished run\n"
    "  workers        list live workers\n"
    "  cron next      print the next fire times of a cron expression\n"
    "  cron explain   describe a cron expression in English\n"
    "\n"
    "Client commands talk to $SKED_URL (default http://127.0.0.1:7070) with\n"
    "$SKED_TOKEN (default: the token in ./sked-data/admin.token).\n"
    "Options: --help, --version.  `sked COMMAND --help` for a command.\n";

/* Each running shell job holds two descriptors and each HTTP request a
 * socket: allow as many as the hard limit permits. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    raise_fd_limit();
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
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } commands[] = {
        {"cron", sked_cli_cron},
        {"server", sked_cli_server},
        {"api", sked_cli_api},
        {"scheduler", sked_cli_scheduler},
        {"worker", sked_cli_worker},
        {"token", sked_cli_token},
        {"add", sked_cli_add},
        {"ls", sked_cli_ls},
        {"show", sked_cli_show},
        {"rm", sked_cli_rm},
        {"pause", sked_cli_pause},
        {"resume", sked_cli_resume},
        {"trigger", sked_cli_trigger},
        {"runs", sked_cli_runs},
        {"cancel", sked_cli_cancel},
        {"workers", sked_cli_workers},
    };
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "sked: unknown command \"%s\" (see sked --help)\n", cmd);
    return SKED_EXIT_USAGE;
}
