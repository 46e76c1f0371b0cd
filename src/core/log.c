/*
 * log.c - logfmt lines to stderr (see log.h).
 *
 * A line is assembled in memory (on the stack when it fits, else on the
 * heap; past 64 KiB, or when the heap says no, cut and ended with "...")
 * and handed to write(2) once, so the lines of
 * concurrent threads never interleave.  The threshold is one atomic int:
 * a call below it costs a load and a compare.
 *
 * Quoting: a value (msg included) is written bare unless it is empty or
 * holds a blank, '=', '"', a backslash or a control byte; then it is
 * written in double quotes with '"' and '\' escaped by a backslash and
 * newline, CR and tab as \n, \r, \t (other control bytes as \xHH), so one
 * event is always one line.  Keys come from code and are written as
 * given, with any such byte replaced by '_'.
 *
 * Not here: JSON output, log files, rotation, sampling.
 */
#include "core/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/clock.h"
#include "time/rfc3339.h"

#define STACK_LINE 2048
#define MAX_LINE (64 * 1024) /* longer lines are truncated */

static _Atomic int threshold = SKED_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int sked_log_init(const char *level)
{
    if (level == NULL)
        return -1;
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(level, level_names[i]) == 0) {
            atomic_store(&threshold, i);
            return 0;
        }
    }
    if (strcasecmp(level, "warning") == 0) {
        atomic_store(&threshold, SKED_LOG_WARN);
        return 0;
    }
    return -1;
}

typedef struct line {
    char *p;
    size_t len, cap;
    int heap;       /* p is malloc'ed */
    int truncated;  /* MAX_LINE reached: the rest is dropped */
} line;

/* Kept free at the end of every line for "..." and the newline. */
#define RESERVE 4

/* Grow l towards want bytes, up to MAX_LINE; on failure l stays as is. */
static void grow(line *l, size_t want)
{
    if (want > MAX_LINE)
        want = MAX_LINE;
    if (want <= l->cap)
        return;
    size_t cap = l->cap * 2 > want ? l->cap * 2 : want;
    if (cap > MAX_LINE)
        cap = MAX_LINE;
    char *p = l->heap ? realloc(l->p, cap) : malloc(cap);
    if (p == NULL)
        return;
    if (!l->heap)
        memcpy(p, l->p, l->len);
    l->p = p;
    l->cap = cap;
    l->heap = 1;
}

/* Append s[0..n), or what fits; once full, the line only takes its end. */
static void add(line *l, const char *s, size_t n)
{
    if (l->truncated)
        return;
    if (l->len + n + RESERVE > l->cap)
        grow(l, l->len + n + RESERVE);
    size_t avail = l->cap - RESERVE - l->len;
    if (n > avail) {
        n = avail;
        l->truncated = 1;
    }
    memcpy(l->p + l->len, s, n);
    l->len += n;
}

static void addc(line *l, char c) { add(l, &c, 1); }

static int special(unsigned char c)
{
    return c <= ' ' || c == '=' || c == '"' || c == '\\' || c == 0x7f;
}

static void add_key(line *l, const char *k)
{
    if (l->len > 0)
        addc(l, ' ');
    for (const char *p = k; *p; p++)
        addc(l, special((unsigned char)*p) ? '_' : *p);
    addc(l, '=');
}

static void add_value(line *l, const char *v)
{
    if (v == NULL)
        v = "";
    size_t n = strlen(v);
    int quote = n == 0;
    for (size_t i = 0; i < n && !quote; i++)
        quote = special((unsigned char)v[i]);
    if (!quote) {
        add(l, v, n);
        return;
    }
    addc(l, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        static const char hex[] = "0123456789abcdef";
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            add(l, e, 2);
        } else if (c == '\n') {
            add(l, "\\n", 2);
        } else if (c == '\r') {
            add(l, "\\r", 2);
        } else if (c == '\t') {
            add(l, "\\t", 2);
        } else if (c < ' ' || c == 0x7f) {
            char e[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            add(l, e, 4);
        } else {
            addc(l, (char)c);
        }
    }
    addc(l, '"');
}

/* ts value: RFC 3339 UTC with exactly three fraction digits. */
static void add_ts(line *l)
{
    sked_walltime now = sked_clock_wall_now();
    sked_walltime ms = now / SKED_USEC_PER_MSEC % 1000;
    char buf[SKED_RFC3339_MAX + 4];
    size_t n = sked_rfc3339_format(now - now % SKED_USEC_PER_SEC, 0, 1, buf);
    if (n < 1 || buf[n - 1] != 'Z') {
        add(l, "ts=?", 4);
        return;
    }
    buf[n - 1] = '.';
    buf[n++] = (char)('0' + ms / 100);
    buf[n++] = (char)('0' + ms / 10 % 10);
    buf[n++] = (char)('0' + ms % 10);
    buf[n++] = 'Z';
    add(l, "ts=", 3);
    add(l, buf, n);
}

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere to report it */
        }
        p += w;
        n -= (size_t)w;
    }
}

void sked_log(sked_log_level level, const char *msg, ...)
{
    if ((int)level < atomic_load_explicit(&threshold, memory_order_relaxed))
        return;
    if ((int)level < 0 || (int)level > SKED_LOG_ERROR)
        level = SKED_LOG_ERROR;
    char stack[STACK_LINE];
    line l = {.p = stack, .cap = sizeof stack};
    add_ts(&l);
    add_key(&l, "level");
    add_value(&l, level_names[level]);
    add_key(&l, "msg");
    add_value(&l, msg);
    va_list ap;
    va_start(ap, msg);
    const char *k;
    while ((k = va_arg(ap, const char *)) != NULL) {
        add_key(&l, k);
        add_value(&l, va_arg(ap, const char *));
    }
    va_end(ap);
    if (l.truncated) {
        memcpy(l.p + l.len, "...", 3);
        l.len += 3;
    }
    l.p[l.len++] = '\n';
    write_all(l.p, l.len);
    if (l.heap)
        free(l.p);
}
