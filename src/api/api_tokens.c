/*
 * api_tokens.c - tokens over the API (admin only): create, list, revoke.
 * The secret is in the create answer and nowhere else, ever.
 */
#include "api/api_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/task.h"
#include "model/token.h"

static json_t *token_json(const sked_token_rec *t)
{
    json_t *j = json_object();
    json_object_set_new(j, "id", json_string(t->id));
    json_object_set_new(j, "namespace", json_string(t->ns));
    json_object_set_new(j, "role", json_string(sked_role_name(t->role)));
    json_object_set_new(j, "created_at", sked_json_time(t->created_at));
    json_object_set_new(j, "revoked_at", sked_json_time(t->revoked_at));
    return j;
}

void api_tokens_create(api_call *c)
{
    json_t *body = api_body_json(c);
    if (body == NULL)
        return;
    sked_err err = {0};
    const char *k;
    json_t *kv;
    if (json_is_object(body)) {
        json_object_foreach(body, k, kv) {
            if (strcmp(k, "namespace") != 0 && strcmp(k, "role") != 0) {
                sked_err_set(&err, SKED_EINVAL, k, 0, "%.60s: unknown field "
                             "(a token has a namespace and a role)", k);
                json_decref(body);
                api_reply_error(c, &err);
                return;
            }
        }
    }
    json_t *nsv = json_is_object(body) ? json_object_get(body, "namespace") : NULL;
    json_t *rv = json_is_object(body) ? json_object_get(body, "role") : NULL;
    const char *ns = nsv == NULL ? c->tok.ns : json_string_value(nsv);
    int role = json_is_string(rv) ? sked_role_parse(json_string_value(rv)) : -1;
    if (ns == NULL) {
        sked_err_set(&err, SKED_EINVAL, "namespace", 0, "namespace: must be a string");
    } else if (role < 0) {
        sked_err_set(&err, SKED_EINVAL, "role", 0, "role: read, write, shell or admin");
    } else {
        char secret[SKED_TOKEN_TEXT];
        sked_token_rec t;
        if (sked_token_make(c->api->store, ns, (sked_role)role, secret, &t, &err) == 0) {
            json_t *j = token_json(&t);
            json_object_set_new(j, "token", json_string(secret));
            json_decref(body);
            api_reply_json(c, 201, j);
            return;
        }
    }
    json_decref(body);
    api_reply_error(c, &err);
}

void api_tokens_list(api_call *c)
{
    sked_token_rec *t = NULL;
    size_t n = 0;
    sked_err err = {0};
    if (sked_store_token_list(c->api->store, sked_http_query(c->req, "namespace"),
                              &t, &n, &err) < 0) {
        api_reply_error(c, &err);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, token_json(&t[i]));
    free(t);
    api_reply_json(c, 200, json_pack("{s:o}", "tokens", arr));
}

void api_tokens_revoke(api_call *c)
{
    sked_err err = {0};
    if (sked_store_token_revoke(c->api->store, NULL, c->id, sked_clock_wall_now(),
                                &err) < 0)
        api_reply_error(c, &err);
    else
        api_reply_json(c, 204, NULL);
}
