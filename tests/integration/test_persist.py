#!/usr/bin/env python3
"""test_persist.py - what survives a restart and a crash (DESIGN.md §2.1:
a 2xx answer means the task is committed).

- restart: tasks, tokens, idempotency keys and admin.token come back
  identical after SIGTERM and a restart on the same data dir.
- `sked token create` / `sked token revoke` act at once on a running server.
- SIGTERM under load: the server stops cleanly, and nothing it acknowledged
  is lost.
- crash: 4 client threads create tasks as fast as they can (single creates,
  unnamed creates, creates with Idempotency-Key, batches of 10); the server
  is SIGKILLed at a random moment; after a restart every acknowledged task is
  there exactly as answered, nothing appears twice, every batch is all or
  nothing, and an in-flight request retried with its Idempotency-Key yields
  one task.  Three rounds on the same data dir.

Run: python3 tests/integration/test_persist.py [TEST_NAME...]
(SKED=path/to/sked; SKED_TEST_SEED=N repeats a crash schedule)
"""
import json
import os
import random
import sqlite3
import stat
import sys
import threading
import time

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from skedtest import Server, Suite, run_cli  # noqa: E402

S = Suite("test_persist", timeout=40)

URL = "http://127.0.0.1:9/hook"
FAR_CRON = "0 3 1 1 *"


def http_task(name=None, **over):
    t = {"schedule": {"cron": FAR_CRON}, "target": {"type": "http", "url": URL}}
    if name is not None:
        t["name"] = name
    t.update(over)
    return t


def file_mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def must(r, status, what):
    if r.status != status:
        raise AssertionError("%s: expected %d, got %d %s" % (what, status, r.status, r.body))
    return r.body


def by_id(tasks):
    return {t["id"]: t for t in tasks}


def tokens_of(cl):
    return sorted(must(cl.get("/v1/tokens"), 200, "GET /v1/tokens")["tokens"],
                  key=lambda t: t["id"])


# --- restart -------------------------------------------------------------------

@S.test
def restart_keeps_everything():
    srv = Server()
    try:
        srv.start()
        tok_path = os.path.join(srv.data, "admin.token")
        admin = srv.admin_token
        S.eq(file_mode(tok_path), 0o600, "admin.token file mode")
        S.check(any(l.startswith("wrote admin token") for l in srv.stdout_lines),
                "first start: expected `wrote admin token ...` on stdout, got %r"
                % srv.stdout_lines)
        cl = srv.client(admin)
        must(cl.post("/v1/tasks", http_task(
            "berlin", labels={"team": "data", "k/x": "a:b"},
            schedule={"cron": "0 3 * * *", "timezone": "Europe/Berlin",
                      "start_at": "2099-12-01T00:00:00Z", "end_at": "2100-06-01T00:00:00.250Z",
                      "max_runs": 40, "jitter": "30s"},
            retry={"max_attempts": 5, "backoff": "1s", "max_backoff": "1m", "multiplier": 1.5},
            overlap="queue_one", misfire="run_all", misfire_grace="5m", queue="q-1")),
            201, "create berlin")
        must(cl.post("/v1/tasks", http_task("every", schedule={
            "every": "1h30m", "start_at": "2099-01-01T00:00:00Z"})), 201, "create every")
        must(cl.post("/v1/tasks", http_task("once", schedule={
            "at": "2099-01-01T00:00:00.123+05:45"})), 201, "create once")
        must(cl.post("/v1/tasks", {
            "name": "shell", "schedule": {"cron": FAR_CRON},
            "target": {"type": "shell", "command": "echo 'hi there' && exit 3",
                       "env": {"MODE": "full", "EMPTY": ""}, "cwd": "/tmp", "timeout": "10m"}}),
            201, "create shell")
        must(cl.post("/v1/tasks", http_task("web", target={
            "type": "http", "url": "https://example.com/x?y=1", "method": "PUT",
            "headers": {"X-A": "b"}, "body": "{\"k\": \"\\u00e9\"}", "expect": "200-204",
            "timeout": "5s"})), 201, "create web")
        must(cl.post("/v1/tasks", http_task("paused")), 201, "create paused")
        must(cl.post("/v1/tasks/paused:pause"), 200, "pause")
        must(cl.post("/v1/tasks", http_task("edited")), 201, "create edited")
        must(cl.put("/v1/tasks/edited", http_task("edited", labels={"v": "2"}),
                    headers={"If-Match": "1"}), 200, "PUT edited")
        gone = must(cl.post("/v1/tasks", http_task("gone")), 201, "create gone")
        must(cl.delete("/v1/tasks/gone"), 204, "delete gone")
        must(cl.post("/v1/tasks:batch", {"tasks": [http_task("b-%02d" % i)
                                                   for i in range(50)]}), 201, "batch")
        idem_body = json.dumps(http_task("idem"))
        idem = must(cl.post("/v1/tasks", idem_body, headers={"Idempotency-Key": "k-1"}),
                    201, "create with Idempotency-Key")
        api_tok = must(cl.post("/v1/tokens", {"namespace": "team-x", "role": "write"}), 201,
                       "POST /v1/tokens")
        tx = srv.client(api_tok["token"])
        must(tx.post("/v1/tasks", http_task("berlin")), 201, "create in team-x")
        dead = must(cl.post("/v1/tokens", {"namespace": "team-x", "role": "read"}), 201,
                    "POST /v1/tokens (to revoke)")
        must(cl.delete("/v1/tokens/" + dead["id"]), 204, "revoke")
        cli_tok = srv.make_token("cli-ns", "shell")

        tasks = by_id(cl.list_all())
        tasks_x = by_id(tx.list_all())
        toks = tokens_of(cl)
        S.eq(len(tasks), 58, "tasks before restart")

        for rnd in (1, 2):
            rc = srv.stop()
            S.eq(rc, 0, "restart %d: exit status after SIGTERM" % rnd)
            seen = len(srv.stdout_lines)
            srv.start()
            S.check(not any(l.startswith("wrote admin token") for l in srv.stdout_lines[seen:]),
                    "restart %d: must not write a new admin token" % rnd)
            S.eq(srv.admin_token, admin, "restart %d: admin.token unchanged" % rnd)
            S.eq(file_mode(tok_path), 0o600, "restart %d: admin.token file mode" % rnd)
            cl = srv.client(admin)
            tx = srv.client(api_tok["token"])
            r = cl.get("/v1/tasks")
            S.status(r, 200, "restart %d: the admin token still works" % rnd)
            after = by_id(cl.list_all())
            S.eq(sorted(after), sorted(tasks), "restart %d: the same task ids" % rnd)
            for tid, t in tasks.items():
                if tid in after:
                    S.eq(after[tid], t, "restart %d: task %s identical" % (rnd, t.get("name")))
            for tid, t in list(tasks.items())[:10]:
                r = cl.get("/v1/tasks/" + tid)
                S.check(r.status == 200 and r.body == t and r.headers.get("ETag") ==
                        '"%d"' % t["version"],
                        "restart %d: GET %s: expected the same task and ETag" % (rnd, tid))
            S.eq(by_id(tx.list_all()), tasks_x, "restart %d: team-x tasks identical" % rnd)
            S.eq(tokens_of(cl), toks, "restart %d: tokens identical" % rnd)
            S.error(cl.get("/v1/tasks/" + gone["id"]), 404, "not_found",
                    "restart %d: a deleted task stays deleted" % rnd)
            S.error(srv.client(dead["token"]).get("/v1/tasks"), 401, "unauthenticated",
                    "restart %d: a revoked token stays revoked" % rnd)
            S.status(srv.client(cli_tok).get("/v1/tasks"), 200,
                     "restart %d: the `sked token create` token works" % rnd)
            r = cl.post("/v1/tasks", idem_body, headers={"Idempotency-Key": "k-1"})
            if S.status(r, 200, "restart %d: Idempotency-Key retried after restart" % rnd):
                S.eq(r.body.get("id"), idem["id"], "restart %d: the same task for the key" % rnd)
            S.error(cl.post("/v1/tasks", http_task("berlin")), 409, "conflict",
                    "restart %d: names stay taken" % rnd)
            S.eq(by_id(cl.list_all()), tasks, "restart %d: rejected requests changed nothing"
                 % rnd)
        # and it still takes new work, listed after the old
        new = must(cl.post("/v1/tasks", http_task("after-restart")), 201, "create after restart")
        ids = [t["id"] for t in cl.list_all()]
        S.check(new["id"] in ids, "a task created after restarts is listed")
        S.eq(srv.stop(), 0, "final exit status after SIGTERM")
        db = os.path.join(srv.data, "sked.db")
        if os.path.exists(db):
            con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
            try:
                S.eq(con.execute("PRAGMA integrity_check").fetchone()[0], "ok",
                     "sked.db integrity_check after clean stops")
            finally:
                con.close()
    finally:
        srv.cleanup()


@S.test
def cli_token_works_at_once():
    with Server() as srv:
        tok = srv.make_token("ns2", "read")
        cl = srv.client(tok)
        r = cl.get("/v1/tasks")
        S.status(r, 200, "a read token from `sked token create` works at once")
        S.error(cl.post("/v1/tasks", http_task("x")), 403, "permission_denied",
                "the new read token may not create")
        sh = srv.client(srv.make_token("ns2", "shell"))
        r = sh.post("/v1/tasks", {"name": "s", "schedule": {"cron": FAR_CRON},
                                  "target": {"type": "shell", "command": "true"}})
        if S.status(r, 201, "a shell token from `sked token create` creates a shell task"):
            S.eq(r.body.get("namespace"), "ns2", "the task's namespace is the token's")
        S.eq([t["name"] for t in cl.list_all()], ["s"], "read token of ns2 sees ns2's task")
        S.eq(srv.client(srv.admin_token).list_all(), [], "default does not see ns2's task")
        # revoke from the command line: refused at once
        rc, out, err = run_cli(["token", "ls", "--data", srv.data, "--json"])
        S.eq(rc, 0, "sked token ls exit status (%s)" % err.strip())
        try:
            listed = json.loads(out)["tokens"]
        except (ValueError, KeyError):
            S.fail("sked token ls --json: expected {\"tokens\": [...]}, got %r" % out[:200])
            return
        ro = [t for t in listed if t.get("namespace") == "ns2" and t.get("role") == "read"]
        S.eq(len(ro), 1, "sked token ls lists the ns2 read token")
        if ro:
            rc, out, err = run_cli(["token", "revoke", "--data", srv.data, ro[0]["id"]])
            S.eq(rc, 0, "sked token revoke exit status (%s)" % err.strip())
            S.error(cl.get("/v1/tasks"), 401, "unauthenticated",
                    "a token revoked by `sked token revoke` is refused at once")


# --- load, SIGTERM and SIGKILL ----------------------------------------------------

class Load:
    """Client threads creating tasks until told to stop or the server dies.

    Kinds of worker:  named (one name per request), label (unnamed, a unique
    label), idem (named, with an Idempotency-Key), batch (10 named per call).
    Every request's outcome is recorded: acknowledged (2xx, with the answer)
    or unknown (sent or about to be, no answer)."""

    KINDS = ("named", "label", "idem", "batch")

    def __init__(self, srv, tag):
        self.srv, self.tag = srv, tag
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acked = {}          # id -> task as answered
        self.acked_refs = []     # (kind, ref) per acknowledged request
        self.unknown = []        # (kind, ref, body, key) without an answer
        self.batches = []        # (names, acked)
        self.errors = []         # unexpected answers
        self.threads = []

    def start(self):
        for i, kind in enumerate(self.KINDS):
            t = threading.Thread(target=self.work, args=(i, kind), daemon=True)
            t.start()
            self.threads.append(t)

    def join(self, timeout=15):
        self.stop.set()
        for t in self.threads:
            t.join(timeout)
        return not any(t.is_alive() for t in self.threads)

    def work(self, wid, kind):
        cl = self.srv.client(self.srv.admin_token, timeout=10)
        n = 0
        while not self.stop.is_set():
            ref = "%s-%s-%d" % (self.tag, kind[0], n)
            n += 1
            key = None
            if kind == "batch":
                names = ["%s.%d" % (ref, j) for j in range(10)]
                path, body = "/v1/tasks:batch", {"tasks": [http_task(x) for x in names]}
            elif kind == "label":
                path, body = "/v1/tasks", http_task(labels={"req": ref})
            else:
                path, body = "/v1/tasks", http_task(ref)
                if kind == "idem":
                    key = "key-" + ref
            data = json.dumps(body)
            try:
                r = cl.request("POST", path, data, retry=False,
                               headers={"Idempotency-Key": key} if key else None)
            except Exception:
                with self.lock:
                    self.unknown.append((kind, ref, data, key))
                    if kind == "batch":
                        self.batches.append((names, False))
                return
            with self.lock:
                if r.status not in (200, 201):
                    self.errors.append("%s %s: %d %s" % (kind, ref, r.status, r.body))
                    if kind == "batch":
                        self.batches.append((names, False))
                    continue
                got = r.body["tasks"] if kind == "batch" else [r.body]
                for t in got:
                    self.acked[t["id"]] = t
                self.acked_refs.append((kind, ref))
                if kind == "batch":
                    self.batches.append((names, True))


def ref_of(t):
    return t.get("name") or (t.get("labels") or {}).get("req")


def check_after_restart(cl, loads, what):
    """Every acknowledged task present as answered; nothing twice; batches
    all-or-nothing.  Returns the full list."""
    tasks = cl.list_all()
    ids = [t["id"] for t in tasks]
    S.eq(len(ids), len(set(ids)), "%s: no task id listed twice" % what)
    refs = {}
    for t in tasks:
        refs.setdefault(ref_of(t), []).append(t["id"])
    dups = {r: v for r, v in refs.items() if len(v) > 1}
    S.check(not dups, "%s: expected each request to make at most one task; twice: %s"
            % (what, list(dups.items())[:3]))
    S.check(None not in refs, "%s: a task no request asked for" % what)
    listed = by_id(tasks)
    for ld in loads:
        missing = [tid for tid in ld.acked if tid not in listed]
        S.check(not missing, "%s: %d of %d acknowledged tasks (round %s) missing from the "
                "list, e.g. %s" % (what, len(missing), len(ld.acked), ld.tag, missing[:3]))
        changed = [tid for tid, t in ld.acked.items() if tid in listed and listed[tid] != t]
        S.check(not changed, "%s: %d acknowledged tasks differ from their 2xx answer, e.g. %s"
                % (what, len(changed), changed[:1]))
        for names, acked in ld.batches:
            present = sum(1 for x in names if x in refs)
            S.check(present in ((10,) if acked else (0, 10)),
                    "%s: batch %s: expected %s of its 10 tasks, found %d"
                    % (what, names[0], "all" if acked else "all or none", present))
    return tasks


@S.test(timeout=40)
def sigterm_under_load_loses_nothing():
    srv = Server()
    try:
        srv.start()
        ld = Load(srv, "t")
        ld.start()
        time.sleep(0.5)
        srv.proc.send_signal(15)
        try:
            rc = srv.proc.wait(timeout=12)
        except Exception:
            rc = None
        S.eq(rc, 0, "exit status after SIGTERM under load (within 12 s)")
        S.check(ld.join(), "client threads finished")
        S.check(not ld.errors, "unexpected answers under load: %s" % ld.errors[:3])
        S.check(len(ld.acked) > 0, "expected some tasks acknowledged before SIGTERM")
        srv.kill()
        srv.start()
        check_after_restart(srv.client(srv.admin_token), [ld], "after SIGTERM")
    finally:
        srv.cleanup()


@S.test(timeout=90)
def crash_loses_no_acknowledged_task():
    seed = int(os.environ.get("SKED_TEST_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    srv = Server()
    loads = []
    try:
        srv.start()
        admin = srv.admin_token
        for rnd in range(3):
            ld = Load(srv, "r%d" % rnd)
            loads.append(ld)
            ld.start()
            delay = rng.uniform(0.3, 1.5)
            time.sleep(delay)
            srv.kill()                                   # SIGKILL: a crash
            S.check(ld.join(), "round %d: client threads finished after the crash" % rnd)
            what = "round %d (seed %d, killed after %.2f s, %d acknowledged)" % (
                rnd, seed, delay, len(ld.acked))
            if os.environ.get("SKED_TEST_VERBOSE"):
                print("  %s; %d in flight, %d batches" % (what, len(ld.unknown),
                                                           len(ld.batches)), flush=True)
            S.check(not ld.errors, "%s: unexpected answers: %s" % (what, ld.errors[:3]))
            S.check(len(ld.acked) > 0, "%s: expected some acknowledged tasks" % what)
            srv.start()                                  # same data dir
            S.eq(srv.admin_token, admin, "%s: admin.token unchanged" % what)
            cl = srv.client(admin)
            # every task acknowledged in this round, by id, as answered
            bad = []
            for tid, t in ld.acked.items():
                r = cl.get("/v1/tasks/" + tid)
                if r.status != 200 or r.body != t:
                    bad.append((tid, r.status))
            S.check(not bad, "%s: %d acknowledged tasks not found as answered by GET, e.g. %s"
                    % (what, len(bad), bad[:3]))
            check_after_restart(cl, loads, what)
            # an in-flight request retried with its key: exactly one task
            for kind, ref, data, key in ld.unknown:
                if key is None:
                    continue
                r = cl.request("POST", "/v1/tasks", data, headers={"Idempotency-Key": key})
                S.check(r.status in (200, 201),
                        "%s: in-flight %s retried with its Idempotency-Key: expected 200 or "
                        "201, got %d %s" % (what, ref, r.status, r.body))
                if r.status in (200, 201):
                    ld.acked[r.body["id"]] = r.body
            # a sample of acknowledged idempotent requests: the same task again
            idem = [ref for kind, ref in ld.acked_refs if kind == "idem"]
            names = {t.get("name"): t["id"] for t in ld.acked.values()}
            for ref in idem[-20:]:
                r = cl.request("POST", "/v1/tasks", json.dumps(http_task(ref)),
                               headers={"Idempotency-Key": "key-" + ref})
                S.check(r.status == 200 and r.body.get("id") == names.get(ref),
                        "%s: acknowledged %s retried with its key: expected 200 and id %s, "
                        "got %d %s" % (what, ref, names.get(ref), r.status,
                                       r.body.get("id") if isinstance(r.body, dict) else r.body))
            check_after_restart(cl, loads, what + ", after retries")
        S.eq(srv.stop(), 0, "exit status after SIGTERM at the end")
    finally:
        srv.cleanup()


if __name__ == "__main__":
    S.run()
