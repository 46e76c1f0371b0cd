/*
 * sha256.h - SHA-256 (FIPS 180-4), for token hashes and request
 * fingerprints.  Not for passwords: sked's tokens are 256 random bits, so a
 * fast hash is the right one.
 */
#ifndef SKED_SHA256_H
#define SKED_SHA256_H

#include <stddef.h>
#include <stdint.h>

/* hex: 65 bytes, receives 64 lower-case hex digits and a NUL. */
void sked_sha256_hex(const void *data, size_t len, char hex[65]);

/* The raw 32-byte digest. */
void sked_sha256(const void *data, size_t len, uint8_t out[32]);

#endif
