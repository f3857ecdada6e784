#!/usr/bin/env bash
# Power loss during firmware updates: kill -9 `tessera-agent fw apply` and `tessera-boot` at
# random moments (TS_FW_TRIALS trials, default 200, alternating), then run tessera-boot to
# completion: it must always hand over a valid image, the old version or the new one, whose bytes
# are that version's image (the booted command records what it got), and `fw apply` run again
# must succeed. The delays are drawn from the measured time of a full run, so kills land before,
# during and after the slot is written.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

AGENT="${TS_BUILD_DIR:-build}/bin/tessera-agent"
BOOT="${TS_BUILD_DIR:-build}/bin/tessera-boot"
[ -x "$TESSERA" ] || fail "no tessera at $TESSERA (set TS_BUILD_DIR)"
[ -x "$BOOT" ] || fail "no tessera-boot at $BOOT"
unset TESSERA_OPERATOR
export TESSERA_DIR="$TS_TEST_TMP/ca"
W=$TS_TEST_TMP
TRIALS=${TS_FW_TRIALS:-200}
CHUNK=4096
# Big enough that writing the slot is most of an apply, so the kills aimed at it land there.
IMG_BYTES=$((8 * 1024 * 1024))
ks="soft:$W/signer-ks?pin-value=fw-sign-pin-1234"
# A soft: store: its writes are atomic and synced; a SoftHSM2 token killed in the middle of a write
# is the token's own durability, not what is tested here.
DKS="soft:$W/dev-ks?pin-value=fw-power-pin-1234"
ST="$W/state"
REC="$W/booted"

agent() { "$AGENT" "$@" --keystore "$DKS" --state "$ST"; }
# The booted "system": records the version it was given and the SHA-256 of the image's bytes.
RECORD='echo "$TESSERA_BOOT_VERSION $(sha256sum <"$TESSERA_BOOT_IMAGE" | cut -c1-64)" >"$0"'
boot() { "$BOOT" --state "$ST" --keystore "$DKS" -- sh -c "$RECORD" "$1"; }
now_us() { echo $(($(date +%s%N) / 1000)); }

run_ok "init" "$TESSERA" init --org "Fw Power" --country FR --url http://pki.fwpower.example
run_ok "root.pem" "$TESSERA" ca show --root --out "$W/root.pem"
run_ok "issuing.pem" "$TESSERA" ca show --issuing --out "$W/issuing.pem"
run_ok "signer store" "$TESSERA" keystore init --keystore "$ks"
run_ok "signer key" "$TESSERA" keystore genkey --keystore "$ks" --label fw
run_ok "signer csr" "$TESSERA" keystore csr --keystore "$ks" --label fw \
    --subject "/CN=release-signer/O=Fw Power" --out "$W/fw.csr"
run_ok "firmware-signer certificate" "$TESSERA" cert issue --csr "$W/fw.csr" \
    --profile firmware-signer --out "$W/signer.pem"
declare -A WANT
for v in 1 2; do
    head -c "$IMG_BYTES" /dev/urandom >"$W/img$v"
    WANT[$v]=$(sha256sum <"$W/img$v" | cut -c1-64)
    run_ok "sign v$v ($((IMG_BYTES >> 20)) MiB, $CHUNK-byte chunks)" "$TESSERA" fw sign --key "$ks" --label fw \
        --cert "$W/signer.pem" --chain "$W/issuing.pem" --version "$v" --hw board-p \
        --chunk-size "$CHUNK" "$W/img$v" -o "$W/v$v.tsfw"
done

run_ok "device token" "$TESSERA" keystore init --keystore "$DKS" --so-pin fwdev-so-1234
run_ok "fw setup" agent fw setup --slot-a "$W/slot-a" --slot-b "$W/slot-b" --hw board-p \
    --attempts 1 --roots "$W/root.pem"
run_ok "apply v1" agent fw apply "$W/v1.tsfw"
run_ok "boot v1" boot "$REC"
run_ok "confirm v1" agent fw confirm
assert_eq "$(cat "$REC")" "1 ${WANT[1]}" "v1 booted and confirmed"

# check_boot WHAT: tessera-boot run to completion hands over v1 or v2, byte for byte. After v1,
# `fw apply` of v2 runs again and must succeed (v2 pending for the next trial); after v2 (pending,
# never confirmed) the next trial kills a boot, which falls back to v1 (attempts: 1).
OLD=0
NEW=0
RUNNING_NEW=0
check_boot() {
    local v sum
    rm -f "$REC"
    run_capture boot "$REC"
    [ "$RC" -eq 0 ] || fail "$1: tessera-boot exit $RC"
    read -r v sum <"$REC" || fail "$1: nothing recorded"
    case "$v" in
    1 | 2) ;;
    *) fail "$1: booted version '$v'" ;;
    esac
    [ "$sum" = "${WANT[$v]}" ] || fail "$1: the image booted as v$v is not v$v's bytes"
    if [ "$v" = 2 ]; then
        [ "$RUNNING_NEW" = 0 ] || fail "$1: v2 booted again after its one attempt"
        NEW=$((NEW + 1))
        RUNNING_NEW=1
        return 0
    fi
    OLD=$((OLD + 1))
    RUNNING_NEW=0
    run_capture agent fw apply --chunk-size "$CHUNK" "$W/v2.tsfw"
    [ "$RC" -eq 0 ] || fail "$1: fw apply again: exit $RC: $ERR"
}

# A full run of each, timed, and the state brought back to "v2 pending".
t0=$(now_us)
run_ok "a full apply of v2" agent fw apply --chunk-size "$CHUNK" "$W/v2.tsfw"
t1=$(now_us)
run_ok "a full boot" boot "$REC"
t2=$(now_us)
APPLY_US=$((t1 - t0))
BOOT_US=$((t2 - t1))
# Up to where writing starts: an apply refused right after the manifest's checks.
t0=$(now_us)
expect_status 1 "an apply refused after the manifest (v1 again)" agent fw apply "$W/v1.tsfw"
PRE_US=$(($(now_us) - t0))
run_ok "fall back" boot "$REC"
run_ok "v2 pending again" agent fw apply --chunk-size "$CHUNK" "$W/v2.tsfw"
echo "# a full apply takes ${APPLY_US} us (writing from about ${PRE_US} us), a full boot ${BOOT_US} us" >&2

# rnd MAX [MIN]: a random delay in microseconds, from MIN (default 0) to MAX.
rnd() { echo $((${2:-0} + (RANDOM * 32768 + RANDOM) % ($1 - ${2:-0} + 1))); }
KILLED_APPLY=0
MID_WRITE=0
start=$(now_us)
for ((i = 1; i <= TRIALS; i++)); do
    if ((i % 2)) && [ "$RUNNING_NEW" = 0 ]; then
        # Every other apply is killed within the stretch where the slot is written.
        if (((i / 2) % 2)); then
            d=$(rnd $((APPLY_US * 21 / 20)) $((PRE_US * 19 / 20)))
        else
            d=$(rnd $((APPLY_US * 12 / 10)))
        fi
        "$AGENT" fw apply --chunk-size "$CHUNK" "$W/v2.tsfw" --keystore "$DKS" --state "$ST" \
            >/dev/null 2>&1 &
        what="trial $i: apply killed after ${d} us"
        KILLED_APPLY=$((KILLED_APPLY + 1))
    else
        d=$(rnd $((BOOT_US * 12 / 10)))
        "$BOOT" --state "$ST" --keystore "$DKS" -- sh -c "$RECORD" "$W/killed" >/dev/null 2>&1 &
        what="trial $i: boot killed after ${d} us"
    fi
    pid=$!
    sleep "$(printf '%d.%06d' $((d / 1000000)) $((d % 1000000)))"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if ((i % 2)) && [ -e "$W/slot-a" ]; then
        size=$(stat -c %s "$W/slot-a")
        if ((size > 0 && size < IMG_BYTES)); then
            MID_WRITE=$((MID_WRITE + 1))
        fi
    fi
    check_boot "$what"
done
elapsed=$((($(now_us) - start) / 1000))
pass "$TRIALS kills ($KILLED_APPLY of fw apply, $MID_WRITE of them mid-write): tessera-boot always handed over a valid image (old $OLD, new $NEW times) and apply always ran again (${elapsed} ms)"
finish
