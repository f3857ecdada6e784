#!/usr/bin/env bash
# Firmware updates on a device: `tessera-agent fw setup|apply|confirm|status` and tessera-boot
# with two file slots, updates signed by a firmware signer of a real instance. The happy path
# (apply, boot, confirm, the image exec'd), refusals that change nothing (older or equal version,
# another hardware id, a signer without codeSigning, an untrusted root, flipped bytes across the
# file: the slot only ever holds a prefix of authenticated chunks), rollback after unconfirmed
# boots, the counter raised only by confirm, an update encrypted to the device's key, and one
# downloaded from a running `tessera serve` over mutual TLS, resuming a partial download.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/serve.sh"

AGENT="${TS_BUILD_DIR:-build}/bin/tessera-agent"
BOOT="${TS_BUILD_DIR:-build}/bin/tessera-boot"
[ -x "$TESSERA" ] || fail "no tessera at $TESSERA (set TS_BUILD_DIR)"
[ -x "$BOOT" ] || fail "no tessera-boot at $BOOT"
unset TESSERA_OPERATOR
export TESSERA_DIR="$TS_TEST_TMP/ca"
W=$TS_TEST_TMP
ks="soft:$W/signer-ks?pin-value=fw-sign-pin-1234"
DKS="soft:$W/dev-ks?pin-value=fw-dev-pin-1234"
ST="$W/state"
CHUNK=4096

agent() { "$AGENT" "$@" --keystore "$DKS" --state "$ST"; }
boot() { "$BOOT" --state "$ST" --keystore "$DKS" "$@"; }
status_of() { agent fw status | sed -n "s/^$1=//p"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

# --- the signer ---------------------------------------------------------------------------------
serve_init "$TESSERA_DIR"
run_ok "root.pem" "$TESSERA" ca show --root --out "$W/root.pem"
run_ok "issuing.pem" "$TESSERA" ca show --issuing --out "$W/issuing.pem"
run_ok "signer store" "$TESSERA" keystore init --keystore "$ks"
run_ok "signer key" "$TESSERA" keystore genkey --keystore "$ks" --label fw
run_ok "signer csr" "$TESSERA" keystore csr --keystore "$ks" --label fw \
    --subject "/CN=release-signer/O=Fw Dev" --out "$W/fw.csr"
run_ok "firmware-signer certificate" "$TESSERA" cert issue --csr "$W/fw.csr" \
    --profile firmware-signer --out "$W/signer.pem"

# An image is a shell script (so tessera-boot can exec it) padded to a few chunks.
mkimage() { # VERSION OUT
    {
        printf '#!/bin/sh\necho "image v%s running from slot ${TESSERA_BOOT_SLOT:-?}"\nexit 0\n' "$1"
        head -c 9000 /dev/urandom | od -An -tx1 | sed 's/^/# /'
    } >"$2"
}
sign() { # VERSION HW IMAGE OUT [more fw sign options]
    local v=$1 hw=$2 img=$3 out=$4
    shift 4
    "$TESSERA" fw sign --key "$ks" --label fw --cert "$W/signer.pem" --chain "$W/issuing.pem" \
        --version "$v" --hw "$hw" --chunk-size "$CHUNK" "$@" "$img" -o "$out" >/dev/null
}
for v in 1 2 3 4; do
    mkimage "$v" "$W/img$v"
    sign "$v" board-a1 "$W/img$v" "$W/v$v.tsfw"
done
pass "images v1..v4 signed"

# --- the device -----------------------------------------------------------------------------------
run_ok "device store" "$TESSERA" keystore init --keystore "$DKS"
run_ok "agent init" agent init
expect_status 2 "fw apply without an operand" agent fw apply
expect_status 1 "apply before setup" agent fw apply "$W/v1.tsfw"
assert_match "$ERR" 'no firmware slots are set up' "says setup is missing"
expect_status 1 "first setup needs slots and hw" agent fw setup --roots "$W/root.pem"
assert_match "$ERR" 'needs --slot-a PATH, --slot-b PATH and --hw HWID' "names what is missing"
run_ok "fw setup" agent fw setup --slot-a "$W/slot-a" --slot-b "$W/slot-b" --hw board-a1 \
    --attempts 2 --roots "$W/root.pem"
assert_match "$OUT" 'firmware roots pinned' "roots pinned"
run_ok "fw.roots in the key store" "$TESSERA" keystore list --keystore "$DKS"
assert_match "$OUT" 'fw\.roots' "listed"
run_ok "status" agent fw status
assert_match "$OUT" '^hw=board-a1$' "status: hw"
assert_match "$OUT" '^active=a$' "status: active a"
assert_match "$OUT" '^pending=none$' "status: nothing pending"
assert_match "$OUT" '^counter=0$' "status: counter 0"
assert_match "$OUT" '^max_attempts=2$' "status: attempts"
expect_status 1 "boot with no image" boot -- true
assert_match "$ERR" 'no valid firmware image in slot a or b: nothing booted' "boot refuses"

# --- happy path -----------------------------------------------------------------------------------
run_ok "apply v1" agent fw apply "$W/v1.tsfw"
assert_eq "$OUT" "applied: version 1 to slot b (pending; reboot to try it)" "apply output"
cmp -s "$W/slot-b" "$W/img1" || fail "slot b is not image v1"
pass "slot b holds image v1"
assert_eq "$(status_of pending)" "b" "pending b"
assert_eq "$(status_of counter)" "0" "apply does not raise the counter"
expect_status 1 "confirm before boot" agent fw confirm
assert_match "$ERR" 'nothing to confirm' "confirm refuses"
run_ok "boot the pending slot" boot -- sh -c 'echo "$TESSERA_BOOT_SLOT $TESSERA_BOOT_VERSION $TESSERA_BOOT_IMAGE"'
assert_eq "$OUT" "b 1 $W/slot-b" "CMD sees slot, version and image"
assert_match "$ERR" 'booting pending slot b, version 1 \(attempt 1 of 2\)' "boot says the attempt"
assert_eq "$(status_of attempts)" "1" "the attempt is recorded"
assert_eq "$(status_of counter)" "0" "boot does not raise the counter"
run_ok "confirm" agent fw confirm
assert_eq "$OUT" "confirmed: version 1 in slot b (counter 0 -> 1)" "confirm output"
run_ok "status after confirm" agent fw status
assert_match "$OUT" '^active=b$' "b active"
assert_match "$OUT" '^pending=none$' "nothing pending"
assert_match "$OUT" '^confirmed=yes$' "confirmed"
assert_match "$OUT" '^counter=1$' "counter raised to 1"
run_ok "counter in the key store" "$TESSERA" keystore list --keystore "$DKS"
run_ok "boot execs the image itself" boot
assert_eq "$OUT" "image v1 running from slot b" "the slot image ran"

# --- refusals: nothing changes --------------------------------------------------------------------
state_sum=$(sha "$ST/fw.state")
slot_b_sum=$(sha "$W/slot-b")
unchanged() { # DESCRIPTION
    assert_eq "$(sha "$ST/fw.state")" "$state_sum" "$1: boot state unchanged"
    assert_eq "$(sha "$W/slot-b")" "$slot_b_sum" "$1: active slot untouched"
}
expect_status 1 "equal version" agent fw apply "$W/v1.tsfw"
assert_match "$ERR" 'version 1 is not above the anti-rollback counter 1' "equal refused"
unchanged "equal version"
mkimage 0 "$W/img0"
sign 0 board-a1 "$W/img0" "$W/v0.tsfw"
expect_status 1 "older version" agent fw apply "$W/v0.tsfw"
assert_match "$ERR" 'version 0 is not above the anti-rollback counter 1' "older refused"
unchanged "older version"
sign 5 board-zz "$W/img4" "$W/hw.tsfw"
expect_status 1 "another hardware id" agent fw apply "$W/hw.tsfw"
assert_match "$ERR" "the update is for hardware 'board-zz', this device is 'board-a1'" "hw refused"
unchanged "another hardware id"
sign 5 board-a1 "$W/img4" "$W/minv.tsfw" --min-version 3
expect_status 1 "min-version above the running one" agent fw apply "$W/minv.tsfw"
assert_match "$ERR" 'needs version 3 or later installed; this device runs 1' "min-version"
unchanged "min-version"

# Forged files: the manifest of v4 re-signed with stock openssl by other certificates.
run_ok "v4's manifest" "$TESSERA" fw inspect --manifest-out "$W/m4.der" "$W/v4.tsfw"
run_ok "its content" openssl cms -verify -inform DER -in "$W/m4.der" -CAfile "$W/root.pem" \
    -purpose any -out "$W/m4.json"
forge() { # CERT KEY CHAIN OUT: an update file whose manifest CERT signed
    openssl cms -sign -binary -nodetach -outform DER -md sha256 -in "$W/m4.json" -signer "$1" \
        -inkey "$2" -certfile "$3" -out "$W/forged.der" 2>/dev/null
    python3 - "$W/forged.der" "$W/img4" "$4" <<'EOF'
import struct, sys
m = open(sys.argv[1], "rb").read(); p = open(sys.argv[2], "rb").read()
open(sys.argv[3], "wb").write(struct.pack(">4sHHIQ", b"TSFW", 1, 0, len(m), len(p)) + m + p)
EOF
}
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/dev.key" \
    -subj "/CN=not-a-signer" -out "$W/dev.csr" 2>/dev/null
run_ok "a device certificate" "$TESSERA" cert issue --csr "$W/dev.csr" --profile device \
    --out "$W/devcert.pem"
forge "$W/devcert.pem" "$W/dev.key" "$W/issuing.pem" "$W/nonsigner.tsfw"
expect_status 1 "signed by a non-firmware-signer" agent fw apply "$W/nonsigner.tsfw"
assert_match "$ERR" 'lacks EKU codeSigning' "non-signer refused"
unchanged "non-signer"
[ ! -s "$W/slot-a" ] || fail "the non-signer's image reached slot a"
pass "nothing of the non-signer's image reached the slot"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/other.key" \
    -subj "/CN=Other Root" -days 10 -out "$W/other.pem" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/osig.key" \
    -subj "/CN=other-signer" -out "$W/osig.csr" 2>/dev/null
printf 'extendedKeyUsage=codeSigning\nkeyUsage=digitalSignature\n' >"$W/osig.ext"
openssl x509 -req -in "$W/osig.csr" -CA "$W/other.pem" -CAkey "$W/other.key" -days 10 \
    -set_serial 7 -extfile "$W/osig.ext" -out "$W/osig.pem" 2>/dev/null
forge "$W/osig.pem" "$W/osig.key" "$W/other.pem" "$W/untrusted.tsfw"
expect_status 1 "signed under an untrusted root" agent fw apply "$W/untrusted.tsfw"
assert_match "$ERR" 'does not chain to a trusted root' "untrusted root refused"
unchanged "untrusted root"

# Flipped bytes across the whole file: header, manifest (content, signature, certificates),
# payload. Each is refused; the inactive slot holds at most a prefix of whole authenticated
# chunks of the real image, and the boot state does not change.
size=$(stat -c %s "$W/v4.tsfw")
mlen=$(python3 -c 'import struct,sys; print(struct.unpack(">I", open(sys.argv[1],"rb").read()[8:12])[0])' "$W/v4.tsfw")
positions="0 5 9 15 19 20 40 $((20 + mlen / 4)) $((20 + mlen / 2)) $((20 + mlen - 80)) $((20 + mlen - 1))"
positions="$positions $((20 + mlen)) $((20 + mlen + CHUNK + 7)) $((size - 1))"
flips=0
for pos in $positions; do
    python3 -c 'import sys; b=bytearray(open(sys.argv[1],"rb").read()); b[int(sys.argv[3])]^=0x10; open(sys.argv[2],"wb").write(b)' \
        "$W/v4.tsfw" "$W/flip.tsfw" "$pos"
    run_capture agent fw apply "$W/flip.tsfw"
    [ "$RC" -eq 1 ] || fail "a flip at byte $pos: exit $RC, want 1"
    [ -n "$ERR" ] || fail "a flip at byte $pos: no message"
    [ "$(sha "$ST/fw.state")" = "$state_sum" ] || fail "a flip at byte $pos changed the boot state"
    [ "$(sha "$W/slot-b")" = "$slot_b_sum" ] || fail "a flip at byte $pos touched the active slot"
    if [ -e "$W/slot-a" ]; then
        python3 - "$W/slot-a" "$W/img4" "$CHUNK" "$pos" <<'EOF' || fail "a flip at byte $pos: slot a holds unauthenticated bytes"
import sys
s = open(sys.argv[1], "rb").read(); img = open(sys.argv[2], "rb").read(); chunk = int(sys.argv[3])
assert len(s) % chunk == 0 and s == img[:len(s)], (len(s), sys.argv[4])
EOF
    fi
    flips=$((flips + 1))
done
pass "$flips flipped bytes refused; slot a only ever held authenticated chunks"
# The payload flip in chunk 1 let chunk 0 through, and nothing after it.
python3 -c 'import sys; b=bytearray(open(sys.argv[1],"rb").read()); b[int(sys.argv[3])]^=0x10; open(sys.argv[2],"wb").write(b)' \
    "$W/v4.tsfw" "$W/flip.tsfw" "$((20 + mlen + CHUNK + 7))"
expect_status 1 "a payload flip in chunk 1" agent fw apply "$W/flip.tsfw"
assert_match "$ERR" 'payload chunk 1 does not match its digest' "names the chunk"
assert_eq "$(stat -c %s "$W/slot-a")" "$CHUNK" "slot a holds exactly chunk 0"
head -c $((size - 100)) "$W/v4.tsfw" >"$W/short.tsfw"
expect_status 1 "a truncated file" agent fw apply "$W/short.tsfw"
assert_match "$ERR" 'truncated' "truncation named"
unchanged "truncated"

# --- an unconfirmed image falls back after N attempts; the counter moves only on confirm -------
run_ok "apply v2" agent fw apply "$W/v2.tsfw"
assert_eq "$OUT" "applied: version 2 to slot a (pending; reboot to try it)" "v2 to slot a"
run_ok "boot 1" boot -- sh -c 'echo "$TESSERA_BOOT_SLOT $TESSERA_BOOT_VERSION"'
assert_eq "$OUT" "a 2" "attempt 1 boots v2"
expect_status 1 "apply while the pending image runs unconfirmed" agent fw apply "$W/v3.tsfw"
assert_match "$ERR" 'slot a is running but not confirmed' "refused while running unconfirmed"
run_ok "boot 2" boot -- sh -c 'echo "$TESSERA_BOOT_SLOT $TESSERA_BOOT_VERSION"'
assert_eq "$OUT" "a 2" "attempt 2 boots v2"
assert_match "$ERR" 'attempt 2 of 2' "second attempt"
run_ok "boot 3" boot -- sh -c 'echo "$TESSERA_BOOT_SLOT $TESSERA_BOOT_VERSION"'
assert_eq "$OUT" "b 1" "after 2 unconfirmed attempts: back to v1"
assert_match "$ERR" 'slot a was not confirmed after 2 boot attempts: falling back to slot b' \
    "fallback said"
run_ok "status after fallback" agent fw status
assert_match "$OUT" '^active=b$' "b still active"
assert_match "$OUT" '^pending=none$' "pending dropped"
assert_match "$OUT" '^counter=1$' "counter not raised by an unconfirmed image"
run_ok "confirm the running v1" agent fw confirm
assert_eq "$OUT" "confirmed: version 1 in slot b (counter 1 -> 1)" "confirm of v1 is a no-op"

# --attempts on the boot command line overrides the record.
run_ok "apply v2 again" agent fw apply "$W/v2.tsfw"
run_ok "boot with --attempts 1" boot --attempts 1 -- sh -c 'echo "$TESSERA_BOOT_SLOT"'
assert_eq "$OUT" "a" "tried once"
run_ok "boot again with --attempts 1" boot --attempts 1 -- sh -c 'echo "$TESSERA_BOOT_SLOT"'
assert_eq "$OUT" "b" "then back"

# A pending image damaged after apply: boot refuses it and falls back at once.
run_ok "apply v3" agent fw apply "$W/v3.tsfw"
printf 'X' | dd of="$W/slot-a" bs=1 seek=100 conv=notrunc 2>/dev/null
run_ok "boot a damaged pending slot" boot -- sh -c 'echo "$TESSERA_BOOT_SLOT $TESSERA_BOOT_VERSION"'
assert_eq "$OUT" "b 1" "the damaged image is not booted"
assert_match "$ERR" 'pending slot a is not valid: falling back to slot b' "says why"
assert_match "$ERR" 'payload chunk 0 does not match its digest' "names the chunk"

# The good v3: apply, boot, confirm.
run_ok "apply v3 again" agent fw apply "$W/v3.tsfw"
run_ok "boot v3" boot -- sh -c 'echo "$TESSERA_BOOT_SLOT $TESSERA_BOOT_VERSION"'
assert_eq "$OUT" "a 3" "v3 booted"
run_ok "confirm v3" agent fw confirm
assert_eq "$OUT" "confirmed: version 3 in slot a (counter 1 -> 3)" "counter raised by confirm"
# Now v1 in slot b is below the counter: boot never falls back to it.
printf 'X' | dd of="$W/slot-a" bs=1 seek=100 conv=notrunc 2>/dev/null
expect_status 1 "active damaged, other below the counter" boot -- true
assert_match "$ERR" 'version 1 is below the anti-rollback counter 3' "rollback refused at boot"
assert_match "$ERR" 'nothing booted' "nothing booted"
run_ok "restore slot a" cp "$W/img3" "$W/slot-a"

# --- roots: not replaced silently -----------------------------------------------------------------
expect_status 1 "other roots without --replace-roots" agent fw setup --roots "$W/other.pem"
assert_match "$ERR" 'other firmware roots are pinned already \(fw.roots\); give --replace-roots' \
    "roots kept"
run_ok "the same roots again" agent fw setup --roots "$W/root.pem"

# --- an update encrypted to this device's identity key --------------------------------------------
run_ok "device identity csr" "$TESSERA" keystore csr --keystore "$DKS" --label identity \
    --subject "/CN=fw-device-1" --out "$W/id.csr"
run_ok "device certificate" "$TESSERA" cert issue --csr "$W/id.csr" --profile device \
    --out "$W/id.pem"
sign 4 board-a1 "$W/img4" "$W/v4enc.tsfw" --encrypt-to "$W/id.pem"
if cmp -s <(tail -c 2000 "$W/v4enc.tsfw") <(tail -c 2000 "$W/img4"); then
    fail "the encrypted file carries the image in clear"
fi
pass "the payload is encrypted"
run_ok "apply an encrypted update" agent fw apply "$W/v4enc.tsfw"
assert_eq "$OUT" "applied: version 4 to slot b (pending; reboot to try it)" "encrypted applied"
cmp -s "$W/slot-b" "$W/img4" || fail "slot b does not hold the plaintext image v4"
pass "the slot holds the plaintext"
run_ok "boot the decrypted image" boot
assert_eq "$OUT" "image v4 running from slot b" "v4 runs"
run_ok "confirm v4" agent fw confirm
assert_match "$OUT" 'counter 3 -> 4' "counter 4"

# Encrypted to another key: refused before anything is written.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/d2.key" \
    -subj "/CN=fw-device-2" -out "$W/d2.csr" 2>/dev/null
run_ok "another device's certificate" "$TESSERA" cert issue --csr "$W/d2.csr" --profile device \
    --out "$W/d2.pem"
mkimage 5 "$W/img5"
sign 5 board-a1 "$W/img5" "$W/v5other.tsfw" --encrypt-to "$W/d2.pem"
state_sum=$(sha "$ST/fw.state")
expect_status 1 "encrypted to another device" agent fw apply "$W/v5other.tsfw"
assert_match "$ERR" 'decrypting the update' "says decryption failed"
assert_eq "$(sha "$ST/fw.state")" "$state_sum" "boot state unchanged"

# --- a URL: downloaded over mutual TLS from the service, resumable -------------------------------
sign 6 board-a1 "$W/img5" "$W/v6.tsfw"
run_ok "publish v6" "$TESSERA" fw publish "$W/v6.tsfw" --all
REL=$(sed -n 's/^published: release \([0-9a-f]*\) .*/\1/p' <<<"$OUT")
[ -n "$REL" ] || fail "no release id in: $OUT"
serve_start "$TESSERA_DIR" || fail "tessera serve did not start"
URL=$SERVE_URL/agent/v1/firmware/$REL
expect_status 1 "a URL before enrollment" agent fw apply "$URL" --trust "$W/root.pem"
assert_match "$ERR" 'the device is not enrolled' "needs the identity"
"$TESSERA" claim create | tail -n1 >"$W/code"
run_ok "claim inject" agent claim inject "$W/code"
run_ok "enroll" agent enroll --server "$SERVE_URL" --trust "$W/root.pem"
expect_status 1 "a wrong --sha256" agent fw apply "$URL" --trust "$W/root.pem" \
    --sha256 "$(printf '0%.0s' $(seq 64))"
assert_match "$ERR" "the update file's SHA-256 [0-9a-f]{64} is not the expected 0{64}" \
    "the whole file's digest is checked"
[ ! -e "$ST/fw.download" ] || fail "a refused download is kept"
pass "a refused download is removed"
# A partial download is continued with Range, not fetched again: a damaged kept prefix shows it.
head -c 20000 "$W/v6.tsfw" >"$ST/fw.download"
python3 -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); b[-10]^=1; open(p,"wb").write(b)' \
    "$ST/fw.download"
printf '%s' "$URL" >"$ST/fw.download.url"
expect_status 1 "resuming a damaged partial download" agent fw apply "$URL" --trust "$W/root.pem"
assert_match "$ERR" 'does not match its digest' "the kept bytes were used"
head -c 30000 "$W/v6.tsfw" >"$ST/fw.download"
run_ok "resume a partial download" agent fw apply "$URL" --trust "$W/root.pem" \
    --sha256 "$(sha "$W/v6.tsfw")"
assert_eq "$OUT" "applied: version 6 to slot a (pending; reboot to try it)" "applied from the URL"
cmp -s "$W/slot-a" "$W/img5" || fail "slot a does not hold the downloaded image"
pass "slot a holds the downloaded image"
[ ! -e "$ST/fw.download" ] || fail "the download is kept after apply"
pass "the download is removed after apply"
# A complete file kept from before: the service answers 416 to the range past its end.
cp "$W/v6.tsfw" "$ST/fw.download"
printf '%s' "$URL" >"$ST/fw.download.url"
run_ok "a complete kept download" agent fw apply "$URL" --trust "$W/root.pem"
assert_eq "$OUT" "applied: version 6 to slot a (pending; reboot to try it)" "applied again"
run_ok "boot v6" boot -- sh -c 'echo "$TESSERA_BOOT_SLOT $TESSERA_BOOT_VERSION"'
assert_eq "$OUT" "a 6" "v6 booted"
run_ok "confirm v6" agent fw confirm
assert_match "$OUT" 'counter 4 -> 6' "counter 6"
serve_stop
finish
