#!/usr/bin/env python3
"""test_crash_runs.py - every occurrence accounted for, once, across SIGKILLs
of `sked server` (DESIGN.md §2.2-§2.4, §4, §5).

crash_rounds: a server runs 50 every-1s tasks (`true`), one-time `at` tasks
due over the next ~10 s, one long task (`sleep 3` every 5 s, 2 attempts) and
a client thread creating more one-time tasks all the time.  The server is
SIGKILLed at a random moment (the first time while the long task runs) and
restarted on the same data dir, three times; then it runs ~4 s, is stopped
with SIGTERM, and started once more.  Then, through the API:

- every acknowledged task is there;
- no (task_id, scheduled_at) appears twice;
- each every-1s task has a run (or a skipped run) for every second from its
  first to its last - nothing vanished while the server was down, and a
  short outage is well inside the misfire grace, so nothing is skipped as
  `misfire`;
- every one-time task has exactly one run, at its `at`, and is completed;
- runs that were running at a kill are retried (attempt 2) or failed with
  an error about the lost worker, and nothing stays unfinished;
- lag: every start within 10 s of its occurrence; occurrences due while a
  server was up (after the last restart in particular) within 5 s.

sigterm_keeps_running_runs: SIGTERM while a run runs does not cancel it: it
finishes, or it is run again after the restart.

Run: python3 tests/integration/test_crash_runs.py [TEST_NAME...]
(SKED=path/to/sked; SKED_TEST_SEED=N repeats a crash schedule)
"""
import os
import random
import sys
import threading
import time

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from skedtest import Server, Suite, format_time, parse_time, wait_until  # noqa: E402

S = Suite("test_crash_runs", timeout=60)

FAR_CRON = "0 3 1 1 *"
N_EVERY = 50
UNFINISHED = ("scheduled", "dispatched", "running")
FINAL = ("succeeded", "failed", "timed_out", "skipped", "canceled")


def must(r, status, what):
    if r.status != status:
        raise AssertionError("%s: expected %d, got %d %s" % (what, status, r.status, r.body))
    return r.body


def shell_task(command, schedule=None, **over):
    t = {"schedule": schedule or {"cron": FAR_CRON},
         "target": {"type": "shell", "command": command}}
    t.update(over)
    return t


def T(run, key):
    return parse_time(run.get(key))


def median(xs):
    xs = sorted(xs)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def lost_worker_error(r):
    e = (r.get("error") or "").lower()
    return "worker" in e and ("lost" in e or "heartbeat" in e or "lease" in e)


def brief(r):
    return "%s@%s %s a%s%s" % (r["task_id"][-6:], r["scheduled_at"], r["status"], r["attempt"],
                              (" (%s)" % r["error"]) if r.get("error") else "")


class Creator(threading.Thread):
    """Creates one-time tasks (due within 3 s) until stopped; keeps what
    the server acknowledged."""

    def __init__(self, srv, seed):
        super().__init__(daemon=True)
        self.cl = srv.client(srv.admin_token, timeout=3.0)
        self.rng = random.Random(seed)
        self.acked = []
        self.unknown = 0
        self.stop_ev = threading.Event()

    def run(self):
        while not self.stop_ev.is_set():
            at = time.time() + self.rng.uniform(0.0, 3.0)
            try:
                r = self.cl.request("POST", "/v1/tasks",
                                    shell_task("true", {"at": format_time(at)}), retry=False)
                if r.status == 201:
                    self.acked.append(r.body)
            except Exception:
                self.unknown += 1
                time.sleep(0.05)
            self.stop_ev.wait(0.1)
        self.cl.close()


@S.test(timeout=80)
def crash_rounds():
    seed = int(os.environ.get("SKED_TEST_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    print("  crash_rounds: seed %d (SKED_TEST_SEED=%d repeats it)" % (seed, seed), flush=True)
    srv = Server()
    try:
        srv.start()
        lives = [[time.time(), None]]            # [start, end) of each server process
        cl = srv.client(srv.admin_token)
        every = must(cl.post("/v1/tasks:batch", {"tasks": [
            shell_task("true", {"every": "1s"}, name="every-%02d" % i) for i in range(N_EVERY)]}),
            201, "batch of every-1s tasks")["tasks"]
        long = must(cl.post("/v1/tasks", shell_task(
            "sleep 3", {"every": "5s"}, name="long",
            retry={"max_attempts": 2, "backoff": "1s"})), 201, "create long")
        t0 = time.time()
        ones = [must(cl.post("/v1/tasks", shell_task("true", {"at": format_time(t0 + 0.3 + 0.8 * i)})),
                     201, "create one-time") for i in range(12)]
        acked = {t["id"]: t for t in every + [long] + ones}
        every_ids = {t["id"] for t in every}
        interrupted = None                       # the long run that ran at the first kill
        unknown = 0
        for rnd in range(3):
            cr = Creator(srv, rng.randrange(1 << 30))
            cr.start()
            if rnd == 0:
                def long_running():
                    rs = cl.list_runs("/v1/tasks/%s/runs" % long["id"], "status=running")
                    return rs
                rs = wait_until(long_running, 7.0, 0.1)
                time.sleep(rng.uniform(0.3, 1.5))
                time.sleep(max(0.0, lives[-1][0] + 1.0 - time.time()))
                if rs:
                    cur = must(cl.get("/v1/runs/" + rs[0]["id"]), 200, "GET long run")
                    if cur["status"] == "running":
                        interrupted = cur
                S.check(interrupted is not None, "round 1: expected the long task's run to be "
                        "running before the kill, got %s" % rs)
            else:
                time.sleep(rng.uniform(1.0, 3.0))
            srv.kill()
            lives[-1][1] = time.time()
            cr.stop_ev.set()
            cr.join(5)
            for t in cr.acked:
                acked[t["id"]] = t
            unknown += cr.unknown
            time.sleep(rng.uniform(0.0, 0.5))   # down for a moment
            srv.start()
            lives.append([time.time(), None])
            cl = srv.client(srv.admin_token)
        time.sleep(4.0)
        rc = srv.stop()
        lives[-1][1] = time.time()
        S.eq(rc, 0, "SIGTERM after the crash rounds: exit status")
        t_term = lives[-1][1]
        srv.start()
        t_final = time.time()
        lives.append([t_final, None])
        cl = srv.client(srv.admin_token)

        # let what the kills interrupted be run again (retry backoff 1 s, sleep 3)
        def settled():
            rs = cl.list_runs("/v1/runs")
            return not [r for r in rs if r["status"] in UNFINISHED
                        and T(r, "scheduled_at") < t_final]
        time.sleep(3.0)                          # the last life runs a few seconds too
        wait_until(settled, 11.0, 0.5)
        t_read = time.time()
        tasks = {t["id"]: t for t in cl.list_all()}
        runs = cl.list_runs("/v1/runs")
        print("  crash_rounds: %d tasks acknowledged (%d creates with no answer), %d runs; "
              "server lives %s" % (len(acked), unknown, len(runs), ", ".join(
                  "%s+%.1fs" % (format_time(s)[11:23], (e or t_read) - s) for s, e in lives)),
              flush=True)

        # every acknowledged task is there, as answered
        lost = [i for i in acked if i not in tasks]
        S.check(not lost, "%d acknowledged tasks missing after the crashes: %s"
                % (len(lost), lost[:5]))
        for i, t in acked.items():
            if i in tasks:
                S.eq(tasks[i]["schedule"], t["schedule"], "task %s schedule after the crashes" % i)

        # one run per (task_id, scheduled_at); ids unique
        keys, dups = {}, []
        for r in runs:
            k = (r["task_id"], T(r, "scheduled_at"))
            if k in keys:
                dups.append((brief(keys[k]), brief(r)))
            keys[k] = r
        S.check(not dups, "%d occurrences appear twice, e.g. %s" % (len(dups), dups[:3]))
        S.eq(len({r["id"] for r in runs}), len(runs), "run ids unique")
        by_task = {}
        for r in runs:
            by_task.setdefault(r["task_id"], []).append(r)

        # nothing stuck: everything due before the last start has settled
        stuck = [r for r in runs if r["status"] in UNFINISHED and T(r, "scheduled_at") < t_final]
        S.check(not stuck, "%d runs due before the last restart are still unfinished %.1f s "
                "after it: %s" % (len(stuck), t_read - t_final, [brief(r) for r in stuck[:6]]))

        # statuses: `true` only fails when its worker is lost
        canceled = [r for r in runs if r["status"] == "canceled"]
        if canceled:
            print("  crash_rounds: note: %d runs canceled with no cancel call (SIGTERM?): %s"
                  % (len(canceled), [brief(r) for r in canceled[:4]]), flush=True)
        bad = [r for r in runs if r["status"] in ("failed", "timed_out")
               and not lost_worker_error(r)]
        S.check(not bad, "runs failed for another reason than a lost worker: %s"
                % [brief(r) for r in bad[:6]])
        misfired = [r for r in runs if r["status"] == "skipped" and r.get("reason") != "overlap"]
        S.check(not misfired, "outages of ~1 s are inside the 1 min misfire grace: nothing may "
                "be skipped except for overlap, got %s"
                % [brief(r) + " " + str(r.get("reason")) for r in misfired[:6]])

        # every-1s tasks: a contiguous run of seconds, first to last
        gaps, early, late = [], [], []
        for tid in every_ids:
            rs = by_task.get(tid, [])
            sched = sorted({T(r, "scheduled_at") for r in rs})
            if not sched:
                gaps.append((tid, "no runs"))
                continue
            created = parse_time(acked[tid]["created_at"])
            if not (created - 0.01 <= sched[0] <= created + 1.0):
                early.append((tid, acked[tid]["created_at"], format_time(sched[0])))
            if sched[-1] < t_read - 2.5:
                late.append((tid, format_time(sched[-1])))
            for a, b in zip(sched, sched[1:]):
                if round(b - a) != 1 or abs(a - round(a)) > 1e-6:
                    gaps.append((tid[-6:], format_time(a), format_time(b)))
        S.check(not gaps, "every-1s tasks: occurrences vanished (gaps between consecutive "
                "scheduled_at): %d, e.g. %s" % (len(gaps), gaps[:6]))
        S.check(not early, "every-1s tasks: the first run is the first second after creation: %s"
                % early[:4])
        S.check(not late, "every-1s tasks: still scheduled at the end (last run recent): %s"
                % late[:4])

        # one-time tasks: exactly one run, at `at`, and completed
        one_bad = []
        n_once = 0
        for tid, t in tasks.items():
            if "at" not in t["schedule"]:
                continue
            n_once += 1
            rs = by_task.get(tid, [])
            at = parse_time(t["schedule"]["at"])
            if len(rs) != 1:
                one_bad.append("%s: %d runs %s" % (tid[-6:], len(rs), [brief(r) for r in rs]))
            elif abs(T(rs[0], "scheduled_at") - at) > 0.002:
                one_bad.append("%s: run at %s, `at` %s" % (tid[-6:], rs[0]["scheduled_at"],
                                                           t["schedule"]["at"]))
            if t["state"] != "completed" and at < t_final:
                one_bad.append("%s: state %s (at %s)" % (tid[-6:], t["state"], t["schedule"]["at"]))
        S.check(not one_bad, "one-time tasks (%d): exactly one run each, then completed: %d "
                "wrong, e.g. %s" % (n_once, len(one_bad), one_bad[:5]))
        S.check(n_once >= 12, "one-time tasks: expected >= 12, got %d" % n_once)

        # the long run killed mid-way: retried as attempt 2 (or failed: worker lost)
        if interrupted is not None:
            r = keys.get((interrupted["task_id"], T(interrupted, "scheduled_at")))
            if S.check(r is not None, "the interrupted long run %s is gone" % interrupted["id"]):
                S.check(r["status"] in ("succeeded", "failed") and r["attempt"] == 2 and
                        (r["status"] == "succeeded" or lost_worker_error(r)),
                        "the long run running at the first SIGKILL should be retried (attempt 2) "
                        "and succeed, or fail with an error about the lost worker; got %s"
                        % brief(r))
        retried = [r for r in runs if r["attempt"] > 1]
        lostw = [r for r in runs if lost_worker_error(r)]
        print("  crash_rounds: %d runs retried (attempt > 1), %d failed with a lost worker, "
              "%d skipped for overlap" % (len(retried), len(lostw),
                                           sum(r["status"] == "skipped" for r in runs)), flush=True)

        # lag
        def life_of(t):
            for i, (s, e) in enumerate(lives):
                if s <= t < (e or float("inf")):
                    return i
            return None
        slow, late_start, never = [], [], []
        per_life = [[] for _ in lives]
        outage = []
        for r in runs:
            sch = T(r, "scheduled_at")
            if r.get("lag_ms") is None:
                # due while a server was up, more than 5 s before the end of its life
                li = life_of(sch)
                if r["status"] not in ("skipped", "canceled") and li is not None and \
                        sch < (lives[li][1] or t_read) - 5.0:
                    never.append(brief(r))
                continue
            lag = r["lag_ms"]
            if lag >= 10000:
                slow.append(brief(r) + " lag %.0f ms" % lag)
            li, ls = life_of(sch), life_of(T(r, "started_at"))
            if li is None:
                outage.append(lag)
            elif li == ls:
                per_life[li].append(lag)
                if lag >= 5000:
                    late_start.append("%s lag %.0f ms (life %d)" % (brief(r), lag, li))
        S.check(not slow, "every run starts within 10 s of its occurrence: %d did not, e.g. %s"
                % (len(slow), slow[:4]))
        S.check(not late_start, "occurrences due while a server was up start within 5 s: %d "
                "did not, e.g. %s" % (len(late_start), late_start[:4]))
        S.check(not never, "occurrences due while a server was up were never started: %d, "
                "e.g. %s" % (len(never), never[:4]))
        after_last = [x for li in (len(lives) - 2, len(lives) - 1) for x in per_life[li]]
        S.check(after_last, "runs started after the last restarts: none")
        print("  crash_rounds: start lag median per server life (ms): %s; occurrences due "
              "during outages: median %s ms, max %s ms (%d runs)"
              % (", ".join("%s (%d runs)" % ("%.1f" % median(x) if x else "-", len(x))
                           for x in per_life),
                 "%.0f" % median(outage) if outage else "-",
                 "%.0f" % max(outage) if outage else "-", len(outage)), flush=True)
        rc = srv.stop()
        S.eq(rc, 0, "final SIGTERM: exit status")
    finally:
        srv.cleanup()


@S.test(timeout=40)
def sigterm_keeps_running_runs():
    srv = Server()
    try:
        srv.start()
        cl = srv.client(srv.admin_token)
        task = must(cl.post("/v1/tasks", shell_task(
            "sleep 2; echo done $SKED_ATTEMPT", retry={"max_attempts": 2, "backoff": "1s"})),
            201, "create")
        run = must(cl.post("/v1/tasks/%s:trigger" % task["id"]), 202, "trigger")

        def running():
            r = must(cl.get("/v1/runs/" + run["id"]), 200, "GET run")
            return r if r["status"] == "running" else None
        S.check(wait_until(running, 5.0, 0.05), "triggered `sleep 2` should be running")
        time.sleep(0.3)
        rc = srv.stop()
        S.eq(rc, 0, "SIGTERM exit status")
        srv.start()
        cl = srv.client(srv.admin_token)
        last = [None]

        def final():
            last[0] = must(cl.get("/v1/runs/" + run["id"]), 200, "GET run")
            return last[0]["status"] in FINAL
        wait_until(final, 10.0, 0.1)
        r = last[0]
        S.check(r["status"] == "succeeded",
                "SIGTERM while a run runs (2 attempts), then a restart: the run should finish "
                "before the exit, or be run again after the restart, and succeed within 10 s; "
                "got %s attempt %s error %r (never stuck unfinished; canceled is for the API "
                "and for deleted tasks: DESIGN.md §5; a run keeps its attempts: §2.3)"
                % (r["status"], r["attempt"], r.get("error")))
        rc = srv.stop()
        S.eq(rc, 0, "SIGTERM exit status")
    finally:
        srv.cleanup()


@S.test(timeout=40)
def kill_after_premark_not_early():
    """A run marked dispatched ahead of its time (embedded mode) and then
    recovered by a restart goes out at its time, not at the restart."""
    srv = Server()
    try:
        srv.start()
        cl = srv.client(srv.admin_token)
        at = time.time() + 3.0
        task = must(cl.post("/v1/tasks", shell_task("true", {"at": format_time(at)})),
                    201, "create")
        time.sleep(max(0.0, at - 0.7 - time.time()))
        runs = must(cl.get("/v1/tasks/%s/runs" % task["id"]), 200, "runs")["runs"]
        S.check(len(runs) == 1 and runs[0]["status"] == "dispatched",
                "700 ms before its time the run is marked dispatched: %s"
                % [brief(r) for r in runs])
        srv.kill()
        srv.start()
        S.check(time.time() < at - 0.1, "restarted %.0f ms before the due time"
                % ((at - time.time()) * 1000))
        cl = srv.client(srv.admin_token)
        last = [None]

        def final():
            rs = must(cl.get("/v1/tasks/%s/runs" % task["id"]), 200, "runs")["runs"]
            last[0] = rs
            return rs and all(r["status"] in FINAL for r in rs)
        wait_until(final, 10.0, 0.1)
        rs = last[0] or []
        S.eq(len(rs), 1, "one run for the one occurrence")
        for r in rs:
            S.eq(r["status"], "succeeded", "the recovered run: status")
            # its time is `at` to the millisecond (format_time rounds):
            # judged against the time it was given, not the float
            S.check(abs(T(r, "scheduled_at") - at) <= 0.0005 + 1e-6,
                    "the run's time is the one asked for: %s" % r["scheduled_at"])
            S.check(T(r, "started_at") is not None and
                    T(r, "started_at") >= T(r, "scheduled_at"),
                    "the recovered run must not start before its time: started %s, due %s"
                    % (r.get("started_at"), r["scheduled_at"]))
        srv.stop()
    finally:
        srv.cleanup()


if __name__ == "__main__":
    S.run()
