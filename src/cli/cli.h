/*
 * cli.h - the subcommands of the `sked` program.
 *
 * Each sked_cli_<command> takes the arguments after its name (argv[0] is
 * the command name) and returns the process exit status: 0 ok, 1 the call
 * failed, 2 usage or input error.  Messages go to stderr, one line, naming
 * the option or field at fault; results go to stdout.
 */
#ifndef SKED_CLI_H
#define SKED_CLI_H

#define SKED_EXIT_OK 0
#define SKED_EXIT_FAILED 1
#define SKED_EXIT_USAGE 2

int sked_cli_cron(int argc, char **argv);
int sked_cli_server(int argc, char **argv);
int sked_cli_api(int argc, char **argv);
int sked_cli_scheduler(int argc, char **argv);
int sked_cli_worker(int argc, char **argv);
int sked_cli_token(int argc, char **argv);

/* Match "--name VALUE" or "--name=VALUE" at argv[*i]; on a match advance *i
 * past what was used, point *value at the value and return 1.  Returns -1
 * when the option is there without a value (message printed), else 0. */
int sked_cli_opt(int argc, char **argv, int *i, const char *name,
                 const char **value);

#endif
