#!/usr/bin/env bash
# kill -9 of the service under a load of EST enrollments, then a restart, a few times over: every
# certificate a client RECEIVED before the kill is in the store (an enrollment is answered only
# after its durable commit), the service starts again on the same instance, and `tessera audit
# verify` passes at the end.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/serve.sh"

ROUNDS=${TS_KILL_ROUNDS:-3}
LOAD="${TS_BUILD_DIR:-build}/bin/est_load"
[ -x "$LOAD" ] || fail "$LOAD is not built"

W=$TS_TEST_TMP
D=$W/inst
serve_init "$D"
serve_ca "$D"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/boot.key" \
    -subj /CN=bootstrap-kill -out "$W/boot.csr" 2>/dev/null
run_ok "issue the bootstrap certificate" "$TESSERA" cert issue --dir "$D" --csr "$W/boot.csr" \
    --profile device --out "$W/boot.pem"

# lines FILE: how many lines FILE has (0 when missing).
lines() {
    if [ -e "$1" ]; then wc -l <"$1"; else echo 0; fi
}

for round in $(seq 1 "$ROUNDS"); do
    serve_start "$D"
    serials="$W/serials.$round"
    "$LOAD" --url "$SERVE_URL" --cacert "$D/ca-chain.pem" --mode enroll -n 5000 -c 32 \
        --cert "$W/boot.pem" --key "$W/boot.key" --cn bootstrap-kill --serials "$serials" \
        --timeout 20 >"$W/load.$round.out" 2>&1 &
    load_pid=$!
    on_exit kill -KILL "$load_pid"
    # Kill once enrollments are flowing: after at least 20 certificates were received.
    for _ in $(seq 1 300); do
        [ "$(lines "$serials")" -lt 20 ] || break
        kill -0 "$load_pid" 2>/dev/null || break
        sleep 0.1
    done
    [ "$(lines "$serials")" -ge 20 ] ||
        fail "round $round: no enrollments flowing: $(cat "$W/load.$round.out") $(cat "$SERVE_LOG")"
    kill -KILL "$SERVE_PID"
    wait "$SERVE_PID" 2>/dev/null || true
    SERVE_PID=""
    wait "$load_pid" || true
    received=$(lines "$serials")
    assert_match "$(cat "$W/load.$round.out")" 'errors=[1-9]' \
        "round $round: the kill cut enrollments short ($received received)"
    [ "$received" -lt 5000 ] || fail "round $round: the load finished before the kill"

    # Every received certificate is in the store, even though the service died mid-load.
    run_ok "round $round: cert list after kill -9" "$TESSERA" cert list --dir "$D"
    printf '%s\n' "$OUT" | cut -f1 | sort -u >"$W/stored.txt"
    sort -u "$serials" >"$W/received.txt"
    assert_eq "$(comm -23 "$W/received.txt" "$W/stored.txt" | wc -l)" 0 \
        "round $round: all $received received certificates are stored"
done

# After the last kill the service starts again and enrolls without errors.
serve_start "$D"
run_ok "enrollments after the restarts" "$LOAD" --url "$SERVE_URL" --cacert "$D/ca-chain.pem" \
    --mode enroll -n 50 -c 10 --cert "$W/boot.pem" --key "$W/boot.key" --cn bootstrap-kill \
    --serials "$W/serials.after"
assert_match "$OUT" '^est_load enroll ok=50 errors=0 ' "50 enrollments, 0 errors"
serve_stop
assert_eq "$SERVE_STATUS" 0 "the service stops cleanly"

cat "$W"/serials.* | sort >"$W/all.txt"
assert_eq "$(uniq -d "$W/all.txt" | wc -l)" 0 "no serial was handed out twice"
run_ok "cert list" "$TESSERA" cert list --dir "$D"
printf '%s\n' "$OUT" | cut -f1 | sort -u >"$W/stored.txt"
assert_eq "$(comm -23 "$W/all.txt" "$W/stored.txt" | wc -l)" 0 \
    "every certificate received in any round is stored"
run_ok "the audit log verifies after the kills" "$TESSERA" audit verify --dir "$D"
assert_match "$OUT" 'intact' "audit verify says intact"
finish
