/*
 * fuzz_queue_url.c - libFuzzer target for the RabbitMQ queue URL
 * (sked_queue_amqp_parse_url, the grammar in src/queue/queue_amqp_url.c),
 * which operators write by hand into --queue.
 *
 * A rejection must be SKED_EINVAL and say why, naming a field.  An
 * accepted URL must describe something the backend can use: 1 to 16
 * nodes, each with a host and a port in 1..65535, partitions in 1..64, a
 * non-negative heartbeat, positive timeouts, TLS files only for amqps.
 * A password of 8 bytes or more that appears nowhere else in the URL
 * never appears in an error message.
 *
 *   make bin/fuzz/fuzz_queue_url && bin/fuzz/fuzz_queue_url tests/fuzz/corpus/queue_url
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/queue_amqp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *url = malloc(size + 1);
    if (url == NULL)
        abort();
    memcpy(url, data, size);
    url[size] = '\0';
    aconf conf;
    sked_err err = {0};
    int rc = sked_queue_amqp_parse_url(url, &conf, &err);
    if (rc != 0) {
        if (rc != SKED_EINVAL || err.msg[0] == '\0' || err.field[0] == '\0')
            abort();
        /* "user:PASSWORD@" in the authority (up to the first '/' or '?',
         * one '@' in it): a password of 8+ bytes is never echoed, unless
         * the same text is elsewhere in the URL too */
        const char *auth = strstr(url, "://");
        if (auth) {
            auth += 3;
            size_t alen = strcspn(auth, "/?");
            const char *at = memchr(auth, '@', alen);
            const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
            if (colon && memchr(at + 1, '@', alen - (size_t)(at + 1 - auth)) == NULL &&
                at - colon - 1 >= 8 && at - colon - 1 < 64) {
                char pw[64];
                memcpy(pw, colon + 1, (size_t)(at - colon - 1));
                pw[at - colon - 1] = '\0';
                const char *first = strstr(url, pw);
                if (strstr(first + 1, pw) == NULL && strstr(err.msg, pw))
                    abort();
            }
        }
        free(url);
        return 0;
    }
    if (conf.nnodes < 1 || conf.nnodes > AQ_NODES_MAX)
        abort();
    for (int i = 0; i < conf.nnodes; i++)
        if (conf.nodes[i].host[0] == '\0' || conf.nodes[i].port < 1 ||
            conf.nodes[i].port > 65535)
            abort();
    if (conf.partitions < 1 || conf.partitions > AQ_PARTITIONS_MAX || conf.heartbeat_s < 0 ||
        conf.connect_timeout_us <= 0 || conf.timeout_us <= 0 || conf.rpc_timeout_us <= 0)
        abort();
    if (!conf.tls && (conf.cacert[0] || conf.cert[0] || conf.key[0]))
        abort();
    free(url);
    return 0;
}
