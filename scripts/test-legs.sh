#!/usr/bin/env bash
# `make test`: the SQLite and PostgreSQL legs of the suite side by side (about half the
# time on two cores). Each leg runs `make test-<leg>` in a session of its own, its output in
# a file shown whole when the leg ends, and writes its own exit status to a file: the
# outcome is read from those files, not from wait(2), so a lost child status cannot fail
# the run or hang it. When both legs have ended, or after CUSTOS_TEST_DEADLINE seconds
# (3000 by default), whatever is left of a leg's session (a server a test started, say) is
# stopped, so nothing outlives the run holding its output open.
set -uo pipefail
cd "$(dirname "$0")/.."

deadline="${CUSTOS_TEST_DEADLINE:-3000}"
legs=(sqlite postgres)
out="$(mktemp -d)"

stop_sessions() {
    for leg in "${legs[@]}"; do
        [ -s "$out/$leg.sid" ] && kill -TERM -- "-$(cat "$out/$leg.sid")" 2>/dev/null
    done
    sleep 1
    for leg in "${legs[@]}"; do
        [ -s "$out/$leg.sid" ] && kill -KILL -- "-$(cat "$out/$leg.sid")" 2>/dev/null
    done
    wait 2>/dev/null
}
trap 'stop_sessions; rm -rf "$out"; exit 130' INT TERM

echo "== the SQLite and PostgreSQL legs side by side; each one's output when it ends"
for leg in "${legs[@]}"; do
    setsid bash -c 'echo $$ > "$2/$1.sid"
        make --no-print-directory "test-$1" > "$2/$1.log" 2>&1 < /dev/null
        echo $? > "$2/$1.rc.tmp" && mv "$2/$1.rc.tmp" "$2/$1.rc"' _ "$leg" "$out" &
done

shown=()
start=$SECONDS
while [ "${#shown[@]}" -lt "${#legs[@]}" ]; do
    for leg in "${legs[@]}"; do
        if [ -e "$out/$leg.rc" ] && [[ " ${shown[*]} " != *" $leg "* ]]; then
            cat "$out/$leg.log"
            echo "== the $leg leg ended with status $(cat "$out/$leg.rc")"
            shown+=("$leg")
        fi
    done
    if [ "${#shown[@]}" -lt "${#legs[@]}" ] && (( SECONDS - start > deadline )); then
        for leg in "${legs[@]}"; do
            if [[ " ${shown[*]} " != *" $leg "* ]]; then
                tail -n 200 "$out/$leg.log" 2>/dev/null
                echo "== the $leg leg did not end within ${deadline} s: stopped"
            fi
        done
        break
    fi
    sleep 2
done

stop_sessions
status=0
for leg in "${legs[@]}"; do
    [ "$(cat "$out/$leg.rc" 2>/dev/null)" = 0 ] || status=1
done
rm -rf "$out"
exit "$status"
