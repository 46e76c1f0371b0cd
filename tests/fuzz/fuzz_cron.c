/*
 * fuzz_cron.c - libFuzzer target for the cron parser and the next-fire
 * search.  Any byte string goes to sked_cron_parse; what parses is run
 * through sked_cron_next in a DST zone and UTC, checking that every result
 * lies strictly after its start and that the search terminates.
 *
 *   make bin/fuzz/fuzz_cron && bin/fuzz/fuzz_cron tests/fuzz/corpus/cron
 */
#include <stdint.h>
#include <stdlib.h>

#include "time/cron.h"
#include "time/tz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sked_cron c;
    sked_err err;
    if (sked_cron_parse((const char *)data, size, &c, &err) < 0) {
        if (err.msg[0] == '\0' || err.field[0] == '\0' || err.column < 1)
            abort(); /* every rejection names a field and a column */
        return 0;
    }
    char buf[512];
    sked_cron_explain(&c, buf, sizeof buf);

    static const char *const zones[] = {"UTC", "America/New_York",
                                        "Australia/Lord_Howe"};
    for (int z = 0; z < 3; z++) {
        const sked_tz *tz;
        if (sked_tz_get(zones[z], &tz, NULL) < 0)
            continue;
        sked_walltime t = INT64_C(1615600000) * 1000000; /* 2021-03-13 */
        for (int k = 0; k < 4; k++) {
            sked_walltime nx;
            if (sked_cron_next(&c, tz, t, &nx) < 0)
                break;
            if (nx <= t)
                abort();
            t = nx;
        }
    }
    return 0;
}
