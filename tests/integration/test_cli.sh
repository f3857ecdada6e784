#!/usr/bin/env bash
# The tessera command, end to end: every keystore subcommand on a soft: store and on a SoftHSM2
# token; --help everywhere; bad input refused with a message naming the cause, a non-zero exit
# and no change to the store; the PIN never printed; and `tessera demo --keystore`.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ -x "$TESSERA" ] || fail "no tessera at $TESSERA (set TS_BUILD_DIR)"
module=$(softhsm_module)
softhsm_setup

pin=cli-pin-4921
so_pin=cli-so-pin-7730
declare -A stores=(
    [soft]="soft:$TS_TEST_TMP/soft?pin-value=$pin"
    [pkcs11]="pkcs11:token=cli?module-path=$module&pin-value=$pin"
)
declare -A no_pin=(
    [soft]="soft:$TS_TEST_TMP/soft"
    [pkcs11]="pkcs11:token=cli?module-path=$module"
)
declare -A wrong_pin=(
    [soft]="soft:$TS_TEST_TMP/soft?pin-value=wrong-pin-0000"
    [pkcs11]="pkcs11:token=cli?module-path=$module&pin-value=wrong-pin-0000"
)

# --- help, version and usage errors -----------------------------------------------------------

run_ok "tessera --help" "$TESSERA" --help
assert_match "$OUT" '^usage: tessera COMMAND' "--help prints the usage line"
assert_match "$OUT" 'keystore' "--help lists keystore"
assert_match "$OUT" 'demo' "--help lists demo"
run_ok "tessera --version" "$TESSERA" --version
assert_match "$OUT" '^tessera [0-9]+\.[0-9]+\.[0-9]+' "--version prints a version"
run_ok "tessera keystore --help" "$TESSERA" keystore --help
for cmd in init genkey list pubkey csr delete counter put get; do
    assert_match "$OUT" "^  $cmd " "keystore --help lists $cmd"
done
for cmd in init genkey list pubkey csr delete counter put get; do
    run_ok "keystore $cmd --help" "$TESSERA" keystore "$cmd" --help
    assert_match "$OUT" "^usage: tessera keystore $cmd( |$)" "keystore $cmd --help: usage line"
    assert_match "$OUT" '--keystore URI' "keystore $cmd --help: names --keystore"
done
run_ok "demo --help" "$TESSERA" demo --help
assert_match "$OUT" '^usage: tessera demo' "demo --help: usage line"
run_ok "-h works as --help" "$TESSERA" keystore genkey -h
run_ok "--help wins over bad options" "$TESSERA" keystore genkey --bogus --help

expect_status 2 "no command" "$TESSERA"
assert_match "$ERR" 'a command is required' "no command: says so"
expect_status 2 "unknown command" "$TESSERA" frobnicate
assert_match "$ERR" "unknown command 'frobnicate'" "unknown command: named"
assert_match "$ERR" '^usage: ' "unknown command: usage line"
expect_status 2 "unknown keystore command" "$TESSERA" keystore frobnicate
assert_match "$ERR" "unknown command 'frobnicate'" "unknown keystore command: named"
expect_status 2 "unknown option" "$TESSERA" keystore list --bogus
assert_match "$ERR" "unknown option '--bogus'" "unknown option: named"
assert_match "$ERR" '^usage: tessera keystore list' "unknown option: usage line"
expect_status 2 "missing required option" "$TESSERA" keystore pubkey --keystore "${stores[soft]}"
assert_match "$ERR" 'missing --label' "missing option: named"
expect_status 2 "option without its value" "$TESSERA" keystore pubkey --label
assert_match "$ERR" '--label needs a value' "missing value: named"
expect_status 2 "empty value" "$TESSERA" keystore pubkey --label=
assert_match "$ERR" '--label: the value is empty' "empty value: named"
expect_status 2 "option given twice" "$TESSERA" keystore pubkey --label a --label b
assert_match "$ERR" '--label is given more than once' "repeated option: named"
expect_status 2 "stray argument" "$TESSERA" keystore list extra
assert_match "$ERR" "unexpected argument 'extra'" "stray argument: named"
expect_status 2 "a flag with a value" "$TESSERA" keystore counter --label c --increment=3
assert_match "$ERR" '--increment takes no value' "flag value: named"
expect_status 2 "no key store at all" env -u TESSERA_KEYSTORE "$TESSERA" keystore list
assert_match "$ERR" 'TESSERA_KEYSTORE' "no key store: says how to name one"

# --- the keystore commands, on each backend ---------------------------------------------------

# list_of URI: the list output, to compare a store before and after a refused command.
list_of() {
    "$TESSERA" keystore list --keystore "$1"
}

# unchanged TAG URI BEFORE: the store lists exactly as BEFORE.
unchanged() {
    local now
    now=$(list_of "$2") || fail "$1: list failed afterwards"
    assert_eq "$now" "$3" "$1: store unchanged"
}

for b in soft pkcs11; do
    uri=${stores[$b]}
    dir="$TS_TEST_TMP/$b-out"
    mkdir -p "$dir"

    if [ "$b" = pkcs11 ]; then
        expect_status 2 "$b: init without an SO PIN" env -u TESSERA_SO_PIN "$TESSERA" keystore \
            init --keystore "$uri"
        assert_match "$ERR" 'so-pin' "$b: init without an SO PIN: says so"
        run_ok "$b: init" "$TESSERA" keystore init --keystore "$uri" --so-pin "$so_pin"
    else
        run_ok "$b: init" "$TESSERA" keystore init --keystore "$uri"
    fi
    uid=$OUT
    assert_match "$uid" '^[0-9a-f]{32}$' "$b: init prints a 16-byte UID in hex"
    assert_no_string "$OUT$ERR" "$pin" "$b: init does not print the PIN"
    expect_fail "$b: init of an existing store" "$TESSERA" keystore init --keystore "$uri" \
        --so-pin "$so_pin"
    assert_match "$ERR" '^tessera: ' "$b: init twice: message"
    [ "$RC" -eq 1 ] || fail "$b: init twice: exit $RC, want 1"

    run_ok "$b: genkey P-256" "$TESSERA" keystore genkey --keystore "$uri" --label dev
    printf '%s\n' "$OUT" >"$dir/dev.gen.pem"
    assert_match "$OUT" '^-----BEGIN PUBLIC KEY-----' "$b: genkey prints a PEM public key"
    openssl pkey -pubin -in "$dir/dev.gen.pem" -noout -text >"$dir/dev.txt" 2>&1 ||
        fail "$b: openssl cannot read the genkey output"
    grep -q 'NIST CURVE: P-256' "$dir/dev.txt" || fail "$b: the default curve is not P-256"
    pass "$b: genkey defaults to P-256"
    run_ok "$b: genkey P-384" "$TESSERA" keystore genkey --keystore "$uri" --label dev384 \
        --curve P-384
    openssl pkey -pubin -noout -text <<<"$OUT" 2>&1 | grep -q 'NIST CURVE: P-384' ||
        fail "$b: --curve P-384 made no P-384 key"
    pass "$b: genkey --curve P-384"

    run_ok "$b: list" "$TESSERA" keystore list --keystore "$uri"
    assert_match "$OUT" "^uid: +$uid\$" "$b: list shows the UID of init"
    assert_match "$OUT" '^dev +key +P-256 ' "$b: list shows the P-256 key"
    assert_match "$OUT" '^dev384 +key +P-384 ' "$b: list shows the P-384 key"
    assert_no_string "$OUT$ERR" "$pin" "$b: list does not print the PIN"
    run_capture env TESSERA_KEYSTORE="$uri" "$TESSERA" keystore list
    [ "$RC" -eq 0 ] && grep -q "$uid" <<<"$OUT" || fail "$b: TESSERA_KEYSTORE is not used"
    pass "$b: TESSERA_KEYSTORE names the store"
    run_capture env TESSERA_PIN="$pin" "$TESSERA" keystore list --keystore "${no_pin[$b]}"
    [ "$RC" -eq 0 ] || fail "$b: TESSERA_PIN is not used"
    pass "$b: TESSERA_PIN gives the PIN"

    run_ok "$b: pubkey --out" "$TESSERA" keystore pubkey --keystore "$uri" --label dev \
        --out "$dir/dev.pub"
    cmp -s "$dir/dev.pub" "$dir/dev.gen.pem" || fail "$b: pubkey differs from genkey's output"
    pass "$b: pubkey matches genkey"
    assert_eq "$(file_mode "$dir/dev.pub")" 644 "$b: a public key file is 0644"
    run_ok "$b: pubkey to stdout" "$TESSERA" keystore pubkey --keystore "$uri" --label dev
    assert_eq "$OUT" "$(cat "$dir/dev.pub")" "$b: pubkey to stdout is the same PEM"

    run_ok "$b: csr" "$TESSERA" keystore csr --keystore "$uri" --label dev \
        --subject '/CN=device 1/O=Acme\/Labs/C=DE' --san DNS:dev.example.com,IP:127.0.0.1 \
        --san URI:urn:tessera:dev1 --out "$dir/dev.csr"
    assert_eq "$(file_mode "$dir/dev.csr")" 644 "$b: a CSR file is 0644"
    run_capture openssl req -in "$dir/dev.csr" -verify -noout
    [ "$RC" -eq 0 ] || fail "$b: openssl req -verify exits $RC"
    assert_match "$OUT$ERR" 'verify OK' "$b: openssl req -verify accepts the CSR"
    run_capture openssl req -in "$dir/dev.csr" -noout -subject -nameopt RFC2253
    assert_eq "$OUT" 'subject=C=DE,O=Acme/Labs,CN=device 1' "$b: CSR subject, escaped slash kept"
    run_capture openssl req -in "$dir/dev.csr" -noout -text
    assert_match "$OUT" 'DNS:dev.example.com, IP Address:127.0.0.1, URI:urn:tessera:dev1' \
        "$b: CSR carries the subjectAltNames"
    assert_match "$OUT" 'Signature Algorithm: ecdsa-with-SHA256' "$b: P-256 signs with SHA-256"
    openssl req -in "$dir/dev.csr" -noout -pubkey >"$dir/csr.pub"
    cmp -s "$dir/csr.pub" "$dir/dev.pub" || fail "$b: the CSR's key is not the store's key"
    pass "$b: the CSR carries the key's public half"
    run_ok "$b: csr with P-384" "$TESSERA" keystore csr --keystore "$uri" --label dev384 \
        --subject /CN=dev384
    printf '%s\n' "$OUT" >"$dir/dev384.csr"
    run_capture openssl req -in "$dir/dev384.csr" -verify -noout -text
    assert_match "$OUT$ERR" 'verify OK' "$b: the P-384 CSR verifies"
    assert_match "$OUT" 'Signature Algorithm: ecdsa-with-SHA384' "$b: P-384 signs with SHA-384"

    run_ok "$b: counter reads 0" "$TESSERA" keystore counter --keystore "$uri" --label boot
    assert_eq "$OUT" 0 "$b: a fresh counter is 0"
    run_ok "$b: counter --increment" "$TESSERA" keystore counter --keystore "$uri" --label boot \
        --increment
    assert_eq "$OUT" 1 "$b: increment gives 1"
    run_ok "$b: counter --increment again" "$TESSERA" keystore counter --keystore "$uri" \
        --label boot --increment
    assert_eq "$OUT" 2 "$b: increment gives 2"
    run_ok "$b: counter --raise 10" "$TESSERA" keystore counter --keystore "$uri" --label boot \
        --raise 10
    assert_eq "$OUT" 10 "$b: raise gives 10"

    head -c 300 /dev/urandom >"$dir/blob"
    run_ok "$b: put" "$TESSERA" keystore put --keystore "$uri" --label cfg --in "$dir/blob"
    run_ok "$b: get --out" "$TESSERA" keystore get --keystore "$uri" --label cfg \
        --out "$dir/blob.out"
    cmp -s "$dir/blob" "$dir/blob.out" || fail "$b: get returned other bytes than put stored"
    pass "$b: put/get round trip"
    assert_eq "$(file_mode "$dir/blob.out")" 600 "$b: get --out writes 0600"
    "$TESSERA" keystore get --keystore "$uri" --label cfg >"$dir/blob.stdout" ||
        fail "$b: get to stdout"
    cmp -s "$dir/blob" "$dir/blob.stdout" || fail "$b: get to stdout changed the bytes"
    pass "$b: get to stdout round trip"
    "$TESSERA" keystore put --keystore "$uri" --label fromstdin --in - <"$dir/blob" ||
        fail "$b: put from stdin"
    "$TESSERA" keystore get --keystore "$uri" --label fromstdin >"$dir/blob.stdin" ||
        fail "$b: get of the object put from stdin"
    cmp -s "$dir/blob" "$dir/blob.stdin" || fail "$b: put --in - stored other bytes"
    pass "$b: put --in - reads standard input"
    echo "secret value" >"$dir/secret"
    run_ok "$b: put --secret" "$TESSERA" keystore put --keystore "$uri" --label sec \
        --in "$dir/secret" --secret
    run_ok "$b: get a secret" "$TESSERA" keystore get --keystore "$uri" --label sec
    assert_eq "$OUT" "secret value" "$b: a secret object reads back"
    run_ok "$b: list after put" "$TESSERA" keystore list --keystore "$uri"
    assert_match "$OUT" '^cfg +data +300 bytes +-$' "$b: list shows the data object"
    assert_match "$OUT" '^sec +data +13 bytes +secret$' "$b: list shows the secret flag"
    assert_match "$OUT" '^boot +counter +10 ' "$b: list shows the counter value"
    echo "new" >"$dir/new"
    run_ok "$b: put --replace" "$TESSERA" keystore put --keystore "$uri" --label cfg \
        --in "$dir/new" --replace
    run_ok "$b: get after replace" "$TESSERA" keystore get --keystore "$uri" --label cfg
    assert_eq "$OUT" new "$b: replace took effect"

    # Refused input: each names its cause, exits non-zero and leaves the store as it was.
    before=$(list_of "$uri")

    expect_status 1 "$b: counter --raise below the value" "$TESSERA" keystore counter \
        --keystore "$uri" --label boot --raise 5
    assert_match "$ERR" '^tessera: .*boot.*(below|back)' "$b: rollback: says so"
    expect_status 2 "$b: counter --raise not a number" "$TESSERA" keystore counter \
        --keystore "$uri" --label boot --raise 12x
    assert_match "$ERR" "'12x' is not a number" "$b: bad number: named"
    expect_status 2 "$b: --increment with --raise" "$TESSERA" keystore counter \
        --keystore "$uri" --label boot --raise 12 --increment
    unchanged "$b: counter refusals" "$uri" "$before"

    expect_fail "$b: genkey on a taken label" "$TESSERA" keystore genkey --keystore "$uri" \
        --label dev
    assert_match "$ERR" "^tessera: .*dev" "$b: taken label: named"
    expect_fail "$b: put on a taken label" "$TESSERA" keystore put --keystore "$uri" \
        --label cfg --in "$dir/blob"
    expect_status 1 "$b: put from a missing file" "$TESSERA" keystore put --keystore "$uri" \
        --label other --in "$dir/no-such-file"
    assert_match "$ERR" "no-such-file" "$b: missing input: named"
    unchanged "$b: taken labels" "$uri" "$before"

    for cmd in pubkey delete; do
        expect_status 1 "$b: $cmd of an unknown label" "$TESSERA" keystore "$cmd" \
            --keystore "$uri" --label nosuch
        assert_match "$ERR" "^tessera: .*nosuch" "$b: $cmd unknown label: named"
    done
    expect_status 1 "$b: csr of an unknown label" "$TESSERA" keystore csr --keystore "$uri" \
        --label nosuch --subject /CN=x --out "$dir/nosuch.csr"
    assert_match "$ERR" "^tessera: .*nosuch" "$b: csr unknown label: named"
    [ ! -e "$dir/nosuch.csr" ] || fail "$b: a failed csr wrote its output file"
    pass "$b: a failed csr writes no file"
    expect_status 1 "$b: get of an unknown label" "$TESSERA" keystore get --keystore "$uri" \
        --label nosuch
    expect_status 1 "$b: delete of a counter" "$TESSERA" keystore delete --keystore "$uri" \
        --label boot
    assert_match "$ERR" "^tessera: .*boot" "$b: counter delete: named"

    for bad in 'bad label' 'x/y' '.hidden' "$(printf 'a%.0s' {1..65})"; do
        expect_status 2 "$b: invalid label '${bad:0:12}'" "$TESSERA" keystore genkey \
            --keystore "$uri" --label "$bad"
        assert_match "$ERR" '--label: label' "$b: invalid label '${bad:0:12}': named"
    done
    expect_status 2 "$b: unknown curve" "$TESSERA" keystore genkey --keystore "$uri" \
        --label newkey --curve P-521
    assert_match "$ERR" "curve 'P-521'" "$b: unknown curve: named"

    declare -A bad_subjects=(
        ['CN=x']='does not start with'
        ['/CN']='has no .='
        ['/CN=']='empty value'
        ['/CN=x//O=y']='is empty'
        ['/XX=y']="unknown attribute 'XX'"
        ['/C=DEU']="not a valid value"
        ['/CN=x\']='lone backslash'
    )
    for s in "${!bad_subjects[@]}"; do
        expect_status 2 "$b: bad subject '$s'" "$TESSERA" keystore csr --keystore "$uri" \
            --label dev --subject "$s" --out "$dir/bad.csr"
        assert_match "$ERR" "subject.*${bad_subjects[$s]}" "$b: bad subject '$s': named"
    done
    for s in 'FOO:bar' 'DNS:bad name' 'IP:300.1.1.1' 'URI:no-scheme' 'email:nobody' 'DNS:a,,DNS:b'; do
        expect_status 2 "$b: bad --san '$s'" "$TESSERA" keystore csr --keystore "$uri" \
            --label dev --subject /CN=x --san "$s" --out "$dir/bad.csr"
        assert_match "$ERR" "--san" "$b: bad --san '$s': named"
    done
    [ ! -e "$dir/bad.csr" ] || fail "$b: a refused csr wrote its output file"
    unchanged "$b: bad values" "$uri" "$before"

    expect_status 1 "$b: wrong PIN" "$TESSERA" keystore list --keystore "${wrong_pin[$b]}"
    assert_match "$ERR" '^tessera: .*PIN' "$b: wrong PIN: says so"
    assert_no_string "$ERR" wrong-pin-0000 "$b: wrong PIN: the PIN is not printed"
    expect_status 1 "$b: genkey with a wrong PIN" "$TESSERA" keystore genkey \
        --keystore "${wrong_pin[$b]}" --label newkey
    unchanged "$b: wrong PIN" "$uri" "$before"

    run_ok "$b: delete a data object" "$TESSERA" keystore delete --keystore "$uri" --label cfg
    expect_status 1 "$b: get after delete" "$TESSERA" keystore get --keystore "$uri" --label cfg
    run_ok "$b: delete a key" "$TESSERA" keystore delete --keystore "$uri" --label dev384
    run_ok "$b: list after delete" "$TESSERA" keystore list --keystore "$uri"
    assert_no_match "$OUT" '^(cfg|dev384) ' "$b: deleted objects are gone"
    assert_match "$OUT" '^dev +key' "$b: the other key stays"
done

# URIs that name nothing usable.
before=$(list_of "${stores[soft]}")
before_p11=$(list_of "${stores[pkcs11]}")
for bad in 'nonsense:foo' 'soft:' 'pkcs11:token=cli?pin-value' "pkcs11:token=cli;bad%zz?module-path=$module"; do
    expect_status 1 "malformed URI '$bad'" "$TESSERA" keystore list --keystore "$bad"
    assert_match "$ERR" '^tessera: .*(URI|uri|scheme)' "malformed URI '$bad': says so"
done
expect_status 1 "a missing PKCS#11 module" "$TESSERA" keystore genkey --label newkey \
    --keystore "pkcs11:token=cli?module-path=/nonexistent.so&pin-value=$pin"
assert_match "$ERR" '^tessera: .*/nonexistent.so' "missing module: named"
assert_no_string "$ERR" "$pin" "missing module: the PIN is not printed"
expect_status 1 "a token that does not exist" "$TESSERA" keystore list \
    --keystore "pkcs11:token=nosuchtoken?module-path=$module&pin-value=$pin"
assert_match "$ERR" '^tessera: .*nosuchtoken' "missing token: named"
unchanged "soft: bad URIs" "${stores[soft]}" "$before"
unchanged "pkcs11: bad URIs" "${stores[pkcs11]}" "$before_p11"

# --- the key-store walk: tessera demo --keystore (tests/integration/test_demo.sh runs the demo) --

demo_tmp=$(mktemp -d "$TS_TEST_TMP/demo-XXXXXX")
run_ok "tessera demo --keystore" env TMPDIR="$demo_tmp" TS_SOFTHSM_MODULE="$module" "$TESSERA" \
    demo --keystore
for step in 1 2 3 4 5 6; do
    assert_match "$OUT" "^\[$step/6\] " "demo prints step $step"
done
assert_match "$OUT" 'Creating a SoftHSM2 token' "demo uses SoftHSM2"
assert_match "$OUT" 'CKA_SENSITIVE=TRUE CKA_EXTRACTABLE=FALSE' "demo shows the key is sensitive"
assert_match "$OUT" 'refused with CKR_ATTRIBUTE_SENSITIVE' "demo shows the value is unreadable"
assert_match "$OUT" 'verifies with the public key in the request' "demo verifies its CSR"
assert_match "$OUT" 'protocol +TLSv1\.3, ' "demo's handshake is TLS 1.3"
assert_match "$OUT" 'server sees client +/CN=tessera-demo-device' "demo: server sees the client"
assert_match "$OUT" 'client sees server +/CN=localhost' "demo: client sees the server"
assert_match "$OUT" 'client -> server +"hello' "demo: a line reaches the server"
assert_match "$OUT" 'server -> client +"hello' "demo: a line reaches the client"
assert_match "$OUT" '^Done: ' "demo ends with a summary"
assert_eq "$(find "$demo_tmp" -mindepth 1 | wc -l)" 0 "demo removes everything it made"

run_ok "tessera demo --keystore without SoftHSM2" env TMPDIR="$demo_tmp" \
    TS_SOFTHSM_MODULE=/nonexistent/libsofthsm2.so "$TESSERA" demo --keystore
assert_match "$OUT" 'SoftHSM2 is not installed' "demo says SoftHSM2 is missing"
assert_match "$OUT" 'Creating a soft: key store' "demo falls back to soft:"
assert_match "$OUT" 'protocol +TLSv1\.3, ' "demo over soft: completes the handshake"
assert_eq "$(find "$demo_tmp" -mindepth 1 | wc -l)" 0 "soft: demo removes everything it made"

echo "not a PKCS#11 module" >"$TS_TEST_TMP/not-a-module.so"
expect_status 1 "tessera demo --keystore with a broken module" env TMPDIR="$demo_tmp" \
    TS_SOFTHSM_MODULE="$TS_TEST_TMP/not-a-module.so" "$TESSERA" demo --keystore
assert_match "$ERR" 'step 1 \(Creating a SoftHSM2 token\) failed: .*not-a-module.so' \
    "a failed demo names the step and the cause"
assert_match "$OUT" 'stopped at step 1 of 6' "a failed demo says where it stopped"
assert_eq "$(find "$demo_tmp" -mindepth 1 | wc -l)" 0 "a failed demo removes what it made"

finish
