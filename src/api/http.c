/*
 * http.c - the HTTP server on top of libmicrohttpd (see http.h).
 *
 * We bind the listening socket ourselves (so "[::1]:0" and ":7070" mean
 * what an operator expects, and the bound port can be read back) and hand
 * it to MHD, which runs a pool of polling threads (epoll where available)
 * over keep-alive connections.  Per request MHD calls on_request several
 * times: once when the headers are in, once per piece of body, once when
 * the request is complete.  We collect the body, enforce the limits, call
 * the dispatcher once, and queue its response; on_completed frees the
 * request's state whatever way it ended.
 *
 * Limits.  A Content-Length above max_body is answered 413 at once when
 * the client waits for "100 Continue" (it never sends the body; MHD closes
 * the connection after the answer) or announces more than drop_after.
 * Otherwise, and for chunked bodies, the body is counted as it arrives;
 * past max_body it is dropped, not stored, and answered 413 when it ends,
 * on a connection that stays usable.  A client that keeps sending past
 * drop_after loses the connection instead (MHD cannot answer in the middle
 * of a body).
 *
 * Not here: routes, auth, JSON bodies of success responses (api/).
 */
#include "api/http.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "core/log.h"

#define DEFAULT_MAX_BODY (1024 * 1024)
#define DEFAULT_MAX_HEADER (32 * 1024)
#define CONN_TIMEOUT_S 60u
#define DRAIN_TIMEOUT_MS 10000
#define JSON_TYPE "application/json; charset=utf-8"

struct sked_http_server {
    struct MHD_Daemon *daemon;
    int port;
    size_t max_body;
    size_t drop_after;         /* bytes of an oversized body we read away */
    sked_http_dispatch dispatch;
    void *ctx;
    atomic_int in_flight;      /* requests between headers and completion */
    atomic_int stopping;
    atomic_int started;
    pthread_t starter;
    char start_msg[200];       /* MHD's last word while starting */
};

/* Per-request state, in MHD's *con_cls.  Requests announced without a body
 * carry &no_body instead, so the common GET allocates nothing. */
typedef struct request {
    char *buf;                 /* body, NUL-terminated; NULL while empty */
    size_t len, cap;           /* cap excludes the NUL */
    size_t seen;               /* bytes received, stored or not */
    unsigned too_big : 1;
    unsigned bad_type : 1;
    unsigned no_mem : 1;
} request;

static char no_body;

/* --- requests and responses ---------------------------------------------- */

const char *sked_http_header(const sked_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *sked_http_query(const sked_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND,
                                       name);
}

void sked_http_resp_header(sked_http_resp *resp, const char *name,
                           const char *value)
{
    if (resp->nheaders < 0 || resp->nheaders >= SKED_HTTP_MAX_HEADERS)
        return;
    resp->headers[resp->nheaders].name = name;
    snprintf(resp->headers[resp->nheaders].value,
             sizeof resp->headers[0].value, "%s", value ? value : "");
    resp->nheaders++;
}

/* A JSON string of s; bytes that are not valid UTF-8 become '?'. */
static json_t *jstr(const char *s)
{
    json_t *v = json_string(s ? s : "");
    if (v != NULL)
        return v;
    char *copy = strdup(s);
    if (copy == NULL)
        abort();
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    v = json_string(copy);
    free(copy);
    return v;
}

/* Replaces any body already in resp (freeing it); keeps its headers. */
void sked_http_resp_error(sked_http_resp *resp, int status, const char *code,
                          const char *msg, const char *field)
{
    json_t *inner = json_object();
    json_object_set_new(inner, "code", jstr(code ? code : "internal"));
    json_object_set_new(inner, "message", jstr(msg));
    if (field && field[0])
        json_object_set_new(inner, "field", jstr(field));
    json_t *root = json_object();
    json_object_set_new(root, "error", inner);
    /* dumped into our own malloc'ed buffer: the server frees it with free() */
    size_t n = json_dumpb(root, NULL, 0, JSON_COMPACT);
    char *body = malloc(n + 1);
    if (body == NULL)
        abort();
    json_dumpb(root, body, n, JSON_COMPACT);
    body[n] = '\0';
    json_decref(root);
    free(resp->body);
    resp->status = status;
    resp->body = body;
    resp->body_len = n;
    resp->content_type = NULL;
}

/* Queue resp on c and take its body.  MHD_NO closes the connection. */
static enum MHD_Result send_resp(sked_http_server *srv,
                                 struct MHD_Connection *c,
                                 sked_http_resp *resp)
{
    struct MHD_Response *r;
    if (resp->body != NULL && resp->body_len > 0) {
        r = MHD_create_response_from_buffer_with_free_callback(
            resp->body_len, resp->body, free);
        if (r == NULL)
            free(resp->body);
    } else {
        free(resp->body);
        r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    }
    resp->body = NULL;
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            resp->content_type ? resp->content_type
                                               : JSON_TYPE);
    for (int i = 0; i < resp->nheaders && i < SKED_HTTP_MAX_HEADERS; i++)
        if (resp->headers[i].name)
            MHD_add_response_header(r, resp->headers[i].name,
                                    resp->headers[i].value);
    if (atomic_load_explicit(&srv->stopping, memory_order_relaxed))
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    int status = resp->status >= 100 && resp->status <= 999 ? resp->status
                                                            : 500;
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result send_error(sked_http_server *srv,
                                  struct MHD_Connection *c, int status,
                                  const char *code, const char *msg)
{
    sked_http_resp resp = {0};
    sked_http_resp_error(&resp, status, code, msg, NULL);
    return send_resp(srv, c, &resp);
}

/* "application/json", any case, optionally followed by parameters. */
static int is_json(const char *ct)
{
    static const char want[] = "application/json";
    if (ct == NULL)
        return 0;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    if (strncasecmp(ct, want, sizeof want - 1) != 0)
        return 0;
    char next = ct[sizeof want - 1];
    return next == '\0' || next == ';' || next == ' ' || next == '\t';
}

static int needs_json(const char *method)
{
    return strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
           strcmp(method, "PATCH") == 0;
}

/* First call: the headers are in.  Decide how the body will be taken. */
static enum MHD_Result on_headers(sked_http_server *srv,
                                  struct MHD_Connection *c,
                                  const char *method, void **con_cls)
{
    atomic_fetch_add_explicit(&srv->in_flight, 1, memory_order_relaxed);
    *con_cls = &no_body;
    const char *te = MHD_lookup_connection_value(
        c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    const char *cl = MHD_lookup_connection_value(
        c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    int chunked = te != NULL && strcasestr(te, "chunked") != NULL;
    unsigned long long announced = 0;
    if (!chunked) {
        if (cl == NULL)
            return MHD_YES;
        announced = strtoull(cl, NULL, 10); /* MHD has validated it */
        if (announced == 0)
            return MHD_YES;
    }
    request *r = calloc(1, sizeof *r);
    if (r == NULL)
        abort();
    *con_cls = r;
    if (announced > srv->max_body) {
        /* A client that waits for 100 Continue gets its answer now; so
         * does one announcing a flood.  Others are already sending: read
         * the body away and answer after, so the 413 is not lost to a
         * reset and the connection stays usable. */
        const char *expect = MHD_lookup_connection_value(
            c, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
        if ((expect != NULL && strcasecmp(expect, "100-continue") == 0) ||
            announced > srv->drop_after)
            return send_error(srv, c, 413, "payload_too_large",
                              "request body is larger than the limit");
        r->too_big = 1;
        return MHD_YES;
    }
    if (needs_json(method) &&
        !is_json(MHD_lookup_connection_value(
            c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE))) {
        r->bad_type = 1; /* decided at the end: only a non-empty body counts */
        return MHD_YES;
    }
    if (announced > 0) {
        /* sized by the client, within max_body: may fail, then 503 */
        r->buf = malloc((size_t)announced + 1);
        if (r->buf == NULL)
            r->no_mem = 1;
        else
            r->cap = (size_t)announced;
    }
    return MHD_YES;
}

/* A piece of body.  Returns MHD_NO to drop the connection. */
static enum MHD_Result on_body(sked_http_server *srv, request *r,
                               const char *data, size_t n)
{
    r->seen += n;
    if (r->seen > srv->max_body || r->too_big) {
        if (!r->too_big) {
            r->too_big = 1;
            free(r->buf);
            r->buf = NULL;
            r->len = r->cap = 0;
        }
        return r->seen > srv->drop_after ? MHD_NO : MHD_YES;
    }
    if (r->bad_type || r->no_mem)
        return MHD_YES;
    if (n > r->cap - r->len) {
        size_t cap = r->cap ? r->cap : 1024;
        while (cap - r->len < n)
            cap *= 2;
        if (cap > srv->max_body)
            cap = srv->max_body; /* seen <= max_body, so it fits */
        char *p = realloc(r->buf, cap + 1);
        if (p == NULL) {
            r->no_mem = 1;
            free(r->buf);
            r->buf = NULL;
            r->len = r->cap = 0;
            return MHD_YES;
        }
        r->buf = p;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, data, n);
    r->len += n;
    return MHD_YES;
}

/* The request is complete: check, dispatch, answer. */
static enum MHD_Result on_complete(sked_http_server *srv,
                                   struct MHD_Connection *c, const char *url,
                                   const char *method, request *r)
{
    if (r != NULL) {
        if (r->too_big)
            return send_error(srv, c, 413, "payload_too_large",
                              "request body is larger than the limit");
        if (r->bad_type && r->seen > 0)
            return send_error(srv, c, 415, "unsupported_media_type",
                              "request body must be application/json");
        if (r->no_mem)
            return send_error(srv, c, 503, "unavailable",
                              "out of memory for the request body");
    }
    sked_http_req req = {
        .method = method,
        .path = url,
        .body = r && r->buf ? r->buf : "",
        .body_len = r && r->buf ? r->len : 0,
        .conn = c,
    };
    if (r && r->buf)
        r->buf[r->len] = '\0';
    sked_http_resp resp = {.status = 500};
    srv->dispatch(srv->ctx, &req, &resp);
    return send_resp(srv, c, &resp);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version,
                                  const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    sked_http_server *srv = cls;
    if (*con_cls == NULL)
        return on_headers(srv, c, method, con_cls);
    request *r = *con_cls == &no_body ? NULL : *con_cls;
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r == NULL) { /* a body MHD did not announce: take it all the same */
            r = calloc(1, sizeof *r);
            if (r == NULL)
                abort();
            *con_cls = r;
        }
        return on_body(srv, r, upload_data, n);
    }
    return on_complete(srv, c, url, method, r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c;
    (void)toe;
    sked_http_server *srv = cls;
    request *r = *con_cls;
    if (r != NULL && r != (request *)&no_body) {
        free(r->buf);
        free(r);
    }
    *con_cls = NULL;
    atomic_fetch_sub_explicit(&srv->in_flight, 1, memory_order_release);
}

/* MHD's messages: kept for the error while starting, debug lines after. */
static void on_log(void *cls, const char *fmt, va_list ap)
{
    sked_http_server *srv = cls;
    char buf[sizeof srv->start_msg];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '.'))
        buf[--n] = '\0';
    if (!atomic_load(&srv->started) &&
        pthread_equal(pthread_self(), srv->starter))
        memcpy(srv->start_msg, buf, n + 1);
    else
        sked_log(SKED_LOG_DEBUG, "http server", "detail", buf, NULL);
}

/* --- the listening socket -------------------------------------------------- */

/* Parse "HOST:PORT", "[V6]:PORT" or ":PORT" into host (may become "") and
 * port text. */
static int split_addr(const char *s, char *host, size_t hostcap,
                      char *port, size_t portcap, sked_err *err)
{
    const char *h, *he, *p;
    if (s == NULL || s[0] == '\0')
        return sked_err_set(err, SKED_EINVAL, "listen", 0,
                            "empty listen address; use HOST:PORT");
    if (s[0] == '[') {
        h = s + 1;
        he = strchr(h, ']');
        if (he == NULL || he[1] != ':')
            return sked_err_set(err, SKED_EINVAL, "listen", 0,
                                "listen address %s: expected [IPV6]:PORT", s);
        p = he + 2;
    } else {
        h = s;
        he = strrchr(s, ':');
        if (he == NULL)
            return sked_err_set(err, SKED_EINVAL, "listen", 0,
                                "listen address %s: expected HOST:PORT or "
                                ":PORT", s);
        if (memchr(h, ':', (size_t)(he - h)) != NULL)
            return sked_err_set(err, SKED_EINVAL, "listen", 0,
                                "listen address %s: write IPv6 addresses in "
                                "brackets, like [::1]:7070", s);
        p = he + 1;
    }
    size_t plen = strlen(p);
    unsigned long v = 0;
    int ok = plen > 0 && plen <= 5;
    for (size_t i = 0; ok && i < plen; i++) {
        ok = p[i] >= '0' && p[i] <= '9';
        v = v * 10 + (unsigned long)(p[i] - '0');
    }
    if (!ok || v > 65535)
        return sked_err_set(err, SKED_EINVAL, "listen", 0,
                            "listen address %s: port must be 0-65535", s);
    if ((size_t)(he - h) >= hostcap || plen >= portcap)
        return sked_err_set(err, SKED_EINVAL, "listen", 0,
                            "listen address %s is too long", s);
    memcpy(host, h, (size_t)(he - h));
    host[he - h] = '\0';
    memcpy(port, p, plen + 1);
    return 0;
}

/* A listening, non-blocking socket on ai; -1 with errno on failure. */
static int try_listen(int family, const struct sockaddr *sa, socklen_t len,
                      int dual)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1, v6only = !dual;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
    if (bind(fd, sa, len) < 0 || listen(fd, SOMAXCONN) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int open_listener(const char *addr, int *port, sked_err *err)
{
    char host[256], portstr[8];
    int rc = split_addr(addr, host, sizeof host, portstr, sizeof portstr, err);
    if (rc < 0)
        return rc;
    int fd = -1, e = 0;
    if (host[0] == '\0') {
        /* all interfaces: dual-stack [::], or 0.0.0.0 without IPv6 */
        struct sockaddr_in6 a6 = {.sin6_family = AF_INET6,
                                  .sin6_addr = IN6ADDR_ANY_INIT,
                                  .sin6_port = htons((uint16_t)atoi(portstr))};
        fd = try_listen(AF_INET6, (struct sockaddr *)&a6, sizeof a6, 1);
        if (fd < 0 && (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL)) {
            struct sockaddr_in a4 = {.sin_family = AF_INET,
                                     .sin_addr.s_addr = htonl(INADDR_ANY),
                                     .sin_port = a6.sin6_port};
            fd = try_listen(AF_INET, (struct sockaddr *)&a4, sizeof a4, 0);
        }
        e = errno;
    } else {
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
        struct addrinfo *res = NULL;
        int gai = getaddrinfo(host, portstr, &hints, &res);
        if (gai != 0)
            return sked_err_set(err, SKED_EINVAL, "listen", 0,
                                "listen address %s: %s", addr,
                                gai_strerror(gai));
        for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
            fd = try_listen(ai->ai_family, ai->ai_addr, ai->ai_addrlen, 0);
            if (fd < 0)
                e = errno;
        }
        freeaddrinfo(res);
    }
    if (fd < 0)
        return sked_err_set(err, SKED_EIO, "listen", 0, "listen on %s: %s",
                            addr, strerror(e));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *port = ss.ss_family == AF_INET6
                ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

/* --- the server ------------------------------------------------------------ */

int sked_http_start(const sked_http_config *cfg, sked_http_server **out,
                    sked_err *err)
{
    *out = NULL;
    if (cfg == NULL || cfg->dispatch == NULL)
        return sked_err_set(err, SKED_EINVAL, NULL, 0,
                            "http server needs a dispatch function");
    int port = 0;
    int fd = open_listener(cfg->listen, &port, err);
    if (fd < 0)
        return fd;

    sked_http_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL)
        abort();
    srv->port = port;
    srv->max_body = cfg->max_body ? cfg->max_body : DEFAULT_MAX_BODY;
    srv->drop_after = 4 * srv->max_body + DEFAULT_MAX_BODY;
    srv->dispatch = cfg->dispatch;
    srv->ctx = cfg->ctx;
    srv->starter = pthread_self();

    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned threads = cfg->threads > 0 ? (unsigned)cfg->threads
                                        : (unsigned)(ncpu > 0 ? 2 * ncpu : 2);
    size_t max_header = cfg->max_header ? cfg->max_header : DEFAULT_MAX_HEADER;
    /* MHD keeps the request line and headers, its parsed header list and
     * the response headers in one pool per connection: room for the
     * headers plus a margin; more would only raise the 431 threshold. */
    size_t pool = max_header + 4096;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    flags |= MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES
                 ? MHD_USE_EPOLL
                 : MHD_USE_POLL;

    srv->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv,
        MHD_OPTION_EXTERNAL_LOGGER, on_log, srv,
        MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool,
        MHD_OPTION_CONNECTION_TIMEOUT, CONN_TIMEOUT_S,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_END);
    if (srv->daemon == NULL) {
        sked_err_set(err, SKED_EIO, "listen", 0, "http server on %s: %s",
                     cfg->listen,
                     srv->start_msg[0] ? srv->start_msg : "cannot start");
        goto fail;
    }
    atomic_store(&srv->started, 1);
    *out = srv;
    return 0;

fail:
    close(fd);
    free(srv);
    return SKED_EIO;
}

int sked_http_port(const sked_http_server *srv)
{
    return srv->port;
}

void sked_http_stop(sked_http_server *srv)
{
    if (srv == NULL)
        return;
    atomic_store(&srv->stopping, 1);
    /* the socket is ours to close only once MHD has let go of it */
    MHD_socket lfd = MHD_quiesce_daemon(srv->daemon);
    /* let requests whose headers are in finish (idle keep-alive
     * connections are not requests and do not hold us) */
    struct timespec tick = {0, 2 * 1000 * 1000};
    for (int waited = 0; waited < DRAIN_TIMEOUT_MS; waited += 2) {
        if (atomic_load_explicit(&srv->in_flight, memory_order_acquire) <= 0)
            break;
        nanosleep(&tick, NULL);
    }
    MHD_stop_daemon(srv->daemon);
    if (lfd != MHD_INVALID_SOCKET)
        close(lfd);
    free(srv);
}
