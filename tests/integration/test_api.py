#!/usr/bin/env python3
"""test_api.py - every endpoint and every error code of the HTTP API
(/work/shared/API.md, the contract), through the real binary.

Each test boots its own `sked server` on 127.0.0.1:0 over its own temp data
dir.  Tasks are given schedules that never fire while a test runs (1 January
at 03:00, or one-time in 2099) and http targets on the discard port, so the
tests stay valid once the scheduler and the workers run tasks.  Rejected
requests are checked to change nothing (list and get before and after).

Run: python3 tests/integration/test_api.py [TEST_NAME...]  (SKED=path/to/sked)
"""
import json
import os
import re
import sys
import threading
import time
import uuid
from datetime import datetime, timezone

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from skedtest import Server, Suite, parse_raw_status, raw_http  # noqa: E402

S = Suite("test_api", timeout=30)

URL = "http://127.0.0.1:9/hook"          # discard port: nothing listens
FAR_CRON = "0 3 1 1 *"                    # once a year


def http_task(name=None, **over):
    t = {"schedule": {"cron": FAR_CRON}, "target": {"type": "http", "url": URL}}
    if name is not None:
        t["name"] = name
    t.update(over)
    return t


def shell_task(name=None, **over):
    t = {"schedule": {"cron": FAR_CRON}, "target": {"type": "shell", "command": "true"}}
    if name is not None:
        t["name"] = name
    t.update(over)
    return t


UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TIME_RE = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def ts(s):
    """Seconds since the epoch of an RFC 3339 string (fraction kept)."""
    m = TIME_RE.match(s or "")
    if not m:
        raise AssertionError("not an RFC 3339 time with an offset: %r" % (s,))
    y, mo, d, h, mi, se, frac, off = m.groups()
    t = datetime(int(y), int(mo), int(d), int(h), int(mi), int(se),
                 tzinfo=timezone.utc).timestamp()
    if frac:
        t += float(frac)
    if off != "Z":
        sign = 1 if off[0] == "+" else -1
        t -= sign * (int(off[1:3]) * 3600 + int(off[4:6]) * 60)
    return t


def server():
    return Server()


def snapshot(*clients):
    """Everything a set of tokens can see: their tasks, and (admin) tokens."""
    snap = []
    for c in clients:
        snap.append(sorted(c.list_all(), key=lambda t: t["id"]))
    return snap


def created(cl, body, what, **kw):
    r = cl.post("/v1/tasks", body, **kw)
    if r.status != 201:
        raise AssertionError("%s: expected 201, got %d %s" % (what, r.status, r.body))
    return r.body


DEFAULTS = {
    "queue": "default",
    "retry": {"max_attempts": 1, "backoff": "10s", "max_backoff": "10m", "multiplier": 2},
    "overlap": "skip",
    "misfire": "run_once",
    "misfire_grace": "1m",
    "labels": {},
    "state": "active",
    "run_count": 0,
    "version": 1,
}


# --- open routes -------------------------------------------------------------

@S.test
def open_routes_need_no_token():
    with server() as srv:
        cl = srv.client()
        r = cl.get("/healthz")
        S.status(r, 200, "GET /healthz without a token")
        r = cl.get("/readyz")
        S.status(r, 200, "GET /readyz without a token")
        r = cl.get("/metrics")
        if S.status(r, 200, "GET /metrics without a token"):
            S.check("text/plain" in (r.headers.get("Content-Type") or ""),
                    "GET /metrics: expected Content-Type text/plain, got %r"
                    % r.headers.get("Content-Type"))
            S.check(isinstance(r.body, str) and "sked_http_requests_total" in r.body,
                    "GET /metrics: expected the text to contain sked_http_requests_total")
            S.check(isinstance(r.body, str) and "# TYPE" in r.body,
                    "GET /metrics: expected Prometheus text with # TYPE lines")


# --- create / get ------------------------------------------------------------

@S.test
def create_returns_201_etag_location_and_defaults():
    with server() as srv:
        cl = srv.client(srv.admin_token)
        body = http_task("nightly-report")
        body.update({"id": "not-mine", "namespace": "evil", "state": "paused",
                     "version": 7, "run_count": 5, "next_run_at": "2020-01-01T00:00:00Z",
                     "created_at": "2020-01-01T00:00:00Z", "updated_at": "2020-01-01T00:00:00Z"})
        t0 = time.time()
        r = cl.post("/v1/tasks", body)
        if not S.status(r, 201, "POST /v1/tasks"):
            return
        t = r.body
        S.check(UUID_RE.match(t.get("id", "")), "create: expected a UUID id, got %r" % t.get("id"))
        S.eq(r.headers.get("ETag"), '"1"', "create: ETag header")
        loc = r.headers.get("Location") or ""
        S.check(loc.endswith("/v1/tasks/" + t.get("id", "?")),
                "create: expected Location ending in /v1/tasks/%s, got %r" % (t.get("id"), loc))
        S.check("application/json" in (r.headers.get("Content-Type") or ""),
                "create: expected Content-Type application/json")
        S.eq(t.get("namespace"), "default", "create: namespace (server-set, input ignored)")
        S.eq(t.get("name"), "nightly-report", "create: name")
        for k, v in DEFAULTS.items():
            S.eq(t.get(k), v, "create: default/server-set field %s" % k)
        S.eq(t.get("schedule"), {"cron": FAR_CRON, "timezone": "UTC", "start_at": None,
                                 "end_at": None, "max_runs": None, "jitter": "0s"},
             "create: canonical schedule")
        tg = t.get("target", {})
        S.eq(tg.get("type"), "http", "create: target.type")
        S.eq(tg.get("url"), URL, "create: target.url")
        S.eq(tg.get("method"), "POST", "create: target.method default")
        S.eq(tg.get("timeout"), "30s", "create: http target.timeout default")
        S.check(t.get("next_run_at") and ts(t["next_run_at"]) > t0,
                "create: expected next_run_at in the future, got %r" % t.get("next_run_at"))
        nxt = datetime.fromtimestamp(ts(t["next_run_at"]), timezone.utc)
        S.check((nxt.month, nxt.day, nxt.hour, nxt.minute) == (1, 1, 3, 0),
                "create: expected next_run_at on 1 January 03:00Z, got %s" % t.get("next_run_at"))
        for k in ("created_at", "updated_at"):
            S.check(t.get(k) and abs(ts(t[k]) - t0) < 60,
                    "create: expected %s near now, got %r" % (k, t.get(k)))
        # a shell target's defaults
        r = cl.post("/v1/tasks", shell_task())
        if S.status(r, 201, "POST /v1/tasks (shell, admin token)"):
            tg = r.body.get("target", {})
            S.eq(tg.get("timeout"), "1h", "create: shell target.timeout default")
            S.eq(tg.get("command"), "true", "create: target.command")
            S.eq(r.body.get("name"), None, "create: name is optional (null)")


@S.test
def create_one_time_and_every():
    with server() as srv:
        cl = srv.client(srv.admin_token)
        t = created(cl, http_task(schedule={"at": "2099-06-01T12:00:00+02:00"}), "create at")
        S.eq(ts(t.get("next_run_at")), ts("2099-06-01T10:00:00Z"), "at task: next_run_at")
        t = created(cl, http_task(schedule={"at": "2099-06-01T12:00:00.123+02:00"}), "at .123")
        S.check(t.get("next_run_at", "").endswith(".123Z") or ".123" in t.get("next_run_at", ""),
                "at with .123: expected next_run_at to keep the sub-second digits, got %r"
                % t.get("next_run_at"))
        S.eq(ts(t.get("next_run_at")), ts("2099-06-01T10:00:00.123Z"), "at .123: next_run_at")
        t0 = time.time()
        t = created(cl, http_task(schedule={"every": "1h"}), "create every 1h")
        n = ts(t.get("next_run_at"))
        S.check(n % 3600 == 0 and t0 - 1 <= n <= t0 + 3601,
                "every 1h: expected next_run_at on the next whole hour UTC, got %s"
                % t.get("next_run_at"))
        t = created(cl, http_task(schedule={"every": "10s",
                                            "start_at": "2099-01-01T00:00:07Z"}), "every+start")
        S.eq(ts(t.get("next_run_at")), ts("2099-01-01T00:00:07Z"),
             "every with start_at: the first occurrence is start_at")
        t = created(cl, http_task(schedule={"cron": "@every 30s"}), "cron @every 30s")
        n = ts(t.get("next_run_at"))
        S.check(n % 30 == 0, "cron '@every 30s': expected next_run_at on a multiple of 30 s, "
                "got %s" % t.get("next_run_at"))
        t = created(cl, http_task(schedule={"cron": "0 3 * * *",
                                            "timezone": "Europe/Berlin",
                                            "start_at": "2099-12-01T00:00:00Z"}), "berlin")
        S.eq(ts(t.get("next_run_at")), ts("2099-12-01T02:00:00Z"),
             "cron 0 3 * * * Europe/Berlin from start_at 2099-12-01: next_run_at")


@S.test
def get_by_id_and_by_name():
    with server() as srv:
        cl = srv.client(srv.admin_token)
        t = created(cl, http_task("by-name.1", labels={"team": "data"}), "create")
        r = cl.get("/v1/tasks/" + t["id"])
        if S.status(r, 200, "GET /v1/tasks/{id}"):
            S.eq(r.body, t, "GET by id: the task as created")
            S.eq(r.headers.get("ETag"), '"1"', "GET by id: ETag")
        r = cl.get("/v1/tasks/by-name.1")
        if S.status(r, 200, "GET /v1/tasks/{name}"):
            S.eq(r.body, t, "GET by name: the task as created")
        r = cl.get("/v1/tasks/" + str(uuid.uuid4()))
        S.error(r, 404, "not_found", "GET unknown id")
        r = cl.get("/v1/tasks/no-such-name")
        S.error(r, 404, "not_found", "GET unknown name")


# --- list --------------------------------------------------------------------

@S.test
def list_filters():
    with server() as srv:
        cl = srv.client(srv.admin_token)
        ids = {}
        specs = [
            ("alpha-1", "q1", {"team": "data", "tier": "gold"}),
            ("alpha-2", "q1", {"team": "web"}),
            ("alpha-3", "q2", {"team": "data"}),
            ("beta-1", "default", {"team": "data", "k": "v:w"}),
            ("beta-2", "q2", {}),
        ]
        for name, q, labels in specs:
            ids[name] = created(cl, http_task(name, queue=q, labels=labels), name)["id"]
        for name in ("alpha-2", "beta-2"):
            r = cl.post("/v1/tasks/%s:pause" % name)
            S.status(r, 200, "pause " + name)

        def names(query):
            r = cl.get("/v1/tasks?" + query)
            if not S.status(r, 200, "GET /v1/tasks?" + query):
                return None
            S.check("next_cursor" not in r.body or r.body["next_cursor"] is None,
                    "GET /v1/tasks?%s: expected next_cursor null/absent on one page" % query)
            return sorted(t["name"] for t in r.body["tasks"])

        S.eq(names(""), sorted(ids), "list all")
        S.eq(names("state=paused"), ["alpha-2", "beta-2"], "filter state=paused")
        S.eq(names("state=active"), ["alpha-1", "alpha-3", "beta-1"], "filter state=active")
        S.eq(names("state=completed"), [], "filter state=completed")
        S.eq(names("queue=q1"), ["alpha-1", "alpha-2"], "filter queue=q1")
        S.eq(names("queue=default"), ["beta-1"], "filter queue=default")
        S.eq(names("queue=nope"), [], "filter queue=nope")
        S.eq(names("label=team:data"), ["alpha-1", "alpha-3", "beta-1"], "filter label=team:data")
        S.eq(names("label=tier:gold"), ["alpha-1"], "filter label=tier:gold")
        S.eq(names("label=team:nope"), [], "filter label=team:nope")
        S.eq(names("label=k:v:w"), ["beta-1"], "filter label=k:v:w (value with a colon)")
        S.eq(names("name_prefix=alpha-"), ["alpha-1", "alpha-2", "alpha-3"], "filter name_prefix")
        S.eq(names("name_prefix=beta-2"), ["beta-2"], "filter name_prefix=beta-2")
        S.eq(names("name_prefix=zzz"), [], "filter name_prefix=zzz")
        S.eq(names("queue=q2&state=active"), ["alpha-3"], "filters combined: queue+state")
        S.eq(names("label=team:data&name_prefix=alpha"), ["alpha-1", "alpha-3"],
             "filters combined: label+name_prefix")
        # bad filters
        before = snapshot(cl)
        S.error(cl.get("/v1/tasks?state=sleeping"), 400, "invalid_argument", "state=sleeping",
                field="state")
        S.error(cl.get("/v1/tasks?label=nocolon"), 400, "invalid_argument", "label=nocolon",
                field="label")
        S.error(cl.get("/v1/tasks?limit=0"), 400, "invalid_argument", "limit=0", field="limit")
        S.error(cl.get("/v1/tasks?limit=1001"), 400, "invalid_argument", "limit=1001",
                field="limit")
        S.error(cl.get("/v1/tasks?limit=ten"), 400, "invalid_argument", "limit=ten",
                field="limit")
        S.error(cl.get("/v1/tasks?cursor=garbage"), 400, "invalid_argument", "cursor=garbage",
                field="cursor")
        S.eq(snapshot(cl), before, "rejected list requests changed nothing")


@S.test
def list_pagination_sees_every_task_once():
    with server() as srv:
        cl = srv.client(srv.admin_token)
        want = set()
        for lo, hi in ((0, 100), (100, 200), (200, 250)):
            r = cl.post("/v1/tasks:batch",
                        {"tasks": [http_task("page-%03d" % i) for i in range(lo, hi)]})
            if not S.status(r, 201, "batch create %d..%d" % (lo, hi)):
                return
            want |= {t["id"] for t in r.body["tasks"]}
        S.eq(len(want), 250, "250 distinct ids created")
        seen, sizes, cursor, pages = [], [], None, 0
        while pages < 10:
            q = "/v1/tasks?limit=100" + ("&cursor=" + cursor if cursor else "")
            r = cl.get(q)
            if not S.status(r, 200, "GET " + q):
                return
            pages += 1
            sizes.append(len(r.body["tasks"]))
            seen += [t["id"] for t in r.body["tasks"]]
            cursor = r.body.get("next_cursor")
            if not cursor:
                break
        S.eq(sizes, [100, 100, 50], "page sizes with limit=100")
        S.eq(len(seen), len(set(seen)), "no task seen twice across pages")
        S.eq(set(seen), want, "every task seen across pages")
        S.check(cursor is None, "expected next_cursor null at the end, got %r" % cursor)
        # default limit is 100
        r = cl.get("/v1/tasks")
        if S.status(r, 200, "GET /v1/tasks"):
            S.eq(len(r.body["tasks"]), 100, "default limit: tasks on the first page")
            S.check(r.body.get("next_cursor"), "default limit: expected a next_cursor")
        # limit=1000 gives all in one page
        r = cl.get("/v1/tasks?limit=1000")
        if S.status(r, 200, "GET /v1/tasks?limit=1000"):
            S.eq(len(r.body["tasks"]), 250, "limit=1000: all tasks on one page")
            S.check(r.body.get("next_cursor") is None, "limit=1000: expected next_cursor null")
        # pagination with a filter and an odd page size
        got, cursor = [], None
        for _ in range(20):
            q = "/v1/tasks?limit=7&name_prefix=page-1" + ("&cursor=" + cursor if cursor else "")
            r = cl.get(q)
            if not S.status(r, 200, "GET " + q):
                return
            got += [t["name"] for t in r.body["tasks"]]
            cursor = r.body.get("next_cursor")
            if not cursor:
                break
        S.eq(sorted(got), ["page-%03d" % i for i in range(100, 200)],
             "filtered pagination (name_prefix=page-1, limit=7)")
        S.eq(len(got), len(set(got)), "filtered pagination: no task twice")


# --- replace -----------------------------------------------------------------

@S.test
def put_with_if_match():
    with server() as srv:
        cl = srv.client(srv.admin_token)
        t = created(cl, http_task("put-me"), "create")
        tid = t["id"]
        spec2 = http_task("put-me", labels={"v": "2"}, queue="q9",
                          schedule={"cron": "0 4 1 1 *"})
        time.sleep(0.01)
        r = cl.put("/v1/tasks/" + tid, spec2, headers={"If-Match": "1"})
        if S.status(r, 200, "PUT If-Match: 1 (bare)"):
            S.eq(r.body.get("version"), 2, "PUT bare If-Match: version")
            S.eq(r.headers.get("ETag"), '"2"', "PUT: ETag")
            S.eq(r.body.get("labels"), {"v": "2"}, "PUT: labels replaced")
            S.eq(r.body.get("queue"), "q9", "PUT: queue replaced")
            S.eq(r.body.get("schedule", {}).get("cron"), "0 4 1 1 *", "PUT: schedule replaced")
            S.eq(r.body.get("id"), tid, "PUT: id kept")
            S.eq(r.body.get("created_at"), t["created_at"], "PUT: created_at kept")
            S.check(r.body.get("updated_at") != t["updated_at"],
                    "PUT: expected updated_at to change")
            nxt = datetime.fromtimestamp(ts(r.body["next_run_at"]), timezone.utc)
            S.eq((nxt.hour, nxt.minute), (4, 0), "PUT: next_run_at follows the new schedule")
        spec3 = http_task("put-me", labels={"v": "3"})
        r = cl.put("/v1/tasks/" + tid, spec3, headers={"If-Match": '"2"'})
        if S.status(r, 200, 'PUT If-Match: "2" (quoted)'):
            S.eq(r.body.get("version"), 3, "PUT quoted If-Match: version")
            S.eq(r.body.get("queue"), "default", "PUT: an omitted field goes back to its default")
        before = snapshot(cl)
        r = cl.put("/v1/tasks/" + tid, http_task("put-me", labels={"v": "x"}),
                   headers={"If-Match": "1"})
        S.error(r, 412, "precondition_failed", "PUT with stale If-Match: 1")
        r = cl.put("/v1/tasks/" + tid, http_task("put-me", labels={"v": "x"}),
                   headers={"If-Match": '"2"'})
        S.error(r, 412, "precondition_failed", 'PUT with stale If-Match: "2"')
        r = cl.put("/v1/tasks/" + tid, http_task("put-me", labels={"v": "x"}),
                   headers={"If-Match": 'W/"2"'})
        S.error(r, 412, "precondition_failed", 'PUT with stale If-Match: W/"2"')
        r = cl.put("/v1/tasks/" + tid, http_task("put-me", labels={"v": "x"}),
                   headers={"If-Match": "abc"})
        S.error(r, 400, "invalid_argument", "PUT with If-Match: abc")
        r = cl.put("/v1/tasks/" + tid, http_task("put-me", schedule={"cron": "0 25 * * *"}),
                   headers={"If-Match": "3"})
        S.error(r, 400, "invalid_argument", "PUT with a bad cron", field="schedule.cron")
        r = cl.put("/v1/tasks/" + str(uuid.uuid4()), http_task())
        S.error(r, 404, "not_found", "PUT unknown id")
        other = created(cl, http_task("other-name"), "create other")
        before = snapshot(cl)
        r = cl.put("/v1/tasks/" + tid, http_task("other-name"))
        S.error(r, 409, "conflict", "PUT renaming onto another task's name")
        S.eq(snapshot(cl), before, "rejected PUTs changed nothing")
        r = cl.put("/v1/tasks/" + tid, http_task("put-me", labels={"v": "w"}),
                   headers={"If-Match": 'W/"3"'})
        if S.status(r, 200, 'PUT If-Match: W/"3" (weak, read the same way)'):
            S.eq(r.body.get("version"), 4, 'PUT W/"3": version')
        r = cl.put("/v1/tasks/" + tid, http_task("put-me", labels={"v": "s"}),
                   headers={"If-Match": "*"})
        if S.status(r, 200, "PUT If-Match: * (no check)"):
            S.eq(r.body.get("version"), 5, "PUT *: version")
        # without If-Match: last writer wins; by name works too
        r = cl.put("/v1/tasks/put-me", http_task("put-me", labels={"v": "4"}))
        if S.status(r, 200, "PUT by name without If-Match"):
            S.eq(r.body.get("version"), 6, "PUT without If-Match: version")
            S.eq(r.body.get("id"), tid, "PUT by name: the same task")
        r = cl.get("/v1/tasks/" + tid)
        S.eq(r.body.get("labels"), {"v": "4"}, "GET after PUT: new spec stored")
        S.eq(r.headers.get("ETag"), '"6"', "GET after PUT: ETag")
        # a paused task stays paused when replaced
        cl.post("/v1/tasks/%s:pause" % other["id"])
        r = cl.put("/v1/tasks/" + other["id"], http_task("other-name", labels={"a": "b"}))
        if S.status(r, 200, "PUT a paused task"):
            S.eq(r.body.get("state"), "paused", "PUT keeps a paused task paused")
            S.eq(r.body.get("next_run_at"), None, "PUT of a paused task: next_run_at null")


# --- delete ------------------------------------------------------------------

@S.test
def delete_then_404():
    with server() as srv:
        cl = srv.client(srv.admin_token)
        t = created(cl, http_task("del-me"), "create")
        keep = created(cl, http_task("keep-me"), "create")
        r = cl.delete("/v1/tasks/" + t["id"])
        if S.status(r, 204, "DELETE /v1/tasks/{id}"):
            S.check(r.body in (None, ""), "DELETE: expected an empty body, got %r" % (r.body,))
        S.error(cl.get("/v1/tasks/" + t["id"]), 404, "not_found", "GET after DELETE")
        S.error(cl.get("/v1/tasks/del-me"), 404, "not_found", "GET by name after DELETE")
        S.error(cl.delete("/v1/tasks/" + t["id"]), 404, "not_found", "DELETE twice")
        S.eq([x["id"] for x in cl.list_all()], [keep["id"]], "list after DELETE")
        created(cl, http_task("del-me"), "re-create with a deleted task's name")
        r = cl.delete("/v1/tasks/del-me")
        S.status(r, 204, "DELETE by name")
        S.eq([x["id"] for x in cl.list_all()], [keep["id"]], "list after DELETE by name")


# --- pause / resume ----------------------------------------------------------

@S.test
def pause_and_resume():
    with server() as srv:
        cl = srv.client(srv.admin_token)
        t = created(cl, http_task("pr", schedule={"every": "1s"}), "create every 1s")
        tid = t["id"]
        r = cl.post("/v1/tasks/%s:pause" % tid)
        if S.status(r, 200, "POST :pause (no body)"):
            S.eq(r.body.get("state"), "paused", "pause: state")
            S.eq(r.body.get("next_run_at"), None, "pause: next_run_at null")
            S.check(r.body.get("version", 0) > t["version"], "pause: expected version to rise")
            S.check(r.headers.get("ETag") == '"%s"' % r.body.get("version"),
                    "pause: expected ETag to match version")
        r = cl.get("/v1/tasks/" + tid)
        S.eq(r.body.get("state"), "paused", "GET after pause: state")
        S.eq(r.body.get("next_run_at"), None, "GET after pause: next_run_at")
        r = cl.post("/v1/tasks/%s:pause" % tid)
        if S.status(r, 200, "pause a paused task"):
            S.eq(r.body.get("state"), "paused", "pause twice: state")
        time.sleep(1.3)
        t0 = time.time()
        r = cl.post("/v1/tasks/pr:resume")
        t1 = time.time()
        if S.status(r, 200, "POST :resume by name"):
            S.eq(r.body.get("state"), "active", "resume: state")
            n = r.body.get("next_run_at")
            S.check(n is not None and t0 - 1.0 <= ts(n) <= t1 + 1.0 and ts(n) > ts(t["next_run_at"]),
                    "resume: expected next_run_at computed from now (%.3f..%.3f), got %s "
                    "(before pause: %s)" % (t0, t1 + 1, n, t["next_run_at"]))
        r = cl.post("/v1/tasks/%s:resume" % tid)
        if S.status(r, 200, "resume an active task"):
            S.eq(r.body.get("state"), "active", "resume twice: state")
        S.error(cl.post("/v1/tasks/%s:pause" % uuid.uuid4()), 404, "not_found", "pause unknown")
        S.error(cl.post("/v1/tasks/%s:resume" % uuid.uuid4()), 404, "not_found",
                "resume unknown")
        cl.delete("/v1/tasks/" + tid)


# --- batch -------------------------------------------------------------------

@S.test
def batch_create_all_or_nothing():
    with server() as srv:
        cl = srv.client(srv.admin_token)
        r = cl.post("/v1/tasks:batch", {"tasks": [http_task("b-%d" % i) for i in range(3)]})
        if S.status(r, 201, "POST /v1/tasks:batch"):
            got = r.body.get("tasks")
            S.check(isinstance(got, list) and len(got) == 3,
                    "batch: expected {\"tasks\":[3 tasks]}, got %r" % (r.body,))
            for i, t in enumerate(got or []):
                S.eq(t.get("name"), "b-%d" % i, "batch: task %d in order" % i)
                g = cl.get("/v1/tasks/" + t.get("id", "?"))
                S.check(g.status == 200 and g.body == t,
                        "batch: task %d stored as answered" % i)
        before = snapshot(cl)
        bad = [http_task("c-%d" % i) for i in range(6)]
        bad[3]["schedule"] = {"cron": "0 25 * * *"}
        S.error(cl.post("/v1/tasks:batch", {"tasks": bad}), 400, "invalid_argument",
                "batch with a bad element 3", field="tasks[3].schedule.cron")
        bad = [http_task("c-%d" % i) for i in range(6)]
        bad[5]["target"] = {"type": "http", "url": "ftp://x/"}
        S.error(cl.post("/v1/tasks:batch", {"tasks": bad}), 400, "invalid_argument",
                "batch with a bad element 5", field="tasks[5].target.url")
        bad = [http_task("c-%d" % i) for i in range(4)] + ["not a task"]
        r = cl.post("/v1/tasks:batch", {"tasks": bad})
        S.error(r, 400, "invalid_argument", "batch with a string element 4")
        S.check((r.err("field") or "").startswith("tasks[4]"),
                "batch with a string element: expected field tasks[4]..., got %r" % r.err("field"))
        S.error(cl.post("/v1/tasks:batch", {"tasks": [http_task() for _ in range(1001)]}),
                400, "invalid_argument", "batch of 1001", field="tasks")
        S.error(cl.post("/v1/tasks:batch", {"tasks": []}), 400, "invalid_argument",
                "empty batch")
        S.error(cl.post("/v1/tasks:batch", {}), 400, "invalid_argument", "batch without tasks")
        S.error(cl.post("/v1/tasks:batch", [http_task()]), 400, "invalid_argument",
                "batch as a bare array")
        r = cl.post("/v1/tasks:batch", {"tasks": [http_task("d-1"), http_task("d-2"),
                                                  http_task("d-1")]})
        S.error(r, 409, "conflict", "batch repeating a name")
        S.check((r.err("field") or "").startswith("tasks[2]"),
                "batch repeating a name: expected field tasks[2]..., got %r" % r.err("field"))
        r = cl.post("/v1/tasks:batch", {"tasks": [http_task("e-1"), http_task("b-1")]})
        S.error(r, 409, "conflict", "batch with a name already used")
        S.check((r.err("field") or "").startswith("tasks[1]"),
                "batch with a used name: expected field tasks[1]..., got %r" % r.err("field"))
        S.eq(snapshot(cl), before, "rejected batches stored nothing")
        # the largest batch
        r = cl.post("/v1/tasks:batch", {"tasks": [http_task() for _ in range(1000)]})
        if S.status(r, 201, "batch of 1000"):
            S.eq(len(r.body["tasks"]), 1000, "batch of 1000: tasks answered")
        S.eq(len(cl.list_all()), 1003, "tasks stored after a batch of 1000")


# --- idempotency, names ------------------------------------------------------

@S.test
def idempotency_key():
    with server() as srv:
        cl = srv.client(srv.admin_token)
        body = json.dumps(http_task(labels={"n": "1"}))
        r1 = cl.post("/v1/tasks", body, headers={"Idempotency-Key": "key-1"})
        if not S.status(r1, 201, "first POST with Idempotency-Key"):
            return
        r2 = cl.post("/v1/tasks", body, headers={"Idempotency-Key": "key-1"})
        if S.status(r2, 200, "same key, same body"):
            S.eq(r2.body.get("id"), r1.body["id"], "same key, same body: the same task")
            S.eq(r2.body, r1.body, "same key, same body: the same task body")
        S.eq(len(cl.list_all()), 1, "one task after a retried POST")
        before = snapshot(cl)
        r3 = cl.post("/v1/tasks", http_task(labels={"n": "2"}),
                     headers={"Idempotency-Key": "key-1"})
        S.error(r3, 409, "conflict", "same key, another body")
        S.error(cl.post("/v1/tasks", body, headers={"Idempotency-Key": "k" * 201}), 400,
                "invalid_argument", "Idempotency-Key of 201 characters",
                field="Idempotency-Key")
        # a rejected request does not use up its key
        S.error(cl.post("/v1/tasks", http_task(schedule={"cron": "bad"}),
                        headers={"Idempotency-Key": "key-2"}), 400, "invalid_argument",
                "bad body with key-2")
        S.eq(snapshot(cl), before, "rejected idempotent POSTs changed nothing")
        r = cl.post("/v1/tasks", body, headers={"Idempotency-Key": "key-2"})
        S.status(r, 201, "key-2 after its rejected use")
        # another key, same body: a new task
        r = cl.post("/v1/tasks", body, headers={"Idempotency-Key": "key-3"})
        if S.status(r, 201, "another key, same body"):
            S.check(r.body["id"] != r1.body["id"], "another key: expected a new task")
        # the answer is the task as it is now; deleting the task forgets the key
        tid = r1.body["id"]
        S.status(cl.post("/v1/tasks/%s:pause" % tid), 200, "pause the idempotent task")
        r = cl.post("/v1/tasks", body, headers={"Idempotency-Key": "key-1"})
        if S.status(r, 200, "same key after a change"):
            S.eq((r.body.get("id"), r.body.get("state"), r.body.get("version")), (tid, "paused", 2),
                 "same key after a change: the task as it is now (id, state, version)")
            S.eq(r.headers.get("ETag"), '"2"', "same key after a change: ETag")
            S.eq(r.headers.get("Location"), None, "same key again: no Location (docs/api.md)")
        S.status(cl.delete("/v1/tasks/" + tid), 204, "delete the idempotent task")
        r = cl.post("/v1/tasks", body, headers={"Idempotency-Key": "key-1"})
        if S.status(r, 201, "same key after its task was deleted: a new task"):
            S.check(r.body["id"] != tid, "same key after delete: expected a new id")
        # keys are per namespace
        other = srv.client(srv.make_token("other-ns", "write"))
        r = other.post("/v1/tasks", body, headers={"Idempotency-Key": "key-1"})
        if S.status(r, 201, "same key in another namespace"):
            S.check(r.body["id"] != r1.body["id"], "key in another namespace: a new task")
            S.eq(r.body.get("namespace"), "other-ns", "task of the other namespace")


@S.test
def duplicate_name_409():
    with server() as srv:
        cl = srv.client(srv.admin_token)
        created(cl, http_task("dup"), "create dup")
        before = snapshot(cl)
        r = cl.post("/v1/tasks", http_task("dup", labels={"x": "y"}))
        S.error(r, 409, "conflict", "a name already used")
        S.eq(snapshot(cl), before, "409 changed nothing")
        other = srv.client(srv.make_token("ns-b", "write"))
        r = other.post("/v1/tasks", http_task("dup"))
        S.status(r, 201, "the same name in another namespace")


# --- schedules:preview -------------------------------------------------------

def preview(cl, schedule, frm=None, count=None, what=""):
    body = {"schedule": schedule}
    if frm is not None:
        body["from"] = frm
    if count is not None:
        body["count"] = count
    r = cl.post("/v1/schedules:preview", body)
    if not S.status(r, 200, "preview %s" % what):
        return None
    return r.body.get("next")


@S.test
def schedules_preview():
    with server() as srv:
        cl = srv.client(srv.admin_token)
        ny = {"cron": "30 2 * * *", "timezone": "America/New_York"}
        S.eq(preview(cl, ny, "2021-03-13T00:00:00-05:00", 4, "NY spring forward"),
             ["2021-03-13T02:30:00-05:00", "2021-03-14T03:00:00-04:00",
              "2021-03-15T02:30:00-04:00", "2021-03-16T02:30:00-04:00"],
             "preview 30 2 * * * America/New_York across the spring-forward gap")
        S.eq(preview(cl, {"cron": "30 * * * *", "timezone": "America/New_York"},
                     "2021-03-14T00:00:00-05:00", 3, "NY wildcard gap"),
             ["2021-03-14T00:30:00-05:00", "2021-03-14T01:30:00-05:00",
              "2021-03-14T03:30:00-04:00"],
             "preview 30 * * * * America/New_York: a wildcard skips the gap")
        S.eq(preview(cl, {"cron": "30 2 * * *", "timezone": "Europe/Berlin"},
                     "2026-10-24T00:00:00+02:00", 3, "Berlin fall back"),
             ["2026-10-24T02:30:00+02:00", "2026-10-25T02:30:00+02:00",
              "2026-10-26T02:30:00+01:00"],
             "preview 30 2 * * * Europe/Berlin: fixed time fires once in the repeated hour")
        S.eq(preview(cl, {"cron": "30 * * * *", "timezone": "Europe/Berlin"},
                     "2026-10-25T01:00:00+02:00", 4, "Berlin wildcard fall back"),
             ["2026-10-25T01:30:00+02:00", "2026-10-25T02:30:00+02:00",
              "2026-10-25T02:30:00+01:00", "2026-10-25T03:30:00+01:00"],
             "preview 30 * * * * Europe/Berlin: a wildcard fires twice in the repeated hour")
        S.eq(preview(cl, {"every": "90m"}, "2026-01-01T00:10:00Z", 3, "every 90m"),
             ["2026-01-01T01:30:00Z", "2026-01-01T03:00:00Z", "2026-01-01T04:30:00Z"],
             "preview every 90m (anchored at the epoch)")
        S.eq(preview(cl, {"every": "10s", "start_at": "2026-01-01T00:00:07Z"},
                     "2026-01-01T00:00:00Z", 3, "every 10s from start_at"),
             ["2026-01-01T00:00:07Z", "2026-01-01T00:00:17Z", "2026-01-01T00:00:27Z"],
             "preview every 10s anchored at start_at")
        S.eq(preview(cl, {"cron": "@every 30s"}, "2026-01-01T00:00:10Z", 2, "@every"),
             ["2026-01-01T00:00:30Z", "2026-01-01T00:01:00Z"],
             "preview cron '@every 30s' is every 30s")
        S.eq(preview(cl, {"at": "2030-01-01T00:00:00Z"}, "2026-01-01T00:00:00Z", 5, "at"),
             ["2030-01-01T00:00:00Z"], "preview at: one instant")
        S.eq(preview(cl, {"cron": "0 0 * * *", "max_runs": 2}, "2026-01-01T00:00:00Z", 5,
                     "max_runs"),
             ["2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"], "preview honours max_runs")
        nxt = preview(cl, {"cron": "0 0 1 1 *"}, "2026-01-01T00:00:00Z", None, "default count")
        S.eq(len(nxt or []), 10, "preview: count defaults to 10")
        t0 = time.time()
        nxt = preview(cl, {"every": "1h"}, None, 2, "from now")
        S.check(nxt and len(nxt) == 2 and ts(nxt[0]) > t0 - 1 and ts(nxt[0]) <= t0 + 3601,
                "preview without from: expected instants after now, got %r" % nxt)
        S.error(cl.post("/v1/schedules:preview", {"schedule": {"cron": "0 25 * * *"}}), 400,
                "invalid_argument", "preview bad cron", field="schedule.cron",
                message="schedule.cron: field 2 (hour): 25 is out of range 0-23")
        S.error(cl.post("/v1/schedules:preview", {"schedule": {"every": "1h"}, "count": 0}),
                400, "invalid_argument", "preview count 0", field="count")
        S.error(cl.post("/v1/schedules:preview", {"schedule": {"every": "1h"}, "from": "soon"}),
                400, "invalid_argument", "preview bad from", field="from")
        S.error(cl.post("/v1/schedules:preview", {"schedule": {"every": "1h"}, "colour": 1}),
                400, "invalid_argument", "preview unknown field", field="colour")
        S.error(cl.post("/v1/schedules:preview", {"from": "2026-01-01T00:00:00Z"}),
                400, "invalid_argument", "preview without schedule", field="schedule")
        S.eq(cl.list_all(), [], "preview stores nothing")


# --- validation --------------------------------------------------------------

# (what, body, field, exact message or None, substring of message or None)
INVALID = [
    ("cron hour 25", http_task(schedule={"cron": "0 25 * * *"}), "schedule.cron",
     "schedule.cron: field 2 (hour): 25 is out of range 0-23", None),
    ("cron garbage", http_task(schedule={"cron": "every tuesday"}), "schedule.cron", None, None),
    ("unknown zone", http_task(schedule={"cron": "0 3 * * *", "timezone": "Mars/Olympus"}),
     "schedule.timezone", None, 'unknown zone "Mars/Olympus"'),
    ("ftp url", http_task(target={"type": "http", "url": "ftp://example.com/x"}), "target.url",
     None, "scheme must be http or https"),
    ("no url", http_task(target={"type": "http"}), "target.url", None, None),
    ("unknown top-level field", http_task(colour="blue"), "colour", None, "unknown field"),
    ("unknown schedule field", http_task(schedule={"cron": FAR_CRON, "when": 1}),
     "schedule.when", None, "unknown field"),
    ("unknown target field", http_task(target={"type": "http", "url": URL, "verb": "GET"}),
     "target.verb", None, "unknown field"),
    ("unknown retry field", http_task(retry={"tries": 3}), "retry.tries", None, "unknown field"),
    ("name not a string", http_task(name=5), "name", None, None),
    ("name with a blank", http_task(name="a b"), "name", None, None),
    ("schedule not an object", http_task(schedule="daily"), "schedule", None, None),
    ("no schedule", {"target": {"type": "http", "url": URL}}, "schedule", None, None),
    ("two schedule kinds", http_task(schedule={"cron": FAR_CRON, "every": "1h"}), "schedule",
     None, None),
    ("every below 1s", http_task(schedule={"every": "500ms"}), "schedule.every", None, None),
    ("every not a duration", http_task(schedule={"every": "often"}), "schedule.every", None,
     None),
    ("at not a time", http_task(schedule={"at": "tomorrow"}), "schedule.at", None, None),
    ("at without offset", http_task(schedule={"at": "2099-01-01T00:00:00"}), "schedule.at",
     None, None),
    ("timezone on every", http_task(schedule={"every": "1h", "timezone": "UTC"}),
     "schedule.timezone", None, None),
    ("end before start", http_task(schedule={"cron": FAR_CRON,
                                             "start_at": "2099-01-02T00:00:00Z",
                                             "end_at": "2099-01-01T00:00:00Z"}),
     "schedule.end_at", None, None),
    ("max_runs 0", http_task(schedule={"cron": FAR_CRON, "max_runs": 0}), "schedule.max_runs",
     None, None),
    ("max_runs string", http_task(schedule={"cron": FAR_CRON, "max_runs": "3"}),
     "schedule.max_runs", None, None),
    ("no target", {"schedule": {"cron": FAR_CRON}}, "target", None, None),
    ("target not an object", http_task(target=3), "target", None, None),
    ("target type", http_task(target={"type": "ftp"}), "target.type", None, None),
    ("shell without command", http_task(target={"type": "shell"}), "target.command", None,
     None),
    ("relative cwd", http_task(target={"type": "shell", "command": "true", "cwd": "tmp"}),
     "target.cwd", None, None),
    ("bad env name", http_task(target={"type": "shell", "command": "true", "env": {"1X": "a"}}),
     "target.env.1X", None, None),
    ("http method", http_task(target={"type": "http", "url": URL, "method": "FETCH"}),
     "target.method", None, None),
    ("http expect", http_task(target={"type": "http", "url": URL, "expect": "ok"}),
     "target.expect", None, None),
    ("timeout not a duration", http_task(target={"type": "http", "url": URL, "timeout": "x"}),
     "target.timeout", None, None),
    ("retry max_attempts string", http_task(retry={"max_attempts": "3"}),
     "retry.max_attempts", None, None),
    ("retry max_attempts 0", http_task(retry={"max_attempts": 0}), "retry.max_attempts", None,
     None),
    ("retry backoff type", http_task(retry={"backoff": 10}), "retry.backoff", None, None),
    ("retry not an object", http_task(retry=[]), "retry", None, None),
    ("overlap", http_task(overlap="sometimes"), "overlap", None, None),
    ("misfire", http_task(misfire=True), "misfire", None, None),
    ("queue with a blank", http_task(queue="a queue"), "queue", None, None),
    ("labels an array", http_task(labels=["a"]), "labels", None, None),
    ("label value a number", http_task(labels={"a": 1}), "labels.a", None, None),
    ("jitter", http_task(schedule={"cron": FAR_CRON, "jitter": "2 hours"}), "schedule.jitter",
     None, None),
]


@S.test
def validation_errors_name_the_field():
    with server() as srv:
        cl = srv.client(srv.admin_token)
        keep = created(cl, http_task("keep"), "create")
        before = snapshot(cl)
        for what, body, field, msg, sub in INVALID:
            r = cl.post("/v1/tasks", body)
            S.error(r, 400, "invalid_argument", "POST /v1/tasks with " + what, field=field,
                    message=msg, contains=sub)
            r = cl.put("/v1/tasks/" + keep["id"], body)
            S.error(r, 400, "invalid_argument", "PUT with " + what, field=field)
        for what, body in (("an array", [http_task()]), ("a string", "\"task\""),
                           ("null", "null"), ("a number", "3")):
            S.error(cl.post("/v1/tasks", body), 400, "invalid_argument",
                    "POST /v1/tasks with %s as the body" % what)
        S.eq(snapshot(cl), before, "rejected creates/replaces changed nothing")


@S.test
def malformed_bodies():
    with server() as srv:
        cl = srv.client(srv.admin_token)
        keep = created(cl, http_task("keep"), "create")
        before = snapshot(cl)
        r = cl.post("/v1/tasks", '{"name": "x",\n "schedule": {"cron": }}')
        S.error(r, 400, "invalid_argument", "malformed JSON")
        msg = r.err("message") or ""
        S.check(re.search(r"line \d+", msg) and re.search(r"column \d+", msg),
                "malformed JSON: expected the message to give a position (line, column), "
                "got %r" % msg)
        S.check("line 2" in msg, "malformed JSON: expected the error on line 2, got %r" % msg)
        S.error(cl.post("/v1/tasks", '{"name": "x"} trailing'), 400, "invalid_argument",
                "JSON with trailing garbage")
        S.error(cl.post("/v1/tasks", '{"name": "a", "name": "b"}'), 400, "invalid_argument",
                "JSON with a duplicate key")
        S.error(cl.post("/v1/tasks", b"\xff\xfe{}"), 400, "invalid_argument",
                "body that is not UTF-8")
        r = cl.request("POST", "/v1/tasks", body=None, headers={"Content-Type": "application/json"})
        S.error(r, 400, "invalid_argument", "POST /v1/tasks with no body")
        deep = '{"labels":' * 100 + "{}" + "}" * 100
        S.error(cl.post("/v1/tasks", deep), 400, "invalid_argument", "JSON nested 100 deep")
        deep = "[" * 100 + "]" * 100
        S.error(cl.post("/v1/tasks:batch", deep), 400, "invalid_argument",
                "batch nested 100 deep")
        S.error(cl.post("/v1/tasks", json.dumps(http_task()), content_type="text/plain"),
                415, "unsupported_media_type", "Content-Type text/plain")
        S.error(cl.post("/v1/tasks", json.dumps(http_task()), content_type=None), 415,
                "unsupported_media_type", "no Content-Type")
        S.error(cl.put("/v1/tasks/" + keep["id"], json.dumps(http_task()),
                       content_type="application/x-www-form-urlencoded"),
                415, "unsupported_media_type", "PUT with a form Content-Type")
        r = cl.post("/v1/tasks", http_task("ct-ok"), content_type="Application/JSON; charset=UTF-8")
        S.status(r, 201, "Content-Type Application/JSON; charset=UTF-8")
        cl.delete("/v1/tasks/ct-ok")
        # > 1 MiB with Expect: 100-continue: 413 at once, the body never sent
        big = 1024 * 1024 + 1
        head = ("POST /v1/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                "Content-Type: application/json\r\nContent-Length: %d\r\n"
                "Expect: 100-continue\r\n\r\n" % (srv.admin_token, big)).encode()
        st, body = parse_raw_status(raw_http(srv.host, srv.port, head))
        S.eq(st, 413, "Content-Length of 1 MiB + 1 with Expect: 100-continue: status")
        S.check("payload_too_large" in body, "413 body: expected code payload_too_large, got %r"
                % body[:200])
        # a flood announced (100 MiB): 413 at once, without waiting for the body
        head = head.replace(b"Content-Length: %d" % big, b"Content-Length: %d" % (100 << 20))
        head = head.replace(b"Expect: 100-continue\r\n", b"")
        st, body = parse_raw_status(raw_http(srv.host, srv.port, head))
        S.eq(st, 413, "Content-Length of 100 MiB (headers only): status")
        # > 1 MiB sent with its Content-Length: read away, then 413, and the
        # connection stays usable
        payload = ('{"name":"big","labels":{"a":"' + "x" * (1024 * 1024 + 100) + '"}}').encode()
        c2 = srv.client(srv.admin_token)
        try:
            r = c2.request("POST", "/v1/tasks", body=payload, retry=False)
            S.error(r, 413, "payload_too_large", "body of 1 MiB + 100 with Content-Length")
            r = c2.request("GET", "/healthz", retry=False)
            S.status(r, 200, "the connection after a 413 stays usable")
        except (ConnectionError, OSError) as e:
            S.fail("body of 1 MiB + 100: expected 413, the connection failed: %s" % e)
        finally:
            c2.close()

        # > 1 MiB sent chunked: counted as it arrives
        def chunks():
            for i in range(0, len(payload), 65536):
                yield payload[i:i + 65536]
        c2 = srv.client(srv.admin_token)
        try:
            # an iterable body without Content-Length: http.client sends it chunked
            r = c2.request("POST", "/v1/tasks", body=chunks(), retry=False)
            S.error(r, 413, "payload_too_large", "chunked body of 1 MiB + 100")
        except (ConnectionError, OSError) as e:
            S.fail("chunked body of 1 MiB + 100: expected 413, the connection failed: %s" % e)
        finally:
            c2.close()
        # just under the limit is read (and judged on its content)
        small = json.dumps(http_task("near-limit", target={"type": "http", "url": URL,
                                                            "body": "y" * 60000}))
        r = cl.post("/v1/tasks", small)
        S.check(r.status in (201, 400), "60 kB body: expected 201 or a 400 on a field, got %d %s"
                % (r.status, r.body))
        if r.status == 201:
            cl.delete("/v1/tasks/near-limit")
        S.eq(snapshot(cl), before, "malformed requests changed nothing")
        S.status(cl.get("/healthz"), 200, "server still serves after malformed requests")


# --- paths, methods ----------------------------------------------------------

@S.test
def unknown_path_and_wrong_method():
    with server() as srv:
        cl = srv.client(srv.admin_token)
        for p in ("/v1/nope", "/v1/tasks/x/y/z", "/v2/tasks", "/nope", "/v1/taskz",
                  "/v1/tasks:explode"):
            S.error(cl.get(p), 404, "not_found", "GET " + p)
        S.error(cl.get("/v1/nope", token=None), 404, "not_found", "GET /v1/nope without token")
        for m, p in (("PATCH", "/v1/tasks"), ("DELETE", "/v1/tasks"), ("GET", "/v1/tasks:batch"),
                     ("POST", "/v1/tasks/x"), ("GET", "/v1/tasks/x:pause"),
                     ("PUT", "/healthz"), ("POST", "/metrics"), ("DELETE", "/v1/runs"),
                     ("GET", "/v1/schedules:preview"), ("PUT", "/v1/tokens")):
            r = cl.request(m, p)
            S.error(r, 405, "method_not_allowed", "%s %s" % (m, p))
        r = cl.get("/")
        S.check(r.status in (200, 301, 302, 404), "GET /: expected the dashboard (or 404), got %d"
                % r.status)


@S.test
def keep_alive_survives_error_answers():
    with server() as srv:
        cl = srv.client(srv.admin_token)
        created(cl, http_task("ka"), "create")
        calls = [
            ("GET", "/v1/tasks", None, {}, 200),
            ("POST", "/v1/tasks", "{bad", {}, 400),
            ("GET", "/v1/tasks", None, {"Authorization": "Bearer nope"}, 401),
            ("GET", "/v1/nope", None, {}, 404),
            ("PATCH", "/v1/tasks", None, {}, 405),
            ("POST", "/v1/tasks", http_task("ka"), {}, 409),
            ("PUT", "/v1/tasks/ka", http_task("ka"), {"If-Match": "9"}, 412),
            ("GET", "/v1/tasks/ka", None, {}, 200),
        ]
        for m, p, b, h, want in calls * 3:
            r = cl.request(m, p, b, headers=h)
            S.eq(r.status, want, "%s %s on a kept-alive connection" % (m, p))
        S.eq(cl.connects, 1, "connections opened for 24 requests with error answers")
        r = cl.post("/v1/tasks", "{}", content_type="text/plain")
        S.eq(r.status, 415, "415 on a kept-alive connection")
        S.status(cl.get("/healthz"), 200, "a request after the 415")


# --- authentication and roles ------------------------------------------------

def v1_routes(tid, run_id, tok_id):
    """(method, path, body) of every /v1 route."""
    return [
        ("POST", "/v1/tasks", http_task("x-new")),
        ("GET", "/v1/tasks", None),
        ("POST", "/v1/tasks:batch", {"tasks": [http_task("x-batch")]}),
        ("GET", "/v1/tasks/" + tid, None),
        ("PUT", "/v1/tasks/" + tid, http_task("x-put")),
        ("DELETE", "/v1/tasks/" + tid, None),
        ("POST", "/v1/tasks/%s:pause" % tid, None),
        ("POST", "/v1/tasks/%s:resume" % tid, None),
        ("POST", "/v1/tasks/%s:trigger" % tid, None),
        ("GET", "/v1/tasks/%s/runs" % tid, None),
        ("GET", "/v1/runs", None),
        ("GET", "/v1/runs/" + run_id, None),
        ("POST", "/v1/runs/%s:cancel" % run_id, None),
        ("POST", "/v1/schedules:preview", {"schedule": {"every": "1h"}}),
        ("GET", "/v1/workers", None),
        ("POST", "/v1/tokens", {"namespace": "default", "role": "admin"}),
        ("GET", "/v1/tokens", None),
        ("DELETE", "/v1/tokens/" + tok_id, None),
    ]


@S.test
def every_v1_route_needs_a_token():
    with server() as srv:
        adm = srv.client(srv.admin_token)
        t = created(adm, http_task("guarded"), "create")
        tok = adm.post("/v1/tokens", {"namespace": "default", "role": "read"})
        tok_id = tok.body.get("id", str(uuid.uuid4())) if tok.status == 201 else str(uuid.uuid4())
        before = snapshot(adm)
        tokens_before = adm.get("/v1/tokens").body
        cl = srv.client()
        for m, p, b in v1_routes(t["id"], str(uuid.uuid4()), tok_id):
            S.error(cl.request(m, p, b, token=None), 401, "unauthenticated",
                    "%s %s without a token" % (m, p))
            S.error(cl.request(m, p, b, token="sked_not_a_real_token"), 401, "unauthenticated",
                    "%s %s with an unknown token" % (m, p))
            S.error(cl.request(m, p, b, headers={"Authorization": "Basic YTpi"}, token=None),
                    401, "unauthenticated", "%s %s with Basic auth" % (m, p))
            S.error(cl.request(m, p, b, token=""), 401, "unauthenticated",
                    "%s %s with an empty bearer token" % (m, p))
        S.eq(snapshot(adm), before, "unauthenticated requests changed no task")
        S.eq(adm.get("/v1/tokens").body, tokens_before, "unauthenticated requests changed no token")


@S.test
def roles():
    with server() as srv:
        adm = srv.client(srv.admin_token)
        t = created(adm, http_task("role-t"), "create")
        tid = t["id"]
        rd = srv.client(srv.make_token("default", "read"))
        wr = srv.client(srv.make_token("default", "write"))
        sh = srv.client(srv.make_token("default", "shell"))
        # read: GET only
        for p in ("/v1/tasks", "/v1/tasks/" + tid, "/v1/tasks/%s/runs" % tid, "/v1/runs",
                  "/v1/workers"):
            S.status(rd.get(p), 200, "read token GET " + p)
        before = snapshot(adm)
        for m, p, b in (("POST", "/v1/tasks", http_task("r-1")),
                        ("POST", "/v1/tasks:batch", {"tasks": [http_task("r-2")]}),
                        ("PUT", "/v1/tasks/" + tid, http_task("role-t", labels={"a": "b"})),
                        ("DELETE", "/v1/tasks/" + tid, None),
                        ("POST", "/v1/tasks/%s:pause" % tid, None),
                        ("POST", "/v1/tasks/%s:resume" % tid, None),
                        ("POST", "/v1/tasks/%s:trigger" % tid, None),
                        ("POST", "/v1/runs/%s:cancel" % uuid.uuid4(), None),
                        ("POST", "/v1/tokens", {"namespace": "default", "role": "admin"}),
                        ("GET", "/v1/tokens", None)):
            S.error(rd.request(m, p, b), 403, "permission_denied", "read token %s %s" % (m, p))
        # write: http targets, pause, resume; no shell targets, no tokens
        r = wr.post("/v1/tasks", shell_task("w-shell"))
        S.error(r, 403, "permission_denied", "write token creating a shell target",
                field="target.type")
        r = wr.post("/v1/tasks:batch", {"tasks": [http_task("w-b1"), shell_task("w-b2")]})
        S.error(r, 403, "permission_denied", "write token batch with a shell target",
                field="tasks[1].target.type")
        r = wr.put("/v1/tasks/" + tid, shell_task("role-t"))
        S.error(r, 403, "permission_denied", "write token replacing with a shell target",
                field="target.type")
        for m, p, b in (("POST", "/v1/tokens", {"namespace": "default", "role": "write"}),
                        ("GET", "/v1/tokens", None)):
            S.error(wr.request(m, p, b), 403, "permission_denied", "write token %s %s" % (m, p))
            S.error(sh.request(m, p, b), 403, "permission_denied", "shell token %s %s" % (m, p))
        S.eq(snapshot(adm), before, "forbidden requests changed nothing")
        r = wr.post("/v1/tasks", http_task("w-http"))
        S.status(r, 201, "write token creating an http target")
        S.status(wr.post("/v1/tasks/w-http:pause"), 200, "write token pause")
        S.status(wr.post("/v1/tasks/w-http:resume"), 200, "write token resume")
        S.status(wr.put("/v1/tasks/w-http", http_task("w-http", labels={"a": "b"})), 200,
                 "write token PUT (http target)")
        r = wr.post("/v1/tasks/w-http:trigger")
        S.check(r.status in (202, 503), "write token trigger: expected 202 (or 503 before the "
                "scheduler exists), got %d %s" % (r.status, r.body))
        S.status(wr.delete("/v1/tasks/w-http"), 204, "write token DELETE (http task)")
        # shell and admin: shell targets
        S.status(sh.post("/v1/tasks", shell_task("s-shell")), 201, "shell token shell target")
        S.status(sh.post("/v1/tasks", http_task("s-http")), 201, "shell token http target")
        S.status(adm.post("/v1/tasks", shell_task("a-shell")), 201, "admin token shell target")
        # a shell task may be changed only by the roles that may create one
        # (docs/api.md, Roles); a write token may still read it
        before = snapshot(adm)
        for m, p, b in (("PUT", "/v1/tasks/s-shell", http_task("s-shell")),
                        ("DELETE", "/v1/tasks/s-shell", None),
                        ("POST", "/v1/tasks/s-shell:pause", None),
                        ("POST", "/v1/tasks/s-shell:resume", None),
                        ("POST", "/v1/tasks/s-shell:trigger", None)):
            S.error(wr.request(m, p, b), 403, "permission_denied",
                    "write token %s %s (a shell task)" % (m, p), field="target.type")
        S.status(wr.get("/v1/tasks/s-shell"), 200, "write token GET a shell task")
        S.eq(snapshot(adm), before, "refused changes to a shell task changed nothing")
        S.status(sh.post("/v1/tasks/s-shell:pause"), 200, "shell token pauses a shell task")
        S.status(sh.delete("/v1/tasks/s-shell"), 204, "shell token deletes a shell task")


@S.test
def namespaces_are_isolated():
    with server() as srv:
        adm = srv.client(srv.admin_token)
        mine = created(adm, http_task("secret", labels={"team": "a"}), "create in default")
        other = srv.client(srv.make_token("other", "admin"))
        theirs = created(other, http_task("theirs"), "create in other")
        before = snapshot(adm, other)
        for ref in (mine["id"], "secret"):
            S.error(other.get("/v1/tasks/" + ref), 404, "not_found", "other ns GET " + ref)
            S.error(other.put("/v1/tasks/" + ref, http_task("secret")), 404, "not_found",
                    "other ns PUT " + ref)
            S.error(other.put("/v1/tasks/" + ref, http_task("secret"),
                              headers={"If-Match": "1"}), 404, "not_found",
                    "other ns PUT with If-Match " + ref)
            S.error(other.delete("/v1/tasks/" + ref), 404, "not_found", "other ns DELETE " + ref)
            S.error(other.post("/v1/tasks/%s:pause" % ref), 404, "not_found",
                    "other ns pause " + ref)
            S.error(other.post("/v1/tasks/%s:resume" % ref), 404, "not_found",
                    "other ns resume " + ref)
            S.error(other.post("/v1/tasks/%s:trigger" % ref), 404, "not_found",
                    "other ns trigger " + ref)
            S.error(other.get("/v1/tasks/%s/runs" % ref), 404, "not_found",
                    "other ns runs of " + ref)
        S.eq(snapshot(adm, other), before, "cross-namespace requests changed nothing")
        S.eq([t["id"] for t in other.list_all()], [theirs["id"]], "other ns list")
        for q in ("name_prefix=sec", "label=team:a", "queue=default", "state=active"):
            S.check(all(t["id"] != mine["id"] for t in other.list_all(q)),
                    "other ns list?%s: expected not to see default's task" % q)
        S.eq([t["id"] for t in adm.list_all()], [mine["id"]], "default ns list")
        S.error(adm.get("/v1/tasks/" + theirs["id"]), 404, "not_found",
                "default ns GET other's task")
        # the same name in both namespaces
        r = other.post("/v1/tasks", http_task("secret"))
        S.status(r, 201, "other ns may use the name 'secret' too")
        S.eq(adm.get("/v1/tasks/secret").body.get("id"), mine["id"],
             "GET by name resolves in the caller's namespace")


@S.test
def token_api():
    with server() as srv:
        adm = srv.client(srv.admin_token)
        r = adm.get("/v1/tokens")
        if S.status(r, 200, "GET /v1/tokens"):
            toks = r.body.get("tokens", [])
            S.check(len(toks) == 1 and toks[0].get("namespace") == "default"
                    and toks[0].get("role") == "admin",
                    "GET /v1/tokens: expected the first admin token (default, admin), got %r" % toks)
        r = adm.post("/v1/tokens", {"namespace": "team-x", "role": "write"})
        if not S.status(r, 201, "POST /v1/tokens"):
            return
        new = r.body
        S.check(isinstance(new.get("token"), str) and len(new["token"]) >= 16,
                "POST /v1/tokens: expected a token secret, got %r" % new)
        S.eq(new.get("namespace"), "team-x", "new token namespace")
        S.eq(new.get("role"), "write", "new token role")
        cl = srv.client(new["token"])
        r = cl.get("/v1/tasks")
        S.status(r, 200, "the new token works at once")
        S.eq(r.body.get("tasks") if r.status == 200 else None, [], "new namespace: no tasks")
        r = cl.post("/v1/tasks", http_task("x"))
        if S.status(r, 201, "new write token creates a task"):
            S.eq(r.body.get("namespace"), "team-x", "task of the new token's namespace")
        S.error(cl.post("/v1/tasks", shell_task()), 403, "permission_denied",
                "new write token creating a shell target")
        r = adm.get("/v1/tokens")
        ids = [t.get("id") for t in r.body.get("tokens", [])]
        S.check(new.get("id") in ids, "GET /v1/tokens lists the new token")
        S.check(all("token" not in t for t in r.body.get("tokens", [])),
                "GET /v1/tokens must not show secrets")
        S.check(srv.admin_token not in json.dumps(r.body), "GET /v1/tokens leaks a secret")
        # bad requests
        S.error(adm.post("/v1/tokens", {"namespace": "team-x", "role": "god"}), 400,
                "invalid_argument", "POST /v1/tokens role god", field="role")
        S.error(adm.post("/v1/tokens", {"namespace": 5, "role": "read"}), 400,
                "invalid_argument", "POST /v1/tokens namespace 5", field="namespace")
        S.error(adm.post("/v1/tokens", "{bad"), 400, "invalid_argument",
                "POST /v1/tokens malformed JSON")
        # a typo must not silently make an admin token of the caller's namespace
        S.error(adm.post("/v1/tokens", {"namspace": "team-y", "role": "admin"}), 400,
                "invalid_argument", "POST /v1/tokens with an unknown field (typo namspace)",
                field="namspace")
        S.eq([t.get("id") for t in adm.get("/v1/tokens").body.get("tokens", [])], ids,
             "rejected token requests created nothing")
        # an admin token of another namespace may manage tokens too
        r = adm.post("/v1/tokens", {"namespace": "ops", "role": "admin"})
        if S.status(r, 201, "POST /v1/tokens admin of ops"):
            ops = srv.client(r.body["token"])
            S.status(ops.get("/v1/tokens"), 200, "ops admin GET /v1/tokens")
        # revoke
        r = adm.delete("/v1/tokens/" + new["id"])
        S.status(r, 204, "DELETE /v1/tokens/{id}")
        S.error(cl.get("/v1/tasks"), 401, "unauthenticated", "revoked token GET")
        S.error(cl.post("/v1/tasks", http_task("y")), 401, "unauthenticated", "revoked token POST")
        S.error(adm.delete("/v1/tokens/" + str(uuid.uuid4())), 404, "not_found",
                "DELETE unknown token")
        S.status(adm.get("/v1/tasks"), 200, "the admin token still works")


def in_parallel(srv, n, fn):
    """Run fn(client, i) in n threads released together; their results."""
    res, errs = [None] * n, []
    bar = threading.Barrier(n, timeout=10)

    def work(i):
        cl = srv.client(srv.admin_token)
        try:
            cl.get("/healthz")          # connect first, then start together
            bar.wait()
            res[i] = fn(cl, i)
        except Exception as e:          # reported by the caller
            errs.append("%s: %s" % (type(e).__name__, e))
        finally:
            cl.close()
    th = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(n)]
    for t in th:
        t.start()
    for t in th:
        t.join(20)
    if errs:
        raise AssertionError("parallel requests failed: %s" % errs[:3])
    return res


def statuses(res):
    return sorted(r.status for r in res)


@S.test
def concurrent_conflicts():
    """Racing writers: the store decides, exactly one wins where one must."""
    with server() as srv:
        cl = srv.client(srv.admin_token)
        created(cl, http_task("race"), "create")
        for rnd in range(3):
            v = cl.get("/v1/tasks/race").body["version"]
            res = in_parallel(srv, 8, lambda c, i: c.put(
                "/v1/tasks/race", http_task("race", labels={"i": str(i)}),
                headers={"If-Match": str(v)}))
            S.eq(statuses(res), [200] + [412] * 7,
                 "round %d: 8 PUTs with the same If-Match: one 200, seven 412" % rnd)
            res = in_parallel(srv, 8, lambda c, i: c.post("/v1/tasks", http_task("n%d" % rnd)))
            S.eq(statuses(res), [201] + [409] * 7,
                 "round %d: 8 creates of one name: one 201, seven 409" % rnd)
            body = json.dumps(http_task(labels={"r": str(rnd)}))
            res = in_parallel(srv, 8, lambda c, i: c.post(
                "/v1/tasks", body, headers={"Idempotency-Key": "race-%d" % rnd}))
            S.eq(statuses(res), [200] * 7 + [201],
                 "round %d: 8 creates with one Idempotency-Key: one 201, seven 200" % rnd)
            S.eq(len({r.body.get("id") for r in res if r.status < 300}), 1,
                 "round %d: one Idempotency-Key gives one task id" % rnd)
        S.eq(len(cl.list_all()), 1 + 3 + 3, "tasks stored after the races")


@S.test
def writes_without_if_match_never_412():
    """PUT without If-Match, pause and resume carry no precondition: racing
    with another write they must still answer 200 (never 412)."""
    with server() as srv:
        cl = srv.client(srv.admin_token)
        created(cl, http_task("lww"), "create")
        for rnd in range(3):
            v0 = cl.get("/v1/tasks/lww").body["version"]
            res = in_parallel(srv, 8, lambda c, i: c.put(
                "/v1/tasks/lww", http_task("lww", labels={"i": str(i)})))
            bad = [(r.status, r.body) for r in res if r.status != 200]
            S.check(not bad, "round %d: 8 racing PUTs without If-Match: expected all 200, got %s"
                    % (rnd, bad[:2]))
            v1 = cl.get("/v1/tasks/lww").body["version"]
            S.eq(v1 - v0, sum(r.status == 200 for r in res),
                 "round %d: each PUT that answered 200 raised the version once" % rnd)
            res = in_parallel(srv, 8, lambda c, i: c.post(
                "/v1/tasks/lww:" + ("pause" if i % 2 else "resume")))
            bad = [(r.status, r.body) for r in res if r.status != 200]
            S.check(not bad, "round %d: 8 racing pause/resume: expected all 200, got %s"
                    % (rnd, bad[:2]))


@S.test
def runs_workers_trigger_shapes():
    with server() as srv:
        cl = srv.client(srv.admin_token)
        t = created(cl, http_task("rw"), "create")
        r = cl.get("/v1/runs")
        if S.status(r, 200, "GET /v1/runs"):
            S.check(isinstance(r.body.get("runs"), list) and "next_cursor" in r.body,
                    "GET /v1/runs: expected {runs: [...], next_cursor}, got %r" % r.body)
        r = cl.get("/v1/tasks/%s/runs" % t["id"])
        if S.status(r, 200, "GET /v1/tasks/{id}/runs"):
            S.check(isinstance(r.body.get("runs"), list),
                    "GET /v1/tasks/{id}/runs: expected {runs: [...]}, got %r" % r.body)
        S.status(cl.get("/v1/tasks/rw/runs"), 200, "GET /v1/tasks/{name}/runs")
        S.error(cl.get("/v1/tasks/%s/runs" % uuid.uuid4()), 404, "not_found",
                "runs of an unknown task")
        S.error(cl.get("/v1/runs/" + str(uuid.uuid4())), 404, "not_found", "GET unknown run")
        S.error(cl.post("/v1/runs/%s:cancel" % uuid.uuid4()), 404, "not_found",
                "cancel unknown run")
        r = cl.get("/v1/workers")
        if S.status(r, 200, "GET /v1/workers"):
            S.check(isinstance(r.body.get("workers"), list),
                    "GET /v1/workers: expected {workers: [...]}, got %r" % r.body)
        r = cl.post("/v1/tasks/%s:trigger" % t["id"])
        if r.status == 202:
            S.eq(r.body.get("task_id"), t["id"], "trigger: a run of the task")
        else:
            S.error(r, 503, "unavailable", "trigger (202, or 503 until the scheduler lands)")
        S.error(cl.post("/v1/tasks/%s:trigger" % uuid.uuid4()), 404, "not_found",
                "trigger unknown task")


@S.test
def rejected_requests_change_nothing():
    """One more sweep: a mix of every kind of rejection, then a full compare
    of both namespaces' tasks and the token list."""
    with server() as srv:
        adm = srv.client(srv.admin_token)
        other = srv.client(srv.make_token("other", "write"))
        rd = srv.client(srv.make_token("default", "read"))
        a = created(adm, http_task("a", labels={"k": "v"}), "create a")
        created(adm, http_task("b"), "create b")
        o = created(other, http_task("o"), "create o")
        adm.post("/v1/tasks/b:pause")
        before = snapshot(adm, other)
        toks = adm.get("/v1/tokens").body
        attempts = [
            (adm, "POST", "/v1/tasks", http_task("a")),                       # 409 name
            (adm, "POST", "/v1/tasks", http_task("z", schedule={"cron": "61 * * * *"})),
            (adm, "POST", "/v1/tasks", "{oops"),
            (adm, "POST", "/v1/tasks:batch", {"tasks": [http_task("n1"), {"x": 1}]}),
            (adm, "PUT", "/v1/tasks/a", http_task("a", overlap="never")),
            (adm, "PUT", "/v1/tasks/" + o["id"], http_task("o")),           # other ns
            (adm, "DELETE", "/v1/tasks/" + o["id"], None),
            (adm, "POST", "/v1/tasks/%s:pause" % o["id"], None),
            (other, "POST", "/v1/tasks/b:resume", None),
            (other, "DELETE", "/v1/tasks/" + a["id"], None),
            (other, "POST", "/v1/tasks", shell_task("sh")),                 # 403
            (rd, "POST", "/v1/tasks", http_task("rd")),
            (rd, "DELETE", "/v1/tasks/a", None),
            (rd, "POST", "/v1/tokens", {"namespace": "default", "role": "admin"}),
            (other, "DELETE", "/v1/tokens/" + toks["tokens"][0]["id"], None),
            (adm, "DELETE", "/v1/tokens/" + str(uuid.uuid4()), None),
            (adm, "POST", "/v1/tokens", {"namespace": "x", "role": "root"}),
        ]
        for cl, m, p, b in attempts:
            r = cl.request(m, p, b)
            S.check(400 <= r.status < 500, "%s %s: expected a 4xx, got %d %s"
                    % (m, p, r.status, r.body))
        r = adm.put("/v1/tasks/a", http_task("a"), headers={"If-Match": "7"})
        S.error(r, 412, "precondition_failed", "PUT with If-Match: 7")
        S.eq(snapshot(adm, other), before, "rejected requests changed no task")
        S.eq(adm.get("/v1/tokens").body, toks, "rejected requests changed no token")


if __name__ == "__main__":
    S.run()
