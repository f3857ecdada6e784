#!/usr/bin/env bash
# A bounded load test: 1000 concurrent EST enrollments (RFC 7030 simpleenroll), each over a new
# mutual-TLS connection on loopback, authenticated with a bootstrap certificate. Every request
# must succeed, every certificate a client received must be in the store, and the service's peak
# RSS is printed. Concurrency is 1000, or as many as the open-file limit allows.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/serve.sh"

N=${TS_LOAD_ENROLLS:-1000}
LOAD="${TS_BUILD_DIR:-build}/bin/est_load"
[ -x "$LOAD" ] || fail "$LOAD is not built"

# Each connection is a descriptor in the client and one in the service: raise the soft limit (the
# service inherits it) and leave room for the rest.
hard=$(ulimit -Hn)
want=$((N + 256))
if [ "$hard" = unlimited ] || [ "$hard" -ge "$want" ]; then
    ulimit -n "$want"
else
    ulimit -n "$hard"
fi
limit=$(ulimit -n)
C=$N
[ "$C" -le $((limit - 128)) ] || C=$((limit - 128))
pass "open-file limit $limit: $C enrollments at once"

W=$TS_TEST_TMP
D=$W/inst
serve_init "$D"
serve_ca "$D"

# The bootstrap certificate every device presents (a factory certificate of the tenant).
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/boot.key" \
    -subj /CN=bootstrap-0001 -out "$W/boot.csr" 2>/dev/null
run_ok "issue the bootstrap certificate" "$TESSERA" cert issue --dir "$D" --csr "$W/boot.csr" \
    --profile device --out "$W/boot.pem"

# The service takes the connections as fast as its workers can; those waiting for their TLS
# handshake must not hit the default 10 s request timeout on a slow (sanitizer, shared CI) build.
serve_start "$D" --request-timeout 120
run_capture "$LOAD" --url "$SERVE_URL" --cacert "$D/ca-chain.pem" --mode enroll -n "$N" -c "$C" \
    --cert "$W/boot.pem" --key "$W/boot.key" --cn bootstrap-0001 --serials "$W/serials.txt" \
    --timeout 300
echo "$OUT"
[ "$RC" -eq 0 ] || fail "the load had errors (exit $RC)"
assert_match "$OUT" "^est_load enroll ok=$N errors=0 " "$N enrollments, 0 errors"
# The closing line ends with the load generator's own CPU seconds (bench/ reads it).
cpu=$(sed -n 's/^est_load enroll .* rate=[0-9.]* cpu=\([0-9]*\.[0-9]*\)$/\1/p' <<<"$OUT")
[ -n "$cpu" ] || fail "no cpu= at the end of the closing line"
awk -v c="$cpu" 'BEGIN { exit !(c > 0) }' || fail "cpu=$cpu for $N TLS enrollments"
pass "the load generator's CPU time is given: ${cpu}s"
grep -q 'not complete within' "$SERVE_LOG" && fail "the service timed connections out: $(cat "$SERVE_LOG")"
pass "no connection timed out"

peak=$(sed -n 's/^VmHWM:[[:space:]]*//p' "/proc/$SERVE_PID/status")
echo "service peak RSS (VmHWM): $peak"
[ -n "$peak" ] || fail "no VmHWM for the service"
pass "service peak RSS printed: $peak"

assert_eq "$(wc -l <"$W/serials.txt")" "$N" "a serial for every certificate received"
assert_eq "$(sort -u "$W/serials.txt" | wc -l)" "$N" "no serial twice"
serve_stop
assert_eq "$SERVE_STATUS" 0 "the service stops cleanly"

run_ok "cert list" "$TESSERA" cert list --dir "$D"
printf '%s\n' "$OUT" | cut -f1 | sort -u >"$W/stored.txt"
sort -u "$W/serials.txt" >"$W/received.txt"
missing=$(comm -23 "$W/received.txt" "$W/stored.txt" | wc -l)
assert_eq "$missing" 0 "every certificate received is in the store"
run_ok "the audit log verifies" "$TESSERA" audit verify --dir "$D"
finish
