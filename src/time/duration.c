/*
 * duration.c - reading and writing Go-style durations (see duration.h).
 *
 * Grammar:   duration := term+     term := digit+ unit
 *            unit := "ms" | "s" | "m" | "h" | "d"
 * Units may come in any order and repeat ("1h1h" is 2h); the sum must stay
 * within SKED_DURATION_MAX.
 */
#include "time/duration.h"

#include <stdio.h>

static const struct {
    const char *name;
    int len;
    int64_t us;
} units[] = {
    {"ms", 2, INT64_C(1000)},
    {"s", 1, INT64_C(1000000)},
    {"m", 1, INT64_C(60000000)},
    {"h", 1, INT64_C(3600000000)},
    {"d", 1, INT64_C(86400000000)},
};

int sked_duration_parse(const char *s, size_t len, int64_t *out_us,
                        sked_err *err)
{
    if (len == 0)
        return sked_err_set(err, SKED_EINVAL, NULL, 1,
                            "empty duration; use a number and a unit like 30s");
    int64_t total = 0;
    size_t i = 0;
    while (i < len) {
        size_t start = i;
        int64_t n = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            n = n * 10 + (s[i] - '0');
            if (n > SKED_DURATION_MAX)
                return sked_err_set(err, SKED_EINVAL, NULL, (int)start + 1,
                                    "duration is longer than 100 years");
            i++;
        }
        if (i == start)
            return sked_err_set(err, SKED_EINVAL, NULL, (int)i + 1,
                                "expected a digit in duration at column %zu",
                                i + 1);
        size_t u;
        for (u = 0; u < sizeof units / sizeof units[0]; u++) {
            size_t l = (size_t)units[u].len;
            if (len - i >= l && s[i] == units[u].name[0] &&
                (l == 1 || s[i + 1] == units[u].name[1])) {
                /* "m" must not steal the "m" of "ms" */
                if (l == 1 && units[u].name[0] == 'm' && len - i >= 2 &&
                    s[i + 1] == 's')
                    continue;
                break;
            }
        }
        if (u == sizeof units / sizeof units[0])
            return sked_err_set(err, SKED_EINVAL, NULL, (int)i + 1,
                                "missing or unknown unit at column %zu "
                                "(use ms, s, m, h or d)", i + 1);
        if (n > (SKED_DURATION_MAX - total) / units[u].us)
            return sked_err_set(err, SKED_EINVAL, NULL, (int)start + 1,
                                "duration is longer than 100 years");
        total += n * units[u].us;
        i += (size_t)units[u].len;
    }
    *out_us = total;
    return 0;
}

size_t sked_duration_format(int64_t us, char *buf)
{
    if (us <= 0) {
        snprintf(buf, SKED_DURATION_FMT_MAX, "0s");
        return 2;
    }
    size_t n = 0;
    for (int u = 4; u >= 0; u--) {
        int64_t q = us / units[u].us;
        if (q == 0)
            continue;
        n += (size_t)snprintf(buf + n, SKED_DURATION_FMT_MAX - n, "%lld%s",
                              (long long)q, units[u].name);
        us -= q * units[u].us;
    }
    return n; /* a sub-millisecond rest has no unit and is dropped */
}
