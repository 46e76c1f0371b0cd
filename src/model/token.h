/*
 * token.h - API tokens: making one, and the role names.
 *
 * A token is shown once, when it is made; the store keeps only its SHA-256.
 * Used by the API (POST /v1/tokens), `sked server` (the first admin token)
 * and `sked token create`.
 */
#ifndef SKED_TOKEN_H
#define SKED_TOKEN_H

#include "core/ids.h"
#include "store/store.h"

/* "read", "write", "shell", "admin"; NULL for an unknown role. */
const char *sked_role_name(sked_role r);

/* The role called name; -1 when there is none. */
int sked_role_parse(const char *name);

/* Make a token for namespace ns with role r, store its hash, and write the
 * secret to secret.  *rec (may be NULL) receives what was stored.
 * SKED_EINVAL for a bad namespace name; store errors as they come. */
int sked_token_make(sked_store *st, const char *ns, sked_role r,
                    char secret[SKED_TOKEN_TEXT], sked_token_rec *rec,
                    sked_err *err);

#endif
