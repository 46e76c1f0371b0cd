#!/usr/bin/env python3
"""test_cluster.py - a whole cluster on loopback (scripts/cluster up: PostgreSQL
primary + standby under pg_auto_failover, one RabbitMQ node, haproxy, 2 api,
2 schedulers, 3 workers), under load, through faults (DESIGN §1, §2).

The cluster comes up once (cluster_up), with a load that runs all along:
20 every-1s tasks (`true`) and a client creating one-time http tasks (the
test's sink) due within the next 20 s, ~8 a second, through the load
balancer.  Then, each its own test:

- occurrences_once: 250 every-1s tasks with 20 occurrences each (5,000
  occurrences) on 2 schedulers: exactly one run record each, all
  succeeded, none started before its time, each executed once.
- scheduler_killed: SIGKILL a scheduler; start it again.
- worker_killed_mid_run: a `sleep 3` run is running; SIGKILL its worker:
  the run gets another attempt and succeeds.
- api_killed_behind_lb: a client creates tasks as fast as it can while an
  api is SIGKILLed: every task answered 2xx is there.
- rabbitmq_restarted: the RabbitMQ node is killed and started again.
- postgres_failover: SIGKILL the primary's postmaster and keeper:
  pg_auto_failover promotes the standby and sked carries on.
- cluster_down: `scripts/cluster down` stops every process it started.

The schedulers pack up to 8 jobs per queue message (--jobs-per-message 8,
through SKED_JOBS_PER_MESSAGE), so the faults also hit workers holding
messages of several runs; test_cluster_ha keeps the default (one).

After each fault (clustertest.check_invariants): every acknowledged task is
there; no occurrence has two run records; one-time tasks ran once, at their
time; every-1s tasks have no gap; every due run started within 10 s of its
time and not before; the sink saw no run executed more often than its
attempts.

Run: python3 tests/integration/test_cluster.py [TEST_NAME...]
(SKED=path/to/sked; SKED_TEST_KEEP_LOGS=1 keeps the cluster's directory)
"""
import os
import random
import sys
import threading
import time

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from skedtest import Suite, format_time, parse_time, wait_until  # noqa: E402
from clustertest import (brief, bring_down, bring_up, check_invariants,  # noqa: E402
                         fetch_runs, must, run_suite, wait_runs_settled, wait_state)

S = Suite("test_cluster", timeout=90)
os.environ["SKED_JOBS_PER_MESSAGE"] = "8"   # scripts/cluster's schedulers
C = {"cluster": None, "load": None}


def cluster():
    c = C["cluster"]
    if c is None or not c.is_up:
        raise AssertionError("the cluster is not up (see cluster_up)")
    return c


@S.test(timeout=200)
def cluster_up():
    bring_up(S, C, ha=False)


@S.test(timeout=120)
def occurrences_once():
    c = cluster()
    load = C["load"]
    cl = c.client(timeout=30.0)
    n_tasks, n_occ = 250, 20
    start = float(int(time.time()) + 4)
    end = start + n_occ - 1
    ids = []
    for k in range(0, n_tasks, 125):
        body = {"tasks": [{"schedule": {"every": "1s", "start_at": format_time(start),
                                        "end_at": format_time(end)},
                           "target": {"type": "shell", "command": "true"},
                           # what is checked is scheduling, not the overlap
                           # policy's view of runs whose end is not stored yet
                           "overlap": "allow",
                           "labels": {"test": "occurrences_once"}}
                          for _ in range(k, min(n_tasks, k + 125))]}
        got = must(cl.post("/v1/tasks:batch", body), 201, "batch of every-1s tasks")["tasks"]
        load.extra_acked.extend(got)
        ids.extend(t["id"] for t in got)
    S.check(time.time() < start, "creating %d tasks took too long: the first occurrence "
            "passed before they were all created" % n_tasks)
    wait_until(lambda: time.time() > end + 1.0, n_occ + 10, 0.5)
    settled = wait_runs_settled(cl, start, end + 1, 20.0)
    S.check(settled, "the 5,000 runs did not all finish within 20 s of the last occurrence")
    runs = [r for r in fetch_runs(cl, start) if r["task_id"] in set(ids)]
    by_task = {}
    for r in runs:
        by_task.setdefault(r["task_id"], []).append(r)
    want = [start + k for k in range(n_occ)]
    wrong, early, late, bad = [], [], [], []
    for tid in ids:
        got = sorted(parse_time(r["scheduled_at"]) for r in by_task.get(tid, []))
        if got != want:
            wrong.append("%s: %d runs, %s..%s" % (tid[-6:], len(got),
                         format_time(got[0]) if got else "-",
                         format_time(got[-1]) if got else "-"))
    lags = []
    for r in runs:
        if r["status"] != "succeeded" or r["attempt"] != 1:
            bad.append(brief(r))
        st = parse_time(r.get("started_at"))
        if st is None:
            continue
        lag = st - parse_time(r["scheduled_at"])
        lags.append(lag)
        if lag < -0.001:
            early.append("%s started %s" % (brief(r), r["started_at"]))
        if lag >= 10.0:
            late.append("%s lag %.1f s" % (brief(r), lag))
    S.eq(len(runs), n_tasks * n_occ, "run records of %d tasks x %d occurrences"
         % (n_tasks, n_occ))
    S.check(not wrong, "each task has exactly one run per occurrence, %d do not, e.g. %s"
            % (len(wrong), wrong[:4]))
    S.check(not bad, "every run of `true` succeeds at its first attempt: %d did not, e.g. %s"
            % (len(bad), bad[:4]))
    S.eq(len(lags), len(runs), "runs with a started_at")
    S.check(not early, "runs started before their time: %d, e.g. %s" % (len(early), early[:4]))
    S.check(not late, "runs started 10 s or more late: %d, e.g. %s" % (len(late), late[:4]))
    lags.sort()
    if lags:
        print("  occurrences_once: %d runs; start lag median %.1f ms, p99 %.1f ms, max %.1f ms"
              % (len(runs), 1000 * lags[len(lags) // 2], 1000 * lags[int(len(lags) * .99)],
                 1000 * lags[-1]), flush=True)
    check_invariants(S, c, load, "occurrences_once")


@S.test(timeout=90)
def scheduler_killed():
    c = cluster()
    load = C["load"]
    name = random.choice(["scheduler-1", "scheduler-2"])
    t_kill = time.time()
    c.kill(name)
    S.check(c.status()[name]["state"] == "down", "%s is down after kill" % name)
    time.sleep(8.0)
    c.start(name)
    wait_state(c, name, "up", 10)
    check_invariants(S, c, load, "scheduler_killed (%s)" % name, since=t_kill - 5,
                     until=time.time() + 2)


@S.test(timeout=120)
def worker_killed_mid_run():
    c = cluster()
    load = C["load"]
    cl = c.client()
    # Each execution leaves a line: a second one must be a second attempt.
    marks = os.path.join(c.dir, "executions")
    task = must(cl.post("/v1/tasks", {
        "schedule": {"at": format_time(time.time() + 1.0)},
        "target": {"type": "shell",
                   "command": "echo $SKED_ATTEMPT >>%s; sleep 3" % marks},
        "retry": {"max_attempts": 3, "backoff": "1s"}}), 201, "create sleep 3")
    load.extra_acked.append(task)
    path = "/v1/tasks/%s/runs" % task["id"]

    def running():
        rs = cl.list_runs(path)
        return rs[0] if rs and rs[0]["status"] == "running" else None
    run = wait_until(running, 10.0, 0.1)
    if not S.check(run is not None, "the `sleep 3` run should be running within 10 s: %s"
                   % cl.list_runs(path)):
        return
    name = c.name_of_worker(run["worker"])
    if not S.check(name is not None, "no cluster worker has the PID of %r" % run["worker"]):
        return
    t_kill = time.time()
    c.kill(name)
    last = [None]

    def final():
        last[0] = must(cl.get("/v1/runs/" + run["id"]), 200, "GET run")
        return last[0]["status"] in ("succeeded", "failed", "timed_out", "canceled")
    wait_until(final, 60.0, 0.5)
    r = last[0]
    print("  worker_killed_mid_run: killed %s at attempt %d; the run ended %s at attempt %d "
          "%.1f s later (error of the lost attempt: %r)"
          % (name, run["attempt"], r["status"], r["attempt"], time.time() - t_kill,
             r.get("error")), flush=True)
    S.check(r["status"] == "succeeded" and r["attempt"] > run["attempt"],
            "the run whose worker was killed should get another attempt and succeed; got %s"
            % brief(r))
    try:
        with open(marks) as f:
            execs = f.read().split()
    except OSError:
        execs = []
    S.check(len(execs) <= r["attempt"] and len(set(execs)) == len(execs),
            "every execution of the run is an attempt of its own: executions had "
            "SKED_ATTEMPT %s, the run says attempt %d" % (execs, r["attempt"]))
    c.start(name)
    wait_state(c, name, "up", 10)
    check_invariants(S, c, load, "worker_killed_mid_run (%s)" % name, since=t_kill - 5,
                     until=t_kill + 3)


class FastCreator(threading.Thread):
    """Creates tasks one after the other as fast as answers come."""

    def __init__(self, c):
        super().__init__(daemon=True)
        self.cl = c.client(timeout=5.0)
        self.acked, self.failed, self.errors = [], 0, {}
        self.stop_ev = threading.Event()

    def run(self):
        while not self.stop_ev.is_set():
            spec = {"schedule": {"cron": "0 3 1 1 *"},
                    "target": {"type": "shell", "command": "true"},
                    "labels": {"test": "api_killed"}}
            try:
                r = self.cl.request("POST", "/v1/tasks", spec, retry=False)
                if 200 <= r.status < 300:
                    self.acked.append(r.body)
                else:
                    self.failed += 1
                    self.errors[r.status] = self.errors.get(r.status, 0) + 1
            except Exception as e:
                self.failed += 1
                k = type(e).__name__
                self.errors[k] = self.errors.get(k, 0) + 1
        self.cl.close()


@S.test(timeout=90)
def api_killed_behind_lb():
    c = cluster()
    load = C["load"]
    fc = FastCreator(c)
    fc.start()
    time.sleep(2.0)
    n_before = len(fc.acked)
    name = random.choice(["api-1", "api-2"])
    t_kill = time.time()
    c.kill(name)
    time.sleep(3.0)
    fc.stop_ev.set()
    fc.join(10)
    load.extra_acked.extend(fc.acked)
    print("  api_killed_behind_lb: %d tasks created (%d before the kill of %s), %d "
          "requests failed %s" % (len(fc.acked), n_before, name, fc.failed, fc.errors),
          flush=True)
    S.check(len(fc.acked) > n_before, "tasks are still created through the load balancer "
            "after %s is killed" % name)
    S.check(fc.failed <= 3, "a killed api costs at most a few requests: %d failed %s"
            % (fc.failed, fc.errors))
    cl = c.client()
    present = {t["id"] for t in cl.list_all("label=test:api_killed")}
    missing = [t["id"] for t in fc.acked if t["id"] not in present]
    S.check(not missing, "%d tasks answered 2xx are missing: %s" % (len(missing), missing[:5]))
    c.start(name)
    wait_state(c, name, "up", 10)
    S.check(wait_until(lambda: cl.get("/readyz").status == 200, 10, 0.2),
            "the load balancer is ready again")
    check_invariants(S, c, load, "api_killed_behind_lb (%s)" % name, since=t_kill - 5,
                     until=t_kill + 3)


@S.test(timeout=90)
def rabbitmq_restarted():
    c = cluster()
    load = C["load"]
    t_kill = time.time()
    c.kill("rabbit-1")
    c.start("rabbit-1")
    t_up = time.time()
    print("  rabbitmq_restarted: the node was down %.1f s" % (t_up - t_kill), flush=True)
    check_invariants(S, c, load, "rabbitmq_restarted", since=t_kill - 5, until=t_up + 2)


@S.test(timeout=120)
def postgres_failover():
    c = cluster()
    load = C["load"]
    st = c.status()
    primary = [n for n in ("pg-1", "pg-2") if st[n]["state"] == "up,primary"]
    standby = [n for n in ("pg-1", "pg-2") if st[n]["state"] == "up,standby"]
    if not S.check(len(primary) == 1 and len(standby) == 1,
                   "one primary and one standby before the fault: %s"
                   % {n: st[n]["state"] for n in ("pg-1", "pg-2")}):
        return
    old, new = primary[0], standby[0]
    cl = c.client(timeout=3.0)
    t_kill = time.time()
    c.kill(old)

    def writes():
        try:
            r = cl.request("POST", "/v1/tasks", {
                "schedule": {"cron": "0 3 1 1 *"},
                "target": {"type": "shell", "command": "true"},
                "labels": {"test": "failover"}}, retry=False)
        except Exception:
            return False
        if 200 <= r.status < 300:
            load.extra_acked.append(r.body)
            return True
        return False
    ok = wait_until(writes, 30.0, 0.2)
    t_write = time.time() - t_kill
    S.check(ok, "a task can be created again within 30 s of killing the primary")
    wait_state(c, new, "up,primary", 20)
    print("  postgres_failover: killed %s; first task created %.1f s later; %s is primary"
          % (old, t_write, new), flush=True)
    check_invariants(S, c, load, "postgres_failover (%s)" % old, since=t_kill - 5,
                     until=t_kill + t_write + 2)
    t0 = time.time()
    c.start(old)
    wait_state(c, old, "up,standby", 60)
    print("  postgres_failover: %s back as the standby %.1f s after its start"
          % (old, time.time() - t0), flush=True)


@S.test(timeout=120)
def cluster_down():
    bring_down(S, C)


if __name__ == "__main__":
    run_suite(S, C)
