#!/usr/bin/env bash
# Revocation over the network: OCSP (POST and GET, HTTPS and the plain-HTTP listener) answers good,
# then revoked after `tessera cert revoke` on the instance while the service runs; the CRL at
# /crl/<tenant>.crl verifies and lists the serial once revoked; the revocation feed shows each
# revocation once, in seq order, and ?since=N gives only later ones. Malformed requests get the
# OCSP malformedRequest form.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/serve.sh"

W=$TS_TEST_TMP
D=$W/inst
serve_init "$D"
serve_ca "$D"
"$TESSERA" ca show --dir "$D" --issuing >"$W/issuing.pem"
cat "$W/issuing.pem" "$D/root.pem" >"$W/chain.pem"

# issue NAME: a device certificate $W/NAME.pem for CN=NAME; prints its serial.
issue() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/$1.key" \
        -subj "/CN=$1" -out "$W/$1.csr" 2>/dev/null
    "$TESSERA" cert issue --dir "$D" --csr "$W/$1.csr" --profile device --out "$W/$1.pem" >/dev/null
    openssl x509 -in "$W/$1.pem" -noout -serial | cut -d= -f2
}
serial1=$(issue dev-ocsp-1)
serial2=$(issue dev-ocsp-2)
issue dev-ocsp-3 >/dev/null

serve_start "$D" --http-listen 127.0.0.1:0
[ -n "$SERVE_HTTP_URL" ] || fail "no 'listening http' line: $(cat "$SERVE_LOG")"
pass "the service listens on HTTPS and plain HTTP"

CURL=(curl -sS --cacert "$D/ca-chain.pem")

# ocsp_status URL NAME: the status `openssl ocsp` reports for $W/NAME.pem, with a verified response.
ocsp_check() {
    run_capture openssl ocsp -issuer "$W/issuing.pem" -cert "$W/$2.pem" -url "$1/ocsp" \
        -CAfile "$D/root.pem" -timeout 20
    [ "$RC" -eq 0 ] || fail "openssl ocsp against $1 failed (exit $RC)"
    assert_match "$ERR" 'Response verify OK' "OCSP response from $1 verifies (nonce checked)"
}

# --- good, over HTTPS and over plain HTTP ----------------------------------------------------------
ocsp_check "$SERVE_URL" dev-ocsp-1
assert_match "$OUT" "dev-ocsp-1.pem: good" "OCSP over HTTPS: good"
ocsp_check "$SERVE_HTTP_URL" dev-ocsp-1
assert_match "$OUT" "dev-ocsp-1.pem: good" "OCSP over plain HTTP: good"

# A request without a nonce may be answered with a response signed moments before; it must still
# follow the store. nn_status: the status `openssl ocsp` reads from N answers to the same bytes.
openssl ocsp -issuer "$W/issuing.pem" -cert "$W/dev-ocsp-1.pem" -no_nonce -reqout "$W/nn1.req" \
    >/dev/null
nn_status() {
    local i
    for i in 1 2 3 4; do
        curl -sS -o "$W/nn1.$i.resp" -H 'Content-Type: application/ocsp-request' \
            --data-binary "@$W/nn1.req" "$SERVE_HTTP_URL/ocsp"
        openssl ocsp -respin "$W/nn1.$i.resp" -issuer "$W/issuing.pem" -cert "$W/dev-ocsp-1.pem" \
            -CAfile "$D/root.pem" -no_nonce 2>/dev/null | sed -n 's/^.*dev-ocsp-1.pem: //p'
    done | sort -u | tr '\n' ' '
}
assert_eq "$(nn_status)" "good " "nonce-less requests: good, every time"

# --- the CRL before any revocation -----------------------------------------------------------------
run_capture "${CURL[@]}" -D "$W/crl.hdr" -o "$W/crl0.der" -w '%{http_code}' \
    "$SERVE_URL/crl/default.crl"
assert_eq "$OUT" 200 "GET /crl/default.crl answers 200"
assert_match "$(cat "$W/crl.hdr")" '^[Cc]ontent-[Tt]ype: application/pkix-crl' \
    "the CRL is application/pkix-crl"
assert_match "$(cat "$W/crl.hdr")" '^[Cc]ache-[Cc]ontrol: .*max-age=[0-9]+' "the CRL has a max-age"
run_ok "the CRL verifies against the issuing CA" openssl crl -inform DER -in "$W/crl0.der" \
    -CAfile "$W/chain.pem" -noout -verify
assert_match "$ERR$OUT" 'verify OK' "openssl says verify OK"
run_ok "the CRL parses" openssl crl -inform DER -in "$W/crl0.der" -noout -text
assert_no_match "$OUT" "$serial1" "the valid certificate is not on the CRL"
run_capture curl -sS -o "$W/crl0h.der" -w '%{http_code}' "$SERVE_HTTP_URL/crl/default.crl"
assert_eq "$OUT" 200 "the CRL over plain HTTP"
run_capture "${CURL[@]}" -o "$W/nope.json" -w '%{http_code}' "$SERVE_URL/crl/nope.crl"
assert_eq "$OUT" 404 "an unknown tenant's CRL is 404"
assert_match "$(cat "$W/nope.json")" '"code": *"not_found"' "with a JSON not_found error"

# --- the feed before any revocation ----------------------------------------------------------------
AUTH=(-H "Authorization: Bearer $ADMIN_TOKEN")
FEED="$SERVE_URL/api/v1/tenants/default/revocations"
run_capture "${CURL[@]}" "${AUTH[@]}" -o "$W/feed0.json" -w '%{http_code}' "$FEED"
assert_eq "$OUT" 200 "the feed answers 200"
assert_eq "$(python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(len(d["items"]))' \
    "$W/feed0.json")" 0 "the feed is empty before any revocation"
run_capture "${CURL[@]}" -o /dev/null -w '%{http_code}' "$FEED"
assert_eq "$OUT" 401 "the feed needs a token"
run_capture "${CURL[@]}" "${AUTH[@]}" -o "$W/bad.json" -w '%{http_code}' "$FEED?since=x1"
assert_eq "$OUT" 400 "a bad since is refused"
assert_match "$(cat "$W/bad.json")" '"code": *"invalid"' "with an invalid error"

# --- revoke with the CLI while the service runs ----------------------------------------------------
run_ok "tessera cert revoke while serving" "$TESSERA" cert revoke --dir "$D" "$serial1" \
    --reason keyCompromise
ocsp_check "$SERVE_URL" dev-ocsp-1
assert_match "$OUT" "dev-ocsp-1.pem: revoked" "OCSP over HTTPS: revoked"
assert_match "$OUT" "Reason: keyCompromise" "with the reason"
ocsp_check "$SERVE_HTTP_URL" dev-ocsp-1
assert_match "$OUT" "dev-ocsp-1.pem: revoked" "OCSP over plain HTTP: revoked"
ocsp_check "$SERVE_URL" dev-ocsp-2
assert_match "$OUT" "dev-ocsp-2.pem: good" "the other certificate stays good"
assert_eq "$(nn_status)" "revoked " "the same nonce-less request bytes: revoked at once"

run_capture "${CURL[@]}" -o "$W/crl1.der" -w '%{http_code}' "$SERVE_URL/crl/default.crl"
assert_eq "$OUT" 200 "the CRL after the revocation"
run_ok "the new CRL verifies" openssl crl -inform DER -in "$W/crl1.der" -CAfile "$W/chain.pem" \
    -noout -verify
run_ok "the new CRL parses" openssl crl -inform DER -in "$W/crl1.der" -noout -text
assert_match "$OUT" "Serial Number: $serial1" "the CRL lists the revoked serial"
assert_match "$OUT" "Key Compromise" "with its reason"
n0=$(openssl crl -inform DER -in "$W/crl0.der" -noout -crlnumber | cut -d= -f2)
n1=$(openssl crl -inform DER -in "$W/crl1.der" -noout -crlnumber | cut -d= -f2)
python3 -c 'import sys; sys.exit(0 if int(sys.argv[2], 0) > int(sys.argv[1], 0) else 1)' "$n0" "$n1" ||
    fail "CRL number $n1 is not above $n0"
pass "the CRL was regenerated with a higher CRL number"

run_ok "revoke the second certificate" "$TESSERA" cert revoke --dir "$D" "$serial2" \
    --reason superseded

# --- the feed --------------------------------------------------------------------------------------
feed_get() {
    run_capture "${CURL[@]}" "${AUTH[@]}" -o "$W/feed.json" -w '%{http_code}' "$FEED$1"
    assert_eq "$OUT" 200 "the feed$1 answers 200"
}
feed_get ""
read -r count s1 s2 seq1 seq2 next <<<"$(python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
it = d["items"]
print(len(it), it[0]["serial"], it[1]["serial"], it[0]["seq"], it[1]["seq"], d["next_since"])' \
    "$W/feed.json")"
assert_eq "$count" 2 "the feed holds both revocations"
assert_eq "$s1 $s2" "$serial1 $serial2" "in the order they happened"
[ "$seq2" -gt "$seq1" ] || fail "seq $seq2 is not above $seq1"
pass "seq increases"
assert_eq "$next" "$seq2" "next_since is the last seq"
run_ok "the feed's items have every member" python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
for i in d["items"]:
    assert set(i) == {"seq", "event", "serial", "issuer_fingerprint", "device_uid", "reason",
                      "time"}, i
    assert i["event"] == "cert.revoked", i
    assert len(i["issuer_fingerprint"]) == 64, i
    assert i["time"].endswith("Z"), i
assert d["items"][0]["reason"] == "keyCompromise", d["items"][0]
assert d["items"][0]["device_uid"] == "dev-ocsp-1", d["items"][0]' "$W/feed.json"
feed_get "?since=$seq1"
assert_eq "$(python3 -c 'import json, sys
print(" ".join(i["serial"] for i in json.load(open(sys.argv[1]))["items"]))' "$W/feed.json")" \
    "$serial2" "since=N gives only the later revocation"
feed_get "?since=$seq2"
assert_eq "$(python3 -c 'import json, sys
d = json.load(open(sys.argv[1])); print(len(d["items"]), d["next_since"])' "$W/feed.json")" \
    "0 $seq2" "since the last seq: nothing new, next_since stays"
feed_get "?since=0&limit=1"
assert_eq "$(python3 -c 'import json, sys
d = json.load(open(sys.argv[1])); print(len(d["items"]), d["next_since"])' "$W/feed.json")" \
    "1 $seq1" "limit=1 gives one event and its seq"

run_capture "${CURL[@]}" "${AUTH[@]}" -o "$W/bad.json" -w '%{http_code}' "$FEED?limit=0"
assert_eq "$OUT" 400 "limit=0 is refused"

# A device's token sees only its own device's events.
run_ok "a device user for dev-ocsp-2" "$TESSERA" user create --dir "$D" --name dev2 --role device \
    --device dev-ocsp-2
run_ok "its token" "$TESSERA" token create --dir "$D" --user dev2
DEV_TOKEN=$(printf '%s\n' "$OUT" | tail -n1)
run_capture "${CURL[@]}" -H "Authorization: Bearer $DEV_TOKEN" -o "$W/feed.json" \
    -w '%{http_code}' "$FEED"
assert_eq "$OUT" 200 "a device token may read the feed"
assert_eq "$(python3 -c 'import json, sys
d = json.load(open(sys.argv[1])); print(" ".join(i["serial"] for i in d["items"]), d["next_since"])' \
    "$W/feed.json")" "$serial2 $seq2" "a device sees only its own events, next_since moves past others"

# --- malformed OCSP requests -----------------------------------------------------------------------
# ocsp_status_of FILE: the OCSPResponseStatus name of a DER response.
ocsp_status_of() {
    python3 -c 'import sys
from cryptography.x509 import ocsp
print(ocsp.load_der_ocsp_response(open(sys.argv[1], "rb").read()).response_status.name)' "$1"
}
printf 'not an OCSP request' >"$W/garbage.req"
run_capture "${CURL[@]}" -o "$W/bad.resp" -w '%{http_code}' -H 'Content-Type: application/ocsp-request' \
    --data-binary "@$W/garbage.req" "$SERVE_URL/ocsp"
assert_eq "$OUT" 400 "a malformed OCSP request answers 400"
assert_eq "$(ocsp_status_of "$W/bad.resp")" MALFORMED_REQUEST "with an OCSP malformedRequest"
openssl ocsp -issuer "$W/issuing.pem" -cert "$W/dev-ocsp-2.pem" -reqout "$W/ok.req" >/dev/null
run_capture "${CURL[@]}" -o "$W/bad.resp" -w '%{http_code}' -H 'Content-Type: text/plain' \
    --data-binary "@$W/ok.req" "$SERVE_URL/ocsp"
assert_eq "$OUT" 415 "a wrong content type answers 415"
assert_eq "$(ocsp_status_of "$W/bad.resp")" MALFORMED_REQUEST "with an OCSP malformedRequest"
run_capture "${CURL[@]}" -o "$W/bad.resp" -w '%{http_code}' "$SERVE_URL/ocsp/%21%21not-base64"
assert_eq "$OUT" 400 "bad base64 in a GET answers 400"
assert_eq "$(ocsp_status_of "$W/bad.resp")" MALFORMED_REQUEST "with an OCSP malformedRequest"

# A request for another CA's certificate: unauthorized (RFC 6960 section 2.3).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/other.key" \
    -subj /CN=other -days 1 -out "$W/other.pem" 2>/dev/null
openssl ocsp -issuer "$W/other.pem" -cert "$W/other.pem" -reqout "$W/other.req" >/dev/null
run_capture "${CURL[@]}" -o "$W/other.resp" -w '%{http_code}' \
    -H 'Content-Type: application/ocsp-request' --data-binary "@$W/other.req" "$SERVE_URL/ocsp"
assert_eq "$OUT" 200 "a request for a foreign issuer answers 200"
assert_eq "$(ocsp_status_of "$W/other.resp")" UNAUTHORIZED "with an OCSP unauthorized"

# --- the GET form ----------------------------------------------------------------------------------
# GET /ocsp/<url-encoded base64 of the DER request> (RFC 6960 appendix A.1), no nonce.
ocsp_get() {
    openssl ocsp -issuer "$W/issuing.pem" -cert "$W/$2.pem" -no_nonce -reqout "$W/get.req" \
        >/dev/null
    local enc
    enc=$(python3 -c 'import base64, sys, urllib.parse
print(urllib.parse.quote(base64.b64encode(open(sys.argv[1], "rb").read()).decode(), safe=""))' \
        "$W/get.req")
    run_capture "${CURL[@]}" -D "$W/get.hdr" -o "$W/get.resp" -w '%{http_code}' "$1/ocsp/$enc"
    assert_eq "$OUT" 200 "GET /ocsp/<base64> on $1 answers 200"
    run_capture openssl ocsp -respin "$W/get.resp" -issuer "$W/issuing.pem" -cert "$W/$2.pem" \
        -CAfile "$D/root.pem" -no_nonce
    [ "$RC" -eq 0 ] || fail "the GET response from $1 does not parse"
    assert_match "$ERR" 'Response verify OK' "the GET response from $1 verifies"
}
ocsp_get "$SERVE_URL" dev-ocsp-3
assert_match "$OUT" "dev-ocsp-3.pem: good" "OCSP GET over HTTPS: good"
assert_match "$(cat "$W/get.hdr")" '^[Cc]ache-[Cc]ontrol: .*max-age=[0-9]+' \
    "a GET answer says how long it may be cached"
assert_match "$(cat "$W/get.hdr")" '^[Cc]ontent-[Tt]ype: application/ocsp-response' \
    "the answer is application/ocsp-response"
ocsp_get "$SERVE_HTTP_URL" dev-ocsp-3
assert_match "$OUT" "dev-ocsp-3.pem: good" "OCSP GET over plain HTTP: good"
ocsp_get "$SERVE_HTTP_URL" dev-ocsp-1
assert_match "$OUT" "dev-ocsp-1.pem: revoked" "OCSP GET: revoked"

# The plain-HTTP listener serves only CRLs and OCSP.
run_capture curl -sS -o /dev/null -w '%{http_code}' "${AUTH[@]}" "${SERVE_HTTP_URL}${FEED#"$SERVE_URL"}"
[ "$OUT" != 200 ] || fail "the feed answered over plain HTTP"
pass "the feed is not served over plain HTTP ($OUT)"

serve_stop
assert_eq "$SERVE_STATUS" 0 "the service stops cleanly on SIGTERM"
run_ok "the audit log verifies" "$TESSERA" audit verify --dir "$D"
finish
