#!/usr/bin/env python3
"""test_distributed.py - sked as separate processes on a real PostgreSQL and
RabbitMQ (DESIGN.md §1, §2, §4-§7), started here on loopback by
scripts/pg-test and scripts/rabbit-test and stopped by PID.

One deployment for the whole file: `sked api`, three `sked scheduler`
(s1-s3), two `sked worker` (w1, w2), each its own process.  The tests:

- three_schedulers_5000: 5,000 one-time HTTP tasks due over ~10 s against a
  sink served here: each occurrence exactly one run, succeeded, none early,
  each started within 10 s of its time; the sink saw each run id once.
- due_when_claimed: 1,000 one-time tasks whose time has passed when they
  are created: claimed and dispatched in one write by whichever scheduler
  gets each; each exactly one run, succeeded, seen once by the sink.
- wake_across_processes: a task created through the api process and due in
  400 ms starts within 150 ms of its time: the schedulers heard the store's
  NOTIFY (without it they would claim up to a second later).
- overlap_across_schedulers: an every-second `sleep 2.5` with overlap skip:
  never two runs of it at once although three schedulers dispatch it; the
  occurrences in between are recorded as skipped (overlap).
- cancel_reaches_worker: canceling a run through the api stops its process
  on whichever worker runs it (through that worker's inbox queue).
- worker_killed_mid_run: SIGKILL the worker running a `sleep 3` (2 attempts):
  the broker hands the job back, the run is charged an attempt and runs
  again on the other worker: attempt 2, succeeded.
- commit_answer_lost: a scheduler's mark of a run (SCHEDULED ->
  DISPATCHED), then its claim of a task due already (which records the run
  dispatched), is committed but the answer to its COMMIT is lost, as when
  PostgreSQL dies during it (a proxy in front of the server, pgfault.py):
  the scheduler reads the run back, finds it as written and publishes it
  at once - not after the run's dispatch lease, a minute later.
- backlog_published_once: a run of a queue no worker takes stays
  dispatched, published once, for 9 s (its dispatch lease is 60 s): when a
  worker comes it runs once.
- scheduler_killed_after_mark: SIGKILL a scheduler whose mark of a run is
  committed but not yet answered (the proxy holds the answer): the run is
  DISPATCHED and was never published.  Another scheduler finds the killed
  one's heartbeat stopped, gives back its runs marked after its watermark,
  and publishes them: the run starts within 10 s of its time, once (the
  sink counts its requests).  A run the killed one published a few seconds
  before, waiting in a queue no worker takes yet, is under its watermark:
  left as it is, and run once when a worker comes.
- scheduler_restarted_after_mark: the same, but the scheduler comes back
  under its old name: at its first beat it finds its previous life's row
  and takes over that life's runs at once (started within 3 s of the
  restart).
- worker_cut_off_mid_run: the broker closes the connection of the worker
  running a run; the job comes back to the other worker, which reports it
  without running it; the first worker reconnects and its result counts
  (attempt 1, executed once).
- scheduler_stopped_after_mark, packed_jobs, packed_pending_returned_at_stop,
  partitioned_queues: see their docstrings.
- scheduler_killed: SIGKILL one scheduler while 30 every-second tasks run:
  every second of every task still gets exactly one run, each started
  within 10 s of its time (a dead scheduler's claims are taken over when
  their lease ends, 5 s after they were due).

Run: python3 tests/integration/test_distributed.py [TEST_NAME...]
"""
import http.server
import os
import subprocess
import tempfile
import sys
import threading
import time

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from skedtest import Node, Service, Suite, Client, format_time, parse_time, run_cli, wait_until  # noqa: E402
from pgfault import CommitAnswerLost  # noqa: E402

S = Suite("test_distributed", timeout=90)
FINAL = ("succeeded", "failed", "timed_out", "skipped", "canceled")
FAR_CRON = "0 3 1 1 *"

env = {}                             # the deployment, set up by main()


def must(r, status, what):
    if r.status != status:
        raise AssertionError("%s: expected %d, got %d %s" % (what, status, r.status, r.body))
    return r.body


def client(timeout=10.0):
    api = env["api"]
    return Client(api.host, api.port, token=env["token"], timeout=timeout)


def shell_task(command, schedule=None, **over):
    t = {"schedule": schedule or {"cron": FAR_CRON},
         "target": {"type": "shell", "command": command}}
    t.update(over)
    return t


def runs_of(cl, task_id):
    return cl.list_runs("/v1/tasks/%s/runs" % task_id)


class Sink(http.server.ThreadingHTTPServer):
    """Counts X-Sked-Run-Id headers of the POSTs it gets (and when each
    first came)."""
    daemon_threads = True
    request_queue_size = 1024    # bursts of hundreds of connections

    def __init__(self):
        self.seen = {}
        self.first = {}
        self.attempts = {}       # run id -> X-Sked-Attempt of each request
        self.now = self.most = 0  # requests in progress, and the most at once
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), SinkHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


class SinkHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        rid = self.headers.get("X-Sked-Run-Id") or ""
        with self.server.lock:
            self.server.seen[rid] = self.server.seen.get(rid, 0) + 1
            self.server.first.setdefault(rid, time.time())
            self.server.attempts.setdefault(rid, []).append(self.headers.get("X-Sked-Attempt"))
            self.server.now += 1
            self.server.most = max(self.server.most, self.server.now)
        if self.path == "/slow":  # requests in progress at once: server.most
            time.sleep(0.4)
        with self.server.lock:
            self.server.now -= 1
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def node(role, *args):
    n = Node(role, list(args))
    n.start()
    return n


def each_ran_once(cl, ids, since, sink):
    """Wait until every one-time task of ids has a finished run; check each
    has exactly one, succeeded on attempt 1, and the sink saw each run id
    once.  Returns the runs."""
    n = len(ids)

    def done():
        rs = cl.list_runs("/v1/runs", "since=%s" % format_time(since))
        mine = [r for r in rs if r["task_id"] in ids]
        return mine if len(mine) >= n and all(r["status"] in FINAL for r in mine) else None
    rs = wait_until(done, 60.0, 1.0) or \
        [r for r in cl.list_runs("/v1/runs", "since=%s" % format_time(since)) if r["task_id"] in ids]
    per_task = {}
    for r in rs:
        per_task.setdefault(r["task_id"], []).append(r)
    S.eq(len(per_task), n, "tasks with a run")
    twice = [k for k, v in per_task.items() if len(v) != 1]
    S.check(not twice, "each one-time task exactly one run; %d have %s"
            % (len(twice), [len(per_task[k]) for k in twice[:5]]))
    bad = [r for r in rs if r["status"] != "succeeded" or r["attempt"] != 1]
    S.check(not bad, "every run succeeded on its first attempt; %d did not, e.g. %s"
            % (len(bad), [(r["status"], r["attempt"], r.get("error")) for r in bad[:3]]))
    time.sleep(0.2)  # the sink may count a moment after the run settles
    dup = [k for k, v in sink.seen.items() if v > 1]
    S.eq(len(sink.seen), n, "run ids the sink saw")
    S.check(not dup, "the sink saw each run id once; %d twice" % len(dup))
    return rs


@S.test(timeout=150)
def three_schedulers_5000():
    sink = Sink()
    cl = client(timeout=30.0)
    url = "http://127.0.0.1:%d/hit" % sink.server_address[1]
    t0 = time.time() + 4.0
    tasks = []
    for b in range(5):
        batch = [{"schedule": {"at": format_time(t0 + (b * 1000 + i) * 0.002)},
                  "target": {"type": "http", "url": url, "method": "POST", "body": "x"}}
                 for i in range(1000)]
        tasks += must(cl.post("/v1/tasks:batch", {"tasks": batch}), 201, "batch %d" % b)["tasks"]
    S.check(time.time() < t0, "5 batches of 1000 should be created within 4 s")
    ids = {t["id"]: parse_time(t["schedule"]["at"]) for t in tasks}
    S.eq(len(ids), 5000, "distinct tasks")
    rs = each_ran_once(cl, ids, t0 - 1, sink)
    lags, early = [], []
    for r in rs:
        at = ids[r["task_id"]]
        S.check(abs(parse_time(r["scheduled_at"]) - at) < 0.0015, "scheduled_at is the task's at")
        st = parse_time(r.get("started_at"))
        if st is None:
            continue
        if st < at:
            early.append(r)
        lags.append(st - at)
    S.check(not early, "no run starts before its time; %d did" % len(early))
    lags.sort()
    S.check(lags and lags[-1] < 10.0, "every start within 10 s of its time; max %.3f s"
            % (lags[-1] if lags else -1))
    if lags:
        print("  three_schedulers_5000: start lag p50 %.1f ms, p99 %.1f ms, max %.1f ms"
              % (lags[len(lags) // 2] * 1e3, lags[int(len(lags) * 0.99)] * 1e3, lags[-1] * 1e3),
              flush=True)
    sink.shutdown()


@S.test(timeout=90)
def due_when_claimed():
    """1,000 one-time tasks already due when created: the three schedulers'
    claims record them dispatched and publish them at once (policy.c),
    racing each other for the same tasks."""
    sink = Sink()
    cl = client(timeout=30.0)
    url = "http://127.0.0.1:%d/hit" % sink.server_address[1]
    created = time.time()
    batch = [{"schedule": {"at": format_time(created - 5 + i * 0.001)},
              "target": {"type": "http", "url": url, "method": "POST", "body": "x"}}
             for i in range(1000)]
    tasks = must(cl.post("/v1/tasks:batch", {"tasks": batch}), 201, "batch")["tasks"]
    ids = {t["id"]: parse_time(t["schedule"]["at"]) for t in tasks}
    rs = each_ran_once(cl, ids, created - 10, sink)
    late = [r for r in rs if (parse_time(r.get("started_at")) or created + 99) - created >= 10.0]
    S.check(not late, "every run started within 10 s of its creation; %d did not" % len(late))
    sink.shutdown()


@S.test(timeout=40)
def wake_across_processes():
    cl = client()
    lags = []
    for i in range(5):
        time.sleep(0.37 * i % 1.0)   # different phases against the claim cycle
        at = time.time() + 0.4
        t = must(cl.post("/v1/tasks", shell_task("true", {"at": format_time(at)})), 201, "create")

        def ran():
            rs = runs_of(cl, t["id"])
            return rs if rs and rs[0].get("started_at") else None
        rs = wait_until(ran, 5.0, 0.05)
        S.check(rs, "the task due in 400 ms should run")
        if rs:
            lags.append(parse_time(rs[0]["started_at"]) - at)
    print("  wake_across_processes: lags (ms) %s" % ", ".join("%.1f" % (x * 1e3) for x in lags),
          flush=True)
    S.check(lags and max(lags) < 0.150 and min(lags) >= 0,
            "a task created through the api, due in 400 ms, starts within 150 ms of its time "
            "(schedulers woken by NOTIFY); lags %s" % lags)


@S.test(timeout=40)
def overlap_across_schedulers():
    cl = client()
    t = must(cl.post("/v1/tasks", shell_task("sleep 2.5", {"every": "1s"}, overlap="skip")),
             201, "create")
    time.sleep(9.0)
    must(cl.post("/v1/tasks/%s:pause" % t["id"]), 200, "pause")
    time.sleep(3.5)
    rs = runs_of(cl, t["id"])
    ran = [r for r in rs if r.get("started_at")]
    skipped = [r for r in rs if r["status"] == "skipped"]
    S.check(len(ran) >= 2, "some runs ran (%d)" % len(ran))
    S.check(skipped and all(r.get("reason") == "overlap" for r in skipped),
            "occurrences while it runs are recorded as skipped (overlap); got %s"
            % [(r["status"], r.get("reason")) for r in rs])
    spans = sorted((parse_time(r["started_at"]), parse_time(r.get("finished_at")) or 1e18)
                   for r in ran)
    for a, b in zip(spans, spans[1:]):
        S.check(b[0] >= a[1] - 0.001, "two runs of an overlap=skip task at once: %s and %s"
                % (a, b))


def sleeping(marker):
    return subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 0


@S.test(timeout=40)
def cancel_reaches_worker():
    cl = client()
    marker = "sleep 31.%d" % (os.getpid() % 1000)
    t = must(cl.post("/v1/tasks", shell_task(marker)), 201, "create")
    must(cl.post("/v1/tasks/%s:trigger" % t["id"]), 202, "trigger")

    def running():
        rs = runs_of(cl, t["id"])
        return rs[0] if rs and rs[0]["status"] == "running" else None
    run = wait_until(running, 5.0, 0.05)
    S.check(run and sleeping(marker), "the triggered run should be running")
    if not run:
        return
    r = must(cl.post("/v1/runs/%s:cancel" % run["id"]), 200, "cancel")
    S.eq(r["status"], "canceled", "status after cancel")
    gone = wait_until(lambda: not sleeping(marker), 5.0, 0.05)
    S.check(gone, "the canceled run's process on worker %s should be killed within 5 s"
            % run.get("worker"))
    time.sleep(0.5)
    r = must(cl.get("/v1/runs/" + run["id"]), 200, "get run")
    S.eq(r["status"], "canceled", "status stays canceled after the worker reports")


@S.test(timeout=60)
def worker_killed_mid_run():
    cl = client()
    t = must(cl.post("/v1/tasks", shell_task("sleep 3", retry={"max_attempts": 2, "backoff": "1s"})),
             201, "create")
    must(cl.post("/v1/tasks/%s:trigger" % t["id"]), 202, "trigger")

    def running():
        rs = runs_of(cl, t["id"])
        return rs[0] if rs and rs[0]["status"] == "running" else None
    run = wait_until(running, 5.0, 0.05)
    S.check(run, "the triggered run should be running")
    if not run:
        return
    victim = env["workers"][run["worker"]]
    time.sleep(0.5)
    victim.kill()

    def final():
        r = must(cl.get("/v1/runs/" + run["id"]), 200, "get run")
        return r if r["status"] in FINAL else None
    r = wait_until(final, 25.0, 0.2)
    S.check(r is not None, "the run should finish after its worker was killed")
    if r:
        S.eq(r["status"], "succeeded", "status after the other worker ran it")
        S.eq(r["attempt"], 2, "the lost execution is charged an attempt (DESIGN.md §2.3)")
        S.check(r.get("worker") != run["worker"], "attempt 2 ran on the other worker")
    # bring the worker back for the tests that follow
    env["workers"][run["worker"]] = node("worker", "--queue", env["queue"], "--name",
                                         run["worker"], "--workers", "200")
    victim.cleanup()


def cut_amqp_connections(pid):
    """Close (broker side, rabbitmqctl close_connection) every AMQP
    connection of process pid, as a RabbitMQ node that dies or a network
    cut would: the process lives on and reconnects.  Returns how many."""
    amqp_port = env["queue"].rsplit(":", 1)[1].strip("/")
    out = subprocess.run(["ss", "-tnpH", "state", "established"], capture_output=True,
                         text=True, timeout=10).stdout
    ports = set()
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 4 and f[3] == "127.0.0.1:" + amqp_port and ("pid=%d," % pid) in line:
            ports.add(f[2].rsplit(":", 1)[1])
    ctl = ["scripts/rabbit-test", "ctl", env["rabbit_dir"]]
    out = subprocess.run(ctl + ["-q", "list_connections", "pid", "peer_port"],
                         capture_output=True, text=True, timeout=60).stdout
    n = 0
    for line in out.splitlines():
        f = line.split()
        if len(f) == 2 and f[1] in ports:
            subprocess.run(ctl + ["close_connection", f[0], "test: connection cut"],
                           capture_output=True, text=True, timeout=60)
            n += 1
    return n


@S.test(timeout=60)
def worker_cut_off_mid_run():
    """The RabbitMQ connection of the worker running a run is closed by the
    broker (the worker lives): its job goes back to the queue, the other
    worker reports it `returned` without running it, and the scheduler
    only cuts the run's lease - the first worker, reconnected, renews it
    and its result counts.  Once, on attempt 1 (charging the attempt at
    once, as before 2454d19, ran it twice)."""
    marks = tempfile.mktemp(prefix="sked-it-cut-")
    nodes = []
    try:
        queue = env["queue"]
        for name in ("wc1", "wc2"):
            nodes.append(node("worker", "--queue", queue, "--name", name, "--queues", "cut"))
        cl = client()
        t = must(cl.post("/v1/tasks", shell_task("echo x >> %s; sleep 5" % marks,
                                                 queue="cut",
                                                 retry={"max_attempts": 3, "backoff": "1s"})),
                 201, "create")
        must(cl.post("/v1/tasks/%s:trigger" % t["id"]), 202, "trigger")
        run = wait_until(lambda: next((r for r in runs_of(cl, t["id"])
                                       if r["status"] == "running"), None), 10.0, 0.05)
        if not S.check(run, "the run is running"):
            return
        victim = nodes[0] if run["worker"] == "wc1" else nodes[1]
        other = nodes[1] if victim is nodes[0] else nodes[0]
        S.check(cut_amqp_connections(victim.proc.pid) >= 1, "a connection of %s was closed"
                % run["worker"])

        def final():
            r = must(cl.get("/v1/runs/" + run["id"]), 200, "get run")
            return r if r["status"] in FINAL else None
        r = wait_until(final, 30.0, 0.2)
        if S.check(r is not None, "the run finished"):
            S.eq((r["status"], r["attempt"], r.get("worker")),
                 ("succeeded", 1, run["worker"]), "status, attempt and worker of the run")
        time.sleep(1.0)          # a second execution would have begun by now
        with open(marks) as f:
            S.eq(len(f.read().splitlines()), 1, "executions of the command")
        S.check(wait_until(lambda: "job came back from the queue" in other.stderr_tail(200),
                           5.0, 0.2),
                "the other worker got the job back and reported it")
    finally:
        for n in nodes:
            n.cleanup()
        if os.path.exists(marks):
            os.unlink(marks)


def answer_lost_case(cl, proxy, name, at, arm, recurring=False):
    """Create a `true` task due at `at`, one-time or (recurring) the first
    of an hourly series, which is claimed only 2 s ahead and marked by a
    write of its own (arm(task) arms the proxy); check its one run
    succeeded on attempt 1 within 2 s of its time, or of its creation if
    later, and that the proxy lost one COMMIT's answer."""
    lost = proxy.lost
    created = time.time()
    sched = ({"every": "1h", "start_at": format_time(at), "max_runs": 1} if recurring
             else {"at": format_time(at)})
    t = must(cl.post("/v1/tasks", shell_task("true", sched)), 201, name)
    arm(t)

    def final():
        got = runs_of(cl, t["id"])
        return got if got and got[0]["status"] in FINAL else None
    rs = wait_until(final, max(at + 8.0 - time.time(), 8.0), 0.1) or runs_of(cl, t["id"])
    S.eq(proxy.lost - lost, 1, "%s: COMMITs whose answer the proxy lost" % name)
    S.eq(len(rs), 1, "%s: runs of the task" % name)
    r = rs[0] if rs else {"status": None, "attempt": None, "scheduled_at": None}
    S.eq((r["status"], r["attempt"]), ("succeeded", 1), "%s: status and attempt" % name)
    lag = parse_time(r.get("started_at") or "9999-01-01T00:00:00Z") - max(at, created)
    S.check(0 <= lag < 2.0, "%s: started within 2 s (not a dispatch lease later): %.3f s"
            % (name, lag))
    print("  commit_answer_lost: %s: started %.0f ms late" % (name, lag * 1e3), flush=True)


def fault_db(name):
    """A new database `name` on the test PostgreSQL, and a CommitAnswerLost
    proxy in front of that server: (the database's URL, its URL through the
    proxy, the proxy).  Its own database, so that the deployment's
    schedulers claim nothing of it."""
    pg = env["store"]
    host, port = pg.split("@", 1)[1].split("/", 1)[0].rsplit(":", 1)
    sql(pg.rsplit("/", 1)[0] + "/postgres", "CREATE DATABASE " + name)
    proxy = CommitAnswerLost(host, int(port))
    return pg.rsplit("/", 1)[0] + "/" + name, proxy.url(pg, name), proxy


def admin_token(store, ns="default"):
    rc, out, err = run_cli(["token", "create", "--store", store, "--namespace", ns,
                            "--role", "admin"])
    if rc != 0:
        raise AssertionError("token create: " + err)
    return out.strip()


@S.test(timeout=60)
def commit_answer_lost():
    # one `sked server` on its own database, through the proxy
    _, url, proxy = fault_db("sked_fault")
    srv = None
    try:
        srv = node("server", "--store", url, "--queue", "mem:")
        tokens = {ns: admin_token(url, ns) for ns in ("default", "lostclaim", "lostahead")}
        cl = Client(srv.host, srv.port, token=tokens["default"])

        def arm_mark(t):
            # the mark of its run, once the run is claimed (2 s ahead)
            rs = wait_until(lambda: runs_of(cl, t["id"]), 3.5, 0.05)
            S.check(rs and rs[0]["status"] == "scheduled" and time.time() < at - 0.3,
                    "the run is claimed well before its time: %r" % (rs,))
            proxy.arm(b"UPDATE runs", rs[0]["id"].encode())
        at = time.time() + 4.0
        answer_lost_case(cl, proxy, "mark", at, arm_mark, recurring=True)
        # the claim of a task due already records its run dispatched: the
        # proxy is armed on the namespace, which the claim's insert carries
        proxy.arm(b"INSERT INTO runs", b"lostclaim")
        answer_lost_case(Client(srv.host, srv.port, token=tokens["lostclaim"]), proxy,
                         "claim", time.time() - 0.5, lambda t: None)
        # so does the claim of a one-time task 4 s ahead: read back, the
        # run waits for its time and goes out then
        proxy.arm(b"INSERT INTO runs", b"lostahead")
        answer_lost_case(Client(srv.host, srv.port, token=tokens["lostahead"]), proxy,
                         "claim ahead", time.time() + 4.0, lambda t: None)
    finally:
        if srv is not None:
            srv.cleanup()
        proxy.close()


@S.test(timeout=60)
def backlog_published_once():
    sink = Sink()
    cl = client()
    at = time.time() + 1.0
    t = must(cl.post("/v1/tasks", {
        "schedule": {"at": format_time(at)}, "queue": "backlog",
        "target": {"type": "http", "url": "http://127.0.0.1:%d/hit" % sink.server_address[1],
                   "method": "POST", "body": "x"}}), 201, "create")

    def dispatched():
        rs = runs_of(cl, t["id"])
        return rs if rs and rs[0]["status"] == "dispatched" else None
    rs = wait_until(dispatched, 5.0, 0.1)
    S.check(rs is not None, "the run is dispatched: %r" % (runs_of(cl, t["id"]),))
    first = rs[0] if rs else {}
    # past its short lease (5 s) and a sweep or two: still the same dispatch
    time.sleep(max(at + 9.0 - time.time(), 0))
    rs = runs_of(cl, t["id"])
    S.eq([(r["status"], r["attempt"], r.get("dispatched_at")) for r in rs],
         [("dispatched", 1, first.get("dispatched_at"))], "the run, waiting in its queue")
    w = node("worker", "--queue", env["queue"], "--name", "wb", "--queues", "backlog")
    try:
        def final():
            got = runs_of(cl, t["id"])
            return got if got and got[0]["status"] in FINAL else None
        rs = wait_until(final, 15.0, 0.1) or runs_of(cl, t["id"])
        time.sleep(1.0)          # a second copy in the queue would be run by now
        S.eq([(r["status"], r["attempt"]) for r in rs], [("succeeded", 1)], "the run, once run")
        S.eq(sink.seen.get(rs[0]["id"] if rs else "", 0), 1, "requests of the run")
    finally:
        w.cleanup()
        sink.shutdown()


def http_task(sink, at, recurring=False, **over):
    """A task that sends one request to sink at `at`: one-time, or (recurring)
    the first of an hourly series, which the scheduler claims only 2 s
    ahead and marks with a write of its own just before it is due (a
    one-time task is claimed up to 30 s ahead and recorded dispatched by
    that claim)."""
    sched = ({"every": "1h", "start_at": format_time(at), "max_runs": 1} if recurring
             else {"at": format_time(at)})
    t = {"schedule": sched,
         "target": {"type": "http", "url": "http://127.0.0.1:%d/hit" % sink.server_address[1],
                    "method": "POST", "body": "x"}}
    t.update(over)
    return t


def killed_after_mark(db, successor, late_takeover):
    """Scheduler fa marks a run and is SIGKILLed before it learns that its
    COMMIT went through (the proxy holds the answer); then `successor` is
    started, the only scheduler left.  Checks the run starts once, within
    10 s of its time, and that a run fa published 2.5 s before it died,
    waiting in a queue nobody takes, is left alone (run once when a worker
    comes).  late_takeover: the successor gives the run back only after its
    time (a peer's takeover waits 5 s), so it must go out as attempt 2.
    Returns (start - due time, start - successor's start)."""
    direct, via, proxy = fault_db(db)
    sink = Sink()
    nodes = []
    try:
        queue = env["queue"]
        api = node("api", "--store", direct, "--queue", queue)
        nodes.append(api)
        cl = Client(api.host, api.port, token=admin_token(direct))
        nodes.append(node("scheduler", "--store", via, "--queue", queue, "--name", "fa"))
        t0 = time.time()
        early = must(cl.post("/v1/tasks", http_task(sink, t0 + 1.5, queue="later-" + db)), 201,
                     "create early")
        at = t0 + 4.0
        t = must(cl.post("/v1/tasks", http_task(sink, at, recurring=True)), 201, "create")
        rs = wait_until(lambda: runs_of(cl, t["id"]), 3.5, 0.05)
        S.check(rs and rs[0]["status"] == "scheduled" and time.time() < at - 0.3,
                "the run is claimed well before its time: %r" % (rs,))
        run_id = rs[0]["id"] if rs else ""
        proxy.arm(b"UPDATE runs", run_id.encode(), hold=True)
        S.check(proxy.held.wait(max(at + 3.0 - time.time(), 0.1)),
                "the mark of the run was committed (and its answer held)")
        ers = runs_of(cl, early["id"])
        S.eq([r["status"] for r in ers], ["dispatched"], "the early run, published")
        nodes[1].kill()
        t_kill = time.time()
        nodes.append(node("scheduler", "--store", direct, "--queue", queue, "--name", successor))
        t_up = time.time()
        first = wait_until(lambda: sink.first.get(run_id), at + 12.0 - time.time(), 0.1)
        S.check(first is not None, "the run started (fa killed %.1f s after its time)"
                % (t_kill - at))
        if first is not None:
            S.check(first - at < 10.0, "started within 10 s of its time: %.3f s" % (first - at))
        S.eq([(r["status"], r.get("dispatched_at")) for r in runs_of(cl, early["id"])],
             [(r["status"], r.get("dispatched_at")) for r in ers],
             "the early run, waiting in its queue")
        nodes.append(node("worker", "--queue", queue, "--name", "wl", "--queues",
                          "later-" + db))
        eid = ers[0]["id"] if ers else ""
        S.check(wait_until(lambda: sink.first.get(eid), 10.0, 0.1) is not None,
                "the early run ran once a worker came")
        time.sleep(1.0)          # a second copy of either would come about now
        S.eq(sink.seen.get(run_id, 0), 1, "requests of the run")
        S.eq(sink.seen.get(eid, 0), 1, "requests of the early run")
        # given back past its time, the run is published again as attempt
        # 2: its first attempt may have been published (it was not here);
        # given back before it (marked ahead, taken over at once), it keeps
        # attempt 1: it was never published
        final = runs_of(cl, t["id"])
        attempt = str(final[0]["attempt"]) if final else "?"
        if late_takeover:
            S.eq(attempt, "2", "the run's attempt after a takeover past its time")
        S.eq(sink.attempts.get(run_id), [attempt], "attempts of the run's requests")
        S.eq(sink.attempts.get(eid), ["1"], "attempts of the early run's requests")
        return (first - at, first - t_up) if first is not None else (None, None)
    finally:
        for n in nodes:
            n.cleanup()
        proxy.close()
        sink.shutdown()


@S.test(timeout=60)
def scheduler_killed_after_mark():
    lag, _ = killed_after_mark("sked_fault2", "fb", True)
    if lag is not None:
        print("  scheduler_killed_after_mark: started %.2f s after its time" % lag, flush=True)


@S.test(timeout=60)
def scheduler_restarted_after_mark():
    lag, after_up = killed_after_mark("sked_fault3", "fa", False)
    if after_up is not None:
        # fa's new life takes its old life's runs over at its first beat,
        # without waiting 5 s for a heartbeat to stop
        S.check(after_up < 3.0, "started %.2f s after fa came back" % after_up)
        print("  scheduler_restarted_after_mark: started %.2f s after its time, %.2f s after "
              "the restart" % (lag, after_up), flush=True)


def own_db_api(db, nodes):
    """A database of its own (fault_db, without its proxy) and an api on it,
    appended to nodes: (the database's URL, a client of that api)."""
    direct, _, proxy = fault_db(db)
    proxy.close()
    api = node("api", "--store", direct, "--queue", env["queue"])
    nodes.append(api)
    return direct, Client(api.host, api.port, token=admin_token(direct))


@S.test(timeout=60)
def scheduler_stopped_after_mark():
    """Scheduler ga marks a run ahead of its time and is stopped (SIGTERM)
    before that time: it gives the run back as it stops, never published,
    so scheduler gb (started after the mark) publishes it on time, as
    attempt 1.  Kept instead, the run would wait for a takeover (5 s) or,
    after a clean stop that reports nothing in flight, for its 60 s
    dispatch lease.  The clean stop's last beat reports nothing in doubt
    (watermark INT64_MAX): gb never takes ga for dead."""
    sink = Sink()
    nodes = []
    try:
        queue = env["queue"]
        direct, cl = own_db_api("sked_fault4", nodes)
        ga = node("scheduler", "--store", direct, "--queue", queue, "--name", "ga")
        nodes.append(ga)
        at = time.time() + 3.0
        t = must(cl.post("/v1/tasks", http_task(sink, at)), 201, "create")
        rs = wait_until(lambda: [r for r in runs_of(cl, t["id"]) if r["status"] == "dispatched"],
                        at - time.time(), 0.02)
        t_mark = time.time()
        if not S.check(rs and t_mark < at - 0.2,
                       "the run is marked ahead, %.2f s before its time: %r"
                       % (at - t_mark, rs)):
            return
        run_id = rs[0]["id"]
        gb = node("scheduler", "--store", direct, "--queue", queue, "--name", "gb")
        nodes.append(gb)
        rc = ga.stop()
        t_stop = time.time()
        S.eq(rc, 0, "ga's exit status")
        S.check(t_stop < at, "ga stopped before the run's time (%.2f s before)" % (at - t_stop))
        first = wait_until(lambda: sink.first.get(run_id), at + 12.0 - time.time(), 0.05)
        S.check(first is not None, "the run started")
        if first is not None:
            S.check(first - at < 2.5, "started on time, by gb: %.3f s after its time"
                    % (first - at))
            S.check(first >= at - 0.001, "not before its time: %.3f s" % (first - at))
            print("  scheduler_stopped_after_mark: started %.3f s after its time" % (first - at),
                  flush=True)
        time.sleep(1.0)          # a second copy would come about now
        S.eq(sink.attempts.get(run_id), ["1"], "attempts of the run's requests")
        # A clean stop says so in ga's last beat (nothing of it in doubt):
        # gb, which sees ga's row stop changing, never takes ga for dead.
        S.eq(sql(direct, "SELECT published_to FROM schedulers WHERE id = 'ga'"),
             "9223372036854775807", "ga's last beat: its watermark")
        # ga's last row lands up to a beat after its stop; gb judges it dead
        # 5 s after that, at one of its own beats (about 1 s apart)
        time.sleep(max(0.0, t_stop + 7.5 - time.time()))
        S.check("presumed dead" not in gb.stderr_tail(500),
                "gb took the cleanly stopped ga for dead: %s" % gb.stderr_tail(5))
    finally:
        for n in nodes:
            n.cleanup()
        sink.shutdown()


@S.test(timeout=60)
def scheduler_killed_holding_runs_ahead():
    """Scheduler ha claims 20 one-time tasks due 12 s later: each claim
    records its run dispatched (its due time as dispatched_at), to be
    published when due.  ha is SIGKILLed 1 s later; hb, started then, takes
    ha for dead about 5 s on and gives those runs back by their marks
    (marked_at), not by their dispatched_at, which lie beyond any cut from
    ha's last beat.  Each then starts on time, once, as attempt 1 (it was
    never published).  Counted by dispatched_at, they would wait for their
    60 s dispatch lease."""
    sink = Sink()
    nodes = []
    try:
        queue = env["queue"]
        direct, cl = own_db_api("sked_fault6", nodes)
        ha = node("scheduler", "--store", direct, "--queue", queue, "--name", "ha")
        nodes.append(ha)
        at = time.time() + 12.0
        tasks = must(cl.post("/v1/tasks:batch", {"tasks": [http_task(sink, at)
                                                           for _ in range(20)]}),
                     201, "batch")["tasks"]
        marked = lambda: sql(direct, "SELECT count(*) FROM runs WHERE status = 1 "
                             "AND lease_owner = 'ha' AND marked_at IS NOT NULL")
        S.check(wait_until(lambda: marked() == "20", 5.0, 0.05),
                "ha recorded the 20 runs dispatched ahead: %s" % marked())
        ids = run_ids(cl, [t["id"] for t in tasks], at)
        time.sleep(1.0)
        ha.kill()
        t_kill = time.time()
        nodes.append(node("scheduler", "--store", direct, "--queue", queue, "--name", "hb"))
        S.check(at - t_kill > 8.0, "ha killed %.1f s before the runs' time" % (at - t_kill))
        firsts = [wait_until(lambda: sink.first.get(r), at + 12.0 - time.time(), 0.05)
                  for r in ids]
        late = [f - at for f in firsts if f is not None]
        S.eq(len(late), 20, "runs started")
        if late:
            S.check(max(late) < 2.0, "started on time: worst %.3f s after" % max(late))
            S.check(min(late) >= -0.001, "none before its time: %.3f s" % min(late))
            print("  scheduler_killed_holding_runs_ahead: worst start %.0f ms after its time"
                  % (max(late) * 1e3), flush=True)
        time.sleep(1.0)          # a second copy would come about now
        S.eq(sorted(set(a for r in ids for a in sink.attempts.get(r, []))), ["1"],
             "attempts of the runs' requests")
        S.eq(sum(sink.seen.get(r, 0) for r in ids), 20, "requests")
    finally:
        for n in nodes:
            n.cleanup()
        sink.shutdown()


@S.test(timeout=60)
def run_given_back_while_held():
    """A one-time run that scheduler ja holds marked ahead is given back
    meanwhile (as another scheduler's takeover would do, had ja been taken
    for dead while cut off from the store); ja claims and marks it again
    before its time, so it waits in ja's heap twice, with the same
    dispatched_at, owner and attempt.  Only the newer mark may go out (the
    release reads marked_at back too): the run reaches the sink once."""
    sink = Sink()
    nodes = []
    try:
        queue = env["queue"]
        direct, cl = own_db_api("sked_fault7", nodes)
        nodes.append(node("scheduler", "--store", direct, "--queue", queue, "--name", "ja"))
        at = time.time() + 6.0
        t = must(cl.post("/v1/tasks", http_task(sink, at)), 201, "create")
        rs = wait_until(lambda: [r for r in runs_of(cl, t["id"]) if r["status"] == "dispatched"],
                        3.0, 0.05)
        if not S.check(rs, "the run is claimed ahead and recorded dispatched"):
            return
        rid = rs[0]["id"]
        sql(direct, "UPDATE runs SET status = 0, lease_owner = NULL, lease_expires_at = NULL, "
            "dispatched_at = NULL, marked_at = NULL WHERE id = '%s'" % rid)
        first = wait_until(lambda: sink.first.get(rid), at + 8.0 - time.time(), 0.05)
        S.check(first is not None and first - at < 2.0,
                "the run started on time: %s" % (first and "%.3f s" % (first - at)))
        time.sleep(1.5)          # a second copy would come about now
        S.eq(sink.attempts.get(rid), ["1"], "the run's requests (attempts)")
    finally:
        for n in nodes:
            n.cleanup()
        sink.shutdown()


def sql(url, query):
    """The text of a one-value query on the database at url."""
    psql = os.path.join(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"), "psql")
    p = subprocess.run([psql, "-X", "-q", "-t", "-A", url, "-c", query],
                       capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise AssertionError("%s: %s" % (query, p.stderr.strip()))
    return p.stdout.strip()


def run_ids(cl, tasks, at):
    """The ids of the runs of one-time tasks due at `at`, once claimed."""
    ids = []
    for t in tasks:
        rs = wait_until(lambda: runs_of(cl, t), max(at - time.time(), 0.1) + 2.0, 0.05)
        ids += [r["id"] for r in rs or []]
    return ids


def burst_reaches_sink(cl, sink, n, **over):
    """n one-time http tasks due at one instant 3 s from now (task fields
    `over`): each gets a run, and each run reaches the sink within 2 s of
    that instant, none early.  Returns the tasks and their runs' ids."""
    at = time.time() + 3.0
    tasks = [must(cl.post("/v1/tasks", http_task(sink, at, **over)), 201, "create")["id"]
             for _ in range(n)]
    ids = run_ids(cl, tasks, at)
    S.eq(len(ids), n, "runs recorded")
    wait_until(lambda: all(sink.first.get(i) for i in ids), at + 10.0 - time.time(), 0.05)
    lag = [sink.first[i] - at for i in ids if i in sink.first]
    S.eq(len(lag), n, "runs that reached the sink")
    S.check(lag and max(lag) < 2.0 and min(lag) >= -0.001,
            "started at their time: lag %.3f-%.3f s" % (min(lag or [0]), max(lag or [0])))
    return tasks, ids


@S.test(timeout=60)
def packed_jobs():
    """A scheduler with --jobs-per-message 8 packs the runs of one queue it
    publishes together into messages of up to 8 jobs: 50 one-time http
    tasks due at the same instant each run once, as attempt 1, at their
    time (the workers split the messages).  Judged by the sink: the
    scheduler works on its own database, and the deployment's schedulers,
    which share the events queue, take some of its events (and drop them:
    runs they do not know).  Then 6 runs packed into one message for a
    worker of 2 slots: it runs 2 at a time, the others wait in it."""
    sink = Sink()
    nodes = []
    try:
        queue = env["queue"]
        direct, cl = own_db_api("sked_fault5", nodes)
        nodes.append(node("scheduler", "--store", direct, "--queue", queue, "--name", "pk",
                          "--jobs-per-message", "8"))
        _, ids = burst_reaches_sink(cl, sink, 50)
        time.sleep(1.0)          # a second copy of any would come about now
        twice = [i for i in ids if sink.seen.get(i, 0) != 1]
        S.check(not twice, "each run reached the sink once; %d did not" % len(twice))
        S.check(all(sink.attempts.get(i) == ["1"] for i in ids),
                "every request was attempt 1: %s"
                % sorted({str(sink.attempts.get(i)) for i in ids}))

        # a message with more jobs than the worker has free slots: the
        # rest wait in the worker for a slot, never over its --workers
        nodes.append(node("worker", "--queue", queue, "--name", "w-narrow", "--queues",
                          "narrow", "--workers", "2"))
        slow = Sink()
        try:
            at = time.time() + 3.0
            url = "http://127.0.0.1:%d/slow" % slow.server_address[1]
            narrow = [must(cl.post("/v1/tasks", http_task(slow, at, queue="narrow",
                                                          target={"type": "http", "url": url,
                                                                  "method": "POST"})),
                           201, "create narrow")["id"] for _ in range(6)]
            nids = run_ids(cl, narrow, at)
            S.check(wait_until(lambda: len(nids) == 6 and all(slow.seen.get(i) for i in nids),
                               at + 10.0 - time.time(), 0.1),
                    "the 6 runs of queue narrow reached the sink: %d"
                    % sum(1 for i in nids if slow.seen.get(i)))
            S.eq(slow.most, 2, "requests in progress at once on a worker of 2 slots")
        finally:
            slow.shutdown()
    finally:
        for n in nodes:
            n.cleanup()
        sink.shutdown()


@S.test(timeout=60)
def packed_pending_returned_at_stop():
    """A worker of one slot stopped (SIGTERM) while jobs of a packed message
    wait in it for that slot: it finishes the run it has, reports the
    waiting ones back as it stops, and the scheduler publishes them again
    at once - another worker runs each once, as attempt 1, a few seconds
    after its time, not after the 60 s dispatch lease.  The deployment's
    schedulers are stopped meanwhile, so the packing one claims every run
    and takes every event (the events queue is shared)."""
    slow = Sink()
    nodes = []
    for s in env["schedulers"]:
        s.stop()
    try:
        queue = env["queue"]
        nodes.append(node("scheduler", "--store", env["store"], "--queue", queue, "--name",
                          "pk-stop", "--jobs-per-message", "8"))
        one = node("worker", "--queue", queue, "--name", "w-one", "--queues", "single",
                   "--workers", "1")
        nodes.append(one)
        cl = client()
        url = "http://127.0.0.1:%d/slow" % slow.server_address[1]
        at = time.time() + 3.0
        tasks = [must(cl.post("/v1/tasks", http_task(slow, at, queue="single",
                                                     target={"type": "http", "url": url,
                                                             "method": "POST"})),
                      201, "create")["id"] for _ in range(6)]
        ids = run_ids(cl, tasks, at)
        S.eq(len(ids), 6, "runs recorded")
        S.check(wait_until(lambda: slow.seen, at + 5.0 - time.time(), 0.01),
                "w-one started a run")
        S.eq(one.stop(), 0, "w-one's exit status")
        S.eq(len(slow.seen), 1, "runs w-one started (one slot, stopped during its first)")
        with open(one.log_path, errors="replace") as f:
            back = f.read().count("waiting job reported back at stop")
        S.check(back >= 1, "w-one reported waiting jobs back as it stopped: %d" % back)
        nodes.append(node("worker", "--queue", queue, "--name", "w-two", "--queues", "single",
                          "--workers", "2"))
        S.check(wait_until(lambda: all(slow.seen.get(i) for i in ids), at + 12.0 - time.time(),
                           0.05),
                "all 6 reached the sink within 12 s of their time: %d"
                % sum(1 for i in ids if slow.seen.get(i)))
        time.sleep(1.0)          # a second copy of any would come about now
        S.check(all(slow.seen.get(i) == 1 for i in ids), "each run reached the sink once: %s"
                % sorted(slow.seen.get(i, 0) for i in ids))
        S.check(all(slow.attempts.get(i) == ["1"] for i in ids),
                "every request was attempt 1: %s" % sorted({str(slow.attempts.get(i))
                                                            for i in ids}))

        def settled():
            rs = [r for t in tasks for r in runs_of(cl, t)]
            return rs if len(rs) == 6 and all(r["status"] == "succeeded" for r in rs) else None
        rs = wait_until(settled, 5.0, 0.1)
        S.check(rs, "one run per task, each succeeded")
        S.check(rs and all(r["attempt"] == 1 for r in rs),
                "each run's attempt is 1: %s" % [r["attempt"] for r in rs or []])
    finally:
        for n in nodes:
            n.cleanup()
        slow.shutdown()
        for s in env["schedulers"]:
            s.start()


@S.test(timeout=60)
def partitioned_queues():
    """A scheduler and a worker whose queue URL says partitions=3 (each sked
    queue is three quorum queues, queue_amqp.h): 60 one-time http tasks of
    queue "parted" due at one instant each run once, as attempt 1, at their
    time, and each run is recorded succeeded - the job messages went out to
    the three partitions of sked.q.parted and the events to those of
    sked.events, and the worker and the scheduler consumed all of them (a
    consumer of partition 0 alone would leave two thirds behind).  The
    deployment's schedulers, which consume only partition 0 of the events,
    are stopped meanwhile."""
    sink = Sink()
    nodes = []
    for s in env["schedulers"]:
        s.stop()
    try:
        queue = env["queue"] + ("&" if "?" in env["queue"] else "?") + "partitions=3"
        nodes.append(node("scheduler", "--store", env["store"], "--queue", queue, "--name",
                          "pt-sched"))
        worker = node("worker", "--queue", queue, "--name", "w-parted", "--queues", "parted",
                      "--workers", "50")
        nodes.append(worker)
        cl = client()
        tasks, ids = burst_reaches_sink(cl, sink, 60, queue="parted")

        def settled():
            rs = [r for t in tasks for r in runs_of(cl, t)]
            return rs if len(rs) == 60 and all(r["status"] == "succeeded" for r in rs) else None
        rs = wait_until(settled, 10.0, 0.1)
        S.check(rs, "one run per task, each recorded succeeded (events from all partitions)")
        S.check(rs and all(r["attempt"] == 1 for r in rs), "each run's attempt is 1")
        time.sleep(1.0)          # a second copy of any would come about now
        S.check(all(sink.seen.get(i) == 1 for i in ids), "each run reached the sink once")
        ctl = subprocess.run(["scripts/rabbit-test", "ctl", env["rabbit_dir"], "list_queues",
                              "name"], capture_output=True, text=True, timeout=60)
        names = set(ctl.stdout.split())
        want = {"sked.q.parted", "sked.q.parted~1", "sked.q.parted~2", "sked.q.sked.events~2"}
        S.check(want <= names, "the broker holds the partitions: missing %s"
                % sorted(want - names))
    finally:
        for n in reversed(nodes):  # the worker's last events to the scheduler
            n.cleanup()
        sink.shutdown()
        for s in env["schedulers"]:
            s.start()


@S.test(timeout=60)
def scheduler_killed():
    cl = client()
    every = must(cl.post("/v1/tasks:batch", {"tasks": [
        shell_task("true", {"every": "1s"}, name="sk-%02d" % i) for i in range(30)]}),
        201, "batch")["tasks"]
    time.sleep(3.0)
    t_kill = time.time()
    env["schedulers"][0].kill()
    time.sleep(9.0)
    for t in every:
        must(cl.post("/v1/tasks/%s:pause" % t["id"]), 200, "pause")
    time.sleep(2.0)
    worst, missing, twice = 0.0, 0, 0
    for t in every:
        rs = runs_of(cl, t["id"])
        secs = sorted(parse_time(r["scheduled_at"]) for r in rs)
        twice += len(secs) - len(set(secs))
        for a, b in zip(secs, secs[1:]):
            if b - a > 1.001:
                missing += 1
        for r in rs:
            if r.get("started_at"):
                worst = max(worst, parse_time(r["started_at"]) - parse_time(r["scheduled_at"]))
        S.check(secs and secs[-1] > t_kill + 7, "task %s kept running after the kill" % t["id"])
    S.eq(twice, 0, "occurrences with two runs")
    S.eq(missing, 0, "seconds without a run")
    S.check(worst < 10.0, "every start within 10 s of its time; worst %.3f s" % worst)
    print("  scheduler_killed: worst start lag %.0f ms" % (worst * 1e3), flush=True)
    env["schedulers"][0].cleanup()


def main():
    pg = Service("scripts/pg-test")
    rb = Service("scripts/rabbit-test")
    nodes = []
    try:
        pg.start()
        rb.start()
        store, queue = pg.url, rb.url
        env["queue"], env["store"] = queue, store
        env["rabbit_dir"] = rb.dir
        api = node("api", "--store", store, "--queue", queue)
        nodes.append(api)
        rc, out, err = run_cli(["token", "create", "--store", store, "--namespace", "default",
                                "--role", "admin"])
        if rc != 0:
            raise RuntimeError("token create: " + err)
        env.update(api=api, token=out.strip())
        env["schedulers"] = [node("scheduler", "--store", store, "--queue", queue, "--name",
                                  "s%d" % i) for i in (1, 2, 3)]
        env["workers"] = {n: node("worker", "--queue", queue, "--name", n, "--workers", "200")
                          for n in ("w1", "w2")}
        nodes += env["schedulers"] + list(env["workers"].values())
        S.run()
    finally:
        for n in nodes + list(env.get("workers", {}).values()):
            n.cleanup()
        rb.stop()
        pg.stop()


if __name__ == "__main__":
    main()
