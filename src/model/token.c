/*
 * token.c - making API tokens (see token.h).
 */
#include "model/token.h"

#include <stdio.h>
#include <string.h>

#include "core/sha256.h"

static const char *const roles[] = {"read", "write", "shell", "admin"};

const char *sked_role_name(sked_role r)
{
    return (unsigned)r < 4 ? roles[r] : NULL;
}

int sked_role_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, roles[i]) == 0)
            return i;
    return -1;
}

static int ns_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > SKED_NS_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int sked_token_make(sked_store *st, const char *ns, sked_role r,
                    char secret[SKED_TOKEN_TEXT], sked_token_rec *rec,
                    sked_err *err)
{
    if (!ns_ok(ns))
        return sked_err_set(err, SKED_EINVAL, "namespace", 0,
                            "namespace: 1-%d characters of A-Z a-z 0-9 . _ -",
                            SKED_NS_MAX);
    if (sked_role_name(r) == NULL)
        return sked_err_set(err, SKED_EINVAL, "role", 0,
                            "role: read, write, shell or admin");
    sked_token_rec t = {0};
    sked_uuid7(t.id);
    sked_token_new(secret);
    sked_sha256_hex(secret, strlen(secret), t.hash);
    snprintf(t.ns, sizeof t.ns, "%s", ns);
    t.role = r;
    t.created_at = sked_clock_wall_now();
    t.revoked_at = SKED_TIME_NONE;
    int rc = sked_store_token_insert(st, &t, err);
    if (rc < 0)
        return rc;
    if (rec)
        *rec = t;
    return 0;
}
