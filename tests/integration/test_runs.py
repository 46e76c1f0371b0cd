#!/usr/bin/env python3
"""test_runs.py - sked runs what it is given, on time, end to end (DESIGN.md
§2 the contract, §4-§7; API.md Run, runs endpoints, trigger, cancel, workers).

Each test boots its own `sked server` (API + scheduler + worker in one
process) on 127.0.0.1:0 over its own temp data dir, and watches real runs:

- every second: runs succeed on whole seconds, one per second, no gap, no
  duplicate, never early, small lag; the process sees SKED_RUN_ID & co.
- 6-field cron (`*/2 * * * * *`) and `@every 3s`.
- one-time `at`: once, then the task is completed; a past `at` runs at once.
- overlap skip (skipped runs with reason overlap, never two at once, every
  second accounted for) and overlap allow (runs at the same time).
- retries: a failing command spends its attempts with the backoff; one that
  succeeds on attempt 2 ends succeeded with attempt 2.
- timeout: timed_out, and the process group is gone.
- HTTP targets against a local server: method, body, headers,
  X-Sked-Run-Id; 2xx, 500 and `expect`.
- pause and resume; trigger; cancel (running process killed, 409 once
  finished); run lists (order, filters, cursors, namespaces); retention
  (--keep-runs); daylight saving through next_run_at and schedules:preview;
  GET /v1/workers and /metrics.

Run: python3 tests/integration/test_runs.py [TEST_NAME...]  (SKED=path/to/sked)
"""
import http.server
import json
import os
import shutil
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from skedtest import (Server, Suite, format_time, parse_time,  # noqa: E402
                      wait_until)

S = Suite("test_runs", timeout=30)

FAR_CRON = "0 3 1 1 *"                    # once a year: never fires in a test
UNFINISHED = ("scheduled", "dispatched", "running")
FINAL = ("succeeded", "failed", "timed_out", "skipped", "canceled")


# --- helpers ------------------------------------------------------------------

def must(r, status, what):
    if r.status != status:
        raise AssertionError("%s: expected %d, got %d %s" % (what, status, r.status, r.body))
    return r.body


def shell_task(command, schedule=None, **over):
    t = {"schedule": schedule or {"cron": FAR_CRON},
         "target": {"type": "shell", "command": command}}
    t.update(over)
    return t


def create(cl, body, what="create task"):
    return must(cl.post("/v1/tasks", body), 201, what)


def runs_of(cl, task_id, query=""):
    return cl.list_runs("/v1/tasks/%s/runs" % task_id, query)


def get_run(cl, run_id):
    return must(cl.get("/v1/runs/" + run_id), 200, "GET /v1/runs/" + run_id)


def wait_run(cl, run_id, statuses, timeout):
    """Poll a run until its status is one of statuses; returns the last seen."""
    last = [None]

    def f():
        last[0] = get_run(cl, run_id)
        return last[0]["status"] in statuses
    wait_until(f, timeout, 0.1)
    return last[0]


def wait_task_runs(cl, task_id, pred, timeout, interval=0.2):
    """Poll a task's runs until pred(runs); returns the last list."""
    last = [[]]

    def f():
        last[0] = runs_of(cl, task_id)
        return pred(last[0])
    wait_until(f, timeout, interval)
    return last[0]


def T(run, key):
    return parse_time(run.get(key))


def median(xs):
    xs = sorted(xs)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def is_whole(t):
    return abs(t - round(t)) < 1e-6


def alive(pid):
    """Is process pid alive (a zombie counts as dead)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return False


def read_pid(path):
    try:
        with open(path) as f:
            s = f.read().strip()
        return int(s) if s else None
    except (OSError, ValueError):
        return None


def check_sequence(scheds, step, what):
    """scheds (sorted seconds): whole multiples of step, step apart, no
    duplicate, no gap."""
    ok = S.check(len(scheds) == len(set(scheds)),
                 "%s: duplicate scheduled_at: %s" % (what, [format_time(t) for t in scheds
                                                            if scheds.count(t) > 1]))
    for t in scheds:
        ok &= S.check(is_whole(t) and round(t) % step == 0,
                      "%s: scheduled_at %s is not on a whole multiple of %d s"
                      % (what, format_time(t), step))
    for a, b in zip(scheds, scheds[1:]):
        if round(b - a) != step:
            S.fail("%s: consecutive scheduled_at %s and %s are %.3f s apart, expected %d s "
                   "(gap or duplicate)" % (what, format_time(a), format_time(b), b - a, step))
            ok = False
    return ok


def check_ran_well(r, what, lag_max_ms=1000.0):
    """A succeeded run: never early, lag consistent with its times."""
    sched, started, fin = T(r, "scheduled_at"), T(r, "started_at"), T(r, "finished_at")
    ok = S.check(started is not None and fin is not None,
                 "%s: a finished run has started_at and finished_at: %s" % (what, r))
    if not ok:
        return False
    ok &= S.check(started >= sched, "%s: started_at %s before scheduled_at %s (early)"
                  % (what, r["started_at"], r["scheduled_at"]))
    ok &= S.check(fin >= started, "%s: finished_at %s before started_at %s"
                  % (what, r["finished_at"], r["started_at"]))
    lag = r.get("lag_ms")
    ok &= S.check(isinstance(lag, (int, float)) and 0 <= lag < lag_max_ms,
                  "%s: lag_ms in [0, %g), got %r" % (what, lag_max_ms, lag))
    if isinstance(lag, (int, float)):
        ok &= S.check(abs(lag - (started - sched) * 1000) < 2.0,
                      "%s: lag_ms %r should be started_at - scheduled_at (%.3f ms)"
                      % (what, lag, (started - sched) * 1000))
    if r.get("dispatched_at") is not None:
        ok &= S.check(T(r, "dispatched_at") >= sched - 0.0005,
                      "%s: dispatched_at %s before scheduled_at %s (early)"
                      % (what, r["dispatched_at"], r["scheduled_at"]))
    return ok


# --- every second ---------------------------------------------------------------

@S.test
def every_second_on_time():
    with Server() as srv:
        cl = srv.client(srv.admin_token)
        task = create(cl, shell_task(
            "echo $SKED_RUN_ID $SKED_ATTEMPT $SKED_SCHEDULED_AT $SKED_TASK_ID",
            {"every": "1s"}))
        created = parse_time(task["created_at"])
        S.check(task["next_run_at"] is not None and
                0 <= parse_time(task["next_run_at"]) - created <= 1.0 and
                is_whole(parse_time(task["next_run_at"])),
                "every 1s: next_run_at is the next whole second after creation, got %r "
                "(created_at %s)" % (task["next_run_at"], task["created_at"]))
        time.sleep(5.3)
        now = time.time()
        runs = runs_of(cl, task["id"])
        done = [r for r in runs if r["status"] == "succeeded"]
        S.check(len(done) >= 4, "every 1s for 5.3 s: expected >= 4 succeeded runs, got %d "
                "(statuses %s)" % (len(done), [r["status"] for r in runs]))
        for r in runs:
            S.check(r["status"] in ("succeeded",) + UNFINISHED,
                    "every 1s `echo`: run %s is %s (%s)" % (r["scheduled_at"], r["status"],
                                                            r.get("error")))
            S.check(r["task_id"] == task["id"], "run.task_id: expected %s, got %s"
                    % (task["id"], r["task_id"]))
            if T(r, "scheduled_at") < now - 1.5:
                S.check(r["status"] == "succeeded",
                        "a run scheduled at %s (%.1f s ago) should be finished, it is %s"
                        % (r["scheduled_at"], now - T(r, "scheduled_at"), r["status"]))
        scheds = sorted(T(r, "scheduled_at") for r in runs)
        check_sequence(scheds, 1, "every 1s")
        if scheds:
            S.check(scheds[0] >= created - 0.001 and scheds[0] - created <= 1.0,
                    "first occurrence: the first whole second at or after creation (%s), "
                    "got %s" % (task["created_at"], format_time(scheds[0])))
            S.check(scheds[-1] >= now - 1.5,
                    "every 1s: the latest run (%s) should be recent (now %s)"
                    % (format_time(scheds[-1]), format_time(now)))
        lags = []
        for r in done:
            what = "run %s" % r["scheduled_at"]
            check_ran_well(r, what)
            lags.append(r["lag_ms"])
            S.eq(r["attempt"], 1, what + ": attempt")
            S.eq(r["exit_code"], 0, what + ": exit_code")
            S.eq(r["http_status"], None, what + ": http_status")
            S.eq(r["error"], None, what + ": error")
            S.eq(r["reason"], None, what + ": reason")
            S.check(isinstance(r.get("worker"), str) and r["worker"],
                    "%s: worker set, got %r" % (what, r.get("worker")))
            S.check(isinstance(r.get("duration_ms"), (int, float)) and r["duration_ms"] >= 0,
                    "%s: duration_ms >= 0, got %r" % (what, r.get("duration_ms")))
            out = (r.get("output") or "").split()
            if S.check(len(out) == 4, "%s: output `RUN_ID ATTEMPT SCHEDULED_AT TASK_ID`, got %r"
                       % (what, r.get("output"))):
                S.eq(out[0], r["id"], what + ": $SKED_RUN_ID in the output")
                S.eq(out[1], "1", what + ": $SKED_ATTEMPT in the output")
                try:
                    S.check(abs(parse_time(out[2]) - T(r, "scheduled_at")) < 0.001,
                            "%s: $SKED_SCHEDULED_AT %s should be scheduled_at %s"
                            % (what, out[2], r["scheduled_at"]))
                except AssertionError as e:
                    S.fail("%s: $SKED_SCHEDULED_AT: %s" % (what, e))
                S.eq(out[3], task["id"], what + ": $SKED_TASK_ID in the output")
        if lags:
            print("  every_second_on_time: start lag median %.2f ms, max %.2f ms over %d runs"
                  % (median(lags), max(lags), len(lags)), flush=True)
        # the run by id is the same as in the list
        if done:
            S.eq(get_run(cl, done[-1]["id"]), done[-1], "GET /v1/runs/{id} vs the list")


@S.test
def cron_seconds_and_every_macro():
    with Server() as srv:
        cl = srv.client(srv.admin_token)
        even = create(cl, shell_task("echo $SKED_SCHEDULED_AT", {"cron": "*/2 * * * * *"}))
        every3 = create(cl, shell_task("true", {"cron": "@every 3s"}))
        S.check(every3["schedule"].get("every") == "3s" and "cron" not in every3["schedule"],
                "`@every 3s` in cron is stored as every: 3s, got %s" % every3["schedule"])
        time.sleep(7.2)
        for task, step, least in ((even, 2, 3), (every3, 3, 2)):
            what = "cron %s" % ("*/2 * * * * *" if step == 2 else "@every 3s")
            runs = runs_of(cl, task["id"])
            done = [r for r in runs if r["status"] == "succeeded"]
            S.check(len(done) >= least, "%s over 7 s: expected >= %d succeeded runs, got %d (%s)"
                    % (what, least, len(done), [(r["scheduled_at"], r["status"]) for r in runs]))
            check_sequence(sorted(T(r, "scheduled_at") for r in runs), step, what)
            for r in runs:
                S.check(r["status"] in ("succeeded",) + UNFINISHED,
                        "%s: run %s is %s" % (what, r["scheduled_at"], r["status"]))
            for r in done:
                check_ran_well(r, "%s run %s" % (what, r["scheduled_at"]))


# --- one-time -------------------------------------------------------------------

@S.test
def one_time_at():
    with Server() as srv:
        cl = srv.client(srv.admin_token)
        t0 = time.time()
        at = t0 + 1.5
        fut = create(cl, shell_task("echo once", {"at": format_time(at)}))
        past_at = t0 - 120
        past = create(cl, shell_task("echo late", {"at": format_time(past_at)}))
        S.check(abs(parse_time(past["next_run_at"] or "1970-01-01T00:00:00Z") - past_at) < 0.002,
                "a past `at`: next_run_at keeps the instant, got %r" % past["next_run_at"])
        # the past one runs at once
        runs = wait_task_runs(cl, past["id"],
                              lambda rs: any(r["status"] == "succeeded" for r in rs), 3.0)
        S.check(len(runs) == 1 and runs[0]["status"] == "succeeded",
                "`at` 2 minutes in the past: one succeeded run within 3 s, got %s"
                % [(r["scheduled_at"], r["status"]) for r in runs])
        if runs and runs[0].get("started_at"):
            r = runs[0]
            S.check(abs(T(r, "scheduled_at") - past_at) < 0.002,
                    "past `at`: scheduled_at %s should be the `at` %s"
                    % (r["scheduled_at"], format_time(past_at)))
            S.check(T(r, "started_at") - t0 < 2.0,
                    "past `at`: started %.2f s after the create, expected at once"
                    % (T(r, "started_at") - t0))
        # the future one runs once, at its instant
        wait_task_runs(cl, fut["id"], lambda rs: any(r["status"] in FINAL for r in rs),
                       max(0.5, at + 2.5 - time.time()))
        time.sleep(1.0)                       # nothing more comes
        runs = runs_of(cl, fut["id"])
        S.eq(len(runs), 1, "`at` 1.5 s ahead: number of runs")
        if runs:
            r = runs[0]
            S.eq(r["status"], "succeeded", "`at` run status")
            S.check(abs(T(r, "scheduled_at") - at) < 0.002,
                    "`at` run scheduled_at %s should be the `at` %s (sub-second kept)"
                    % (r["scheduled_at"], format_time(at)))
            if r["status"] == "succeeded":
                check_ran_well(r, "`at` run")
                S.check("once" in (r.get("output") or ""),
                        "`at` run output: expected 'once', got %r" % r.get("output"))
                print("  one_time_at: start lag %.2f ms" % r["lag_ms"], flush=True)
        for t, what in ((fut, "future `at`"), (past, "past `at`")):
            got = must(cl.get("/v1/tasks/" + t["id"]), 200, "GET task")
            S.eq(got["state"], "completed", what + " task state after its run")
            S.eq(got["next_run_at"], None, what + " task next_run_at after its run")
            S.eq(got["run_count"], 1, what + " task run_count after its run")


@S.test
def at_within_premark_lead():
    """One-time tasks created less than the premark lead (900 ms) before
    their time: the claim itself records them dispatched (one write) and
    they go out at their time - not at the claim, not later."""
    with Server() as srv:
        cl = srv.client(srv.admin_token)
        tasks = []
        for ahead in (0.5, 0.65, 0.8):  # claimed at once: the api wakes the claimer
            at = time.time() + ahead
            tasks.append((create(cl, shell_task("true", {"at": format_time(at)})), at))
        for t, at in tasks:
            runs = wait_task_runs(cl, t["id"],
                                  lambda rs: any(r["status"] in FINAL for r in rs),
                                  max(0.5, at + 3.0 - time.time()))
            S.eq(len(runs), 1, "due %.2f s after its create: one run" % (at - t0(t)))
            if runs:
                r = runs[0]
                S.eq(r["status"], "succeeded", "its status")
                S.eq(r["attempt"], 1, "its attempt")
                S.check(abs(T(r, "dispatched_at") - at) < 0.002,
                        "dispatched_at %s should be its time %s (published then)"
                        % (r["dispatched_at"], format_time(at)))
                check_ran_well(r, "`at` within the premark lead", lag_max_ms=500.0)


def t0(task):
    return parse_time(task["created_at"])


# --- overlap --------------------------------------------------------------------

@S.test
def overlap_skip_and_allow():
    with Server() as srv:
        cl = srv.client(srv.admin_token)
        skip = create(cl, shell_task("sleep 2.5", {"every": "1s"}))
        allow = create(cl, shell_task("sleep 2.5", {"every": "1s"}, overlap="allow"))
        S.eq(skip["overlap"], "skip", "default overlap")
        time.sleep(7.0)
        now = time.time()

        runs = runs_of(cl, skip["id"])
        scheds = sorted(T(r, "scheduled_at") for r in runs)
        check_sequence(scheds, 1, "overlap skip: every scheduled second accounted for")
        skipped = [r for r in runs if r["status"] == "skipped"]
        executed = [r for r in runs if r.get("started_at") is not None]
        S.check(len(skipped) >= 2, "overlap skip, `sleep 2.5` every 1 s for 7 s: expected "
                ">= 2 skipped runs, got %s" % [(r["scheduled_at"], r["status"]) for r in runs])
        S.check(len(executed) >= 2, "overlap skip: expected >= 2 executed runs, got %d"
                % len(executed))
        for r in skipped:
            S.eq(r["reason"], "overlap", "skipped run %s: reason" % r["scheduled_at"])
            S.eq(r["started_at"], None, "skipped run %s: started_at" % r["scheduled_at"])
        for r in runs:
            S.check(r["status"] in ("succeeded", "skipped") + UNFINISHED,
                    "overlap skip: run %s is %s (%s)" % (r["scheduled_at"], r["status"],
                                                         r.get("error")))
            if r["status"] != "skipped":
                S.eq(r["reason"], None, "run %s (%s): reason" % (r["scheduled_at"], r["status"]))
            if T(r, "scheduled_at") < now - 3.5:
                S.check(r["status"] in FINAL, "overlap skip: run %s should be settled, it is %s"
                        % (r["scheduled_at"], r["status"]))
        executed.sort(key=lambda r: T(r, "started_at"))
        for a, b in zip(executed, executed[1:]):
            fa = T(a, "finished_at")
            S.check(fa is not None and T(b, "started_at") >= fa - 0.001,
                    "overlap skip: run %s started at %s while run %s ran (%s - %s)"
                    % (b["scheduled_at"], b["started_at"], a["scheduled_at"], a["started_at"],
                       a["finished_at"]))
        # several unfinished at once would be an overlap too
        S.check(sum(1 for r in runs if r["status"] in ("dispatched", "running")) <= 1,
                "overlap skip: at most one run dispatched/running at once, got %s"
                % [(r["scheduled_at"], r["status"]) for r in runs])

        runs = runs_of(cl, allow["id"])
        check_sequence(sorted(T(r, "scheduled_at") for r in runs), 1, "overlap allow")
        S.check(not any(r["status"] == "skipped" for r in runs),
                "overlap allow: no run skipped, got %s"
                % [(r["scheduled_at"], r["reason"]) for r in runs if r["status"] == "skipped"])
        iv = sorted((T(r, "started_at"), T(r, "finished_at") or float("inf"))
                    for r in runs if r.get("started_at"))
        most = 0
        for s, _ in iv:
            most = max(most, sum(1 for a, b in iv if a <= s < b))
        S.check(most >= 2, "overlap allow: `sleep 2.5` every 1 s should run concurrently "
                "(expected >= 2 at once, saw %d)" % most)
        S.check(len(iv) >= 5, "overlap allow: expected >= 5 runs started in 7 s, got %d" % len(iv))


@S.test
def overlap_judged_at_due_time():
    """The embedded scheduler marks runs ahead of their time; whether a run
    overlaps the one before is still decided at its due time.  `sleep 1.3`
    every 2 s ends 0.7 s before the next run is due, so none may be
    skipped, although the previous run is still running when the next one
    could first be marked."""
    with Server() as srv:
        cl = srv.client(srv.admin_token)
        t = create(cl, shell_task("sleep 1.3", {"every": "2s"}))
        time.sleep(9.0)
        runs = runs_of(cl, t["id"])
        done = [r for r in runs if r["status"] in FINAL]
        S.check(len(done) >= 3, "expected >= 3 settled runs in 9 s, got %s"
                % [(r["scheduled_at"], r["status"]) for r in runs])
        for r in done:
            S.eq(r["status"], "succeeded", "`sleep 1.3` every 2 s, run %s (reason %s)"
                 % (r["scheduled_at"], r.get("reason")))


# --- retries --------------------------------------------------------------------

@S.test
def retries():
    with Server() as srv:
        cl = srv.client(srv.admin_token)
        now = format_time(time.time())
        bad = create(cl, shell_task("echo try $SKED_ATTEMPT $SKED_RUN_ID; exit 3", {"at": now},
                                    retry={"max_attempts": 3, "backoff": "1s"}))
        second = create(cl, shell_task(
            'if [ "$SKED_ATTEMPT" -lt 2 ]; then echo no; exit 1; fi; echo ok $SKED_ATTEMPT',
            {"at": now}, retry={"max_attempts": 3, "backoff": "1s"}))
        seen = set()

        def settled():
            ok = True
            for t in (bad, second):
                rs = runs_of(cl, t["id"])
                ok &= bool(rs)  # not claimed yet is not settled
                for r in rs:
                    seen.add((t["id"], r["status"], r["attempt"]))
                    ok &= r["status"] in FINAL
            return ok
        wait_until(settled, 10.0, 0.15)
        runs = runs_of(cl, bad["id"])
        if not S.eq(len(runs), 1, "failing command with 3 attempts: one run (retries keep the run)"):
            print("  retries: server log: %s" % srv.stderr_tail(40), flush=True)
        if runs:
            r = runs[0]
            S.eq(r["status"], "failed", "exit 3 x3: status")
            S.eq(r["attempt"], 3, "exit 3 x3: attempt")
            S.eq(r["exit_code"], 3, "exit 3 x3: exit_code")
            S.check("try 3 " + r["id"] in (r.get("output") or ""),
                    "exit 3 x3: output is the last attempt's ('try 3 <run id>'), got %r"
                    % r.get("output"))
            if r.get("started_at") and r.get("finished_at"):
                span = T(r, "finished_at") - T(r, "started_at")
                # waits: backoff 1 s, then 2 s (multiplier 2), plus <= 10 % jitter
                S.check(2.9 <= span <= 8.0,
                        "exit 3 x3 with backoff 1s, multiplier 2: first start to last finish "
                        "should take ~3 s, took %.2f s" % span)
                S.check(r["lag_ms"] is not None and r["lag_ms"] < 1000,
                        "retried run: lag_ms is the first attempt's, got %r" % r["lag_ms"])
        S.check((bad["id"], "scheduled", 2) in seen or (bad["id"], "scheduled", 3) in seen or
                (bad["id"], "running", 2) in seen or (bad["id"], "running", 3) in seen,
                "a retry goes back to scheduled/running with attempt + 1; saw %s"
                % sorted((s, a) for t, s, a in seen if t == bad["id"]))
        runs = runs_of(cl, second["id"])
        S.eq(len(runs), 1, "fails once then succeeds: one run")
        if runs:
            r = runs[0]
            S.eq(r["status"], "succeeded", "fails once then succeeds: status")
            S.eq(r["attempt"], 2, "fails once then succeeds: attempt")
            S.eq(r["exit_code"], 0, "fails once then succeeds: exit_code")
            S.eq(r["error"], None, "fails once then succeeds: error (the last attempt's)")
            S.check("ok 2" in (r.get("output") or ""),
                    "fails once then succeeds: output 'ok 2', got %r" % r.get("output"))


# --- timeout --------------------------------------------------------------------

@S.test
def timeout_kills_the_process_group():
    tmp = tempfile.mkdtemp(prefix="sked-it-to-")
    try:
        with Server() as srv:
            cl = srv.client(srv.admin_token)
            pidf, kidf = os.path.join(tmp, "pid"), os.path.join(tmp, "kid")
            t0 = time.time()
            task = create(cl, {
                "schedule": {"at": format_time(t0)},
                "target": {"type": "shell", "timeout": "1s",
                           "command": "echo $$ > %s; sleep 30 & echo $! > %s; wait"
                                      % (pidf, kidf)}})
            runs = wait_task_runs(cl, task["id"],
                                  lambda rs: rs and rs[0]["status"] in FINAL, 6.0)
            S.check(len(runs) == 1 and runs[0]["status"] == "timed_out",
                    "`sleep 30` with timeout 1s: expected one timed_out run within 6 s, got %s"
                    % [(r["status"], r.get("error")) for r in runs])
            if runs and runs[0]["status"] == "timed_out":
                r = runs[0]
                span = T(r, "finished_at") - T(r, "started_at")
                S.check(0.9 <= span <= 4.0, "timeout 1s: the run should end ~1 s after its "
                        "start (SIGTERM), took %.2f s" % span)
                S.eq(r["attempt"], 1, "timed_out run attempt")
            for path, what in ((pidf, "the shell"), (kidf, "its background child")):
                pid = read_pid(path)
                if not S.check(pid is not None, "the command should have written %s" % path):
                    continue
                gone = wait_until(lambda: not alive(pid), 3.0, 0.05)
                S.check(gone, "after the timeout %s (pid %d) should be gone (the whole "
                        "process group is killed)" % (what, pid))
                if not gone:
                    try:
                        os.kill(pid, 9)
                    except OSError:
                        pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- http -----------------------------------------------------------------------

class _Hook(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen = None                              # set per server

    def _any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        self.server.seen.append({"method": self.command, "path": self.path,
                                 "headers": {k.lower(): v for k, v in self.headers.items()},
                                 "body": body})
        code = {"/ok": 200, "/fail": 500, "/s404": 404, "/s204": 204}.get(
            self.path.split("?")[0], 200)
        out = b"" if code == 204 or self.command == "HEAD" else b"hello from the hook\n"
        self.send_response(code)
        if code != 204:
            self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if out:
            self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _any

    def log_message(self, *a):
        pass


@S.test
def http_targets():
    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    hook.seen = []
    hook.daemon_threads = True
    th = threading.Thread(target=hook.serve_forever, daemon=True)
    th.start()
    base = "http://127.0.0.1:%d" % hook.server_address[1]
    try:
        with Server() as srv:
            cl = srv.client(srv.admin_token)
            now = format_time(time.time())

            def task(path, **target):
                t = {"type": "http", "url": base + path}
                t.update(target)
                return create(cl, {"schedule": {"at": now}, "target": t})
            ok = task("/ok", method="PUT", headers={"X-Test": "yes",
                                                    "Content-Type": "application/json"},
                      body='{"k": 1}')
            fail = task("/fail")
            want404 = task("/s404", method="GET", expect="404")
            not_5xx = task("/s204", expect="500-599")
            tasks = (ok, fail, want404, not_5xx)

            def settled():
                return all(rs and rs[0]["status"] in FINAL
                           for rs in (runs_of(cl, t["id"]) for t in tasks))
            wait_until(settled, 5.0, 0.15)
            res = {}
            for t in tasks:
                rs = runs_of(cl, t["id"])
                S.eq(len(rs), 1, "http task %s: number of runs" % t["target"]["url"])
                res[t["id"]] = rs[0] if rs else {}
            for t, status, code in ((ok, "succeeded", 200), (fail, "failed", 500),
                                    (want404, "succeeded", 404), (not_5xx, "failed", 204)):
                r = res[t["id"]]
                what = "http %s %s (expect %s)" % (t["target"]["method"], t["target"]["url"],
                                                  t["target"].get("expect"))
                S.eq(r.get("status"), status, what + ": status")
                S.eq(r.get("http_status"), code, what + ": http_status")
                S.eq(r.get("exit_code"), None, what + ": exit_code")
                if r.get("status") == "succeeded":
                    check_ran_well(r, what)
            by_path = {}
            for s in hook.seen:
                by_path.setdefault(s["path"], []).append(s)
            got = by_path.get("/ok", [])
            if S.check(len(got) == 1, "the hook should get one request on /ok, got %d" % len(got)):
                g = got[0]
                S.eq(g["method"], "PUT", "method received")
                S.eq(g["body"], b'{"k": 1}', "body received")
                S.eq(g["headers"].get("x-test"), "yes", "header X-Test received")
                S.eq(g["headers"].get("content-type"), "application/json",
                     "header Content-Type received")
                S.eq(g["headers"].get("x-sked-run-id"), res[ok["id"]].get("id"),
                     "X-Sked-Run-Id received (the run's id)")
                S.eq(g["headers"].get("x-sked-attempt"), "1", "X-Sked-Attempt received")
            for path, method in (("/fail", "POST"), ("/s404", "GET"), ("/s204", "POST")):
                got = by_path.get(path, [])
                if S.check(len(got) == 1, "the hook should get one request on %s, got %d"
                           % (path, len(got))):
                    S.eq(got[0]["method"], method, "method received on %s" % path)
                    S.check(got[0]["headers"].get("x-sked-run-id"),
                            "X-Sked-Run-Id on %s" % path)
    finally:
        hook.shutdown()
        hook.server_close()


# --- pause / resume -------------------------------------------------------------

@S.test
def pause_and_resume():
    with Server() as srv:
        cl = srv.client(srv.admin_token)
        task = create(cl, shell_task("true", {"every": "1s"}))
        wait_task_runs(cl, task["id"],
                       lambda rs: sum(r["status"] == "succeeded" for r in rs) >= 2, 4.0)
        p = must(cl.post("/v1/tasks/%s:pause" % task["id"]), 200, "pause")
        t_pause = time.time()
        S.eq(p["state"], "paused", "state after pause")
        time.sleep(3.0)
        r = must(cl.post("/v1/tasks/%s:resume" % task["id"]), 200, "resume")
        t_resume = time.time()
        S.eq(r["state"], "active", "state after resume")
        nra = parse_time(r["next_run_at"]) if r.get("next_run_at") else None
        S.check(nra is not None and nra >= t_resume - 1.0 and nra <= t_resume + 1.0,
                "resume computes the next occurrence from now: next_run_at %r (resumed at %s)"
                % (r.get("next_run_at"), format_time(t_resume)))
        time.sleep(2.6)
        runs = runs_of(cl, task["id"])
        during = [x for x in runs if t_pause < T(x, "scheduled_at") < t_resume - 0.2
                  and x["status"] != "canceled"]
        S.check(not during, "paused task: no occurrence while paused (paused at %s, resumed at "
                "%s), got %s" % (format_time(t_pause), format_time(t_resume),
                                 [(x["scheduled_at"], x["status"]) for x in during]))
        ran = [x for x in during if x.get("started_at")]
        S.check(not ran, "paused task: nothing may run while paused, ran: %s"
                % [(x["scheduled_at"], x["started_at"]) for x in ran])
        after = [x for x in runs if T(x, "scheduled_at") >= t_resume - 0.2]
        S.check(sum(x["status"] == "succeeded" for x in after) >= 1,
                "resumed task: runs again, got %s"
                % [(x["scheduled_at"], x["status"]) for x in after])
        before = [x for x in runs if T(x, "scheduled_at") <= t_pause]
        S.check(len(before) >= 2, "before the pause: >= 2 runs, got %d" % len(before))
        S.check(len(runs) == len({x["scheduled_at"] for x in runs}),
                "pause/resume: duplicate scheduled_at")


# --- trigger / cancel -----------------------------------------------------------

@S.test
def trigger_and_cancel():
    tmp = tempfile.mkdtemp(prefix="sked-it-cancel-")
    try:
        with Server() as srv:
            cl = srv.client(srv.admin_token)
            echo = create(cl, shell_task("echo triggered $SKED_RUN_ID"))
            t0 = time.time()
            r = cl.post("/v1/tasks/%s:trigger" % echo["id"])
            if S.status(r, 202, "trigger"):
                run = r.body
                S.eq(run.get("task_id"), echo["id"], "triggered run task_id")
                S.eq(run.get("attempt"), 1, "triggered run attempt")
                S.check(run.get("status") in UNFINISHED, "triggered run status: unfinished, "
                        "got %r" % run.get("status"))
                S.check(abs(parse_time(run["scheduled_at"]) - t0) < 1.0,
                        "triggered run is due now: scheduled_at %s" % run.get("scheduled_at"))
                done = wait_run(cl, run["id"], FINAL, 5.0)
                S.eq(done["status"], "succeeded", "triggered run status")
                S.check(run["id"] in (done.get("output") or ""),
                        "triggered run output has its id, got %r" % done.get("output"))
                if done["status"] == "succeeded":
                    check_ran_well(done, "triggered run")
                    c = cl.post("/v1/runs/%s:cancel" % run["id"])
                    S.error(c, 409, "conflict", "cancel a succeeded run")
                S.eq(must(cl.get("/v1/tasks/" + echo["id"]), 200, "GET")["state"], "active",
                     "a trigger leaves the task active")
            S.error(cl.post("/v1/tasks/%s:trigger" % "no-such-task"), 404, "not_found",
                    "trigger an unknown task")

            pidf = os.path.join(tmp, "pid")
            sleeper = create(cl, shell_task("echo $$ > %s; exec sleep 30" % pidf))
            run = must(cl.post("/v1/tasks/%s:trigger" % sleeper["id"]), 202, "trigger sleeper")
            cur = wait_run(cl, run["id"], ("running",) + FINAL, 5.0)
            pid = wait_until(lambda: read_pid(pidf), 3.0, 0.05)
            if S.check(cur["status"] == "running" and pid,
                       "triggered `sleep 30`: running with its pid written, got %s pid %r"
                       % (cur["status"], pid)):
                c = cl.post("/v1/runs/%s:cancel" % run["id"])
                if S.status(c, 200, "cancel a running run"):
                    S.eq(c.body.get("status"), "canceled", "cancel answer status")
                    S.eq(c.body.get("id"), run["id"], "cancel answer id")
                gone = wait_until(lambda: not alive(pid), 5.0, 0.05)
                S.check(gone, "cancel: the running process (pid %d) should be killed" % pid)
                if not gone:
                    try:
                        os.kill(pid, 9)
                    except OSError:
                        pass
                time.sleep(0.5)               # the worker's report must not undo the cancel
                after = get_run(cl, run["id"])
                S.eq(after["status"], "canceled", "canceled run status later")
                S.check(after.get("finished_at") is not None,
                        "canceled run has finished_at, got %r" % after.get("finished_at"))
                c = cl.post("/v1/runs/%s:cancel" % run["id"])
                S.error(c, 409, "conflict", "cancel a canceled run")
            c = cl.post("/v1/runs/%s:cancel" % "0190aaaa-0000-7000-8000-000000000000")
            S.error(c, 404, "not_found", "cancel an unknown run")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@S.test
def replaced_after_claim_ahead():
    """A one-time task is claimed, and its run recorded dispatched, well
    before its time (up to 30 s); a PUT meanwhile must still decide what
    the run executes: it goes out with the target the task has then (the
    scheduler reads the task again just before the run is due), once."""
    tmp = tempfile.mkdtemp(prefix="sked-it-replace-ahead-")
    try:
        with Server() as srv:
            cl = srv.client(srv.admin_token)
            at = format_time(time.time() + 4.0)
            old, new = os.path.join(tmp, "old"), os.path.join(tmp, "new")
            t = create(cl, shell_task("touch " + old, {"at": at}))
            runs = wait_task_runs(cl, t["id"], lambda rs: len(rs) > 0, 2.0, 0.05)
            S.check(len(runs) == 1 and runs[0]["status"] == "dispatched",
                    "claimed ahead and recorded dispatched: %r" % (runs,))
            must(cl.put("/v1/tasks/" + t["id"], shell_task("touch " + new, {"at": at})), 200,
                 "replace the task")
            runs = wait_task_runs(cl, t["id"],
                                  lambda rs: rs and all(r["status"] in FINAL for r in rs), 8.0)
            S.eq([r["status"] for r in runs], ["succeeded"], "one run, succeeded")
            S.check(os.path.exists(new), "the run executed the new command")
            S.check(not os.path.exists(old), "the old command did not run")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@S.test
def cancel_just_before_due():
    """The embedded scheduler marks a run dispatched ahead of its due time
    and publishes it at that time: a cancel, or the task's delete, in
    between must keep it from ever reaching the worker (not start it and
    have it killed)."""
    tmp = tempfile.mkdtemp(prefix="sked-it-cancel-due-")
    try:
        with Server(extra_args=["--log-level", "debug"]) as srv:
            cl = srv.client(srv.admin_token)
            ids = []
            for i in range(4):
                mark = os.path.join(tmp, "ran-%d" % i)
                at = time.time() + 2.5 + i * 0.5
                t = create(cl, shell_task("touch %s" % mark, {"at": format_time(at)}))
                runs = wait_task_runs(cl, t["id"], lambda rs: len(rs) > 0, 2.4)
                if not S.check(len(runs) == 1, "run %d claimed before its time" % i):
                    continue
                ids.append(runs[0]["id"])
                time.sleep(max(0.0, at - 0.010 - time.time()))
                sent = time.time()
                if i < 3:
                    c = cl.post("/v1/runs/%s:cancel" % runs[0]["id"])
                    S.status(c, 200, "cancel %.1f ms before the due time" % ((at - sent) * 1000))
                else:   # deleting the task cancels the run too
                    c = cl.delete("/v1/tasks/" + t["id"])
                    S.check(c.status in (200, 204), "delete the task %.1f ms before the due "
                            "time: got %d" % ((at - sent) * 1000, c.status))
                done = wait_run(cl, runs[0]["id"], FINAL, 3.0)
                S.eq(done["status"], "canceled", "run %d canceled just before its time" % i)
                S.eq(done.get("started_at"), None, "run %d canceled before its time: started_at" % i)
            time.sleep(0.5)
            with open(srv.log_path, errors="replace") as f:
                log = f.read()
            for i, rid in enumerate(ids):
                S.check('"run dispatched" run=%s' % rid not in log and
                        '"run started" run=%s' % rid not in log,
                        "run %d canceled 10 ms before its time must be neither published "
                        "nor started (server log)" % i)
                S.check(not os.path.exists(os.path.join(tmp, "ran-%d" % i)),
                        "run %d canceled 10 ms before its time must not have run" % i)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@S.test
def pause_just_before_due():
    """A run already marked dispatched ahead of its time (embedded mode)
    is canceled with a pause of its task that comes before that time, and
    never reaches a worker."""
    tmp = tempfile.mkdtemp(prefix="sked-it-pause-due-")
    try:
        with Server() as srv:
            cl = srv.client(srv.admin_token)
            mark = os.path.join(tmp, "ran")
            t = create(cl, shell_task("touch %s-$SKED_RUN_ID" % mark, {"every": "3s"}))
            now = time.time()
            runs = wait_task_runs(cl, t["id"], lambda rs: any(
                r["status"] in ("scheduled", "dispatched") and T(r, "scheduled_at") > now + 0.6
                for r in rs), 5.0)
            nxt = [r for r in runs if r["status"] in ("scheduled", "dispatched")
                   and T(r, "scheduled_at") > now + 0.6]
            if not S.check(len(nxt) >= 1, "a run claimed ahead: %s"
                           % [(r["scheduled_at"], r["status"]) for r in runs]):
                return
            run = min(nxt, key=lambda r: T(r, "scheduled_at"))
            at = T(run, "scheduled_at")
            time.sleep(max(0.0, at - 0.3 - time.time()))
            S.eq(get_run(cl, run["id"])["status"], "dispatched",
                 "300 ms before its time the run is marked dispatched")
            must(cl.post("/v1/tasks/%s:pause" % t["id"]), 200, "pause 300 ms before the due time")
            done = wait_run(cl, run["id"], FINAL, 3.0)
            S.eq(done["status"], "canceled", "run paused 300 ms before its time")
            S.eq(done.get("error"), "task paused", "run paused 300 ms before its time: error")
            S.eq(done.get("started_at"), None, "run paused before its time: started_at")
            time.sleep(max(0.0, at + 0.5 - time.time()))
            S.check(not os.path.exists("%s-%s" % (mark, run["id"])),
                    "a run paused 300 ms before its time must not have run")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- run lists ------------------------------------------------------------------

@S.test
def run_lists():
    with Server() as srv:
        cl = srv.client(srv.admin_token)
        good = create(cl, shell_task("true", {"every": "1s"}))
        bad = create(cl, shell_task("exit 1", {"every": "1s"}))
        time.sleep(3.2)
        # cursor pagination while runs keep coming: each run seen once
        snap = cl.list_runs("/v1/runs")
        pages, seen, cursor = 0, [], None
        while True:
            q = "/v1/runs?limit=2" + ("&cursor=" + cursor if cursor else "")
            page = must(cl.get(q), 200, "GET " + q)
            S.check(len(page["runs"]) <= 2, "limit=2: got %d runs" % len(page["runs"]))
            seen.extend(x["id"] for x in page["runs"])
            pages += 1
            cursor = page.get("next_cursor")
            if not cursor or pages > 200:
                break
            time.sleep(0.05)
        S.eq(len(seen), len(set(seen)), "cursor pages: no run seen twice")
        missing = {x["id"] for x in snap} - set(seen)
        S.check(not missing, "cursor pages while runs are added: every run that existed at "
                "the start is seen (%d missing of %d)" % (len(missing), len(snap)))
        for t in (good, bad):
            must(cl.post("/v1/tasks/%s:pause" % t["id"]), 200, "pause")
        time.sleep(2.5)                      # what was in flight settles

        allr = cl.list_runs("/v1/runs")
        S.check(len(allr) >= 6, "two every-1s tasks for ~3 s: expected >= 6 runs, got %d"
                % len(allr))
        for t in (good, bad):
            mine = [x for x in allr if x["task_id"] == t["id"]]
            sch = [T(x, "scheduled_at") for x in mine]
            S.check(all(a > b for a, b in zip(sch, sch[1:])),
                    "GET /v1/runs: newest first (one task's scheduled_at descending), got %s"
                    % [x["scheduled_at"] for x in mine])
            per = runs_of(cl, t["id"])
            S.eq([x["id"] for x in per], [x["id"] for x in mine],
                 "GET /v1/tasks/{id}/runs: the task's runs, in the same order as /v1/runs")
            by_name_or_filter = cl.list_runs("/v1/runs", "task_id=" + t["id"])
            S.eq([x["id"] for x in by_name_or_filter], [x["id"] for x in mine],
                 "GET /v1/runs?task_id=: the task's runs")
        succ = cl.list_runs("/v1/runs", "status=succeeded")
        fail = cl.list_runs("/v1/runs", "status=failed")
        S.check(succ and all(x["status"] == "succeeded" and x["task_id"] == good["id"]
                             for x in succ),
                "status=succeeded: only succeeded runs of the `true` task, got %s"
                % [(x["task_id"][-4:], x["status"]) for x in succ])
        S.check(fail and all(x["status"] == "failed" and x["task_id"] == bad["id"]
                             for x in fail),
                "status=failed: only failed runs of the `exit 1` task, got %s"
                % [(x["task_id"][-4:], x["status"]) for x in fail])
        S.eq(sorted(x["id"] for x in succ + fail),
             sorted(x["id"] for x in allr if x["status"] in ("succeeded", "failed")),
             "status filters cover the finished runs")
        for x in fail:
            S.eq(x["exit_code"], 1, "failed run exit_code")
        one = runs_of(cl, good["id"], "status=succeeded")
        S.check(one and all(x["status"] == "succeeded" for x in one),
                "GET /v1/tasks/{id}/runs?status=succeeded")
        # since/until on scheduled_at
        scheds = sorted({T(x, "scheduled_at") for x in allr})
        if len(scheds) >= 3:
            lo, hi = scheds[0] + 0.5, scheds[0] + 2.5
            win = cl.list_runs("/v1/runs", "since=%s&until=%s" % (format_time(lo),
                                                                  format_time(hi)))
            want = sorted(x["id"] for x in allr if lo <= T(x, "scheduled_at") <= hi)
            S.eq(sorted(x["id"] for x in win), want, "since/until on scheduled_at")
        # one run by id
        if allr:
            S.eq(get_run(cl, allr[-1]["id"]), allr[-1], "GET /v1/runs/{id}")
        S.error(cl.get("/v1/runs/0190aaaa-0000-7000-8000-000000000000"), 404, "not_found",
                "GET an unknown run id")
        # bad queries
        for q, field in (("status=bogus", "status"), ("limit=0", "limit"),
                         ("cursor=nope", "cursor"), ("since=yesterday", "since")):
            S.error(cl.get("/v1/runs?" + q), 400, "invalid_argument", "GET /v1/runs?" + q,
                    field=field)
        # another namespace sees none of it
        other = srv.client(must(cl.post("/v1/tokens", {"namespace": "other", "role": "write"}),
                                201, "token for namespace other")["token"])
        r = must(other.get("/v1/runs"), 200, "other namespace: GET /v1/runs")
        S.eq(r["runs"], [], "other namespace: GET /v1/runs")
        if allr:
            rid = allr[0]["id"]
            S.error(other.get("/v1/runs/" + rid), 404, "not_found",
                    "other namespace: GET /v1/runs/{id}")
            S.error(other.post("/v1/runs/%s:cancel" % rid), 404, "not_found",
                    "other namespace: cancel")
        S.error(other.get("/v1/tasks/%s/runs" % good["id"]), 404, "not_found",
                "other namespace: GET /v1/tasks/{id}/runs")
        r = other.get("/v1/runs?task_id=" + good["id"])
        S.check(r.status == 404 or (r.status == 200 and r.body["runs"] == []),
                "other namespace: GET /v1/runs?task_id=: 404 or empty, got %d %s"
                % (r.status, r.body))
        S.error(other.post("/v1/tasks/%s:trigger" % good["id"]), 404, "not_found",
                "other namespace: trigger")


# --- retention ------------------------------------------------------------------

@S.test
def retention_keep_runs():
    with Server(extra_args=["--keep-runs", "5"]) as srv:
        cl = srv.client(srv.admin_token)
        task = create(cl, shell_task("true", {"every": "1s"}))
        created = parse_time(task["created_at"])
        time.sleep(10.0)
        runs = runs_of(cl, task["id"])
        fin = sorted((x for x in runs if x["status"] in FINAL),
                     key=lambda x: T(x, "scheduled_at"))
        occurred = int(time.time() - created)
        print("  retention_keep_runs: %d runs kept (%d finished) of ~%d occurrences"
              % (len(runs), len(fin), occurred), flush=True)
        # pruning runs with the sweep (every ~2 s): allow a couple more
        S.check(len(fin) <= 5 + 2, "--keep-runs 5: at most ~5 finished runs of the task "
                "remain after ~10 s, got %d" % len(fin))
        S.check(len(runs) <= 5 + 2 + 3, "--keep-runs 5: at most 5 finished (+ margin) and a few "
                "unfinished runs, got %d" % len(runs))
        S.check(len(fin) >= 1, "--keep-runs 5: the newest finished runs stay, got none")
        if fin:
            newest = max(T(x, "scheduled_at") for x in runs if x["status"] in FINAL)
            S.check(T(fin[-1], "scheduled_at") == newest and
                    all(round(T(b, "scheduled_at") - T(a, "scheduled_at")) == 1
                        for a, b in zip(fin, fin[1:])),
                    "--keep-runs: the newest finished runs are kept, got %s"
                    % [x["scheduled_at"] for x in fin])
            S.check(T(fin[0], "scheduled_at") > created + 2,
                    "--keep-runs: the oldest runs were deleted (oldest kept %s, created %s)"
                    % (fin[0]["scheduled_at"], task["created_at"]))


# --- daylight saving ------------------------------------------------------------

@S.test
def dst_next_run_at():
    # America/New_York 2031: DST starts Sunday 9 March (02:00 EST -> 03:00 EDT,
    # 07:00Z) and ends Sunday 2 November (02:00 EDT -> 01:00 EST, 06:00Z).
    cases = [
        # (cron, start_at, expected next_run_at, why)
        ("30 2 * * *", "2031-03-09T06:59:00Z", "2031-03-09T07:00:00Z",
         "fixed-time in the spring gap fires at the transition instant (03:00 EDT)"),
        ("30 2 * * *", "2031-03-08T12:00:00Z", "2031-03-09T07:00:00Z",
         "fixed-time: 02:30 on the 9th does not exist, so 03:00 EDT"),
        ("30 * * * *", "2031-03-09T06:31:00Z", "2031-03-09T07:30:00Z",
         "wildcard: nothing for 02:30 in the gap; next is 03:30 EDT"),
        ("0 2,3 * * *", "2031-03-09T06:30:00Z", "2031-03-09T07:00:00Z",
         "gap fire and the real 03:00 merge into one"),
        ("30 1 * * *", "2031-11-02T05:00:00Z", "2031-11-02T05:30:00Z",
         "fixed-time in the repeated hour: the first 01:30 (EDT)"),
        ("30 1 * * *", "2031-11-02T05:31:00Z", "2031-11-03T06:30:00Z",
         "fixed-time: no second 01:30 (EST) on the 2nd; next is the 3rd"),
        ("*/30 * * * *", "2031-11-02T05:31:00Z", "2031-11-02T06:00:00Z",
         "wildcard fires in the repeated hour again: 01:00 EST"),
        ("0 2 * * *", "2031-11-02T05:59:00Z", "2031-11-02T07:00:00Z",
         "02:00 EST comes after the repeated hour"),
    ]
    with Server() as srv:
        cl = srv.client(srv.admin_token)
        for cron, start, want, why in cases:
            t = create(cl, shell_task("true", {"cron": cron, "timezone": "America/New_York",
                                               "start_at": start}),
                       "create %s from %s" % (cron, start))
            got = t.get("next_run_at")
            S.check(got is not None and parse_time(got) == parse_time(want),
                    "%s America/New_York, start_at %s: next_run_at %s expected, got %r (%s)"
                    % (cron, start, want, got, why))
            again = must(cl.get("/v1/tasks/" + t["id"]), 200, "GET task")
            S.eq(again.get("next_run_at"), got, "next_run_at as stored")
            S.eq(runs_of(cl, t["id"]), [], "a task due in 2031 has no runs yet")
        previews = [
            ({"cron": "30 2 * * *", "timezone": "America/New_York"}, "2031-03-08T00:00:00Z", 3,
             ["2031-03-08T02:30:00-05:00", "2031-03-09T03:00:00-04:00",
              "2031-03-10T02:30:00-04:00"]),
            ({"cron": "*/30 * * * *", "timezone": "America/New_York"}, "2031-03-09T06:15:00Z", 3,
             ["2031-03-09T01:30:00-05:00", "2031-03-09T03:00:00-04:00",
              "2031-03-09T03:30:00-04:00"]),
            ({"cron": "30 1 * * *", "timezone": "America/New_York"}, "2031-11-01T12:00:00Z", 3,
             ["2031-11-02T01:30:00-04:00", "2031-11-03T01:30:00-05:00",
              "2031-11-04T01:30:00-05:00"]),
            ({"cron": "*/30 * * * *", "timezone": "America/New_York"}, "2031-11-02T05:15:00Z", 4,
             ["2031-11-02T01:30:00-04:00", "2031-11-02T01:00:00-05:00",
              "2031-11-02T01:30:00-05:00", "2031-11-02T02:00:00-05:00"]),
            ({"cron": "30 2 * * *", "timezone": "America/New_York",
              "start_at": "2031-03-09T06:59:00Z"}, "2031-03-01T00:00:00Z", 2,
             ["2031-03-09T03:00:00-04:00", "2031-03-10T02:30:00-04:00"]),
        ]
        for sched, frm, n, want in previews:
            r = cl.post("/v1/schedules:preview", {"schedule": sched, "from": frm, "count": n})
            if S.status(r, 200, "preview %s from %s" % (sched, frm)):
                S.eq(r.body.get("next"), want, "preview %s from %s" % (sched, frm))


# --- workers and metrics --------------------------------------------------------

def metric_values(text, name):
    """[(labels text, value)] of the samples of one metric name."""
    out = []
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        rest = line[len(name):]
        if rest[:1] not in ("{", " "):
            continue
        labels = ""
        if rest.startswith("{"):
            labels, _, rest = rest[1:].partition("}")
        try:
            out.append((labels, float(rest.split()[0])))
        except (ValueError, IndexError):
            pass
    return out


def starts_sent(cl):
    """The worker's count of started events sent on their own."""
    m = cl.get("/metrics")
    text = m.body if isinstance(m.body, str) else ""
    vals = metric_values(text, "sked_worker_starts_sent_total")
    return vals[0][1] if vals else 0.0


@S.test
def start_folded_into_finish():
    """The worker holds a started event up to 100 ms for its run's
    finished event, which then carries the start: a run of 50 ms sends no
    started event of its own (before the hold it did: the outbox waited
    only 5 ms), one of 600 ms does, and shows running while it runs."""
    with Server() as srv:
        cl = srv.client(srv.admin_token)
        for secs, sent in ((0.05, 0), (0.6, 1)):
            before = starts_sent(cl)
            t = create(cl, shell_task("sleep %s" % secs, {"at": format_time(time.time() + 0.5)}))
            running = wait_task_runs(cl, t["id"],
                                     lambda rs: rs and rs[0]["status"] in ("running",) + FINAL,
                                     5.0, 0.02)
            runs = wait_task_runs(cl, t["id"], lambda rs: rs and rs[0]["status"] in FINAL, 5.0)
            S.eq([r["status"] for r in runs], ["succeeded"], "the %s s run" % secs)
            if sent:
                S.eq(running[0]["status"] if running else None, "running",
                     "the %s s run, seen while it runs" % secs)
            if runs:
                S.check(runs[0].get("started_at") and T(runs[0], "started_at") >= T(runs[0], "due_at"),
                        "the %s s run has its start time: %r" % (secs, runs[0]))
            S.eq(starts_sent(cl) - before, sent, "started events sent on their own, %s s run"
                 % secs)


@S.test
def workers_and_metrics():
    with Server(extra_args=["--workers", "7", "--queues", "default,extra"]) as srv:
        cl = srv.client(srv.admin_token)
        ws = wait_until(lambda: must(cl.get("/v1/workers"), 200, "GET /v1/workers")["workers"],
                        3.0, 0.1)
        if S.check(isinstance(ws, list) and len(ws) == 1,
                   "GET /v1/workers: the server's one worker, got %r" % (ws,)):
            w = ws[0]
            S.check(isinstance(w.get("id"), str) and w["id"], "worker id, got %r" % w.get("id"))
            S.eq(w.get("slots"), 7, "worker slots (--workers 7)")
            S.eq(w.get("queues"), ["default", "extra"], "worker queues (--queues default,extra)")
            S.check(isinstance(w.get("busy"), int) and 0 <= w["busy"] <= 7,
                    "worker busy in 0..7, got %r" % w.get("busy"))
            hb = w.get("last_heartbeat")
            S.check(hb is not None and abs(parse_time(hb) - time.time()) < 10,
                    "worker last_heartbeat recent, got %r" % hb)
        every = create(cl, shell_task("true", {"every": "1s"}))
        extra = create(cl, shell_task("echo extra", {"at": format_time(time.time())},
                                      queue="extra"))
        time.sleep(2.8)
        r = wait_task_runs(cl, extra["id"], lambda rs: rs and rs[0]["status"] in FINAL, 3.0)
        S.check(r and r[0]["status"] == "succeeded" and r[0]["queue"] == "extra",
                "a task on queue extra runs on the worker that takes extra, got %s"
                % [(x["queue"], x["status"]) for x in r])
        ok = [x for x in runs_of(cl, every["id"]) if x["status"] == "succeeded"]
        S.check(len(ok) >= 2, "every 1s for ~3 s: >= 2 succeeded, got %d" % len(ok))
        if ok:
            S.eq(ok[0].get("worker"), ws[0]["id"] if ws else None,
                 "run.worker is the worker's id")
        m = cl.get("/metrics")
        if S.status(m, 200, "GET /metrics"):
            text = m.body if isinstance(m.body, str) else ""
            cnt = metric_values(text, "sked_run_start_lag_seconds_count")
            S.check(cnt and sum(v for _, v in cnt) >= len(ok) + 1,
                    "/metrics: sked_run_start_lag_seconds_count >= %d runs started, got %r"
                    % (len(ok) + 1, cnt))
            S.check(metric_values(text, "sked_run_start_lag_seconds_bucket"),
                    "/metrics: sked_run_start_lag_seconds is a histogram with buckets")
            tot = metric_values(text, "sked_runs_total")
            succ = sum(v for lab, v in tot if 'status="succeeded"' in lab)
            S.check(succ >= len(ok) + 1, "/metrics: sked_runs_total{status=\"succeeded\"} >= %d, "
                    "got %r" % (len(ok) + 1, tot))


if __name__ == "__main__":
    S.run()
