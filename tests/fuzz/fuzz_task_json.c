/*
 * fuzz_task_json.c - libFuzzer target for the task decoder: any bytes are
 * read as JSON (as the API does, duplicates rejected) and decoded as a
 * task.  A rejection must name what is wrong; an accepted spec must be
 * canonical: decoding its own text again gives the same text.
 *
 *   make bin/fuzz/fuzz_task_json && bin/fuzz/fuzz_task_json tests/fuzz/corpus/task_json
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "model/task.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *in = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (in == NULL)
        return 0;
    sked_task_spec spec;
    sked_err err = {0};
    if (sked_task_spec_decode(in, &spec, &err) < 0) {
        if (err.msg[0] == '\0')
            abort();
        json_decref(in);
        return 0;
    }
    char *text = json_dumps(spec.json, JSON_COMPACT);
    sked_task_spec again;
    if (sked_task_spec_parse(text, &again, &err) < 0)
        abort(); /* a canonical spec always decodes */
    char *text2 = json_dumps(again.json, JSON_COMPACT);
    if (strcmp(text, text2) != 0)
        abort(); /* and decodes to itself */
    sked_walltime t;
    sked_schedule_first(&spec.sched, INT64_C(1795773600) * 1000000, &t);
    free(text);
    free(text2);
    sked_task_spec_deinit(&again);
    sked_task_spec_deinit(&spec);
    json_decref(in);
    return 0;
}
