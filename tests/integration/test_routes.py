#!/usr/bin/env python3
"""test_routes.py - the documented routes and the served routes agree.

Sources of routes:
- the contract (the Endpoints table of API.md, copied below: it changes only
  through an issue, and then this list changes with it);
- openapi.yaml: the keys under `paths:` and the methods under each;
- docs/api.md: every `METHOD /path` written in it.

Checks: every route of every source exists on a running server (with an
admin token it answers neither 405 nor the 404 of an unknown path, `no such
resource: ...`; a 404 about the resource id is fine), and every contract
route is documented in openapi.yaml and docs/api.md, and the two documents
list the same routes.

When openapi.yaml or docs/api.md is missing, the routes come from
/work/shared/API.md instead (or $SKED_API_MD) and the test says so.

Run: python3 tests/integration/test_routes.py [TEST_NAME...]
"""
import os
import re
import sys
import uuid

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from skedtest import Server, Suite  # noqa: E402

S = Suite("test_routes", timeout=30)

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OPENAPI = os.path.join(ROOT, "openapi.yaml")
DOCS = os.path.join(ROOT, "docs", "api.md")
SHARED_API_MD = os.environ.get("SKED_API_MD", "/work/shared/API.md")

# API.md, "Endpoints" (plus /readyz, written in the /healthz row).
CONTRACT = [
    ("POST", "/v1/tasks"),
    ("POST", "/v1/tasks:batch"),
    ("GET", "/v1/tasks"),
    ("GET", "/v1/tasks/{id}"),
    ("PUT", "/v1/tasks/{id}"),
    ("DELETE", "/v1/tasks/{id}"),
    ("POST", "/v1/tasks/{id}:pause"),
    ("POST", "/v1/tasks/{id}:resume"),
    ("POST", "/v1/tasks/{id}:trigger"),
    ("GET", "/v1/tasks/{id}/runs"),
    ("GET", "/v1/runs"),
    ("GET", "/v1/runs/{id}"),
    ("POST", "/v1/runs/{id}:cancel"),
    ("POST", "/v1/schedules:preview"),
    ("GET", "/v1/workers"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
]

METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD")
URL = "http://127.0.0.1:9/hook"


def norm(path):
    """/v1/tasks/{task_id}?x=1 -> /v1/tasks/{id}: any parameter is {id}."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    path = re.sub(r"\{[^}]*\}", "{id}", path)
    return path.rstrip(".,;")


def openapi_routes(text):
    """(METHOD, path) from the `paths:` block of an OpenAPI YAML file, read
    by indentation (no YAML library in the standard library)."""
    routes, in_paths, cur, path_indent = [], False, None, None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        if indent == 0:
            in_paths = line.rstrip() == "paths:"
            cur = None
            continue
        if not in_paths:
            continue
        m = re.match(r"^\s*['\"]?(/[^'\"]*?)['\"]?:\s*$", line)
        if m and (path_indent is None or indent == path_indent):
            path_indent = indent
            cur = m.group(1)
            continue
        m = re.match(r"^\s*(get|post|put|delete|patch|head|options):", line)
        if m and cur is not None and indent > path_indent:
            routes.append((m.group(1).upper(), norm(cur)))
    return routes


def markdown_routes(text):
    """(METHOD, path) written as `METHOD /path` anywhere in a Markdown file;
    in a table row whose first cell is a route, `:suffix` in that cell and
    `/other` (no method) anywhere in the row take its method (API.md's "`POST /v1/tasks/{id}:pause` / `:resume`",
    "`GET /healthz` | ... `/readyz`")."""
    routes = []
    rx = re.compile(r"\b(%s)\s+(/[^\s`'\"|)<>]*)" % "|".join(METHODS))
    for line in text.splitlines():
        found = [(m.group(1), norm(m.group(2))) for m in rx.finditer(line)]
        routes += found
        cells = [c for c in line.split("|")[1:2]] if line.lstrip().startswith("|") else []
        head = [(m.group(1), norm(m.group(2))) for c in cells for m in rx.finditer(c)]
        if head:    # a table whose first column names the route
            method, first = head[0]
            for suffix in re.findall(r"`(:[a-z]+)`", cells[0]):
                routes.append((method, re.sub(r":[a-z]+$", "", first) + suffix))
            for bare in re.findall(r"`(/[a-z][^\s`]*)`", line):
                routes.append((method, norm(bare)))
    return routes


def read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return None


def documented():
    """{source name: set of routes}; a missing document falls back to the
    shared API.md, with a note."""
    out = {}
    text = read(OPENAPI)
    if text is not None:
        out["openapi.yaml"] = set(openapi_routes(text))
    text = read(DOCS)
    if text is not None:
        out["docs/api.md"] = set(markdown_routes(text))
    if len(out) < 2:
        # TODO: drop this fallback once openapi.yaml and docs/api.md are committed
        text = read(SHARED_API_MD)
        if text is not None:
            print("note: %s missing; routes read from %s"
                  % (" and ".join(x for x in ("openapi.yaml", "docs/api.md") if x not in out),
                     SHARED_API_MD))
            out["API.md"] = set(markdown_routes(text))
    return out


class Probe:
    """Calls one route on a live server with an admin token, with a real id
    where the route takes one (a fresh task per call, so DELETE and friends
    do not get in each other's way)."""

    def __init__(self, srv):
        self.srv = srv
        self.cl = srv.client(srv.admin_token)
        self.n = 0

    def fresh_task(self):
        self.n += 1
        r = self.cl.post("/v1/tasks", {"name": "route-%d" % self.n,
                                       "schedule": {"cron": "0 3 1 1 *"},
                                       "target": {"type": "http", "url": URL}})
        if r.status != 201:
            raise AssertionError("creating a task for the probe: %d %s" % (r.status, r.body))
        return r.body["id"]

    def fresh_token(self):
        r = self.cl.post("/v1/tokens", {"namespace": "probe", "role": "read"})
        if r.status != 201:
            raise AssertionError("creating a token for the probe: %d %s" % (r.status, r.body))
        return r.body["id"]

    def call(self, method, path):
        self.n += 1
        if "{id}" in path:
            if path.startswith("/v1/tasks"):
                ident = self.fresh_task()
            elif path.startswith("/v1/tokens"):
                ident = self.fresh_token()
            else:
                ident = str(uuid.uuid4())
            path = path.replace("{id}", ident)
        body = None
        if method in ("POST", "PUT", "PATCH"):
            task = {"schedule": {"cron": "0 3 1 1 *"}, "target": {"type": "http", "url": URL}}
            if path == "/v1/tasks:batch":
                body = {"tasks": [dict(task, name="batch-%d" % self.n)]}
            elif path == "/v1/schedules:preview":
                body = {"schedule": {"every": "1h"}, "count": 2}
            elif path == "/v1/tokens":
                body = {"namespace": "probe", "role": "read"}
            elif path == "/v1/tasks" or (method == "PUT" and path.startswith("/v1/tasks/")):
                body = dict(task, name="body-%d" % self.n)
        return path, self.cl.request(method, path, body)


def route_exists(method, path, r):
    """None when the answer shows the route exists, else what is wrong."""
    if r.status == 405:
        return "405 (no such method on this path)"
    if r.status == 404 and (r.err("message") or "").startswith("no such resource"):
        return "404 %s (unknown path)" % r.err("message")
    if r.status == 401:
        return "401 with an admin token"
    if r.status >= 500 and r.status != 503:
        return "%d %s" % (r.status, r.body)
    return None


def check_routes(routes, source):
    with Server() as srv:
        probe = Probe(srv)
        for method, path in sorted(routes):
            real, r = probe.call(method, path)
            wrong = route_exists(method, path, r)
            S.check(wrong is None, "%s route %s %s (called as %s): expected the route to exist, "
                    "got %s" % (source, method, path, real, wrong))


@S.test
def contract_routes_exist():
    check_routes(CONTRACT, "contract")


@S.test
def openapi_routes_exist():
    docs = documented()
    if "openapi.yaml" not in docs:
        S.fail("no %s: the API is to be documented there (DESIGN.md §8)" % OPENAPI)
        return
    S.check(len(docs["openapi.yaml"]) >= len(CONTRACT),
            "openapi.yaml: expected at least %d routes under paths:, found %d"
            % (len(CONTRACT), len(docs["openapi.yaml"])))
    check_routes(docs["openapi.yaml"], "openapi.yaml")


@S.test
def docs_routes_exist():
    docs = documented()
    if "docs/api.md" not in docs:
        S.fail("no %s: the API is to be documented there (DESIGN.md §8)" % DOCS)
        return
    check_routes(docs["docs/api.md"], "docs/api.md")


@S.test
def fallback_api_md_routes_exist():
    """Only when a document is missing: the routes of the shared API.md."""
    docs = documented()
    if "API.md" in docs:
        S.check(set(CONTRACT) <= docs["API.md"],
                "API.md parse: expected every contract route, missing %s"
                % sorted(set(CONTRACT) - docs["API.md"]))
        check_routes(docs["API.md"], "API.md")


@S.test
def contract_is_documented():
    docs = documented()
    for source in ("openapi.yaml", "docs/api.md"):
        if source not in docs:
            continue
        missing = sorted(set(CONTRACT) - docs[source])
        S.check(not missing, "%s: expected every route of the contract, missing %s"
                % (source, missing))
    if "openapi.yaml" in docs and "docs/api.md" in docs:
        a, b = docs["openapi.yaml"], docs["docs/api.md"]
        S.check(a == b, "openapi.yaml and docs/api.md: expected the same routes; only in "
                "openapi.yaml: %s; only in docs/api.md: %s" % (sorted(a - b), sorted(b - a)))


@S.test
def parsers_read_known_shapes():
    """The parsers themselves, on the shapes the documents use."""
    S.eq(sorted(markdown_routes(
        "| `POST /v1/tasks/{id}:pause` / `:resume` | 200 |\n"
        "| `GET /healthz` | 200 when ...; `/readyz` 200 when ... |\n"
        "| `write` | `read`, plus `:pause`, `POST /v1/runs/{id}:cancel`, not `/v1` |\n"
        "Call `DELETE /v1/tokens/{token_id}` or GET /v1/tasks?state=paused.\n")),
        sorted([("POST", "/v1/tasks/{id}:pause"), ("POST", "/v1/tasks/{id}:resume"),
                ("GET", "/healthz"), ("GET", "/readyz"), ("DELETE", "/v1/tokens/{id}"),
                ("GET", "/v1/tasks"), ("POST", "/v1/runs/{id}:cancel")]), "markdown_routes")
    S.eq(openapi_routes(
        "openapi: 3.1.0\npaths:\n  /v1/tasks:\n    post:\n      x: 1\n    get:\n"
        "      parameters:\n        - name: a\n  '/v1/tasks/{id}:pause':\n    post: {}\n"
        "components:\n  schemas:\n    /x:\n      get: 1\n"),
        [("POST", "/v1/tasks"), ("GET", "/v1/tasks"), ("POST", "/v1/tasks/{id}:pause")],
        "openapi_routes")
    # and the acceptance rule, on made-up answers
    from skedtest import Response
    S.check(route_exists("GET", "/x", Response((404, {}, {"error": {
        "code": "not_found", "message": "no such resource: /x"}}))) is not None,
        "an unknown-path 404 must count as a missing route")
    S.check(route_exists("GET", "/v1/runs/{id}", Response((404, {}, {"error": {
        "code": "not_found", "message": "no run 123"}}))) is None,
        "a 404 about the resource id must count as an existing route")


if __name__ == "__main__":
    S.run()
