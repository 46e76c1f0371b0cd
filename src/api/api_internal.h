/*
 * api_internal.h - what the API's resource files share: the call context,
 * replies, body parsing, and the handlers the route table names.
 * Not part of any other module's interface.
 */
#ifndef SKED_API_INTERNAL_H
#define SKED_API_INTERNAL_H

#include <jansson.h>

#include "api/api.h"
#include "core/err.h"
#include "store/store.h"

struct sked_api {
    sked_store *store;
    sked_api_hooks hooks;
};



typedef struct api_call {
    sked_api *api;
    const sked_http_req *req;
    sked_http_resp *resp;
    char id[256];              /* the {id} path segment, or ""            */
    sked_token_rec tok;        /* the caller's token (when authenticated) */
} api_call;

/* Tell the scheduler something may be due sooner. */
void api_changed(api_call *c);

/* Replies.  reply_json steals the reference to body. */
void api_reply_json(api_call *c, int status, json_t *body);
void api_reply_error(api_call *c, const sked_err *err);
void api_reply_errorf(api_call *c, int code, const char *field,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Parse the request body as one JSON value, nesting at most 32 deep.  On
 * error replies 400 itself and returns NULL. */
json_t *api_body_json(api_call *c);

/* Handlers (api_tasks.c, api_meta.c, api_tokens.c). */
void api_tasks_create(api_call *c);
void api_tasks_batch(api_call *c);
void api_tasks_list(api_call *c);
void api_tasks_get(api_call *c);
void api_tasks_replace(api_call *c);
void api_tasks_delete(api_call *c);
void api_tasks_pause(api_call *c);
void api_tasks_resume(api_call *c);
void api_tasks_trigger(api_call *c);
void api_runs_list(api_call *c);
void api_runs_get(api_call *c);
void api_runs_cancel(api_call *c);
void api_workers_list(api_call *c);
void api_schedules_preview(api_call *c);
void api_tokens_create(api_call *c);
void api_tokens_list(api_call *c);
void api_tokens_revoke(api_call *c);
void api_healthz(api_call *c);
void api_readyz(api_call *c);
void api_metrics(api_call *c);
void api_index(api_call *c);

#endif
