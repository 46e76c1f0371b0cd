/*
 * http.h - sked's HTTP/1.1 server: libmicrohttpd underneath, one plain
 * request/response interface above.
 *
 * The server accepts connections (keep-alive) on one listening socket,
 * reads each request's body into memory up to a limit, and calls one
 * dispatch function per complete request on one of its worker threads.
 * The dispatcher fills a sked_http_resp; the server sends it and frees it.
 * It knows nothing of routes, JSON or tokens (see api.h).
 *
 * Limits enforced here, before dispatch, each answered with the API's
 * JSON error body {"error":{"code","message"}}:
 *   - body larger than max_body (Content-Length, or counted as it
 *     arrives when chunked): 413 payload_too_large;
 *   - a POST/PUT/PATCH with a non-empty body whose Content-Type is not
 *     application/json (parameters such as charset=utf-8 allowed):
 *     415 unsupported_media_type;
 *   - request line + headers larger than max_header: 431 (by MHD).
 */
#ifndef SKED_HTTP_H
#define SKED_HTTP_H

#include <stddef.h>
#include <stdint.h>

typedef struct sked_http_req {
    const char *method;        /* "GET", "POST", ...                      */
    const char *path;          /* URL path, without the query string      */
    const char *body;          /* NUL-terminated copy; "" when none       */
    size_t body_len;
    void *conn;                /* the MHD connection, for the lookups     */
} sked_http_req;

/* Request header value (case-insensitive name), or NULL. */
const char *sked_http_header(const sked_http_req *req, const char *name);

/* Query-string argument (already %-decoded), or NULL. */
const char *sked_http_query(const sked_http_req *req, const char *name);

#define SKED_HTTP_MAX_HEADERS 4

typedef struct sked_http_resp {
    int status;                /* 200, 201, 204, 400, ...                 */
    char *body;                /* malloc'ed, freed by the server; or NULL */
    size_t body_len;
    const char *content_type;  /* static; default application/json       */
    struct {
        const char *name;      /* static                                  */
        char value[128];
    } headers[SKED_HTTP_MAX_HEADERS];
    int nheaders;
} sked_http_resp;

/* Add a header to resp (name must be static); ignored past the maximum. */
void sked_http_resp_header(sked_http_resp *resp, const char *name,
                           const char *value);

/* Fill resp with the API's JSON error body:
 * {"error":{"code":code,"message":msg[,"field":field]}}.  field may be
 * NULL or "". */
void sked_http_resp_error(sked_http_resp *resp, int status, const char *code,
                          const char *msg, const char *field);

/* Called once per complete request, on a server thread, concurrently. */
typedef void (*sked_http_dispatch)(void *ctx, const sked_http_req *req,
                                   sked_http_resp *resp);

typedef struct sked_http_config {
    const char *listen;        /* "127.0.0.1:7070", "[::1]:0", ":7070"      */
    int threads;               /* worker threads; 0: 2 x the CPU count     */
    size_t max_body;           /* bytes; 0: 1 MiB                          */
    size_t max_header;         /* bytes; 0: 32 KiB                         */
    sked_http_dispatch dispatch;
    void *ctx;
} sked_http_config;

typedef struct sked_http_server sked_http_server;

/* Bind, listen and start serving.  Port 0 picks a free port; the one bound
 * is given by sked_http_port.  On error (address in use, bad address: a
 * message in err) nothing is left running. */
#include "core/err.h"
int sked_http_start(const sked_http_config *cfg, sked_http_server **out,
                    sked_err *err);

/* The port actually bound. */
int sked_http_port(const sked_http_server *srv);

/* Stop accepting, finish the requests in flight, free everything. */
void sked_http_stop(sked_http_server *srv);

#endif
