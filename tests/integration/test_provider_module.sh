#!/usr/bin/env bash
# The loadable provider module (tessera.so) in stock openssl: it lists as an active provider;
# with keys made by `tessera keystore` in a soft: store and in a SoftHSM2 token, `openssl req`
# makes a CSR (and a self-signed certificate) signed inside the store that a plain openssl
# verifies, `openssl dgst -sign` signs, `openssl pkey -pubout` gives the store's public key, and
# the private key cannot be written out. A wrong PIN and a missing key fail with our words.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

provdir=${TS_PROVIDER_DIR:-${TS_BUILD_DIR:-build}/lib}
[ -r "$provdir/tessera.so" ] || fail "no provider module at $provdir/tessera.so"
module=$(softhsm_module)
work=$TS_TEST_TMP
softhsm_setup
pin=prov-pin-2468
export TESSERA_SO_PIN=prov-so-pin
prov=(-provider-path "$provdir" -provider default -provider tessera)

# In the ASan+UBSan build the module needs the sanitizer runtimes loaded first: stock openssl is
# not built with them, so preload them into openssl alone (its own leaks are not ours to report).
if [ "${TS_SANITIZE:-0}" = 1 ]; then
    sanitizer_runtimes="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
    openssl() {
        LD_PRELOAD="$sanitizer_runtimes" ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" \
            command openssl "$@"
    }
    export sanitizer_runtimes
    export -f openssl
fi

run_ok "openssl lists the provider" \
    openssl list -providers -provider-path "$provdir" -provider tessera
assert_match "$OUT" '^  tessera$' "the provider is called tessera"
assert_match "$OUT" 'name: Tessera key-store provider' "it gives its name"
assert_match "$OUT" 'status: active' "it is active"

# store_uri BACKEND: the store's URI; key_uri BACKEND LABEL [PIN]: a URI naming one key.
store_uri() {
    case $1 in
    soft) echo "soft:$work/soft?pin-value=$pin" ;;
    pkcs11) echo "pkcs11:token=prov?module-path=$module&pin-value=$pin" ;;
    esac
}
key_uri() {
    local p=${3:-$pin}
    case $1 in
    soft) echo "soft:$work/soft;object=$2?pin-value=$p" ;;
    pkcs11) echo "pkcs11:token=prov;object=$2?module-path=$module&pin-value=$p" ;;
    esac
}

# csr_verifies FILE: a plain openssl (no provider) accepts the request's self-signature; in
# OpenSSL 3.0 `req -verify` says so only in its output.
csr_verifies() {
    local out
    out=$(openssl req -in "$1" -verify -noout 2>&1) || return 1
    grep -q "verify OK" <<<"$out"
}

echo "signed message" >"$work/msg"
for backend in soft pkcs11; do
    store=$(store_uri "$backend")
    run_ok "$backend: store created" "$TESSERA" keystore init --keystore "$store"
    for curve in P-256 P-384; do
        label=dev-${curve/-/}
        key=$(key_uri "$backend" "$label")
        run_ok "$backend $curve: key generated" \
            "$TESSERA" keystore genkey --keystore "$store" --label "$label" --curve "$curve" \
            --out "$work/$backend-$label.pub"

        run_ok "$backend $curve: openssl req signs a CSR with the store key" \
            openssl req -new "${prov[@]}" -key "$key" -subj "/CN=$label" -out "$work/req.pem"
        csr_verifies "$work/req.pem" || fail "$backend $curve: the CSR does not verify"
        pass "$backend $curve: a plain openssl verifies the CSR"
        run_ok "$backend $curve: the CSR's key is read" \
            openssl req -in "$work/req.pem" -pubkey -noout
        assert_eq "$OUT" "$(cat "$work/$backend-$label.pub")" \
            "$backend $curve: the CSR carries the store key's public key"

        if [ "$curve" = P-256 ]; then
            # The order of the providers does not matter: tessera first, straight into a
            # plain `openssl req -verify`.
            run_ok "$backend $curve: CSR with tessera loaded first, piped to req -verify" \
                bash -c 'openssl req -new -provider-path "$1" -provider tessera -provider default \
                    -key "$2" -subj /CN=piped | openssl req -verify -noout' _ "$provdir" "$key"
            assert_match "$OUT$ERR" "verify OK" "$backend $curve: the piped CSR verifies"
        fi

        run_ok "$backend $curve: openssl req -x509 self-signs" \
            openssl req -new -x509 -days 1 "${prov[@]}" -key "$key" -subj "/CN=$label" \
            -out "$work/self.pem"
        run_ok "$backend $curve: a plain openssl verifies the certificate" \
            openssl verify -CAfile "$work/self.pem" "$work/self.pem"

        run_ok "$backend $curve: openssl pkey gives the public key" \
            openssl pkey "${prov[@]}" -in "$key" -pubout
        assert_eq "$OUT" "$(cat "$work/$backend-$label.pub")" \
            "$backend $curve: it is the store key's"
        run_ok "$backend $curve: openssl dgst signs" \
            openssl dgst "${prov[@]}" -sha256 -sign "$key" -out "$work/msg.sig" "$work/msg"
        run_ok "$backend $curve: the signature verifies with the public key" \
            openssl dgst -sha256 -verify "$work/$backend-$label.pub" -signature "$work/msg.sig" \
            "$work/msg"
        rm -f "$work/priv.pem"
        run_capture openssl pkey "${prov[@]}" -in "$key" -out "$work/priv.pem"
        [ "$RC" -ne 0 ] || fail "$backend $curve: openssl pkey wrote the private key out"
        if grep -q "PRIVATE KEY" "$work/priv.pem" 2>/dev/null; then
            fail "$backend $curve: a private key was written"
        fi
        pass "$backend $curve: the private key cannot be written out"
    done

    expect_fail "$backend: a wrong PIN is refused" \
        openssl pkey "${prov[@]}" -in "$(key_uri "$backend" dev-P256 9999)" -pubout
    assert_match "$ERR" 'tessera.*(wrong PIN|PIN)' "$backend: the provider says it is the PIN"
    expect_fail "$backend: a missing key is refused" \
        openssl pkey "${prov[@]}" -in "$(key_uri "$backend" nokey)" -pubout
    assert_match "$ERR" "tessera.*not found.*nokey" "$backend: the provider names the label"
done

finish
