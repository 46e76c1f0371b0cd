/*
 * log.h - one line per event, logfmt, to stderr.
 *
 *   ts=2026-11-27T10:00:00.123Z level=info msg="task created" task=0193... ns=default
 *
 * Only programs' outer layers log (server roles, CLI); library-like modules
 * (time, store, queue backends) return errors instead.  Lines are written
 * with one write(2) each, so lines of concurrent threads never interleave.
 * The level threshold comes from sked_log_init (default info).
 */
#ifndef SKED_LOG_H
#define SKED_LOG_H

typedef enum sked_log_level {
    SKED_LOG_DEBUG = 0,
    SKED_LOG_INFO = 1,
    SKED_LOG_WARN = 2,
    SKED_LOG_ERROR = 3,
} sked_log_level;

/* Set the threshold; "debug", "info", "warn", "error".  Returns -1 for an
 * unknown name (threshold unchanged). */
int sked_log_init(const char *level);

/* Log msg with key=value pairs given as a NULL-terminated list of
 * alternating key and value strings; values are quoted when they hold
 * blanks, '=' or '"'.  Example:
 *   sked_log(SKED_LOG_INFO, "task created", "task", id, "ns", ns, NULL); */
void sked_log(sked_log_level level, const char *msg, ...)
    __attribute__((sentinel));

#endif
