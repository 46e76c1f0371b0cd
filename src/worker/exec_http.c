/*
 * exec_http.c - HTTP targets through one libcurl multi handle, driven by
 * the executor's epoll loop, and the SSRF guard.
 *
 * Integration: curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION
 * -> epoll_ctl on the executor's epoll set) and when to call it back
 * (CURLMOPT_TIMERFUNCTION -> sked_exec.curl_deadline, folded into
 * epoll_wait's timeout).  Events and the timer go back through
 * curl_multi_socket_action; finished transfers come out of
 * curl_multi_info_read.  We never call curl from inside its callbacks.
 *
 * The guard: CURLOPT_OPENSOCKETFUNCTION sees every resolved address right
 * before curl would call socket() and connect(), for each address it tries
 * (so DNS answers, rebinding and happy-eyeballs fallbacks are all checked).
 * A refused address gets no socket at all: nothing is sent.  Rules:
 *   - deny and allow are lists of networks (CIDR, or a bare address);
 *     IPv4 is compared as ::ffff:0:0/96, so v4-mapped IPv6 is caught too;
 *   - the most specific matching network decides (deny 10.0.0.0/8 with
 *     allow 10.1.0.0/16 reaches 10.1.x.x only); on a tie, deny wins;
 *   - an address no network matches is allowed, unless an allow list was
 *     given, then it is refused;
 *   - http_deny NULL means the default list (exec.h); an empty list means
 *     "deny nothing"; http_allow NULL or empty means no allow list.
 * Proxies are switched off (an http_proxy variable would make curl connect
 * to the proxy, which then reaches whatever the URL names, unchecked),
 * only http and https are spoken, and redirects are not followed.
 *
 * Not here: the loop itself (exec.c).
 */
#include "worker/exec_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "core/version.h"

static const char *const default_deny[] = {
    "169.254.0.0/16", "fe80::/10", "169.254.169.254", "fd00:ec2::254", NULL};

/* ---- networks -------------------------------------------------------- */

static int parse_net(const char *s, net *out)
{
    char buf[64];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    if (alen == 0 || alen >= sizeof buf)
        return -1;
    memcpy(buf, s, alen);
    buf[alen] = '\0';
    int max, base;
    memset(out->addr, 0, sizeof out->addr);
    struct in_addr a4;
    if (inet_pton(AF_INET, buf, &a4) == 1) {
        out->addr[10] = out->addr[11] = 0xff;
        memcpy(out->addr + 12, &a4, 4);
        max = 32;
        base = 96;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        max = 128;
        base = 0;
    } else {
        return -1;
    }
    int prefix = max;
    if (slash) {
        const char *p = slash + 1;
        if (*p == '\0' || strlen(p) > 3)
            return -1;
        prefix = 0;
        for (; *p; p++) {
            if (!isdigit((unsigned char)*p))
                return -1;
            prefix = prefix * 10 + (*p - '0');
        }
        if (prefix > max)
            return -1;
    }
    out->prefix = base + prefix;
    return 0;
}

static int parse_list(const char *const *list, const char *what, net **out,
                      size_t *n, sked_err *err)
{
    size_t cnt = 0;
    while (list && list[cnt])
        cnt++;
    *out = exec_xzalloc((cnt ? cnt : 1) * sizeof **out);
    *n = cnt;
    for (size_t i = 0; i < cnt; i++)
        if (parse_net(list[i], &(*out)[i]) < 0)
            return sked_err_set(err, SKED_EINVAL, what, 0,
                                "%s: \"%.80s\" is not a network (CIDR or "
                                "address)", what, list[i]);
    return 0;
}

static int net_has(const net *n, const unsigned char ip[16])
{
    int full = n->prefix / 8, rest = n->prefix % 8;
    if (memcmp(n->addr, ip, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (n->addr[full] & mask) == (ip[full] & mask);
}

/* Longest matching prefix in the list, or -1. */
static int best_match(const net *list, size_t n, const unsigned char ip[16])
{
    int best = -1;
    for (size_t i = 0; i < n; i++)
        if (list[i].prefix > best && net_has(&list[i], ip))
            best = list[i].prefix;
    return best;
}

/* NULL when ip may be reached, else the name of the list that refuses it. */
static const char *guard(const sked_exec *ex, const unsigned char ip[16])
{
    int d = best_match(ex->deny, ex->ndeny, ip);
    int a = best_match(ex->allow, ex->nallow, ip);
    if (d >= 0 && d >= a)
        return "deny";
    if (a < 0 && ex->has_allow)
        return "allow";
    return NULL;
}

static curl_socket_t open_socket(void *clientp, curlsocktype purpose,
                                 struct curl_sockaddr *a)
{
    run *r = clientp;
    unsigned char ip[16] = {0};
    char text[INET6_ADDRSTRLEN] = "?";
    (void)purpose;
    if (a->family == AF_INET && a->addrlen >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in sin;
        memcpy(&sin, &a->addr, sizeof sin);
        ip[10] = ip[11] = 0xff;
        memcpy(ip + 12, &sin.sin_addr, 4);
        inet_ntop(AF_INET, &sin.sin_addr, text, sizeof text);
    } else if (a->family == AF_INET6 &&
               a->addrlen >= sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, &a->addr, sizeof sin6);
        memcpy(ip, &sin6.sin6_addr, 16);
        inet_ntop(AF_INET6, &sin6.sin6_addr, text, sizeof text);
    } else {
        snprintf(r->denied, sizeof r->denied,
                 "address family %d is not allowed", a->family);
        return CURL_SOCKET_BAD;
    }
    const char *list = guard(r->ex, ip);
    if (list) {
        snprintf(r->denied, sizeof r->denied,
                 "address %s is not allowed (http %s list)", text, list);
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* ---- curl <-> epoll -------------------------------------------------- */

static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp,
                          void *socketp)
{
    sked_exec *ex = userp;
    watch *w = socketp;
    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (w) {
            epoll_ctl(ex->epfd, EPOLL_CTL_DEL, s, NULL);
            w->fd = -1; /* freed after this loop iteration */
            w->next_dead = ex->dead_watches;
            ex->dead_watches = w;
            curl_multi_assign(ex->multi, s, NULL);
        }
        return 0;
    }
    struct epoll_event ev = {
        .events = ((what & CURL_POLL_IN) ? EPOLLIN : 0u) |
                  ((what & CURL_POLL_OUT) ? EPOLLOUT : 0u)};
    if (w == NULL) {
        w = exec_xzalloc(sizeof *w);
        w->kind = W_CURL;
        w->fd = s;
        ev.data.ptr = w;
        if (epoll_ctl(ex->epfd, EPOLL_CTL_ADD, s, &ev) < 0 &&
            (errno != EEXIST ||
             epoll_ctl(ex->epfd, EPOLL_CTL_MOD, s, &ev) < 0)) {
            free(w);
            return -1; /* curl fails the transfers: better than hanging */
        }
        curl_multi_assign(ex->multi, s, w);
        return 0;
    }
    ev.data.ptr = w;
    return epoll_ctl(ex->epfd, EPOLL_CTL_MOD, s, &ev) < 0 ? -1 : 0;
}

static int on_curl_timer(CURLM *multi, long ms, void *userp)
{
    sked_exec *ex = userp;
    (void)multi;
    ex->curl_deadline = ms < 0 ? NO_DEADLINE
                               : sked_clock_mono_now() + (int64_t)ms * 1000;
    return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    run *r = ud;
    tail_append(&r->out, p, size * n);
    return size * n;
}

static void release(run *r)
{
    if (r->easy) {
        curl_multi_remove_handle(r->ex->multi, r->easy);
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
    }
    curl_slist_free_all(r->headers);
    r->headers = NULL;
}

static void http_end(run *r, CURLcode rc)
{
    const sked_job *job = r->job;
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    r->res.http_status = (int)status;
    release(r);

    int lo = job->expect_lo, hi = job->expect_hi;
    if (lo == 0 && hi == 0)
        lo = 200, hi = 299;
    char t[32];
    sked_job_outcome o = SKED_JOB_FAILED;
    if (rc == CURLE_OK && status >= lo && status <= hi) {
        o = SKED_JOB_SUCCEEDED;
    } else if (rc == CURLE_OK) {
        if (lo == hi)
            snprintf(r->res.error, sizeof r->res.error,
                     "HTTP %ld (expected %d)", status, lo);
        else
            snprintf(r->res.error, sizeof r->res.error,
                     "HTTP %ld (expected %d-%d)", status, lo, hi);
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        o = SKED_JOB_TIMED_OUT;
        exec_ms_text(job->timeout_us, t, sizeof t);
        snprintf(r->res.error, sizeof r->res.error, "timed out after %s", t);
    } else if (r->denied[0]) {
        snprintf(r->res.error, sizeof r->res.error, "%s", r->denied);
    } else {
        snprintf(r->res.error, sizeof r->res.error, "%s",
                 r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc));
    }
    exec_finish(r, o);
}

static void drain_done(sked_exec *ex)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(ex->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        char *p = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &p);
        http_end((run *)(void *)p, m->data.result);
    }
}

void http_on_socket(sked_exec *ex, watch *w, uint32_t events)
{
    int flags = 0, running;
    if (events & EPOLLIN)
        flags |= CURL_CSELECT_IN;
    if (events & EPOLLOUT)
        flags |= CURL_CSELECT_OUT;
    if (events & (EPOLLERR | EPOLLHUP))
        flags |= CURL_CSELECT_ERR;
    curl_multi_socket_action(ex->multi, w->fd, flags, &running);
    drain_done(ex);
}

void http_on_timer(sked_exec *ex)
{
    int running;
    ex->curl_deadline = NO_DEADLINE; /* curl sets the next one */
    curl_multi_socket_action(ex->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    drain_done(ex);
}

/* ---- one request ----------------------------------------------------- */

static int token_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 32)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s))
            return 0;
    return 1;
}

static int header_named(const char *h, const char *name)
{
    size_t n = strlen(name);
    return strncasecmp(h, name, n) == 0 && (h[n] == ':' || h[n] == ';');
}

static struct curl_slist *add_header(struct curl_slist *l, const char *h)
{
    struct curl_slist *n = curl_slist_append(l, h);
    if (n == NULL)
        abort(); /* small allocation */
    return n;
}

static void fail_start(run *r, const char *msg)
{
    snprintf(r->res.error, sizeof r->res.error, "%s", msg);
    release(r);
    exec_finish(r, SKED_JOB_FAILED);
}

/* Method and body.  POST/PUT/PATCH always send a body (empty if none) so
 * that a Content-Length goes out; HEAD asks for no body back. */
static void set_method(CURL *e, const char *m, const char *body)
{
    int wants_body = body || !strcmp(m, "POST") || !strcmp(m, "PUT") ||
                     !strcmp(m, "PATCH");
    if (!strcmp(m, "HEAD")) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
        return;
    }
    if (wants_body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(body ? strlen(body) : 0));
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? body : "");
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    if (strcmp(m, wants_body ? "POST" : "GET") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
}

void http_start(run *r)
{
    sked_exec *ex = r->ex;
    const sked_job *job = r->job;
    const char *method = job->method && job->method[0] ? job->method : "GET";
    if (!token_ok(method)) {
        fail_start(r, "invalid HTTP method");
        return;
    }
    int has_type = 0;
    for (size_t i = 0; job->headers && job->headers[i]; i++) {
        const char *h = job->headers[i];
        if (strpbrk(h, "\r\n") || !strchr(h, ':')) {
            char msg[64];
            snprintf(msg, sizeof msg, "invalid HTTP header #%zu", i + 1);
            fail_start(r, msg);
            return;
        }
        if (header_named(h, "X-Sked-Run-Id") || header_named(h, "X-Sked-Attempt"))
            continue; /* ours, below: targets deduplicate on them */
        has_type |= header_named(h, "Content-Type");
        r->headers = add_header(r->headers, h);
    }
    char idh[64];
    snprintf(idh, sizeof idh, "X-Sked-Run-Id: %s", job->run_id);
    r->headers = add_header(r->headers, idh);
    snprintf(idh, sizeof idh, "X-Sked-Attempt: %d", job->attempt);
    r->headers = add_header(r->headers, idh);
    /* No "Expect: 100-continue" round trip, and no made-up form type. */
    r->headers = add_header(r->headers, "Expect:");
    if (!has_type)
        r->headers = add_header(r->headers, "Content-Type:");

    CURL *e = r->easy = curl_easy_init();
    if (e == NULL) {
        fail_start(r, "cannot create an HTTP handle");
        return;
    }
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r);
    curl_easy_setopt(e, CURLOPT_URL, job->url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, r);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "sked/" SKED_VERSION);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85: the string form */
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(e, CURLOPT_PROTOCOLS,
                     (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    if (job->timeout_us > 0)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                         (long)(job->timeout_us / 1000 +
                                (job->timeout_us % 1000 != 0)));
    set_method(e, method, job->body);

    if (curl_multi_add_handle(ex->multi, e) != CURLM_OK) {
        fail_start(r, "cannot start the HTTP request");
        return;
    }
    r->res.started_at = sked_clock_wall_now();
    if (ex->started)
        ex->started(ex->ctx, r->job, r->res.started_at);
}

void http_cancel(run *r)
{
    release(r);
    exec_finish(r, SKED_JOB_CANCELED);
}

/* ---- setup ----------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init_once(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int http_init(sked_exec *ex, const char *const *deny, const char *const *allow, int slots,
              sked_err *err)
{
    int rc;
    if ((rc = parse_list(deny ? deny : default_deny, "http_deny", &ex->deny,
                         &ex->ndeny, err)) < 0)
        return rc;
    if ((rc = parse_list(allow, "http_allow", &ex->allow, &ex->nallow,
                         err)) < 0)
        return rc;
    ex->has_allow = ex->nallow > 0;
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK)
        return sked_err_set(err, SKED_EINTERNAL, NULL, 0, "libcurl: %s",
                            curl_easy_strerror(curl_init_rc));
    ex->multi = curl_multi_init();
    if (ex->multi == NULL)
        return sked_err_set(err, SKED_ENOMEM, NULL, 0,
                            "libcurl: cannot create a multi handle");
    curl_multi_setopt(ex->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(ex->multi, CURLMOPT_SOCKETDATA, ex);
    curl_multi_setopt(ex->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(ex->multi, CURLMOPT_TIMERDATA, ex);
    /* Idle connections kept for reuse: one per slot.  curl's default
     * follows the handles in use, so after a burst's peak it closed a
     * connection for about one request in six, only to open another for
     * the next (bench/bench_exec_http: 16,600 connections for 100,400
     * requests). */
    curl_multi_setopt(ex->multi, CURLMOPT_MAXCONNECTS, (long)(slots > 0 ? slots : 100));
    return 0;
}

/* After the thread has stopped: no transfer is left, only idle cached
 * connections, which curl closes here (reporting CURL_POLL_REMOVE). */
void http_deinit(sked_exec *ex)
{
    if (ex->multi)
        curl_multi_cleanup(ex->multi);
    ex->multi = NULL;
    free(ex->deny);
    free(ex->allow);
    ex->deny = ex->allow = NULL;
}
