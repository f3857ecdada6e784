#!/usr/bin/env bash
# The device agent against a `tessera serve` whose tenant "acme" has a device profile that demands
# proof of possession (docs/est.md): enrollment by claim code and by a client certificate, and
# re-enrollment, each carrying the TLS channel binding of the connection that fetched csrattrs;
# `reenroll --rekey` (a new key in the SoftHSM2 token under identity.key.N, the old one deleted
# after the switch, the old certificate revoked by the service); failures that leave the old
# identity and no half-made key; the service URL and trust roots taken from the datastore. A
# small TLS 1.2 EST stand-in (Python's ssl) checks the tls-unique encoding and a service that
# closes the connection after csrattrs. docs/agent.md describes it.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/serve.sh"

BIN="${TS_BUILD_DIR:-build}/bin"
AGENT="$BIN/tessera-agent"
DS_PUT="$BIN/ds_put"
DIR=$TS_TEST_TMP/ca
WORK=$TS_TEST_TMP/work
STATE=$TS_TEST_TMP/state
mkdir -p "$WORK"
export TESSERA_DIR=$DIR
for b in "$AGENT" "$DS_PUT"; do
    [ -x "$b" ] || fail "no $b: build it first"
done

serve_init "$DIR"
run_ok "tenant acme" "$TESSERA" tenant create acme
"$TESSERA" profile show device --tenant acme >"$WORK/device.json"
python3 - "$WORK/device.json" "$WORK/pop.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
p["est"] = {"proof_of_possession": True}
json.dump(p, open(sys.argv[2], "w"))
PY
run_ok "acme's device profile demands proof of possession" \
    "$TESSERA" profile update device --file "$WORK/pop.json" --tenant acme
serve_start "$DIR" || fail "tessera serve did not start"
ROOT=$DIR/root.pem

softhsm_setup
MODULE=$(softhsm_module)
KS="pkcs11:token=device?module-path=$MODULE&pin-value=4321"
run_ok "a device token" "$TESSERA" keystore init --keystore "$KS" --so-pin device-so-1234

agent() {
    local cmd=$1
    shift
    "$AGENT" "$cmd" --keystore "$KS" --state "$STATE" "$@"
}
field() {
    sed -n "s/^$1: *//p" <<<"$2"
}
# The labels of the keys in the token, one a line.
keys() {
    "$TESSERA" keystore list --keystore "$KS" | awk '$2 == "key" || $1 == "key" { print }'
}
claim() {
    "$TESSERA" claim create "$@" | tail -n1
}

run_ok "init" agent init
UID_=$OUT

# --- proof of possession is demanded: a CSR without the binding is refused ------------------------
run_capture curl -sS --cacert "$ROOT" "$SERVE_URL/.well-known/est/acme/csrattrs"
base64 -d <<<"$OUT" >"$WORK/attrs.der"
run_ok "acme's csrattrs" openssl asn1parse -inform DER -in "$WORK/attrs.der"
assert_match "$OUT" 'challengePassword' "csrattrs lists challengePassword"
CODE=$(claim --tenant acme --uses 2)
openssl ecparam -name prime256v1 -genkey -noout -out "$WORK/plain.key"
openssl req -new -key "$WORK/plain.key" -subj /CN=plain-1 -outform DER | base64 >"$WORK/plain.csr"
run_capture curl -sS -o /dev/null -w '%{http_code}' --cacert "$ROOT" --user "any:$CODE" \
    -H 'Content-Type: application/pkcs10' --data-binary @"$WORK/plain.csr" \
    "$SERVE_URL/.well-known/est/acme/simpleenroll"
assert_eq "$OUT" 400 "a CSR without the channel binding is refused (HTTP 400)"

# --- the service URL and trust roots: options, else the datastore ---------------------------------
printf '%s\n' "$CODE" >"$WORK/code"
run_ok "claim inject" agent claim inject "$WORK/code"
expect_status 2 "enroll with neither --server nor server.url: usage" agent enroll --tenant acme
assert_match "$ERR" 'give --server URL, or set server.url in the datastore' "...naming both sources"
printf '%s\n' "$SERVE_URL" >"$WORK/url"
run_ok "server.url in the datastore" "$DS_PUT" "$KS" "$STATE" "server.url=$WORK/url"
expect_status 2 "enroll with neither --trust nor trust.roots: usage" agent enroll --tenant acme
assert_match "$ERR" 'give --trust FILE, or set trust.roots in the datastore' "...naming both sources"
run_ok "trust.roots in the datastore" "$DS_PUT" "$KS" "$STATE" "trust.roots=$ROOT"

# --- enrollment by claim code, with proof of possession, all from the datastore --------------------
run_ok "enroll by claim code (PoP, datastore's URL and roots)" agent enroll --tenant acme
assert_match "$OUT" '^enrolled' "enroll says so"
assert_match "$OUT" 'generation: 1' "generation 1"
assert_match "$OUT" 'key: *identity$' "the key made by init"
assert_match "$OUT" 'trust: *verified' "the chain verifies against the datastore's roots"
[ ! -e "$STATE/est.trust.pem" ] || fail "the roots written for the EST client were left behind"
pass "the roots file written for the exchange is gone"
run_ok "status without --trust" agent status
assert_match "$OUT" 'trust: *verified' "status checks against the datastore's roots"
run_ok "acme's certificates" "$TESSERA" cert list --tenant acme --device "$UID_"
assert_match "$OUT" "valid" "the service issued under acme"

# --- enrollment by a client certificate, with proof of possession ---------------------------------
"$TESSERA" keystore get --keystore "$KS" --label identity.cert.1 >"$WORK/factory.pem"
"$TESSERA" keystore get --keystore "$KS" --label identity.chain.1 >>"$WORK/factory.pem"
run_ok "enroll by a client certificate (PoP)" agent enroll --tenant acme \
    --factory-cert "$WORK/factory.pem"
assert_match "$OUT" 'generation: 2' "generation 2"

# --- renewal with proof of possession ---------------------------------------------------------------
run_ok "reenroll --force (PoP, renewal)" agent reenroll --force --tenant acme
assert_match "$OUT" 'generation: 3' "generation 3"
assert_match "$OUT" 'key: *identity$' "a renewal keeps the key"
SERIAL3=$(field serial "$OUT")

# --- rekey -----------------------------------------------------------------------------------------
expect_status 2 "enroll --rekey: usage" agent enroll --rekey --tenant acme
run_ok "reenroll --force --rekey (PoP)" agent reenroll --force --rekey --tenant acme
assert_match "$OUT" 're-enrolled with a new key' "reenroll says it rekeyed"
assert_match "$OUT" 'generation: 4' "generation 4"
assert_match "$OUT" 'key: *identity\.key\.4$' "the pointer names the new key"
assert_match "$OUT" 'trust: *verified' "the new certificate verifies"
SERIAL4=$(field serial "$OUT")
run_ok "keys in the token" keys
assert_match "$OUT" 'identity\.key\.4' "the new key is in the token"
assert_no_match "$OUT" '(^|[[:space:]])identity([[:space:]]|$)' "the old key was deleted"
"$TESSERA" keystore get --keystore "$KS" --label identity.cert.4 >"$WORK/cert4.pem"
"$TESSERA" keystore pubkey --keystore "$KS" --label identity.key.4 >"$WORK/key4.pub"
assert_eq "$(openssl x509 -in "$WORK/cert4.pem" -noout -pubkey)" "$(cat "$WORK/key4.pub")" \
    "the certificate is for the new key"
run_ok "cert list after the rekey" "$TESSERA" cert list --tenant acme --device "$UID_"
LIST=$(tr A-F a-f <<<"$OUT")
assert_match "$LIST" "$SERIAL3[[:space:]]+revoked" "the replaced certificate is revoked"
assert_match "$LIST" "$SERIAL4[[:space:]]+valid" "the new certificate is valid"
run_ok "status after the rekey" agent status
assert_match "$OUT" 'trust: *verified' "the identity verifies"

# The new identity works over mutual TLS: a renewal with it, and a provisioning session.
run_ok "reenroll --force with the new key (renewal)" agent reenroll --force --tenant acme
assert_match "$OUT" 'key: *identity\.key\.4$' "the renewal keeps identity.key.4"
assert_match "$OUT" 'generation: 5' "generation 5"
run_ok "a session with the rekeyed identity" agent sync
assert_match "$OUT" 'session done' "sync follows the pointer's key"

# --- failures leave the old identity and no half-made key ------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/other.key" \
    -subj /CN=Other -days 1 -out "$WORK/other.pem" 2>/dev/null
expect_status 1 "rekey with a wrong --trust" agent reenroll --force --rekey --tenant acme \
    --trust "$WORK/other.pem"
assert_match "$ERR" 'not trusted' "...the service is not trusted"
run_ok "keys after the failed rekey" keys
assert_no_match "$OUT" 'identity\.key\.6' "the half-made key was removed"
# The service refuses (the certificate is acme's, the request goes to tenant default).
expect_status 1 "rekey refused by the service" agent reenroll --force --rekey
assert_match "$ERR" 'simplereenroll refused by the service \(HTTP 40[13]\)' "...with its words"
run_ok "keys after the refusal" keys
assert_no_match "$OUT" 'identity\.key\.6' "the key made for the refused request was removed"
run_ok "status after the failures" agent status
assert_match "$OUT" 'generation: 5' "the identity is unchanged"
assert_match "$OUT" 'key: *identity\.key\.4$' "...with its key"
assert_match "$OUT" 'trust: *verified' "...and verifies"
# A key left under the next label by an attempt cut short is replaced, never used as is.
run_ok "a leftover key under identity.key.6" "$TESSERA" keystore genkey --keystore "$KS" \
    --label identity.key.6
LEFTOVER=$OUT
run_ok "rekey over the leftover" agent reenroll --force --rekey --tenant acme
assert_match "$OUT" 'key: *identity\.key\.6$' "generation 6 uses identity.key.6"
run_ok "its public key" "$TESSERA" keystore pubkey --keystore "$KS" --label identity.key.6
[ "$OUT" != "$LEFTOVER" ] || fail "the leftover key was certified"
pass "the leftover key was replaced by a fresh one"
run_ok "keys after the second rekey" keys
assert_no_match "$OUT" 'identity\.key\.4' "the replaced key identity.key.4 was deleted"
# init on a rekeyed device: set up already, with the key its identity names; no new key.
run_ok "init after the rekey" agent init
assert_eq "$OUT" "$UID_" "init after the rekey: the same UID"
run_ok "keys after init" keys
assert_no_match "$OUT" '^identity[[:space:]]' "init made no unused 'identity' key"

# --- the re-enrollment threshold: the option, else the datastore, else 30 days ------------------
run_ok "reenroll with the default threshold" agent reenroll --tenant acme
assert_match "$OUT" 'not due: the certificate is good for more than 30 days' "not due in 30 days"
echo 3650 >"$WORK/days"
run_ok "reenroll.threshold_days in the datastore" "$DS_PUT" "$KS" "$STATE" \
    "reenroll.threshold_days:uint=$WORK/days"
run_ok "reenroll with the datastore's threshold" agent reenroll --tenant acme
assert_match "$OUT" '^re-enrolled$' "due within the datastore's 3650 days: renewed"
assert_match "$OUT" 'generation: 7' "generation 7"
run_ok "reenroll --threshold-days 1 overrides the datastore" agent reenroll --tenant acme \
    --threshold-days 1
assert_match "$OUT" 'good for more than 1 days' "the option wins"

# --- offline provisioning to a rekeyed device: sealed to, and receipts checked with, its current key
openssl ecparam -name prime256v1 -genkey -noout -out "$WORK/app.pem" 2>/dev/null
run_ok "rtp export to the rekeyed device" "$TESSERA" rtp export --tenant acme --device "$UID_" \
    --keystore "$KS" --out "$WORK/rtp" --object app.key="$WORK/app.pem"
run_ok "the current identity key" "$TESSERA" keystore pubkey --keystore "$KS" --label identity.key.6
assert_eq "$(cat "$WORK/rtp/$UID_/device.pem")" "$OUT" "device.pem is identity.key.6's public key"
run_ok "the provisioning key into the device" "$TESSERA" keystore put --keystore "$KS" \
    --label provisioning.key --in "$WORK/rtp/provisioning.pem"
rtp_serve_start "$WORK/rtp" "$WORK/rtp-serve" --once
RTP_SERVE=$RTP_PID
run_ok "the rekeyed device imports its bundle" agent rtp 127.0.0.1 "$RTP_PORT"
assert_match "$OUT" '^bundle 1: imported app.key$' "app.key imported"
wait "$RTP_SERVE" || fail "rtp serve --once failed: $(cat "$WORK/rtp-serve.err")"
assert_match "$(cat "$WORK/rtp-serve.out")" "device $UID_: bundle-[0-9]+\.rtp: accepted" \
    "the receipt, signed by identity.key.6, is accepted"

# --- TLS 1.2 and tls-unique; a peer that closes the connection after csrattrs --------------------
SKS="soft:$TS_TEST_TMP/softdev?pin-value=4321"
SSTATE=$TS_TEST_TMP/softstate
run_ok "a soft: device store" "$TESSERA" keystore init --keystore "$SKS" --so-pin device-so-1234
sagent() {
    local cmd=$1
    shift
    "$AGENT" "$cmd" --keystore "$SKS" --state "$SSTATE" "$@"
}
run_ok "soft device: init" sagent init
claim --tenant acme >"$WORK/code2"
run_ok "soft device: claim inject" sagent claim inject "$WORK/code2"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/fake-ca.key" \
    -subj /CN=Fake-Root -days 1 -out "$WORK/fake-ca.pem" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/fake.key" \
    -subj /CN=127.0.0.1 -out "$WORK/fake.csr" 2>/dev/null
openssl x509 -req -in "$WORK/fake.csr" -CA "$WORK/fake-ca.pem" -CAkey "$WORK/fake-ca.key" \
    -CAcreateserial -days 1 -extfile <(printf 'subjectAltName=IP:127.0.0.1\n') \
    -out "$WORK/fake.pem" 2>/dev/null
curl -sS --cacert "$ROOT" "$SERVE_URL/.well-known/est/acme/csrattrs" >"$WORK/attrs.b64"
curl -sS --cacert "$ROOT" "$SERVE_URL/.well-known/est/cacerts" >"$WORK/cacerts.b64"
FAKE_PID=""
stop_fake() {
    if [ -n "$FAKE_PID" ]; then
        kill "$FAKE_PID" 2>/dev/null || true
        wait "$FAKE_PID" 2>/dev/null || true
        FAKE_PID=""
    fi
}
on_exit stop_fake
# start_fake MODE: the stand-in on a free port; sets FAKE_URL.
start_fake() {
    rm -f "$WORK/fake.port"
    python3 "$(dirname "${BASH_SOURCE[0]}")/est_peer_tls12.py" "$WORK/fake.pem" "$WORK/fake.key" \
        "$WORK/attrs.b64" "$WORK/cacerts.b64" "$1" "$WORK/fake.port" 2>"$WORK/fake.log" &
    FAKE_PID=$!
    for _ in $(seq 1 100); do
        [ ! -s "$WORK/fake.port" ] || break
        sleep 0.1
    done
    [ -s "$WORK/fake.port" ] || fail "the TLS 1.2 stand-in did not start: $(cat "$WORK/fake.log")"
    FAKE_URL="https://127.0.0.1:$(cat "$WORK/fake.port")"
}
start_fake close
expect_status 1 "a service that closes the connection after csrattrs" \
    sagent enroll --server "$FAKE_URL" --trust "$WORK/fake-ca.pem"
assert_match "$ERR" 'closed the connection.*no new connection was opened' \
    "the agent refuses to send the CSR on another connection"
stop_fake
run_capture sagent status
assert_match "$OUT" 'claim code: stored' "...nothing was spent"

# TLS 1.2 against the service: the binding is the connection's tls-unique, which the service
# checks against its own end of the connection.
run_ok "TLS 1.2: enroll with proof of possession" sagent enroll --tls12 --tenant acme \
    --server "$SERVE_URL" --trust "$ROOT"
assert_match "$OUT" '^enrolled' "TLS 1.2: enrolled"

# --- kill -9 during rekeys: the next rekey always succeeds ----------------------------------------
# The service certifies the new key and revokes the old certificate in one transaction; a kill
# after that and before the device commits leaves it holding a revoked certificate. The recorded
# key is asked for again and the service answers with the certificate it issued. Each trial kills
# a rekey at a random moment within the time one takes, then rekeys to the end.
trials=30
[ "${TS_SANITIZE:-0}" != 1 ] || trials=10
start=$(date +%s%N)
run_ok "one rekey, timed" sagent reenroll --force --rekey --tenant acme --server "$SERVE_URL" \
    --trust "$ROOT"
span_ms=$((($(date +%s%N) - start) / 1000000 + 30))
resumed=0
for i in $(seq 1 "$trials"); do
    "$AGENT" reenroll --force --rekey --tenant acme --keystore "$SKS" --state "$SSTATE" \
        --server "$SERVE_URL" --trust "$ROOT" >/dev/null 2>&1 &
    pid=$!
    ms=$((RANDOM % span_ms))
    sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if "$TESSERA" keystore list --keystore "$SKS" | grep -q '^identity\.rekey'; then
        resumed=$((resumed + 1))
    fi
    run_capture sagent reenroll --force --rekey --tenant acme --server "$SERVE_URL" --trust "$ROOT"
    [ "$RC" -eq 0 ] || fail "after kill -9 #$i (at $ms ms) the next rekey fails: $ERR"
done
pass "$trials kills during rekeys: the next rekey succeeded every time ($resumed resumed a recorded key)"
run_ok "status after the kills" sagent status --trust "$ROOT"
SERIAL_K=$(field serial "$OUT")
run_ok "the current certificate is valid at the service" "$TESSERA" cert list --tenant acme
grep -qi "^$SERIAL_K"$'\t'"valid"$'\t' <<<"$OUT" || fail "certificate $SERIAL_K is not valid: $OUT"
pass "certificate $SERIAL_K is valid"

serve_stop
finish
