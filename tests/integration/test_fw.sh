#!/usr/bin/env bash
# Firmware update files end to end: a firmware-signer certificate issued by a real instance for a
# key in a soft: key store, `tessera fw sign|verify|inspect`, stock `openssl cms -verify` on the
# manifest, and refusals: a flipped payload byte, a truncated file, another root, a signer
# without codeSigning. Encrypted files: to a device's certificate and to a fleet key, decrypted
# with the recipient's key in a soft: key store (the original bytes come back), refused with
# another key, and their manifest still verified by stock OpenSSL.
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
# --- Encrypted payloads ------------------------------------------------------------------------
devks="soft:$W/devks?pin-value=dev-test-pin-1234"
run_ok "device keystore init" "$TESSERA" keystore init --keystore "$devks"
run_ok "device genkey" "$TESSERA" keystore genkey --keystore "$devks" --label dev
run_ok "device other key" "$TESSERA" keystore genkey --keystore "$devks" --label other
run_ok "device fleet key" "$TESSERA" keystore genkey --keystore "$devks" --label fw.group.fleet-7
run_ok "fleet public key" "$TESSERA" keystore pubkey --keystore "$devks" --label fw.group.fleet-7 \
    --out "$W/fleet.pub"
run_ok "device csr" "$TESSERA" keystore csr --keystore "$devks" --label dev \
    --subject "/CN=dev-enc/O=Fw Test" --out "$W/devenc.csr"
run_ok "device cert" "$TESSERA" cert issue --csr "$W/devenc.csr" --profile device \
    --out "$W/devenc.pem"
head -c 300000 /dev/urandom >"$W/big.bin"

run_ok "fw sign --encrypt-to" "$TESSERA" fw sign --key "$ks" --label fw --cert "$W/signer.pem" \
    --chain "$W/issuing.pem" --depends bootloader:3 --depends modem:fw:12 --version 8 \
    --hw board-a1 --seq 43 --encrypt-to "$W/devenc.pem" "$W/big.bin" -o "$W/enc.tsfw"
assert_match "$OUT" 'version 8 seq 43 hw board-a1, encrypted to the device key of' \
    "sign says it encrypted"
wire=$((300000 + 5 * 16))
run_ok "fw inspect (encrypted)" "$TESSERA" fw inspect --manifest-out "$W/enc-manifest.der" \
    "$W/enc.tsfw"
assert_match "$OUT" 'encryption: AES-256-GCM per chunk, to device key [0-9a-f]{64}' \
    "inspect: encrypted to a device key"
assert_match "$OUT" "payload: $wire bytes" "inspect: the wire size is the payload"
assert_match "$OUT" "image: 300000 bytes \\(wire size $wire\\)" "inspect: image and wire size"
assert_match "$OUT" 'depends: modem:fw >= 12' "inspect: depends"
run_ok "openssl cms -verify on the encrypted manifest" openssl cms -verify -inform DER \
    -in "$W/enc-manifest.der" -CAfile "$W/root.pem" -purpose any -out "$W/enc-manifest.json"
run_ok "the encrypted manifest" python3 -c '
import json,sys
m=json.load(open(sys.argv[1])); e=m["enc"]
assert m["size"]==300000 and len(m["chunks"])==5 and e["alg"]=="A256GCM" and e["group"] is False
assert e["wire_size"]==300000+5*16 and len(e["wrapped_key"])==80 and len(e["epk"])==182
assert m["depends"]==[{"name":"bootloader","min_version":3},{"name":"modem:fw","min_version":12}]
' "$W/enc-manifest.json"

run_ok "fw verify --keystore --out" "$TESSERA" fw verify --trust "$W/root.pem" \
    --keystore "$devks" --label dev --out "$W/dec.bin" "$W/enc.tsfw"
assert_match "$OUT" '^verified: version 8 seq 43 hw board-a1, 300000 bytes in 5 chunks' \
    "verify+decrypt reports the image"
assert_match "$OUT" 'decrypted' "verify says it decrypted"
run_ok "the decrypted image is the original" cmp "$W/big.bin" "$W/dec.bin"
[ ! -e "$W/dec.bin.tmp" ] || fail "no temporary file left"
pass "no temporary file left"

expect_status 1 "an encrypted file without a key" "$TESSERA" fw verify --trust "$W/root.pem" \
    "$W/enc.tsfw"
assert_match "$OUT" '^verified manifest: version 8' "the manifest is still verified"
assert_match "$ERR" 'not verified: the payload is encrypted to the device key' \
    "says the payload was not checked"
run_ok "fw verify --manifest-only" "$TESSERA" fw verify --trust "$W/root.pem" --manifest-only \
    "$W/enc.tsfw"
assert_match "$OUT" "payload not checked \\($wire bytes in 5 chunks, encrypted to" \
    "manifest-only says what it did not check"

expect_status 1 "another device key" "$TESSERA" fw verify --trust "$W/root.pem" \
    --keystore "$devks" --label other --out "$W/wrong.bin" "$W/enc.tsfw"
assert_match "$ERR" "refused: the key 'other' is not this update's recipient" "names the key"
[ ! -e "$W/wrong.bin" ] && [ ! -e "$W/wrong.bin.tmp" ] || fail "nothing written on refusal"
pass "nothing written with the wrong key"

cp "$W/enc.tsfw" "$W/encflip.tsfw"
python3 -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); b[-70000]^=0x04; open(p,"wb").write(b)' "$W/encflip.tsfw"
expect_status 1 "a flipped ciphertext byte" "$TESSERA" fw verify --trust "$W/root.pem" \
    --keystore "$devks" --label dev --out "$W/flip.bin" "$W/encflip.tsfw"
assert_match "$ERR" 'refused: payload chunk 3 does not decrypt' "names the chunk"
[ ! -e "$W/flip.bin" ] || fail "no image written on refusal"
pass "no image written for a flipped ciphertext"

run_ok "fw sign --encrypt-to-group" "$TESSERA" fw sign --key "$ks" --label fw \
    --cert "$W/signer.pem" --chain "$W/issuing.pem" --version 9 --hw board-a1 \
    --encrypt-to-group fleet-7 --group-key "$W/fleet.pub" "$W/big.bin" -o "$W/grp.tsfw"
run_ok "fw inspect (fleet)" "$TESSERA" fw inspect "$W/grp.tsfw"
assert_match "$OUT" 'to fleet key fleet-7' "inspect: fleet key"
run_ok "fw verify with the fleet key" "$TESSERA" fw verify --trust "$W/root.pem" \
    --keystore "$devks" --label fw.group.fleet-7 --out "$W/grp.bin" "$W/grp.tsfw"
run_ok "the fleet-decrypted image is the original" cmp "$W/big.bin" "$W/grp.bin"
expect_status 1 "the device key is not the fleet key" "$TESSERA" fw verify --trust "$W/root.pem" \
    --keystore "$devks" --label dev "$W/grp.tsfw"
assert_match "$ERR" 'does not unwrap' "the content key does not unwrap"

expect_status 2 "a bad fleet key id" "$TESSERA" fw sign --key "$ks" --label fw \
    --cert "$W/signer.pem" --version 9 --hw board-a1 --encrypt-to-group "bad/id" \
    --group-key "$W/fleet.pub" "$W/big.bin" -o "$W/bad.tsfw"
assert_match "$ERR" 'key id is 1 to 64' "names the key id rule"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$W/p384.key" 2>/dev/null
openssl pkey -in "$W/p384.key" -pubout -out "$W/p384.pub"
expect_status 1 "a P-384 fleet key" "$TESSERA" fw sign --key "$ks" --label fw \
    --cert "$W/signer.pem" --version 9 --hw board-a1 --encrypt-to-group fleet-8 \
    --group-key "$W/p384.pub" "$W/big.bin" -o "$W/bad.tsfw"
assert_match "$ERR" 'not an EC P-256 key' "refuses a non-P-256 key"
expect_status 2 "both recipients" "$TESSERA" fw sign --key "$ks" --label fw \
    --cert "$W/signer.pem" --version 9 --hw board-a1 --encrypt-to "$W/devenc.pem" \
    --encrypt-to-group fleet-7 --group-key "$W/fleet.pub" "$W/big.bin" -o "$W/bad.tsfw"
expect_status 2 "a bad --depends" "$TESSERA" fw sign --key "$ks" --label fw \
    --cert "$W/signer.pem" --version 9 --hw board-a1 --depends nocolon "$W/big.bin" \
    -o "$W/bad.tsfw"
[ ! -e "$W/bad.tsfw" ] || fail "no file written on refusal"
pass "nothing written on refused encryption options"
finish
