/*
 * ids.c - UUIDv7 ids and random tokens (see ids.h).
 */
#include "core/ids.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/clock.h"

void sked_random_bytes(void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0)
            abort();
        p += r;
        n -= (size_t)r;
    }
}

static pthread_mutex_t uuid_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t last_ms;
static uint32_t counter;

/* Random bytes for ids from a per-thread pool refilled 4 KiB at a time:
 * one getrandom(2) per 256 ids instead of one each. */
static void id_random(uint8_t *b, size_t n)
{
    static __thread uint8_t pool[4096];
    static __thread size_t left;
    if (left < n) {
        sked_random_bytes(pool, sizeof pool);
        left = sizeof pool;
    }
    memcpy(b, pool + sizeof pool - left, n);
    memset(pool + sizeof pool - left, 0, n); /* never hand out a byte twice */
    left -= n;
}

void sked_uuid7(char out[SKED_UUID_TEXT])
{
    uint8_t b[16];
    id_random(b, sizeof b);
    uint64_t ms = (uint64_t)(sked_clock_wall_now() / 1000);
    pthread_mutex_lock(&uuid_lock);
    if (ms <= last_ms) {
        /* same millisecond (or the clock stepped back): count on */
        if (++counter > 0xfff) {
            counter = 0;
            last_ms++;
        }
        ms = last_ms;
    } else {
        last_ms = ms;
        counter = (uint32_t)(b[6] & 0x03) << 8 | b[7]; /* random start, room to count */
    }
    uint32_t c = counter;
    pthread_mutex_unlock(&uuid_lock);
    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)(ms >> (40 - 8 * i));
    b[6] = (uint8_t)(0x70 | (c >> 8));
    b[7] = (uint8_t)c;
    b[8] = (uint8_t)(0x80 | (b[8] & 0x3f));
    snprintf(out, SKED_UUID_TEXT,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
             b[11], b[12], b[13], b[14], b[15]);
}

int sked_uuid_valid(const char *s)
{
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                     (c >= 'A' && c <= 'F'))) {
            return 0;
        }
    }
    return s[36] == '\0';
}

void sked_token_new(char out[SKED_TOKEN_TEXT])
{
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint8_t r[33];
    sked_random_bytes(r, 32);
    r[32] = 0;
    memcpy(out, "sked_", 5);
    int n = 5;
    for (int i = 0; i < 33; i += 3) {
        uint32_t v = (uint32_t)r[i] << 16 | (uint32_t)r[i + 1] << 8 | r[i + 2];
        for (int k = 3; k >= 0 && n < 48; k--)
            out[n++] = b64[(v >> (6 * k)) & 63];
    }
    out[48] = '\0';
}

int sked_id_ptr_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}
