/*
 * exec_parts.c - the executor's small shared pieces (exec_internal.h):
 * allocation helpers, the output tail (a ring of the last bytes a run
 * wrote), the deadline heap of runs, and epoll watches.  Executor thread
 * only, like the runs they serve.
 */
#include "worker/exec_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

/* ---- small helpers --------------------------------------------------- */

/* Small internal allocations abort on failure (STYLE.md): a NULL check
 * after each would be dead code in practice and untested in fact. */
void *exec_xzalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (p == NULL)
        abort();
    return p;
}

char *exec_xstrdup(const char *s)
{
    char *p = strdup(s);
    if (p == NULL)
        abort();
    return p;
}

/* "200 ms", "5 s", "1500 us": for error messages. */
void exec_ms_text(int64_t us, char *buf, size_t len)
{
    if (us % SKED_USEC_PER_SEC == 0)
        snprintf(buf, len, "%lld s", (long long)(us / SKED_USEC_PER_SEC));
    else if (us % SKED_USEC_PER_MSEC == 0)
        snprintf(buf, len, "%lld ms", (long long)(us / SKED_USEC_PER_MSEC));
    else
        snprintf(buf, len, "%lld us", (long long)us);
}

/* ---- output tail ----------------------------------------------------- */

static void reverse(char *p, size_t n)
{
    for (size_t i = 0, j = n; i + 1 < j; i++, j--) {
        char c = p[i];
        p[i] = p[j - 1];
        p[j - 1] = c;
    }
}

/* Make the ring contiguous from buf[0].  Content wraps only once the ring
 * is full (len == cap), and a full ring rotated by start is three
 * reversals: no second buffer, so this cannot fail. */
static void tail_linearize(tail *t)
{
    if (t->start == 0)
        return;
    if (t->start + t->len <= t->cap) {
        memmove(t->buf, t->buf + t->start, t->len);
    } else {
        reverse(t->buf, t->start);
        reverse(t->buf + t->start, t->cap - t->start);
        reverse(t->buf, t->cap);
    }
    t->start = 0;
}

/* Grow towards want (<= max).  The size comes from the child, so failure
 * is expected and harmless: the ring keeps its size and drops more. */
static void tail_grow(tail *t, size_t want)
{
    if (want <= t->cap)
        return;
    tail_linearize(t);
    char *nb = realloc(t->buf, want + 1);
    if (nb == NULL)
        return;
    t->buf = nb;
    t->cap = want;
}

void tail_append(tail *t, const char *p, size_t n)
{
    if (n == 0 || t->max == 0)
        return;
    if (t->len + n > t->cap && t->cap < t->max) {
        size_t want = t->cap * 2;
        if (want < t->len + n)
            want = t->len + n;
        if (want < 4096)
            want = 4096;
        if (want > t->max)
            want = t->max;
        tail_grow(t, want);
    }
    if (t->cap == 0)
        return;
    if (n >= t->cap) { /* only the newest cap bytes survive */
        memcpy(t->buf, p + (n - t->cap), t->cap);
        t->start = 0;
        t->len = t->cap;
        return;
    }
    if (t->len + n > t->cap) { /* drop the oldest bytes */
        size_t drop = t->len + n - t->cap;
        t->start = (t->start + drop) % t->cap;
        t->len -= drop;
    }
    size_t at = (t->start + t->len) % t->cap;
    size_t first = t->cap - at < n ? t->cap - at : n;
    memcpy(t->buf + at, p, first);
    memcpy(t->buf, p + first, n - first);
    t->len += n;
}

char *tail_take(tail *t, size_t *len)
{
    char *s;
    if (t->buf == NULL) {
        s = exec_xzalloc(1);
        *len = 0;
    } else {
        tail_linearize(t);
        s = t->buf;
        s[t->len] = '\0';
        *len = t->len;
    }
    t->buf = NULL;
    t->cap = t->start = t->len = 0;
    return s;
}

void tail_free(tail *t)
{
    free(t->buf);
    t->buf = NULL;
    t->cap = t->start = t->len = 0;
}

/* ---- deadline heap --------------------------------------------------- */

static int heap_less(const run *a, const run *b)
{
    return a->deadline < b->deadline ||
           (a->deadline == b->deadline && a->seq < b->seq);
}

static void heap_swap(sked_exec *ex, size_t i, size_t j)
{
    run *t = ex->heap[i];
    ex->heap[i] = ex->heap[j];
    ex->heap[j] = t;
    ex->heap[i]->heap_idx = i;
    ex->heap[j]->heap_idx = j;
}

static void heap_up(sked_exec *ex, size_t i)
{
    while (i > 0 && heap_less(ex->heap[i], ex->heap[(i - 1) / 2])) {
        heap_swap(ex, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(sked_exec *ex, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < ex->heap_len && heap_less(ex->heap[l], ex->heap[m]))
            m = l;
        if (l + 1 < ex->heap_len && heap_less(ex->heap[l + 1], ex->heap[m]))
            m = l + 1;
        if (m == i)
            return;
        heap_swap(ex, i, m);
        i = m;
    }
}

void exec_heap_del(sked_exec *ex, run *r)
{
    size_t i = r->heap_idx;
    if (i == SIZE_MAX)
        return;
    r->heap_idx = SIZE_MAX;
    ex->heap_len--;
    if (i == ex->heap_len)
        return;
    ex->heap[i] = ex->heap[ex->heap_len];
    ex->heap[i]->heap_idx = i;
    heap_up(ex, i);
    heap_down(ex, ex->heap[i]->heap_idx);
}

/* Give r one deadline (replacing any); NO_DEADLINE removes it.  The
 * sequence number breaks ties in arrival order. */
void exec_heap_set(sked_exec *ex, run *r, sked_monotime deadline)
{
    exec_heap_del(ex, r);
    if (deadline == NO_DEADLINE)
        return;
    if (ex->heap_len == ex->heap_cap) {
        ex->heap_cap = ex->heap_cap ? 2 * ex->heap_cap : 64;
        ex->heap = realloc(ex->heap, ex->heap_cap * sizeof *ex->heap);
        if (ex->heap == NULL)
            abort();
    }
    r->deadline = deadline;
    r->seq = ex->seq++;
    r->heap_idx = ex->heap_len;
    ex->heap[ex->heap_len++] = r;
    heap_up(ex, r->heap_idx);
}

/* ---- watches --------------------------------------------------------- */

/* Returns 0 or -errno (EMFILE-like limits on epoll watches do happen). */
int exec_watch_add(sked_exec *ex, watch *w, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = w};
    if (epoll_ctl(ex->epfd, EPOLL_CTL_ADD, w->fd, &ev) < 0)
        return -errno;
    return 0;
}

void exec_watch_close(sked_exec *ex, watch *w)
{
    if (w->fd < 0)
        return;
    epoll_ctl(ex->epfd, EPOLL_CTL_DEL, w->fd, NULL);
    close(w->fd);
    w->fd = -1;
}
