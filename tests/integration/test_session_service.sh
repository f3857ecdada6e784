#!/usr/bin/env bash
# The service side of provisioning sessions (docs/protocol.md) against a running `tessera serve`,
# driven step by step by tests/integration/session_client.c instead of the agent: a device with a
# certificate issued by `tessera cert issue` (CN = its UID) reports its status, receives the
# requests of a job queued with `tessera job create`, answers them and is told it is done; the
# job's results through `tessera job show` and the REST API; a failed answer fails its job; and
# the refusals: malformed protobuf (400), wrong content type (415), no client certificate (401),
# a report for another device (400), an answer to a request that is not the device's (400), and
# a message whose result is refused, which leaves the stored status report as it was.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/serve.sh"

CLIENT="${TS_BUILD_DIR:-build}/bin/session_client"
DIR=$TS_TEST_TMP/ca
W=$TS_TEST_TMP/work
UID_=dev-sess-0001
mkdir -p "$W"
export TESSERA_DIR=$DIR
[ -x "$CLIENT" ] || fail "no $CLIENT: build it first"

serve_init "$DIR"
serve_start "$DIR" || fail "tessera serve did not start"
ROOT=$DIR/root.pem
SESSION_URL=$SERVE_URL/agent/v1/session
PB=application/x-protobuf

# post NAME CERT KEY CONTENT-TYPE IN: one session message; sets STATUS, the reply in $W/NAME.reply.
post() {
    run_capture "$CLIENT" post "$SESSION_URL" "$ROOT" "$2" "$3" "$4" "$5" "$W/$1.reply"
    [ "$RC" -eq 0 ] || fail "POST $1 (exit $RC)"
    STATUS=$OUT
}
# dump NAME: the ServiceMessage in $W/NAME.reply as text, in OUT.
dump() {
    run_ok "the $1 reply is a ServiceMessage" "$CLIENT" dump "$W/$1.reply"
}
# open_session NAME DESCRIPTION: a new session with the device's status report; sets REQS (its
# request lines) and SESSION.
open_session() {
    post "$1" "$CERT" "$KEY" "$PB" "$W/report.bin"
    assert_eq "$STATUS" 200 "$2"
    dump "$1"
    REQS=$(grep '^request ' <<<"$OUT" || true)
    SESSION=$(sed -n 's/^session //p' <<<"$OUT")
}
# api PATH: GET with the admin token; sets STATUS and BODY.
api() {
    STATUS=$(curl -sS -o "$W/api.body" -w '%{http_code}' --cacert "$ROOT" \
        -H "Authorization: Bearer $ADMIN_TOKEN" "$SERVE_URL$1")
    BODY=$(cat "$W/api.body")
}
# json EXPR: evaluates the Python expression EXPR on the JSON document d in BODY.
json() {
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$BODY" "$1"
}

# --- a device certificate: CN = the device UID ----------------------------------------------------
issue() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/$1.key" \
        -subj "/CN=$1" -out "$W/$1.csr" 2>/dev/null || fail "openssl req for $1"
    run_ok "cert issue for $1" "$TESSERA" cert issue --csr "$W/$1.csr" --profile device \
        --out "$W/$1.pem"
}
issue "$UID_"
issue dev-sess-other
CERT=$W/$UID_.pem
KEY=$W/$UID_.key

# --- a configuration job, carried out ----------------------------------------------------------------
run_ok "job create --set" "$TESSERA" job create --device "$UID_" --set mqtt.host=broker.example
JOB=$OUT
assert_match "$JOB" '^[0-9]+$' "job create prints the job id alone"
run_ok "job list --device" "$TESSERA" job list --device "$UID_"
assert_match "$OUT" "^$JOB	$UID_	set	pending	" "the job is listed as pending"

run_ok "a status report" "$CLIENT" report "$UID_" "$W/report.bin"
post first "$CERT" "$KEY" "$PB" "$W/report.bin"
assert_eq "$STATUS" 200 "the first message is answered"
dump first
SESSION=$(sed -n 's/^session //p' <<<"$OUT")
assert_match "$SESSION" '^[0-9a-f]{32}$' "the service gives a session id"
assert_match "$OUT" '^done 0$' "not done: there is work"
assert_match "$OUT" '^crl [1-9][0-9]*$' "the tenant's CRL comes along"
REQS=$(grep '^request ' <<<"$OUT" || true)
assert_eq "$(wc -l <<<"$REQS")" 3 "three requests"
assert_match "$(sed -n 1p <<<"$REQS")" '^request [0-9]+ DATASTORE DS_BEGIN -$' "first DS_BEGIN"
assert_match "$(sed -n 2p <<<"$REQS")" \
    '^request [0-9]+ DATASTORE DS_PUT - mqtt\.host=broker\.example$' "then DS_PUT with the value"
assert_match "$(sed -n 3p <<<"$REQS")" '^request [0-9]+ DATASTORE DS_COMMIT -$' "then DS_COMMIT"
IDS=$(awk '{print $2}' <<<"$REQS" | tr '\n' ' ')

# An answer to a request that does not exist changes nothing.
run_ok "results naming an unknown request" "$CLIENT" results "$SESSION" "$W/bad.bin" 999999
post unknown "$CERT" "$KEY" "$PB" "$W/bad.bin"
assert_eq "$STATUS" 400 "an answer to an unknown request: 400"

# The other device cannot answer this device's requests.
# shellcheck disable=SC2086
run_ok "results of the job" "$CLIENT" results "$SESSION" "$W/results.bin" $IDS
post other "$W/dev-sess-other.pem" "$W/dev-sess-other.key" "$PB" "$W/results.bin"
assert_eq "$STATUS" 400 "another device's answers: 400"
run_ok "job show: still pending" "$TESSERA" job show --id "$JOB"
assert_match "$OUT" '^state: +pending$' "...nothing recorded"

post second "$CERT" "$KEY" "$PB" "$W/results.bin"
assert_eq "$STATUS" 200 "the results are accepted"
dump second
assert_match "$OUT" '^done 1$' "then the session is done"
assert_no_match "$OUT" '^request ' "...with no more requests"
assert_match "$OUT" "^session $SESSION\$" "...in the same session"

post again "$CERT" "$KEY" "$PB" "$W/results.bin"
assert_eq "$STATUS" 400 "answering the same requests twice: 400"

run_ok "job show" "$TESSERA" job show --id "$JOB"
assert_match "$OUT" '^state: +done$' "the job is done"
assert_eq "$(grep -Ec '^  [0-9]+	DS_[A-Z]+	.*	done	' <<<"$OUT")" 3 "each request done"
api "/api/v1/tenants/default/jobs/$JOB"
assert_eq "$STATUS" 200 "GET the job"
assert_eq "$(json 'd["state"]')" done "REST: the job is done"
assert_eq "$(json '[r["state"] for r in d["requests"]]')" "['done', 'done', 'done']" \
    "REST: each request done"
assert_eq "$(json 'd["requests"][1]["operation"]+" "+d["requests"][1]["label"]')" \
    "DS_PUT mqtt.host" "REST: the DS_PUT names the entry"

api "/api/v1/tenants/default/devices/$UID_/status"
assert_eq "$STATUS" 200 "GET the device status"
assert_eq "$(json 'd["report"]["uid"]')" "$UID_" "the report is the device's"
assert_eq "$(json 'd["report"]["firmware_version"]')" "test-fw 2.1" "...with its firmware"
assert_eq "$(json 'd["report"]["keystore_objects"][0]["label"]')" identity "...and key store"
assert_match "$(json 'd["received"]')" '^[0-9]{4}-' "...and when it came"

# --- a refused message changes nothing, not even the stored status report -------------------------
run_ok "a report with new firmware and an answer to an unknown request" "$CLIENT" report "$UID_" \
    "$W/report-refused.bin" "test-fw 9.9" "$SESSION" 999998
post refused "$CERT" "$KEY" "$PB" "$W/report-refused.bin"
assert_eq "$STATUS" 400 "a message with a refused result: 400"
api "/api/v1/tenants/default/devices/$UID_/status"
assert_eq "$(json 'd["report"]["firmware_version"]')" "test-fw 2.1" \
    "the refused message's report is not stored"
run_ok "a report with new firmware alone" "$CLIENT" report "$UID_" "$W/report-new.bin" \
    "test-fw 3.0" "$SESSION"
post newfw "$CERT" "$KEY" "$PB" "$W/report-new.bin"
assert_eq "$STATUS" 200 "a message with a report only: 200"
api "/api/v1/tenants/default/devices/$UID_/status"
assert_eq "$(json 'd["report"]["firmware_version"]')" "test-fw 3.0" "an accepted report is stored"

# --- a failed answer fails the job ------------------------------------------------------------------
run_ok "job create --reenroll" "$TESSERA" job create --device "$UID_" --reenroll
JOB2=$OUT
open_session third "a new session"
assert_match "$REQS" '^request [0-9]+ AGENT REENROLL -$' "the reenroll request"
run_ok "a failed result" "$CLIENT" results "$SESSION" "$W/fail.bin" \
    "$(awk '{print $2}' <<<"$REQS"):fail:unavailable"
post fourth "$CERT" "$KEY" "$PB" "$W/fail.bin"
assert_eq "$STATUS" 200 "the failure is accepted"
run_ok "job show of the failed job" "$TESSERA" job show --id "$JOB2"
assert_match "$OUT" '^state: +failed$' "the job failed"
assert_match "$OUT" 'REENROLL	-	failed	.*	unavailable: refused by the test' \
    "...with the device's error"

# --- a re-enrollment with a new key, queued through REST ------------------------------------------
# api_post BODY: POST .../jobs with the admin token; sets STATUS and BODY.
api_post() {
    STATUS=$(curl -sS -o "$W/api.body" -w '%{http_code}' --cacert "$ROOT" -X POST \
        -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' --data "$1" \
        "$SERVE_URL/api/v1/tenants/default/jobs")
    BODY=$(cat "$W/api.body")
}
run_ok "job list before" "$TESSERA" job list --device "$UID_"
JOBS_BEFORE=$OUT
api_post "{\"device\": \"$UID_\", \"set\": {\"a.b\": \"1\"}, \"rekey\": true}"
assert_eq "$STATUS" 400 "REST: rekey beside set: 400"
assert_match "$BODY" 'rekey' "...naming rekey"
api_post "{\"device\": \"$UID_\", \"reenroll\": true, \"rekey\": \"yes\"}"
assert_eq "$STATUS" 400 "REST: rekey that is not a boolean: 400"
api_post "{\"device\": \"$UID_\", \"rekey\": true}"
assert_eq "$STATUS" 400 "REST: rekey without reenroll: 400"
run_ok "job list after the refusals" "$TESSERA" job list --device "$UID_"
assert_eq "$OUT" "$JOBS_BEFORE" "...queued nothing"
api_post "{\"device\": \"$UID_\", \"reenroll\": true, \"rekey\": true}"
assert_eq "$STATUS" 201 "REST: a re-enrollment with a new key"
assert_eq "$(json 'd["kind"], d["rekey"]')" "('reenroll', True)" "...is a reenroll job with rekey"
JOB3=$(json 'd["id"]')
open_session fifth "a session for the rekey job"
assert_match "$REQS" '^request [0-9]+ AGENT REENROLL - rekey$' "the request carries rekey"
run_ok "the rekey answered" "$CLIENT" results "$SESSION" "$W/rekey.bin" "$(awk '{print $2}' <<<"$REQS")"
post sixth "$CERT" "$KEY" "$PB" "$W/rekey.bin"
assert_eq "$STATUS" 200 "the answer is accepted"
api "/api/v1/tenants/default/jobs/$JOB3"
assert_eq "$(json 'd["state"], d["rekey"], d["requests"][0]["label"]')" "('done', True, 'rekey')" \
    "REST: the rekey job is done"
api "/api/v1/tenants/default/jobs/$JOB2"
assert_eq "$(json 'd["rekey"]')" False "REST: a plain re-enrollment has rekey false"

# --- the same commands through the service (--server, --token) ---------------------------------------
R=(--server "$SERVE_URL" --token "$ADMIN_TOKEN" --cacert "$ROOT")
for id in "$JOB" "$JOB2" "$JOB3"; do
    run_ok "job show $id (local)" "$TESSERA" job show --id "$id"
    want=$OUT
    run_ok "job show $id (remote)" "$TESSERA" job show --id "$id" "${R[@]}"
    assert_eq "$OUT" "$want" "job show $id: the same through the service"
done
# A newer job of another device: the device's list is found by the service, not picked from the
# tenant's newest, and holds none of the other device's.
run_ok "job list (local) before another device's job" "$TESSERA" job list --device "$UID_"
want=$OUT
run_ok "a job for another device" "$TESSERA" job create --device dev-sess-other --reenroll
OTHER_JOB=$OUT
run_ok "job list (local)" "$TESSERA" job list --device "$UID_"
assert_eq "$OUT" "$want" "job list --device: not the other device's job"
run_ok "job list (remote)" "$TESSERA" job list --device "$UID_" "${R[@]}"
assert_eq "$OUT" "$want" "job list: the same through the service"
api "/api/v1/tenants/default/jobs?limit=1"
assert_eq "$(json '[j["id"] for j in d["items"]]')" "[$OTHER_JOB]" "REST: the tenant's newest job"
api "/api/v1/tenants/default/jobs?device=$UID_&limit=1"
assert_eq "$STATUS" 200 "REST: ?device"
assert_eq "$(json '[j["device"] for j in d["items"]]')" "['$UID_']" "...that device's newest job"
assert_eq "$(json 'd["items"][0]["id"]')" "$(head -1 <<<"$want" | cut -f1)" \
    "...the first line of job list --device"
api "/api/v1/tenants/default/jobs?device=bad%2Fuid"
assert_eq "$STATUS" 400 "REST: a malformed ?device: 400"
assert_match "$(json 'd["error"]["message"]')" "device" "...naming the parameter"
run_ok "job create --set through the service" "$TESSERA" job create --device "$UID_" \
    --set app.mode=remote --set app.level=3 "${R[@]}"
JOBR=$OUT
assert_match "$JOBR" '^[0-9]+$' "...prints the job id alone"
run_ok "job show of it" "$TESSERA" job show --id "$JOBR"
assert_match "$OUT" '^kind: +set$' "...a set job"
assert_match "$OUT" $'DS_PUT\tapp.mode\tpending' "...writing app.mode"
assert_match "$OUT" $'DS_PUT\tapp.level\tpending' "...and app.level"
printf 'sealed blob bytes' >"$W/blob.bin"
run_ok "job create --import through the service" "$TESSERA" job create --device "$UID_" \
    --import "$W/blob.bin" --label app.key "${R[@]}"
api "/api/v1/tenants/default/jobs/$OUT"
assert_eq "$(json '[(r["operation"], r["label"], r["data_bytes"]) for r in d["requests"]]')" \
    "[('IMPORT', 'app.key', 17)]" "...the blob, whole, under its label"
run_ok "job create --rotate-trust through the service" "$TESSERA" job create --device "$UID_" \
    --rotate-trust "$ROOT" "${R[@]}"
api "/api/v1/tenants/default/jobs/$OUT"
assert_eq "$(json 'd["kind"]')" rotate-trust "...a trust rotation"
run_ok "job create --reenroll --rekey through the service" "$TESSERA" job create \
    --device "$UID_" --reenroll --rekey "${R[@]}"
api "/api/v1/tenants/default/jobs/$OUT"
assert_eq "$(json 'd["kind"], d["rekey"]')" "('reenroll', True)" "...a re-enrollment with a new key"
run_ok "job list before the refusals" "$TESSERA" job list --device "$UID_"
JOBS_BEFORE=$OUT
expect_status 1 "job create through the service with a bad entry name" "$TESSERA" job create \
    --device "$UID_" --set Bad=1 "${R[@]}"
assert_match "$ERR" 'Bad' "...naming the entry"
expect_status 1 "job show through the service of an unknown job" "$TESSERA" job show --id 9999 \
    "${R[@]}"
run_ok "job list after the refusals" "$TESSERA" job list --device "$UID_"
assert_eq "$OUT" "$JOBS_BEFORE" "the refusals through the service queued nothing"

# --- refusals ----------------------------------------------------------------------------------------
printf 'not a protobuf \377\377\377' >"$W/garbage.bin"
post garbage "$CERT" "$KEY" "$PB" "$W/garbage.bin"
assert_eq "$STATUS" 400 "malformed protobuf: 400"
post ctype "$CERT" "$KEY" application/json "$W/report.bin"
assert_eq "$STATUS" 415 "wrong content type: 415"
post nocert - - "$PB" "$W/report.bin"
assert_eq "$STATUS" 401 "no client certificate: 401"
run_ok "a report for another device" "$CLIENT" report dev-sess-other "$W/report-other.bin"
post mismatch "$CERT" "$KEY" "$PB" "$W/report-other.bin"
assert_eq "$STATUS" 400 "a report whose uid is not the certificate's: 400"
assert_match "$(cat "$W/mismatch.reply")" "not the certificate's" "...saying so"

expect_status 2 "job create without a kind: usage" "$TESSERA" job create --device "$UID_"
expect_status 1 "job create with a bad entry name" "$TESSERA" job create --device "$UID_" \
    --set Bad=1
expect_status 1 "job show of an unknown job" "$TESSERA" job show --id 9999
assert_match "$ERR" 'no job 9999' "...naming it"

serve_stop
assert_eq "$SERVE_STATUS" 0 "SIGTERM stops the service cleanly"
assert_no_match "$(cat "$SERVE_LOG")" 'Sanitizer|runtime error' "no sanitizer report from the service"
finish
