# Helpers for integration tests that run `tessera serve` (source after lib.sh).
#
#   serve_init DIR [tessera init options...]   an instance in DIR with a soft: key store (fast);
#                                              sets ADMIN_TOKEN from init's "admin token:" line
#   serve_start DIR [tessera serve options...] starts the service on a free loopback port and
#                                              waits until it listens; sets SERVE_PID, SERVE_URL
#                                              (https://127.0.0.1:PORT), SERVE_HTTP_URL when
#                                              --http-listen was given, SERVE_LOG
#   serve_stop                                 SIGTERM, and waits for the exit (status in
#                                              SERVE_STATUS)
#   serve_ca DIR                               writes DIR/ca-chain.pem (root) for curl --cacert
#
# The service is stopped by the EXIT trap if the test ends early.

if [ -n "${TS_SERVE_SOURCED:-}" ]; then
    return 0
fi
TS_SERVE_SOURCED=1

SERVE_PID=""
SERVE_URL=""
SERVE_HTTP_URL=""
SERVE_LOG=""
SERVE_STATUS=0
ADMIN_TOKEN=""

serve_init() {
    local dir=$1
    shift
    local out
    out=$("$TESSERA" init --dir "$dir" --keystore "soft:$dir/ks?pin-value=1234" --operator test \
        --url https://127.0.0.1 "$@" 2>&1) || fail "tessera init failed: $out"
    ADMIN_TOKEN=$(printf '%s\n' "$out" | sed -n 's/^admin token: *//p' | tail -n1)
    [ -n "$ADMIN_TOKEN" ] || fail "tessera init printed no admin token: $out"
    "$TESSERA" ca show --dir "$dir" --root >"$dir/root.pem" || fail "ca show --root failed"
}

serve_ca() {
    "$TESSERA" ca show --dir "$1" --root >"$1/ca-chain.pem"
}

_serve_kill_on_exit() {
    if [ -n "$SERVE_PID" ] && kill -0 "$SERVE_PID" 2>/dev/null; then
        kill -TERM "$SERVE_PID" 2>/dev/null || true
        sleep 1
        kill -KILL "$SERVE_PID" 2>/dev/null || true
    fi
}

serve_start() {
    local dir=$1 i line
    shift
    SERVE_LOG="$TS_TEST_TMP/serve.$$.$RANDOM.log"
    : >"$SERVE_LOG"
    "$TESSERA" serve --dir "$dir" --listen 127.0.0.1:0 "$@" >"$SERVE_LOG" 2>&1 &
    SERVE_PID=$!
    on_exit _serve_kill_on_exit
    for i in $(seq 1 300); do
        line=$(sed -n 's/^listening https \(.*\)$/\1/p' "$SERVE_LOG" | head -n1)
        if [ -n "$line" ]; then
            SERVE_URL="https://$line"
            line=$(sed -n 's/^listening http \(.*\)$/\1/p' "$SERVE_LOG" | head -n1)
            [ -z "$line" ] || SERVE_HTTP_URL="http://$line"
            return 0
        fi
        kill -0 "$SERVE_PID" 2>/dev/null || fail "tessera serve exited: $(cat "$SERVE_LOG")"
        sleep 0.1
    done
    fail "tessera serve did not start listening within 30 s: $(cat "$SERVE_LOG")"
}

serve_stop() {
    [ -n "$SERVE_PID" ] || return 0
    kill -TERM "$SERVE_PID" 2>/dev/null || true
    SERVE_STATUS=0
    wait "$SERVE_PID" || SERVE_STATUS=$?
    SERVE_PID=""
}
