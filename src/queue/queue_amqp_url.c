/*
 * queue_amqp_url.c - the RabbitMQ backend's URL: which nodes, who, where,
 * how patient.
 *
 * Grammar (RFC 3986 shapes; the one extension is the comma-separated list
 * of nodes, tried in order, each failure moving on to the next):
 *
 *   url      = ( "amqp" / "amqps" ) "://" [ userinfo "@" ] node *( "," node )
 *              [ "/" [ vhost ] ] [ "?" param *( "&" param ) ]
 *   userinfo = user [ ":" password ]        percent-encoded; default
 *                                           guest:guest
 *   node     = host [ ":" port ]            host: name, IPv4, or "[" IPv6 "]";
 *                                           port: 5672 (amqps: 5671)
 *   vhost    = percent-encoded name         absent or empty: "/"; "%2F" is "/"
 *   param    = "heartbeat=" SECONDS         integer, 0 disables; default 10
 *            / "connect_timeout=" SECONDS   per node, TCP + AMQP login; 5
 *            / "timeout=" SECONDS           how long publish waits for its
 *                                           confirm and consumer_open for its
 *                                           subscription, reconnects
 *                                           included; 30
 *            / "partitions=" N              1-64 quorum queues per sked queue
 *                                           (queue_amqp.h); default 1.  Every
 *                                           process of a cluster must name
 *                                           the same N
 *            / "cacert=" PATH / "cert=" PATH / "key=" PATH
 *            / "verify=" ( "0" / "1" )      amqps only; verify defaults to 1,
 *                                           cacert to the system bundle
 *
 *   amqp://guest:guest@127.0.0.1:5672,127.0.0.1:5673/
 *   amqps://sked:s%40cret@mq1.example,mq2.example/prod?cacert=/etc/ca.pem
 *
 * One deviation from the RabbitMQ URI spec, on purpose: there "amqp://h/"
 * names the vhost "", which nobody means; here it is the default "/".
 * Credentials and vhost are the same on every node (one cluster).
 *
 * Not here: connecting (queue_amqp_io.c).  Error messages never repeat the
 * password.
 */
#include "queue/queue_amqp.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"

static int bad(sked_err *err, const char *field, const char *fmt,
               const char *arg, size_t arglen)
{
    char what[160];
    snprintf(what, sizeof what, fmt, (int)(arglen > 64 ? 64 : arglen), arg);
    return sked_err_set(err, SKED_EINVAL, field, 0, "queue URL: %s", what);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode s[0..n) into out (cap bytes with the NUL).  -1 on a bad
 * escape, an encoded NUL or overflow. */
static int decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%') {
            if (i + 2 >= n)
                return -1;
            int a = hexval(s[i + 1]), b = hexval(s[i + 2]);
            if (a < 0 || b < 0 || (a == 0 && b == 0))
                return -1;
            ch = (char)(a << 4 | b);
            i += 2;
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = ch;
    }
    out[o] = '\0';
    return 0;
}

/* "host[:port]" or "[v6]:port" in s[0..n). */
static int parse_node(const char *s, size_t n, int tls, anode *node,
                      sked_err *err)
{
    const char *host = s, *port = NULL;
    size_t hlen = n;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (close == NULL)
            return bad(err, "queue", "unclosed '[' in node \"%.*s\"", s, n);
        host = s + 1;
        hlen = (size_t)(close - host);
        const char *rest = close + 1;
        if (rest < s + n) {
            if (*rest != ':')
                return bad(err, "queue", "junk after ']' in node \"%.*s\"",
                           s, n);
            port = rest + 1;
        }
    } else {
        const char *colon = memchr(s, ':', n);
        if (colon != NULL) {
            hlen = (size_t)(colon - s);
            port = colon + 1;
        }
    }
    if (hlen == 0)
        return bad(err, "queue", "empty host in node \"%.*s\"", s, n);
    if (hlen > AQ_HOST_MAX)
        return bad(err, "queue", "host name too long: \"%.*s\"", s, n);
    for (size_t i = 0; i < hlen; i++)
        if ((unsigned char)host[i] <= ' ' || host[i] == '@' ||
            host[i] == '%' || host[i] == '/' || host[i] == '?' ||
            host[i] == '[' || host[i] == ']')
            return bad(err, "queue", "bad character in host \"%.*s\"", s, n);
    memcpy(node->host, host, hlen);
    node->host[hlen] = '\0';
    node->port = tls ? 5671 : 5672;
    if (port != NULL) {
        size_t plen = (size_t)(s + n - port);
        long v = 0;
        if (plen == 0 || plen > 5)
            return bad(err, "queue", "bad port in node \"%.*s\"", s, n);
        for (size_t i = 0; i < plen; i++) {
            if (port[i] < '0' || port[i] > '9')
                return bad(err, "queue", "bad port in node \"%.*s\"", s, n);
            v = v * 10 + (port[i] - '0');
        }
        if (v < 1 || v > 65535)
            return bad(err, "queue", "port out of range in node \"%.*s\"",
                       s, n);
        node->port = (int)v;
    }
    return 0;
}

/* Seconds as a decimal number in (min, max]; 0 allowed when zero_ok. */
static int parse_seconds(const char *name, const char *v, double max,
                         int integer, int zero_ok, double *out,
                         sked_err *err)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (v[0] == '\0' || *end != '\0' || errno != 0 || !isfinite(d) ||
        d < 0 || d > max || (d == 0 && !zero_ok) ||
        (integer && d != floor(d)))
        return bad(err, name, "bad number of seconds \"%.*s\"", v,
                   strlen(v));
    *out = d;
    return 0;
}

static int parse_param(const char *s, size_t n, aconf *conf, sked_err *err)
{
    const char *eq = memchr(s, '=', n);
    if (eq == NULL)
        return bad(err, "queue", "parameter \"%.*s\" has no '='", s, n);
    size_t klen = (size_t)(eq - s);
    char key[32], val[AQ_PATH_MAX + 1];
    if (klen == 0 || klen >= sizeof key)
        return bad(err, "queue", "unknown parameter \"%.*s\"", s, klen);
    memcpy(key, s, klen);
    key[klen] = '\0';
    if (decode(eq + 1, n - klen - 1, val, sizeof val) != 0)
        return bad(err, key, "bad value for parameter \"%.*s\"", key, klen);
    double d;
    if (strcmp(key, "heartbeat") == 0) {
        if (parse_seconds(key, val, 3600, 1, 1, &d, err) != 0)
            return SKED_EINVAL;
        conf->heartbeat_s = (int)d;
    } else if (strcmp(key, "connect_timeout") == 0) {
        if (parse_seconds(key, val, 3600, 0, 0, &d, err) != 0)
            return SKED_EINVAL;
        conf->connect_timeout_us = (int64_t)(d * 1e6);
    } else if (strcmp(key, "timeout") == 0) {
        if (parse_seconds(key, val, 86400, 0, 0, &d, err) != 0)
            return SKED_EINVAL;
        conf->timeout_us = (int64_t)(d * 1e6);
    } else if (strcmp(key, "partitions") == 0) {
        char *end;
        errno = 0;
        long v = strtol(val, &end, 10);
        if (val[0] < '0' || val[0] > '9' || *end != '\0' || errno != 0 || v < 1 ||
            v > AQ_PARTITIONS_MAX)
            return bad(err, key, "partitions must be a number from 1 to 64, not \"%.*s\"",
                       val, strlen(val));
        conf->partitions = (int)v;
    } else if (strcmp(key, "cacert") == 0 || strcmp(key, "cert") == 0 ||
               strcmp(key, "key") == 0 || strcmp(key, "verify") == 0) {
        if (!conf->tls)
            return bad(err, key, "parameter \"%.*s\" needs amqps://", key,
                       klen);
        if (strcmp(key, "verify") == 0) {
            if (strcmp(val, "0") != 0 && strcmp(val, "1") != 0)
                return bad(err, key, "verify must be 0 or 1, not \"%.*s\"",
                           val, strlen(val));
            conf->verify = val[0] == '1';
        } else {
            char *dst = key[1] == 'a' ? conf->cacert
                        : key[1] == 'e' ? conf->cert : conf->key;
            snprintf(dst, AQ_PATH_MAX + 1, "%s", val);
        }
    } else {
        return bad(err, "queue", "unknown parameter \"%.*s\"", key, klen);
    }
    return 0;
}

int sked_queue_amqp_parse_url(const char *url, aconf *conf, sked_err *err)
{
    memset(conf, 0, sizeof *conf);
    const char *p;
    if (strncmp(url, "amqp://", 7) == 0) {
        p = url + 7;
    } else if (strncmp(url, "amqps://", 8) == 0) {
        p = url + 8;
        conf->tls = 1;
    } else {
        return bad(err, "queue", "expected amqp://... or amqps://..., "
                   "got \"%.*s\"", url, strcspn(url, "/"));
    }
    snprintf(conf->user, sizeof conf->user, "guest");
    snprintf(conf->pass, sizeof conf->pass, "guest");
    snprintf(conf->vhost, sizeof conf->vhost, "/");
    conf->heartbeat_s = 10;
    conf->connect_timeout_us = 5 * SKED_USEC_PER_SEC;
    conf->timeout_us = 30 * SKED_USEC_PER_SEC;
    conf->rpc_timeout_us = 15 * SKED_USEC_PER_SEC;
    conf->verify = 1;
    conf->partitions = 1;

    size_t alen = strcspn(p, "/?");
    const char *auth_end = p + alen;
    /* userinfo: up to the last '@' of the authority */
    const char *at = NULL;
    for (const char *s = p; s < auth_end; s++)
        if (*s == '@')
            at = s;
    if (at != NULL) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        size_t ulen = colon ? (size_t)(colon - p) : (size_t)(at - p);
        if (decode(p, ulen, conf->user, sizeof conf->user) != 0 ||
            conf->user[0] == '\0')
            return sked_err_set(err, SKED_EINVAL, "queue", 0,
                                "queue URL: bad user name");
        if (colon != NULL &&
            decode(colon + 1, (size_t)(at - colon - 1), conf->pass,
                   sizeof conf->pass) != 0)
            return sked_err_set(err, SKED_EINVAL, "queue", 0,
                                "queue URL: bad password");
        if (colon == NULL)
            conf->pass[0] = '\0';
        p = at + 1;
    }
    if (p == auth_end)
        return sked_err_set(err, SKED_EINVAL, "queue", 0,
                            "queue URL: no host");
    while (p < auth_end) {
        size_t n = 0;
        /* a comma inside [v6] cannot happen, so a plain split works */
        while (p + n < auth_end && p[n] != ',')
            n++;
        if (conf->nnodes == AQ_NODES_MAX)
            return sked_err_set(err, SKED_EINVAL, "queue", 0,
                                "queue URL: more than %d nodes",
                                AQ_NODES_MAX);
        int rc = parse_node(p, n, conf->tls, &conf->nodes[conf->nnodes],
                            err);
        if (rc != 0)
            return rc;
        conf->nnodes++;
        p += n;
        if (p < auth_end) {
            p++;                        /* the comma */
            if (p == auth_end)
                return sked_err_set(err, SKED_EINVAL, "queue", 0,
                                    "queue URL: empty node after ','");
        }
    }
    if (*p == '/') {
        p++;
        size_t vlen = strcspn(p, "?");
        if (vlen > 0 &&
            decode(p, vlen, conf->vhost, sizeof conf->vhost) != 0)
            return sked_err_set(err, SKED_EINVAL, "queue", 0,
                                "queue URL: bad vhost");
        p += vlen;
    }
    if (*p == '?') {
        p++;
        while (*p != '\0') {
            size_t n = strcspn(p, "&");
            if (n > 0) {
                int rc = parse_param(p, n, conf, err);
                if (rc != 0)
                    return rc;
            }
            p += n;
            if (*p == '&')
                p++;
        }
    }
    if (conf->tls && conf->cacert[0] == '\0' && conf->verify &&
        access(DEFAULT_CA_BUNDLE, R_OK) == 0)
        snprintf(conf->cacert, sizeof conf->cacert, "%s", DEFAULT_CA_BUNDLE);
    if ((conf->cert[0] != '\0') != (conf->key[0] != '\0'))
        return sked_err_set(err, SKED_EINVAL, "queue", 0,
                            "queue URL: cert= and key= go together");
    return 0;
}
