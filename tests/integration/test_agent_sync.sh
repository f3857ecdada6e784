#!/usr/bin/env bash
# Provisioning sessions end to end against a running `tessera serve`: a device whose keys are in
# SoftHSM2, enrolled by claim code, jobs queued by `tessera job create`, and `tessera-agent sync` carrying
# them out: a configuration value lands in the datastore, an end-to-end encrypted key is imported,
# a replayed import is refused and reported back, a staged service URL that does not work is
# dropped while the old one keeps working, a re-enrollment keeps the key and one with --rekey
# certifies a new key and supersedes the old certificate. docs/agent.md ("Sessions") describes it.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/serve.sh"

BIN="${TS_BUILD_DIR:-build}/bin"
AGENT="$BIN/tessera-agent"
DS_TOOL="$BIN/ds_tool"
SEAL="$BIN/sync_seal"
DIR=$TS_TEST_TMP/ca
WORK=$TS_TEST_TMP/work
STATE=$TS_TEST_TMP/state
mkdir -p "$WORK"
export TESSERA_DIR=$DIR
for b in "$AGENT" "$DS_TOOL" "$SEAL"; do
    [ -x "$b" ] || fail "no $b: build it first"
done

serve_init "$DIR"
serve_start "$DIR" || fail "tessera serve did not start"
ROOT=$DIR/root.pem
softhsm_setup
KS="pkcs11:token=device?module-path=$(softhsm_module)&pin-value=1234"
run_ok "a device token (SoftHSM2)" "$TESSERA" keystore init --keystore "$KS" --so-pin so-5678

agent() {
    local cmd=$1
    shift
    "$AGENT" "$cmd" --keystore "$KS" --state "$STATE" "$@"
}
sync_ok() {
    run_ok "$1" agent sync --server "$SERVE_URL" --trust "$ROOT"
}
# job_create ARGS...: queues a job and sets JOB to its id.
job_create() {
    run_ok "job create $*" "$TESSERA" job create --device "$UID_" "$@"
    JOB=$(grep -Eo '[0-9]+' <<<"$OUT" | head -n1)
    [ -n "$JOB" ] || fail "job create printed no id: $OUT"
}
job_show() {
    run_ok "job show $1" "$TESSERA" job show --id "$1"
}

# --- the device: identity, claim code, enrollment, the tenant's provisioning key ------------------
run_ok "init" agent init
UID_=$OUT
CODE=$("$TESSERA" claim create | tail -n1)
printf '%s\n' "$CODE" >"$WORK/code"
run_ok "claim inject" agent claim inject "$WORK/code"
expect_status 1 "sync before enrollment is refused" agent sync --server "$SERVE_URL" --trust "$ROOT"
assert_match "$ERR" 'not enrolled' "...saying so"
run_ok "enroll by claim code" agent enroll --server "$SERVE_URL" --trust "$ROOT"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/prov.key" 2>/dev/null
run_ok "the provisioning key, installed as in the factory" \
    "$SEAL" install --keystore "$KS" --sender-key "$WORK/prov.key"

# --- usage and refusals ----------------------------------------------------------------------------
expect_status 2 "sync with an operand: usage" agent sync extra
expect_status 1 "sync with no service URL anywhere" agent sync
assert_match "$ERR" 'no service URL' "...saying what is missing"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/other.key" \
    -subj /CN=Other -days 1 -out "$WORK/other.pem" 2>/dev/null
expect_status 1 "sync with a wrong --trust" agent sync --server "$SERVE_URL" --trust "$WORK/other.pem"
assert_match "$ERR" 'not trusted' "...the service is not trusted"

# --- nothing queued: a report only ----------------------------------------------------------------
sync_ok "sync with nothing queued"
assert_match "$OUT" 'session done: 1 messages, 0 requests' "one exchange, no requests"

# --- a configuration value -------------------------------------------------------------------------
job_create --set mqtt.host=broker.example
SET_JOB=$JOB
sync_ok "sync carries out the set job"
assert_match "$OUT" 'requests, 0 refused' "nothing refused"
run_ok "the value is in the datastore" "$DS_TOOL" get "$KS" "$STATE" mqtt.host
assert_eq "$OUT" "broker.example" "mqtt.host = broker.example"
job_show "$SET_JOB"
assert_match "$OUT" 'state: +done' "the job is done"
assert_no_match "$OUT" 'failed' "...and nothing failed"

# --- an end-to-end encrypted import, then the same blob again ---------------------------------------
run_ok "seal a key for this device" "$SEAL" seal --keystore "$KS" --sender-key "$WORK/prov.key" \
    --counter 1 --label telemetry.key --out "$WORK/blob1"
job_create --import "$WORK/blob1" --label telemetry.key
IMPORT_JOB=$JOB
sync_ok "sync imports the key"
run_ok "the key is in the key store" "$TESSERA" keystore list --keystore "$KS"
assert_match "$OUT" 'telemetry.key' "telemetry.key listed"
job_show "$IMPORT_JOB"
assert_match "$OUT" 'state: +done' "the import job is done"

job_create --import "$WORK/blob1" --label telemetry.key
REPLAY_JOB=$JOB
sync_ok "sync with a replayed import (the session itself succeeds)"
assert_match "$OUT" '1 refused' "the replay is refused"
job_show "$REPLAY_JOB"
assert_match "$OUT" 'state: +failed' "the replayed job failed"
assert_match "$OUT" 'replay' "...reported as a replay"

# --- a staged service URL that does not work is dropped; the old one stays -------------------------
job_create --set server.url=https://127.0.0.1:1
sync_ok "sync stages the new URL"
run_ok "the current URL is unchanged" "$DS_TOOL" get "$KS" "$STATE" staged.server.url
assert_eq "$OUT" "https://127.0.0.1:1" "the new URL is staged"
sync_ok "sync tries the staged URL, falls back"
assert_match "$ERR" 'dropped' "...and says the staged values were dropped"
expect_status 1 "the staged URL is gone" "$DS_TOOL" get "$KS" "$STATE" staged.server.url


# --- a staged service URL that works becomes current; then the datastore alone is enough ----------
job_create --set "server.url=$SERVE_URL/"
sync_ok "sync stages a working URL"
run_ok "sync with the staged URL" agent sync --trust "$ROOT"
assert_match "$OUT" 'now current' "the staged URL is made current"
run_ok "server.url in the datastore" "$DS_TOOL" get "$KS" "$STATE" server.url
assert_eq "$OUT" "$SERVE_URL/" "server.url is the new URL"
job_create --rotate-trust "$ROOT"
run_ok "sync from the datastore alone stages the rotated roots" agent sync
run_ok "sync with the staged roots" agent sync
assert_match "$OUT" 'now current' "the staged roots are made current"
run_ok "sync with nothing on the command line" agent sync
assert_match "$OUT" 'session done' "the datastore's URL and roots work"

# --- a re-enrollment the service asks for ---------------------------------------------------------
# The public key of the current certificate, and its serial (lower case).
cur_pubkey() {
    local label
    label=$(agent status | sed -n 's/^cert: *//p')
    [ -n "$label" ] || fail "agent status names no certificate"
    "$TESSERA" keystore get --keystore "$KS" --label "$label" | openssl x509 -noout -pubkey
}
cur_serial() {
    agent status | sed -n 's/^serial: *//p' | tr A-F a-f
}
# new_generation N: agent status shows identity generation N, and it verifies.
new_generation() {
    run_ok "status after the re-enrollment" agent status --trust "$ROOT"
    assert_match "$OUT" "generation: $1" "a new identity generation"
    assert_match "$OUT" 'trust: *verified' "...that verifies"
}
PUB1=$(cur_pubkey)
SERIAL1=$(cur_serial)
job_create --reenroll
REENROLL_JOB=$JOB
run_ok "sync re-enrolls" agent sync
job_show "$REENROLL_JOB"
assert_match "$OUT" 'state: +done' "the re-enrollment job is done"
assert_match "$OUT" 'kind: +reenroll$' "...a plain re-enrollment"
new_generation 2
assert_eq "$(cur_pubkey)" "$PUB1" "a plain re-enrollment keeps the key"
SERIAL2=$(cur_serial)
[ "$SERIAL2" != "$SERIAL1" ] || fail "the re-enrollment kept the serial"
run_ok "the renewed certificate" "$TESSERA" cert show "$SERIAL1"
assert_no_match "$OUT" 'superseded' "a renewal does not revoke the old certificate"
run_ok "a session with the new identity" agent sync

# --- a re-enrollment with a new key the service asks for ------------------------------------------
expect_status 2 "--rekey without --reenroll: usage" "$TESSERA" job create --device "$UID_" --rekey
assert_match "$ERR" 'rekey goes with --reenroll' "...saying so"
expect_status 2 "--rekey with --set: usage" "$TESSERA" job create --device "$UID_" --rekey \
    --set a.b=1
run_ok "no job was queued by the refusals" "$TESSERA" job list --device "$UID_"
assert_eq "$(grep -c . <<<"$OUT")" "$(grep -c . <<<"$("$TESSERA" job list)")" "...job list agrees"
NJOBS=$(grep -c . <<<"$OUT")
job_create --reenroll --rekey
REKEY_JOB=$JOB
run_ok "job list" "$TESSERA" job list --device "$UID_"
assert_eq "$(grep -c . <<<"$OUT")" "$((NJOBS + 1))" "one job more"
assert_match "$OUT" "^$REKEY_JOB[[:space:]]+$UID_[[:space:]]+reenroll \(rekey\)[[:space:]]+pending" \
    "job list marks the rekey"
assert_match "$OUT" "^$REENROLL_JOB[[:space:]]+$UID_[[:space:]]+reenroll[[:space:]]+done" \
    "...and not the plain re-enrollment"
run_ok "sync rekeys" agent sync
job_show "$REKEY_JOB"
assert_match "$OUT" 'kind: +reenroll \(rekey\)' "job show marks the rekey"
assert_match "$OUT" 'state: +done' "the rekey job is done"
assert_match "$OUT" 'REENROLL[[:space:]]+rekey[[:space:]]+done' "...its request asked for a new key"
new_generation 3
assert_match "$OUT" 'key: *identity\.key\.3$' "...with a new key-store key"
PUB3=$(cur_pubkey)
[ "$PUB3" != "$PUB1" ] || fail "the rekey kept the public key"
pass "the certificate is for a new public key"
run_ok "the replaced certificate" "$TESSERA" cert show "$SERIAL2"
assert_match "$OUT" 'revoked: .*\(superseded\)' "...is revoked as superseded"
run_ok "a session with the rekeyed identity" agent sync
assert_match "$OUT" 'session done' "...works"
job_create --reenroll
run_ok "a renewal with the rekeyed identity" agent sync
assert_eq "$(cur_pubkey)" "$PUB3" "...keeps the new key"

# --- the service keeps the last status report --------------------------------------------------
run_ok "the device's status report" curl -sf --cacert "$ROOT" \
    -H "Authorization: Bearer $ADMIN_TOKEN" "$SERVE_URL/api/v1/tenants/default/devices/$UID_/status"
assert_match "$OUT" "\"uid\": *\"$UID_\"" "the report names the device"
assert_match "$OUT" 'telemetry.key' "...lists the imported key"
assert_match "$OUT" 'dropped' "...and the last errors include the dropped staged URL"
run_ok "tessera device show" "$TESSERA" device show "$UID_"
assert_match "$OUT" 'enabled' "the device is registered and enabled"
assert_match "$OUT" 'valid' "...with its valid certificates"
run_ok "the device through the REST API" curl -sf --cacert "$ROOT" \
    -H "Authorization: Bearer $ADMIN_TOKEN" "$SERVE_URL/api/v1/tenants/default/devices/$UID_"
assert_match "$OUT" "\"uid\": *\"$UID_\"" "the REST API shows the device"

finish
