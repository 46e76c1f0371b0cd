/*
 * tz_rule.h - internal to src/time: the POSIX TZ rule of a TZif footer.
 *
 * tz.c uses it for instants past a zone's last transition.  A rule is parsed
 * once, checked over a whole 400-year Gregorian cycle and classified, so that
 * evaluating it is pure arithmetic on the calendar (civil.h): no libc time
 * functions, no TZ, no tzset.  Not a general TZ-variable parser: only what a
 * TZif footer may hold (RFC 8536 section 3.3, with the version 3 extensions).
 */
#ifndef SKED_TZ_RULE_H
#define SKED_TZ_RULE_H

#include <stddef.h>
#include <stdint.h>

#include "time/tz.h"

/* One end of daylight saving time: a day of the year and a local time. */
typedef struct sked_tz_rule_date {
    char kind;       /* 'J': Jn, 1-365, Feb 29 never counted;
                        'N': n, 0-365, Feb 29 counted;
                        'M': Mm.w.d, day d (0 = Sunday) of week w (5 = last)
                             of month m */
    int16_t day;     /* J, N */
    int16_t mon, week, wday;   /* M */
    int32_t time;    /* seconds after local midnight, -167h..+167h */
} sked_tz_rule_date;

typedef enum sked_tz_rule_kind {
    SKED_TZ_RULE_FIXED = 0,  /* one offset forever (std_off)               */
    SKED_TZ_RULE_NORTH,      /* each year: start of DST, then its end       */
    SKED_TZ_RULE_SOUTH,      /* each year: end of DST, then its start
                                (southern hemisphere, or "negative DST"
                                like Europe/Dublin's)                       */
} sked_tz_rule_kind;

typedef struct sked_tz_rule {
    sked_tz_rule_kind kind;
    int32_t std_off;         /* seconds east of UTC; the offset when FIXED */
    int32_t dst_off;         /* seconds east of UTC                        */
    sked_tz_rule_date start; /* change to dst_off, in local standard time  */
    sked_tz_rule_date end;   /* change to std_off, in local daylight time  */
} sked_tz_rule;

/* Parse the TZ string s[0..len) (not NUL-terminated; no newline) into *r.
 * Returns 0, or SKED_EINVAL with *why set to a static reason.  Rules whose
 * transitions do not strictly alternate in every year (except the two
 * degenerate forms that mean one offset all year, such as
 * "EST5EDT,0/0,J365/25") are rejected. */
int sked_tz_rule_parse(const char *s, size_t len, sked_tz_rule *r,
                       const char **why);

/* The span of rule r containing instant t.  Total over int64: instants so
 * far out that a neighbouring transition cannot be represented get
 * start = INT64_MIN (with prev_utoff = utoff) or end = INT64_MAX. */
void sked_tz_rule_span(const sked_tz_rule *r, int64_t t, sked_tz_span *out);

#endif
