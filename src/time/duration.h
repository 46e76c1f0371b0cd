/*
 * duration.h - Go-style durations: "500ms", "30s", "5m", "2h", "1h30m", "1d".
 *
 * A duration is one or more <digits><unit> terms with units ms, s, m, h, d
 * (1d = 24h, a fixed length, not a calendar day), no sign, no blanks, no
 * fractions.  Values are microseconds; the largest accepted is 100 years.
 */
#ifndef SKED_DURATION_H
#define SKED_DURATION_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define SKED_DURATION_MAX (INT64_C(100) * 365 * 86400 * 1000000)
#define SKED_DURATION_FMT_MAX 48

/* Parse s[0..len).  On success *out_us holds the duration and 0 is returned.
 * On error SKED_EINVAL with err->column (1-based) at the offending byte and
 * err->msg saying what is wrong; *out_us is untouched. */
int sked_duration_parse(const char *s, size_t len, int64_t *out_us,
                        sked_err *err);

/* Write us (>= 0) in the shortest form sked_duration_parse reads back
 * ("1h30m", "500ms", "0s").  buf must hold SKED_DURATION_FMT_MAX bytes.
 * Returns the length written. */
size_t sked_duration_format(int64_t us, char *buf);

#endif
