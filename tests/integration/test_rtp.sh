#!/usr/bin/env bash
# Offline provisioning end to end (docs/rtp.md): two devices with soft: key stores set up by
# tessera-agent init, bundles exported from a manifest, `tessera rtp serve` on loopback and
# `tessera-agent rtp`; the keys land in the key stores, the receipts verify with openssl, and a
# foreign, a replayed and a tampered bundle are refused, by the device and in its receipt; and a
# device made by `tessera batch` (key "device") whose receipts verify too.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/serve.sh"

AGENT="${TS_BUILD_DIR:-build}/bin/tessera-agent"
DIR=$TS_TEST_TMP/ca
RTP=$TS_TEST_TMP/rtp
W=$TS_TEST_TMP/work
mkdir -p "$W"
export TESSERA_DIR=$DIR
[ -x "$AGENT" ] || fail "no $AGENT: build the tessera-agent target"

serve_init "$DIR"

# Two devices, each with its own soft: key store and agent state.
KS_A="soft:$W/ks-a?pin-value=1111"
KS_B="soft:$W/ks-b?pin-value=2222"
run_ok "device A's key store" "$TESSERA" keystore init --keystore "$KS_A" --so-pin unused-1
run_ok "device B's key store" "$TESSERA" keystore init --keystore "$KS_B" --so-pin unused-2
run_ok "agent init on A" "$AGENT" init --keystore "$KS_A" --state "$W/state-a"
UID_A=$OUT
run_ok "agent init on B" "$AGENT" init --keystore "$KS_B" --state "$W/state-b"
UID_B=$OUT
printf '{"uid":"%s","keystore":"%s"}\n{"uid":"%s","keystore":"%s"}\n' \
    "$UID_A" "$KS_A" "$UID_B" "$KS_B" >"$W/manifest.jsonl"

openssl ecparam -name prime256v1 -genkey -noout -out "$W/wifi.pem" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$W/vpn.pem" 2>/dev/null

# --- export --------------------------------------------------------------------------------------
expect_status 2 "export needs --device or --manifest" "$TESSERA" rtp export --out "$RTP" \
    --object wifi="$W/wifi.pem"
expect_status 2 "export: --object without =" "$TESSERA" rtp export --manifest "$W/manifest.jsonl" \
    --out "$RTP" --object wifi
run_ok "export from the manifest" "$TESSERA" rtp export --manifest "$W/manifest.jsonl" \
    --out "$RTP" --object wifi="$W/wifi.pem" --object vpn="$W/vpn.pem"
assert_match "$OUT" "device $UID_A: .*bundle-[0-9]{20}\.rtp \(2 key" "a bundle for A"
assert_match "$OUT" "device $UID_B: .*bundle-[0-9]{20}\.rtp \(2 key" "a bundle for B"
BUNDLE_A=$(ls "$RTP/$UID_A"/bundle-*.rtp)
BUNDLE_B=$(ls "$RTP/$UID_B"/bundle-*.rtp)
[ -s "$RTP/provisioning.pem" ] || fail "no provisioning.pem"
pass "the tenant's provisioning public key is written"
assert_eq "$(file_mode "$BUNDLE_A")" 600 "bundles are 0600"

# The factory gives each device the tenant's provisioning key.
for ks in "$KS_A" "$KS_B"; do
    run_ok "provisioning key into a device" "$TESSERA" keystore put --keystore "$ks" \
        --label provisioning.key --in "$RTP/provisioning.pem"
done

# A foreign bundle (B's) in A's directory; it sorts after A's own.
cp "$BUNDLE_B" "$RTP/$UID_A/x-foreign.rtp"

# --- serve ---------------------------------------------------------------------------------------
rtp_serve_start "$RTP" "$W/serve"
SERVE=$RTP_PID
PORT=$RTP_PORT
pass "rtp serve listens on port $PORT"

expect_status 2 "agent rtp without PORT: usage" "$AGENT" rtp 127.0.0.1 --keystore "$KS_A" \
    --state "$W/state-a"

expect_status 1 "agent A: imports its bundle, refuses the foreign one" \
    "$AGENT" rtp 127.0.0.1 "$PORT" --keystore "$KS_A" --state "$W/state-a"
assert_match "$OUT" '^bundle 1: imported wifi$' "wifi imported"
assert_match "$OUT" '^bundle 1: imported vpn$' "vpn imported"
assert_match "$OUT" "^bundle 2: refused \(meant for another store\): bundle: for device $UID_B" \
    "the foreign bundle refused as foreign"
assert_match "$OUT" '2 bundle\(s\) offered, 1 accepted, 1 refused, 2 key\(s\) imported' "summary"

run_ok "A's key store" "$TESSERA" keystore list --keystore "$KS_A"
assert_match "$OUT" 'wifi' "the wifi key is in A's key store"
assert_match "$OUT" 'vpn' "the vpn key is in A's key store"

for f in "$BUNDLE_A" "$RTP/$UID_A/x-foreign.rtp"; do
    [ -s "$f.receipt" ] && [ -s "$f.receipt.sig" ] || fail "no receipt for $f"
    run_ok "receipt of $(basename "$f") verifies with openssl" openssl dgst -sha256 \
        -verify "$RTP/$UID_A/device.pem" -signature "$f.receipt.sig" "$f.receipt"
done
expect_status 1 "a receipt does not verify with the other device's key" openssl dgst -sha256 \
    -verify "$RTP/$UID_B/device.pem" -signature "$BUNDLE_A.receipt.sig" "$BUNDLE_A.receipt"
assert_match "$(cat "$W/serve.out")" "device $UID_A: x-foreign.rtp: refused \(meant for another" \
    "the server reports the refusal"

run_ok "agent B imports its bundle" "$AGENT" rtp 127.0.0.1 "$PORT" --keystore "$KS_B" \
    --state "$W/state-b"
assert_match "$OUT" '1 accepted, 0 refused, 2 key\(s\) imported' "B: both keys"
run_ok "agent A again: nothing left to offer" "$AGENT" rtp 127.0.0.1 "$PORT" \
    --keystore "$KS_A" --state "$W/state-a"
assert_match "$OUT" '0 bundle\(s\) offered' "receipted bundles are not offered again"

# --- replayed and tampered -----------------------------------------------------------------------
cp "$BUNDLE_A" "$RTP/$UID_A/y-replay.rtp"
expect_status 1 "agent A refuses a replayed bundle" "$AGENT" rtp 127.0.0.1 "$PORT" \
    --keystore "$KS_A" --state "$W/state-a"
assert_match "$OUT" '^bundle 1: refused \(replayed\)' "refused as replayed"
[ -s "$RTP/$UID_A/y-replay.rtp.receipt" ] || fail "no receipt for the replayed bundle"
pass "the refusal has a receipt"

python3 - "$BUNDLE_B" "$RTP/$UID_B/z-tampered.rtp" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[len(b) // 2] ^= 0x01
open(sys.argv[2], "wb").write(bytes(b))
PY
expect_status 1 "agent B refuses a tampered bundle" "$AGENT" rtp 127.0.0.1 "$PORT" \
    --keystore "$KS_B" --state "$W/state-b"
assert_match "$OUT" '^bundle 1: refused' "refused"
run_ok "B's key store" "$TESSERA" keystore list --keystore "$KS_B"
assert_no_match "$OUT" 'wifi.*wifi' "nothing imported twice"

kill "$SERVE" 2>/dev/null || true

# --- a device made by tessera batch: the imports are sealed to its key "device", its receipts
# --- are signed by the agent's "identity" and verify with device.pem --------------------------------
run_ok "a batch of one device" "$TESSERA" batch --count 1 --out "$W/lot" --quiet
LINE=$(head -n 1 "$W/lot/manifest.jsonl")
UID_C=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["uid"])' "$LINE")
KS_C=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["keystore"])' "$LINE")
assert_match "$KS_C" ';object=device' "the batch device's key is 'device'"
RTP_C=$TS_TEST_TMP/rtp-batch
expect_status 1 "export before tessera-agent init: no receipt key" "$TESSERA" rtp export \
    --manifest "$W/lot/manifest.jsonl" --out "$RTP_C" --object wifi="$W/wifi.pem"
assert_match "$ERR" "device $UID_C: its key store has no 'identity' key" "...saying so"
[ ! -e "$RTP_C/$UID_C" ] || fail "a refused export left files for the device"
pass "a refused export writes nothing for the device"
run_ok "agent init on the batch device" "$AGENT" init --uid "$UID_C" --keystore "$KS_C" \
    --state "$W/state-c"
assert_eq "$OUT" "$UID_C" "the agent keeps the batch UID"
run_ok "export for the batch device" "$TESSERA" rtp export --manifest "$W/lot/manifest.jsonl" \
    --out "$RTP_C" --object wifi="$W/wifi.pem"
BUNDLE_C=$(ls "$RTP_C/$UID_C"/bundle-*.rtp)
run_ok "provisioning key into the batch device" "$TESSERA" keystore put --keystore "$KS_C" \
    --label provisioning.key --in "$RTP_C/provisioning.pem"
rtp_serve_start "$RTP_C" "$W/serve-c" --once
SERVE_C=$RTP_PID
PORT_C=$RTP_PORT
run_ok "the batch device imports its bundle" "$AGENT" rtp 127.0.0.1 "$PORT_C" --keystore "$KS_C" \
    --state "$W/state-c"
assert_match "$OUT" '^bundle 1: imported wifi$' "wifi imported into the batch device"
assert_match "$OUT" '1 accepted, 0 refused, 1 key\(s\) imported' "the batch device's summary"
wait "$SERVE_C" || fail "rtp serve --once failed: $(cat "$W/serve-c.err")"
pass "rtp serve checked and kept the batch device's receipt"
assert_match "$(cat "$W/serve-c.out")" "device $UID_C: $(basename "$BUNDLE_C"): accepted" \
    "the server accepts the batch device's receipt"
run_ok "the batch device's receipt verifies with openssl" openssl dgst -sha256 \
    -verify "$RTP_C/$UID_C/device.pem" -signature "$BUNDLE_C.receipt.sig" "$BUNDLE_C.receipt"

# --- a fleet key for encrypted firmware, sent end to end, then used by the verifier ----------------
openssl ecparam -name prime256v1 -genkey -noout -out "$W/fleet.pem" 2>/dev/null
openssl ec -in "$W/fleet.pem" -pubout -out "$W/fleet.pub" 2>/dev/null
RTP_F=$TS_TEST_TMP/rtp-fleet
run_ok "export the fleet key to A" "$TESSERA" rtp export --device "$UID_A" --keystore "$KS_A" \
    --out "$RTP_F" --object fw.group.fleet-1="$W/fleet.pem"
rtp_serve_start "$RTP_F" "$W/serve-f" --once
SERVE_F=$RTP_PID
PORT_F=$RTP_PORT
run_ok "A imports the fleet key" "$AGENT" rtp 127.0.0.1 "$PORT_F" --keystore "$KS_A" \
    --state "$W/state-a"
assert_match "$OUT" '^bundle 1: imported fw.group.fleet-1$' "fw.group.fleet-1 imported"
wait "$SERVE_F" || fail "rtp serve --once failed: $(cat "$W/serve-f.err")"
SKS="soft:$W/signer-ks?pin-value=5555"
run_ok "a signer key store" "$TESSERA" keystore init --keystore "$SKS" --so-pin unused-3
run_ok "the signer's key" "$TESSERA" keystore genkey --keystore "$SKS" --label fw
run_ok "its CSR" "$TESSERA" keystore csr --keystore "$SKS" --label fw --subject "/CN=fw-signer" \
    --out "$W/fw.csr"
run_ok "a firmware signer" "$TESSERA" cert issue --csr "$W/fw.csr" --profile firmware-signer \
    --out "$W/fw.pem"
"$TESSERA" ca show --issuing >"$W/issuing.pem"
"$TESSERA" ca show --root >"$W/root.pem"
head -c 200000 /dev/urandom >"$W/image.bin"
run_ok "an update encrypted to the fleet key" "$TESSERA" fw sign --key "$SKS" --label fw \
    --cert "$W/fw.pem" --chain "$W/issuing.pem" --version 3 --hw board-r \
    --encrypt-to-group fleet-1 --group-key "$W/fleet.pub" "$W/image.bin" -o "$W/update.tsfw"
run_ok "A decrypts it in its key store" "$TESSERA" fw verify --trust "$W/root.pem" \
    --keystore "$KS_A" --label fw.group.fleet-1 --out "$W/image.out" "$W/update.tsfw"
cmp -s "$W/image.bin" "$W/image.out" || fail "the decrypted image differs"
pass "the image decrypted with the delivered fleet key is the original"
expect_status 1 "B, without the fleet key, cannot" "$TESSERA" fw verify --trust "$W/root.pem" \
    --keystore "$KS_B" --label fw.group.fleet-1 --out "$W/image.b" "$W/update.tsfw"
[ ! -e "$W/image.b" ] || fail "a refused decryption wrote an image"

finish
