/*
 * schedule.c - the next occurrence of a schedule (see schedule.h).
 */
#include "model/schedule.h"

int sked_schedule_next(const sked_schedule *s, sked_walltime after,
                       sked_walltime *out)
{
    sked_walltime t;
    if (s->start_at != SKED_TIME_NONE && after < s->start_at - 1)
        after = s->start_at - 1; /* the first may be start_at itself */
    switch (s->kind) {
    case SKED_SCHED_AT:
        if (s->at <= after)
            return SKED_ENOFIRE;
        t = s->at;
        break;
    case SKED_SCHED_EVERY: {
        sked_walltime anchor = s->start_at != SKED_TIME_NONE ? s->start_at : 0;
        if (sked_cron_every_next(anchor, s->every_us, after, &t) < 0)
            return SKED_ENOFIRE;
        break;
    }
    default:
        if (sked_cron_next(&s->cron, s->tz, after, &t) < 0)
            return SKED_ENOFIRE;
        break;
    }
    if (s->end_at != SKED_TIME_NONE && t > s->end_at)
        return SKED_ENOFIRE;
    *out = t;
    return 0;
}

int sked_schedule_first(const sked_schedule *s, sked_walltime now,
                        sked_walltime *out)
{
    if (s->kind == SKED_SCHED_AT) {
        if (s->end_at != SKED_TIME_NONE && s->at > s->end_at)
            return SKED_ENOFIRE;
        *out = s->at; /* past or future: it runs once */
        return 0;
    }
    return sked_schedule_next(s, now - 1, out);
}
