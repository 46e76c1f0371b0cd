/*
 * rfc3339.h - reading and writing RFC 3339 instants.
 *
 * Input: YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm), 'T' and 'Z' in
 * either case, 1-9 fraction digits (kept to the microsecond, the rest
 * truncated), years 0001-9999.  No leap second (:60), no blanks.
 * Output: the same shape with the given offset, "Z" on request, and
 * fraction digits only when the value has them (3 when whole milliseconds,
 * else 6).
 */
#ifndef SKED_RFC3339_H
#define SKED_RFC3339_H

#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"
#include "core/err.h"
#include "time/tz.h"

#define SKED_RFC3339_MAX 40 /* longest output, NUL included */

/* Parse s[0..len) into *out.  On error SKED_EINVAL with err->column at the
 * offending byte and a message that names the expected part; *out is
 * untouched.  *utoff (may be NULL) receives the offset that was written. */
int sked_rfc3339_parse(const char *s, size_t len, sked_walltime *out,
                       int32_t *utoff, sked_err *err);

/* Write t as seen at offset utoff (seconds east of UTC; a non-whole-minute
 * offset, which RFC 3339 cannot express, is written as UTC).  use_z writes
 * "Z" for a zero offset instead of "+00:00".  buf holds SKED_RFC3339_MAX
 * bytes.  Returns the length, or 0 when t lies outside years 0001-9999. */
size_t sked_rfc3339_format(sked_walltime t, int32_t utoff, int use_z,
                           char *buf);

/* Write t with the offset tz has at t ("Z" for zones that are always UTC). */
size_t sked_rfc3339_format_tz(sked_walltime t, const sked_tz *tz, char *buf);

#endif
