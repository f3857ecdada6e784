#!/usr/bin/env bash
# Firmware update files end to end: a firmware-signer certificate issued by a real instance for a
# key in a soft: key store, `tessera fw sign|verify|inspect`, stock `openssl cms -verify` on the
# manifest, and refusals: a flipped payload byte, a truncated file, another root, a signer
# without codeSigning.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ -x "$TESSERA" ] || fail "no tessera at $TESSERA (set TS_BUILD_DIR)"
unset TESSERA_OPERATOR
export TESSERA_DIR="$TS_TEST_TMP/ca"
W=$TS_TEST_TMP
ks="soft:$W/ks?pin-value=fw-test-pin-1234"

run_ok "init" "$TESSERA" init --org "Fw Test" --country FR --url http://pki.fw.example
run_ok "root.pem" "$TESSERA" ca show --root --out "$W/root.pem"
run_ok "issuing.pem" "$TESSERA" ca show --issuing --out "$W/issuing.pem"

run_ok "keystore init" "$TESSERA" keystore init --keystore "$ks"
run_ok "genkey" "$TESSERA" keystore genkey --keystore "$ks" --label fw
run_ok "csr" "$TESSERA" keystore csr --keystore "$ks" --label fw \
    --subject "/CN=release-signer/O=Fw Test" --out "$W/fw.csr"
run_ok "issue firmware-signer" "$TESSERA" cert issue --csr "$W/fw.csr" --profile firmware-signer \
    --out "$W/signer.pem"
run_ok "the signer has codeSigning" openssl x509 -in "$W/signer.pem" -noout -ext extendedKeyUsage
assert_match "$OUT" 'Code Signing' "EKU codeSigning"

# An image of 3 chunks and a bit with 4 KiB chunks.
head -c 13000 /dev/urandom >"$W/image.bin"
run_ok "fw sign" "$TESSERA" fw sign --key "$ks" --label fw --cert "$W/signer.pem" \
    --chain "$W/issuing.pem" --version 7 --hw board-a1 --min-version 5 --seq 42 \
    --chunk-size 4096 "$W/image.bin" -o "$W/update.tsfw"
assert_match "$OUT" 'version 7 seq 42 hw board-a1' "sign reports what it signed"
run_ok "magic" head -c 4 "$W/update.tsfw"
assert_eq "$OUT" "TSFW" "the file starts with TSFW"

run_ok "fw verify" "$TESSERA" fw verify --trust "$W/root.pem" "$W/update.tsfw"
assert_match "$OUT" '^verified: version 7 seq 42 hw board-a1, 13000 bytes in 4 chunks' \
    "verify reports the manifest"
assert_match "$OUT" 'CN=release-signer' "verify names the signer"

run_ok "fw inspect" "$TESSERA" fw inspect --manifest-out "$W/manifest.der" "$W/update.tsfw"
assert_match "$OUT" 'version: 7' "inspect: version"
assert_match "$OUT" 'seq: 42' "inspect: seq"
assert_match "$OUT" 'hw: board-a1' "inspect: hw"
assert_match "$OUT" 'min-version: 5' "inspect: min-version"
assert_match "$OUT" 'signer: .*CN=release-signer' "inspect: signer"
assert_match "$OUT" 'payload: 13000 bytes' "inspect: payload size"
assert_match "$OUT" 'chunks: 4 of 4096 bytes' "inspect: chunks"

run_ok "openssl cms -verify on the manifest" openssl cms -verify -inform DER \
    -in "$W/manifest.der" -CAfile "$W/root.pem" -purpose any -out "$W/manifest.json"
run_ok "the manifest is JSON" python3 -c \
    'import json,sys; m=json.load(open(sys.argv[1])); assert m["version"]==7 and m["hw"]=="board-a1" and len(m["chunks"])==4' \
    "$W/manifest.json"

# A flipped byte in the payload: refused, naming the chunk.
size=$(stat -c %s "$W/update.tsfw")
cp "$W/update.tsfw" "$W/flip.tsfw"
python3 -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); b[-100]^=0x01; open(p,"wb").write(b)' "$W/flip.tsfw"
expect_status 1 "a flipped payload byte" "$TESSERA" fw verify --trust "$W/root.pem" "$W/flip.tsfw"
assert_match "$ERR" 'refused: payload chunk 3 does not match its digest' "names the chunk"

# A flipped byte in the manifest's signature region.
python3 -c 'import sys; p=sys.argv[1]; b=bytearray(open(sys.argv[2],"rb").read()); b[60]^=0x01; open(p,"wb").write(b)' \
    "$W/flipm.tsfw" "$W/update.tsfw"
expect_status 1 "a flipped manifest byte" "$TESSERA" fw verify --trust "$W/root.pem" "$W/flipm.tsfw"
assert_match "$ERR" 'refused' "says refused"

head -c $((size - 1)) "$W/update.tsfw" >"$W/short.tsfw"
expect_status 1 "a truncated file" "$TESSERA" fw verify --trust "$W/root.pem" "$W/short.tsfw"
assert_match "$ERR" 'truncated' "names the truncation"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/other.key" \
    -subj "/CN=Other Root" -days 10 -out "$W/other.pem" 2>/dev/null
expect_status 1 "another root" "$TESSERA" fw verify --trust "$W/other.pem" "$W/update.tsfw"
assert_match "$ERR" 'does not chain to a trusted root' "names the chain"

# A certificate of the instance without codeSigning (the device profile) cannot sign.
run_ok "csr2" "$TESSERA" keystore csr --keystore "$ks" --label fw --subject "/CN=dev-1/O=Fw Test" \
    --out "$W/dev.csr"
run_ok "issue device" "$TESSERA" cert issue --csr "$W/dev.csr" --profile device --out "$W/dev.pem"
expect_status 1 "sign with a non-signer" "$TESSERA" fw sign --key "$ks" --label fw \
    --cert "$W/dev.pem" --version 8 --hw board-a1 "$W/image.bin" -o "$W/bad.tsfw"
assert_match "$ERR" 'codeSigning' "names the EKU"
[ ! -e "$W/bad.tsfw" ] || fail "no file written on refusal"
pass "nothing written on refusal"

expect_status 2 "a bad version" "$TESSERA" fw sign --key "$ks" --label fw --cert "$W/signer.pem" \
    --version -1 --hw board-a1 "$W/image.bin" -o "$W/bad.tsfw"
finish
