/*
 * api.h - sked's HTTP API (../shared/API.md, docs/api.md) on top of http.h.
 *
 * sked_api_dispatch is the sked_http_dispatch of every role that serves the
 * API: it routes the request, checks the bearer token and its role, calls
 * the resource's handler, maps sked error codes to HTTP status and the
 * API's error body, and counts the request in the metrics.
 */
#ifndef SKED_API_H
#define SKED_API_H

#include "api/http.h"
#include "store/store.h"

typedef struct sked_api sked_api;

/* What the API tells the rest of the process (all optional). */
typedef struct sked_api_hooks {
    /* A task or run may be due sooner than the scheduler thinks (create,
     * replace, resume, trigger): wake it. */
    void (*changed)(void *ctx);
    /* Run r (now CANCELED; worker and attempt as they were) was canceled
     * while dispatched or running: stop its execution wherever it runs. */
    void (*canceled)(void *ctx, const sked_run_rec *r);
    /* /readyz: 0 when the queue (and anything else the process needs
     * beside the store) answers, else an error in err. */
    int (*ready)(void *ctx, sked_err *err);
    void *ctx;
} sked_api_hooks;

/* A new API over st (borrowed: it must outlive the API); hooks may be
 * NULL (an api-only process). */
sked_api *sked_api_new(sked_store *st, const sked_api_hooks *hooks);
void sked_api_free(sked_api *api);

/* The dispatch function; ctx is the sked_api. */
void sked_api_dispatch(void *ctx, const sked_http_req *req,
                       sked_http_resp *resp);

#endif
