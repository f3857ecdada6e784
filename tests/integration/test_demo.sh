#!/usr/bin/env bash
# `tessera demo`, the README's main job (docs/demo.md): the whole device-to-cloud walk with two
# devices must end with both enrolled, telemetry received from each, the signed command
# answered, the revoked device kicked and refused; no process it started may survive and its
# temporary directory must be gone. A broken step (a broker that exits, a missing plugin) and an
# interrupt must name the step, stop everything and clean up.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

AGENT="${TS_BUILD_DIR:-build}/bin/tessera-agent"
PLUGIN="${TS_BUILD_DIR:-build}/lib/tessera_mosquitto.so"
[ -x "$AGENT" ] || fail "no $AGENT: build the tessera-agent target"
[ -x /usr/sbin/mosquitto ] || fail "no /usr/sbin/mosquitto: install mosquitto"

# A private TMPDIR, so whatever the demo leaves behind is seen.
DEMO_TMP=$TS_TEST_TMP/tmp
mkdir -p "$DEMO_TMP"

# A sanitized plugin in the unsanitized broker: the sanitizer runtimes must load first.
if [ "${TS_SANITIZE:-0}" = 1 ] || [ "${TS_SANITIZE:-}" = ON ]; then
    printf '#!/bin/sh\nLD_PRELOAD="%s:%s" ASAN_OPTIONS=detect_leaks=0 exec /usr/sbin/mosquitto "$@"\n' \
        "$(gcc -print-file-name=libasan.so)" "$(gcc -print-file-name=libubsan.so)" \
        >"$TS_TEST_TMP/mosquitto-sanitized"
    chmod 700 "$TS_TEST_TMP/mosquitto-sanitized"
    export TS_DEMO_MOSQUITTO=$TS_TEST_TMP/mosquitto-sanitized
fi

# workdir_of OUTPUT: the work directory the demo announced.
workdir_of() {
    sed -n 's/^Working in \(.*\) (\(removed\|kept\) at the end)\.$/\1/p' <<<"$1" | head -n1
}

# left_behind DIR: the processes whose command line names DIR (every child of the demo does).
left_behind() {
    pgrep -f -a -- "$1" || true
}

# assert_clean OUTPUT WHAT: nothing of that run is left, process or file.
assert_clean() {
    local work
    work=$(workdir_of "$1")
    [ -n "$work" ] || fail "$2: the demo did not say where it worked"
    case $work in "$DEMO_TMP"/tessera-demo-*) ;; *) fail "$2: worked in $work, not under TMPDIR" ;; esac
    assert_eq "$(left_behind "$work")" "" "$2: no process it started survives"
    [ ! -e "$work" ] || fail "$2: $work is still there"
    assert_eq "$(find "$DEMO_TMP" -mindepth 1 | wc -l)" 0 "$2: its temporary directory is gone"
}

# --- usage ---------------------------------------------------------------------------------------
for bad in 0 51 x -1 ''; do
    expect_status 2 "--devices '$bad' is refused" "$TESSERA" demo --devices "$bad"
done
run_capture "$TESSERA" demo --devices 0
assert_match "$ERR" '--devices must be a number from 1 to 50' "...naming the range"
expect_status 2 "--soft without --keystore" "$TESSERA" demo --soft
expect_status 2 "--keystore with --devices" "$TESSERA" demo --keystore --devices 2
run_ok "demo --help" "$TESSERA" demo --help
assert_match "$OUT" '--devices N' "demo --help: --devices"
assert_match "$OUT" 'TS_DEMO_MOSQUITTO' "demo --help: the broker override"
assert_eq "$(find "$DEMO_TMP" -mindepth 1 | wc -l)" 0 "usage errors make nothing"

# --- the whole walk with two devices -------------------------------------------------------------
run_ok "tessera demo --devices 2" env TMPDIR="$DEMO_TMP" "$TESSERA" demo --devices 2
for step in 1 2 3 4 5 6 7 8 9 10; do
    assert_match "$OUT" "^\[$step/10\] " "progress: step $step"
done
assert_match "$OUT" '^ +dev-1 +uid [0-9a-f]{32} +certificate [0-9a-f]+$' "dev-1 enrolled"
assert_match "$OUT" '^ +dev-2 +uid [0-9a-f]{32} +certificate [0-9a-f]+$' "dev-2 enrolled"
assert_match "$OUT" '^ +dev-1 +-> .*/telemetry ' "dev-1's telemetry shown arriving"
assert_match "$OUT" '^ +dev-2 +-> .*/telemetry ' "dev-2's telemetry shown arriving"
assert_match "$OUT" '^ +sent +ping to dev-1, .*command [^ ]+ seq [0-9]+' "the command is sent"
assert_match "$OUT" '^ +answer +done: ' "the command is answered"
assert_match "$OUT" '^ +kicked +after [0-9.]+ s, the agent says "disconnected' "dev-2 kicked"
assert_match "$OUT" '^ +refused +on reconnect, the agent says "refused by broker' \
    "dev-2 refused on reconnect"
assert_match "$OUT" '^ +others +the other 1 device keep publishing' "dev-1 keeps publishing"
# The summary: device, uid, serial, messages, state.
row1=$(grep -E '^  dev-1 ' <<<"$OUT" | tail -n1)
row2=$(grep -E '^  dev-2 ' <<<"$OUT" | tail -n1)
assert_match "$row1" '^  dev-1 +[0-9a-f]{32} +[0-9a-f]+ +[1-9][0-9]* +online, answered ping$' \
    "summary: dev-1 online with messages, the command answered"
assert_match "$row2" \
    '^  dev-2 +[0-9a-f]{32} +[0-9a-f]+ +[1-9][0-9]* +revoked: kicked, refused on reconnect$' \
    "summary: dev-2 with messages, revoked, kicked and refused"
serial2=$(awk '{print $3}' <<<"$row2")
assert_match "$OUT" "^ +revoked +dev-2's certificate $serial2 " "the revoked serial is dev-2's"
assert_match "$OUT" '2 of 2 devices enrolled, [1-9][0-9]* telemetry messages received, 1 command answered, 1 revoked device refused' \
    "summary: the totals"
assert_match "$OUT" '^Done in [0-9.]+ s\.$' "the demo ends with Done"
assert_no_match "$OUT$ERR" 'pin-value|tsk_' "no PIN or token is printed"
assert_clean "$OUT" "a full run"

# --- a broken step: the broker exits at once -----------------------------------------------------
expect_status 1 "a broker that exits fails the demo" \
    env TMPDIR="$DEMO_TMP" TS_DEMO_MOSQUITTO=/bin/false "$TESSERA" demo --devices 1
assert_match "$ERR" \
    '^tessera: demo: step 5 \(Starting Mosquitto with the Tessera plugin\) failed: /bin/false exited with status 1 before listening' \
    "...naming the step and why"
assert_match "$OUT" 'stopped at step 5 of 10' "...and where it stopped"
assert_no_match "$OUT" '^Summary' "...without a summary"
assert_clean "$OUT" "a failed broker"

# --- a missing part: the plugin is not beside the programs ----------------------------------------
TREE=$TS_TEST_TMP/tree
mkdir -p "$TREE/bin"
cp "$TESSERA" "$AGENT" "$TREE/bin/"
expect_status 1 "no plugin fails the demo" env TMPDIR="$DEMO_TMP" "$TREE/bin/tessera" demo \
    --devices 1
assert_match "$ERR" \
    "step 5 \(Starting Mosquitto with the Tessera plugin\) failed: unavailable: the broker plugin $TREE/lib/tessera_mosquitto.so is not built" \
    "...naming the missing plugin"
assert_clean "$OUT" "a missing plugin"

# --- Ctrl-C: everything stopped, the directory removed --------------------------------------------
env TMPDIR="$DEMO_TMP" "$TESSERA" demo --devices 1 >"$TS_TEST_TMP/int.out" \
    2>"$TS_TEST_TMP/int.err" </dev/null &
demo_pid=$!
on_exit kill -KILL "$demo_pid"
for _ in $(seq 1 600); do
    grep -q '^\[8/10\]' "$TS_TEST_TMP/int.out" && break
    kill -0 "$demo_pid" 2>/dev/null || break
    sleep 0.1
done
grep -q '^\[8/10\]' "$TS_TEST_TMP/int.out" || fail "the demo did not reach step 8: $(cat \
    "$TS_TEST_TMP/int.out" "$TS_TEST_TMP/int.err")"
sleep 1 # the agent and every server are running now
kill -INT "$demo_pid"
RC=0
wait "$demo_pid" || RC=$?
OUT=$(cat "$TS_TEST_TMP/int.out")
ERR=$(cat "$TS_TEST_TMP/int.err")
assert_eq "$RC" 130 "an interrupted demo exits 130"
assert_match "$OUT" '^Interrupted at step [0-9]+ of 10' "...saying where"
assert_match "$OUT" 'stopped [0-9]+ process' "...and that it stopped its processes"
assert_clean "$OUT" "an interrupted run"

finish
