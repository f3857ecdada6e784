#!/usr/bin/env bash
# Firmware updates end to end (docs/firmware-device.md, "End to end"): a real `tessera serve` and a
# real `tessera-agent` whose keys are in SoftHSM2. The device runs v1 (applied from a file, booted
# by tessera-boot, confirmed) and reports firmware 1 / hardware board-e in a session; v2 published
# for its group is offered in the next `tessera-agent sync`, downloaded over mutual TLS and
# applied pending; tessera-boot boots it, confirm raises the counter, and the next session reports
# firmware 2 and gets no offer. A release for another hardware id and a withdrawn one are not
# offered; a release whose file on the service was corrupted, or replaced by another validly
# signed file, is offered, refused by the device, recorded as failed, and changes nothing on the
# device; the release restored is applied.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/serve.sh"

BIN="${TS_BUILD_DIR:-build}/bin"
AGENT="$BIN/tessera-agent"
BOOT="$BIN/tessera-boot"
for b in "$TESSERA" "$AGENT" "$BOOT"; do
    [ -x "$b" ] || fail "no $b: build it first"
done
unset TESSERA_OPERATOR
DIR=$TS_TEST_TMP/ca
W=$TS_TEST_TMP/work
STATE=$TS_TEST_TMP/state
mkdir -p "$W"
export TESSERA_DIR=$DIR
SKS="soft:$W/signer-ks?pin-value=fw-sign-pin-1234"
CHUNK=4096

serve_init "$DIR"
ROOT=$DIR/root.pem
serve_start "$DIR" || fail "tessera serve did not start"
softhsm_setup
KS="pkcs11:token=device?module-path=$(softhsm_module)&pin-value=1234"

agent() { "$AGENT" "$@" --keystore "$KS" --state "$STATE"; }
sync_ok() { run_ok "$1" agent sync --server "$SERVE_URL" --trust "$ROOT"; }
boot() { "$BOOT" --state "$STATE" --keystore "$KS" "$@"; }
# The command tessera-boot hands over to: records the version and the image's bytes.
boot_rec() {
    boot -- sh -c 'echo "$TESSERA_BOOT_SLOT $TESSERA_BOOT_VERSION" >"$0"; cat "$TESSERA_BOOT_IMAGE" >"$1"' \
        "$W/booted" "$W/booted.img"
}
status_of() { agent fw status | sed -n "s/^$1=//p"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
# api PATH: GET with the admin token; sets STATUS and BODY.
api() {
    STATUS=$(curl -sS -o "$W/api.body" -w '%{http_code}' --cacert "$ROOT" \
        -H "Authorization: Bearer $ADMIN_TOKEN" "$SERVE_URL$1")
    BODY=$(cat "$W/api.body")
}
# offers REL: the release's offers as "device state error_code error_message" lines.
offers() {
    api "/api/v1/tenants/default/firmware/$1"
    [ "$STATUS" = 200 ] || fail "GET firmware/$1: $STATUS $BODY"
    python3 -c 'import json, sys
for o in json.load(open(sys.argv[1]))["offers"]:
    print(o["device"], o["state"], o.get("error_code") or "-", o.get("error_message") or "-")' \
        "$W/api.body"
}
# publish FILE TARGET...: sets REL to the new release's id.
publish() {
    local f=$1
    shift
    run_ok "publish $(basename "$f") $*" "$TESSERA" fw publish "$f" "$@"
    REL=$(sed -n 's/^published: release \([0-9a-f]*\) .*/\1/p' <<<"$OUT")
    [ -n "$REL" ] || fail "no release id in: $OUT"
}

# --- a firmware signer, images v1..v5 ---------------------------------------------------------------
run_ok "issuing.pem" "$TESSERA" ca show --issuing --out "$W/issuing.pem"
run_ok "signer key store" "$TESSERA" keystore init --keystore "$SKS"
run_ok "signer key" "$TESSERA" keystore genkey --keystore "$SKS" --label fw
run_ok "signer csr" "$TESSERA" keystore csr --keystore "$SKS" --label fw \
    --subject "/CN=release-signer/O=Fw E2E" --out "$W/fw.csr"
run_ok "firmware-signer certificate" "$TESSERA" cert issue --csr "$W/fw.csr" \
    --profile firmware-signer --out "$W/signer.pem"
mkimage() { # VERSION OUT
    {
        printf '#!/bin/sh\necho "image v%s"\n' "$1"
        head -c 9000 /dev/urandom | od -An -tx1 | sed 's/^/# /'
    } >"$2"
}
sign() { # VERSION HW IMAGE OUT [more fw sign options]
    local v=$1 hw=$2 img=$3 out=$4
    shift 4
    "$TESSERA" fw sign --key "$SKS" --label fw --cert "$W/signer.pem" --chain "$W/issuing.pem" \
        --version "$v" --hw "$hw" --chunk-size "$CHUNK" "$@" "$img" -o "$out" >/dev/null ||
        fail "fw sign v$v for $hw"
}
for v in 1 2 3 4 5; do
    mkimage "$v" "$W/img$v"
done
sign 1 board-e "$W/img1" "$W/v1.tsfw"
sign 2 board-e "$W/img2" "$W/v2.tsfw"
sign 3 board-e "$W/img3" "$W/v3.tsfw"
sign 4 board-e "$W/img4" "$W/v4.tsfw"
sign 5 board-z "$W/img5" "$W/v5z.tsfw"
pass "v1..v4 signed for board-e, v5 for board-z"

# --- the device: SoftHSM2 token, claim code, enrollment, slots; v1 running ---------------------------
run_ok "a device token (SoftHSM2)" "$TESSERA" keystore init --keystore "$KS" --so-pin so-5678
run_ok "agent init" agent init
UID_=$OUT
"$TESSERA" claim create | tail -n1 >"$W/code"
run_ok "claim inject" agent claim inject "$W/code"
run_ok "enroll by claim code" agent enroll --server "$SERVE_URL" --trust "$ROOT"
run_ok "fw setup" agent fw setup --slot-a "$W/slot-a" --slot-b "$W/slot-b" --hw board-e \
    --roots "$ROOT"
assert_match "$OUT" 'firmware roots pinned' "roots pinned in the token"
run_ok "apply v1 from a file" agent fw apply "$W/v1.tsfw"
assert_eq "$OUT" "applied: version 1 to slot b (pending; reboot to try it)" "v1 to slot b"
run_ok "boot v1" boot_rec
assert_eq "$(cat "$W/booted")" "b 1" "tessera-boot hands over slot b, version 1"
cmp -s "$W/booted.img" "$W/img1" || fail "the booted image is not v1"
pass "the booted bytes are image v1"
run_ok "confirm v1" agent fw confirm
assert_eq "$OUT" "confirmed: version 1 in slot b (counter 0 -> 1)" "counter 1"

# --- the first session reports firmware 1, hardware board-e --------------------------------------
sync_ok "the first sync"
assert_eq "$OUT" "session done: 1 messages, 0 requests, 0 refused, 0 not carried out" \
    "nothing published: a report only"
run_ok "device show" "$TESSERA" device show "$UID_"
assert_match "$OUT" '^firmware: +1$' "the service knows firmware 1"
assert_match "$OUT" '^hardware: +board-e$' "...and hardware board-e"

# --- v2 published for the device's group: offered, downloaded, applied ----------------------------
run_ok "group create" "$TESSERA" group create line-e
run_ok "group add" "$TESSERA" group add line-e --device "$UID_"
publish "$W/v2.tsfw" --group line-e
assert_match "$OUT" "^published: release $REL version 2 hw board-e for group line-e$" "published"
REL2=$REL
state_before=$(sha "$STATE/fw.state")
sync_ok "the sync that carries the offer"
assert_eq "$OUT" "session done: 2 messages, 1 requests, 0 refused, 0 not carried out" \
    "one request (the FW_UPDATE offer), carried out"
run_ok "fw status after the offer" agent fw status
assert_match "$OUT" '^pending=a$' "slot a pending"
assert_match "$OUT" '^version\.a=2$' "...with version 2"
assert_match "$OUT" '^active=b$' "slot b still active"
assert_match "$OUT" '^counter=1$' "the offer does not raise the counter"
[ "$(sha "$STATE/fw.state")" != "$state_before" ] || fail "the boot state did not change"
cmp -s "$W/slot-a" "$W/img2" || fail "slot a does not hold image v2"
pass "slot a holds image v2, byte for byte"
[ ! -e "$STATE/fw.download" ] || fail "the download is kept after apply"
pass "the download is removed once applied"
assert_eq "$(offers "$REL2")" "$UID_ done - -" "the release records the offer as done"
run_ok "audit" "$TESSERA" audit list
assert_match "$OUT" 'firmware\.offer' "the device's answer is audited"
run_ok "fw releases" "$TESSERA" fw releases
assert_match "$OUT" "^$REL2	2	board-e	group	line-e	active	" "the release is listed active"

run_ok "boot v2" boot_rec
assert_eq "$(cat "$W/booted")" "a 2" "tessera-boot hands over slot a, version 2"
cmp -s "$W/booted.img" "$W/img2" || fail "the booted image is not v2"
pass "the booted bytes are image v2"
run_ok "confirm v2" agent fw confirm
assert_eq "$OUT" "confirmed: version 2 in slot a (counter 1 -> 2)" "counter raised to 2"
sync_ok "the sync after the update"
assert_eq "$OUT" "session done: 1 messages, 0 requests, 0 refused, 0 not carried out" \
    "no new offer"
run_ok "device show after the update" "$TESSERA" device show "$UID_"
assert_match "$OUT" '^firmware: +2$' "the service knows firmware 2"
assert_eq "$(offers "$REL2")" "$UID_ done - -" "offered once only"

# --- not offered: another hardware id, a withdrawn release ----------------------------------------
publish "$W/v5z.tsfw" --group line-e
REL5=$REL
sync_ok "sync with a release for board-z"
assert_eq "$OUT" "session done: 1 messages, 0 requests, 0 refused, 0 not carried out" \
    "a release for another hardware id is not offered"
publish "$W/v4.tsfw" --device "$UID_"
REL4=$REL
run_ok "withdraw v4" "$TESSERA" fw withdraw "$REL4"
assert_eq "$OUT" "withdrawn: release $REL4" "withdrawn"
sync_ok "sync with a withdrawn release"
assert_eq "$OUT" "session done: 1 messages, 0 requests, 0 refused, 0 not carried out" \
    "a withdrawn release is not offered"
assert_eq "$(offers "$REL5")" "" "no offer recorded for the board-z release"
assert_eq "$(offers "$REL4")" "" "no offer recorded for the withdrawn release"

# --- v3 whose file on the service is corrupted, then replaced: offered, refused, nothing changes -----
publish "$W/v3.tsfw" --device "$UID_"
REL3=$REL
SHA3=$(sha "$W/v3.tsfw")
KEPT=$DIR/firmware/$SHA3.tsfw
[ -f "$KEPT" ] || fail "no $KEPT"
cp "$KEPT" "$W/v3.kept"
mlen=$(python3 -c 'import struct,sys; print(struct.unpack(">I", open(sys.argv[1],"rb").read()[8:12])[0])' "$W/v3.tsfw")
python3 - "$KEPT" "$((20 + mlen + CHUNK + 10))" <<'PY'
import os, sys
p, pos = sys.argv[1], int(sys.argv[2])
os.chmod(p, 0o600)
b = bytearray(open(p, "rb").read())
b[pos] ^= 0x01
open(p, "r+b").write(b)
PY
pass "a byte of chunk 1 flipped in the service's copy of v3"
state_sum=$(sha "$STATE/fw.state")
active_sum=$(sha "$W/slot-a")
inactive_sum=$(sha "$W/slot-b")
unchanged() { # DESCRIPTION
    assert_eq "$(sha "$STATE/fw.state")" "$state_sum" "$1: the boot state is unchanged"
    assert_eq "$(sha "$W/slot-a")" "$active_sum" "$1: the active slot is untouched"
    assert_eq "$(sha "$W/slot-b")" "$inactive_sum" "$1: nothing reached the inactive slot"
    run_ok "$1: fw status" agent fw status
    assert_match "$OUT" '^active=a$' "$1: slot a still active"
    assert_match "$OUT" '^pending=none$' "$1: nothing pending"
    assert_match "$OUT" '^counter=2$' "$1: counter still 2"
}
sync_ok "the sync that carries the corrupted release (the session itself succeeds)"
assert_eq "$OUT" "session done: 2 messages, 1 requests, 1 refused, 0 not carried out" \
    "the offer is refused"
unchanged "corrupted file"
O=$(offers "$REL3")
assert_match "$O" "^$UID_ failed [a-z_]+ release $REL3: the update file's SHA-256 $(sha "$KEPT") is not the expected $SHA3" \
    "the release records the refusal and why: the file is not the one published"

# Another validly signed v3 (a different seq) of the same size in place of the published file: the
# signature and every chunk verify, the pinned SHA-256 of the whole file does not.
size3=$(stat -c %s "$W/v3.tsfw")
for seq in $(seq 1700000001 1700000020); do
    sign 3 board-e "$W/img3" "$W/v3other.tsfw" --seq "$seq"
    [ "$(stat -c %s "$W/v3other.tsfw")" != "$size3" ] || break
done
assert_eq "$(stat -c %s "$W/v3other.tsfw")" "$size3" "a re-signed v3 of the same size"
cat "$W/v3other.tsfw" >"$KEPT"
# A failed offer is made again only after a newer status report; the service keeps times in
# seconds, so the next report must come in a later second than the refusal.
sleep 1.1
sync_ok "the sync that carries the replaced release"
assert_eq "$OUT" "session done: 2 messages, 1 requests, 1 refused, 0 not carried out" \
    "offered again after a newer report, refused again"
unchanged "replaced file"
O=$(offers "$REL3")
assert_match "$O" "^$UID_ failed [a-z_]+ release $REL3: the update file's SHA-256 $(sha "$W/v3other.tsfw") is not the expected $SHA3" \
    "the pinned SHA-256 refuses the other file"
run_ok "boot after the refusals" boot_rec
assert_eq "$(cat "$W/booted")" "a 2" "tessera-boot still boots v2 from slot a"
cmp -s "$W/booted.img" "$W/img2" || fail "the booted image is not v2"
pass "the booted bytes are still image v2"

# The published bytes restored: the next offer is applied.
cat "$W/v3.kept" >"$KEPT"
sleep 1.1
sync_ok "the sync with the file restored"
assert_eq "$OUT" "session done: 2 messages, 1 requests, 0 refused, 0 not carried out" \
    "the restored release is applied"
run_ok "fw status after v3" agent fw status
assert_match "$OUT" '^pending=b$' "slot b pending"
assert_match "$OUT" '^version\.b=3$' "...with version 3"
assert_match "$(offers "$REL3")" "^$UID_ done " "the offer is done"

serve_stop
finish
