/*
 * err.c - the error table's names and messages, and the sked_err helpers.
 */
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int sked_err_set(sked_err *e, int code, const char *field, int column,
                 const char *fmt, ...)
{
    if (e == NULL)
        return code;
    e->code = code;
    e->column = column;
    snprintf(e->field, sizeof e->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return code;
}

void sked_err_clear(sked_err *e)
{
    if (e == NULL)
        return;
    memset(e, 0, sizeof *e);
}

void sked_err_prefix_field(sked_err *e, const char *prefix)
{
    if (e == NULL || prefix == NULL || prefix[0] == '\0')
        return;
    char buf[2 * sizeof e->field];
    if (e->field[0] == '\0')
        snprintf(buf, sizeof buf, "%s", prefix);
    else
        snprintf(buf, sizeof buf, "%s.%s", prefix, e->field);
    snprintf(e->field, sizeof e->field, "%.*s", (int)sizeof e->field - 1, buf);
}

const char *sked_err_name(int code)
{
    switch (code) {
#define X(name, value, msg) case value: return #name;
    SKED_ERR_MAP(X)
#undef X
    }
    return "EUNKNOWN";
}

const char *sked_err_str(int code)
{
    switch (code) {
#define X(name, value, msg) case value: return msg;
    SKED_ERR_MAP(X)
#undef X
    }
    return "unknown error";
}
