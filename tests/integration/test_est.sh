#!/usr/bin/env bash
# EST enrollment (RFC 7030, RFC 8951) against a running `tessera serve`, with stock curl and
# openssl as a new user would type them: first the README section "Enrolling a device with EST
# (curl + openssl)" exactly as written (only URL= points at this test's server), then what the
# README does not show: claim codes that are used up, expired or revoked, the body encodings
# RFC 8951 allows and the ones it does not, a second tenant, re-enrollment that changes the
# subject, proof of possession (tests/integration/est_pop_client.c), server-side key generation
# and the limit on failed claim codes. docs/est.md describes the protocol.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/serve.sh"

SRC=${TS_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
POP_CLIENT="${TS_BUILD_DIR:-build}/bin/est_pop_client"
DIR=$TS_TEST_TMP/ca
WORK=$TS_TEST_TMP/work
mkdir -p "$WORK"
export PATH="$(cd "$(dirname "$TESSERA")" && pwd):$PATH"
export TESSERA_DIR=$DIR

# est_call CURL-ARGS...: one request; sets STATUS, BODY (the reply body) and HDRS.
est_call() {
    local out=$TS_TEST_TMP/reply
    STATUS=$(curl -sS -o "$out.body" -D "$out.hdr" -w '%{http_code}' --cacert "$DIR/root.pem" "$@")
    BODY=$(cat "$out.body")
    HDRS=$(tr -d '\r' <"$out.hdr")
}

# enroll URL-PATH CSR-FILE CODE [curl args...]: simpleenroll with a claim code.
enroll() {
    local path=$1 csr=$2 code=$3
    shift 3
    est_call --user "any:$code" -H 'Content-Type: application/pkcs10' --data-binary "@$csr" \
        "$@" "$SERVE_URL$path"
}

# certs_count TENANT: how many certificates the tenant has, through the REST API (the server's
# own view of its store).
certs_count() {
    curl -sS --cacert "$DIR/root.pem" -H "Authorization: Bearer $ADMIN_TOKEN" \
        "$SERVE_URL/api/v1/tenants/$1/certificates?limit=1000" |
        python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))'
}

# new_csr FILE SUBJECT [KEY]: a base64 DER CSR (line breaks every 76 characters) for a new key.
new_csr() {
    local key=${3:-$1.key}
    [ -f "$key" ] || openssl ecparam -name prime256v1 -genkey -noout -out "$key"
    openssl req -new -key "$key" -subj "$2" -outform DER | base64 >"$1"
}

claim() {
    "$TESSERA" claim create "$@" | tail -n1
}

# --- An instance: tenant default, tenant acme whose device profile wants proof of possession,
# --- and a profile "keygen" in default that lets the CA make the key.
serve_init "$DIR"
run_ok "a second tenant" "$TESSERA" tenant create acme
"$TESSERA" profile show device --tenant acme >"$WORK/device.json"
python3 - "$WORK/device.json" "$WORK/pop.json" "$WORK/keygen.json" <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))
p["est"] = {"proof_of_possession": True}
json.dump(p, open(sys.argv[2], "w"))
p["name"] = "keygen"
p["est"] = {"server_keygen": True}
json.dump(p, open(sys.argv[3], "w"))
EOF
run_ok "acme's device profile requires proof of possession" \
    "$TESSERA" profile update device --file "$WORK/pop.json" --tenant acme
run_ok "a profile that allows server-side key generation" \
    "$TESSERA" profile create keygen --file "$WORK/keygen.json"
# In a || list, so that a first look at the log before the server has made it is not fatal.
serve_start "$DIR" || fail "tessera serve did not start"

# --- The README flow, exactly as written -------------------------------------------------------
awk '/^## Enrolling a device with EST \(curl \+ openssl\)/ { s = 1; next }
     s && /^## / { exit }
     s && /^```sh/ { b = 1; next }
     s && b && /^```/ { exit }
     s && b { print }' "$SRC/README.md" >"$WORK/readme.sh"
assert_match "$(cat "$WORK/readme.sh")" 'simplereenroll' "the README has the EST section"
sed -i "s|^URL=.*|URL=$SERVE_URL|" "$WORK/readme.sh"
(cd "$WORK" && bash -euo pipefail readme.sh >"$WORK/readme.out" 2>"$WORK/readme.err") ||
    fail "the README flow failed: $(cat "$WORK/readme.err")"
pass "the README flow runs: cacerts, simpleenroll with a claim code, simplereenroll"
OUT=$(cat "$WORK/readme.out")
assert_match "$OUT" 'subject=O = Tessera, CN = Tessera default Issuing CA' "cacerts: issuing CA"
assert_match "$OUT" 'subject=O = Tessera, CN = Tessera Root CA' "cacerts: root"
assert_match "$OUT" 'device.pem: OK' "openssl verify accepts the enrolled certificate"
run_ok "the certificate names the device" openssl x509 -in "$WORK/device.pem" -noout -subject
assert_match "$OUT" 'CN = sensor-0001' "CN is the device UID"
old_serial=$(openssl x509 -in "$WORK/device.pem" -noout -serial | cut -d= -f2)
new_serial=$(openssl x509 -in "$WORK/device-new.pem" -noout -serial | cut -d= -f2)
[ "$old_serial" != "$new_serial" ] || fail "re-enrollment gave the same serial"
assert_eq "$(openssl x509 -in "$WORK/device-new.pem" -noout -subject)" \
    "$(openssl x509 -in "$WORK/device.pem" -noout -subject)" "re-enrollment keeps the subject"
assert_eq "$(openssl x509 -in "$WORK/device-new.pem" -noout -pubkey)" \
    "$(openssl pkey -in "$WORK/device-new.key" -pubout)" "the new certificate is for the new key"
run_ok "the re-enrolled certificate verifies" openssl verify -CAfile "$DIR/root.pem" \
    -untrusted <("$TESSERA" ca show --issuing) "$WORK/device-new.pem"

# The rekey superseded the old certificate. The same request again, as a device sends it when the
# answer was lost, gets the certificate already issued, and nothing else changes; any other
# request by the superseded certificate is refused.
before=$(certs_count default)
est_call --cert "$WORK/device.pem" --key "$WORK/device.key" -H 'Content-Type: application/pkcs10' \
    --data-binary @"$WORK/renew.csr" "$SERVE_URL/.well-known/est/simplereenroll"
assert_eq "$STATUS" 200 "the lost answer of the rekey is given again"
base64 -d <<<"$BODY" | openssl pkcs7 -inform DER -print_certs >"$WORK/again.pem"
assert_eq "$(openssl x509 -in "$WORK/again.pem" -noout -fingerprint -sha256)" \
    "$(openssl x509 -in "$WORK/device-new.pem" -noout -fingerprint -sha256)" \
    "...the very certificate issued by the rekey"
assert_eq "$(certs_count default)" "$before" "...and nothing is issued"
openssl ecparam -name prime256v1 -genkey -noout -out "$WORK/device-third.key"
openssl x509 -x509toreq -in "$WORK/device.pem" -key "$WORK/device-third.key" |
    openssl req -outform DER | base64 >"$WORK/third.csr"
est_call --cert "$WORK/device.pem" --key "$WORK/device.key" -H 'Content-Type: application/pkcs10' \
    --data-binary @"$WORK/third.csr" "$SERVE_URL/.well-known/est/simplereenroll"
assert_eq "$STATUS" 401 "the superseded certificate cannot rekey to another key"
openssl x509 -x509toreq -in "$WORK/device.pem" -key "$WORK/device.key" |
    openssl req -outform DER | base64 >"$WORK/old-key.csr"
est_call --cert "$WORK/device.pem" --key "$WORK/device.key" -H 'Content-Type: application/pkcs10' \
    --data-binary @"$WORK/old-key.csr" "$SERVE_URL/.well-known/est/simplereenroll"
assert_eq "$STATUS" 401 "...nor renew its own key"
assert_match "$BODY" 'is revoked' "...saying it is revoked"
assert_eq "$(certs_count default)" "$before" "refusals issue nothing"

# --- Claim codes: used up, expired, revoked: 401 and nothing changes ------------------------------
before=$(certs_count default)
new_csr "$WORK/again.csr" /CN=sensor-0002
code=$(claim)
enroll /.well-known/est/simpleenroll "$WORK/again.csr" "$code"
assert_eq "$STATUS" 200 "a fresh code enrolls"
enroll /.well-known/est/simpleenroll "$WORK/again.csr" "$code"
assert_eq "$STATUS" 401 "the same code again: 401"
assert_match "$HDRS" '^WWW-Authenticate: Basic realm="tessera-est"' "401 names the Basic realm"
assert_match "$BODY" 'claim code not accepted' "the refusal says so"
short=$(claim --expires 1s)
sleep 2
enroll /.well-known/est/simpleenroll "$WORK/again.csr" "$short"
assert_eq "$STATUS" 401 "an expired code: 401"
out=$("$TESSERA" claim create)
revoked=$(tail -n1 <<<"$out")
run_ok "a code revoked" "$TESSERA" claim revoke "$(sed -n 's/^claim: *//p' <<<"$out")"
enroll /.well-known/est/simpleenroll "$WORK/again.csr" "$revoked"
assert_eq "$STATUS" 401 "a revoked code: 401"
est_call -H 'Content-Type: application/pkcs10' --data-binary @"$WORK/again.csr" \
    "$SERVE_URL/.well-known/est/simpleenroll"
assert_eq "$STATUS" 401 "no credentials at all: 401"
assert_match "$HDRS" '^WWW-Authenticate: Basic realm="tessera-est"' "...with the realm"
assert_eq "$(certs_count default)" "$((before + 1))" "refused codes issued nothing"

# --- Bodies (RFC 8951 section 3.2.2) --------------------------------------------------------------
many=$(claim --uses 20)
new_csr "$WORK/b1.csr" /CN=body-1
assert_match "$(wc -l <"$WORK/b1.csr")" '^[2-9]' "the CSR body has line breaks"
enroll /.well-known/est/simpleenroll "$WORK/b1.csr" "$many"
assert_eq "$STATUS" 200 "line breaks, no Content-Transfer-Encoding: accepted"
assert_match "$HDRS" '^Content-Type: application/pkcs7-mime; smime-type=certs-only' \
    "the reply is certs-only"
assert_match "$HDRS" '^Content-Transfer-Encoding: base64' "the reply says base64"
run_ok "the reply is a certs-only with the certificate" \
    bash -c "printf '%s\n' \"\$1\" | base64 -d | openssl pkcs7 -inform DER -print_certs" _ "$BODY"
assert_match "$OUT" 'subject=O = Tessera, CN = body-1' "...for the CSR's device"
new_csr "$WORK/b2.csr" /CN=body-2
sed 's/$/\r/' "$WORK/b2.csr" >"$WORK/b2.crlf"
enroll /.well-known/est/simpleenroll "$WORK/b2.crlf" "$many"
assert_eq "$STATUS" 200 "CRLF line breaks: accepted"
new_csr "$WORK/b3.csr" /CN=body-3
base64 -d "$WORK/b3.csr" | base64 -w0 >"$WORK/b3.one"
enroll /.well-known/est/simpleenroll "$WORK/b3.one" "$many" -H 'Content-Transfer-Encoding: base64'
assert_eq "$STATUS" 200 "one line with Content-Transfer-Encoding: base64: accepted"
before=$(certs_count default)
printf 'MIIB!!not*base64\n' >"$WORK/bad.b64"
enroll /.well-known/est/simpleenroll "$WORK/bad.b64" "$many"
assert_eq "$STATUS" 400 "bad base64: 400"
assert_match "$BODY" 'not base64' "...saying so"
assert_match "$HDRS" '^Content-Type: text/plain' "EST errors are text/plain"
openssl req -new -key "$WORK/b1.csr.key" -subj /CN=body-4 >"$WORK/pem.csr"
enroll /.well-known/est/simpleenroll "$WORK/pem.csr" "$many"
assert_eq "$STATUS" 400 "a PEM body: 400"
assert_match "$BODY" 'PEM' "...saying it is PEM"
base64 -d "$WORK/b1.csr" >"$WORK/b1.der"
enroll /.well-known/est/simpleenroll "$WORK/b1.der" "$many"
assert_eq "$STATUS" 400 "binary DER: 400"
new_csr "$WORK/b5.csr" /CN=body-5
est_call --user "any:$many" -H 'Content-Type: application/json' --data-binary @"$WORK/b5.csr" \
    "$SERVE_URL/.well-known/est/simpleenroll"
assert_eq "$STATUS" 415 "wrong content type: 415"
assert_match "$BODY" 'application/pkcs10' "...naming the right one"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/rsa.key" 2>/dev/null
new_csr "$WORK/rsa.csr" /CN=body-6 "$WORK/rsa.key"
enroll /.well-known/est/simpleenroll "$WORK/rsa.csr" "$many"
assert_eq "$STATUS" 400 "a CSR the profile refuses: 400"
assert_match "$BODY" "profile 'device' allows P-256" "...naming the rule"
# tamper FILE OUT: the base64 CSR with the last byte of its signature flipped.
tamper() {
    base64 -d "$1" | python3 -c 'import sys
d = bytearray(sys.stdin.buffer.read()); d[-1] ^= 1; sys.stdout.buffer.write(d)' | base64 >"$2"
}
tamper "$WORK/b5.csr" "$WORK/tampered.csr"
enroll /.well-known/est/simpleenroll "$WORK/tampered.csr" "$many"
assert_eq "$STATUS" 400 "a CSR whose signature does not verify: 400"
assert_match "$BODY" 'signature does not verify' "...saying so"
assert_eq "$(certs_count default)" "$before" "refused bodies issued nothing"

# --- A second tenant ----------------------------------------------------------------------------
est_call "$SERVE_URL/.well-known/est/acme/cacerts"
assert_eq "$STATUS" 200 "cacerts of tenant acme"
printf '%s\n' "$BODY" | base64 -d | openssl pkcs7 -inform DER -print_certs >"$WORK/acme-ca.pem"
assert_eq "$(openssl x509 -in "$WORK/acme-ca.pem" -noout -fingerprint -sha256)" \
    "$("$TESSERA" ca show --tenant acme --issuing | openssl x509 -noout -fingerprint -sha256)" \
    "the first certificate is acme's issuing CA"
est_call "$SERVE_URL/.well-known/est/nosuch/cacerts"
assert_eq "$STATUS" 404 "an unknown tenant: 404"

# --- csrattrs -----------------------------------------------------------------------------------
est_call "$SERVE_URL/.well-known/est/csrattrs"
assert_eq "$STATUS" 200 "csrattrs"
assert_match "$HDRS" '^Content-Type: application/csrattrs' "...as application/csrattrs"
OUT=$(printf '%s\n' "$BODY" | base64 -d | openssl asn1parse -inform DER)
assert_match "$OUT" 'id-ecPublicKey' "csrattrs: the key type"
assert_match "$OUT" 'prime256v1' "csrattrs: the curve"
assert_match "$OUT" 'ecdsa-with-SHA256' "csrattrs: the signature"
assert_no_match "$OUT" 'challengePassword' "default: no proof of possession asked"
est_call "$SERVE_URL/.well-known/est/acme/csrattrs"
OUT=$(printf '%s\n' "$BODY" | base64 -d | openssl asn1parse -inform DER)
assert_match "$OUT" 'challengePassword' "acme: challengePassword asked"

# --- Re-enrollment keeps subject and SANs --------------------------------------------------------
new_csr "$WORK/moved.csr" "/O=Tessera/CN=sensor-9999"
est_call --cert "$WORK/device-new.pem" --key "$WORK/device-new.key" \
    -H 'Content-Type: application/pkcs10' --data-binary @"$WORK/moved.csr" \
    "$SERVE_URL/.well-known/est/simplereenroll"
assert_eq "$STATUS" 400 "re-enrollment with another subject: 400"
assert_match "$BODY" 'keeps the subject' "...naming the rule"
est_call -H 'Content-Type: application/pkcs10' --data-binary @"$WORK/moved.csr" \
    "$SERVE_URL/.well-known/est/simplereenroll"
assert_eq "$STATUS" 401 "re-enrollment without a client certificate: 401"
# The same key renews: a new certificate, and the current one stays valid.
openssl x509 -x509toreq -in "$WORK/device-new.pem" -key "$WORK/device-new.key" |
    openssl req -outform DER | base64 >"$WORK/same.csr"
est_call --cert "$WORK/device-new.pem" --key "$WORK/device-new.key" \
    -H 'Content-Type: application/pkcs10' --data-binary @"$WORK/same.csr" \
    "$SERVE_URL/.well-known/est/simplereenroll"
assert_eq "$STATUS" 200 "re-enrollment with the same key renews"
est_call --cert "$WORK/device-new.pem" --key "$WORK/device-new.key" \
    -H 'Content-Type: application/pkcs10' --data-binary @"$WORK/same.csr" \
    "$SERVE_URL/.well-known/est/simplereenroll"
assert_eq "$STATUS" 200 "...and the renewed certificate is still current"
# A device certificate enrolls its own device only.
new_csr "$WORK/other.csr" /CN=sensor-0003
est_call --cert "$WORK/device-new.pem" --key "$WORK/device-new.key" \
    -H 'Content-Type: application/pkcs10' --data-binary @"$WORK/other.csr" \
    "$SERVE_URL/.well-known/est/simpleenroll"
assert_eq "$STATUS" 403 "a client certificate enrolls no other device"
openssl req -new -key "$WORK/device-new.key" -subj /CN=sensor-0001 -outform DER |
    base64 >"$WORK/self.csr"
est_call --cert "$WORK/device-new.pem" --key "$WORK/device-new.key" \
    -H 'Content-Type: application/pkcs10' --data-binary @"$WORK/self.csr" \
    "$SERVE_URL/.well-known/est/simpleenroll"
assert_eq "$STATUS" 200 "simpleenroll with the device's own certificate"
tamper "$WORK/self.csr" "$WORK/self-tampered.csr"
est_call --cert "$WORK/device-new.pem" --key "$WORK/device-new.key" \
    -H 'Content-Type: application/pkcs10' --data-binary @"$WORK/self-tampered.csr" \
    "$SERVE_URL/.well-known/est/simpleenroll"
assert_eq "$STATUS" 400 "...and with a bad signature: 400, not 401"
assert_match "$BODY" 'signature does not verify' "...saying so"
est_call --cert "$WORK/device-new.pem" --key "$WORK/device-new.key" \
    -H 'Content-Type: application/pkcs10' --data-binary @"$WORK/self.csr" \
    "$SERVE_URL/.well-known/est/acme/simpleenroll"
assert_eq "$STATUS" 401 "...but not in another tenant"

# --- Proof of possession (tenant acme) ------------------------------------------------------------
pop=$(claim --tenant acme --uses 2)
new_csr "$WORK/nopop.csr" /CN=pop-0
enroll /.well-known/est/acme/simpleenroll "$WORK/nopop.csr" "$pop"
assert_eq "$STATUS" 400 "PoP required, CSR without the binding: 400"
assert_match "$BODY" 'proof of possession' "...naming proof of possession"
assert_match "$BODY" "profile 'device'" "...and the profile"
run_ok "PoP over TLS 1.3 (tls-exporter)" "$POP_CLIENT" --cacert "$DIR/root.pem" \
    --url "$SERVE_URL/.well-known/est/acme/simpleenroll" --user "any:$pop" --cn pop-1 \
    --out "$WORK/pop1.b64"
assert_match "$OUT" 'binding tls-exporter 32' "...with the 32-byte exporter"
base64 -d "$WORK/pop1.b64" | openssl pkcs7 -inform DER -print_certs >"$WORK/pop1.pem"
run_ok "the PoP certificate verifies against acme's CA" openssl verify -CAfile "$DIR/root.pem" \
    -untrusted <("$TESSERA" ca show --tenant acme --issuing) "$WORK/pop1.pem"
run_ok "a binding of another connection: 400" "$POP_CLIENT" --cacert "$DIR/root.pem" \
    --url "$SERVE_URL/.well-known/est/acme/simpleenroll" --user "any:$pop" --cn pop-2 \
    --binding wrong --expect-status 400
run_ok "PoP over TLS 1.2 (tls-unique)" "$POP_CLIENT" --cacert "$DIR/root.pem" --tls1.2 \
    --url "$SERVE_URL/.well-known/est/acme/simpleenroll" --user "any:$pop" --cn pop-3
assert_match "$OUT" 'binding tls-unique 12' "...with the 12-byte Finished"
# The refusals used none of the code's two uses; both went to the two good requests.
run_ok "the code is used up now" "$POP_CLIENT" --cacert "$DIR/root.pem" \
    --url "$SERVE_URL/.well-known/est/acme/simpleenroll" --user "any:$pop" --cn pop-4 \
    --expect-status 401

# --- Server-side key generation -------------------------------------------------------------------
kg=$(claim --profile keygen)
new_csr "$WORK/kg.csr" /CN=made-0001
enroll /.well-known/est/serverkeygen "$WORK/kg.csr" "$many"
assert_eq "$STATUS" 501 "serverkeygen under the device profile: 501"
assert_match "$BODY" 'server_keygen' "...saying how to enable it"
enroll /.well-known/est/serverkeygen "$WORK/kg.csr" "$kg"
assert_eq "$STATUS" 200 "serverkeygen under a profile that allows it"
assert_match "$HDRS" '^Content-Type: multipart/mixed; boundary=' "...as multipart/mixed"
python3 - "$TS_TEST_TMP/reply.hdr" "$TS_TEST_TMP/reply.body" "$WORK" <<'EOF'
import base64, email, sys
hdr = open(sys.argv[1], "rb").read()
ctype = [l.split(b":", 1)[1].strip() for l in hdr.splitlines()
         if l.lower().startswith(b"content-type:")][0]
body = open(sys.argv[2], "rb").read()
msg = email.message_from_bytes(b"Content-Type: " + ctype + b"\r\n\r\n" + body)
parts = [p for p in msg.walk() if not p.is_multipart()]
types = [p.get_content_type() for p in parts]
assert types == ["application/pkcs8", "application/pkcs7-mime"], types
assert all(p["Content-Transfer-Encoding"] == "base64" for p in parts)
open(sys.argv[3] + "/made.p8", "wb").write(base64.b64decode(parts[0].get_payload()))
open(sys.argv[3] + "/made.p7", "wb").write(base64.b64decode(parts[1].get_payload()))
EOF
pass "the reply has the PKCS#8 key, then the certs-only"
openssl pkcs7 -inform DER -in "$WORK/made.p7" -print_certs >"$WORK/made.pem"
assert_eq "$(openssl x509 -in "$WORK/made.pem" -noout -pubkey)" \
    "$(openssl pkey -inform DER -in "$WORK/made.p8" -pubout)" "the certificate is for the key sent"
assert_match "$(openssl x509 -in "$WORK/made.pem" -noout -subject)" 'CN = made-0001' \
    "...with the CSR's subject"

# --- Failed claim codes are limited per address ---------------------------------------------------
limited=""
for i in $(seq 1 12); do
    wrong="TSC-0000-0000-0000-0000-0000-0000-000$((i % 10))"
    enroll /.well-known/est/simpleenroll "$WORK/again.csr" "$wrong"
    if [ "$STATUS" = 429 ]; then
        limited=$i
        break
    fi
    assert_eq "$STATUS" 401 "a wrong code: 401"
done
[ -n "$limited" ] || fail "12 wrong codes were never limited"
pass "too many wrong codes from one address: 429"
assert_match "$HDRS" '^Retry-After: ' "429 says when to retry"
good=$(claim)
enroll /.well-known/est/simpleenroll "$WORK/again.csr" "$good"
assert_eq "$STATUS" 429 "while limited, even a good code waits"

serve_stop
assert_eq "$SERVE_STATUS" 0 "the service stops cleanly"
run_ok "the audit chain verifies" "$TESSERA" audit verify
finish
