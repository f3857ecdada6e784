#!/usr/bin/env bash
# Issuing and the certificate lifecycle from the command line: CSRs from stock openssl and from
# `tessera keystore csr` (soft: and SoftHSM2), chains checked by openssl, list/show/revoke/renew/
# rekey, CRLs checked by openssl and python3-cryptography, OCSP answers checked by openssl ocsp,
# the verification certificate, profiles, and the bad-CSR corpus refused with its own message
# and nothing stored.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ -x "$TESSERA" ] || fail "no tessera at $TESSERA (set TS_BUILD_DIR)"
module=$(softhsm_module)
softhsm_setup
export TS_SOFTHSM_MODULE="$module"
unset TESSERA_OPERATOR
export TESSERA_DIR="$TS_TEST_TMP/ca"
W=$TS_TEST_TMP
corpus="${TS_SOURCE_DIR:-.}/tests/data/bad-csr"

# newcsr NAME SUBJECT [openssl req options...]: a fresh P-256 key and CSR in $W/NAME.{key,csr}.
newcsr() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/$1.key" \
        -subj "$2" -out "$W/$1.csr" "${@:3}" 2>/dev/null
}

# serial_of PEM: the serial as openssl prints it.
serial_of() {
    openssl x509 -in "$1" -noout -serial | cut -d= -f2
}

# chain_ok PEM: openssl verifies PEM up to the root.
chain_ok() {
    openssl verify -CAfile "$W/root.pem" -untrusted "$W/issuing.pem" "$1" >/dev/null 2>&1
}

# cert_count [cert list options]: certificates listed, but for the service's TLS certificate.
# Certificates of the test, not the service's own TLS server and MQTT client ones from init.
cert_count() {
    local tls client
    tls=$(serial_of "$TESSERA_DIR/tls/server.pem")
    client=$(serial_of "$TESSERA_DIR/tls/client.pem")
    "$TESSERA" cert list "$@" | grep -v "^$tls"$'\t' | grep -vc "^$client"$'\t' || true
}

audit_count() {
    "$TESSERA" audit list | wc -l
}

run_ok "init" "$TESSERA" init --org "Issue Test" --country FR --url http://pki.issue.example \
    --shares 2/3
run_ok "root.pem" "$TESSERA" ca show --root --out "$W/root.pem"
run_ok "issuing.pem" "$TESSERA" ca show --issuing --out "$W/issuing.pem"

# --- --help everywhere ---------------------------------------------------------------------------

for cmd in "init" "ceremony restore" "ceremony offline-root" "tenant create" "tenant list" \
    "ca show" "ca verification-cert" "profile list" "profile show" "profile create" \
    "profile update" "cert issue" "cert list" "cert show" "cert revoke" "cert renew" \
    "cert rekey" "crl" "ocsp" "batch" "audit list" "audit verify"; do
    # shellcheck disable=SC2086 # the command words split on purpose
    run_ok "$cmd --help" "$TESSERA" $cmd --help
    assert_match "$OUT" "^usage: tessera $cmd " "$cmd --help: usage line"
    assert_match "$OUT" '--dir DIR' "$cmd --help: names --dir"
done
expect_status 2 "cert show without a serial" "$TESSERA" cert show
expect_status 2 "cert show with two serials" "$TESSERA" cert show AB CD
assert_match "$ERR" "unexpected argument 'CD'" "a second positional: named"
expect_status 2 "cert show with a bad serial" "$TESSERA" cert show xyz
expect_status 1 "--out that is not a regular file" "$TESSERA" ca show --root --out "$W"
assert_match "$ERR" 'not a regular file' "--out a directory: refused"
[ -d "$W" ] || fail "--out replaced a directory"
expect_status 1 "a directory without an instance" "$TESSERA" cert list --dir "$W/none"
assert_match "$ERR" 'no instance in' "no instance: said so"

# --- issue from stock openssl CSRs ---------------------------------------------------------------

newcsr dev1 /CN=dev-0001
run_ok "issue a device certificate" "$TESSERA" cert issue --csr "$W/dev1.csr" --profile device \
    --out "$W/dev1.pem"
chain_ok "$W/dev1.pem" || fail "dev1 does not chain"
pass "dev1 chains to the root"
text=$(openssl x509 -in "$W/dev1.pem" -noout -text)
assert_match "$text" 'Subject: O = Issue Test, C = FR, CN = dev-0001' "dev1: subject from the template"
assert_match "$text" 'TLS Web Client Authentication' "dev1: clientAuth"
assert_match "$text" 'CA:FALSE' "dev1: not a CA"
assert_match "$text" 'URI:http://pki.issue.example/crl/default.crl' "dev1: CRL DP"
assert_match "$text" 'OCSP - URI:http://pki.issue.example/ocsp' "dev1: OCSP URL"
assert_match "$text" 'CA Issuers - URI:http://pki.issue.example/ca/default.crt' "dev1: caIssuers"
s1=$(serial_of "$W/dev1.pem")
assert_match "$s1" '^[0-9A-F]{40}$' "dev1: a 20-byte serial"
assert_eq "$(openssl x509 -in "$W/dev1.pem" -noout -pubkey)" \
    "$(openssl pkey -in "$W/dev1.key" -pubout)" "dev1: the CSR's key"

newcsr web /CN=web.issue.example -addext "subjectAltName=DNS:web.issue.example,IP:10.0.0.7"
run_ok "issue a server certificate" "$TESSERA" cert issue --csr "$W/web.csr" --profile server \
    --out "$W/web.pem"
chain_ok "$W/web.pem" || fail "web does not chain"
text=$(openssl x509 -in "$W/web.pem" -noout -text)
assert_match "$text" 'TLS Web Server Authentication' "web: serverAuth"
assert_match "$text" 'DNS:web.issue.example, IP Address:10.0.0.7' "web: the SANs"
run_ok "the server certificate verifies for its name" openssl verify -CAfile "$W/root.pem" \
    -untrusted "$W/issuing.pem" -purpose sslserver -verify_hostname web.issue.example "$W/web.pem"

# --- issue from tessera keystore csr (soft: and SoftHSM2) ----------------------------------------

declare -A stores=(
    [soft]="soft:$W/devstore?pin-value=dev-pin-1234"
    [pkcs11]="pkcs11:token=devtoken?module-path=$module&pin-value=dev-pin-1234"
)
for b in soft pkcs11; do
    uri=${stores[$b]}
    run_ok "$b: keystore init" "$TESSERA" keystore init --keystore "$uri" --so-pin so-pin-9876
    run_ok "$b: genkey" "$TESSERA" keystore genkey --keystore "$uri" --label id
    run_ok "$b: keystore csr" "$TESSERA" keystore csr --keystore "$uri" --label id \
        --subject "/CN=dev-$b" --out "$W/$b.csr"
    run_ok "$b: issue" "$TESSERA" cert issue --csr "$W/$b.csr" --profile device --out "$W/$b.pem"
    chain_ok "$W/$b.pem" || fail "$b certificate does not chain"
    pass "$b: the certificate chains"
    "$TESSERA" keystore pubkey --keystore "$uri" --label id --out "$W/$b.pub" >/dev/null
    assert_eq "$(openssl x509 -in "$W/$b.pem" -noout -pubkey)" "$(cat "$W/$b.pub")" \
        "$b: the certificate holds the key-store key"
done

# --- list and show -------------------------------------------------------------------------------

run_ok "cert list" "$TESSERA" cert list
# Four device certificates, and the service's TLS server and MQTT client certificates from init.
assert_eq "$(wc -l <<<"$OUT")" 6 "six certificates"
assert_match "$OUT" "^$s1"$'\tvalid\t[0-9T:Z-]+\tdevice\tdev-0001\tCN=dev-0001' "list: dev1's row"
run_ok "cert list --device" "$TESSERA" cert list --device dev-soft
assert_eq "$(wc -l <<<"$OUT")" 1 "--device filters"
run_ok "cert list --expiring-within 1" "$TESSERA" cert list --expiring-within 1
assert_eq "$OUT" "" "nothing expires within a day"
run_ok "cert list --expiring-within 4000" "$TESSERA" cert list --expiring-within 4000
assert_eq "$(wc -l <<<"$OUT")" 6 "everything expires within 4000 days"
lower=$(tr A-F a-f <<<"$s1")
run_ok "cert show, lower case" "$TESSERA" cert show "$lower"
assert_match "$OUT" "^serial: +$s1$" "show: the serial"
assert_match "$OUT" '^status: +valid$' "show: valid"
assert_match "$OUT" '^device: +dev-0001$' "show: the device"
assert_eq "$(openssl x509 -in <(echo "$OUT") -outform DER | sha256sum)" \
    "$(openssl x509 -in "$W/dev1.pem" -outform DER | sha256sum)" "show: the same certificate"
run_ok "cert show as openssl x509 -serial prints it" "$TESSERA" cert show \
    "$(openssl x509 -in "$W/dev1.pem" -noout -serial)"
expect_status 1 "cert show of an unknown serial" "$TESSERA" cert show 0123456789ABCDEF
assert_match "$ERR" 'no certificate with serial 0123456789ABCDEF' "unknown serial: named"

# --- renew and rekey -----------------------------------------------------------------------------

run_ok "renew dev1" "$TESSERA" cert renew "$s1" --out "$W/dev1-renewed.pem"
s1r=$(serial_of "$W/dev1-renewed.pem")
[ "$s1r" != "$s1" ] || fail "renew kept the serial"
pass "renew: a new serial"
assert_eq "$(openssl x509 -in "$W/dev1-renewed.pem" -noout -pubkey)" \
    "$(openssl x509 -in "$W/dev1.pem" -noout -pubkey)" "renew: the same key"
assert_eq "$(openssl x509 -in "$W/dev1-renewed.pem" -noout -subject)" \
    "$(openssl x509 -in "$W/dev1.pem" -noout -subject)" "renew: the same subject"
chain_ok "$W/dev1-renewed.pem" || fail "renewed does not chain"
assert_match "$("$TESSERA" cert show "$s1")" '^status: +valid$' "renew: the old one stays valid"

newcsr dev1b /CN=someone-else
run_ok "rekey dev1" "$TESSERA" cert rekey "$s1" --csr "$W/dev1b.csr" --out "$W/dev1-rekeyed.pem"
s1k=$(serial_of "$W/dev1-rekeyed.pem")
assert_eq "$(openssl x509 -in "$W/dev1-rekeyed.pem" -noout -pubkey)" \
    "$(openssl pkey -in "$W/dev1b.key" -pubout)" "rekey: the new key"
assert_match "$(openssl x509 -in "$W/dev1-rekeyed.pem" -noout -subject)" 'CN = dev-0001' \
    "rekey: the device keeps its UID"
chain_ok "$W/dev1-rekeyed.pem" || fail "rekeyed does not chain"
assert_match "$("$TESSERA" cert show "$s1k")" '^status: +valid$' "rekey: the new one is valid"
run_ok "show the old certificate" "$TESSERA" cert show "$s1"
assert_match "$OUT" '^status: +revoked$' "rekey: the old one is revoked"
assert_match "$OUT" '^revoked: .*\(superseded\)$' "rekey: as superseded"
expect_status 1 "rekey a revoked certificate" "$TESSERA" cert rekey "$s1" --csr "$W/dev1b.csr"
assert_match "$ERR" 'is revoked' "rekey revoked: said so"
expect_status 1 "rekey with the same key" "$TESSERA" cert rekey "$s1r" --csr "$W/dev1.csr"
assert_match "$ERR" 'same key' "rekey same key: said so"

# --- revoke, CRL ---------------------------------------------------------------------------------

sweb=$(serial_of "$W/web.pem")
run_ok "revoke web" "$TESSERA" cert revoke "$sweb" --reason keyCompromise
expect_status 1 "revoke twice" "$TESSERA" cert revoke "$sweb" --reason keyCompromise
assert_match "$ERR" 'already revoked' "revoke twice: said so"
expect_status 2 "revoke with an unknown reason" "$TESSERA" cert revoke "$s1r" --reason bogus
run_ok "cert list --status revoked" "$TESSERA" cert list --status revoked
assert_eq "$(wc -l <<<"$OUT")" 2 "two revoked"
assert_match "$OUT" "^$sweb"$'\trevoked' "list: web revoked"
assert_eq "$(cert_count --status valid)" 4 "four valid"

run_ok "crl" "$TESSERA" crl --out "$W/c1.crl"
run_ok "openssl crl -verify" openssl crl -inform DER -in "$W/c1.crl" -CAfile "$W/issuing.pem" \
    -noout -verify
crl_text=$(openssl crl -inform DER -in "$W/c1.crl" -noout -text)
assert_match "$crl_text" 'Version 2' "CRL v2"
assert_match "$crl_text" "Serial Number: $sweb" "CRL lists web"
assert_match "$crl_text" "Serial Number: $s1" "CRL lists the superseded certificate"
assert_match "$crl_text" 'Key Compromise' "CRL: reason keyCompromise"
assert_match "$crl_text" 'Superseded' "CRL: reason superseded"
assert_no_match "$crl_text" "Serial Number: $s1r" "CRL: not the valid renewed one"
n1=$(openssl crl -inform DER -in "$W/c1.crl" -noout -crlnumber | cut -d= -f2)
run_ok "a second CRL, PEM, 24 hours" "$TESSERA" crl --pem --next-update 24 --out "$W/c2.crl"
n2=$(openssl crl -in "$W/c2.crl" -noout -crlnumber | cut -d= -f2)
assert_eq "$((n2))" "$((n1 + 1))" "the CRL number increases"
last=$(date -d "$(openssl crl -in "$W/c2.crl" -noout -lastupdate | cut -d= -f2)" +%s)
next=$(date -d "$(openssl crl -in "$W/c2.crl" -noout -nextupdate | cut -d= -f2)" +%s)
assert_eq "$((next - last))" 86400 "--next-update 24: a day"
last=$(date -d "$(openssl crl -inform DER -in "$W/c1.crl" -noout -lastupdate | cut -d= -f2)" +%s)
next=$(date -d "$(openssl crl -inform DER -in "$W/c1.crl" -noout -nextupdate | cut -d= -f2)" +%s)
assert_eq "$((next - last))" $((7 * 86400)) "default nextUpdate: 7 days"
expect_status 2 "crl --next-update 0" "$TESSERA" crl --next-update 0

# --- OCSP ----------------------------------------------------------------------------------------

openssl ocsp -issuer "$W/issuing.pem" -cert "$W/web.pem" -cert "$W/dev1-renewed.pem" \
    -reqout "$W/req.der" >/dev/null 2>&1
run_ok "tessera ocsp" "$TESSERA" ocsp --request "$W/req.der" --out "$W/resp.der"
# openssl ocsp adds a fresh nonce of its own to the request it builds from -cert, so the
# response's nonce is compared with the request's separately below.
run_ok "openssl ocsp -respin" openssl ocsp -respin "$W/resp.der" -no_nonce \
    -issuer "$W/issuing.pem" -CAfile "$W/root.pem" -cert "$W/web.pem" -cert "$W/dev1-renewed.pem"
assert_match "$OUT$ERR" 'Response verify OK' "OCSP: the response verifies"
assert_match "$OUT" 'web.pem: revoked' "OCSP: web revoked"
assert_match "$OUT" 'Reason: keyCompromise' "OCSP: the reason"
assert_match "$OUT" 'dev1-renewed.pem: good' "OCSP: renewed good"
req_nonce=$(openssl ocsp -reqin "$W/req.der" -req_text -noverify | grep -A1 'OCSP Nonce' | tail -n 1)
resp_nonce=$(openssl ocsp -respin "$W/resp.der" -resp_text -noverify | grep -A1 'OCSP Nonce' |
    tail -n 1)
assert_match "$req_nonce" '^ +04[0-9A-F]{4,}$' "OCSP: the request has a nonce"
assert_eq "$resp_nonce" "$req_nonce" "OCSP: the response echoes the nonce"

# --- python3-cryptography parses every certificate and CRL ----------------------------------------

run_ok "python3-cryptography parses them" python3 - "$W" "$sweb" <<'EOF'
import glob, sys
from cryptography import x509
w, revoked = sys.argv[1], int(sys.argv[2], 16)
certs = [f for f in glob.glob(w + "/*.pem") if "-----BEGIN CERTIFICATE-----" in open(f).read()]
assert len(certs) >= 8, certs
for f in certs:
    c = x509.load_pem_x509_certificate(open(f, "rb").read())
    assert c.serial_number > 0 and c.serial_number.bit_length() <= 160, f
crl = x509.load_der_x509_crl(open(w + "/c1.crl", "rb").read())
entry = crl.get_revoked_certificate_by_serial_number(revoked)
assert entry is not None
reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
assert reason == x509.ReasonFlags.key_compromise, reason
assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number >= 1
x509.load_pem_x509_crl(open(w + "/c2.crl", "rb").read())
print("parsed", len(certs), "certificates and 2 CRLs")
EOF

# --- verification certificate --------------------------------------------------------------------

code=6a3f0c9e7d21b58e4f0a9c3d2b1e7f6a5c4d3b2a1908f7e6d5c4b3a29180f7e6
files_before=$(ls "$W")
run_ok "verification-cert" "$TESSERA" ca verification-cert --code "$code" --out "$W/ver.pem"
assert_eq "$(comm -13 <(echo "$files_before") <(ls "$W"))" "ver.pem" \
    "verification: only the certificate is written (its key is discarded)"
assert_match "$(openssl x509 -in "$W/ver.pem" -noout -subject)" "CN = $code" "verification: CN=CODE"
chain_ok "$W/ver.pem" || fail "the verification certificate does not chain"
pass "verification: chains to the root"
assert_eq "$(cert_count)" 7 "verification: stored"
expect_status 1 "verification-cert with a bad code" "$TESSERA" ca verification-cert --code 'a b'

# --- profiles ------------------------------------------------------------------------------------

run_ok "profile list" "$TESSERA" profile list
assert_eq "$OUT" $'device\nfirmware-signer\nserver\nverification' "the built-in profiles"
"$TESSERA" profile show device >"$W/device.json"
python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); p["name"]="sensor"; p["validity"]={"days":30}; json.dump(p,open(sys.argv[2],"w"))' \
    "$W/device.json" "$W/sensor.json"
run_ok "profile create sensor" "$TESSERA" profile create sensor --file "$W/sensor.json"
expect_status 1 "profile create sensor again" "$TESSERA" profile create sensor --file "$W/sensor.json"
assert_match "$ERR" 'already exists' "duplicate profile: said so"
expect_status 1 "profile create with another name" "$TESSERA" profile create other --file "$W/sensor.json"
assert_match "$ERR" "\"name\" is 'sensor'" "name mismatch: said so"
echo '{"name": "broken", "kind": "device", "bogus": 1}' >"$W/broken.json"
expect_status 1 "profile create: a bad definition" "$TESSERA" profile create broken --file "$W/broken.json"
assert_match "$ERR" 'profile field' "bad profile: names the field"
expect_status 1 "profile update of an unknown profile" "$TESSERA" profile update nope --file "$W/sensor.json"
newcsr s1 /CN=sensor-1
run_ok "issue under sensor" "$TESSERA" cert issue --csr "$W/s1.csr" --profile sensor --out "$W/s1.pem"
nb=$(date -d "$(openssl x509 -in "$W/s1.pem" -noout -startdate | cut -d= -f2)" +%s)
na=$(date -d "$(openssl x509 -in "$W/s1.pem" -noout -enddate | cut -d= -f2)" +%s)
[ $(((na - nb) / 86400)) -eq 30 ] || fail "sensor validity is $(((na - nb) / 86400)) days, want 30"
pass "sensor: 30 days"
python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); p["validity"]={"days":60}; json.dump(p,open(sys.argv[1],"w"))' "$W/sensor.json"
run_ok "profile update sensor" "$TESSERA" profile update sensor --file "$W/sensor.json"
assert_match "$("$TESSERA" profile show sensor)" '"days": 60' "the update is stored"
expect_status 1 "profile show unknown" "$TESSERA" profile show nope
expect_status 1 "issue under an unknown profile" "$TESSERA" cert issue --csr "$W/s1.csr" --profile nope
assert_match "$ERR" "no profile 'nope'" "unknown profile: named"
expect_status 1 "issue for an unknown tenant" "$TESSERA" cert issue --csr "$W/s1.csr" \
    --profile device --tenant acme
assert_match "$ERR" "no tenant 'acme'" "unknown tenant: named"

# --- tenants keep their certificates apart -------------------------------------------------------

run_ok "tenant create acme" "$TESSERA" tenant create acme --org Acme
run_ok "issue in acme" "$TESSERA" cert issue --tenant acme --csr "$W/s1.csr" --profile device \
    --out "$W/acme1.pem"
"$TESSERA" ca show --tenant acme --issuing >"$W/acme-issuing.pem"
run_ok "acme's certificate chains through acme's CA" openssl verify -CAfile "$W/root.pem" \
    -untrusted "$W/acme-issuing.pem" "$W/acme1.pem"
assert_match "$(openssl x509 -in "$W/acme1.pem" -noout -subject)" 'O = Acme' "acme: its org"
expect_status 1 "acme's serial is not in default" "$TESSERA" cert show "$(serial_of "$W/acme1.pem")"
assert_eq "$(cert_count --tenant acme)" 1 "acme has one certificate"

# --- the bad-CSR corpus: each refused with its own message, nothing stored -----------------------

# Cases of our own besides the corpus (which names the expected message in NAME.expect).
openssl req -new -newkey rsa:1024 -nodes -keyout "$W/throwaway.key" -subj /CN=rsa -out "$W/rsa.csr" 2>/dev/null
newcsr catrue /CN=ca -addext "basicConstraints=critical,CA:TRUE"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout "$W/throwaway.key" \
    -subj /CN=p384 -out "$W/p384.csr" 2>/dev/null
head -c 70000 /dev/urandom >"$W/big.csr"
head -c 300 /dev/urandom >"$W/garbage.csr"
{
    echo '-----BEGIN CERTIFICATE REQUEST-----'
    head -c 300 /dev/urandom | base64
    echo '-----END CERTIFICATE REQUEST-----'
} >"$W/pemgarbage.csr"
cases=(
    "$W/rsa.csr|device|RSA-1024"
    "$W/catrue.csr|device|CA:TRUE, which is never granted"
    "$W/p384.csr|device|key is P-384"
    "$W/big.csr|device|65536"
    "$W/garbage.csr|device|neither PEM nor DER"
    "$W/pemgarbage.csr|device|PEM block"
)
if [ -d "$corpus" ]; then
    for e in "$corpus"/*.expect; do
        f=$(sed -n 's/^file //p' "$e")
        p=$(sed -n 's/^profile //p' "$e")
        m=$(sed -n 's/^message //p' "$e")
        cases+=("$corpus/$f|$p|$m")
    done
fi
[ "${#cases[@]}" -ge 6 ] || fail "no bad CSRs"
certs_before=$("$TESSERA" cert list)
audit_before=$(audit_count)
for c in "${cases[@]}"; do
    IFS='|' read -r file profile message <<<"$c"
    expect_status 1 "bad CSR $(basename "$file") refused" "$TESSERA" cert issue --csr "$file" \
        --profile "$profile" --out "$W/never.pem"
    grep -Fq -- "$message" <<<"$ERR" || fail "$(basename "$file"): no '$message' in: $ERR"
    assert_match "$ERR" '^tessera: CSR refused: ' "$(basename "$file"): says the CSR was refused"
done
assert_eq "$("$TESSERA" cert list)" "$certs_before" "bad CSRs: no certificate stored"
assert_eq "$(audit_count)" "$audit_before" "bad CSRs: no audit entry"
[ ! -e "$W/never.pem" ] || fail "a refused CSR wrote --out"
pass "bad CSRs: no output file"

run_ok "audit verify" "$TESSERA" audit verify
finish
