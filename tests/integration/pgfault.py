"""pgfault.py - a TCP proxy in front of a real PostgreSQL that keeps the
answer to one COMMIT from its client: the fault a client sees when the
primary dies during its COMMIT, which the server (or its standby) has
nevertheless applied; or, held, a client that dies right after its COMMIT
was applied and before it could act on the answer.

    proxy = CommitAnswerLost("127.0.0.1", 5432)
    url = proxy.url("postgres://postgres@127.0.0.1:5432/db")
    proxy.arm(b"UPDATE runs", b"run id")
        # the next transaction that executes a statement whose SQL holds
        # the first text with parameters that hold the second has its
        # COMMIT forwarded, then both sockets are closed without the answer
    proxy.arm(b"UPDATE runs", b"run id", hold=True)
        # ... the answer is dropped and the connection left open; once the
        # server has answered (committed), proxy.held is set
    proxy.lost                # how many COMMITs lost their answer
    proxy.close()

The proxy reads the frontend protocol from the client (the untyped startup
messages, then type byte + length messages) and relays the server's bytes
unread.  A transaction is what a client sends from a simple query that
begins with BEGIN to one that ends with COMMIT, which is how libpq users
such as sked's store send them.  The server must not use TLS (the test servers do not).
"""
import socket
import struct
import threading

_SSL_REQUEST, _GSS_REQUEST = 80877103, 80877104


def _recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


class CommitAnswerLost:
    def __init__(self, host, port):
        self.upstream = (host, port)
        self.lock = threading.Lock()
        self.armed = None            # (SQL text, parameter text, hold)
        self.lost = 0
        self.held = threading.Event()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, url, dbname=None):
        """url with its host:port (and database) replaced by the proxy's."""
        scheme, rest = url.split("://", 1)
        auth, _, tail = rest.rpartition("@")
        _, _, path = tail.partition("/")
        path = dbname if dbname else path
        return "%s://%s%s127.0.0.1:%d/%s" % (scheme, auth, "@" if auth else "", self.port, path)

    def arm(self, sql, param, hold=False):
        with self.lock:
            self.armed = (sql, param, hold)
            self.held.clear()

    def close(self):
        self.closed = True
        try:
            self.listener.shutdown(socket.SHUT_RDWR)   # ends the accept()
        except OSError:
            pass
        self.listener.close()

    # -- the proxy ------------------------------------------------------------
    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=10)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            conn = {"client": client, "server": server, "mute": False, "hold": False}
            threading.Thread(target=self._down, args=(conn,), daemon=True).start()
            threading.Thread(target=self._up, args=(conn,), daemon=True).start()

    def _down(self, conn):
        """Server to client, unread; nothing once the connection is muted
        (then closed, or held open until the client goes)."""
        try:
            while True:
                data = conn["server"].recv(65536)
                if not data:
                    break
                if conn["mute"] and conn["hold"]:
                    self.held.set()
                    continue
                if conn["mute"]:
                    break
                conn["client"].sendall(data)
        except OSError:
            pass
        self._shut(conn)

    def _up(self, conn):
        """Client to server, message by message."""
        client, server = conn["client"], conn["server"]
        seen = False                 # the armed statement ran since BEGIN
        sqls = {}                    # prepared statement name -> SQL
        try:
            while True:              # startup: SSL/GSS requests, then startup
                head = _recv_exact(client, 8)
                if head is None:
                    return self._shut(conn)
                n, code = struct.unpack("!II", head)
                rest = _recv_exact(client, n - 8) if n > 8 else b""
                if rest is None:
                    return self._shut(conn)
                server.sendall(head + rest)
                if code not in (_SSL_REQUEST, _GSS_REQUEST):
                    break
            while True:
                head = _recv_exact(client, 5)
                if head is None:
                    return self._shut(conn)
                kind, n = head[:1], struct.unpack("!I", head[1:])[0]
                body = _recv_exact(client, n - 4) if n > 4 else b""
                if body is None:
                    return self._shut(conn)
                with self.lock:
                    armed = self.armed
                # a simple query's statements ("NOTIFY ...; COMMIT" too)
                query = [q.strip() for q in body.rstrip(b"\0").upper().split(b";")
                         if q.strip()] if kind == b"Q" else []
                if query[:1] == [b"BEGIN"]:
                    seen = False
                if kind == b"P":         # Parse: name, SQL, ...
                    name, _, rest = body.partition(b"\0")
                    sqls[name] = rest.partition(b"\0")[0]
                if kind == b"B" and armed is not None:   # Bind: portal, name, ...
                    name = body.partition(b"\0")[2].partition(b"\0")[0]
                    seen = seen or (armed[0] in sqls.get(name, b"") and armed[1] in body)
                ours = False
                if query[-1:] == [b"COMMIT"] and seen:
                    with self.lock:
                        ours = armed is not None and self.armed is armed
                        if ours:
                            self.armed = None
                            self.lost += 1
                if ours:
                    # the server commits; _down drops its answer and closes
                    # the connection, or (hold) keeps it as it is
                    conn["mute"], conn["hold"] = True, armed[2]
                    server.sendall(head + body)
                    if not armed[2]:
                        return None
                    continue
                server.sendall(head + body)
        except OSError:
            self._shut(conn)

    @staticmethod
    def _shut(conn):
        for s in (conn["client"], conn["server"]):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
