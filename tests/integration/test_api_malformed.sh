#!/usr/bin/env bash
# Malformed requests to the REST API: bad JSON, unknown members, wrong types, an oversized body,
# a wrong content type, bad cursors and limits, bad serials, a body on GET. Each must get the
# exact 4xx with a JSON error whose code and message name the problem, and change nothing: the
# certificates, devices, users, tokens, claim codes, profiles, tenants and audit entries are
# counted before and after every case.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
. "$here/serve.sh"

dir=$TS_TEST_TMP/instance
serve_init "$dir"
# Without the root key no tenant can be made: the refusal is checked below with the rest.
run_ok "the root key goes offline" "$TESSERA" ceremony offline-root --dir "$dir"
serve_start "$dir" --threads 2 --max-body 65536
pass "the service runs at $SERVE_URL"

T=/api/v1/tenants/default
STATUS=""
BODY=""

# api METHOD PATH [curl options...]: a request as the instance admin; sets STATUS and BODY.
api() {
    local method=$1 path=$2
    shift 2
    STATUS=$(curl -sS -o "$TS_TEST_TMP/body" -w '%{http_code}' --cacert "$dir/root.pem" \
        -X "$method" -H "Authorization: Bearer $ADMIN_TOKEN" "$@" "$SERVE_URL$path") ||
        fail "curl $method $path failed"
    BODY=$(cat "$TS_TEST_TMP/body")
}

# json_post METHOD PATH BODY: sends BODY as application/json.
json_send() {
    api "$1" "$2" -H 'Content-Type: application/json' --data-binary "$3"
}

# state: one line counting every kind of row a request could add or change, following every
# list's cursors. One python3 process answers each asking line, over one kept-alive connection;
# it also reads the JSON errors (error FILE), so that no check starts an interpreter of its own.
cat >"$TS_TEST_TMP/state.py" <<'PY'
import http.client, json, ssl, sys, urllib.parse
url, cafile, token, t = sys.argv[1:5]
u = urllib.parse.urlsplit(url)
ctx = ssl.create_default_context(cafile=cafile)
conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=30)
def get(path):
    conn.request("GET", path, headers={"Authorization": "Bearer " + token})
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        raise SystemExit("GET %s: %d %s" % (path, r.status, body[:200]))
    return json.loads(body)
for line in sys.stdin:
    if line.startswith("error "):
        # The code and message of a JSON error reply in a file, or "-" when it is not one.
        try:
            with open(line[6:].strip(), "rb") as f:
                e = json.load(f)["error"]
            print(e["code"] + "\t" + e["message"].replace("\n", " "), flush=True)
        except (ValueError, KeyError, TypeError):
            print("-", flush=True)
        continue
    out = []
    for path in (t + "/certificates", t + "/certificates?status=revoked", t + "/devices",
                 t + "/users", t + "/tokens", t + "/claims", t + "/profiles", "/api/v1/tenants",
                 "/api/v1/audit"):
        n, cursor = 0, None
        while True:
            sep = "&" if "?" in path else "?"
            d = get(path + sep + "limit=1000" + ("&cursor=" + cursor if cursor else ""))
            n += len(d["items"])
            cursor = d["next"]
            if cursor is None:
                break
        out.append("%s=%d" % (path.rsplit("/", 1)[1], n))
    print(" ".join(out), flush=True)
PY
coproc STATE { python3 "$TS_TEST_TMP/state.py" "$SERVE_URL" "$dir/root.pem" "$ADMIN_TOKEN" "$T"; }
on_exit kill "$STATE_PID"
state() {
    local line=""
    echo >&"${STATE[1]}"
    read -r line <&"${STATE[0]}" || true
    [ -n "$line" ] || fail "counting the rows failed"
    echo "$line"
}

# error_of FILE: "code<TAB>message" of the JSON error in FILE, or "-".
error_of() {
    local line=""
    echo "error $1" >&"${STATE[1]}"
    IFS= read -r line <&"${STATE[0]}" || true
    echo "$line"
}

# refused STATUS CODE WORDS DESCRIPTION: the last reply is STATUS with {"error": {"code": CODE,
# "message": ...}} whose message holds WORDS (a fixed string), and the state is as before.
refused() {
    local want=$1 code=$2 words=$3 desc=$4 got
    [ "$STATUS" = "$want" ] || fail "$desc: status $STATUS, want $want: $BODY"
    got=$(error_of "$TS_TEST_TMP/body")
    [ "$got" != "-" ] || fail "$desc: not a JSON error: $BODY"
    [ "${got%%$'\t'*}" = "$code" ] || fail "$desc: error code '${got%%$'\t'*}', want $code"
    grep -Fq -- "$words" <<<"${got#*$'\t'}" || fail "$desc: message '${got#*$'\t'}' lacks '$words'"
    [ "$(state)" = "$BEFORE" ] || fail "$desc: the request changed the state"
    pass "$desc"
}

# A certificate, a device and a claim code to aim at.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null \
    -subj /CN=dev-1 -out "$TS_TEST_TMP/dev-1.csr" 2>/dev/null
csr=$(python3 -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read()))' \
    "$TS_TEST_TMP/dev-1.csr")
json_send POST $T/certificates "{\"csr\": $csr, \"profile\": \"device\"}"
[ "$STATUS" = 201 ] || fail "issuing a certificate: $STATUS $BODY"
serial=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["serial"])' <<<"$BODY")
json_send POST $T/claims '{}'
[ "$STATUS" = 201 ] || fail "making a claim code: $STATUS $BODY"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null \
    -subj /CN=dev-9 -out "$TS_TEST_TMP/dev-9.csr" 2>/dev/null
csr9=$(python3 -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read()))' \
    "$TS_TEST_TMP/dev-9.csr")
json_send POST $T/certificates "{\"csr\": $csr9, \"profile\": \"device\"}"
[ "$STATUS" = 201 ] || fail "issuing a certificate: $STATUS $BODY"
revoked=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["serial"])' <<<"$BODY")
json_send POST $T/certificates/$revoked/revoke '{}'
[ "$STATUS" = 200 ] || fail "revoking a certificate: $STATUS $BODY"
api POST $T/devices/dev-9/disable
[ "$STATUS" = 200 ] || fail "disabling a device: $STATUS $BODY"
BEFORE=$(state)
pass "state before: $BEFORE"

# --- Bodies that are not what the route takes -----------------------------------------------------
json_send POST $T/devices '{"uid": '
refused 400 invalid "not valid JSON" "truncated JSON"
json_send POST $T/devices '{"uid": "dev-2",}'
refused 400 invalid "not valid JSON" "a trailing comma"
json_send POST $T/devices '{"uid": "dev-2", "uid": "dev-3"}'
refused 400 invalid "duplicate" "a member given twice"
json_send POST $T/devices '["dev-2"]'
refused 400 invalid "must be a JSON object" "an array instead of an object"
json_send POST $T/devices "$(printf '{"uid": "dev-\xff"}')"
refused 400 invalid "not valid JSON" "bytes that are not UTF-8"
json_send POST $T/devices "$(python3 -c 'print("[" * 5000 + "]" * 5000)')"
refused 400 invalid "not valid JSON" "nesting 5000 deep"
json_send POST $T/devices '{"uid": "dev-2", "colour": "red"}'
refused 400 invalid 'unknown member "colour"' "an unknown member"
json_send POST $T/certificates "{\"csr\": $csr, \"profile\": \"device\", \"days\": 1}"
refused 400 invalid 'unknown member "days"' "an unknown member next to a good CSR"
json_send POST $T/devices '{"uid": 5}'
refused 400 invalid '"uid" must be a string' "a number for a string"
json_send POST $T/devices '{}'
refused 400 invalid '"uid" is required' "a required member missing"
json_send POST $T/claims '{"uses": "2"}'
refused 400 invalid '"uses" must be an integer' "a string for an integer"
json_send POST $T/claims '{"uses": 1.5}'
refused 400 invalid '"uses" must be an integer' "a real for an integer"
json_send POST $T/claims '{"uses": 0}'
refused 400 invalid '"uses" must be from 1 to' "an integer out of range"
json_send POST $T/tokens '{"user": "admin", "name": "x", "lifetime_seconds": true}'
refused 400 invalid '"lifetime_seconds" must be an integer' "a boolean for an integer"
json_send POST $T/devices '{"uid": "dev 2"}'
refused 400 invalid '"uid": a device UID' "a device UID with a space"
json_send POST /api/v1/tenants '{"name": "Not_A_Name"}'
refused 400 invalid "Not_A_Name" "a bad tenant name"
json_send POST /api/v1/tenants '{"name": "newco"}'
refused 409 conflict "ceremony restore" "a tenant while the root key is offline"
json_send POST $T/users '{"name": "x", "role": "superuser"}'
refused 400 invalid "superuser" "an unknown role"
json_send POST $T/certificates '{"csr": "not a CSR", "profile": "device"}'
refused 400 invalid "CSR" "a CSR that is not one"
json_send POST $T/certificates/$serial/revoke '{"reason": "bored"}'
refused 400 invalid "bored" "an unknown revocation reason"
json_send POST $T/certificates/$serial/revoke '{"reason": "removeFromCRL"}'
refused 400 invalid "removeFromCRL" "removeFromCRL as a revocation reason"
json_send PUT $T/profiles/custom '{"name": "custom", "kind": "device", "colour": 1}'
refused 400 invalid "colour" "a profile with an unknown field"
api GET $T/profiles/device
profile=$BODY
json_send PUT $T/profiles/other "$profile"
refused 400 invalid "'device', not 'other'" "a profile whose name is not the path's"

# --- An oversized body ---------------------------------------------------------------------------
# libevent refuses a body over the limit before any handler sees it, with its own 413 page, so
# the JSON form is checked only when the reply is JSON. "Expect: 100-continue" has the client
# wait for the verdict on the Content-Length instead of writing into a closed connection.
too_large() {
    [ "$STATUS" = 413 ] || fail "$1: status $STATUS, want 413: $BODY"
    if [ "${BODY:0:1}" = "{" ]; then
        refused 413 too_large "" "$1"
        return
    fi
    [ "$(state)" = "$BEFORE" ] || fail "$1: the request changed the state"
    pass "$1"
}
python3 -c 'print("{\"uid\": \"" + "a" * 70000 + "\"}")' >"$TS_TEST_TMP/big.json"
api POST $T/devices -H 'Content-Type: application/json' -H 'Expect: 100-continue' \
    --data-binary @"$TS_TEST_TMP/big.json"
too_large "a body over --max-body"
python3 -c 'print("{\"csr\": \"" + "A" * 65600 + "\", \"profile\": \"device\"}")' \
    >"$TS_TEST_TMP/big.json"
api POST $T/certificates -H 'Content-Type: application/json' -H 'Expect: 100-continue' \
    --data-binary @"$TS_TEST_TMP/big.json"
too_large "a CSR over --max-body"

# --- The wrong content type where JSON is required ---------------------------------------------
api POST $T/devices -H 'Content-Type: text/plain' --data-binary '{"uid": "dev-2"}'
refused 415 unsupported "text/plain" "text/plain for a JSON body"
api POST $T/devices --data-binary '{"uid": "dev-2"}'
refused 415 unsupported "application/x-www-form-urlencoded" "a form for a JSON body"
api POST $T/devices -H 'Content-Type:' --data-binary '{"uid": "dev-2"}'
refused 415 unsupported "no Content-Type" "no content type at all"
api PUT $T/profiles/custom -H 'Content-Type: application/xml' --data-binary "$profile"
refused 415 unsupported "application/xml" "a profile as XML"

# --- Bad cursors, limits and filters -----------------------------------------------------------
for q in "cursor=abc" "cursor=-1" "cursor=0" "cursor=1e3"; do
    api GET "$T/certificates?$q"
    refused 400 invalid "cursor" "certificates ?$q"
done
for q in "limit=0" "limit=1001" "limit=abc" "limit=-5" "limit="; do
    api GET "$T/devices?$q"
    refused 400 invalid "limit" "devices ?$q"
done
api GET "$T/certificates?status=expired"
refused 400 invalid "'status'" "an unknown certificate status"
api GET "$T/devices?status=gone"
refused 400 invalid "'status'" "an unknown device status"
api GET "$T/certificates?expiring_within_days=0"
refused 400 invalid "expiring_within_days" "expiring within 0 days"
api GET "$T/certificates?expiring_within_days=99999999999999999999"
refused 400 invalid "expiring_within_days" "expiring within a huge number of days"
api GET "$T/certificates?device=a%20b"
refused 400 invalid "query parameter 'device'" "a device filter that is no UID"
api GET "/api/v1/audit?after=x"
refused 400 invalid "'after'" "an audit ?after that is no id"
api GET "/api/v1/audit?after=1&cursor=2"
refused 400 invalid "not both" "an audit ?after with a ?cursor"

# --- Bad serials and ids in the path -----------------------------------------------------------
api GET $T/certificates/XYZ
refused 400 invalid "XYZ" "a serial that is not hex"
json_send POST $T/certificates/0x12G4/revoke '{}'
refused 400 invalid "0x12G4" "revoking a serial that is not hex"
api POST $T/certificates/$(printf 'A%.0s' $(seq 1 60))/renew
refused 400 invalid "serial" "renewing a serial that is too long"
api GET $T/certificates/0A0B0C0D
refused 404 not_found "0A0B0C0D" "a serial that does not exist"
api DELETE $T/tokens/abc
refused 400 invalid "token id" "a token id that is no number"
api DELETE $T/claims/00017
refused 400 invalid "claim code id" "a claim code id with a leading zero"
api GET $T/cas/intermediate
refused 404 not_found "intermediate" "an unknown CA kind"

# --- Changes the state does not allow ----------------------------------------------------------
json_send POST $T/certificates/$revoked/revoke '{"reason": "superseded"}'
refused 409 conflict "$revoked" "revoking a revoked certificate"
api POST $T/devices/dev-9/disable
refused 409 conflict "dev-9" "disabling a disabled device"
json_send POST $T/devices '{"uid": "dev-9"}'
refused 409 conflict "dev-9" "registering a known device"
json_send POST $T/certificates "{\"csr\": $csr9, \"profile\": \"device\"}"
refused 400 invalid "dev-9" "issuing for a disabled device"

# --- Bodies where none belongs, and none where one does ---------------------------------------
api GET $T/certificates -H 'Content-Type: application/json' --data-binary '{"limit": 5}'
refused 400 invalid "takes no request body" "a body on GET"
api POST $T/certificates/$serial/renew -H 'Content-Type: application/json' --data-binary '{}'
refused 400 invalid "takes no request body" "a body on renew"
api POST $T/devices -H 'Content-Type: application/json'
refused 400 invalid "needs a request body" "no body where one is needed"

serve_stop
assert_eq "$SERVE_STATUS" 0 "SIGTERM stops the service cleanly"
finish
