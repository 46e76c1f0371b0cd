/*
 * ids.h - identifiers and secrets: UUIDv7 ids and API tokens.
 *
 * Ids are UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then a 12-bit
 * counter that keeps ids made in the same millisecond by this process in
 * order, then random bits.  So ids sort by creation time, which is what
 * cursor pagination walks.  Tokens are "sked_" + 43 base64url characters
 * of 256 random bits from getrandom(2).
 */
#ifndef SKED_IDS_H
#define SKED_IDS_H

#include <stddef.h>

#define SKED_UUID_TEXT 37   /* 36 characters and a NUL */
#define SKED_TOKEN_TEXT 49  /* "sked_" + 43 + NUL */

/* A new UUIDv7 in out (lower-case, 8-4-4-4-12).  Thread-safe. */
void sked_uuid7(char out[SKED_UUID_TEXT]);

/* Non-zero when s is a UUID in that text form (any version). */
int sked_uuid_valid(const char *s);

/* A new random API token.  Thread-safe; aborts if the kernel gives no
 * randomness (never on Linux >= 3.17). */
void sked_token_new(char out[SKED_TOKEN_TEXT]);

/* Fill buf with n random bytes from getrandom(2). */
void sked_random_bytes(void *buf, size_t n);

/* qsort/bsearch order of an array of `const char *` ids (strcmp). */
int sked_id_ptr_cmp(const void *a, const void *b);

#endif
