/*
 * fuzz_messages.c - libFuzzer target for what sked reads off the queue:
 * the first byte picks the reader, the rest is the message body.
 *
 *   0: an event (sked_event_decode, as the events thread reads each line
 *      of a packed message).  A rejection must say why; an accepted event
 *      encodes to text that decodes to the same event again.
 *   1: a job message (sked_job_decode, as a worker reads it).  A rejection
 *      must say why.
 *
 *   make bin/fuzz/fuzz_messages && bin/fuzz/fuzz_messages tests/fuzz/corpus/messages
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/run.h"
#include "worker/worker.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void event_round_trip(const char *text, size_t len)
{
    sked_event e;
    sked_err err = {0};
    if (sked_event_decode(text, len, &e, &err) < 0) {
        if (err.msg[0] == '\0')
            abort();
        return;
    }
    size_t n = 0;
    char *again = sked_event_encode(&e, &n);
    if (again == NULL)
        abort();
    if (memchr(again, '\n', n) != NULL)
        abort(); /* events are packed one per line */
    sked_event e2;
    if (sked_event_decode(again, n, &e2, &err) < 0)
        abort();
    if (e2.type != e.type || e2.attempt != e.attempt || strcmp(e2.run_id, e.run_id) != 0 ||
        strcmp(e2.worker, e.worker) != 0 || e2.at != e.at || e2.nruns != e.nruns)
        abort();
    sked_event_deinit(&e2);
    sked_event_deinit(&e);
    free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    if (data[0] % 2 == 0) {
        event_round_trip(text, len);
        return 0;
    }
    sked_job *job = NULL;
    sked_err err = {0};
    if (sked_job_decode(text, len, &job, &err) < 0) {
        if (err.msg[0] == '\0')
            abort();
        return 0;
    }
    sked_job_free(job);
    return 0;
}
