#!/usr/bin/env bash
# Regenerates the bad-CSR corpus with stock openssl: one request per broken rule, each beside a
# NAME.expect file that test_csr_policy reads:
#
#   file NAME.pem|NAME.der|NAME.bin   the request
#   profile device                    the built-in profile it is checked against
#   error invalid|auth|policy         the ts_err the check must give
#   message TEXT                      a substring of the message it must give
#
# Keys are made fresh each run and thrown away; only the requests are kept. Run from anywhere:
#   bash tests/data/bad-csr/make.sh
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$here"
rm -f ./*.pem ./*.der ./*.bin ./*.expect

expect() { # NAME FILE PROFILE ERROR MESSAGE
    printf 'file %s\nprofile %s\nerror %s\nmessage %s\n' "$2" "$3" "$4" "$5" >"$1.expect"
}

key() { # FILE ALGORITHM-OPTIONS...
    openssl genpkey "${@:2}" -out "$work/$1" 2>/dev/null
}

req() { # KEY OUT SUBJECT [openssl req options...]
    openssl req -new -key "$work/$1" -subj "$3" -out "$2" "${@:4}"
}

key p256.key -algorithm EC -pkeyopt ec_paramgen_curve:P-256
key p384.key -algorithm EC -pkeyopt ec_paramgen_curve:P-384
key k1.key -algorithm EC -pkeyopt ec_paramgen_curve:secp256k1
key rsa1024.key -algorithm RSA -pkeyopt rsa_keygen_bits:1024

# A good device request with the last byte of its ECDSA signature flipped: still well-formed DER.
req p256.key "$work/good.der" "/O=Tessera Test/CN=dev-0001" -outform DER
size=$(stat -c %s "$work/good.der")
last=$(od -An -tu1 -j $((size - 1)) -N1 "$work/good.der" | tr -d ' ')
cp "$work/good.der" bad-signature.der
# shellcheck disable=SC2059 # the format is the octal escape of the new byte
printf "\\$(printf '%03o' $((last ^ 1)))" | dd of=bad-signature.der bs=1 seek=$((size - 1)) \
    conv=notrunc 2>/dev/null
expect bad-signature bad-signature.der device auth "CSR signature does not verify"

req p384.key wrong-curve-p384.pem "/O=Tessera Test/CN=dev-0002"
expect wrong-curve-p384 wrong-curve-p384.pem device policy \
    "key is P-384; profile 'device' allows P-256"

req k1.key wrong-curve-secp256k1.pem "/O=Tessera Test/CN=dev-0003"
expect wrong-curve-secp256k1 wrong-curve-secp256k1.pem device policy \
    "key is EC secp256k1; profile 'device' allows P-256"

req rsa1024.key rsa-1024.pem "/O=Tessera Test/CN=dev-0004"
expect rsa-1024 rsa-1024.pem device policy "key is RSA-1024; profile 'device' allows P-256"

req rsa1024.key rsa-1024-server.pem "/CN=srv.example.com" \
    -addext "subjectAltName=DNS:srv.example.com"
expect rsa-1024-server rsa-1024-server.pem server policy \
    "key is RSA-1024; profile 'server' allows P-256, P-384, RSA-2048+"

req p256.key ca-true.pem "/O=Tessera Test/CN=dev-0005" \
    -addext "basicConstraints=critical,CA:TRUE"
expect ca-true ca-true.pem device policy "CSR asks for CA:TRUE, which is never granted"

req p256.key key-cert-sign.pem "/O=Tessera Test/CN=dev-0006" \
    -addext "keyUsage=critical,digitalSignature,keyCertSign"
expect key-cert-sign key-cert-sign.pem device policy \
    "CSR asks for keyCertSign or cRLSign, which are never granted"

req p256.key san-on-device.pem "/O=Tessera Test/CN=dev-0007" \
    -addext "subjectAltName=DNS:dev-0007.example.com"
expect san-on-device san-on-device.pem device policy \
    "profile 'device' forbids subject alternative names"

req p256.key san-email-server.pem "/CN=srv.example.com" \
    -addext "subjectAltName=DNS:srv.example.com,email:ops@example.com"
expect san-email-server san-email-server.pem server policy \
    "SAN type email is not allowed by profile 'server' (allowed: dns, ip)"

req p256.key subject-email.pem "/O=Tessera Test/CN=dev-0008/emailAddress=dev@example.com"
expect subject-email subject-email.pem device policy \
    "CSR subject attribute emailAddress is not allowed by profile 'device'"

req p256.key unknown-extension.pem "/O=Tessera Test/CN=dev-0009" \
    -addext "1.3.6.1.4.1.55555.1=ASN1:UTF8String:extra"
expect unknown-extension unknown-extension.pem device policy \
    "CSR requests the extension 1.3.6.1.4.1.55555.1, which profile 'device' does not accept"

# Larger than TS_CSR_MAX (64 KiB): a real request carrying a 70 000-character extension.
filler=$(head -c 70000 /dev/zero | tr '\0' 'x')
req p256.key oversized.der "/O=Tessera Test/CN=dev-0010" -outform DER \
    -addext "1.3.6.1.4.1.55555.2=ASN1:UTF8String:$filler"
expect oversized oversized.der device invalid "more than the 65536 allowed"

# Bytes that are neither PEM nor DER.
for i in $(seq 1 16); do printf 'garbage %s' "$i" | openssl dgst -sha256 -binary; done |
    head -c 512 >garbage.bin
printf '\x01' | dd of=garbage.bin bs=1 conv=notrunc 2>/dev/null
expect garbage garbage.bin device invalid "neither PEM nor DER"

# PEM armour around base64 that decodes to something that is not a request.
{
    echo "-----BEGIN CERTIFICATE REQUEST-----"
    openssl base64 -in garbage.bin
    echo "-----END CERTIFICATE REQUEST-----"
} >pem-garbage.pem
expect pem-garbage pem-garbage.pem device invalid \
    "the PEM block's content is not a DER certificate request"

# PEM armour around text that is not base64 at all.
printf -- '-----BEGIN CERTIFICATE REQUEST-----\nthis is not base64 at all!\n-----END CERTIFICATE REQUEST-----\n' \
    >pem-not-base64.pem
expect pem-not-base64 pem-not-base64.pem device invalid "the PEM block does not decode as base64"

# A good request followed by more bytes.
cp "$work/good.der" trailing-data.der
printf 'extra' >>trailing-data.der
expect trailing-data trailing-data.der device invalid \
    "5 bytes of trailing data after the certificate request"

# A certificate where a request belongs.
openssl req -x509 -new -key "$work/p256.key" -subj "/CN=not a request" -days 1 \
    -out certificate.pem
expect certificate certificate.pem device invalid "the PEM block is a CERTIFICATE, not a"

echo "bad-CSR corpus written to $here"
