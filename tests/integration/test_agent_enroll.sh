#!/usr/bin/env bash
# The device agent's identity and EST enrollment against a running `tessera serve`: the identity
# key in a SoftHSM2 token, a claim code injected and used by `tessera-agent enroll`, the
# certificate seen by the service (device show, cert list) and by `openssl verify`, a forced
# re-enrollment over mutual TLS (a renewal), refusals that leave the identity intact (a spent
# claim code, a wrong --trust), and kill -9 during re-enrollment. docs/agent.md describes it.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/serve.sh"

AGENT="${TS_BUILD_DIR:-build}/bin/tessera-agent"
DIR=$TS_TEST_TMP/ca
WORK=$TS_TEST_TMP/work
STATE=$TS_TEST_TMP/state
mkdir -p "$WORK"
export TESSERA_DIR=$DIR
[ -x "$AGENT" ] || fail "no $AGENT: build the tessera-agent target"

serve_init "$DIR"
serve_start "$DIR" || fail "tessera serve did not start"
ROOT=$DIR/root.pem

softhsm_setup
MODULE=$(softhsm_module)
KS="pkcs11:token=device?module-path=$MODULE&pin-value=4321"
run_ok "a device token" "$TESSERA" keystore init --keystore "$KS" --so-pin device-so-1234

# agent CMD [options...]: tessera-agent with this device's key store and state.
agent() {
    local cmd=$1
    shift
    "$AGENT" "$cmd" --keystore "$KS" --state "$STATE" "$@"
}
# A certificate as PEM from the key store.
ks_get() {
    "$TESSERA" keystore get --keystore "$KS" --label "$1"
}
field() {
    sed -n "s/^$1: *//p" <<<"$2"
}

# --- usage ---------------------------------------------------------------------------------------
expect_status 2 "no command: usage" "$AGENT"
expect_status 2 "missing --state: usage" "$AGENT" init --keystore "$KS"
assert_match "$ERR" 'needs --state DIR' "...saying which option"
expect_status 2 "enroll without --server: usage" "$AGENT" enroll --keystore "$KS" --state "$STATE" \
    --trust "$ROOT"
expect_status 2 "an unknown command: usage" "$AGENT" frobnicate --keystore "$KS" --state "$STATE"

# --- init ----------------------------------------------------------------------------------------
run_ok "init makes the identity key" agent init
UID_=$OUT
assert_match "$UID_" '^[0-9a-f]{32}$' "the UID is 32 hex digits"
run_ok "init again" agent init
assert_eq "$OUT" "$UID_" "init is idempotent: same UID"
assert_match "$ERR" 'exist already' "...and says so"
run_ok "the key is in the token" "$TESSERA" keystore list --keystore "$KS"
assert_match "$OUT" 'identity' "keystore list shows the identity key"
expect_status 1 "status before enrollment fails" agent status
assert_match "$ERR" 'not enrolled' "...saying not enrolled"

# --- claim codes -----------------------------------------------------------------------------------
expect_status 1 "enroll without a claim code" agent enroll --server "$SERVE_URL" --trust "$ROOT"
assert_match "$ERR" 'no claim code is stored' "...says what is missing"
CODE=$("$TESSERA" claim create | tail -n1)
printf '%s\n' "$CODE" >"$WORK/code"
printf 'TSC bad code!\n' >"$WORK/badcode"
expect_status 1 "a malformed claim code is refused" agent claim inject "$WORK/badcode"
assert_match "$ERR" 'outside \[A-Za-z0-9-\]' "...naming the rule"
assert_no_string "$ERR" "bad code" "...without echoing the code"
run_ok "claim inject" agent claim inject "$WORK/code"
expect_status 1 "a second inject is refused" agent claim inject "$WORK/code"
assert_match "$ERR" 'already stored' "...saying one is stored"
run_ok "claim delete" agent claim delete
expect_status 1 "delete with none stored" agent claim delete
assert_match "$ERR" 'no claim code' "...saying so"
run_ok "claim inject again" agent claim inject "$WORK/code"

# --- wrong trust: refused before anything is sent --------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/other.key" \
    -subj /CN=Other -days 1 -out "$WORK/other.pem" 2>/dev/null
expect_status 1 "enroll with a wrong --trust is refused" \
    agent enroll --server "$SERVE_URL" --trust "$WORK/other.pem"
assert_match "$ERR" 'not trusted' "...the service is not trusted"
printf 'not a certificate\n' >"$WORK/junk.pem"
expect_status 1 "a trust file with no certificate" \
    agent enroll --server "$SERVE_URL" --trust "$WORK/junk.pem"
assert_match "$ERR" 'no PEM certificate' "...saying so"
run_capture agent status
assert_match "$OUT" 'claim code: stored' "the claim code is still stored"

# --- enrollment by claim code ---------------------------------------------------------------------
run_ok "enroll by claim code" agent enroll --server "$SERVE_URL" --trust "$ROOT"
assert_match "$OUT" '^enrolled' "enroll says so"
assert_match "$OUT" 'generation: 1' "generation 1"
assert_match "$OUT" 'trust: *verified' "the chain verifies"
SERIAL1=$(field serial "$OUT")
run_ok "status" agent status --trust "$ROOT"
assert_match "$OUT" "subject: .*CN=$UID_" "the certificate names the UID"
assert_match "$OUT" 'claim code: none' "the spent claim code was deleted"
run_ok "tessera device show" "$TESSERA" device show "$UID_"
assert_match "$OUT" "uid: *$UID_" "the service knows the device"
assert_match "$OUT" 'status: *enabled' "...enabled"
run_ok "tessera cert list" "$TESSERA" cert list
assert_match "$OUT" "$UID_" "the certificate is listed for the device"
ks_get identity.cert.1 >"$WORK/cert1.pem"
ks_get identity.chain.1 >"$WORK/chain1.pem"
run_ok "openssl verify of the stored certificate" openssl verify -CAfile "$ROOT" \
    -untrusted "$WORK/chain1.pem" "$WORK/cert1.pem"
assert_eq "$(openssl x509 -in "$WORK/cert1.pem" -noout -serial | cut -d= -f2 | tr A-F a-f)" \
    "$SERIAL1" "status shows the stored certificate's serial"
"$TESSERA" keystore get --keystore "$KS" --label identity >/dev/null 2>&1 &&
    fail "the key must not be readable as an object"
pass "the identity key is not readable as data"

# --- a spent claim code: refused, identity intact --------------------------------------------------
run_ok "inject the spent code" agent claim inject "$WORK/code"
expect_status 1 "enroll with a spent claim code is refused" \
    agent enroll --server "$SERVE_URL" --trust "$ROOT"
assert_match "$ERR" 'HTTP 401.*claim code not accepted' "...with the service's words"
run_ok "status after the refusal" agent status --trust "$ROOT"
assert_eq "$(field serial "$OUT")" "$SERIAL1" "the old identity is intact"
assert_match "$OUT" 'trust: *verified' "...and verifies"
run_ok "remove the spent code" agent claim delete

# --- re-enrollment: a renewal over mutual TLS -------------------------------------------------------
run_ok "reenroll when not due" agent reenroll --server "$SERVE_URL" --trust "$ROOT"
assert_match "$OUT" 'not due' "reenroll waits for the threshold"
expect_status 1 "reenroll with a wrong --trust" \
    agent reenroll --force --server "$SERVE_URL" --trust "$WORK/other.pem"
run_ok "reenroll --force" agent reenroll --force --server "$SERVE_URL" --trust "$ROOT"
assert_match "$OUT" 'generation: 2' "generation 2"
SERIAL2=$(field serial "$OUT")
[ "$SERIAL2" != "$SERIAL1" ] || fail "re-enrollment kept the serial"
pass "re-enrollment gave a new serial"
run_ok "reenroll with a long threshold" agent reenroll --threshold-days 3650 \
    --server "$SERVE_URL" --trust "$ROOT"
assert_match "$OUT" 'generation: 3' "a threshold beyond the expiry makes it due"
SERIAL3=$(field serial "$OUT")
run_ok "cert list after renewals" "$TESSERA" cert list
for s in "$SERIAL1" "$SERIAL2" "$SERIAL3"; do
    assert_match "$(tr A-F a-f <<<"$OUT")" "$s[[:space:]]+valid" "renewal: $s stays valid"
done
run_ok "the token holds only the current generation" "$TESSERA" keystore list --keystore "$KS"
assert_no_match "$OUT" 'identity\.cert\.[12]\b' "older certificates were swept"

# --- enrollment by a client certificate (a factory certificate, or any earlier one of the device) --
ks_get identity.cert.3 >"$WORK/factory.pem"
ks_get identity.chain.3 >>"$WORK/factory.pem"
run_ok "enroll by a client certificate over mutual TLS" agent enroll --server "$SERVE_URL" \
    --trust "$ROOT" --factory-cert "$WORK/factory.pem"
assert_match "$OUT" 'generation: 4' "generation 4"
printf 'junk\n' >"$WORK/nofactory.pem"
expect_status 1 "a factory certificate file without a certificate" agent enroll \
    --server "$SERVE_URL" --trust "$ROOT" --factory-cert "$WORK/nofactory.pem"
assert_match "$ERR" 'factory certificate' "...naming it"

# --- kill -9 during re-enrollment: a working identity every time ------------------------------------
# On a soft: key store, whose writes are the project's own (atomic, fsynced): a kill in the middle
# of a SoftHSM2 token write is the token's own durability, not the agent's.
SKS="soft:$TS_TEST_TMP/softdev?pin-value=4321"
SSTATE=$TS_TEST_TMP/softstate
run_ok "a soft: device store" "$TESSERA" keystore init --keystore "$SKS" --so-pin device-so-1234
sagent() {
    local cmd=$1
    shift
    "$AGENT" "$cmd" --keystore "$SKS" --state "$SSTATE" "$@"
}
run_ok "soft device: init" sagent init
"$TESSERA" claim create | tail -n1 >"$WORK/code2"
run_ok "soft device: claim inject" sagent claim inject "$WORK/code2"
run_ok "soft device: enroll" sagent enroll --server "$SERVE_URL" --trust "$ROOT"
# 200 trials (40 on a sanitizer build, which is several times slower), each killed at a random
# moment within the time a re-enrollment takes; some land before anything is written, some in the
# middle, some after the switch: the generation tells which.
trials=200
[ "${TS_SANITIZE:-0}" != 1 ] || trials=40
run_capture sagent status --trust "$ROOT"
gen_before=$(field generation "$OUT")
start=$(date +%s%N)
run_ok "one re-enrollment, timed" sagent reenroll --force --server "$SERVE_URL" --trust "$ROOT"
span_ms=$((($(date +%s%N) - start) / 1000000 + 50))
new_gen=0
for i in $(seq 1 "$trials"); do
    "$AGENT" reenroll --force --keystore "$SKS" --state "$SSTATE" --server "$SERVE_URL" \
        --trust "$ROOT" >/dev/null 2>&1 &
    pid=$!
    ms=$((RANDOM % span_ms))
    sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    run_capture sagent status --trust "$ROOT"
    [ "$RC" -eq 0 ] || fail "after kill -9 #$i (at $ms ms) the identity is broken"
    [[ "$OUT" =~ trust:\ *verified ]] || fail "after kill -9 #$i (at $ms ms) the identity does not verify"
    gen=$(field generation "$OUT")
    [ "$gen" = "$gen_before" ] || new_gen=$((new_gen + 1))
    gen_before=$gen
done
pass "$trials kills during re-enrollment: a verified identity after each ($new_gen switched)"
run_ok "reenroll after the kills" sagent reenroll --force --server "$SERVE_URL" --trust "$ROOT"
run_ok "status after the kills" sagent status --trust "$ROOT"
GEN=$(field generation "$OUT")
"$TESSERA" keystore get --keystore "$SKS" --label "identity.cert.$GEN" >"$WORK/last.pem"
"$TESSERA" keystore get --keystore "$SKS" --label "identity.chain.$GEN" >"$WORK/lastchain.pem"
run_ok "openssl verify of the last certificate" openssl verify -CAfile "$ROOT" \
    -untrusted "$WORK/lastchain.pem" "$WORK/last.pem"

serve_stop
finish
