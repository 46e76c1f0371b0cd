"""skedtest.py - what the integration tests share (Python 3 standard library).

- Server: boots the real binary ($SKED, default bin/sked) as
  `sked server --data DIR --listen 127.0.0.1:0` in its own temp data dir,
  reads the port back from the `listening on http://HOST:PORT` line (10 s at
  most), and stops it by PID (SIGTERM, or SIGKILL for crash tests).  Every
  server started is killed at exit, whatever happened.
- Client: one keep-alive connection (http.client); request() returns
  (status, headers, body), body being parsed JSON when the answer is JSON.
  list_all() pages through tasks, list_runs() through a run list.
- Time: parse_time() (RFC 3339 -> epoch seconds), format_time(), and
  wait_until() for polling.
- Suite: a tiny registry and runner.  Each test is a function; a failed
  check prints one line saying what was expected, an exception fails the
  test, and a per-test alarm keeps anything from hanging.  run() prints
  `NAME: N passed, M failed` last and exits non-zero on any failure.

Not here: the tests themselves (test_*.py).
"""
import atexit
import calendar
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

SKED = os.environ.get("SKED", "bin/sked")
START_TIMEOUT = 10.0

_live = set()          # Servers whose process may still run


def _kill_all():
    for srv in list(_live):
        try:
            srv.kill()
        except Exception:
            pass


atexit.register(_kill_all)


def sked_path():
    p = os.path.abspath(SKED)
    if not os.access(p, os.X_OK):
        raise RuntimeError("no sked binary at %s (build it with make, or set SKED)" % p)
    return p


def run_cli(args, timeout=10, env=None):
    """Run `sked ARGS...`; returns (exit status, stdout, stderr)."""
    p = subprocess.run([sked_path()] + list(args), capture_output=True, text=True,
                       timeout=timeout, env=env)
    return p.returncode, p.stdout, p.stderr


class Server:
    """One `sked server` on 127.0.0.1:0 over its own data dir.

    data: an existing directory to reuse (restart tests); default a new temp
    dir, removed by cleanup().
    """

    # The argv after the binary, and the stdout line that says it is up.
    ready_prefix = "listening on http://"

    def argv(self):
        return ["server", "--data", self.data, "--listen", "127.0.0.1:0"] + self.extra_args

    def __init__(self, data=None, extra_args=()):
        self.own_dir = data is None
        self.data = data or tempfile.mkdtemp(prefix="sked-it-")
        self.extra_args = list(extra_args)
        self.proc = None
        self.port = None
        self.host = "127.0.0.1"
        self.log_path = None
        self.stdout_lines = []

    # -- life cycle --------------------------------------------------------
    def start(self):
        if self.log_path is None:      # one log over restarts
            fd, self.log_path = tempfile.mkstemp(prefix="sked-it-log-", suffix=".txt")
            os.close(fd)
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [sked_path()] + self.argv(),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log)
        log.close()
        _live.add(self)
        deadline = time.monotonic() + START_TIMEOUT
        buf = b""
        out = self.proc.stdout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise RuntimeError("sked server did not say `listening on` within %.0f s; "
                                   "stderr: %s" % (START_TIMEOUT, self.stderr_tail()))
            r, _, _ = select.select([out], [], [], min(left, 0.2))
            if not r:
                if self.proc.poll() is not None:
                    raise RuntimeError("sked server exited %s before serving; stderr: %s"
                                       % (self.proc.returncode, self.stderr_tail()))
                continue
            chunk = os.read(out.fileno(), 4096)
            if not chunk:
                self.proc.wait(timeout=5)
                raise RuntimeError("sked server closed stdout (exit %s); stderr: %s"
                                   % (self.proc.returncode, self.stderr_tail()))
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                line = line.decode("utf-8", "replace")
                self.stdout_lines.append(line)
                if line.startswith("listening on http://"):
                    hostport = line[len("listening on http://"):].strip()
                    host, _, port = hostport.rpartition(":")
                    self.host = host if host not in ("", "0.0.0.0") else "127.0.0.1"
                    self.port = int(port)
                if line.startswith(self.ready_prefix):
                    # keep draining stdout so the server never blocks on it
                    threading.Thread(target=self._drain, daemon=True).start()
                    return self

    def _drain(self):
        try:
            for raw in iter(lambda: os.read(self.proc.stdout.fileno(), 4096), b""):
                for line in raw.decode("utf-8", "replace").splitlines():
                    self.stdout_lines.append(line)
        except (OSError, ValueError):
            pass

    def stop(self, timeout=10.0):
        """SIGTERM and wait; SIGKILL when it does not stop in time.  Returns
        the exit status (negative: killed by that signal)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
                _live.discard(self)
                raise RuntimeError("sked server did not stop within %.0f s of SIGTERM"
                                   % timeout)
        _live.discard(self)
        self._close_pipes()
        return self.proc.returncode

    def kill(self):
        """SIGKILL, as a crash."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        _live.discard(self)
        self._close_pipes()

    def _close_pipes(self):
        try:
            if self.proc.stdout:
                self.proc.stdout.close()
        except Exception:
            pass

    def restart(self):
        self.stop()
        return self.start()

    def cleanup(self):
        self.kill()
        if self.log_path and os.path.exists(self.log_path):
            if os.environ.get("SKED_TEST_KEEP_LOGS"):
                print("  server log kept: %s" % self.log_path, flush=True)
            else:
                os.unlink(self.log_path)
        if self.own_dir:
            shutil.rmtree(self.data, ignore_errors=True)

    def stderr_tail(self, n=15):
        try:
            with open(self.log_path, errors="replace") as f:
                return " | ".join(f.read().splitlines()[-n:])
        except OSError:
            return "(no log)"

    # -- helpers -----------------------------------------------------------
    @property
    def admin_token(self):
        with open(os.path.join(self.data, "admin.token")) as f:
            return f.read().strip()

    def client(self, token=None, timeout=10.0):
        return Client(self.host, self.port, token=token, timeout=timeout)

    def make_token(self, namespace, role):
        """A token from `sked token create` (works while the server runs)."""
        rc, out, err = run_cli(["token", "create", "--data", self.data,
                                "--namespace", namespace, "--role", role])
        if rc != 0 or not out.strip():
            raise RuntimeError("sked token create exited %d: %s" % (rc, err.strip()))
        return out.strip()

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(self, etype, evalue, tb):
        """Stop with SIGTERM and insist on exit status 0 (under the sanitizer
        build this also catches leaks), unless the test already failed."""
        try:
            rc = self.stop() if etype is None else None
        except RuntimeError as e:
            self.cleanup()
            raise AssertionError(str(e))
        tail = self.stderr_tail(5) if rc not in (None, 0) else ""
        self.cleanup()
        if rc not in (None, 0):
            raise AssertionError("sked server exited %s after SIGTERM: %s" % (rc, tail))


class Node(Server):
    """One `sked api|scheduler|worker|server ARGS...` (a role of a distributed
    deployment); up once it prints `started ROLE ID`.  The api's port is
    read as the server's is."""
    ready_prefix = "started "

    def __init__(self, role, args):
        super().__init__(data=tempfile.mkdtemp(prefix="sked-it-node-"))
        self.own_dir = True
        self.role = role
        self.role_args = list(args)

    def argv(self):
        extra = ["--listen", "127.0.0.1:0"] if self.role in ("api", "server") else []
        return [self.role] + self.role_args + extra


class Service:
    """A throwaway PostgreSQL or RabbitMQ from scripts/pg-test or
    scripts/rabbit-test (started on loopback, stopped by PID)."""

    def __init__(self, script):
        self.script = script
        self.dir = tempfile.mkdtemp(prefix="sked-it-svc-")
        self.url = None

    def start(self):
        p = subprocess.run([self.script, "start", self.dir], capture_output=True, text=True,
                           timeout=120)
        if p.returncode != 0 or not p.stdout.strip():
            raise RuntimeError("%s start failed: %s" % (self.script, p.stderr.strip()[-500:]))
        self.url = p.stdout.strip().splitlines()[-1]
        return self

    def restart(self):
        p = subprocess.run([self.script, "restart", self.dir], capture_output=True, text=True,
                           timeout=120)
        if p.returncode != 0:
            raise RuntimeError("%s restart failed: %s" % (self.script, p.stderr.strip()[-500:]))

    def stop(self):
        subprocess.run([self.script, "stop", self.dir], capture_output=True, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


class Response(tuple):
    """(status, headers, body) with names too."""

    @property
    def status(self):
        return self[0]

    @property
    def headers(self):
        return self[1]

    @property
    def body(self):
        return self[2]

    def err(self, key="code"):
        """A field of the error object, or None."""
        b = self[2]
        if isinstance(b, dict) and isinstance(b.get("error"), dict):
            return b["error"].get(key)
        return None


class Client:
    """HTTP/1.1 with keep-alive.  request() reconnects once when a reused
    connection turns out to be closed (retry=False turns that off: a POST that
    may have reached the server must not be sent twice)."""

    def __init__(self, host, port, token=None, timeout=10.0):
        self.host, self.port, self.token, self.timeout = host, port, token, timeout
        self.conn = None
        self.used = False
        self.connects = 0       # connections opened: keep-alive tests read it

    def close(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = None

    def _connect(self):
        self.close()
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        self.used = False
        self.connects += 1

    def request(self, method, path, body=None, token=..., headers=None,
                content_type="application/json", retry=True):
        """body: dict/list (sent as JSON), str/bytes (sent as is), or None.
        token: ... for the client's default, None for no Authorization.
        Returns Response(status, headers, parsed JSON | text | None)."""
        hdrs = {}
        tok = self.token if token is ... else token
        if tok is not None:
            hdrs["Authorization"] = "Bearer " + tok
        data = None
        if body is not None:
            if isinstance(body, (dict, list)):
                data = json.dumps(body).encode()
            elif isinstance(body, str):
                data = body.encode()
            else:
                data = body
            if content_type is not None:
                hdrs["Content-Type"] = content_type
        if headers:
            hdrs.update(headers)
        for attempt in (0, 1):
            if self.conn is None:
                self._connect()
            reused = self.used
            try:
                self.conn.request(method, path, body=data, headers=hdrs)
                r = self.conn.getresponse()
                raw = r.read()
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError, http.client.BadStatusLine):
                self.close()
                if attempt == 0 and reused and retry:
                    continue
                raise
            except Exception:
                self.close()
                raise
            self.used = True
            if r.will_close:
                self.close()
            ctype = r.getheader("Content-Type", "")
            text = raw.decode("utf-8", "replace")
            parsed = text
            if raw and "json" in ctype:
                try:
                    parsed = json.loads(text)
                except ValueError:
                    parsed = text
            elif not raw:
                parsed = None
            return Response((r.status, r.headers, parsed))

    # shorthands
    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def list_all(self, query="", limit=1000, max_pages=1000):
        """Every task the token sees (following next_cursor)."""
        out, cursor = [], None
        for _ in range(max_pages):
            q = "limit=%d" % limit + ("&" + query if query else "")
            if cursor:
                q += "&cursor=" + cursor
            r = self.get("/v1/tasks?" + q)
            if r.status != 200:
                raise AssertionError("GET /v1/tasks?%s: expected 200, got %d %s"
                                     % (q, r.status, r.body))
            out.extend(r.body["tasks"])
            cursor = r.body.get("next_cursor")
            if not cursor:
                return out
        raise AssertionError("list did not end after %d pages" % max_pages)

    def list_runs(self, path="/v1/runs", query="", limit=1000, max_pages=1000):
        """Every run of a run list (/v1/runs or /v1/tasks/{id}/runs), in the
        server's order, following next_cursor."""
        out, cursor = [], None
        for _ in range(max_pages):
            q = "limit=%d" % limit + ("&" + query if query else "")
            if cursor:
                q += "&cursor=" + cursor
            r = self.get(path + "?" + q)
            if r.status != 200:
                raise AssertionError("GET %s?%s: expected 200, got %d %s"
                                     % (path, q, r.status, r.body))
            out.extend(r.body["runs"])
            cursor = r.body.get("next_cursor")
            if not cursor:
                return out
        raise AssertionError("run list did not end after %d pages" % max_pages)


def raw_http(host, port, data, timeout=5.0, shutdown_write=False):
    """Send bytes on a fresh socket, return what comes back until the server
    closes or answers one response (status line + headers + Content-Length)."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.sendall(data)
        if shutdown_write:
            s.shutdown(socket.SHUT_WR)
        buf = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            buf += chunk
            head, sep, rest = buf.partition(b"\r\n\r\n")
            if sep:
                cl = None
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        cl = int(v.strip())
                if cl is not None and len(rest) >= cl:
                    break
        return buf
    finally:
        s.close()


def parse_raw_status(buf):
    """(status, body text) of a raw HTTP answer; (0, '') when there is none."""
    if not buf.startswith(b"HTTP/"):
        return 0, ""
    line = buf.split(b"\r\n", 1)[0].split()
    head, _, body = buf.partition(b"\r\n\r\n")
    return int(line[1]), body.decode("utf-8", "replace")


_TIME_RE = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?"
                      r"(Z|[+-]\d\d:\d\d)$")


def parse_time(s):
    """Seconds since the epoch (float, fraction kept) of an RFC 3339 string;
    None for None."""
    if s is None:
        return None
    m = _TIME_RE.match(s)
    if not m:
        raise AssertionError("not an RFC 3339 time with an offset: %r" % (s,))
    y, mo, d, h, mi, se, frac, off = m.groups()
    t = calendar.timegm((int(y), int(mo), int(d), int(h), int(mi), int(se)))
    if frac:
        t += float(frac)
    if off != "Z":
        sign = 1 if off[0] == "+" else -1
        t -= sign * (int(off[1:3]) * 3600 + int(off[4:6]) * 60)
    return t


def format_time(t):
    """RFC 3339 in UTC with milliseconds (2026-11-27T10:00:00.123Z)."""
    ms = int(round(t * 1000))
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + \
        ".%03dZ" % (ms % 1000)


def wait_until(fn, timeout, interval=0.1):
    """Call fn until it returns something true or timeout seconds pass;
    returns its last result."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


class _Timeout(Exception):
    pass


class Suite:
    """Register tests with @suite.test; check with suite.check/eq; run()."""

    def __init__(self, name, timeout=30):
        self.name = name
        self.timeout = timeout
        self.tests = []
        self.cur = None
        self.cur_failures = 0
        self.failures = 0

    def test(self, fn=None, timeout=None):
        def reg(f):
            self.tests.append((f.__name__, f, timeout or self.timeout))
            return f
        return reg(fn) if fn is not None else reg

    def fail(self, msg):
        self.cur_failures += 1
        print("FAIL %s: %s" % (self.cur, msg), flush=True)

    def check(self, cond, msg):
        """Record a failure (msg says what was expected) unless cond."""
        if not cond:
            self.fail(msg)
        return bool(cond)

    def eq(self, got, want, what):
        return self.check(got == want, "%s: expected %r, got %r" % (what, want, got))

    def status(self, r, want, what):
        """Check a response's status (want: int or tuple of ints)."""
        ok = r.status in (want if isinstance(want, tuple) else (want,))
        if not ok:
            body = r.body if not isinstance(r.body, str) else r.body[:300]
            self.fail("%s: expected status %s, got %d %s" % (what, want, r.status, body))
        return ok

    def error(self, r, status, code, what, field=None, message=None, contains=None):
        """Check an error answer: status, error.code, and maybe field/message."""
        if not self.status(r, status, what):
            return False
        ok = self.eq(r.err("code"), code, what + ": error.code")
        if field is not None:
            ok &= self.eq(r.err("field"), field, what + ": error.field")
        if message is not None:
            ok &= self.eq(r.err("message"), message, what + ": error.message")
        if contains is not None:
            msg = r.err("message") or ""
            ok &= self.check(contains in msg, "%s: expected error.message containing %r, got %r"
                             % (what, contains, msg))
        return ok

    def run(self):
        passed = failed = 0
        t0 = time.monotonic()

        def on_alarm(signum, frame):
            raise _Timeout()

        old = signal.signal(signal.SIGALRM, on_alarm)
        try:
            try:
                sked_path()
            except RuntimeError as e:
                print("FAIL %s: %s" % (self.name, e))
                print("%s: 0 passed, %d failed" % (self.name, max(1, len(self.tests))))
                sys.exit(1)
            only = set(sys.argv[1:])
            for name, fn, timeout in self.tests:
                if only and name not in only:
                    continue
                self.cur, self.cur_failures = name, 0
                t1 = time.monotonic()
                signal.alarm(int(timeout))
                try:
                    fn()
                except _Timeout:
                    self.fail("did not finish within %d s" % timeout)
                except AssertionError as e:
                    self.fail(str(e))
                except Exception as e:
                    tb = traceback.extract_tb(e.__traceback__)
                    where = ""
                    for fr in reversed(tb):
                        if os.path.basename(fr.filename).startswith("test_"):
                            where = " (%s:%d)" % (os.path.basename(fr.filename), fr.lineno)
                            break
                    self.fail("unexpected %s: %s%s" % (type(e).__name__, e, where))
                finally:
                    signal.alarm(0)
                if os.environ.get("SKED_TEST_VERBOSE"):
                    print("  %s %s (%.2f s)" % ("ok  " if not self.cur_failures else "FAIL",
                                                name, time.monotonic() - t1), flush=True)
                if self.cur_failures:
                    failed += 1
                else:
                    passed += 1
        finally:
            signal.signal(signal.SIGALRM, old)
            _kill_all()
        if os.environ.get("SKED_TEST_VERBOSE"):
            print("  (%.1f s)" % (time.monotonic() - t0))
        print("%s: %d passed, %d failed" % (self.name, passed, failed), flush=True)
        sys.exit(1 if failed else 0)
