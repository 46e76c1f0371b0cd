#!/usr/bin/env bash
# tests/cli/task_cli.sh - the client commands (add, ls, show, pause, resume,
# rm, runs, trigger, cancel, workers) through the real binary against a real
# `sked server` on 127.0.0.1:0 with its own data directory: what is sent
# (read back with --json and jq), what is printed, exit statuses, and the
# one-line errors (server errors, usage errors, no token, no server).
set -u
SKED=${SKED:-bin/sked}
SKED=$(cd "$(dirname "$SKED")" && pwd)/$(basename "$SKED") # we cd below
pass=0 fail=0
tmp=$(mktemp -d)
srv_pid=
cleanup() {
    if [ -n "$srv_pid" ]; then kill "$srv_pid" 2>/dev/null; wait "$srv_pid" 2>/dev/null; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); printf 'FAIL %s\n' "$1"; }
check() { # name, expected, actual
    if [ "$2" == "$3" ]; then ok; else
        bad "$1"; printf '  want: %q\n  got:  %q\n' "$2" "$3"; fi
}
check_re() { # name, extended regex, actual: some line of actual matches
    if grep -qE -- "$2" <<<"$3"; then ok; else
        bad "$1"; printf '  want a line /%s/\n  got:  %q\n' "$2" "$3"; fi
}
# run ARGS: sked ARGS -> $out $err $rc.  runenv ENV... CMD...: the same
# through env(1), for changed or unset variables.
run() { out=$("$SKED" "$@" 2>"$tmp/err"); rc=$?; err=$(cat "$tmp/err"); }
runenv() { out=$(env "$@" 2>"$tmp/err"); rc=$?; err=$(cat "$tmp/err"); }
# jqout FILTER: FILTER applied to $out ("" when $out is not JSON).
jqout() { jq -r "$1" <<<"$out" 2>/dev/null; }
lines() { if [ -z "$1" ]; then echo 0; else wc -l <<<"$1" | tr -d ' '; fi; }
summary() { echo "task_cli: $pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit; }

# ---- The server ---------------------------------------------------------
"$SKED" server --data "$tmp/sked-data" --listen 127.0.0.1:0 \
    >"$tmp/server.out" 2>"$tmp/server.err" &
srv_pid=$!
url=
for _ in $(seq 50); do
    url=$(sed -n 's/^listening on \(http:\/\/127\.0\.0\.1:[0-9][0-9]*\)$/\1/p' "$tmp/server.out")
    [ -n "$url" ] && break
    sleep 0.1
done
if [ -z "$url" ] || [ ! -s "$tmp/sked-data/admin.token" ]; then
    bad "server start: no 'listening on' line or no admin.token within 5 s"
    sed 's/^/  server: /' "$tmp/server.out" "$tmp/server.err"
    summary
fi
export SKED_URL=$url SKED_TOKEN
SKED_TOKEN=$(cat "$tmp/sked-data/admin.token")
closed=http://127.0.0.1:1 # nothing listens there

# ---- add ----------------------------------------------------------------
run add --name nightly --cron '*/5 * * * *' --shell 'echo hi'
check "add cron rc" 0 "$rc"
check_re "add cron prints id, name, next run on a 5-minute mark" \
    '^[0-9a-f-]{36}  nightly  next run [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-5][05]:00Z$' "$out"
id1=${out%% *}

run add --name poll --every 30s --http http://127.0.0.1:9/hook --method PUT \
    --header 'X-Token: abc' --header 'Accept:text/plain' --body '{"a":1}' \
    --label team=data --retry 3 --backoff 5s --timeout 10s --json
check "add every+http rc" 0 "$rc"
check "add every+http sent" \
    '30s|http|http://127.0.0.1:9/hook|PUT|abc|text/plain|{"a":1}|data|3|5s|10s' \
    "$(jqout '[.schedule.every, .target.type, .target.url, .target.method,
               .target.headers["X-Token"], .target.headers.Accept, .target.body,
               .labels.team, .retry.max_attempts, .retry.backoff,
               .target.timeout] | map(tostring) | join("|")')"
id2=$(jqout .id)

run add --name once --at 2030-01-01T00:00:00Z --shell date
check "add at rc" 0 "$rc"
check_re "add at next run" '  once  next run 2030-01-01T00:00:00Z$' "$out"

run add --name berlin --cron '0 3 * * *' --tz Europe/Berlin --shell 'env' \
    --env A=1 --env B='x y' --cwd /tmp --queue q2 --overlap allow \
    --misfire run_all --start-at 2030-01-01T00:00:00Z --max-runs 7 --jitter 2s --json
check "add berlin rc" 0 "$rc"
check "add berlin sent" 'Europe/Berlin|1|x y|/tmp|q2|allow|run_all|7|2s|2030-01-01T02:00:00Z' \
    "$(jqout '[.schedule.timezone, .target.env.A, .target.env.B, .target.cwd,
               .queue, .overlap, .misfire, .schedule.max_runs, .schedule.jitter,
               .next_run_at] | map(tostring) | join("|")')"

# ---- ls -----------------------------------------------------------------
run ls
check "ls rc" 0 "$rc"
check "ls header" "ID NAME SCHEDULE NEXT RUN STATE" "$(head -1 <<<"$out" | tr -s ' ')"
check "ls rows" 5 "$(lines "$out")"
check_re "ls row cron" "^$id1 +nightly +\*/5 \* \* \* \* +[0-9T:Z-]+ +active$" "$out"
check_re "ls row every" "^$id2 +poll +every 30s +[0-9T:Z-]+ +active$" "$out"
check_re "ls row tz" "berlin +0 3 \* \* \* \(Europe/Berlin\) +2030-01-01T02:00:00Z +active" "$out"
run ls --json
check "ls --json" "berlin nightly once poll" "$(jqout '[.tasks[].name] | sort | join(" ")')"
run ls --limit 1 --all --json
check "ls --all follows the cursor" "4 null" "$(jqout '"\(.tasks | length) \(.next_cursor)"')"
run ls --limit 1
check "ls --limit 1 rows" 2 "$(lines "$out")"
check_re "ls --limit says more" "--all" "$err"
run ls --label team:data
check "ls --label" "poll" "$(tail -n +2 <<<"$out" | awk '{print $2}')"
run ls --name-prefix ni
check "ls --name-prefix" "nightly" "$(tail -n +2 <<<"$out" | awk '{print $2}')"

# ---- show ---------------------------------------------------------------
run show "$id1"
check "show by id rc" 0 "$rc"
check_re "show by id name" "^name: +nightly$" "$out"
check_re "show schedule" "^schedule: +\*/5 \* \* \* \*$" "$out"
check_re "show target" "^target: +shell echo hi$" "$out"
check "show next fire times" 5 \
    "$(sed -n '/^next fire times/,/^$/p' <<<"$out" | grep -cE '^  [0-9]{4}-.*:[0-5][05]:00Z$')"
check_re "show last runs" "^last runs:" "$out"
run show nightly
check "show by name rc" 0 "$rc"
check_re "show by name id" "^id: +$id1$" "$out"
run show berlin
check "show next fire times in the zone" "2030-01-01T03:00:00+01:00" \
    "$(sed -n '/^next fire times (Europe\/Berlin)/{n;p}' <<<"$out" | tr -d ' ')"
run show poll --json
check "show --json" "$id2 poll" "$(jqout '"\(.id) \(.name)"')"

# ---- pause, resume ------------------------------------------------------
run pause nightly
check "pause rc" 0 "$rc"
check_re "pause prints" "^$id1  nightly  paused$" "$out"
run show nightly --json
check "paused state" "paused" "$(jqout .state)"
run ls --state paused
check "ls --state paused" "nightly" "$(tail -n +2 <<<"$out" | awk '{print $2}')"
run resume "$id1"
check "resume rc" 0 "$rc"
run show "$id1" --json
check "resumed state" "active" "$(jqout .state)"
run pause "$id2" --json
check "pause --json" "paused" "$(jqout .state)"

# ---- rm -----------------------------------------------------------------
run rm nightly
check "rm rc" 0 "$rc"
run show nightly
check "show after rm rc" 1 "$rc"
check_re "show after rm message" "^sked show: .*nightly.*\(not_found\)$" "$err"
check "show after rm stdout" "" "$out"
run rm nightly
check "rm again rc" 1 "$rc"
run ls --json
check "ls after rm" 3 "$(jqout '.tasks | length')"

# ---- errors from the server ---------------------------------------------
run add --cron '0 25 * * *' --shell 'echo hi'
check "bad cron rc" 1 "$rc"
check "bad cron message names schedule.cron" 'sked add: schedule.cron: field 2 (hour): 25 is out of range 0-23' "$err"
check "bad cron one line" 1 "$(lines "$err")"
run add --name poll --every 1m --shell true
check "name taken rc" 1 "$rc"
runenv SKED_TOKEN=not-a-token "$SKED" ls
check "wrong token rc" 1 "$rc"
check_re "wrong token message" '^sked ls: .*unauthenticated' "$err"
run trigger no-such-task
check "trigger unknown rc" 1 "$rc"
check_re "trigger unknown message" 'no-such-task' "$err"
run cancel no-such-run
check "cancel unknown rc" 1 "$rc"

# ---- usage errors: exit 2, nothing sent (no server, no token needed) -----
for args in "--shell true" \
            "--cron @daily --every 1m --shell true" \
            "--every 1m" \
            "--every 1m --shell true --http http://x" \
            "--every 1m --tz UTC --shell true" \
            "--every 1m --shell true --method GET" \
            "--every 1m --http http://x --env A=1" \
            "--every 1m --shell true --retry three" \
            "--every 1m --shell true --overlap never" \
            "--every 1m --shell true --label nokey" \
            "--every 1m --shell true --bogus" \
            "--every 1m --shell echo hi" \
            "--file $tmp/none.json --name x"; do
    # shellcheck disable=SC2086 # split on purpose
    runenv -u SKED_TOKEN SKED_URL=$closed "$SKED" add $args
    check "usage rc: add $args" 2 "$rc"
    check_re "usage message: add $args" '^sked add: .*\(see sked add --help\)$' "$err"
    check "usage message one line: add $args" 1 "$(lines "$err")"
done
run add --shell true
check_re "no schedule message" "no schedule" "$err"
runenv SKED_URL=$closed "$SKED" show
check "show without TASK rc" 2 "$rc"
runenv SKED_URL=$closed "$SKED" ls --limit x
check "ls bad limit rc" 2 "$rc"

# ---- --file ---------------------------------------------------------------
cat >"$tmp/task.json" <<'EOF'
{"name": "fromfile", "schedule": {"every": "1h"},
 "target": {"type": "shell", "command": "echo from file"}, "labels": {"src": "file"}}
EOF
run add --file "$tmp/task.json"
check "add --file rc" 0 "$rc"
check_re "add --file prints" '^[0-9a-f-]{36}  fromfile  next run ' "$out"
run show fromfile --json
check "add --file sent" "echo from file|file" "$(jqout '"\(.target.command)|\(.labels.src)"')"
out=$(sed 's/fromfile/fromstdin/' "$tmp/task.json" | "$SKED" add --file - --json 2>"$tmp/err"); rc=$?
check "add --file - rc" 0 "$rc"
check "add --file - sent" "fromstdin" "$(jqout .name)"
echo '{"name": ' >"$tmp/broken.json"
run add --file "$tmp/broken.json"
check "add --file broken JSON rc" 2 "$rc"
check_re "add --file broken JSON message" "broken\.json:[0-9]+:[0-9]+: " "$err"

# ---- idempotency ----------------------------------------------------------
run add --idempotency-key k1 --every 1h --shell true
first=${out%% *}
run add --idempotency-key k1 --every 1h --shell true
check "idempotent repeat rc" 0 "$rc"
check "idempotent repeat id" "$first" "${out%% *}"
run add --idempotency-key k1 --every 2h --shell true
check "idempotency conflict rc" 1 "$rc"

# ---- runs, workers ----------------------------------------------------------
run runs poll --json
check "runs TASK --json" "array" "$(jqout '.runs | type')"
run runs
check "runs rc" 0 "$rc"
check "runs header" "ID TASK SCHEDULED STATUS ATTEMPT RESULT DURATION" \
    "$(head -1 <<<"$out" | tr -s ' ')"
run workers --json
check "workers --json" "array" "$(jqout '.workers | type')"

# ---- token and address ------------------------------------------------------
# Without SKED_TOKEN the token file of ./sked-data is used.
out=$(cd "$tmp" && env -u SKED_TOKEN "$SKED" ls --json 2>"$tmp/err"); rc=$?
check "token from ./sked-data rc" 0 "$rc"
check "token from ./sked-data" 6 "$(jqout '.tasks | length')"
mkdir -p "$tmp/empty"
out=$(cd "$tmp/empty" && env -u SKED_TOKEN "$SKED" ls 2>"$tmp/err"); rc=$?; err=$(cat "$tmp/err")
check "no token rc" 1 "$rc"
check_re "no token message" '^sked ls: no token: set SKED_TOKEN' "$err"
runenv SKED_URL=$closed "$SKED" ls
check "no server rc" 1 "$rc"
check "no server message" "sked: cannot reach $closed (is sked server running?)" "$err"
runenv SKED_URL="$url/" "$SKED" ls
check "SKED_URL with a trailing slash" 0 "$rc"
# The default address, when nothing listens there.
if ! (exec 3<>/dev/tcp/127.0.0.1/7070) 2>/dev/null; then
    runenv -u SKED_URL "$SKED" ls
    check "default URL" "sked: cannot reach http://127.0.0.1:7070 (is sked server running?)" "$err"
fi

# ---- help -------------------------------------------------------------------
for c in add ls show rm pause resume trigger runs cancel workers; do
    run "$c" --help
    check "$c --help" "0 usage: sked $c" "$rc $(head -1 <<<"$out" | cut -d' ' -f1-3)"
done

summary
