/*
 * task.h - a task's specification: decoding, validation, canonical form.
 *
 * The API hands in JSON; sked_task_spec_decode checks every field and
 * produces the canonical spec (every default filled in, times in UTC,
 * durations in their shortest form) that the store keeps as text, plus the
 * parsed schedule the scheduler works from.  Errors name the field as a
 * JSON path ("schedule.cron", "target.url", "labels.team") with a message
 * that says what to fix.  Server-set fields (id, namespace, state,
 * next_run_at, run_count, version, created_at, updated_at) are ignored on
 * input; any other unknown field is an error.
 */
#ifndef SKED_TASK_H
#define SKED_TASK_H

#include <jansson.h>

#include "core/err.h"
#include "model/schedule.h"
#include "store/store.h"

/* Limits, documented in docs/api.md. */
#define SKED_LABELS_MAX 64
#define SKED_LABEL_KEY_MAX 63
#define SKED_LABEL_VALUE_MAX 256
#define SKED_COMMAND_MAX 65536
#define SKED_URL_MAX 8192
#define SKED_HTTP_BODY_MAX 262144
#define SKED_ENV_MAX 128
#define SKED_HEADERS_MAX 64
#define SKED_MAX_ATTEMPTS 100

typedef struct sked_task_spec {
    json_t *json;              /* canonical spec object, owned            */
    const char *name;          /* inside json; NULL when unnamed          */
    const char *queue;         /* inside json                             */
    int shell;                 /* the target runs a shell command         */
    sked_schedule sched;
} sked_task_spec;

/* Decode and validate in (not modified).  On success *out owns a new
 * canonical json (free with sked_task_spec_deinit).  On error SKED_EINVAL
 * with err->field the path at fault; nothing is allocated. */
int sked_task_spec_decode(json_t *in, sked_task_spec *out, sked_err *err);
void sked_task_spec_deinit(sked_task_spec *s);

/* Decode a "schedule" object alone (also for schedules:preview).  canon
 * (may be NULL) receives a new canonical object.  Field paths start with
 * "schedule.". */
int sked_schedule_decode(json_t *in, sked_schedule *out, json_t **canon,
                         sked_err *err);

/* sked_schedule_first, with the API's error when there is no occurrence
 * at all (a cron that never fires, end_at already past): SKED_EINVAL
 * naming schedule.cron or schedule.end_at. */
int sked_schedule_first_checked(const sked_schedule *s, sked_walltime now,
                                sked_walltime *out, sked_err *err);

/* Re-read a stored canonical spec (the store's text); for the scheduler
 * and for updates.  Same errors as decode. */
int sked_task_spec_parse(const char *text, sked_task_spec *out, sked_err *err);

/* The task as the API shows it: rec's spec merged with the server's fields.
 * A new reference, or NULL when the stored spec is not valid JSON. */
json_t *sked_task_json(const sked_task_rec *rec);

/* The same as text, without parsing the stored spec again: the server's
 * fields are spliced around the canonical spec (which is a compact JSON
 * object).  malloc'ed; NULL when the spec is not an object.  The text
 * equals json_dumps(sked_task_json(rec), JSON_COMPACT). */
char *sked_task_json_text(const sked_task_rec *rec, size_t *len);

/* Non-zero when the stored task runs a shell command. */
int sked_task_rec_is_shell(const sked_task_rec *rec);

/* A time as the API writes it (RFC 3339, UTC, "Z"): a new json string, or
 * json null for SKED_TIME_NONE. */
json_t *sked_json_time(sked_walltime t);

#endif
