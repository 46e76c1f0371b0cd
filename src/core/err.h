/*
 * err.h - sked's one table of error codes, and the detail that goes with them.
 *
 * Every fallible function returns 0 on success or a negative SKED_E* code, and
 * may fill a caller-provided sked_err with a message, the field at fault and a
 * column.  The table below is the only place codes are defined: the X-macro
 * yields the enum, the symbolic name and the default message.  Codes are
 * appended, never renumbered; the API layer maps them to HTTP status.
 *
 * Not here: logging (library-like modules never log) and HTTP mapping.
 */
#ifndef SKED_ERR_H
#define SKED_ERR_H

#include <stddef.h>

/*   name       value  default message */
#define SKED_ERR_MAP(X)                                         \
    X(OK,        0,   "ok")                                     \
    X(EINVAL,   -1,   "invalid argument")                       \
    X(ENOENT,   -2,   "not found")                              \
    X(ENOFIRE,  -3,   "schedule never fires")                   \
    X(ERANGE,   -4,   "value out of range")                     \
    X(ENOMEM,   -5,   "out of memory")                          \
    X(EIO,      -6,   "input/output error")                     \
    X(ECONFLICT,-7,   "conflict")                               \
    X(EAGAIN,   -8,   "temporarily unavailable")                \
    X(EINTERNAL,-9,   "internal error")                         \
    X(EEXIST,  -10,   "already exists")                         \
    X(EPRECOND,-11,   "precondition failed")                    \
    X(ENOTSUP, -12,   "not supported")                          \
    X(EUNAUTH, -13,   "unauthenticated")                        \
    X(EPERM,   -14,   "permission denied")                      \
    X(ETOOBIG, -15,   "payload too large")                      \
    X(EMEDIA,  -16,   "unsupported media type")                 \
    X(EMETHOD, -17,   "method not allowed")                     \
    X(EBUSY,   -18,   "too many requests")                      \
    X(EUNAVAIL,-19,   "unavailable")

enum {
#define X(name, value, msg) SKED_##name = value,
    SKED_ERR_MAP(X)
#undef X
};

/* Detail of a failure.  field and msg are always NUL-terminated; column is
 * 1-based where the error has a position in an input string, else 0. */
typedef struct sked_err {
    int code;
    int column;
    char field[64];
    char msg[256];
} sked_err;

/* Record a failure in e (which may be NULL) and return code, so that callers
 * can write `return sked_err_set(err, SKED_EINVAL, "hour", 4, "...", ...)`.
 * A NULL field leaves the field empty. */
int sked_err_set(sked_err *e, int code, const char *field, int column,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Clear e to "no error". */
void sked_err_clear(sked_err *e);

/* Prefix e->field with prefix and a dot ("schedule" + "cron" ->
 * "schedule.cron"); used when a nested decoder's error bubbles up. */
void sked_err_prefix_field(sked_err *e, const char *prefix);

/* The symbolic name ("EINVAL") and default message of a code; unknown codes
 * give "EUNKNOWN" / "unknown error". Never NULL. */
const char *sked_err_name(int code);
const char *sked_err_str(int code);

#endif
