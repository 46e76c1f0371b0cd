#!/usr/bin/env bash
# tests/cli/cron_cli.sh - `sked cron next|explain`, `sked --help|--version`
# through the real binary: output format, exit codes, one-line errors that
# name the field.  Expected values are worked out by hand (see comments).
set -u
SKED=${SKED:-bin/sked}
pass=0 fail=0

check() { # name, expected, actual
    if [ "$2" == "$3" ]; then pass=$((pass + 1)); else
        fail=$((fail + 1)); printf 'FAIL %s\n  want: %q\n  got:  %q\n' "$1" "$2" "$3"; fi
}
run() { out=$("$SKED" "$@" 2>/tmp/sked-cli-err.$$); rc=$?; err=$(cat /tmp/sked-cli-err.$$); }

# New York, 2021-03-14: 02:30 is skipped, a fixed-time schedule fires at 03:00 EDT.
run cron next --tz America/New_York --from 2021-03-13T00:00:00-05:00 -n 3 '30 2 * * *'
check "spring gap" $'2021-03-13T02:30:00-05:00\n2021-03-14T03:00:00-04:00\n2021-03-15T02:30:00-04:00' "$out"
check "spring gap rc" 0 "$rc"

# --from with another offset; expression given as several arguments.
run cron next --tz Europe/Berlin --from=2026-03-29T00:30:00Z -n 2 -- 0 3 '*' '*' '*'
check "joined args" $'2026-03-29T03:00:00+02:00\n2026-03-30T03:00:00+02:00' "$out"

# UTC prints Z; the default count is 5.
run cron next --from 2026-01-01T00:00:00Z '0 0 1 * *'
check "utc default n" $'2026-02-01T00:00:00Z\n2026-03-01T00:00:00Z\n2026-04-01T00:00:00Z\n2026-05-01T00:00:00Z\n2026-06-01T00:00:00Z' "$out"

# Strictly after --from.
run cron next --from 2026-01-01T00:00:00Z -n 1 '0 0 * * *'
check "strictly after" "2026-01-02T00:00:00Z" "$out"

# Errors: one line naming the field, exit 2, nothing on stdout.
run cron next '0 25 * * *'
check "bad hour rc" 2 "$rc"
check "bad hour msg" "sked cron next: field 2 (hour): 25 is out of range 0-23" "$err"
check "bad hour stdout" "" "$out"
run cron next --tz Mars/Olympus '* * * * *'
check "bad zone rc" 2 "$rc"
check "bad zone msg" 'sked cron next: --tz: unknown zone "Mars/Olympus"' "$err"
run cron next --from 2026-13-01T00:00:00Z '* * * * *'
check "bad from rc" 2 "$rc"
run cron next -n 0 '* * * * *'
check "bad n rc" 2 "$rc"
run cron next --from 2026-01-01T00:00:00Z '0 0 30 2 *'
check "never rc" 2 "$rc"
check "never msg" "sked cron next: the expression never fires (no occurrence within 400 years)" "$err"
run cron next
check "missing expr rc" 2 "$rc"
run cron next --bogus '* * * * *'
check "unknown option rc" 2 "$rc"
run cron bogus
check "unknown cron command rc" 2 "$rc"
run bogus
check "unknown command rc" 2 "$rc"

# Help and version.
run --version
check "version" 0 "$rc"
case $out in "sked "[0-9]*) pass=$((pass + 1));; *) fail=$((fail + 1)); echo "FAIL version text: $out";; esac
for c in "--help" "cron --help" "cron next --help" "cron explain --help"; do
    run $c
    check "help $c rc" 0 "$rc"
    case $out in usage:*) pass=$((pass + 1));; *) fail=$((fail + 1)); echo "FAIL help $c: $out";; esac
done

# explain
run cron explain '30 9 * * MON-FRI'
check "explain" "at 09:30, on Mon-Fri" "$out"
run cron explain '61 * * * *'
check "explain bad rc" 2 "$rc"

rm -f /tmp/sked-cli-err.$$
echo "cron_cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
