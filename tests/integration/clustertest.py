"""clustertest.py - what the cluster tests share (Python 3 standard library).

- Cluster: `scripts/cluster up [--ha]` in a temp SKED_CLUSTER_DIR, its
  status/kill/start/down, and a Client through the load balancer.  Whatever
  happens, the cluster is brought down at exit.
- Sink: a small HTTP server the tasks call; it counts the executions of
  each run (X-Sked-Run-Id), so a second execution is seen.
- Load: every-1s tasks and a thread creating one-time tasks (due within the
  next ~20 s, calling the sink) through the load balancer all along, keeping
  what was acknowledged.
- check_invariants(): what must hold after every fault - every
  acknowledged task present; one run per (task_id, scheduled_at); each
  one-time task run once, at its `at`; every-1s tasks with no gap; every due
  run started within 10 s of its time and never before it; executions
  beyond the first only as extra attempts of the same run.

Not here: the faults themselves (test_cluster*.py).
"""
import atexit
import http.server
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from skedtest import Client, format_time, parse_time, sked_path, wait_until

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(ROOT, "scripts", "cluster")
FINAL = ("succeeded", "failed", "timed_out", "skipped", "canceled")
UNFINISHED = ("scheduled", "dispatched", "running")
MAX_LAG = 10.0          # DESIGN §2.4: every occurrence starts within 10 s
SETTLE = 12.0           # runs due longer ago than this must have started

_clusters = []


def _down_all():
    for c in list(_clusters):
        try:
            c.cleanup()
        except Exception:
            pass


atexit.register(_down_all)


def must(r, status, what):
    if r.status not in (status if isinstance(status, tuple) else (status,)):
        raise AssertionError("%s: expected %s, got %d %s" % (what, status, r.status, r.body))
    return r.body


def brief(r):
    return "%s@%s %s a%s%s" % (r["task_id"][-6:], r["scheduled_at"], r["status"], r["attempt"],
                              (" (%s)" % r["error"]) if r.get("error") else "")


class Cluster:
    def __init__(self, ha=False):
        self.ha = ha
        # Short (unix socket paths) and reachable by the postgres user.
        self.dir = tempfile.mkdtemp(prefix="skc-", dir="/tmp")
        self.env = {}
        self.up_seconds = None
        self.is_up = False
        _clusters.append(self)

    def _run(self, args, timeout=120):
        env = dict(os.environ, SKED_CLUSTER_DIR=self.dir, SKED=sked_path())
        return subprocess.run([SCRIPT] + list(args), capture_output=True, text=True,
                              timeout=timeout, env=env, stdin=subprocess.DEVNULL)

    def up(self):
        t0 = time.monotonic()
        p = self._run(["up"] + (["--ha"] if self.ha else []), timeout=240)
        self.up_seconds = time.monotonic() - t0
        if p.returncode != 0:
            raise AssertionError("scripts/cluster up exited %d: %s" % (
                p.returncode, p.stderr.strip()[-2000:]))
        for line in p.stdout.splitlines():
            k, sep, v = line.partition("=")
            if sep:
                self.env[k] = v
        for k in ("SKED_URL", "SKED_TOKEN", "SKED_STORE_URL", "SKED_QUEUE_URL"):
            if k not in self.env:
                raise AssertionError("scripts/cluster up printed no %s= line: %r" % (k, p.stdout))
        with open(os.path.join(self.dir, "env")) as f:
            written = dict(l.rstrip("\n").split("=", 1) for l in f if "=" in l)
        if written != self.env:
            raise AssertionError("%s/env %r differs from what up printed %r"
                                 % (self.dir, written, self.env))
        self.is_up = True
        return self

    def status(self):
        """{name: {"role", "pid", "addr", "state"}}."""
        p = self._run(["status"], timeout=30)
        if p.returncode != 0:
            raise AssertionError("scripts/cluster status exited %d: %s"
                                 % (p.returncode, p.stderr.strip()))
        out = {}
        for line in p.stdout.splitlines():
            f = line.split()
            if len(f) != 5:
                raise AssertionError("status line is not NAME ROLE PID ADDRESS STATE: %r" % line)
            out[f[0]] = {"role": f[1], "pid": None if f[2] == "-" else int(f[2]),
                         "addr": f[3], "state": f[4]}
        return out

    def kill(self, name, *extra):
        p = self._run(["kill", name] + list(extra), timeout=30)
        if p.returncode != 0:
            raise AssertionError("scripts/cluster kill %s exited %d: %s"
                                 % (name, p.returncode, p.stderr.strip()))

    def start(self, name):
        p = self._run(["start", name], timeout=120)
        if p.returncode != 0:
            raise AssertionError("scripts/cluster start %s exited %d: %s"
                                 % (name, p.returncode, p.stderr.strip()[-1500:]))

    def down(self):
        p = self._run(["down"], timeout=180)
        self.is_up = False
        if p.returncode != 0:
            raise AssertionError("scripts/cluster down exited %d: %s"
                                 % (p.returncode, p.stderr.strip()))
        return p

    def cleanup(self):
        if self.is_up:
            try:
                self.down()
            except Exception as e:
                print("  cluster down failed: %s" % e, flush=True)
        if self in _clusters:
            _clusters.remove(self)
        if os.environ.get("SKED_TEST_KEEP_LOGS"):
            print("  cluster state and logs kept: %s" % self.dir, flush=True)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def client(self, timeout=10.0):
        hostport = self.env["SKED_URL"].split("://", 1)[1].rstrip("/")
        host, _, port = hostport.rpartition(":")
        return Client(host, int(port), token=self.env["SKED_TOKEN"], timeout=timeout)

    def name_of_worker(self, worker_field):
        """The cluster name of the worker a run names ("HOST/PID")."""
        pid = worker_field.rsplit("/", 1)[-1] if worker_field else ""
        for name, st in self.status().items():
            if st["role"] == "worker" and str(st["pid"]) == pid:
                return name
        return None

    def log_grep(self, text, limit=30):
        """Lines of every process's log that mention text, "NAME: line"."""
        out = []
        logdir = os.path.join(self.dir, "log")
        for fn in sorted(os.listdir(logdir)) if os.path.isdir(logdir) else []:
            try:
                with open(os.path.join(logdir, fn), errors="replace") as f:
                    out += ["%s: %s" % (fn[:-4], ln.rstrip()) for ln in f if text in ln]
            except OSError:
                pass
        return out[:limit]

    def log_tail(self, name, n=10):
        try:
            with open(os.path.join(self.dir, "log", name + ".log"), errors="replace") as f:
                return " | ".join(f.read().splitlines()[-n:])
        except OSError:
            return "(no log)"


class Sink:
    """HTTP target: counts POSTs per X-Sked-Run-Id."""

    def __init__(self):
        self.lock = threading.Lock()
        self.hits = {}
        sink = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                rid = self.headers.get("X-Sked-Run-Id") or ""
                with sink.lock:
                    sink.hits[rid] = sink.hits.get(rid, 0) + 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        self.url = "http://127.0.0.1:%d/hit" % self.port
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def counts(self):
        with self.lock:
            return dict(self.hits)

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


class Creator(threading.Thread):
    """Creates one-time tasks through the load balancer until stopped.

    due: (lo, hi) seconds from now; rate: tasks per second.  acked: the
    tasks a 2xx answer returned; failed: answers that were not 2xx or did
    not come (their task may or may not exist)."""

    def __init__(self, cluster, sink, seed, due=(0.3, 20.0), rate=8.0):
        super().__init__(daemon=True)
        self.cl = cluster.client(timeout=5.0)
        self.sink = sink
        self.rng = random.Random(seed)
        self.due, self.rate = due, rate
        self.acked = []
        self.failed = 0
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()

    def run(self):
        while not self.stop_ev.is_set():
            t = time.time()
            at = t + self.rng.uniform(*self.due)
            spec = {"schedule": {"at": format_time(at)},
                    "target": {"type": "http", "method": "POST", "url": self.sink.url,
                               "timeout": "5s"},
                    "retry": {"max_attempts": 3, "backoff": "1s"}}
            try:
                r = self.cl.request("POST", "/v1/tasks", spec, retry=False)
                if 200 <= r.status < 300:
                    with self.lock:
                        self.acked.append(r.body)
                else:
                    self.failed += 1
            except Exception:
                self.failed += 1
            self.stop_ev.wait(max(0.0, 1.0 / self.rate - (time.time() - t)))
        self.cl.close()

    def stop(self):
        self.stop_ev.set()
        self.join(10)

    def tasks(self):
        with self.lock:
            return list(self.acked)


class Load:
    """Background load for a whole test file: N every-1s tasks (shell
    `true`) and a Creator of one-time http tasks."""

    def __init__(self, cluster, n_every=20, rate=8.0, seed=None):
        self.cluster = cluster
        self.sink = Sink()
        self.seed = seed if seed is not None else random.randrange(1 << 30)
        self.t0 = time.time()
        cl = cluster.client()
        self.every = must(cl.post("/v1/tasks:batch", {"tasks": [
            {"name": "load-every-%02d" % i, "schedule": {"every": "1s"},
             "target": {"type": "shell", "command": "true"}}
            for i in range(n_every)]}), 201, "batch of every-1s tasks")["tasks"]
        cl.close()
        self.creator = Creator(cluster, self.sink, self.seed, rate=rate)
        self.creator.start()
        self.extra_acked = []       # tasks acknowledged to the tests themselves

    def acked(self):
        return self.every + self.creator.tasks() + self.extra_acked

    def stop(self):
        self.creator.stop()
        self.sink.close()


def fetch_runs(cl, since):
    return cl.list_runs("/v1/runs", "since=" + format_time(since).replace("+", "%2B"))


def check_invariants(S, cluster, load, what, since=None, until=None):
    """Check the contract over every run scheduled from `since` (default: the
    start of the load) to now - SETTLE, first waiting until that covers
    `until` (the end of a fault).  Returns (runs, tasks)."""
    since = load.t0 if since is None else since
    if until is not None:
        time.sleep(max(0.0, until + SETTLE - time.time()))
    acked = load.acked()        # before the list: what it must hold
    cl = cluster.client(timeout=20.0)
    t_read = time.time()
    horizon = t_read - SETTLE
    tasks = {t["id"]: t for t in cl.list_all()}
    runs = fetch_runs(cl, load.t0 - 1.0)
    cl.close()

    # every acknowledged task is there
    lost = [t["id"] for t in acked if t["id"] not in tasks]
    S.check(not lost, "%s: %d of %d acknowledged tasks are missing: %s"
            % (what, len(lost), len(acked), lost[:5]))

    # one run per (task_id, scheduled_at)
    keys, dups = {}, []
    for r in runs:
        k = (r["task_id"], parse_time(r["scheduled_at"]))
        if k in keys:
            dups.append((brief(keys[k]), brief(r)))
        keys[k] = r
    S.check(not dups, "%s: %d occurrences have two run records, e.g. %s"
            % (what, len(dups), dups[:3]))
    by_task = {}
    for r in runs:
        by_task.setdefault(r["task_id"], []).append(r)

    # one-time tasks: one run, at `at`, once `at` is past
    bad_once = []
    for t in load.creator.tasks():
        at = parse_time(t["schedule"]["at"])
        if at < since or at > horizon:
            continue
        rs = by_task.get(t["id"], [])
        if len(rs) != 1:
            bad_once.append("%s: %d runs %s" % (t["id"][-6:], len(rs), [brief(r) for r in rs]))
        elif abs(parse_time(rs[0]["scheduled_at"]) - at) > 0.002:
            bad_once.append("%s: run at %s, at %s" % (t["id"][-6:], rs[0]["scheduled_at"],
                                                      t["schedule"]["at"]))
    S.check(not bad_once, "%s: one-time tasks due since %s must have exactly one run, at "
            "`at`: %d do not, e.g. %s" % (what, format_time(since), len(bad_once), bad_once[:4]))

    # every-1s tasks: a run for every second, none missing
    gaps = []
    for t in load.every:
        sched = sorted(parse_time(r["scheduled_at"]) for r in by_task.get(t["id"], []))
        sched = [x for x in sched if since - 1 <= x <= horizon]
        if not sched:
            gaps.append((t["name"], "no runs"))
            continue
        for a, b in zip(sched, sched[1:]):
            if round(b - a) != 1:
                gaps.append((t["name"], format_time(a), format_time(b)))
    S.check(not gaps, "%s: every-1s tasks lost occurrences (gaps): %d, e.g. %s"
            % (what, len(gaps), gaps[:5]))

    # due runs started within 10 s of their time, never before it
    late, early, never, failed = [], [], [], []
    lags = []
    for r in runs:
        sch = parse_time(r["scheduled_at"])
        if sch < since or sch > horizon or r["status"] in ("skipped", "canceled"):
            continue
        st = parse_time(r.get("started_at"))
        if st is None:
            never.append(r)
            continue
        lag = st - sch
        lags.append(lag)
        if lag >= MAX_LAG:
            late.append("%s lag %.1f s" % (brief(r), lag))
        if lag < -0.001:
            early.append("%s started %s" % (brief(r), r["started_at"]))
        if r["status"] in ("failed", "timed_out"):
            failed.append(brief(r))
    if not S.check(not never, "%s: %d runs due over %.0f s ago have no started_at (never "
                   "started, or the start was not recorded), e.g. %s"
                   % (what, len(never), SETTLE, [brief(r) for r in never[:4]])):
        for r in never[:2]:   # what the processes said of it, for the post-mortem
            for line in cluster.log_grep(r["id"]):
                print("    %s" % line, flush=True)
    S.check(not late, "%s: %d runs started %.0f s or more after their time, e.g. %s"
            % (what, len(late), MAX_LAG, late[:4]))
    S.check(not early, "%s: %d runs started before their time, e.g. %s"
            % (what, len(early), early[:4]))
    S.check(not failed, "%s: runs of `true` and of the sink failed: %s" % (what, failed[:4]))

    # executions beyond the first are extra attempts of the same run
    hits = load.sink.counts()
    by_id = {r["id"]: r for r in runs}
    extra = ["%s executed %d times, attempt %d" % (brief(by_id[i]), n, by_id[i]["attempt"])
             for i, n in hits.items() if i in by_id and n > by_id[i]["attempt"]]
    S.check(not extra, "%s: a run executed more often than its attempts say: %s"
            % (what, extra[:4]))
    lags.sort()
    print("  %s: %d tasks acknowledged (%d creates failed), %d runs checked; start lag "
          "median %s ms, p99 %s ms, max %s ms; %d runs retried"
          % (what, len(acked), load.creator.failed, len(lags),
             "%.1f" % (1000 * lags[len(lags) // 2]) if lags else "-",
             "%.1f" % (1000 * lags[int(len(lags) * 0.99)]) if lags else "-",
             "%.1f" % (1000 * lags[-1]) if lags else "-",
             sum(1 for r in runs if r["attempt"] > 1)), flush=True)
    return runs, tasks


def wait_state(cluster, name, want, timeout):
    """Wait until `status` shows NAME's state starting with `want`."""
    last = [None]

    def ok():
        last[0] = cluster.status().get(name, {}).get("state")
        return last[0] is not None and last[0].startswith(want)
    if not wait_until(ok, timeout, 0.3):
        raise AssertionError("%s: expected state %s within %.0f s, got %s"
                             % (name, want, timeout, last[0]))


def wait_runs_settled(cl, since, until, timeout):
    """Wait until no run scheduled in [since, until) is unfinished."""
    def settled():
        rs = fetch_runs(cl, since)
        return not [r for r in rs if r["status"] in UNFINISHED
                    and parse_time(r["scheduled_at"]) < until]
    return wait_until(settled, timeout, 0.5)


def bring_up(S, state, ha):
    """The first test of a cluster file: `up`, every process up, pg-1 and
    pg-2 primary and standby, the load started.  state: the file's dict
    (cluster, load)."""
    c = Cluster(ha=ha)
    state["cluster"] = c
    c.up()
    print("  cluster_up: up%s in %.1f s in %s" % (" --ha" if ha else "", c.up_seconds, c.dir),
          flush=True)
    st = c.status()
    names = ["api-1", "api-2", "scheduler-1", "scheduler-2", "worker-1", "worker-2",
             "worker-3", "pg-monitor", "pg-1", "pg-2", "lb"]
    names += ["rabbit-%d" % i for i in range(1, 4 if ha else 2)]
    S.eq(sorted(st), sorted(names), "status: process names")
    down = [n for n in names if n in st and not st[n]["state"].startswith("up")]
    S.check(not down, "status: every process up after `up`, not: %s" % down)
    roles = sorted(st[n]["state"].split(",")[1] for n in ("pg-1", "pg-2")
                   if n in st and "," in st[n]["state"])
    S.eq(roles, ["primary", "standby"], "status: roles of pg-1 and pg-2")
    cl = c.client()
    S.eq(cl.get("/readyz").status, 200, "GET /readyz through the load balancer")
    cl.close()
    state["load"] = Load(c, n_every=20, rate=8.0)
    print("  cluster_up: load seed %d" % state["load"].seed, flush=True)


def bring_down(S, state):
    """The last test: the contract over the whole run, then `down` stops
    every process it started."""
    c = state["cluster"]
    if c is None or not c.is_up:
        raise AssertionError("the cluster is not up (see cluster_up)")
    load = state["load"]
    load.creator.stop()
    check_invariants(S, c, load, "final")
    load.stop()
    pids = [s["pid"] for s in c.status().values() if s["pid"]]
    t0 = time.time()
    c.down()
    print("  cluster_down: down in %.1f s" % (time.time() - t0), flush=True)
    alive = []
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                    alive.append(p)
        except OSError:
            pass
    S.check(not alive, "processes still alive after down: %s" % alive)
    up = [n for n, s in c.status().items() if not s["state"].startswith("down")]
    S.check(not up, "status after down: all down, not %s" % up)
    # Under the sanitizer build, a report lands in the process's log.
    reports = []
    logdir = os.path.join(c.dir, "log")
    for name in sorted(os.listdir(logdir)):
        if not name.startswith(("api-", "scheduler-", "worker-")):
            continue
        with open(os.path.join(logdir, name), errors="replace") as f:
            for line in f:
                if ("AddressSanitizer" in line or "LeakSanitizer" in line
                        or "runtime error:" in line):
                    reports.append("%s: %s" % (name, line.strip()[:200]))
                    break
    S.check(not reports, "sanitizer reports in the sked processes' logs: %s" % reports)
    c.cleanup()


def run_suite(S, state):
    """Run a cluster file's tests (named ones: with cluster_up and
    cluster_down around them); whatever happens, the cluster goes down."""
    if len(sys.argv) > 1:
        for name in ("cluster_up", "cluster_down"):
            if name not in sys.argv:
                sys.argv.append(name)
    try:
        S.run()
    finally:
        if state["cluster"] is not None:
            state["cluster"].cleanup()
