#!/usr/bin/env python3
"""cron_oracle.py - an independent model of sked's cron semantics (DESIGN.md §9).

A developer tool, not part of the build: it (re)generates the test tables
tests/unit/data/cron_next.txt and tests/unit/data/cron_invalid.txt, which CI
only reads.  It never runs or reads sked's C code, and uses no cron library.

Every next-fire expectation is computed by two routes that share only the
expression parser and must agree before a row is written:

  route A  walks local calendar days; for each matching local wall time asks
           zoneinfo (fold=0 / fold=1, checked by round-tripping) whether the
           time is unique, repeated (fold) or skipped (gap); a gap's transition
           instant is found by bisecting utcoffset().  Day matching is a
           per-date predicate built on datetime.weekday().
  route B  reads the zone's transitions from `zdump -v` (the C library's TZif
           reader, not Python's), splits time into constant-offset segments,
           enumerates matching local times inside each segment's local span,
           drops a fixed-time schedule's second pass over a fold, and adds one
           fire per forward transition whose skipped local span holds a match.
           Day matching builds each month's set of matching days with its own
           weekday formula (Sakamoto) and a "nearest weekday" search.

Key DST rows also carry an expectation written by hand from `zdump -v`; the
generator checks those too.  The invalid table is written by hand (which field
is blamed) and checked against the parser here.

Usage:
  cron_oracle.py write           regenerate both tables
  cron_oracle.py check           regenerate in memory, diff against the files
  cron_oracle.py next ZONE FROM EXPR [N]    ad-hoc query (both routes)
  cron_oracle.py parse EXPR      show the parse (or the blamed field)
"""

import bisect
import calendar
import datetime as dt
import os
import re
import subprocess
import sys
import zoneinfo
from fractions import Fraction

UTC = dt.timezone.utc
HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.normpath(os.path.join(HERE, "..", "data"))

# ---------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------


class CronError(Exception):
    def __init__(self, field, why):
        super().__init__("%s: %s" % (field, why))
        self.field = field
        self.why = why


MONTHS = {n: i + 1 for i, n in enumerate(
    [b"JAN", b"FEB", b"MAR", b"APR", b"MAY", b"JUN",
     b"JUL", b"AUG", b"SEP", b"OCT", b"NOV", b"DEC"])}
DAYS = {n: i for i, n in enumerate(
    [b"SUN", b"MON", b"TUE", b"WED", b"THU", b"FRI", b"SAT"])}

# name, lo, hi, step limit (field size), names
F_SEC = ("second", 0, 59, 60, None)
F_MIN = ("minute", 0, 59, 60, None)
F_HOUR = ("hour", 0, 23, 24, None)
F_DOM = ("day-of-month", 1, 31, 31, None)
F_MON = ("month", 1, 12, 12, MONTHS)
F_DOW = ("day-of-week", 0, 7, 7, DAYS)

MACROS = {
    b"@yearly": b"0 0 1 1 *",
    b"@annually": b"0 0 1 1 *",
    b"@monthly": b"0 0 1 * *",
    b"@weekly": b"0 0 * * 0",
    b"@daily": b"0 0 * * *",
    b"@midnight": b"0 0 * * *",
    b"@hourly": b"0 * * * *",
}

DIGITS = re.compile(rb"[0-9]+")
NAME3 = re.compile(rb"[A-Za-z]{3}")


def _value(tok, f):
    name, lo, hi, _, names = f
    if DIGITS.fullmatch(tok):
        v = int(tok)
    elif names is not None and NAME3.fullmatch(tok) and tok.upper() in names:
        v = names[tok.upper()]
    else:
        raise CronError(name, "bad value %r" % tok)
    if not lo <= v <= hi:
        raise CronError(name, "%d out of range %d-%d" % (v, lo, hi))
    return v


def _general(item, f):
    """`*`, N, N-M, */S, N-M/S, N/S -> set of values (dow: 7 kept as 7)."""
    name, lo, hi, size, _ = f
    parts = item.split(b"/")
    if len(parts) > 2:
        raise CronError(name, "two steps")
    base = parts[0]
    step = None
    if len(parts) == 2:
        if not DIGITS.fullmatch(parts[1]):
            raise CronError(name, "bad step %r" % parts[1])
        step = int(parts[1])
        if not 1 <= step <= size:
            raise CronError(name, "step %d not in 1-%d" % (step, size))
    if base == b"*":
        a, b = lo, hi
    elif b"-" in base:
        ends = base.split(b"-")
        if len(ends) != 2:
            raise CronError(name, "bad range")
        a = _value(ends[0], f)
        b = _value(ends[1], f)
        if a > b:
            if f is F_DOW and b == 0:
                b = 7
            else:
                raise CronError(name, "reversed range")
    else:
        a = _value(base, f)
        b = hi if step is not None else a
    return set(range(a, b + 1, step or 1))


def _field(text, f):
    name = f[0]
    out = {"nums": set(), "last": False, "lastwd": False, "wdays": set(),
           "nth": set(), "lastdow": set()}
    for item in text.split(b","):
        if item == b"":
            raise CronError(name, "empty list item")
        if f is F_DOM:
            if item == b"L":
                out["last"] = True
                continue
            if item == b"LW":
                out["lastwd"] = True
                continue
            m = re.fullmatch(rb"([0-9]+)W", item)
            if m:
                n = int(m.group(1))
                if not 1 <= n <= 31:
                    raise CronError(name, "nW out of range")
                out["wdays"].add(n)
                continue
        if f is F_DOW:
            m = re.fullmatch(rb"([0-9]+|[A-Za-z]{3})#([0-9]+)", item)
            if m:
                n = _value(m.group(1), f) % 7
                k = int(m.group(2))
                if not 1 <= k <= 5:
                    raise CronError(name, "#k out of range")
                out["nth"].add((n, k))
                continue
            m = re.fullmatch(rb"([0-9]+|[A-Za-z]{3})L", item)
            if m:
                out["lastdow"].add(_value(m.group(1), f) % 7)
                continue
        vals = _general(item, f)
        if f is F_DOW:
            vals = {v % 7 for v in vals}
        out["nums"] |= vals
    return out


class Cron:
    pass


def parse(expr):
    """bytes -> Cron, or raise CronError(field)."""
    if isinstance(expr, str):
        expr = expr.encode()
    toks = [t for t in re.split(rb"[ \t]+", expr) if t != b""]
    if not toks:
        raise CronError("expression", "empty")
    c = Cron()
    if toks[0].startswith(b"@"):
        if toks[0] == b"@every":
            if len(toks) != 2:
                raise CronError("every", "want one duration")
            c.every = parse_duration(toks[1])
            return c
        if len(toks) == 1 and toks[0] in MACROS:
            c2 = parse(MACROS[toks[0]])
            return c2
        raise CronError("expression", "unknown macro")
    if len(toks) not in (5, 6):
        raise CronError("expression", "%d fields" % len(toks))
    if len(toks) == 5:
        toks = [b"0"] + toks          # 5 fields: second 0
    fields = [F_SEC, F_MIN, F_HOUR, F_DOM, F_MON, F_DOW]
    parsed = [_field(t, f) for t, f in zip(toks, fields)]
    c.every = None
    c.key = b" ".join(toks)
    c.secs = sorted(parsed[0]["nums"])
    c.mins = sorted(parsed[1]["nums"])
    c.hours = sorted(parsed[2]["nums"])
    c.dom = parsed[3]
    c.months = parsed[4]["nums"]
    c.dow = parsed[5]
    c.dom_star = toks[3].startswith(b"*")
    c.dow_star = toks[5].startswith(b"*")
    c.wildcard = toks[1].startswith(b"*") or toks[2].startswith(b"*")
    return c


def parse_duration(tok):
    if not re.fullmatch(rb"(?:[0-9]+(?:ms|s|m|h|d))+", tok):
        raise CronError("every", "bad duration %r" % tok)
    unit_ms = {b"ms": 1, b"s": 1000, b"m": 60000, b"h": 3600000,
               b"d": 86400000}
    total = 0
    for n, u in re.findall(rb"([0-9]+)(ms|s|m|h|d)", tok):
        total += int(n) * unit_ms[u]
    if total < 1000:
        raise CronError("every", "below 1s")
    if total % 1000:
        raise CronError("every", "not whole seconds")
    if total > 36500 * 86400000:     # the duration grammar's own limit
        raise CronError("every", "above 36500d")
    return total // 1000


# ---------------------------------------------------------------------------
# Day matching, route A: a predicate on one date
# ---------------------------------------------------------------------------


def _ndays(y, m):
    return calendar.monthrange(y, m)[1]


def _cron_wd(d):  # 0 = Sunday
    return (d.weekday() + 1) % 7


def _nearest_weekday_A(y, m, n):
    nd = _ndays(y, m)
    if n > nd:
        return None
    w = _cron_wd(dt.date(y, m, n))
    if w == 6:  # Saturday
        return n - 1 if n > 1 else n + 2
    if w == 0:  # Sunday
        return n + 1 if n + 1 <= nd else n - 2
    return n


def dom_match_A(c, d):
    s = c.dom
    nd = _ndays(d.year, d.month)
    if d.day in s["nums"]:
        return True
    if s["last"] and d.day == nd:
        return True
    if s["lastwd"] and _cron_wd(d) in (1, 2, 3, 4, 5):
        later = [d + dt.timedelta(days=i) for i in range(1, nd - d.day + 1)]
        if not any(_cron_wd(x) in (1, 2, 3, 4, 5) for x in later):
            return True
    for n in s["wdays"]:
        if _nearest_weekday_A(d.year, d.month, n) == d.day:
            return True
    return False


def dow_match_A(c, d):
    s = c.dow
    w = _cron_wd(d)
    if w in s["nums"]:
        return True
    if (w, (d.day - 1) // 7 + 1) in s["nth"]:
        return True
    if w in s["lastdow"] and d.day + 7 > _ndays(d.year, d.month):
        return True
    return False


def day_match_A(c, d):
    if d.month not in c.months:
        return False
    a = dom_match_A(c, d)
    b = dow_match_A(c, d)
    if c.dom_star or c.dow_star:
        return a and b
    return a or b


# ---------------------------------------------------------------------------
# Day matching, route B: the set of matching days of one month
# ---------------------------------------------------------------------------


def _sakamoto(y, m, d):  # 0 = Sunday
    t = [0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4]
    if m < 3:
        y -= 1
    return (y + y // 4 - y // 100 + y // 400 + t[m - 1] + d) % 7


def month_days_B(c, y, m):
    if m not in c.months:
        return []
    nd = 28
    while nd < 31:
        try:
            dt.date(y, m, nd + 1)
        except ValueError:
            break
        nd += 1
    wd = {d: _sakamoto(y, m, d) for d in range(1, nd + 1)}
    weekdays = [d for d in range(1, nd + 1) if 1 <= wd[d] <= 5]
    s = c.dom
    a = {n for n in s["nums"] if n <= nd}
    if s["last"]:
        a.add(nd)
    if s["lastwd"]:
        a.add(weekdays[-1])
    for n in s["wdays"]:
        if n <= nd:
            a.add(min(weekdays, key=lambda d: abs(d - n)))
    t = c.dow
    b = {d for d in range(1, nd + 1) if wd[d] in t["nums"]}
    for w, k in t["nth"]:
        lst = [d for d in range(1, nd + 1) if wd[d] == w]
        if len(lst) >= k:
            b.add(lst[k - 1])
    for w in t["lastdow"]:
        b.add([d for d in range(1, nd + 1) if wd[d] == w][-1])
    r = (a & b) if (c.dom_star or c.dow_star) else (a | b)
    return sorted(r)


_NEVER = {}


def never_A(c):
    if ("A", c.key) in _NEVER:
        return _NEVER["A", c.key]
    _NEVER["A", c.key] = r = _never_A(c)
    return r


def never_B(c):
    if ("B", c.key) in _NEVER:
        return _NEVER["B", c.key]
    _NEVER["B", c.key] = r = _never_B(c)
    return r


def _never_A(c):
    d = dt.date(2000, 1, 1)
    while d.year < 2400:
        if day_match_A(c, d):
            return False
        d += dt.timedelta(days=1)
    return True


def _never_B(c):
    return not any(month_days_B(c, y, m)
                   for y in range(2000, 2400) for m in range(1, 13))


# ---------------------------------------------------------------------------
# Instants and formatting
# ---------------------------------------------------------------------------

RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)")


def parse_from(s):
    m = RFC3339.fullmatch(s)
    if not m:
        raise ValueError("bad FROM %r" % s)
    y, mo, d, h, mi, se = (int(m.group(i)) for i in range(1, 7))
    frac = Fraction(m.group(7)[1:]) / 10 ** (len(m.group(7)) - 1) \
        if m.group(7) else Fraction(0)
    off = 0
    if m.group(8) != "Z":
        sign = -1 if m.group(8)[0] == "-" else 1
        off = sign * (int(m.group(8)[1:3]) * 3600 + int(m.group(8)[4:6]) * 60)
    t = calendar.timegm((y, mo, d, h, mi, se, 0, 0, 0)) - off
    return t + frac


def fmt(t, off, utc_zone):
    assert off % 60 == 0
    local = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=t + off)
    s = local.strftime("%Y-%m-%dT%H:%M:%S")
    if utc_zone:
        assert off == 0
        return s + "Z"
    sign = "-" if off < 0 else "+"
    a = abs(off)
    return "%s%s%02d:%02d" % (s, sign, a // 3600, a % 3600 // 60)


# ---------------------------------------------------------------------------
# Route A: zoneinfo, one local wall time at a time
# ---------------------------------------------------------------------------

UTC_NAMES = {"UTC", "Etc/UTC"}
MAX_OFF = 15 * 3600


def _off_A(tz, t):
    return int(dt.datetime.fromtimestamp(t, UTC).astimezone(tz)
               .utcoffset().total_seconds())


def classify_A(tz, naive):
    """-> ('unique', [t]) | ('fold', [t0, t1]) | ('gap', [transition])."""
    a = int(naive.replace(tzinfo=tz, fold=0).timestamp())
    b = int(naive.replace(tzinfo=tz, fold=1).timestamp())

    def back(t):
        return dt.datetime.fromtimestamp(t, tz).replace(tzinfo=None) == naive

    ok = [t for t in sorted({a, b}) if back(t)]
    if len(ok) == 2:
        return "fold", ok
    if len(ok) == 1:
        return "unique", ok
    # gap: the offset changes somewhere in (lo, hi]; bisect for the instant
    lo, hi = min(a, b), max(a, b)
    o = _off_A(tz, lo)
    assert _off_A(tz, hi) != o
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _off_A(tz, mid) == o:
            lo = mid
        else:
            hi = mid
    return "gap", [hi]


def next_A(c, zone, frm, n):
    tz = zoneinfo.ZoneInfo(zone)
    utc_zone = zone in UTC_NAMES

    def out(ts):
        return [fmt(t, _off_A(tz, t), utc_zone) for t in ts]

    if c.every is not None:
        D = c.every
        k = (frm // D) + 1          # smallest k with k*D > frm
        return out([(k + i) * D for i in range(n)])
    if never_A(c):
        return "never"
    start = dt.datetime.fromtimestamp(int(frm) - 2 * 86400, UTC)\
        .replace(tzinfo=None).date()
    best = []  # sorted fires > frm, at most n
    day = start
    while True:
        if (day - start).days > 60 * 366:
            raise RuntimeError("no fire within 60 years")
        day_start_naive = calendar.timegm(day.timetuple())
        if len(best) == n and day_start_naive - MAX_OFF - 86400 > best[-1]:
            break
        if day_match_A(c, day):
            for h in c.hours:
                for mi in c.mins:
                    for s in c.secs:
                        ln = day_start_naive + h * 3600 + mi * 60 + s
                        if ln + MAX_OFF + 86400 < frm:
                            continue
                        if len(best) == n and ln - MAX_OFF - 86400 > best[-1]:
                            break
                        naive = dt.datetime(day.year, day.month, day.day,
                                            h, mi, s)
                        kind, ts = classify_A(tz, naive)
                        if kind == "gap" and c.wildcard:
                            ts = []
                        elif kind == "fold" and not c.wildcard:
                            ts = ts[:1]
                        for t in ts:
                            if t > frm and t not in best:
                                bisect.insort(best, t)
                                del best[n:]
        day += dt.timedelta(days=1)
    return out(best)


# ---------------------------------------------------------------------------
# Route B: constant-offset segments from `zdump -v`
# ---------------------------------------------------------------------------

_ZDUMP = {}
ZLINE = re.compile(r"^(\S+)\s+(\w{3} \w{3}\s+\d+ \d\d:\d\d:\d\d -?\d+) UT = "
                   r".* isdst=\d gmtoff=(-?\d+)$")


def zdump_segments(zone):
    """[(start, end, offset)] covering 1900..2200; start of first = -inf."""
    if zone in _ZDUMP:
        return _ZDUMP[zone]
    txt = subprocess.run(["zdump", "-v", "-c", "1900,2200", zone],
                         capture_output=True, text=True, check=True).stdout
    rows = []
    for line in txt.splitlines():
        m = ZLINE.match(line)
        if not m:
            assert line.endswith("= NULL"), line
            continue
        ut = dt.datetime.strptime(" ".join(m.group(2).split()),
                                  "%a %b %d %H:%M:%S %Y")
        rows.append((calendar.timegm(ut.timetuple()), int(m.group(3))))
    # lines come in pairs: the last second before, and the first second of,
    # each transition
    assert len(rows) % 2 == 0
    if not rows:
        segs = [(float("-inf"), float("inf"), 0)]   # UTC-like: no transition
    else:
        segs = [(float("-inf"), None, rows[0][1])]
        for i in range(0, len(rows), 2):
            (t0, o0), (t1, o1) = rows[i], rows[i + 1]
            assert t1 == t0 + 1 and o0 == segs[-1][2]
            if o1 == o0:
                continue          # isdst/abbreviation change only
            segs[-1] = (segs[-1][0], t1, segs[-1][2])
            segs.append((t1, None, o1))
        segs[-1] = (segs[-1][0], float("inf"), segs[-1][2])
    _ZDUMP[zone] = segs
    return segs


def _local_matches_B(c, a, b):
    """Matching local times (local seconds) in [a, b), ascending."""
    d0 = dt.date(1970, 1, 1) + dt.timedelta(days=a // 86400)
    d1 = dt.date(1970, 1, 1) + dt.timedelta(days=(b - 1) // 86400)
    y, m = d0.year, d0.month
    while (y, m) <= (d1.year, d1.month):
        for d in month_days_B(c, y, m):
            base = calendar.timegm((y, m, d, 0, 0, 0, 0, 0, 0))
            if base + 86400 <= a or base >= b:
                continue
            for h in c.hours:
                for mi in c.mins:
                    for s in c.secs:
                        L = base + h * 3600 + mi * 60 + s
                        if a <= L < b:
                            yield L
        m += 1
        if m == 13:
            y, m = y + 1, 1


def fires_B(c, zone, w0, w1):
    """Every fire instant in [w0, w1)."""
    segs = zdump_segments(zone)
    out = set()
    for i, (s, e, off) in enumerate(segs):
        if e <= w0 or s >= w1:
            continue
        prev = segs[i - 1][2] if i > 0 else None
        a, b = max(s, w0), min(e, w1)
        for L in _local_matches_B(c, int(a) + off, int(b) + off):
            if (not c.wildcard and prev is not None and prev > off
                    and L < s + prev):
                continue       # second pass over a fold: fixed-time skips it
            out.add(L - off)
        if (not c.wildcard and prev is not None and off > prev
                and w0 <= s < w1):
            if next(_local_matches_B(c, s + prev, s + off), None) is not None:
                out.add(s)     # matches skipped by the gap fire once, at s
    return out


def next_B(c, zone, frm, n):
    segs = zdump_segments(zone)
    utc_zone = all(o == 0 for _, _, o in segs)

    def off_at(t):
        for s, e, o in segs:
            if s <= t < e:
                return o
        raise AssertionError

    def out(ts):
        return [fmt(t, off_at(t), utc_zone) for t in ts]

    if c.every is not None:
        D = c.every
        t = int(frm) - int(frm) % D      # a multiple of D at or before frm
        res = []
        while len(res) < n:
            if t > frm:
                res.append(t)
            t += D
        return out(res)
    if never_B(c):
        return "never"
    w0 = int(frm) - 2 * 86400
    span = 4 * 86400
    while True:
        got = sorted(t for t in fires_B(c, zone, w0, w0 + span) if t > frm)
        if len(got) >= n:
            return out(got[:n])
        if span > 60 * 366 * 86400:
            raise RuntimeError("no fire within 60 years")
        span *= 4


def next_fires(zone, frm_s, expr, n):
    c = parse(expr)
    frm = parse_from(frm_s)
    a = next_A(c, zone, frm, n)
    b = next_B(c, zone, frm, n)
    if a != b:
        raise AssertionError("routes disagree on %s | %s | %s:\n A %s\n B %s"
                             % (zone, frm_s, expr, a, b))
    return a


# ---------------------------------------------------------------------------
# Self-checks of the parser on hand-expanded sets
# ---------------------------------------------------------------------------


def self_test():
    def f(expr, i):
        c = parse(expr)
        return [c.secs, c.mins, c.hours, sorted(c.dom["nums"]),
                sorted(c.months), sorted(c.dow["nums"])][i]
    assert f("5/15 * * * *", 1) == [5, 20, 35, 50]
    assert f("*/60 * * * *", 1) == [0]
    assert f("0 3/6 * * *", 2) == [3, 9, 15, 21]
    assert f("0 0 10/10 * *", 3) == [10, 20, 30]
    assert f("0 0 1 2/5 *", 4) == [2, 7, 12]
    assert f("0 0 * * 1/2", 5) == [0, 1, 3, 5]          # 1,3,5,7
    assert f("0 0 * * 5-0", 5) == [0, 5, 6]
    assert f("0 0 * * FRI-SUN", 5) == [0, 5, 6]
    assert f("0 0 * * sat-sun", 5) == [0, 6]
    assert f("0 0 * * 7", 5) == [0]
    assert f("0 0 * * MON-FRI/2", 5) == [1, 3, 5]
    assert f("0 0 * jan-dec/3 *", 4) == [1, 4, 7, 10]
    assert f("05 09 * * *", 1) == [5]
    assert f("0 0-20/5 * * *", 2) == [0, 5, 10, 15, 20]
    assert f("10-20/5 * * * * *", 0) == [10, 15, 20]
    assert f("* * * * *", 0) == [0]
    assert parse("0 0 * * FRIL").dow["lastdow"] == {5}
    assert parse("0 0 * * 7#1,0L").dow["nth"] == {(0, 1)}
    assert parse("0 0 * * 7#1,0L").dow["lastdow"] == {0}
    assert parse("0 0 1,15,L * *").dom["last"]
    assert parse("0 0 15W,LW * *").dom["wdays"] == {15}
    assert parse("@every 1h30m").every == 5400
    assert parse("@every 2000ms").every == 2
    assert parse("@every 1d").every == 86400
    assert parse("*/10 30 2 * * *").wildcard is False
    assert parse("0 */2 * * *").wildcard is True
    assert parse("@hourly").wildcard is True
    assert parse("@daily").wildcard is False
    assert parse("0 0 */2 * MON").dom_star
    # nearest weekday, both formulations, against hand-worked dates
    for (y, m, n, want) in [(2022, 1, 1, 3),    # Sat the 1st -> Mon 3rd
                            (2021, 10, 31, 29),  # Sun the 31st -> Fri 29th
                            (2022, 12, 31, 30),  # Sat the 31st -> Fri 30th
                            (2023, 4, 30, 28),   # Sun 30th, 30-day month
                            (2021, 5, 30, 31),   # Sun 30th -> Mon 31st
                            (2021, 8, 15, 16),   # Sun -> Mon
                            (2021, 5, 15, 14),   # Sat -> Fri
                            (2021, 4, 31, None)]:
        assert _nearest_weekday_A(y, m, n) == want, (y, m, n)
    # the two weekday formulas agree
    d = dt.date(1970, 1, 1)
    while d.year < 2200:
        assert _sakamoto(d.year, d.month, d.day) == _cron_wd(d)
        d += dt.timedelta(days=1)
    # the two zone readers agree on every transition we use
    for zone in ZONES:
        tz = zoneinfo.ZoneInfo(zone)
        for s, e, o in zdump_segments(zone):
            for t in (s, e - 1):
                if abs(t) != float("inf") and 0 <= t < 7258118400:  # <2200
                    assert _off_A(tz, int(t)) == o, (zone, t)


# ---------------------------------------------------------------------------
# Table generation
# ---------------------------------------------------------------------------

def load_cases():
    return sys.modules[__name__]


ZONES = []


def tzdata_version():
    """The system tzdata's version, e.g. 2025b, and a check that zoneinfo
    reads the system files (not a bundled copy)."""
    assert zoneinfo.TZPATH and zoneinfo.TZPATH[0] == "/usr/share/zoneinfo", \
        zoneinfo.TZPATH
    with open("/usr/share/zoneinfo/tzdata.zi") as fh:
        first = fh.readline()
    m = re.match(r"# version (\S+)", first)
    assert m, first
    return m.group(1)


def gen_next():
    cases = load_cases()
    lines = [cases.NEXT_HEADER.rstrip("\n").replace("@TZVERSION@",
                                                     tzdata_version())]
    rows = 0
    errors = []
    for item in cases.NEXT:
        if isinstance(item, str):
            lines.append("")
            for l in item.strip("\n").split("\n"):
                lines.append("# " + l if l else "#")
            continue
        zone, frm, expr, n = item[:4]
        hand = item[4] if len(item) > 4 else None
        got = next_fires(zone, frm, expr, n)
        got_s = got if got == "never" else " ".join(got)
        if hand is not None and hand != got_s:
            errors.append("hand value differs: %s | %s | %s\n hand %s"
                          "\n got  %s" % (zone, frm, expr, hand, got_s))
        if got != "never":
            assert len(got) == n
        lines.append("%s | %s | %s | %s" % (zone, frm, expr, got_s))
        rows += 1
    if errors:
        raise AssertionError("\n".join(errors))
    return "\n".join(lines) + "\n", rows


def escape(b):
    out = []
    for i, ch in enumerate(b):
        edge = i == 0 or i == len(b) - 1
        if 0x21 <= ch <= 0x7e and ch not in (0x7c, 0x5c) \
                and not (i == 0 and ch == 0x23):
            out.append(chr(ch))
        elif ch == 0x20 and not edge:
            out.append(" ")
        else:
            out.append("\\x%02x" % ch)
    return "".join(out) if b else "<empty>"


def unescape(s):
    if s == "<empty>":
        return b""
    return re.sub(rb"\\x([0-9a-f]{2})", lambda m: bytes([int(m.group(1), 16)]),
                  s.encode())


def gen_invalid():
    cases = load_cases()
    lines = [cases.INVALID_HEADER.rstrip("\n")]
    rows = 0
    seen = set()
    for item in cases.INVALID:
        if isinstance(item, str):
            lines.append("")
            for l in item.strip("\n").split("\n"):
                lines.append("# " + l if l else "#")
            continue
        expr, field = item
        if isinstance(expr, str):
            expr = expr.encode()
        assert expr not in seen, expr
        seen.add(expr)
        try:
            parse(expr)
        except CronError as e:
            if e.field != field:
                raise AssertionError("%r: hand says %s, parser says %s (%s)"
                                     % (expr, field, e.field, e.why))
        else:
            raise AssertionError("%r parses" % expr)
        text = escape(expr)
        assert unescape(text) == expr
        lines.append("%s | %s" % (text, field))
        rows += 1
    for expr in cases.VALID:          # must parse (guards the parser)
        parse(expr)
    return "\n".join(lines) + "\n", rows


# ===========================================================================
# The cases.  A string is a comment block written above the rows that follow
# it; a tuple is a row: (zone, from, expression, how many[, hand value]).
# A hand value is written from `zdump -v` / a calendar before the oracle ran
# and must equal what both routes compute.
# ===========================================================================

NEXT_HEADER = """\
# cron_next.txt - the next fire instants of cron schedules (DESIGN.md §9).
#
# GENERATED by tests/unit/oracle/cron_oracle.py from the cases written in it
# (see tests/unit/oracle/README.md).  Change the cases and regenerate; do not
# edit rows by hand.  Derived without running any of sked's code and without
# any cron library.
#
# Row:  ZONE | FROM | EXPRESSION | EXPECTED
#   ZONE        an IANA zone name, read from the system's TZif files
#               (generated against tzdata @TZVERSION@).
#   FROM        an RFC 3339 instant, any offset, maybe fractional seconds.
#   EXPRESSION  the cron text exactly as handed to the parser: runs of
#               spaces may occur inside it, never a tab, '|' or backslash.
#   EXPECTED    the next N fire instants strictly after FROM, ascending,
#               separated by single spaces: ask the engine for exactly N;
#               or the word `never` for a schedule that can never fire.
#               Each instant is YYYY-MM-DDTHH:MM:SS+hh:mm with the zone's
#               UTC offset at that instant, or YYYY-MM-DDTHH:MM:SSZ for a
#               zone whose offset is zero at every instant (UTC, Etc/UTC).
#               Compare the text exactly.
#
# How the values were made: two routes inside the oracle that share only the
# expression parser must agree on every row.  Route A walks local days and
# asks Python's zoneinfo, one local wall time at a time, whether it is
# unique, repeated or skipped.  Route B reads the zone's transitions from
# `zdump -v` (the C library's reader of the same TZif files), cuts time into
# constant-offset segments and enumerates matches segment by segment; it
# also matches days by a separately written month-set calculation.  The DST
# rows were in addition worked out by hand from `zdump -v` output, quoted in
# the comments above them; the oracle checks those hand values too.
#
# Daylight-saving rules (cronie's).  A schedule is WILDCARD when the text of
# its minute or hour field begins with '*' (a 6-field seconds field does not
# count; macros are judged by their expansion: @hourly is wildcard, @daily
# is fixed-time); every other schedule is FIXED-TIME.
#   - matching local time skipped by a gap: fixed-time fires once at the
#     transition instant (first instant after the gap); wildcard: no fire.
#   - matching local time repeated by a fold: fixed-time fires at the first
#     occurrence only (even when FROM lies between the two); wildcard fires
#     at both.
#   - fire instants are merged: several skipped matches in one gap give one
#     fire, and a gap fire equal to a real match is one fire.
#   - day-of-month/day-of-week are matched on the local DATE of the wall time,
#     also for a skipped one (Apia's missing Friday 2011-12-30 fires at the
#     transition, which is Saturday 00:00 local).
"""

NY = "America/New_York"
BER = "Europe/Berlin"
LON = "Europe/London"
LHI = "Australia/Lord_Howe"
CHA = "Pacific/Chatham"
KTM = "Asia/Kathmandu"
TBU = "Pacific/Tongatapu"
KIR = "Pacific/Kiritimati"
SAO = "America/Sao_Paulo"
APIA = "Pacific/Apia"
TYO = "Asia/Tokyo"
SYD = "Australia/Sydney"
NFL = "America/St_Johns"
KOL = "Asia/Kolkata"

NEXT = [
"""
1. Ordinary schedules, UTC (instants written with Z)
""",
("UTC", "2026-01-01T00:00:00Z", "* * * * *", 3,
 "2026-01-01T00:01:00Z 2026-01-01T00:02:00Z 2026-01-01T00:03:00Z"),
("UTC", "2025-12-31T23:58:30Z", "* * * * *", 3),
("UTC", "2026-01-01T00:00:00Z", "*/5 * * * *", 4),
("UTC", "2026-03-10T10:15:00Z", "0 * * * *", 3),
("UTC", "2026-03-10T10:15:00Z", "15 10 * * *", 2,
 "2026-03-11T10:15:00Z 2026-03-12T10:15:00Z"),
("UTC", "2026-03-10T10:14:59.5Z", "15 10 * * *", 1,
 "2026-03-10T10:15:00Z"),
("UTC", "2026-03-10T10:15:00.000000001Z", "15 10 * * *", 1,
 "2026-03-11T10:15:00Z"),
("UTC", "2026-03-10T15:44:59.999+05:30", "15 10 * * *", 1,
 "2026-03-10T10:15:00Z"),
("UTC", "2026-02-27T12:00:00+05:30", "0 9 * * 1-5", 5),
("UTC", "2026-01-15T00:00:00-08:00", "0 0 1 * *", 3),
("UTC", "2026-01-01T00:00:00Z", "30 4 1,15 * *", 4),
("UTC", "2026-04-01T00:00:00Z", "0 22 * * 1-5", 5),
("UTC", "2026-04-01T00:00:00Z", "23 0-20/2 * * *", 6),
("UTC", "2026-04-01T00:00:00Z", "5 4 * * 0", 3),
("UTC", "2026-04-01T00:00:00Z", "0 0,12 1 */2 *", 4),
("UTC", "2026-04-01T00:00:00Z", "0 4 8-14 * *", 4),
("UTC", "2026-06-01T00:00:00Z", "59 23 31 12 *", 2,
 "2026-12-31T23:59:00Z 2027-12-31T23:59:00Z"),
("UTC", "2026-12-31T23:59:59.5Z", "0 0 1 1 *", 2,
 "2027-01-01T00:00:00Z 2028-01-01T00:00:00Z"),
("UTC", "2026-04-01T07:00:00Z", "1,2,3,58,59 * * * *", 6),
("UTC", "2026-04-01T07:00:00Z", "0  12   *  *  *", 2),
("UTC", "2026-04-01T07:00:00Z", "0 12 * * *", 2),
("UTC", "2026-04-01T07:00:00Z", "0 0 1 1 *", 1),
("UTC", "2026-04-01T07:00:00Z", "0-5 9 * * *", 6),
("UTC", "2026-04-01T07:00:00Z", "0 9-17 * * 1-5", 6),
("UTC", "2026-05-05T05:05:05Z", "5 5 5 5 *", 2,
 "2027-05-05T05:05:00Z 2028-05-05T05:05:00Z"),
("Etc/UTC", "2025-12-31T23:59:59Z", "0 0 1 1 *", 2,
 "2026-01-01T00:00:00Z 2027-01-01T00:00:00Z"),
("Etc/UTC", "2026-07-01T12:00:00+02:00", "*/20 * * * *", 3),
("Etc/UTC", "2026-07-01T12:00:00-07:00", "0 0 * * 1", 2),
"""
2. Ordinary schedules in other zones (no transition near)
""",
(TYO, "2026-01-01T00:00:00Z", "0 9 * * *", 2,
 "2026-01-02T09:00:00+09:00 2026-01-03T09:00:00+09:00"),
(TYO, "2025-12-31T23:59:59Z", "0 9 * * *", 1,
 "2026-01-01T09:00:00+09:00"),
(TYO, "2026-01-01T00:00:00+09:00", "0 0 * * *", 2,
 "2026-01-02T00:00:00+09:00 2026-01-03T00:00:00+09:00"),
(TYO, "2026-06-15T12:30:00+09:00", "*/10 * * * *", 3),
(TYO, "2026-06-15T12:30:00Z", "0 8 * * 1-5", 4),
(TYO, "2026-06-15T12:30:00Z", "0 0 1 * *", 3),
(LON, "2026-01-05T00:00:00Z", "0 12 * * *", 2,
 "2026-01-05T12:00:00+00:00 2026-01-06T12:00:00+00:00"),
(LON, "2026-07-05T00:00:00Z", "0 12 * * *", 2,
 "2026-07-05T12:00:00+01:00 2026-07-06T12:00:00+01:00"),
(LON, "2026-01-05T00:00:00Z", "30 9 * * 1-5", 3),
(BER, "2026-07-01T00:00:00Z", "0 6 * * *", 2,
 "2026-07-01T06:00:00+02:00 2026-07-02T06:00:00+02:00"),
(BER, "2026-01-15T00:00:00Z", "0 6 * * *", 2,
 "2026-01-15T06:00:00+01:00 2026-01-16T06:00:00+01:00"),
(KOL, "2026-03-01T00:00:00Z", "30 9 * * *", 2,
 "2026-03-01T09:30:00+05:30 2026-03-02T09:30:00+05:30"),
(KOL, "2026-03-01T00:00:00Z", "*/15 * * * *", 3),
(KTM, "2026-03-01T00:00:00Z", "0 9 * * *", 2,
 "2026-03-01T09:00:00+05:45 2026-03-02T09:00:00+05:45"),
(KTM, "2026-03-01T00:00:00Z", "0 * * * *", 3,
 "2026-03-01T06:00:00+05:45 2026-03-01T07:00:00+05:45 "
 "2026-03-01T08:00:00+05:45"),
(KTM, "2026-12-31T18:14:00Z", "0 0 1 1 *", 1,
 "2027-01-01T00:00:00+05:45"),
(KIR, "2025-12-31T00:00:00Z", "0 0 1 1 *", 1,
 "2026-01-01T00:00:00+14:00"),
(KIR, "2026-03-01T00:00:00Z", "0 12 * * *", 2),
(KIR, "2026-03-01T00:00:00-10:00", "0 0 * * 1", 2),
(TBU, "2026-03-01T00:00:00Z", "0 12 * * *", 2,
 "2026-03-02T12:00:00+13:00 2026-03-03T12:00:00+13:00"),
(TBU, "2025-12-31T10:59:00Z", "0 0 1 * *", 2,
 "2026-01-01T00:00:00+13:00 2026-02-01T00:00:00+13:00"),
(CHA, "2026-01-10T00:00:00Z", "0 9 * * *", 2,
 "2026-01-11T09:00:00+13:45 2026-01-12T09:00:00+13:45"),
(CHA, "2026-07-10T00:00:00Z", "0 9 * * *", 2,
 "2026-07-11T09:00:00+12:45 2026-07-12T09:00:00+12:45"),
(CHA, "2026-07-10T00:00:00Z", "*/30 * * * *", 3),
(LHI, "2026-01-10T00:00:00Z", "0 9 * * *", 2,
 "2026-01-11T09:00:00+11:00 2026-01-12T09:00:00+11:00"),
(LHI, "2026-07-10T00:00:00Z", "0 9 * * *", 2,
 "2026-07-11T09:00:00+10:30 2026-07-12T09:00:00+10:30"),
(SYD, "2026-07-10T00:00:00Z", "0 9 * * 1-5", 3),
(NFL, "2026-07-10T00:00:00Z", "0 9 * * *", 2,
 "2026-07-10T09:00:00-02:30 2026-07-11T09:00:00-02:30"),
(NFL, "2026-01-10T00:00:00Z", "0 9 * * *", 2,
 "2026-01-10T09:00:00-03:30 2026-01-11T09:00:00-03:30"),
(SAO, "2026-01-10T00:00:00Z", "0 9 * * *", 2,
 "2026-01-10T09:00:00-03:00 2026-01-11T09:00:00-03:00"),
(APIA, "2026-01-10T00:00:00Z", "0 9 * * *", 2,
 "2026-01-11T09:00:00+13:00 2026-01-12T09:00:00+13:00"),
(NY, "2026-07-04T00:00:00Z", "0 12 * * *", 2,
 "2026-07-04T12:00:00-04:00 2026-07-05T12:00:00-04:00"),
(NY, "2026-01-04T00:00:00Z", "0 12 * * *", 2,
 "2026-01-04T12:00:00-05:00 2026-01-05T12:00:00-05:00"),
(NY, "2026-01-04T00:00:00Z", "*/15 9-10 * * 1-5", 4),
"""
3. Steps: */S, N-M/S and N/S (= N through the field's maximum, step S;
   day-of-week's maximum is 7, so `1/2` is Mon, Wed, Fri and Sun).  A step
   may be as large as the field's size: */60 minute is minute 0 only.
""",
("UTC", "2026-01-01T00:50:00Z", "*/7 * * * *", 3,
 "2026-01-01T00:56:00Z 2026-01-01T01:00:00Z 2026-01-01T01:07:00Z"),
("UTC", "2026-01-01T00:00:00Z", "5/15 * * * *", 5,
 "2026-01-01T00:05:00Z 2026-01-01T00:20:00Z 2026-01-01T00:35:00Z "
 "2026-01-01T00:50:00Z 2026-01-01T01:05:00Z"),
("UTC", "2026-01-01T00:00:00Z", "10/20 * * * *", 4),
("UTC", "2026-01-01T00:00:00Z", "0 3/6 * * *", 5,
 "2026-01-01T03:00:00Z 2026-01-01T09:00:00Z 2026-01-01T15:00:00Z "
 "2026-01-01T21:00:00Z 2026-01-02T03:00:00Z"),
("UTC", "2026-01-01T00:00:00Z", "0 0 10/10 * *", 4,
 "2026-01-10T00:00:00Z 2026-01-20T00:00:00Z 2026-01-30T00:00:00Z "
 "2026-02-10T00:00:00Z"),
("UTC", "2026-01-01T00:00:00Z", "0 0 1 2/5 *", 4,
 "2026-02-01T00:00:00Z 2026-07-01T00:00:00Z 2026-12-01T00:00:00Z "
 "2027-02-01T00:00:00Z"),
("UTC", "2026-01-01T00:00:00Z", "0 12 * * 1/2", 6),
("UTC", "2026-01-01T00:00:00Z", "*/60 * * * *", 3,
 "2026-01-01T01:00:00Z 2026-01-01T02:00:00Z 2026-01-01T03:00:00Z"),
("UTC", "2026-01-01T00:00:00Z", "0 0 */31 * *", 3,
 "2026-02-01T00:00:00Z 2026-03-01T00:00:00Z 2026-04-01T00:00:00Z"),
("UTC", "2026-01-01T00:00:00Z", "0 0 1 */12 *", 2,
 "2027-01-01T00:00:00Z 2028-01-01T00:00:00Z"),
("UTC", "2026-01-01T00:00:00Z", "0 12 * * */7", 3),
("UTC", "2026-01-01T00:00:00Z", "0 0-23/6 * * *", 5),
("UTC", "2026-01-01T00:00:00Z", "0 9-17/4 * * 1-5", 6),
("UTC", "2026-01-01T00:00:00Z", "0 0 1-31/10 * *", 5,
 "2026-01-11T00:00:00Z 2026-01-21T00:00:00Z 2026-01-31T00:00:00Z "
 "2026-02-01T00:00:00Z 2026-02-11T00:00:00Z"),
("UTC", "2026-01-30T00:00:00Z", "0 0 * 1-12/4 *", 4),
("UTC", "2026-01-01T00:00:00Z", "*/45 * * * *", 4,
 "2026-01-01T00:45:00Z 2026-01-01T01:00:00Z 2026-01-01T01:45:00Z "
 "2026-01-01T02:00:00Z"),
("UTC", "2026-01-01T00:00:00Z", "0 12 */10 * *", 4),
("UTC", "2026-01-01T00:00:00Z", "0 0 * * MON-FRI/2", 4),
("UTC", "2026-01-01T00:00:00Z", "0 0 1 jan-dec/3 *", 4,
 "2026-04-01T00:00:00Z 2026-07-01T00:00:00Z 2026-10-01T00:00:00Z "
 "2027-01-01T00:00:00Z"),
("UTC", "2026-01-01T00:00:00Z", "0 */24 * * *", 2),
("UTC", "2026-01-01T00:00:00Z", "0 0 * */1 *", 2),
("UTC", "2026-01-01T00:00:00Z", "0 0 * * 0/3", 4),
("UTC", "2026-01-01T00:00:00Z", "59/5 * * * *", 2),
"""
4. Leading zeros
""",
("UTC", "2026-01-01T00:00:00Z", "05 09 * * *", 2,
 "2026-01-01T09:05:00Z 2026-01-02T09:05:00Z"),
("UTC", "2026-01-01T00:00:00Z", "0 0 01 01 *", 1,
 "2027-01-01T00:00:00Z"),
("UTC", "2026-01-01T00:00:00Z", "00 00 * * 07", 2),
("UTC", "2026-01-01T00:00:00Z", "000 0009 * * *", 1),
"""
5. Names: three letters, any case, also in ranges and with a numeric step;
   FRI-SUN (= 5-0), 5-0 and 6-0 wrap to Sunday.
""",
("UTC", "2026-01-01T00:00:00Z", "0 0 1 JAN,JUL *", 3,
 "2026-07-01T00:00:00Z 2027-01-01T00:00:00Z 2027-07-01T00:00:00Z"),
("UTC", "2026-01-01T00:00:00Z", "0 12 * * mon-fri", 6),
("UTC", "2026-01-01T00:00:00Z", "0 12 * * Mon", 3),
("UTC", "2026-01-01T00:00:00Z", "0 0 1 jan-mar *", 4),
("UTC", "2026-01-01T00:00:00Z", "0 8 * * SAT,SUN", 4),
("UTC", "2026-01-01T00:00:00Z", "0 8 * * FRI-SUN", 6,
 "2026-01-02T08:00:00Z 2026-01-03T08:00:00Z 2026-01-04T08:00:00Z "
 "2026-01-09T08:00:00Z 2026-01-10T08:00:00Z 2026-01-11T08:00:00Z"),
("UTC", "2026-01-01T00:00:00Z", "0 8 * * 5-0", 6,
 "2026-01-02T08:00:00Z 2026-01-03T08:00:00Z 2026-01-04T08:00:00Z "
 "2026-01-09T08:00:00Z 2026-01-10T08:00:00Z 2026-01-11T08:00:00Z"),
("UTC", "2026-01-01T00:00:00Z", "0 8 * * 5-7", 6),
("UTC", "2026-01-01T00:00:00Z", "0 8 * * 6-0", 4),
("UTC", "2026-01-01T00:00:00Z", "0 8 * * sat-sun", 4),
("UTC", "2026-01-01T00:00:00Z", "0 0 1 FEB,apr,Jun *", 4),
("UTC", "2026-01-01T00:00:00Z", "0 0 * * wed", 2),
("UTC", "2026-01-01T00:00:00Z", "0 9 25 DEC *", 2),
("UTC", "2026-01-01T00:00:00Z", "0 0 * * SUN", 2),
("UTC", "2026-01-01T00:00:00Z", "0 0 * * 7", 2),
("UTC", "2026-01-01T00:00:00Z", "0 0 * * 0,7", 2),
("UTC", "2026-01-01T00:00:00Z", "0 0 * * tHu", 2),
("UTC", "2026-01-01T00:00:00Z", "0 0 1 nov-DEC *", 3),
(TYO, "2026-01-01T00:00:00Z", "0 7 * * MON,wed,FRI", 6),
"""
6. Day-of-month with day-of-week.  Both restricted: a day matching EITHER
   matches (Vixie cron OR rule).  One of them written starting with '*'
   (`*`, `*/2`, `*/1`): a day must match BOTH.
""",
("UTC", "2021-08-01T00:00:00Z", "0 0 13 * 5", 5,
 "2021-08-06T00:00:00Z 2021-08-13T00:00:00Z 2021-08-20T00:00:00Z "
 "2021-08-27T00:00:00Z 2021-09-03T00:00:00Z"),
("UTC", "2026-02-01T00:00:00Z", "0 0 13 * FRI", 5),
("UTC", "2026-02-01T00:00:00Z", "0 0 1 * MON", 5),
("UTC", "2026-02-01T00:00:00Z", "0 12 1-7 * 1", 9),
("UTC", "2026-02-01T00:00:00Z", "0 0 L * 0", 5),
("UTC", "2026-02-01T00:00:00Z", "0 0 1-31 * MON", 3,
 "2026-02-02T00:00:00Z 2026-02-03T00:00:00Z 2026-02-04T00:00:00Z"),
("UTC", "2026-02-01T00:00:00Z", "0 0 15 * 1-5", 6),
("UTC", "2026-02-01T00:00:00Z", "0 0 1,15 * 3", 5),
("UTC", "2026-02-01T00:00:00Z", "0 0 */2 * MON", 4),
("UTC", "2026-02-01T00:00:00Z", "0 0 */2 * 1", 4),
("UTC", "2026-02-01T00:00:00Z", "0 0 * * MON", 3),
("UTC", "2026-02-01T00:00:00Z", "0 0 13 * */1", 3,
 "2026-02-13T00:00:00Z 2026-03-13T00:00:00Z 2026-04-13T00:00:00Z"),
("UTC", "2026-02-01T00:00:00Z", "0 0 */1 * FRI", 3),
("UTC", "2026-02-01T00:00:00Z", "0 0 1-7 * */2", 4),
("UTC", "2026-02-01T00:00:00Z", "0 0 */2 * 5#2", 3),
("UTC", "2026-02-01T00:00:00Z", "0 0 * * 5L", 3),
("UTC", "2026-02-01T00:00:00Z", "0 0 1 1 MON", 4),
("UTC", "2026-02-01T00:00:00Z", "0 0 1 1 *", 1),
("UTC", "2026-02-01T00:00:00Z", "0 0 */7 * SUN", 3),
("UTC", "2026-02-01T00:00:00Z", "0 0 1-7 * SUN", 4),
"""
7. Leap years and month lengths.  `never`: no date can ever match.
""",
("UTC", "2021-01-01T00:00:00Z", "0 0 29 2 *", 3,
 "2024-02-29T00:00:00Z 2028-02-29T00:00:00Z 2032-02-29T00:00:00Z"),
"""
2100 is not a leap year: from 2096 the next 29 February is in 2104 (in New
York, far past the last TZif transition: the footer rule gives EST).
""",
(NY, "2096-03-01T00:00:00-05:00", "0 0 29 2 *", 2,
 "2104-02-29T00:00:00-05:00 2108-02-29T00:00:00-05:00"),
(TYO, "2024-02-29T00:00:00+09:00", "0 0 29 2 *", 1,
 "2028-02-29T00:00:00+09:00"),
("UTC", "2099-01-01T00:00:00Z", "0 0 L 2 *", 3,
 "2099-02-28T00:00:00Z 2100-02-28T00:00:00Z 2101-02-28T00:00:00Z"),
("UTC", "2027-01-01T00:00:00Z", "0 0 29 2 1", 6),
("UTC", "2027-01-01T00:00:00Z", "0 0 28-29 2 *", 3,
 "2027-02-28T00:00:00Z 2028-02-28T00:00:00Z 2028-02-29T00:00:00Z"),
(BER, "2027-06-01T00:00:00Z", "0 12 29 2 *", 1,
 "2028-02-29T12:00:00+01:00"),
("UTC", "2027-06-01T00:00:00Z", "59 59 23 29 2 *", 1,
 "2028-02-29T23:59:59Z"),
("UTC", "2026-01-01T00:00:00Z", "0 0 31 * *", 5,
 "2026-01-31T00:00:00Z 2026-03-31T00:00:00Z 2026-05-31T00:00:00Z "
 "2026-07-31T00:00:00Z 2026-08-31T00:00:00Z"),
("UTC", "2026-01-31T00:00:00Z", "0 0 30 * *", 3,
 "2026-03-30T00:00:00Z 2026-04-30T00:00:00Z 2026-05-30T00:00:00Z"),
("UTC", "2026-01-01T00:00:00Z", "0 0 31 */2 *", 5,
 "2026-01-31T00:00:00Z 2026-03-31T00:00:00Z 2026-05-31T00:00:00Z "
 "2026-07-31T00:00:00Z 2027-01-31T00:00:00Z"),
("UTC", "2026-01-01T00:00:00Z", "0 0 31 4,6,9,11 *", 1, "never"),
("UTC", "2026-01-01T00:00:00Z", "0 0 30 2 *", 1, "never"),
("UTC", "2026-01-01T00:00:00Z", "0 0 31 2 *", 3, "never"),
("UTC", "2026-01-01T00:00:00Z", "0 0 31 4 *", 1, "never"),
("UTC", "2026-01-01T00:00:00Z", "0 0 30,31 2 *", 1, "never"),
("UTC", "2026-01-01T00:00:00Z", "0 0 31 6 *", 1, "never"),
("UTC", "2026-01-01T00:00:00Z", "* * 31 11 *", 1, "never"),
("UTC", "2026-01-01T00:00:00Z", "0 0 0 30 FEB *", 1, "never"),
("UTC", "2026-01-01T00:00:00Z", "0 0 31W 4,6,9,11 *", 1, "never"),
("UTC", "2026-01-01T00:00:00Z", "0 0 30W 2 *", 1, "never"),
(NY, "2026-01-01T00:00:00Z", "0 0 31 2 *", 1, "never"),
(TYO, "2026-01-01T00:00:00Z", "0 0 30 2 *", 2, "never"),
"""
Restricted day-of-week rescues an impossible day-of-month (OR rule):
""",
("UTC", "2026-01-01T00:00:00Z", "0 0 31 2 1", 4,
 "2026-02-02T00:00:00Z 2026-02-09T00:00:00Z 2026-02-16T00:00:00Z "
 "2026-02-23T00:00:00Z"),
("UTC", "2026-01-01T00:00:00Z", "0 0 30 2 SUN", 2),
"""
8. L, LW and nW in day-of-month.  nW: the weekday nearest day n without
   leaving the month; no match in a month that has no day n.
""",
("UTC", "2026-01-15T00:00:00Z", "0 0 L * *", 4,
 "2026-01-31T00:00:00Z 2026-02-28T00:00:00Z 2026-03-31T00:00:00Z "
 "2026-04-30T00:00:00Z"),
("UTC", "2027-01-01T00:00:00Z", "0 0 L 2 *", 2,
 "2027-02-28T00:00:00Z 2028-02-29T00:00:00Z"),
("UTC", "2026-01-01T00:00:00Z", "0 12 LW * *", 6),
"""
July 2022 ends on Sunday the 31st: LW is Friday the 29th.
""",
("UTC", "2022-07-01T00:00:00Z", "0 0 LW 7 *", 1, "2022-07-29T00:00:00Z"),
("UTC", "2026-01-01T00:00:00Z", "0 0 15W * *", 6),
"""
1W: 2022-01-01 is a Saturday and Friday would be in December, so Monday
the 3rd; February and March 2022 begin on Tuesdays.
""",
("UTC", "2021-12-15T00:00:00Z", "0 0 1W * *", 3,
 "2022-01-03T00:00:00Z 2022-02-01T00:00:00Z 2022-03-01T00:00:00Z"),
("UTC", "2022-09-01T00:00:00Z", "0 0 1W 10 *", 1, "2022-10-03T00:00:00Z"),
("UTC", "2021-04-15T00:00:00Z", "0 0 1W 5 *", 1, "2021-05-03T00:00:00Z"),
"""
31W: 2021-10-31 is a Sunday and Monday would leave the month: Friday the
29th; November has no 31st (no fire); 2021-12-31 is a Friday; 2022-01-31 a
Monday.  2022-12-31 is a Saturday: Friday the 30th.
""",
("UTC", "2021-10-01T00:00:00Z", "0 0 31W * *", 3,
 "2021-10-29T00:00:00Z 2021-12-31T00:00:00Z 2022-01-31T00:00:00Z"),
("UTC", "2022-12-01T00:00:00Z", "0 0 31W 12 *", 1, "2022-12-30T00:00:00Z"),
"""
30W: 2023-04-30 is a Sunday in a 30-day month: Friday the 28th.  2021-05-30
is a Sunday in a 31-day month: Monday the 31st.  February never matches.
""",
("UTC", "2023-04-01T00:00:00Z", "0 0 30W * *", 3,
 "2023-04-28T00:00:00Z 2023-05-30T00:00:00Z 2023-06-30T00:00:00Z"),
("UTC", "2021-05-01T00:00:00Z", "0 0 30W 5 *", 1, "2021-05-31T00:00:00Z"),
("UTC", "2024-01-01T00:00:00Z", "0 0 30W 1-3 *", 2,
 "2024-01-30T00:00:00Z 2024-03-29T00:00:00Z"),
"""
15W: 2021-05-15 is a Saturday (Friday 14th), 2021-08-15 a Sunday (Monday
16th).  2W: 2021-10-02 is a Saturday (Friday the 1st).
""",
("UTC", "2021-05-01T00:00:00Z", "0 0 15W 5 *", 1, "2021-05-14T00:00:00Z"),
("UTC", "2021-08-01T00:00:00Z", "0 0 15W 8 *", 1, "2021-08-16T00:00:00Z"),
("UTC", "2021-10-01T12:00:00Z", "0 0 2W 10 *", 1, "2022-10-03T00:00:00Z"),
("UTC", "2021-09-30T12:00:00Z", "0 0 2W 10 *", 1, "2021-10-01T00:00:00Z"),
("UTC", "2026-01-01T00:00:00Z", "0 0 1,15,L * *", 6),
("UTC", "2026-01-01T00:00:00Z", "0 0 L,LW * *", 4),
("UTC", "2026-01-01T00:00:00Z", "0 0 LW,1W * *", 4),
("UTC", "2026-01-01T00:00:00Z", "0 0 5W 1-3 *", 3),
("UTC", "2026-01-01T00:00:00Z", "0 0 L * 5", 6),
("UTC", "2026-01-01T00:00:00Z", "0 0 15W,L * *", 4),
("UTC", "2026-01-01T00:00:00Z", "0 0 10-12,LW * *", 6),
(TYO, "2026-01-01T00:00:00Z", "0 18 LW * *", 3),
(NY, "2026-01-01T00:00:00Z", "0 0 L * *", 3),
"""
9. n#k and nL in day-of-week (0 and 7 are both Sunday; names allowed).
""",
("UTC", "2026-01-01T00:00:00Z", "0 0 * * 1#1", 4),
("UTC", "2026-01-01T00:00:00Z", "0 0 * * MON#2", 3),
("UTC", "2026-01-01T00:00:00Z", "0 0 * * 5#5", 4),
("UTC", "2026-01-01T00:00:00Z", "0 0 * * 0#5", 3),
("UTC", "2026-01-01T00:00:00Z", "0 0 * * 7#1", 3),
("UTC", "2026-01-01T00:00:00Z", "0 0 * * 0#1", 3),
("UTC", "2026-01-01T00:00:00Z", "0 0 * * 1#1,5L", 6),
("UTC", "2026-01-01T00:00:00Z", "0 0 * * 0L", 3),
("UTC", "2026-01-01T00:00:00Z", "0 0 * * 7L", 3),
("UTC", "2026-01-01T00:00:00Z", "0 0 * * FRIL", 3),
("UTC", "2026-01-01T00:00:00Z", "0 0 1 * 5L", 6),
("UTC", "2026-01-01T00:00:00Z", "0 10 * * 2#3", 3),
("UTC", "2026-01-01T00:00:00Z", "0 0 * * 1#5,1L", 4),
("UTC", "2026-01-01T00:00:00Z", "0 0 * * mon#1", 2),
("UTC", "2026-01-01T00:00:00Z", "0 0 * * 3#4,3L", 6),
("UTC", "2026-01-01T00:00:00Z", "0 0 * * 6#1,SUN#1", 4),
"""
A fifth Thursday in February needs a leap year whose 1 February is a
Thursday: 2024, then 2052.
""",
("UTC", "2020-01-01T00:00:00Z", "0 0 * 2 4#5", 2,
 "2024-02-29T00:00:00Z 2052-02-29T00:00:00Z"),
("UTC", "2020-01-01T00:00:00Z", "0 0 * 2 SUN#5", 2),
(BER, "2026-01-01T00:00:00Z", "0 9 * * MON#1", 3),
(TYO, "2026-01-01T00:00:00Z", "30 17 * * 5L", 3),
"""
10. Macros (lowercase only) and their expansions side by side.
""",
("UTC", "2026-03-10T10:15:00Z", "@yearly", 2,
 "2027-01-01T00:00:00Z 2028-01-01T00:00:00Z"),
("UTC", "2026-03-10T10:15:00Z", "@annually", 2,
 "2027-01-01T00:00:00Z 2028-01-01T00:00:00Z"),
("UTC", "2026-03-10T10:15:00Z", "@monthly", 2,
 "2026-04-01T00:00:00Z 2026-05-01T00:00:00Z"),
("UTC", "2026-03-10T10:15:00Z", "@weekly", 2,
 "2026-03-15T00:00:00Z 2026-03-22T00:00:00Z"),
("UTC", "2026-03-10T10:15:00Z", "@daily", 2,
 "2026-03-11T00:00:00Z 2026-03-12T00:00:00Z"),
("UTC", "2026-03-10T10:15:00Z", "@midnight", 2,
 "2026-03-11T00:00:00Z 2026-03-12T00:00:00Z"),
("UTC", "2026-03-10T10:15:00Z", "@hourly", 2,
 "2026-03-10T11:00:00Z 2026-03-10T12:00:00Z"),
(TYO, "2026-03-10T10:15:00Z", "@daily", 2,
 "2026-03-11T00:00:00+09:00 2026-03-12T00:00:00+09:00"),
(TYO, "2026-12-31T15:00:00Z", "@yearly", 1,
 "2028-01-01T00:00:00+09:00"),
(KTM, "2026-03-10T10:15:00Z", "@hourly", 2,
 "2026-03-10T17:00:00+05:45 2026-03-10T18:00:00+05:45"),
(CHA, "2026-03-10T10:15:00Z", "@weekly", 2),
(BER, "2026-03-10T10:15:00Z", "@monthly", 3),
(NY, "2026-03-10T10:15:00Z", "@midnight", 2),
"""
11. @every D: instants that are whole multiples of D since
    1970-01-01T00:00:00Z, strictly after FROM, whatever the zone.  Units ms
    s m h d, combinable; at least 1s and a whole number of seconds.
""",
("UTC", "2026-01-01T00:00:00.5Z", "@every 1s", 3,
 "2026-01-01T00:00:01Z 2026-01-01T00:00:02Z 2026-01-01T00:00:03Z"),
("UTC", "2026-01-01T00:00:00Z", "@every 45s", 3,
 "2026-01-01T00:00:45Z 2026-01-01T00:01:30Z 2026-01-01T00:02:15Z"),
("UTC", "2026-01-01T00:02:00Z", "@every 5m", 3,
 "2026-01-01T00:05:00Z 2026-01-01T00:10:00Z 2026-01-01T00:15:00Z"),
("UTC", "2026-01-01T00:00:00Z", "@every 90m", 3,
 "2026-01-01T01:30:00Z 2026-01-01T03:00:00Z 2026-01-01T04:30:00Z"),
("UTC", "2026-01-01T00:00:00Z", "@every 1h30m", 3,
 "2026-01-01T01:30:00Z 2026-01-01T03:00:00Z 2026-01-01T04:30:00Z"),
("UTC", "2026-01-01T00:00:00Z", "@every 2h", 2,
 "2026-01-01T02:00:00Z 2026-01-01T04:00:00Z"),
("UTC", "2026-01-01T00:00:00Z", "@every 1d", 2,
 "2026-01-02T00:00:00Z 2026-01-03T00:00:00Z"),
"""
1970-01-01 was a Thursday, so 7d multiples fall on Thursdays at 00:00Z.
""",
("UTC", "2026-01-02T00:00:00Z", "@every 7d", 2,
 "2026-01-08T00:00:00Z 2026-01-15T00:00:00Z"),
("UTC", "2026-01-01T00:00:00Z", "@every 36h", 3),
("UTC", "2026-01-01T00:00:00Z", "@every 2000ms", 2,
 "2026-01-01T00:00:02Z 2026-01-01T00:00:04Z"),
("UTC", "2026-01-01T00:00:00Z", "@every 1m30s", 2,
 "2026-01-01T00:01:30Z 2026-01-01T00:03:00Z"),
("UTC", "2026-01-01T00:00:00Z", "@every 1d12h", 2),
("UTC", "2026-01-01T00:00:00Z", "@every 7s", 3),
("UTC", "2026-01-01T00:00:00Z", "@every 13m", 3),
("UTC", "2026-01-01T00:00:00Z", "@every 1000s", 2),
("UTC", "2026-01-01T00:00:00Z", "@every 1h0m1s", 2),
("UTC", "2026-01-01T00:00:00Z", "@every 36500d", 2),
("UTC", "2026-01-01T00:00:00Z", "@every 1h1h", 1, "2026-01-01T02:00:00Z"),
("UTC", "2026-01-01T00:00:00Z", "@every 60m", 2,
 "2026-01-01T01:00:00Z 2026-01-01T02:00:00Z"),
(KTM, "2026-03-01T00:00:00Z", "@every 1h", 2,
 "2026-03-01T06:45:00+05:45 2026-03-01T07:45:00+05:45"),
(CHA, "2026-01-10T00:00:00Z", "@every 1d", 2,
 "2026-01-11T13:45:00+13:45 2026-01-12T13:45:00+13:45"),
(LHI, "2026-01-10T00:00:00Z", "@every 6h", 3),
(NFL, "2026-01-10T00:00:00Z", "@every 45m", 3),
"""
@every ignores daylight saving: New York, 2021-03-14 and 2021-11-07
(zdump: 07:00:00 UT = 03:00:00 EDT; 06:00:00 UT = 01:00:00 EST).
""",
(NY, "2021-03-14T00:30:00-05:00", "@every 1h", 4,
 "2021-03-14T01:00:00-05:00 2021-03-14T03:00:00-04:00 "
 "2021-03-14T04:00:00-04:00 2021-03-14T05:00:00-04:00"),
(NY, "2021-11-07T01:00:00-04:00", "@every 30m", 4,
 "2021-11-07T01:30:00-04:00 2021-11-07T01:00:00-05:00 "
 "2021-11-07T01:30:00-05:00 2021-11-07T02:00:00-05:00"),
"""
12. Six fields: second minute hour day-of-month month day-of-week.
""",
("UTC", "2026-01-01T00:00:50Z", "*/15 * * * * *", 5,
 "2026-01-01T00:01:00Z 2026-01-01T00:01:15Z 2026-01-01T00:01:30Z "
 "2026-01-01T00:01:45Z 2026-01-01T00:02:00Z"),
("UTC", "2026-01-01T00:00:00Z", "30 0 12 * * *", 2,
 "2026-01-01T12:00:30Z 2026-01-02T12:00:30Z"),
("UTC", "2026-01-01T00:00:00Z", "0 0 0 1 1 *", 2,
 "2027-01-01T00:00:00Z 2028-01-01T00:00:00Z"),
("UTC", "2026-01-01T00:00:00Z", "59 59 23 31 12 *", 2,
 "2026-12-31T23:59:59Z 2027-12-31T23:59:59Z"),
("UTC", "2026-01-01T00:00:00.5Z", "* * * * * *", 3,
 "2026-01-01T00:00:01Z 2026-01-01T00:00:02Z 2026-01-01T00:00:03Z"),
("UTC", "2025-12-31T23:59:58.75Z", "* * * * * *", 3,
 "2025-12-31T23:59:59Z 2026-01-01T00:00:00Z 2026-01-01T00:00:01Z"),
("UTC", "2026-01-01T00:00:00Z", "10-20/5 * * * * *", 4,
 "2026-01-01T00:00:10Z 2026-01-01T00:00:15Z 2026-01-01T00:00:20Z "
 "2026-01-01T00:01:10Z"),
("UTC", "2026-01-01T00:00:00Z", "0 */2 * * * *", 3),
("UTC", "2026-01-01T00:00:00Z", "5/20 * * * * *", 4),
("UTC", "2026-01-01T00:00:00Z", "0,30 * * * * *", 3),
("UTC", "2026-01-01T00:00:00Z", "0 0 0 L * *", 2),
("UTC", "2026-01-01T00:00:00Z", "0 0 9 * * MON#1", 2),
("UTC", "2026-01-01T00:00:00Z", "15 30 9 * * 1-5", 3),
("UTC", "2026-01-01T00:00:00Z", "*/1 0 0 1 1 *", 3),
(KTM, "2026-01-01T00:00:00Z", "45 59 23 * * *", 2),
(TYO, "2026-01-01T00:00:00Z", "0 0 0 * * *", 1,
 "2026-01-02T00:00:00+09:00"),
"""
2^31 seconds after the epoch is 2038-01-19T03:14:08Z.
""",
("UTC", "2038-01-19T03:14:06Z", "* * * * * *", 3,
 "2038-01-19T03:14:07Z 2038-01-19T03:14:08Z 2038-01-19T03:14:09Z"),
("UTC", "2038-01-19T03:00:00Z", "0 0 4 * * *", 1,
 "2038-01-19T04:00:00Z"),
"""
13. Years far past 2038: DST instants come from the TZif footer rule
    (America/New_York: EST5EDT,M3.2.0,M11.1.0).
zdump -v -c 2040,2041 America/New_York:
  Sun Mar 11 06:59:59 2040 UT = Sun Mar 11 01:59:59 2040 EST gmtoff=-18000
  Sun Mar 11 07:00:00 2040 UT = Sun Mar 11 03:00:00 2040 EDT gmtoff=-14400
  Sun Nov  4 05:59:59 2040 UT = Sun Nov  4 01:59:59 2040 EDT gmtoff=-14400
  Sun Nov  4 06:00:00 2040 UT = Sun Nov  4 01:00:00 2040 EST gmtoff=-18000
""",
(NY, "2040-03-10T12:00:00Z", "30 2 * * *", 2,
 "2040-03-11T03:00:00-04:00 2040-03-12T02:30:00-04:00"),
(NY, "2040-11-03T12:00:00Z", "30 1 * * *", 2,
 "2040-11-04T01:30:00-04:00 2040-11-05T01:30:00-05:00"),
(NY, "2040-11-04T00:45:00-04:00", "*/30 * * * *", 5,
 "2040-11-04T01:00:00-04:00 2040-11-04T01:30:00-04:00 "
 "2040-11-04T01:00:00-05:00 2040-11-04T01:30:00-05:00 "
 "2040-11-04T02:00:00-05:00"),
(NY, "2040-07-04T00:00:00Z", "0 12 * * *", 1, "2040-07-04T12:00:00-04:00"),
"""
zdump -v -c 2100,2101 America/New_York:
  Sun Mar 14 06:59:59 2100 UT = Sun Mar 14 01:59:59 2100 EST gmtoff=-18000
  Sun Mar 14 07:00:00 2100 UT = Sun Mar 14 03:00:00 2100 EDT gmtoff=-14400
  Sun Nov  7 05:59:59 2100 UT = Sun Nov  7 01:59:59 2100 EDT gmtoff=-14400
  Sun Nov  7 06:00:00 2100 UT = Sun Nov  7 01:00:00 2100 EST gmtoff=-18000
""",
(NY, "2100-03-13T12:00:00Z", "30 2 * * *", 2,
 "2100-03-14T03:00:00-04:00 2100-03-15T02:30:00-04:00"),
(NY, "2100-03-14T01:00:00-05:00", "*/30 * * * *", 3,
 "2100-03-14T01:30:00-05:00 2100-03-14T03:00:00-04:00 "
 "2100-03-14T03:30:00-04:00"),
(NY, "2100-11-06T12:00:00Z", "30 1 * * *", 2,
 "2100-11-07T01:30:00-04:00 2100-11-08T01:30:00-05:00"),
(NY, "2100-11-07T00:45:00-04:00", "*/30 * * * *", 5,
 "2100-11-07T01:00:00-04:00 2100-11-07T01:30:00-04:00 "
 "2100-11-07T01:00:00-05:00 2100-11-07T01:30:00-05:00 "
 "2100-11-07T02:00:00-05:00"),
(NY, "2099-12-31T23:59:59-05:00", "@yearly", 2,
 "2100-01-01T00:00:00-05:00 2101-01-01T00:00:00-05:00"),
(NY, "2150-06-01T00:00:00Z", "0 9 * * 1", 2),
(BER, "2060-03-27T00:00:00Z", "30 2 * * *", 3),
(BER, "2060-10-30T00:00:00Z", "30 2 * * *", 3),
(LON, "2099-10-24T00:00:00Z", "30 1 * * *", 3),
(SYD, "2050-09-30T00:00:00Z", "30 2 * * *", 4),
(TYO, "2080-01-01T00:00:00Z", "0 0 1 1 *", 1, "2081-01-01T00:00:00+09:00"),
("UTC", "2099-12-31T00:00:00Z", "0 0 1 1 *", 2,
 "2100-01-01T00:00:00Z 2101-01-01T00:00:00Z"),
("UTC", "2199-06-01T00:00:00Z", "0 0 1 1 *", 1, "2200-01-01T00:00:00Z"),
"""
14. America/New_York, spring forward 2021-03-14 (local 02:00-02:59 skipped).
zdump -v -c 2021,2022 America/New_York:
  Sun Mar 14 06:59:59 2021 UT = Sun Mar 14 01:59:59 2021 EST gmtoff=-18000
  Sun Mar 14 07:00:00 2021 UT = Sun Mar 14 03:00:00 2021 EDT gmtoff=-14400
Fixed-time 30 2: the skipped 02:30 fires at the transition, 03:00-04:00.
""",
(NY, "2021-03-13T12:00:00Z", "30 2 * * *", 3,
 "2021-03-14T03:00:00-04:00 2021-03-15T02:30:00-04:00 "
 "2021-03-16T02:30:00-04:00"),
(NY, "2021-03-14T01:59:59.5-05:00", "30 2 * * *", 2,
 "2021-03-14T03:00:00-04:00 2021-03-15T02:30:00-04:00"),
"""
FROM exactly at the transition: the gap fire is not strictly after it.
""",
(NY, "2021-03-14T03:00:00-04:00", "30 2 * * *", 1,
 "2021-03-15T02:30:00-04:00"),
(NY, "2021-03-14T06:59:59Z", "0 2 * * *", 1, "2021-03-14T03:00:00-04:00"),
"""
Wildcard schedules skip the missing hour.
""",
(NY, "2021-03-14T01:00:00-05:00", "*/30 * * * *", 4,
 "2021-03-14T01:30:00-05:00 2021-03-14T03:00:00-04:00 "
 "2021-03-14T03:30:00-04:00 2021-03-14T04:00:00-04:00"),
(NY, "2021-03-14T00:30:00-05:00", "0 * * * *", 3,
 "2021-03-14T01:00:00-05:00 2021-03-14T03:00:00-04:00 "
 "2021-03-14T04:00:00-04:00"),
(NY, "2021-03-14T01:30:00-05:00", "@hourly", 2,
 "2021-03-14T03:00:00-04:00 2021-03-14T04:00:00-04:00"),
(NY, "2021-03-14T00:00:00-05:00", "* 2 * * *", 2,
 "2021-03-15T02:00:00-04:00 2021-03-15T02:01:00-04:00"),
(NY, "2021-03-14T00:00:00-05:00", "*/15 2 * * *", 1,
 "2021-03-15T02:00:00-04:00"),
(NY, "2021-03-14T01:58:00-05:00", "* * * * *", 3,
 "2021-03-14T01:59:00-05:00 2021-03-14T03:00:00-04:00 "
 "2021-03-14T03:01:00-04:00"),
(NY, "2021-03-14T01:00:00-05:00", "0 */30 * * * *", 3,
 "2021-03-14T01:30:00-05:00 2021-03-14T03:00:00-04:00 "
 "2021-03-14T03:30:00-04:00"),
(NY, "2021-03-14T01:29:58-05:00", "30 */1 * * *", 3,
 "2021-03-14T01:30:00-05:00 2021-03-14T03:30:00-04:00 "
 "2021-03-14T04:30:00-04:00"),
"""
Several skipped matches merge into one fire (02:00 02:15 02:30 02:45 -> 03:00).
""",
(NY, "2021-03-14T00:00:00-05:00", "0,15,30,45 2 * * *", 3,
 "2021-03-14T03:00:00-04:00 2021-03-15T02:00:00-04:00 "
 "2021-03-15T02:15:00-04:00"),
"""
`0-59 2` is fixed-time (neither field begins with '*'): 60 skipped matches,
one fire.
""",
(NY, "2021-03-14T01:00:00-05:00", "0-59 2 * * *", 2,
 "2021-03-14T03:00:00-04:00 2021-03-15T02:00:00-04:00"),
"""
The gap fire (for 02:00) and the real 03:00 match are the same instant:
one fire.
""",
(NY, "2021-03-14T00:00:00-05:00", "0 2,3 * * *", 3,
 "2021-03-14T03:00:00-04:00 2021-03-15T02:00:00-04:00 "
 "2021-03-15T03:00:00-04:00"),
(NY, "2021-03-14T00:00:00-05:00", "0 1-3 * * *", 4,
 "2021-03-14T01:00:00-05:00 2021-03-14T03:00:00-04:00 "
 "2021-03-15T01:00:00-04:00 2021-03-15T02:00:00-04:00"),
(NY, "2021-03-14T00:00:00-05:00", "0,30 2,3 * * *", 3,
 "2021-03-14T03:00:00-04:00 2021-03-14T03:30:00-04:00 "
 "2021-03-15T02:00:00-04:00"),
"""
Six fields: the seconds field does not make a schedule wildcard.  `*/20 30
2` is fixed-time; its three skipped matches fire once at 03:00:00.
""",
(NY, "2021-03-14T00:00:00-05:00", "*/20 30 2 * * *", 4,
 "2021-03-14T03:00:00-04:00 2021-03-15T02:30:00-04:00 "
 "2021-03-15T02:30:20-04:00 2021-03-15T02:30:40-04:00"),
(NY, "2021-03-14T00:00:00-05:00", "* * 2 * * *", 1,
 "2021-03-15T02:00:00-04:00"),
"""
Day-restricted: 14 March is in the gap only in 2021.
""",
(NY, "2021-01-01T00:00:00Z", "0 2 14 3 *", 2,
 "2021-03-14T03:00:00-04:00 2022-03-14T02:00:00-04:00"),
(NY, "2021-01-01T00:00:00Z", "*/15 2 14 3 *", 2,
 "2022-03-14T02:00:00-04:00 2022-03-14T02:15:00-04:00"),
(NY, "2021-03-07T12:00:00Z", "0 2 * * SUN", 2,
 "2021-03-14T03:00:00-04:00 2021-03-21T02:00:00-04:00"),
(NY, "2021-03-13T12:00:00Z", "@daily", 2,
 "2021-03-14T00:00:00-05:00 2021-03-15T00:00:00-04:00"),
"""
15. America/New_York, fall back 2021-11-07 (local 01:00-01:59 twice).
zdump -v -c 2021,2022 America/New_York:
  Sun Nov  7 05:59:59 2021 UT = Sun Nov  7 01:59:59 2021 EDT gmtoff=-14400
  Sun Nov  7 06:00:00 2021 UT = Sun Nov  7 01:00:00 2021 EST gmtoff=-18000
Fixed-time 30 1: the first 01:30 (EDT) only.
""",
(NY, "2021-11-06T12:00:00Z", "30 1 * * *", 3,
 "2021-11-07T01:30:00-04:00 2021-11-08T01:30:00-05:00 "
 "2021-11-09T01:30:00-05:00"),
"""
FROM inside the second pass (01:00 EST): the first 01:30 is past, the
second does not fire, so the next is the following day.
""",
(NY, "2021-11-07T06:00:00Z", "30 1 * * *", 1, "2021-11-08T01:30:00-05:00"),
(NY, "2021-11-07T01:45:00-04:00", "30 1 * * *", 1,
 "2021-11-08T01:30:00-05:00"),
(NY, "2021-11-07T01:29:59.5-04:00", "30 1 * * *", 1,
 "2021-11-07T01:30:00-04:00"),
"""
Wildcard schedules fire on both passes.
""",
(NY, "2021-11-07T00:45:00-04:00", "*/30 * * * *", 6,
 "2021-11-07T01:00:00-04:00 2021-11-07T01:30:00-04:00 "
 "2021-11-07T01:00:00-05:00 2021-11-07T01:30:00-05:00 "
 "2021-11-07T02:00:00-05:00 2021-11-07T02:30:00-05:00"),
(NY, "2021-11-07T00:00:00-04:00", "0 * * * *", 4,
 "2021-11-07T01:00:00-04:00 2021-11-07T01:00:00-05:00 "
 "2021-11-07T02:00:00-05:00 2021-11-07T03:00:00-05:00"),
(NY, "2021-11-07T01:59:00-04:00", "* 1 * * *", 3,
 "2021-11-07T01:00:00-05:00 2021-11-07T01:01:00-05:00 "
 "2021-11-07T01:02:00-05:00"),
(NY, "2021-11-07T01:40:00-05:00", "*/20 1 * * *", 2,
 "2021-11-08T01:00:00-05:00 2021-11-08T01:20:00-05:00"),
(NY, "2021-11-07T00:30:00-04:00", "@hourly", 3,
 "2021-11-07T01:00:00-04:00 2021-11-07T01:00:00-05:00 "
 "2021-11-07T02:00:00-05:00"),
(NY, "2021-11-07T00:00:00-04:00", "0 1-3 * * *", 4,
 "2021-11-07T01:00:00-04:00 2021-11-07T02:00:00-05:00 "
 "2021-11-07T03:00:00-05:00 2021-11-08T01:00:00-05:00"),
(NY, "2021-11-07T00:00:00-04:00", "*/20 30 1 * * *", 4,
 "2021-11-07T01:30:00-04:00 2021-11-07T01:30:20-04:00 "
 "2021-11-07T01:30:40-04:00 2021-11-08T01:30:00-05:00"),
(NY, "2021-11-07T01:56:30-04:00", "0-59 1 * * *", 6,
 "2021-11-07T01:57:00-04:00 2021-11-07T01:58:00-04:00 "
 "2021-11-07T01:59:00-04:00 2021-11-08T01:00:00-05:00 "
 "2021-11-08T01:01:00-05:00 2021-11-08T01:02:00-05:00"),
(NY, "2021-11-07T00:00:00-04:00", "0,30 1 * * *", 3,
 "2021-11-07T01:00:00-04:00 2021-11-07T01:30:00-04:00 "
 "2021-11-08T01:00:00-05:00"),
(NY, "2021-11-06T23:00:00-04:00", "0 0-2 7 11 *", 3,
 "2021-11-07T00:00:00-04:00 2021-11-07T01:00:00-04:00 "
 "2021-11-07T02:00:00-05:00"),
(NY, "2021-11-07T01:00:00-04:00", "0 1 * * *", 1,
 "2021-11-08T01:00:00-05:00"),
"""
16. Europe/Berlin 2021: gap 02:00-02:59 on 28 March, fold 02:00-02:59 on
31 October.
zdump -v -c 2021,2022 Europe/Berlin:
  Sun Mar 28 00:59:59 2021 UT = Sun Mar 28 01:59:59 2021 CET gmtoff=3600
  Sun Mar 28 01:00:00 2021 UT = Sun Mar 28 03:00:00 2021 CEST gmtoff=7200
  Sun Oct 31 00:59:59 2021 UT = Sun Oct 31 02:59:59 2021 CEST gmtoff=7200
  Sun Oct 31 01:00:00 2021 UT = Sun Oct 31 02:00:00 2021 CET gmtoff=3600
""",
(BER, "2021-03-27T12:00:00Z", "30 2 * * *", 2,
 "2021-03-28T03:00:00+02:00 2021-03-29T02:30:00+02:00"),
(BER, "2021-10-30T12:00:00Z", "30 2 * * *", 2,
 "2021-10-31T02:30:00+02:00 2021-11-01T02:30:00+01:00"),
(BER, "2021-10-31T01:15:00Z", "30 2 * * *", 1,
 "2021-11-01T02:30:00+01:00"),
(BER, "2021-10-31T01:45:00+02:00", "*/30 * * * *", 5,
 "2021-10-31T02:00:00+02:00 2021-10-31T02:30:00+02:00 "
 "2021-10-31T02:00:00+01:00 2021-10-31T02:30:00+01:00 "
 "2021-10-31T03:00:00+01:00"),
(BER, "2021-03-28T01:15:00+01:00", "*/30 * * * *", 3,
 "2021-03-28T01:30:00+01:00 2021-03-28T03:00:00+02:00 "
 "2021-03-28T03:30:00+02:00"),
(BER, "2021-03-21T12:00:00Z", "0 2 * * 0", 2,
 "2021-03-28T03:00:00+02:00 2021-04-04T02:00:00+02:00"),
(BER, "2021-03-28T00:00:00+01:00", "0 3 * * *", 1,
 "2021-03-28T03:00:00+02:00"),
(BER, "2021-03-28T00:00:00+01:00", "0 2,3 * * *", 2,
 "2021-03-28T03:00:00+02:00 2021-03-29T02:00:00+02:00"),
(BER, "2021-03-28T00:00:00+01:00", "0 2 * * *", 1,
 "2021-03-28T03:00:00+02:00"),
(BER, "2021-10-31T00:00:00+02:00", "0 2 * * *", 2,
 "2021-10-31T02:00:00+02:00 2021-11-01T02:00:00+01:00"),
(BER, "2021-10-31T00:00:00+02:00", "0 * * * *", 4,
 "2021-10-31T01:00:00+02:00 2021-10-31T02:00:00+02:00 "
 "2021-10-31T02:00:00+01:00 2021-10-31T03:00:00+01:00"),
(BER, "2021-10-31T02:59:59+02:00", "* * * * * *", 2,
 "2021-10-31T02:00:00+01:00 2021-10-31T02:00:01+01:00"),
(BER, "2021-03-28T01:59:58+01:00", "* * * * * *", 2,
 "2021-03-28T01:59:59+01:00 2021-03-28T03:00:00+02:00"),
(BER, "2021-03-28T01:59:58+01:00", "* * 2 * * *", 1,
 "2021-03-29T02:00:00+02:00"),
(BER, "2021-03-28T01:59:58+01:00", "0 0 2 * * *", 1,
 "2021-03-28T03:00:00+02:00"),
"""
17. Europe/London 2021: gap 01:00-01:59 on 28 March, fold 01:00-01:59 on
31 October; winter offset printed +00:00.
zdump -v -c 2021,2022 Europe/London:
  Sun Mar 28 00:59:59 2021 UT = Sun Mar 28 00:59:59 2021 GMT gmtoff=0
  Sun Mar 28 01:00:00 2021 UT = Sun Mar 28 02:00:00 2021 BST gmtoff=3600
  Sun Oct 31 00:59:59 2021 UT = Sun Oct 31 01:59:59 2021 BST gmtoff=3600
  Sun Oct 31 01:00:00 2021 UT = Sun Oct 31 01:00:00 2021 GMT gmtoff=0
""",
(LON, "2021-03-27T12:00:00Z", "30 1 * * *", 2,
 "2021-03-28T02:00:00+01:00 2021-03-29T01:30:00+01:00"),
(LON, "2021-10-30T12:00:00Z", "30 1 * * *", 2,
 "2021-10-31T01:30:00+01:00 2021-11-01T01:30:00+00:00"),
(LON, "2021-10-31T00:30:00+01:00", "0 * * * *", 4,
 "2021-10-31T01:00:00+01:00 2021-10-31T01:00:00+00:00 "
 "2021-10-31T02:00:00+00:00 2021-10-31T03:00:00+00:00"),
(LON, "2021-03-28T00:00:00Z", "*/30 * * * *", 3,
 "2021-03-28T00:30:00+00:00 2021-03-28T02:00:00+01:00 "
 "2021-03-28T02:30:00+01:00"),
(LON, "2021-03-27T12:00:00Z", "0 1 * * *", 2,
 "2021-03-28T02:00:00+01:00 2021-03-29T01:00:00+01:00"),
(LON, "2021-03-27T12:00:00Z", "0 1,2 * * *", 3,
 "2021-03-28T02:00:00+01:00 2021-03-29T01:00:00+01:00 "
 "2021-03-29T02:00:00+01:00"),
(LON, "2021-10-31T01:00:00Z", "0 1 * * *", 1,
 "2021-11-01T01:00:00+00:00"),
"""
18. Australia/Lord_Howe: 30-minute shifts.  April: 02:00 (+11) back to
01:30 (+10:30), so 01:30-01:59 twice.  October: 02:00 (+10:30) forward to
02:30 (+11), so 02:00-02:29 skipped.
zdump -v -c 2021,2022 Australia/Lord_Howe:
  Sat Apr  3 14:59:59 2021 UT = Sun Apr  4 01:59:59 2021 +11 gmtoff=39600
  Sat Apr  3 15:00:00 2021 UT = Sun Apr  4 01:30:00 2021 +1030 gmtoff=37800
  Sat Oct  2 15:29:59 2021 UT = Sun Oct  3 01:59:59 2021 +1030 gmtoff=37800
  Sat Oct  2 15:30:00 2021 UT = Sun Oct  3 02:30:00 2021 +11 gmtoff=39600
""",
(LHI, "2021-10-02T12:00:00+10:30", "15 2 * * *", 2,
 "2021-10-03T02:30:00+11:00 2021-10-04T02:15:00+11:00"),
(LHI, "2021-10-02T12:00:00+10:30", "0 2 * * *", 2,
 "2021-10-03T02:30:00+11:00 2021-10-04T02:00:00+11:00"),
"""
02:00 skipped -> 02:30 transition, which is also the real 02:30: one fire.
""",
(LHI, "2021-10-02T12:00:00+10:30", "0,30 2 * * *", 3,
 "2021-10-03T02:30:00+11:00 2021-10-04T02:00:00+11:00 "
 "2021-10-04T02:30:00+11:00"),
(LHI, "2021-10-03T01:40:00+10:30", "*/15 * * * *", 3,
 "2021-10-03T01:45:00+10:30 2021-10-03T02:30:00+11:00 "
 "2021-10-03T02:45:00+11:00"),
(LHI, "2021-10-03T01:40:00+10:30", "*/20 2 * * *", 2,
 "2021-10-03T02:40:00+11:00 2021-10-04T02:00:00+11:00"),
(LHI, "2021-10-03T00:00:00+10:30", "10,20 2 * * *", 2,
 "2021-10-03T02:30:00+11:00 2021-10-04T02:10:00+11:00"),
(LHI, "2021-04-03T12:00:00+11:00", "45 1 * * *", 2,
 "2021-04-04T01:45:00+11:00 2021-04-05T01:45:00+10:30"),
(LHI, "2021-04-04T01:10:00+11:00", "*/15 * * * *", 6,
 "2021-04-04T01:15:00+11:00 2021-04-04T01:30:00+11:00 "
 "2021-04-04T01:45:00+11:00 2021-04-04T01:30:00+10:30 "
 "2021-04-04T01:45:00+10:30 2021-04-04T02:00:00+10:30"),
"""
02:00 does not repeat (01:59:59 +11 is followed by 01:30 +10:30): it
occurs once, at +10:30.
""",
(LHI, "2021-04-03T14:00:00Z", "0 2 * * *", 1, "2021-04-04T02:00:00+10:30"),
(LHI, "2021-04-03T13:00:00Z", "0 1 * * *", 2,
 "2021-04-04T01:00:00+11:00 2021-04-05T01:00:00+10:30"),
(LHI, "2021-04-04T01:35:00+10:30", "40 1 * * *", 1,
 "2021-04-05T01:40:00+10:30"),
"""
19. Pacific/Chatham, +12:45 / +13:45; the shifts happen at 02:45 local
standard time.
zdump -v -c 2021,2022 Pacific/Chatham:
  Sat Apr  3 13:59:59 2021 UT = Sun Apr  4 03:44:59 2021 +1345 gmtoff=49500
  Sat Apr  3 14:00:00 2021 UT = Sun Apr  4 02:45:00 2021 +1245 gmtoff=45900
  Sat Sep 25 13:59:59 2021 UT = Sun Sep 26 02:44:59 2021 +1245 gmtoff=45900
  Sat Sep 25 14:00:00 2021 UT = Sun Sep 26 03:45:00 2021 +1345 gmtoff=49500
So 26 September skips 02:45-03:44, 4 April repeats 02:45-03:44.
""",
(CHA, "2021-09-25T12:00:00Z", "0 3 * * *", 2,
 "2021-09-26T03:45:00+13:45 2021-09-27T03:00:00+13:45"),
"""
02:45 skipped -> fires at 03:45, the same instant as the real 03:45.
""",
(CHA, "2021-09-25T00:00:00Z", "45 2,3 * * *", 3,
 "2021-09-26T03:45:00+13:45 2021-09-27T02:45:00+13:45 "
 "2021-09-27T03:45:00+13:45"),
(CHA, "2021-09-26T02:20:00+12:45", "*/15 * * * *", 3,
 "2021-09-26T02:30:00+12:45 2021-09-26T03:45:00+13:45 "
 "2021-09-26T04:00:00+13:45"),
(CHA, "2021-09-26T00:00:00+12:45", "30 3 * * *", 1,
 "2021-09-26T03:45:00+13:45"),
(CHA, "2021-04-03T12:00:00Z", "0 3 * * *", 2,
 "2021-04-04T03:00:00+13:45 2021-04-05T03:00:00+12:45"),
(CHA, "2021-04-04T01:30:00+13:45", "0 * * * *", 4,
 "2021-04-04T02:00:00+13:45 2021-04-04T03:00:00+13:45 "
 "2021-04-04T03:00:00+12:45 2021-04-04T04:00:00+12:45"),
(CHA, "2021-04-04T02:50:00+12:45", "0 3 * * *", 1,
 "2021-04-05T03:00:00+12:45"),
(CHA, "2021-04-04T00:00:00+13:45", "45 2 * * *", 2,
 "2021-04-04T02:45:00+13:45 2021-04-05T02:45:00+12:45"),
(CHA, "2021-04-04T00:00:00+13:45", "*/45 2 * * *", 3,
 "2021-04-04T02:00:00+13:45 2021-04-04T02:45:00+13:45 "
 "2021-04-04T02:45:00+12:45"),
"""
20. Asia/Kathmandu moved from +05:30 to +05:45 at the start of 1986, so local
1986-01-01 00:00-00:14 never happened.
zdump -v Asia/Kathmandu:
  Tue Dec 31 18:29:59 1985 UT = Tue Dec 31 23:59:59 1985 +0530 gmtoff=19800
  Tue Dec 31 18:30:00 1985 UT = Wed Jan  1 00:15:00 1986 +0545 gmtoff=20700
""",
(KTM, "1985-12-31T12:00:00Z", "0 0 * * *", 2,
 "1986-01-01T00:15:00+05:45 1986-01-02T00:00:00+05:45"),
(KTM, "1985-12-31T23:50:00+05:30", "*/5 * * * *", 3,
 "1985-12-31T23:55:00+05:30 1986-01-01T00:15:00+05:45 "
 "1986-01-01T00:20:00+05:45"),
(KTM, "1985-12-31T00:00:00Z", "10 0 * * *", 2,
 "1986-01-01T00:15:00+05:45 1986-01-02T00:10:00+05:45"),
(KTM, "1985-12-31T00:00:00Z", "0,15 0 * * *", 3,
 "1986-01-01T00:15:00+05:45 1986-01-02T00:00:00+05:45 "
 "1986-01-02T00:15:00+05:45"),
(KTM, "1985-12-31T18:29:00Z", "* * * * *", 2,
 "1986-01-01T00:15:00+05:45 1986-01-01T00:16:00+05:45"),
(KTM, "1985-12-31T18:29:58Z", "* * * * * *", 2,
 "1985-12-31T23:59:59+05:30 1986-01-01T00:15:00+05:45"),
"""
21. Pacific/Tongatapu, +13 / +14: gap 02:00-02:59 on 2016-11-06, fold
02:00-02:59 on 2017-01-15.
zdump -v Pacific/Tongatapu:
  Sat Nov  5 12:59:59 2016 UT = Sun Nov  6 01:59:59 2016 +13 gmtoff=46800
  Sat Nov  5 13:00:00 2016 UT = Sun Nov  6 03:00:00 2016 +14 gmtoff=50400
  Sat Jan 14 12:59:59 2017 UT = Sun Jan 15 02:59:59 2017 +14 gmtoff=50400
  Sat Jan 14 13:00:00 2017 UT = Sun Jan 15 02:00:00 2017 +13 gmtoff=46800
""",
(TBU, "2016-11-05T00:00:00Z", "30 2 * * *", 2,
 "2016-11-06T03:00:00+14:00 2016-11-07T02:30:00+14:00"),
(TBU, "2017-01-14T00:00:00Z", "30 2 * * *", 2,
 "2017-01-15T02:30:00+14:00 2017-01-16T02:30:00+13:00"),
(TBU, "2017-01-15T01:50:00+14:00", "*/30 * * * *", 5,
 "2017-01-15T02:00:00+14:00 2017-01-15T02:30:00+14:00 "
 "2017-01-15T02:00:00+13:00 2017-01-15T02:30:00+13:00 "
 "2017-01-15T03:00:00+13:00"),
(TBU, "2016-11-06T00:30:00+13:00", "0 * * * *", 3,
 "2016-11-06T01:00:00+13:00 2016-11-06T03:00:00+14:00 "
 "2016-11-06T04:00:00+14:00"),
"""
22. Whole days skipped: Pacific/Apia jumped from -10 to +14 at the end of
29 December 2011 (Friday 30 December never happened); Pacific/Kiritimati
did the same over 31 December 1994.
zdump -v -c 2011,2013 Pacific/Apia:
  Fri Dec 30 09:59:59 2011 UT = Thu Dec 29 23:59:59 2011 -10 gmtoff=-36000
  Fri Dec 30 10:00:00 2011 UT = Sat Dec 31 00:00:00 2011 +14 gmtoff=50400
""",
(APIA, "2011-12-29T00:00:00-10:00", "0 12 * * *", 3,
 "2011-12-29T12:00:00-10:00 2011-12-31T00:00:00+14:00 "
 "2011-12-31T12:00:00+14:00"),
"""
Friday 12:00 is matched on the missing Friday and fires at the transition,
which is Saturday 00:00 local.
""",
(APIA, "2011-12-24T00:00:00Z", "0 12 * * 5", 2,
 "2011-12-31T00:00:00+14:00 2012-01-06T12:00:00+14:00"),
(APIA, "2011-12-29T00:00:00-10:00", "0 12 * * 6", 1,
 "2011-12-31T12:00:00+14:00"),
(APIA, "2011-12-29T22:30:00-10:00", "0 * * * *", 3,
 "2011-12-29T23:00:00-10:00 2011-12-31T00:00:00+14:00 "
 "2011-12-31T01:00:00+14:00"),
(APIA, "2011-06-01T00:00:00Z", "0 0 30 12 *", 2,
 "2011-12-31T00:00:00+14:00 2012-12-30T00:00:00+14:00"),
"""
@daily: the skipped 30th 00:00 fires at the transition, which is also the
real 31st 00:00: one fire.
""",
(APIA, "2011-12-28T12:00:00-10:00", "@daily", 3,
 "2011-12-29T00:00:00-10:00 2011-12-31T00:00:00+14:00 "
 "2012-01-01T00:00:00+14:00"),
(APIA, "2011-12-29T23:00:00-10:00", "0-59/20 0-23 30 12 *", 2,
 "2011-12-31T00:00:00+14:00 2012-12-30T00:00:00+14:00"),
"""
zdump -v Pacific/Kiritimati:
  Sat Dec 31 09:59:59 1994 UT = Fri Dec 30 23:59:59 1994 -10 gmtoff=-36000
  Sat Dec 31 10:00:00 1994 UT = Sun Jan  1 00:00:00 1995 +14 gmtoff=50400
""",
(KIR, "1994-12-29T12:00:00Z", "0 0 * * *", 3,
 "1994-12-30T00:00:00-10:00 1995-01-01T00:00:00+14:00 "
 "1995-01-02T00:00:00+14:00"),
(KIR, "1994-06-01T00:00:00Z", "0 12 31 12 *", 2,
 "1995-01-01T00:00:00+14:00 1995-12-31T12:00:00+14:00"),
(KIR, "1994-12-30T23:30:00-10:00", "*/30 * * * *", 2,
 "1995-01-01T00:00:00+14:00 1995-01-01T00:30:00+14:00"),
"""
23. America/Sao_Paulo: DST until February 2019, none since.  November 2018
skipped local midnight; February 2019 repeated 23:00-23:59.
zdump -v -c 2018,2020 America/Sao_Paulo:
  Sun Nov  4 02:59:59 2018 UT = Sat Nov  3 23:59:59 2018 -03 gmtoff=-10800
  Sun Nov  4 03:00:00 2018 UT = Sun Nov  4 01:00:00 2018 -02 gmtoff=-7200
  Sun Feb 17 01:59:59 2019 UT = Sat Feb 16 23:59:59 2019 -02 gmtoff=-7200
  Sun Feb 17 02:00:00 2019 UT = Sat Feb 16 23:00:00 2019 -03 gmtoff=-10800
(and no line after that).
""",
(SAO, "2018-11-03T12:00:00-03:00", "@daily", 3,
 "2018-11-04T01:00:00-02:00 2018-11-05T00:00:00-02:00 "
 "2018-11-06T00:00:00-02:00"),
(SAO, "2018-11-03T12:00:00-03:00", "0 0,1 * * *", 3,
 "2018-11-04T01:00:00-02:00 2018-11-05T00:00:00-02:00 "
 "2018-11-05T01:00:00-02:00"),
(SAO, "2018-11-03T22:30:00-03:00", "0 * * * *", 3,
 "2018-11-03T23:00:00-03:00 2018-11-04T01:00:00-02:00 "
 "2018-11-04T02:00:00-02:00"),
(SAO, "2019-02-16T12:00:00-02:00", "30 23 * * *", 2,
 "2019-02-16T23:30:00-02:00 2019-02-17T23:30:00-03:00"),
(SAO, "2019-02-16T22:45:00-02:00", "*/30 * * * *", 5,
 "2019-02-16T23:00:00-02:00 2019-02-16T23:30:00-02:00 "
 "2019-02-16T23:00:00-03:00 2019-02-16T23:30:00-03:00 "
 "2019-02-17T00:00:00-03:00"),
"""
A year later nothing shifts.
""",
(SAO, "2019-11-02T12:00:00-03:00", "@daily", 3,
 "2019-11-03T00:00:00-03:00 2019-11-04T00:00:00-03:00 "
 "2019-11-05T00:00:00-03:00"),
(SAO, "2020-02-15T22:45:00-03:00", "*/30 * * * *", 3,
 "2020-02-15T23:00:00-03:00 2020-02-15T23:30:00-03:00 "
 "2020-02-16T00:00:00-03:00"),
(SAO, "2020-10-31T12:00:00Z", "0 0 * * *", 2,
 "2020-11-01T00:00:00-03:00 2020-11-02T00:00:00-03:00"),
"""
24. Australia/Sydney 2021 (southern hemisphere): fold 02:00-02:59 on 4 April,
gap 02:00-02:59 on 3 October.
zdump -v -c 2021,2022 Australia/Sydney:
  Sat Apr  3 15:59:59 2021 UT = Sun Apr  4 02:59:59 2021 AEDT gmtoff=39600
  Sat Apr  3 16:00:00 2021 UT = Sun Apr  4 02:00:00 2021 AEST gmtoff=36000
  Sat Oct  2 15:59:59 2021 UT = Sun Oct  3 01:59:59 2021 AEST gmtoff=36000
  Sat Oct  2 16:00:00 2021 UT = Sun Oct  3 03:00:00 2021 AEDT gmtoff=39600
""",
(SYD, "2021-10-02T12:00:00+10:00", "30 2 * * *", 2,
 "2021-10-03T03:00:00+11:00 2021-10-04T02:30:00+11:00"),
(SYD, "2021-04-03T12:00:00+11:00", "30 2 * * *", 2,
 "2021-04-04T02:30:00+11:00 2021-04-05T02:30:00+10:00"),
(SYD, "2021-04-04T01:45:00+11:00", "*/30 * * * *", 5,
 "2021-04-04T02:00:00+11:00 2021-04-04T02:30:00+11:00 "
 "2021-04-04T02:00:00+10:00 2021-04-04T02:30:00+10:00 "
 "2021-04-04T03:00:00+10:00"),
(SYD, "2021-10-03T01:45:00+10:00", "*/30 * * * *", 2,
 "2021-10-03T03:00:00+11:00 2021-10-03T03:30:00+11:00"),
"""
25. America/St_Johns, -03:30 / -02:30.
zdump -v -c 2021,2022 America/St_Johns:
  Sun Mar 14 05:29:59 2021 UT = Sun Mar 14 01:59:59 2021 NST gmtoff=-12600
  Sun Mar 14 05:30:00 2021 UT = Sun Mar 14 03:00:00 2021 NDT gmtoff=-9000
  Sun Nov  7 04:29:59 2021 UT = Sun Nov  7 01:59:59 2021 NDT gmtoff=-9000
  Sun Nov  7 04:30:00 2021 UT = Sun Nov  7 01:00:00 2021 NST gmtoff=-12600
""",
(NFL, "2021-03-13T12:00:00Z", "30 2 * * *", 2,
 "2021-03-14T03:00:00-02:30 2021-03-15T02:30:00-02:30"),
(NFL, "2021-11-07T00:45:00-02:30", "*/30 * * * *", 5,
 "2021-11-07T01:00:00-02:30 2021-11-07T01:30:00-02:30 "
 "2021-11-07T01:00:00-03:30 2021-11-07T01:30:00-03:30 "
 "2021-11-07T02:00:00-03:30"),
(NFL, "2021-11-06T12:00:00Z", "30 1 * * *", 2,
 "2021-11-07T01:30:00-02:30 2021-11-08T01:30:00-03:30"),
]

INVALID_HEADER = """\
# cron_invalid.txt - cron expressions the parser must reject, and the field
# it must blame (DESIGN.md §9).
#
# GENERATED by tests/unit/oracle/cron_oracle.py from the cases written in it
# (see tests/unit/oracle/README.md); the blamed field of each row was decided
# by hand from the rules below and then checked against the oracle's parser.
#
# Row:  EXPRESSION | FIELD
#   EXPRESSION  the bytes handed to the parser (with their length: a NUL
#               byte is part of the text, not its end).  \\xNN (two lowercase
#               hex digits) stands for one byte; it is used for every byte
#               that is not printable ASCII, for '|' (\\x7c), backslash
#               (\\x5c), and for a space or tab at either end (which the
#               table reader would otherwise trim).  `<empty>` is the empty
#               string.
#   FIELD       one of: second minute hour day-of-month month day-of-week
#               expression every
#
# Which field is blamed:
#   1. Split on runs of ASCII space and tab (only those two bytes; leading
#      and trailing ones ignored).  No token at all -> expression.
#   2. Text starting with '@': `@every` followed by exactly one duration
#      token is an @every schedule, anything wrong with the duration
#      (missing, extra tokens, bad syntax, unknown unit, below 1s, not whole
#      seconds) -> every.  One of the lowercase macros alone is fine.  Any
#      other '@' text (unknown or uppercase macro, a macro with more tokens)
#      -> expression.
#   3. Not 5 or 6 tokens -> expression.
#   4. Otherwise the fields are checked left to right (with 6 fields the
#      first is `second`) and the first bad one is blamed.
"""

INVALID = [
"""
Whole expression: empty, blank, wrong field count, unknown macros.
""",
(b"", "expression"),
(b"   ", "expression"),
(b"\t\t", "expression"),
(b" \t ", "expression"),
(b"* * * *", "expression"),
(b"* * * * * * *", "expression"),
(b"0 0 0 1 1 * 2026", "expression"),
(b"0", "expression"),
(b"0 0", "expression"),
(b"0 0 1 1 1 1 2026 x", "expression"),
(b"@reboot", "expression"),
(b"@DAILY", "expression"),
(b"@Daily", "expression"),
(b"@HOURLY", "expression"),
(b"@", "expression"),
(b"@yearly2", "expression"),
(b"@day", "expression"),
(b"@daily 0", "expression"),
(b"@hourly *", "expression"),
(b"@ * * * *", "expression"),
(b"@EVERY 5m", "expression"),
(b"@every5m", "expression"),
"""
A no-break space (c2 a0) is not a separator: here it glues two fields into
one token and leaves 4 tokens.
""",
(b"0\xc2\xa00 * * *", "expression"),
"""
Vertical tab, form feed, CR and LF are not separators either.
""",
(b"0 0 * * *\x0a", "day-of-week"),
(b"0\x0b0 * * * *", "minute"),
(b"0 0\x0c* * * *", "hour"),
(b"0 0 * * *\x0d", "day-of-week"),
"""
@every: bad durations.
""",
(b"@every", "every"),
(b"@every ", "every"),
(b"@every 0s", "every"),
(b"@every 0", "every"),
(b"@every 500ms", "every"),
(b"@every 999ms", "every"),
(b"@every 1500ms", "every"),
(b"@every 5x", "every"),
(b"@every -1s", "every"),
(b"@every 5", "every"),
(b"@every s", "every"),
(b"@every 1h30", "every"),
(b"@every 1y", "every"),
(b"@every 1w", "every"),
(b"@every 1h 30m", "every"),
(b"@every 0h0m0s", "every"),
(b"@every \xef\xbc\x95s", "every"),
(b"@every 5s\x00", "every"),
"""
The same as sked's duration grammar rejects (tests/unit/data/duration.txt):
no fractions, no sign, lowercase units only, at most 36500d.
""",
(b"@every 1.5h", "every"),
(b"@every +1s", "every"),
(b"@every 1S", "every"),
(b"@every 36501d", "every"),
(b"@every 99999999999999999999s", "every"),
"""
second (6 fields).
""",
(b"60 * * * * *", "second"),
(b"-1 * * * * *", "second"),
(b"*/61 * * * * *", "second"),
(b"*/0 0 * * * *", "second"),
(b"L * * * * *", "second"),
(b"1,,2 * * * * *", "second"),
(b"a * * * * *", "second"),
(b"60 60 * * * *", "second"),
(b"0-60 * * * * *", "second"),
(b"\xc2\xa00 0 0 * * *", "second"),
"""
minute (first of 5 fields, second of 6).
""",
(b"60 * * * *", "minute"),
(b"* 60 * * * *", "minute"),
(b"-1 * * * *", "minute"),
(b"+5 * * * *", "minute"),
(b"1,,2 * * * *", "minute"),
(b"1, * * * *", "minute"),
(b",1 * * * *", "minute"),
(b", * * * *", "minute"),
(b"*/0 * * * *", "minute"),
(b"*/61 * * * *", "minute"),
(b"0-59/61 * * * *", "minute"),
(b"*/ * * * *", "minute"),
(b"*/-1 * * * *", "minute"),
(b"*/1.5 * * * *", "minute"),
(b"*-5 * * * *", "minute"),
(b"1-5-7 * * * *", "minute"),
(b"5-1 * * * *", "minute"),
(b"59-0 * * * *", "minute"),
(b"0x5 * * * *", "minute"),
(b"\xd9\xa5 * * * *", "minute"),
(b"\xef\xbc\x95 * * * *", "minute"),
(b"1\x00 * * * *", "minute"),
(b"? * * * *", "minute"),
(b"L * * * *", "minute"),
(b"1#1 * * * *", "minute"),
(b"5W * * * *", "minute"),
(b"JAN * * * *", "minute"),
(b"MON * * * *", "minute"),
(b"1/0 * * * *", "minute"),
(b"1-60 * * * *", "minute"),
(b"/5 * * * *", "minute"),
(b"5/ * * * *", "minute"),
(b"*/5/2 * * * *", "minute"),
(b"** * * * *", "minute"),
(b"1.5 * * * *", "minute"),
(b"- * * * *", "minute"),
(b"1- * * * *", "minute"),
(b"a * * * *", "minute"),
(b"1234567890123456789012345 * * * *", "minute"),
(b"4294967301 * * * *", "minute"),
(b"18446744073709551621 * * * *", "minute"),
(b"*/18446744073709551621 * * * *", "minute"),
(b"60 24 * * *", "minute"),
(b"\xc2\xa00 0 * * *", "minute"),
(b"1\x7c2 * * * *", "minute"),
(b"1\x5c2 * * * *", "minute"),
"""
hour.
""",
(b"0 24 * * *", "hour"),
(b"0 -1 * * *", "hour"),
(b"0 5-1 * * *", "hour"),
(b"0 23-0 * * *", "hour"),
(b"0 */25 * * *", "hour"),
(b"0 */0 * * *", "hour"),
(b"0 1,,2 * * *", "hour"),
(b"0 L * * *", "hour"),
(b"0 0x1 * * *", "hour"),
(b"0 12\x00 * * *", "hour"),
(b"0 MON * * *", "hour"),
(b"0 2-25 * * *", "hour"),
(b"0 24/2 * * *", "hour"),
(b"0 0 24 * * *", "hour"),
(b"0 0 0\xc2\xa01 * * *", "hour"),
(b"* 24 32 * *", "hour"),
"""
day-of-month.
""",
(b"0 0 0 * *", "day-of-month"),
(b"0 0 32 * *", "day-of-month"),
(b"0 0 -1 * *", "day-of-month"),
(b"0 0 L-2 * *", "day-of-month"),
(b"0 0 LW/2 * *", "day-of-month"),
(b"0 0 L/2 * *", "day-of-month"),
(b"0 0 1-5W * *", "day-of-month"),
(b"0 0 0W * *", "day-of-month"),
(b"0 0 32W * *", "day-of-month"),
(b"0 0 5L * *", "day-of-month"),
(b"0 0 W * *", "day-of-month"),
(b"0 0 W15 * *", "day-of-month"),
(b"0 0 15WW * *", "day-of-month"),
(b"0 0 15W/2 * *", "day-of-month"),
(b"0 0 *W * *", "day-of-month"),
(b"0 0 LL * *", "day-of-month"),
(b"0 0 WL * *", "day-of-month"),
(b"0 0 1#1 * *", "day-of-month"),
(b"0 0 ? * *", "day-of-month"),
(b"0 0 */32 * *", "day-of-month"),
(b"0 0 */0 * *", "day-of-month"),
(b"0 0 15-10 * *", "day-of-month"),
(b"0 0 MON * *", "day-of-month"),
(b"0 0 JAN * *", "day-of-month"),
(b"0 0 1,L, * *", "day-of-month"),
(b"0 0 1\xc2\xa01 * *", "day-of-month"),
(b"0 0 0 32 * *", "day-of-month"),
(b"0 0 32 13 8", "day-of-month"),
"""
month.
""",
(b"0 0 * 0 *", "month"),
(b"0 0 * 13 *", "month"),
(b"0 0 * MON *", "month"),
(b"0 0 * JANUARY *", "month"),
(b"0 0 * JA *", "month"),
(b"0 0 * */13 *", "month"),
(b"0 0 * */0 *", "month"),
(b"0 0 * DEC-JAN *", "month"),
(b"0 0 * 12-1 *", "month"),
(b"0 0 * L *", "month"),
(b"0 0 * 1W *", "month"),
(b"0 0 * */JAN *", "month"),
(b"0 0 * JAN/FEB *", "month"),
(b"0 0 * 1#2 *", "month"),
(b"0 0 0 * 13 *", "month"),
(b"0 0 * 13 8", "month"),
"""
day-of-week.  (`5-0` and `FRI-SUN` are valid and are not listed.)
""",
(b"0 0 * * 8", "day-of-week"),
(b"0 0 * * -1", "day-of-week"),
(b"0 0 * * FRI-MON", "day-of-week"),
(b"0 0 * * 5-1", "day-of-week"),
(b"0 0 * * 6-1", "day-of-week"),
(b"0 0 * * MOM", "day-of-week"),
(b"0 0 * * MONDAY", "day-of-week"),
(b"0 0 * * MO", "day-of-week"),
(b"0 0 * * L", "day-of-week"),
(b"0 0 * * LW", "day-of-week"),
(b"0 0 * * 5W", "day-of-week"),
(b"0 0 * * 5#0", "day-of-week"),
(b"0 0 * * 5#6", "day-of-week"),
(b"0 0 * * 8#1", "day-of-week"),
(b"0 0 * * #1", "day-of-week"),
(b"0 0 * * 5#", "day-of-week"),
(b"0 0 * * 1#1#1", "day-of-week"),
(b"0 0 * * 1#1-5", "day-of-week"),
(b"0 0 * * 1-5#1", "day-of-week"),
(b"0 0 * * 8L", "day-of-week"),
(b"0 0 * * 1L-5", "day-of-week"),
(b"0 0 * * 5L/2", "day-of-week"),
(b"0 0 * * JAN", "day-of-week"),
(b"0 0 * * */8", "day-of-week"),
(b"0 0 * * */0", "day-of-week"),
(b"0 0 * * */MON", "day-of-week"),
(b"0 0 * * 1-8", "day-of-week"),
(b"0 0 * * ?", "day-of-week"),
(b"0 0 * * 1,,2", "day-of-week"),
(b"0 0 * * 1,", "day-of-week"),
(b"0 0 * * \xd9\xa1", "day-of-week"),
(b"0 0 * * *\x00", "day-of-week"),
(b"0 0 0 * * 8", "day-of-week"),
(b"0 0 0 * * 7#6", "day-of-week"),
"""
A Quartz-style year written as a sixth field is read as day-of-week.
""",
(b"0 0 1 1 * 2026", "day-of-week"),
]

"""Expressions the parser must accept (a guard on the parser, not a table)."""
VALID = [
    b"0 0 * * 5-0", b"0 0 * * FRI-SUN", b"*/60 * * * *", b"0 0 */31 * *",
    b"0 0 * */12 *", b"0 0 * * */7", b"05 09 * * *", b"0 0 * * mOn",
    b"0 0 1,15,L * *", b"0 0 LW * *", b"0 0 31W * *", b"0 0 1W * *",
    b"0 0 * * 7#5", b"0 0 * * SUNL", b"0 0 * * 0-0", b"  @daily  ",
    b"\t0\t0\t*\t*\t*\t", b"@every 1s", b"@every 2000ms", b"@every 7d",
    b"0 0 * * MON-FRI/2", b"59 59 23 31 12 7", b"@every\t5m",
    b"@every 36500d", b"@every 1h1h", b"@every 007s",
]


def verify_with_date(text):
    """Route C, for the output format only: GNU date (glibc's own TZ code)
    re-renders every written instant in its zone; it must print the same
    wall time and offset."""
    by_zone = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        zone, _, _, want = [p.strip() for p in line.split(" | ")]
        if want == "never":
            continue
        for inst in want.split(" "):
            by_zone.setdefault(zone, []).append(inst)
    for zone, insts in by_zone.items():
        feed = "".join("@%d\n" % parse_from(i) for i in insts)
        out = subprocess.run(["date", "-f", "-", "+%Y-%m-%dT%H:%M:%S%:z"],
                             input=feed, capture_output=True, text=True,
                             env={"TZ": zone}, check=True).stdout.split()
        assert len(out) == len(insts)
        for inst, got in zip(insts, out):
            want = inst[:-1] + "+00:00" if inst.endswith("Z") else inst
            assert got == want, (zone, inst, got)


def main(argv):
    global ZONES
    cases = load_cases()
    ZONES = sorted({it[0] for it in cases.NEXT if not isinstance(it, str)})
    if len(argv) >= 2 and argv[1] in ("write", "check"):
        self_test()
        nxt, nn = gen_next()
        verify_with_date(nxt)
        inv, ni = gen_invalid()
        targets = [(os.path.join(DATA, "cron_next.txt"), nxt),
                   (os.path.join(DATA, "cron_invalid.txt"), inv)]
        if argv[1] == "write":
            for path, text in targets:
                with open(path, "w") as fh:
                    fh.write(text)
            print("cron_next.txt: %d rows, %d zones; cron_invalid.txt: %d rows"
                  % (nn, len(ZONES), ni))
            return 0
        bad = 0
        for path, text in targets:
            with open(path) as fh:
                if fh.read() != text:
                    print("DIFFERS: %s" % path)
                    bad = 1
        print("ok" if not bad else "tables out of date")
        return bad
    if len(argv) >= 5 and argv[1] == "next":
        n = int(argv[5]) if len(argv) > 5 else 5
        got = next_fires(argv[2], argv[3], argv[4], n)
        print(got if got == "never" else " ".join(got))
        return 0
    if len(argv) == 3 and argv[1] == "parse":
        try:
            c = parse(unescape(argv[2]))
        except CronError as e:
            print("error in %s: %s" % (e.field, e.why))
            return 1
        print(vars(c))
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
