/*
 * tz.h - IANA time zones from TZif files (RFC 8536), without TZ/tzset.
 *
 * A sked_tz is an immutable description of one zone: its UTC offsets over
 * time as a sorted list of transitions, then the footer's POSIX TZ rule for
 * instants past the last transition (2038 and far beyond).  Zones are loaded
 * by name from $TZDIR or /usr/share/zoneinfo, cached for the life of the
 * process, and safe to share between threads without locks once returned.
 *
 * Everything works in whole seconds since the Unix epoch (int64): UTC
 * instants, or "local seconds" (the same count read on the zone's wall
 * clock, i.e. instant + utoff).
 *
 * Only the UTC offset matters to sked: consecutive transitions that do not
 * change the offset (an abbreviation or isdst change alone) are merged, so a
 * span boundary is always a real offset change: a gap (offset grows, local
 * times are skipped) or a fold (offset shrinks, local times repeat).
 *
 * Not here: cron (cron.h), formatting (rfc3339.h).
 */
#ifndef SKED_TZ_H
#define SKED_TZ_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "time/civil.h"

typedef struct sked_tz sked_tz;

/* The maximal interval [start, end) of UTC instants around some instant
 * during which the zone's offset is constant. */
typedef struct sked_tz_span {
    int64_t start;       /* first instant of the span; INT64_MIN if none   */
    int64_t end;         /* first instant after it;    INT64_MAX if none   */
    int32_t utoff;       /* seconds east of UTC inside the span            */
    int32_t prev_utoff;  /* offset before start; == utoff if start is MIN  */
} sked_tz_span;

/* Where a local wall time falls. */
typedef enum sked_tz_kind {
    SKED_TZ_UNIQUE = 1,  /* exactly one instant                           */
    SKED_TZ_GAP = 0,     /* skipped by a forward shift: no instant         */
    SKED_TZ_FOLD = 2,    /* repeated by a backward shift: two instants     */
} sked_tz_kind;

/* Find the zone called name ("Europe/Berlin", "UTC").  The zone is loaded and
 * cached on first use; the returned pointer stays valid until the process
 * exits and must not be freed.  Thread-safe.
 * Errors: SKED_EINVAL for a name that cannot be a zone (empty, absolute,
 * "..", characters outside [A-Za-z0-9/_+-], longer than 255), SKED_ENOENT
 * when no such file exists, SKED_EINVAL for a file that is not valid TZif.
 * err->msg then says which, e.g. `unknown zone "Mars/Olympus"`.
 * "UTC" always exists, even without zoneinfo files. */
int sked_tz_get(const char *name, const sked_tz **out, sked_err *err);

/* The built-in UTC zone. */
const sked_tz *sked_tz_utc(void);

/* The name the zone was loaded under. */
const char *sked_tz_name(const sked_tz *tz);

/* Non-zero when the zone's offset is 0 at every instant (UTC, Etc/GMT...):
 * such zones print instants with "Z". */
int sked_tz_is_utc(const sked_tz *tz);

/* The span containing instant t.  Total: every t has one. */
void sked_tz_span_at(const sked_tz *tz, int64_t t, sked_tz_span *out);

/* Offset (seconds east of UTC) at instant t. */
int32_t sked_tz_utoff_at(const sked_tz *tz, int64_t t);

/* UTC instant t -> local broken-down time; *utoff (may be NULL) receives the
 * offset in force. */
void sked_tz_to_local(const sked_tz *tz, int64_t t, sked_civil *out,
                      int32_t *utoff);

/* Local wall time (year..sec of lt; wday/yday ignored) -> instant(s).
 * UNIQUE: out[0] is the instant.  FOLD: out[0] < out[1], the earlier and the
 * later instant.  GAP: out[0] is the transition instant, the first instant
 * after the skipped local times. */
sked_tz_kind sked_tz_from_local(const sked_tz *tz, const sked_civil *lt,
                                int64_t out[2]);

/* Parse a TZif image (versions 1-4) held in memory; for the loader, tests and
 * the fuzzer.  On success *out is a new zone owned by the caller (free it
 * with sked_tz_free); on error (SKED_EINVAL, with the reason in err) nothing
 * is allocated. */
int sked_tz_parse(const char *name, const uint8_t *buf, size_t len,
                  sked_tz **out, sked_err *err);

/* Free a zone from sked_tz_parse.  Never call it on a zone from sked_tz_get. */
void sked_tz_free(sked_tz *tz);

#endif
