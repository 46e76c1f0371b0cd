# shellcheck shell=bash
# scripts/lib-services.sh - what the scripts that start servers on loopback
# share: scripts/pg-test, scripts/rabbit-test and scripts/cluster source it.
#
#   svc_die MSG...                 "$prog: MSG" on stderr, exit 1
#   svc_free_ports N               N distinct free TCP ports on 127.0.0.1
#   svc_alive PID                  the process exists and is not a zombie
#   svc_start_time PID             its start time (clock ticks since boot):
#                                  with the PID, names one process for good
#   svc_port_open PORT             something accepts on 127.0.0.1:PORT
#   svc_wait_port PORT SECS [PID]  wait until it does; fails after SECS, or
#                                  as soon as PID (the server) is gone
#   svc_stop_pids GRACE PID...     SIGTERM, SIGKILL after GRACE seconds
#   svc_kill_now PID               SIGKILL and wait until it is gone
#   svc_as_pg CMD...               run CMD as PostgreSQL's user (below)
#   svc_exec_as_pg CMD...          the same, replacing this process (for a
#                                  server started in the background whose
#                                  PID must be the server's own)
#   svc_pg_check                   the binaries and the user are there
#   svc_epmd_start PORT LOG        our own epmd (SVC_PID: its PID)
#   svc_rabbit_node_init DIR NODE AMQP DIST EPMD CTL HOME
#                                  config files and DIR/env for one node
#   svc_rabbit_launch DIR SECS     start that node, wait for its AMQP port
#                                  (SVC_PID: the wrapper, SVC_BEAM: the
#                                  Erlang VM, the process to kill)
#   svc_rabbit_ctl DIR CMD ARG...  rabbitmqctl & co. against that node
#
# PostgreSQL refuses to run as root: as root, its programs run as the
# `postgres` user (runuser; setpriv where the PID matters, since runuser
# stays a parent); as anyone else they run as that user.
#
# RabbitMQ: /usr/sbin/rabbitmq-server and rabbitmqctl switch to the rabbitmq
# user and reset HOME as root, and the Erlang cookie then goes astray.  The
# scripts in /usr/lib/rabbitmq/bin are called directly, with every path, port
# and the cookie under the caller's directory, and with an epmd the caller
# starts in the foreground (a detached one would outlive it).  A node is
# ready when its AMQP port accepts a connection (it opens last).
#
# The caller sets `prog` (its name, for messages) and `set -euo pipefail`.

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
RABBIT_BIN=${RABBIT_BIN:-/usr/lib/rabbitmq/bin}

svc_die() {
    echo "${prog:-service}: $*" >&2
    exit 1
}

# Held open together while chosen, so they differ; another process could
# still take one before the server binds it, which the callers live with
# (pg-test retries).
svc_free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
EOF
}

svc_alive() {
    local st
    [ -n "${1:-}" ] || return 1
    st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "${st%% *}" != Z ]
}

# Field 22 of /proc/PID/stat; the command name (field 2) may hold spaces.
svc_start_time() {
    local st
    st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
    # shellcheck disable=SC2086
    set -- $st
    echo "${20}"
}

svc_port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

svc_wait_port() {
    local port=$1 secs=$2 pid=${3:-} i
    for ((i = 0; i < secs * 20; i++)); do
        svc_port_open "$port" && return 0
        if [ -n "$pid" ] && ! svc_alive "$pid"; then
            return 1
        fi
        sleep 0.05
    done
    return 1
}

svc_stop_pids() {
    local grace=$1 i p left
    shift
    for p in "$@"; do svc_alive "$p" && kill -TERM "$p" 2>/dev/null; done
    for ((i = 0; i < grace * 20; i++)); do
        left=0
        for p in "$@"; do svc_alive "$p" && left=1; done
        [ "$left" -eq 0 ] && return 0
        sleep 0.05
    done
    for p in "$@"; do svc_alive "$p" && kill -KILL "$p" 2>/dev/null; done
    for ((i = 0; i < 100; i++)); do
        left=0
        for p in "$@"; do svc_alive "$p" && left=1; done
        [ "$left" -eq 0 ] && return 0
        sleep 0.05
    done
    return 1
}

svc_kill_now() {
    local i
    svc_alive "$1" || return 0
    kill -KILL "$1" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        svc_alive "$1" || return 0
        sleep 0.05
    done
    return 1
}

# From /, a directory the postgres user can read.
svc_as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

svc_exec_as_pg() {
    cd /
    if [ "$(id -u)" -eq 0 ]; then
        exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
    fi
    exec "$@"
}

svc_pg_check() {
    local b
    for b in initdb pg_ctl pg_isready psql; do
        [ -x "$PG_BIN/$b" ] ||
            svc_die "$PG_BIN/$b not found: install PostgreSQL 15 (scripts/install-deps) or set PG_BIN"
    done
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 ||
            svc_die "running as root needs the 'postgres' user (the postgresql package creates it)"
        if ! command -v runuser >/dev/null || ! command -v setpriv >/dev/null; then
            svc_die "runuser and setpriv not found (package util-linux)"
        fi
    fi
}

# In the foreground (not -daemon) so that its PID is ours.
svc_epmd_start() {
    ERL_EPMD_ADDRESS=127.0.0.1 epmd -port "$1" </dev/null >>"$2" 2>&1 &
    SVC_PID=$!
}

svc_rabbit_node_init() {
    local dir=$1 node=$2 amqp=$3 dist=$4 epmd=$5 ctl=$6 home=$7
    mkdir -p "$dir/mnesia" "$dir/log" "$home"
    if [ ! -f "$home/.erlang.cookie" ]; then
        # Shared by the nodes and any CLI tool run with this HOME.
        head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$home/.erlang.cookie"
        chmod 400 "$home/.erlang.cookie"
    fi
    printf 'listeners.tcp.default = 127.0.0.1:%s\nlog.console = false\n' \
        "$amqp" >"$dir/rabbitmq.conf"
    echo '[].' >"$dir/enabled_plugins"
    echo '[].' >"$dir/advanced.config"
    : >"$dir/rabbitmq-env.conf"
    cat >"$dir/env" <<EOF
HOME='$home'
RABBITMQ_NODENAME='$node'
RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
RABBITMQ_NODE_PORT=$amqp
RABBITMQ_DIST_PORT=$dist
ERL_EPMD_ADDRESS=127.0.0.1
ERL_EPMD_PORT=$epmd
RABBITMQ_MNESIA_BASE='$dir/mnesia'
RABBITMQ_LOG_BASE='$dir/log'
RABBITMQ_PID_FILE='$dir/beam.pid'
RABBITMQ_CONFIG_FILE='$dir/rabbitmq.conf'
RABBITMQ_ENABLED_PLUGINS_FILE='$dir/enabled_plugins'
RABBITMQ_CONF_ENV_FILE='$dir/rabbitmq-env.conf'
RABBITMQ_ADVANCED_CONFIG_FILE='$dir/advanced.config'
RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1}'
RABBITMQ_CTL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1}'
RABBITMQ_CTL_DIST_PORT_MIN=$ctl
RABBITMQ_CTL_DIST_PORT_MAX=$ctl
EOF
}

svc_rabbit_env() { # dir name -> the value of one variable of DIR/env
    # shellcheck disable=SC1091
    (. "$1/env" && eval "echo \"\$$2\"")
}

svc_rabbit_launch() {
    local dir=$1 secs=$2 port pidfile i
    port=$(svc_rabbit_env "$dir" RABBITMQ_NODE_PORT)
    pidfile=$(svc_rabbit_env "$dir" RABBITMQ_PID_FILE)
    rm -f "$pidfile"
    SVC_BEAM=
    # Detached from the caller's stdout: `URL=$(rabbit-test start DIR)` must
    # not wait for the node to exit.
    (
        set -a
        # shellcheck disable=SC1091
        . "$dir/env"
        set +a
        # Its own session: a Ctrl-C meant for the caller does not reach it.
        exec setsid "$RABBIT_BIN/rabbitmq-server" </dev/null >>"$dir/log/server.out" 2>&1
    ) &
    SVC_PID=$!
    for ((i = 0; i < secs * 10; i++)); do
        if [ -z "$SVC_BEAM" ] && [ -s "$pidfile" ]; then
            SVC_BEAM=$(tr -dc '0-9' <"$pidfile")
        fi
        if svc_port_open "$port"; then
            [ -z "$SVC_BEAM" ] && [ -s "$pidfile" ] && SVC_BEAM=$(tr -dc '0-9' <"$pidfile")
            return 0
        fi
        if ! svc_alive "$SVC_PID"; then
            echo "${prog:-service}: the RabbitMQ node exited during start; log tail:" >&2
            tail -n 40 "$dir/log/server.out" "$dir"/log/*.log 2>/dev/null >&2 || true
            return 1
        fi
        sleep 0.1
    done
    echo "${prog:-service}: RabbitMQ port $port not open after ${secs}s; log tail:" >&2
    tail -n 40 "$dir/log/server.out" "$dir"/log/*.log 2>/dev/null >&2 || true
    return 1
}

svc_rabbit_ctl() {
    local dir=$1 tool=$2
    shift 2
    (
        set -a
        # shellcheck disable=SC1091
        . "$dir/env"
        set +a
        exec "$RABBIT_BIN/$tool" -n "$RABBITMQ_NODENAME" "$@"
    )
}
