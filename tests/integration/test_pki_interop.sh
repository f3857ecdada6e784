#!/usr/bin/env bash
# The PKI library's certificates, CRLs and OCSP responses against independent implementations:
# stock openssl (verify, crl -verify, ocsp -respin) and python3-cryptography. The CA keys live in
# a soft: key store; pki_tool drives the library without a database.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

tool="${TS_BUILD_DIR:-build}/bin/pki_tool"
src="${TS_SOURCE_DIR:-.}"
w=$TS_TEST_TMP
[ -x "$tool" ] || fail "pki_tool not built ($tool)"

# newreq NAME SUBJECT [openssl req options...]: a fresh P-256 key and its CSR, NAME.key/NAME.csr.
newreq() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$w/$1.key" \
        -subj "$2" -out "$w/$1.csr" "${@:3}" 2>/dev/null || fail "openssl req for $1"
}

run_ok "root and issuing CA made, keys in a soft: store" "$tool" init "$w"
cat "$w/root.pem" "$w/issuing.pem" >"$w/chain.pem"

# --- Certificates ---------------------------------------------------------------------------
newreq dev1 "/O=Whoever/CN=dev-0001"
run_ok "device certificate issued" "$tool" issue "$w" device "$w/dev1.csr" "$w/dev1.pem"
serial1=$OUT
run_ok "device chain verifies" \
    openssl verify -CAfile "$w/root.pem" -untrusted "$w/issuing.pem" "$w/dev1.pem"
assert_match "$OUT" "dev1.pem: OK" "openssl says OK"
run_ok "device certificate for TLS clients" openssl verify -purpose sslclient \
    -CAfile "$w/root.pem" -untrusted "$w/issuing.pem" "$w/dev1.pem"
run_capture openssl verify -purpose sslserver -CAfile "$w/root.pem" \
    -untrusted "$w/issuing.pem" "$w/dev1.pem"
[ "$RC" -ne 0 ] || fail "a device certificate passed as a TLS server"
pass "device certificate refused as a TLS server"
run_ok "device certificate printed" openssl x509 -in "$w/dev1.pem" -noout -text -serial
assert_match "$OUT" "Subject: O = Tessera Test, C = DE, CN = dev-0001" "subject from the template"
assert_match "$OUT" "CA:FALSE" "basicConstraints CA:FALSE"
assert_match "$OUT" "Digital Signature, Key Agreement" "key usage"
assert_match "$OUT" "TLS Web Client Authentication" "extended key usage"
assert_match "$OUT" "URI:http://127.0.0.1:8080/crl/issuing.crl" "CRL distribution point"
assert_match "$OUT" "OCSP - URI:http://127.0.0.1:8080/ocsp" "AIA OCSP"
assert_match "$OUT" "CA Issuers - URI:http://127.0.0.1:8080/ca/issuing.crt" "AIA caIssuers"
assert_match "$OUT" "serial=$serial1" "serial printed as openssl prints it"

newreq dev2 "/CN=dev-0002"
run_ok "second device certificate issued" "$tool" issue "$w" device "$w/dev2.csr" "$w/dev2.pem"
serial2=$OUT

newreq srv "/CN=srv.example.com" -addext "subjectAltName=DNS:srv.example.com,IP:127.0.0.1"
run_ok "server certificate issued" "$tool" issue "$w" server "$w/srv.csr" "$w/srv.pem"
run_ok "server chain verifies for the host name" openssl verify -purpose sslserver \
    -verify_hostname srv.example.com -CAfile "$w/root.pem" -untrusted "$w/issuing.pem" \
    "$w/srv.pem"
run_ok "server certificate printed" openssl x509 -in "$w/srv.pem" -noout -ext subjectAltName
assert_match "$OUT" "DNS:srv.example.com, IP Address:127.0.0.1" "SANs copied from the CSR"

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$w/fw.key" 2>/dev/null
openssl req -new -key "$w/fw.key" -subj "/CN=release-signer" -out "$w/fw.csr"
run_ok "firmware-signer certificate issued" "$tool" issue "$w" firmware-signer "$w/fw.csr" \
    "$w/fw.pem"
run_ok "firmware-signer chain verifies" \
    openssl verify -CAfile "$w/root.pem" -untrusted "$w/issuing.pem" "$w/fw.pem"
run_ok "firmware-signer printed" openssl x509 -in "$w/fw.pem" -noout -ext extendedKeyUsage
assert_match "$OUT" "Code Signing" "codeSigning"

newreq verif "/CN=anything"
run_ok "verification certificate issued" "$tool" issue "$w" verification "$w/verif.csr" \
    "$w/verif.pem" 9f8e7d6c5b4a39281706
run_ok "verification certificate printed" openssl x509 -in "$w/verif.pem" -noout -subject -dates
assert_match "$OUT" "subject=CN = 9f8e7d6c5b4a39281706" "CN is the registration code"
run_ok "verification chain verifies" \
    openssl verify -CAfile "$w/root.pem" -untrusted "$w/issuing.pem" "$w/verif.pem"

# --- Refusals -------------------------------------------------------------------------------
openssl req -new -newkey rsa:1024 -nodes -keyout "$w/rsa.key" -subj "/CN=dev-rsa" \
    -out "$w/rsa.csr" 2>/dev/null
expect_fail "RSA-1024 CSR refused" "$tool" issue "$w" device "$w/rsa.csr" "$w/rsa.pem"
assert_match "$ERR" "key is RSA-1024; profile 'device' allows P-256" "the message names the rule"
expect_fail "CA:TRUE CSR refused" "$tool" issue "$w" device "$src/tests/data/bad-csr/ca-true.pem" \
    "$w/ca.pem"
assert_match "$ERR" "CSR asks for CA:TRUE, which is never granted" "the message says CA:TRUE"
if [ -e "$w/rsa.pem" ] || [ -e "$w/ca.pem" ]; then
    fail "a refused CSR left a certificate"
fi
pass "refused CSRs leave no certificate"

# --- CRL ------------------------------------------------------------------------------------
run_ok "CRL made" "$tool" crl "$w" "$w/crl.der" 7 "$serial2:keyCompromise" "0ABC:none"
openssl crl -inform DER -in "$w/crl.der" -out "$w/crl.pem"
run_capture openssl crl -in "$w/crl.pem" -CAfile "$w/chain.pem" -verify -noout
[ "$RC" -eq 0 ] || fail "openssl crl -verify failed"
assert_match "$OUT$ERR" "verify OK" "CRL signature verifies"
run_ok "CRL printed" openssl crl -in "$w/crl.pem" -noout -text
assert_match "$OUT" "Version 2" "a v2 CRL"
assert_match "$OUT" "X509v3 CRL Number:" "with a CRL number"
assert_match "$OUT" "^ +7$" "number 7"
assert_match "$OUT" "Serial Number: $serial2" "the revoked serial"
assert_match "$OUT" "Key Compromise" "its reason"
assert_match "$OUT" "Next Update:" "nextUpdate"
run_capture openssl verify -crl_check -CAfile "$w/root.pem" -untrusted "$w/issuing.pem" \
    -CRLfile "$w/crl.pem" "$w/dev2.pem"
[ "$RC" -ne 0 ] || fail "a revoked certificate verified"
assert_match "$OUT$ERR" "certificate revoked" "the revoked certificate fails with the CRL"
run_ok "a good certificate passes with the CRL" openssl verify -crl_check \
    -CAfile "$w/root.pem" -untrusted "$w/issuing.pem" -CRLfile "$w/crl.pem" "$w/dev1.pem"
# The same CRL with one byte of its signature changed.
cp "$w/crl.der" "$w/crl-bad.der"
size=$(stat -c %s "$w/crl-bad.der")
last=$(od -An -tu1 -j $((size - 1)) -N1 "$w/crl-bad.der" | tr -d ' ')
# shellcheck disable=SC2059 # the format is the octal escape of the new byte
printf "\\$(printf '%03o' $((last ^ 1)))" |
    dd of="$w/crl-bad.der" bs=1 seek=$((size - 1)) conv=notrunc 2>/dev/null
run_capture openssl crl -inform DER -in "$w/crl-bad.der" -CAfile "$w/chain.pem" -verify -noout
assert_no_match "$OUT$ERR" "verify OK" "a tampered CRL does not verify"

# --- OCSP -----------------------------------------------------------------------------------
answers=("$serial1=good" "$serial2=revoked:keyCompromise")
run_ok "OCSP request made by openssl (with a nonce)" openssl ocsp -issuer "$w/issuing.pem" \
    -cert "$w/dev1.pem" -cert "$w/dev2.pem" -serial 0x1234 -reqout "$w/req.der"
run_ok "OCSP response made" "$tool" ocsp "$w" "$w/req.der" "$w/resp.der" "${answers[@]}"
run_capture openssl ocsp -respin "$w/resp.der" -reqin "$w/req.der" -CAfile "$w/root.pem" \
    -resp_text
[ "$RC" -eq 0 ] || fail "openssl ocsp -respin failed"
assert_match "$OUT$ERR" "Response verify OK" "OCSP response verifies"
assert_match "$OUT" "Cert Status: good" "good"
assert_match "$OUT" "Cert Status: revoked" "revoked"
assert_match "$OUT" "Revocation Reason: keyCompromise" "with its reason"
assert_match "$OUT" "Cert Status: unknown" "unknown"
assert_match "$OUT" "OCSP Nonce" "the nonce is echoed"
assert_match "$OUT" "Responder Id: [0-9A-F]{40}" "responder ID by key hash"
assert_no_match "$OUT$ERR" "Nonce Verify error|WARNING" "the nonce matches the request's"
run_capture openssl ocsp -respin "$w/resp.der" -CAfile "$w/root.pem" -issuer "$w/issuing.pem" \
    -cert "$w/dev1.pem" -cert "$w/dev2.pem" -serial 0x1234 -no_nonce
[ "$RC" -eq 0 ] || fail "openssl ocsp status summary failed"
assert_match "$OUT" "dev1.pem: good" "openssl reads dev1 as good"
assert_match "$OUT" "dev2.pem: revoked" "openssl reads dev2 as revoked"
assert_match "$OUT" "Reason: keyCompromise" "openssl reads the reason"
assert_match "$OUT" "Revocation Time:" "openssl reads the revocation time"
assert_match "$OUT" "0x1234: unknown" "openssl reads the unissued serial as unknown"

# A response checked against another request: the nonces differ.
openssl ocsp -issuer "$w/issuing.pem" -cert "$w/dev1.pem" -reqout "$w/req2.der"
run_capture openssl ocsp -respin "$w/resp.der" -reqin "$w/req2.der" -CAfile "$w/root.pem"
assert_match "$OUT$ERR" "Nonce Verify error" "a response to another request fails its nonce"

# No nonce asked, none given; SHA-256 CertIDs.
run_ok "OCSP request without a nonce, SHA-256 CertID" openssl ocsp -sha256 -no_nonce \
    -issuer "$w/issuing.pem" -cert "$w/dev1.pem" -reqout "$w/req3.der"
run_ok "OCSP response made" "$tool" ocsp "$w" "$w/req3.der" "$w/resp3.der" "${answers[@]}"
run_capture openssl ocsp -respin "$w/resp3.der" -reqin "$w/req3.der" -CAfile "$w/root.pem" \
    -resp_text
assert_match "$OUT$ERR" "Response verify OK" "SHA-256 response verifies"
assert_match "$OUT" "Hash Algorithm: sha256" "the CertID keeps its hash"
assert_match "$OUT" "Cert Status: good" "SHA-256 CertID answered good"
assert_no_match "$OUT" "OCSP Nonce" "no nonce when none was asked"

# Garbage in: a malformedRequest response out.
printf 'not an OCSP request' >"$w/bad.der"
run_ok "garbage answered" "$tool" ocsp "$w" "$w/bad.der" "$w/bad-resp.der"
run_capture openssl ocsp -respin "$w/bad-resp.der" -resp_text -noverify
assert_match "$OUT$ERR" "malformedrequest" "malformedRequest"

# --- An independent parser ------------------------------------------------------------------
items=(cert:"$w/root.pem":"$w/root.pem" cert:"$w/issuing.pem":"$w/root.pem")
for c in dev1 dev2 srv fw verif; do
    items+=(cert:"$w/$c.pem":"$w/issuing.pem")
done
run_ok "empty CRL made" "$tool" crl "$w" "$w/crl-empty.der" 8
items+=(crl:"$w/crl.der":"$w/issuing.pem" crl:"$w/crl-empty.der":"$w/issuing.pem")
# Debian's python3-cryptography, and another python3 on PATH with its own copy when there is one.
pythons=()
/usr/bin/python3 -c 'import cryptography' 2>/dev/null && pythons+=(/usr/bin/python3)
if command -v python3 >/dev/null && [ "$(command -v python3)" != /usr/bin/python3 ] &&
    python3 -c 'import cryptography' 2>/dev/null; then
    pythons+=("$(command -v python3)")
fi
[ "${#pythons[@]}" -gt 0 ] || fail "python3-cryptography is not installed"
for py in "${pythons[@]}"; do
    version=$("$py" -c 'import cryptography; print(cryptography.__version__)')
    run_ok "cryptography $version parses every certificate and CRL" \
        "$py" "$src/tests/integration/parse_with_cryptography.py" "${items[@]}"
    assert_match "$OUT" "ok crl .*crl.der: number=7 entries=.*=key_compromise" \
        "cryptography $version reads the reason code"
done

finish
