/*
 * fuzz_tzif.c - libFuzzer target for the TZif reader and the footer TZ rule.
 * Any byte string goes to sked_tz_parse; a zone that parses is queried at
 * instants from INT64_MIN to INT64_MAX (inside the table, past its end where
 * the rule decides, and at the int64 extremes), and the answers are checked
 * against each other: spans contain their instant and meet their
 * neighbours, and local times read back to their instants.  A hostile image
 * must be rejected or answered, never crash, hang or leak.
 *
 *   make bin/fuzz/fuzz_tzif
 *   cp -r tests/fuzz/corpus/tzif /tmp/tzif && bin/fuzz/fuzz_tzif /tmp/tzif
 */
#include <stdint.h>
#include <stdlib.h>

#include "time/tz.h"

#define CHECK(cond)                                                           \
    do {                                                                      \
        if (!(cond))                                                          \
            abort();                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_span(const sked_tz *tz, int64_t t)
{
    sked_tz_span s, n;
    sked_tz_span_at(tz, t, &s);
    CHECK(s.start <= t);
    CHECK(t < s.end || s.end == INT64_MAX);
    CHECK(s.start != INT64_MIN || s.prev_utoff == s.utoff);
    CHECK(s.start == INT64_MIN || s.prev_utoff != s.utoff);
    CHECK(sked_tz_utoff_at(tz, t) == s.utoff);
    if (s.end != INT64_MAX) {
        sked_tz_span_at(tz, s.end, &n);
        CHECK(n.start == s.end);
        CHECK(n.prev_utoff == s.utoff);
    }
    if (s.start != INT64_MIN) {
        sked_tz_span_at(tz, s.start - 1, &n);
        CHECK(n.end == s.start);
        CHECK(n.utoff == s.prev_utoff);
    }

    sked_civil c;
    int32_t off;
    sked_tz_to_local(tz, t, &c, &off);
    CHECK(off == s.utoff);
    /* Away from the clamped ends, the wall time reads back to t. */
    if (t > -(INT64_C(1) << 55) && t < (INT64_C(1) << 55)) {
        int64_t out[2];
        sked_tz_kind k = sked_tz_from_local(tz, &c, out);
        CHECK(k != SKED_TZ_GAP);
        CHECK(out[0] <= t && t <= out[1]);
        CHECK(k == SKED_TZ_FOLD ? out[0] < out[1] : out[0] == out[1]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sked_tz *tz = NULL;
    sked_err err = {0};
    if (sked_tz_parse("fuzz", data, size, &tz, &err) != 0) {
        CHECK(tz == NULL && err.msg[0] != '\0');
        return 0;
    }
    static const int64_t probes[] = {
        INT64_MIN,
        INT64_MIN + 1,
        INT64_MIN / 2,
        -(INT64_C(1) << 59),   /* zic's "big bang" */
        -2208988800,           /* 1900 */
        -1,
        0,
        1700000000,            /* 2023 */
        INT64_C(2147483647),   /* the 32-bit end, 2038 */
        INT64_C(2147483648),
        INT64_C(4102444800),   /* 2100 */
        INT64_C(13569465600),  /* 2400 */
        INT64_C(1) << 40,
        INT64_MAX / 2,
        INT64_MAX - 1,
        INT64_MAX,
    };
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++)
        check_span(tz, probes[i]);

    /* Walk a few spans forward from 1900: through the table and into the
     * rule, where the walk continues past the last transition. */
    sked_tz_span s;
    sked_tz_span_at(tz, -2208988800, &s);
    for (int i = 0; i < 64 && s.end != INT64_MAX; i++) {
        check_span(tz, s.end);
        sked_tz_span_at(tz, s.end, &s);
    }

    /* Wall times out of their ranges count on, and must not overflow. */
    static const sked_civil odd[] = {
        {.year = INT32_MAX, .mon = 12, .mday = 31, .hour = 23},
        {.year = INT32_MIN, .mon = 1, .mday = 1},
        {.year = 2024, .mon = INT32_MAX, .mday = INT32_MIN, .hour = INT32_MAX,
         .min = INT32_MIN, .sec = INT32_MAX},
        {.year = 2024, .mon = 3, .mday = 10, .hour = 2, .min = 30},
    };
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        int64_t out[2];
        sked_tz_from_local(tz, &odd[i], out);
    }
    (void)sked_tz_is_utc(tz);
    CHECK(sked_tz_name(tz)[0] == 'f');
    sked_tz_free(tz);
    return 0;
}
