#!/usr/bin/env bash
# CSRs signed inside the key store are ordinary PKCS#10 (RFC 2986) requests to stock openssl:
# for soft: and pkcs11: stores and for P-256 and P-384 keys, the CSR of `tessera keystore csr`
# verifies, carries the subject asked for and the same public key as `tessera keystore pubkey`;
# with one byte of its signature flipped it no longer verifies.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

tessera=$TESSERA
module=$(softhsm_module)
work=$TS_TEST_TMP
softhsm_setup

pin=csr-user-pin
declare -A stores=(
    [pkcs11]="pkcs11:token=csr?module-path=$module&pin-value=$pin"
    [soft]="soft:$work/softstore?pin-value=$pin"
)

# A throwaway signer for `openssl x509 -req`, which checks the request's self-signature and,
# unlike `openssl req -verify` in OpenSSL 3.0, says so in its exit status.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/throwaway.key" \
    2>/dev/null

# csr_verifies FILE [FORM]: both openssl checks of the self-signature agree that it holds.
csr_verifies() {
    local form=${2:-PEM} out
    out=$(openssl req -inform "$form" -in "$1" -verify -noout 2>&1) || return 1
    grep -q "verify OK" <<<"$out" || return 1
    openssl x509 -req -inform "$form" -in "$1" -signkey "$work/throwaway.key" -days 1 \
        -out /dev/null >/dev/null 2>&1
}

# csr_rejected FILE FORM: both openssl checks refuse the self-signature.
csr_rejected() {
    local out rc=0
    out=$(openssl req -inform "$2" -in "$1" -verify -noout 2>&1) || rc=$?
    if [ "$rc" -eq 0 ] && ! grep -q "verify failure" <<<"$out"; then
        return 1
    fi
    grep -q "verify OK" <<<"$out" && return 1
    ! openssl x509 -req -inform "$2" -in "$1" -signkey "$work/throwaway.key" -days 1 \
        -out /dev/null >/dev/null 2>&1
}

# flip_last_byte IN OUT: OUT is IN with its last byte XORed with 1. A PKCS#10 request ends with
# its signature BIT STRING, and an ECDSA signature ends with the last byte of its INTEGER s, so
# the DER stays well formed and only the signature changes.
flip_last_byte() {
    local size last
    cp "$1" "$2"
    size=$(stat -c %s "$2")
    last=$(od -An -tu1 -j $((size - 1)) -N1 "$2" | tr -d ' ')
    # shellcheck disable=SC2059 # the format is the octal escape of the new byte
    printf "\\$(printf '%03o' $((last ^ 1)))" |
        dd of="$2" bs=1 seek=$((size - 1)) conv=notrunc 2>/dev/null
    cmp -s "$1" "$2" && fail "flip_last_byte changed nothing"
    return 0
}

for b in pkcs11 soft; do
    uri=${stores[$b]}
    "$tessera" keystore init --so-pin csr-so-pin --keystore "$uri" >/dev/null ||
        fail "$b: keystore init"
    for curve in P-256 P-384; do
        label=csr-$curve
        tag="$b $curve"
        f=$work/$b-$curve
        subject="/C=DE/O=Tessera Test/OU=Devices/CN=device-$b-$curve"
        want_subject="subject=C = DE, O = Tessera Test, OU = Devices, CN = device-$b-$curve"

        "$tessera" keystore genkey --label "$label" --curve "$curve" --keystore "$uri" \
            >/dev/null || fail "$tag: genkey"
        "$tessera" keystore csr --label "$label" --subject "$subject" --out "$f.csr" \
            --keystore "$uri" || fail "$tag: keystore csr"
        "$tessera" keystore pubkey --label "$label" --out "$f.pub" --keystore "$uri" ||
            fail "$tag: keystore pubkey"

        csr_verifies "$f.csr" || {
            openssl req -in "$f.csr" -verify -noout -text >&2 || true
            fail "$tag: the CSR's signature does not verify"
        }
        pass "$tag: openssl req -verify and x509 -req accept the CSR"

        got_subject=$(openssl req -in "$f.csr" -noout -subject)
        [ "$got_subject" = "$want_subject" ] ||
            fail "$tag: subject is '$got_subject', want '$want_subject'"
        openssl req -in "$f.csr" -noout -text >"$f.txt"
        grep -q "NIST CURVE: $curve" "$f.txt" || fail "$tag: the CSR's key is not on $curve"
        pass "$tag: subject and curve as requested"

        csr_key=$(openssl req -in "$f.csr" -noout -pubkey |
            openssl pkey -pubin -outform DER | sha256sum)
        store_key=$(openssl pkey -pubin -in "$f.pub" -outform DER | sha256sum)
        if [ -z "$store_key" ] || [ "$csr_key" != "$store_key" ]; then
            fail "$tag: the CSR's public key differs from keystore pubkey"
        fi
        pass "$tag: the CSR carries the key-store key (${store_key%% *})"

        openssl req -in "$f.csr" -outform DER -out "$f.der"
        csr_verifies "$f.der" DER || fail "$tag: the DER form of the CSR does not verify"
        flip_last_byte "$f.der" "$f.bad.der"
        csr_rejected "$f.bad.der" DER || fail "$tag: a CSR with a flipped signature byte verifies"
        pass "$tag: with one signature byte flipped the CSR is rejected"
    done
done

finish
