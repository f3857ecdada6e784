#!/usr/bin/env bash
# The key ceremony end to end: tessera init with 3-of-5 shares, the chain checked by openssl,
# the transcript in the audit log, ceremony offline-root, tenant create refused while the root
# is offline, restore refused with 2 shares and with a mistyped share (naming the share and the
# line, changing nothing), restore from 3 shares, tenant create; then a restore into another key
# store.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ -x "$TESSERA" ] || fail "no tessera at $TESSERA (set TS_BUILD_DIR)"
module=$(softhsm_module)
softhsm_setup
export TS_SOFTHSM_MODULE="$module"
unset TESSERA_DIR TESSERA_OPERATOR
D="$TS_TEST_TMP/ca"
SH="$D/shares"

# ks_uri: the instance's key-store URI from DIR/instance.json.
ks_uri() {
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["keystore"])' "$D/instance.json"
}

# ks_list: the objects of the instance's key store (SoftHSM2 under DIR, with DIR's config).
ks_list() {
    SOFTHSM2_CONF="$D/softhsm2.conf" "$TESSERA" keystore list --keystore "$(ks_uri)"
}

# snapshot: everything a refused ceremony command must leave as it was.
snapshot() {
    {
        "$TESSERA" audit list --dir "$D"
        "$TESSERA" tenant list --dir "$D"
        ks_list
        sha256sum "$D/root-key.wrapped" "$D/instance.json"
    } 2>&1
}

# --- init ----------------------------------------------------------------------------------------

expect_status 2 "init: bad --shares" "$TESSERA" init --dir "$D" --shares 1/5
assert_match "$ERR" 'shares' "bad --shares: named"
expect_status 2 "init: M above N" "$TESSERA" init --dir "$D" --shares 4/3
[ ! -e "$D" ] || fail "a refused init left $D behind"
pass "a refused init leaves nothing"

run_ok "init with 3-of-5 shares" "$TESSERA" init --dir "$D" --org "Ceremony Test" --country de \
    --url https://pki.ceremony.example/ --shares 3/5 --operator "Kim Lee"
assert_match "$OUT" 'root CA: +SHA-256 [0-9a-f]{64}' "init prints the root fingerprint"
assert_match "$OUT" "3-of-5 shares in $SH" "init says where the shares are"
assert_match "$OUT" 'delete' "init tells the operator to delete the share files"
root_fp=$(sed -n 's/^root CA: *SHA-256 \([0-9a-f]*\)$/\1/p' <<<"$OUT")
assert_match "$(ks_uri)" '^pkcs11:token=tessera-ca\?' "the default key store is a SoftHSM2 token"
assert_eq "$(file_mode "$D/keystore.pin")" 600 "the PIN file is 0600"
assert_match "$(cat "$D/softhsm2.conf")" "tokendir = $D/tokens" "SoftHSM2 keeps the token under DIR"
for i in 1 2 3 4 5; do
    f="$SH/share-$i-of-5.txt"
    [ -f "$f" ] || fail "no $f"
    assert_eq "$(file_mode "$f")" 600 "share $i is 0600"
    fp=$(awk '$2 == "ROOT" { for (i = 3; i < NF; i++) printf "%s", $i }' "$f" | tr A-F a-f)
    assert_eq "$fp" "$root_fp" "share $i names the root fingerprint"
done
expect_fail "init refuses an existing instance" "$TESSERA" init --dir "$D"
assert_match "$ERR" 'already holds an instance' "existing instance: said so"
mkdir "$TS_TEST_TMP/full" && touch "$TS_TEST_TMP/full/x"
expect_fail "init refuses a non-empty directory" "$TESSERA" init --dir "$TS_TEST_TMP/full"
assert_match "$ERR" 'not empty' "non-empty directory: said so"

run_ok "ca show --root" "$TESSERA" ca show --dir "$D" --root --out "$TS_TEST_TMP/root.pem"
run_ok "ca show --issuing" "$TESSERA" ca show --dir "$D" --issuing --out "$TS_TEST_TMP/issuing.pem"
run_ok "openssl verifies the issuing CA" \
    openssl verify -CAfile "$TS_TEST_TMP/root.pem" "$TS_TEST_TMP/issuing.pem"
root_text=$(openssl x509 -in "$TS_TEST_TMP/root.pem" -noout -text)
assert_match "$root_text" 'CA:TRUE, pathlen:1' "root: CA, pathLen 1"
assert_match "$root_text" 'Certificate Sign, CRL Sign' "root: keyCertSign and cRLSign"
assert_match "$root_text" 'NIST CURVE: P-384' "root: P-384"
assert_match "$root_text" 'Subject: C = DE, O = Ceremony Test' "root: subject from --org/--country"
issuing_text=$(openssl x509 -in "$TS_TEST_TMP/issuing.pem" -noout -text)
assert_match "$issuing_text" 'CA:TRUE, pathlen:0' "issuing: CA, pathLen 0"
assert_match "$issuing_text" 'NIST CURVE: P-256' "issuing: P-256"
assert_match "$issuing_text" 'URI:https://pki.ceremony.example/crl/root.crl' "issuing: CRL DP"
assert_match "$issuing_text" 'OCSP - URI:https://pki.ceremony.example/ocsp' "issuing: OCSP URL"
got_fp=$(openssl x509 -in "$TS_TEST_TMP/root.pem" -outform DER | sha256sum | cut -d' ' -f1)
assert_eq "$got_fp" "$root_fp" "the printed fingerprint is the root certificate's"

# The transcript: the first audit entries, by the operator.
run_ok "audit list" "$TESSERA" audit list --dir "$D"
first=$(head -n 1 <<<"$OUT")
assert_match "$first" $'^1\t[^\t]+\tKim Lee\tceremony\\.begin\t' "entry 1: ceremony.begin by the operator"
assert_match "$OUT" $'\tkey\\.generate\troot-[0-9a-f]{8}\t.*"curve":"P-384".*"public_key_sha256":"[0-9a-f]{64}"' \
    "transcript: the root key's fingerprint"
assert_match "$OUT" $'\tca\\.create\t.*"pem":"-----BEGIN CERTIFICATE' "transcript: the certificates"
assert_match "$OUT" $'\tceremony\\.backup\t.*"shares":"3/5"' "transcript: the backup"
assert_match "$OUT" "\"root_sha256\":\"$root_fp\"" "transcript: the root fingerprint"
run_ok "audit verify" "$TESSERA" audit verify --dir "$D"

# --- offline-root ----------------------------------------------------------------------------------

root_label=$(ks_list | awk '$1 ~ /^root-/ { print $1 }')
assert_match "$root_label" '^root-[0-9a-f]{8}$' "the root key is in the key store"
run_ok "ceremony offline-root" "$TESSERA" ceremony offline-root --dir "$D"
assert_no_match "$(ks_list)" "^$root_label " "the root key is gone from the key store"
expect_fail "offline-root twice" "$TESSERA" ceremony offline-root --dir "$D"
assert_match "$ERR" 'already offline' "offline twice: said so"
expect_status 1 "tenant create refused while the root is offline" \
    "$TESSERA" tenant create acme --dir "$D"
assert_match "$ERR" '^tessera: the root key is offline: run tessera ceremony restore --shares' \
    "offline root: the message says to restore from the shares"
assert_match "$ERR" 'any 3 of the 5' "offline root: the message says how many shares"
expect_status 1 "root CRL refused while offline" "$TESSERA" crl --dir "$D" --root
assert_match "$ERR" 'root key is offline' "root CRL: offline said"

# Issuing goes on with the issuing CA.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TS_TEST_TMP/d.key" \
    -subj /CN=dev-0001 -out "$TS_TEST_TMP/d.csr" 2>/dev/null
run_ok "issuing works with the root offline" "$TESSERA" cert issue --dir "$D" \
    --csr "$TS_TEST_TMP/d.csr" --profile device --out "$TS_TEST_TMP/d.pem"
run_ok "and chains" openssl verify -CAfile "$TS_TEST_TMP/root.pem" \
    -untrusted "$TS_TEST_TMP/issuing.pem" "$TS_TEST_TMP/d.pem"

# --- refused restores change nothing ---------------------------------------------------------------

before=$(snapshot)
expect_status 1 "restore with 2 shares" "$TESSERA" ceremony restore --dir "$D" \
    --shares "$SH/share-1-of-5.txt" "$SH/share-4-of-5.txt"
assert_match "$ERR" '2 shares given, 3 needed' "2 shares: said so"
assert_eq "$(snapshot)" "$before" "2 shares: nothing changed"

# One character of a KEY line mistyped (a digit changed): the line's checksum catches it.
awk '$2 == "KEY" && !done { c = substr($3, 1, 1); $3 = (c == "0" ? "1" : "0") substr($3, 2); done = 1 } { print }' \
    "$SH/share-2-of-5.txt" >"$TS_TEST_TMP/typo.txt"
bad_line=$(awk '$2 == "KEY" { print NR; exit }' "$SH/share-2-of-5.txt")
cmp -s "$TS_TEST_TMP/typo.txt" "$SH/share-2-of-5.txt" && fail "the typo did not change the share"
expect_status 1 "restore with a mistyped share" "$TESSERA" ceremony restore --dir "$D" \
    --shares "$SH/share-1-of-5.txt" "$TS_TEST_TMP/typo.txt" "$SH/share-5-of-5.txt"
assert_match "$ERR" "share 2 \\(.*typo\\.txt\\), line $bad_line: " "mistyped share: names share and line"
assert_eq "$(snapshot)" "$before" "mistyped share: nothing changed"

expect_status 1 "restore with the same share twice" "$TESSERA" ceremony restore --dir "$D" \
    --shares "$SH/share-1-of-5.txt" "$SH/share-1-of-5.txt" "$SH/share-3-of-5.txt"
assert_eq "$(snapshot)" "$before" "duplicate share: nothing changed"
expect_status 1 "restore with a missing file" "$TESSERA" ceremony restore --dir "$D" \
    --shares "$SH/share-1-of-5.txt" "$SH/share-2-of-5.txt" "$TS_TEST_TMP/nope.txt"
assert_match "$ERR" 'nope\.txt' "missing share file: named"
assert_eq "$(snapshot)" "$before" "missing share file: nothing changed"
expect_status 2 "restore without --shares" "$TESSERA" ceremony restore --dir "$D"

# --- restore from 3 shares, then a new tenant ------------------------------------------------------

run_ok "restore from shares 2, 4 and 5" "$TESSERA" ceremony restore --dir "$D" \
    --shares "$SH/share-2-of-5.txt" "$SH/share-4-of-5.txt" "$SH/share-5-of-5.txt"
assert_match "$(ks_list)" "^$root_label +key +P-384" "the root key is back in the key store"
expect_fail "restore while online" "$TESSERA" ceremony restore --dir "$D" \
    --shares "$SH/share-1-of-5.txt" "$SH/share-2-of-5.txt" "$SH/share-3-of-5.txt"
assert_match "$ERR" 'already online' "restore while online: said so"
run_ok "tenant create with the root restored" "$TESSERA" tenant create acme --dir "$D" \
    --org "Acme Devices"
run_ok "ca show acme" "$TESSERA" ca show --dir "$D" --tenant acme --issuing \
    --out "$TS_TEST_TMP/acme.pem"
run_ok "acme's issuing CA chains to the root" \
    openssl verify -CAfile "$TS_TEST_TMP/root.pem" "$TS_TEST_TMP/acme.pem"
assert_match "$(openssl x509 -in "$TS_TEST_TMP/acme.pem" -noout -subject)" 'O = Acme Devices' \
    "acme's issuing CA has its org"
run_ok "tenant list" "$TESSERA" tenant list --dir "$D"
assert_match "$OUT" $'^acme\tAcme Devices\tDE\t' "tenant list shows acme"
assert_match "$OUT" $'^default\tCeremony Test\tDE\t' "tenant list shows default"
expect_fail "tenant create twice" "$TESSERA" tenant create acme --dir "$D"
assert_match "$ERR" 'already exists' "duplicate tenant: said so"
expect_status 2 "bad tenant name" "$TESSERA" tenant create Bad_Name --dir "$D"

# --- restore into another key store ----------------------------------------------------------------

run_ok "offline again" "$TESSERA" ceremony offline-root --dir "$D"
printf 'vault-pin-5521' >"$TS_TEST_TMP/vault.pin"
vault="soft:$TS_TEST_TMP/vault?pin-source=$TS_TEST_TMP/vault.pin"
run_ok "an offline vault store" "$TESSERA" keystore init --keystore "$vault"
expect_status 1 "restore refuses a URI with pin-value" "$TESSERA" ceremony restore --dir "$D" \
    --keystore "soft:$TS_TEST_TMP/vault?pin-value=vault-pin-5521" \
    --shares "$SH/share-1-of-5.txt" "$SH/share-2-of-5.txt" "$SH/share-3-of-5.txt"
run_ok "restore into the vault" "$TESSERA" ceremony restore --dir "$D" --keystore "$vault" \
    --shares "$SH/share-1-of-5.txt" "$SH/share-2-of-5.txt" "$SH/share-3-of-5.txt"
assert_match "$("$TESSERA" keystore list --keystore "$vault")" "^$root_label +key +P-384" \
    "the root key is in the vault"
assert_no_match "$(ks_list)" "^$root_label " "and not in the instance's key store"
run_ok "tenant create signs with the vault's root key" "$TESSERA" tenant create beta --dir "$D"
run_ok "ca show beta" "$TESSERA" ca show --dir "$D" --tenant beta --issuing \
    --out "$TS_TEST_TMP/beta.pem"
run_ok "beta chains to the root" openssl verify -CAfile "$TS_TEST_TMP/root.pem" "$TS_TEST_TMP/beta.pem"
run_ok "root CRL with the root online" "$TESSERA" crl --dir "$D" --root --out "$TS_TEST_TMP/root.crl"
run_ok "root CRL verifies" openssl crl -inform DER -in "$TS_TEST_TMP/root.crl" \
    -CAfile "$TS_TEST_TMP/root.pem" -noout -verify

run_ok "audit verify at the end" "$TESSERA" audit verify --dir "$D"
run_ok "audit list" "$TESSERA" audit list --dir "$D"
for action in ceremony.offline-root ceremony.restore tenant.create; do
    assert_match "$OUT" $'\t'"$action"$'\t' "audit has $action"
done

# --- a token.object left empty ---------------------------------------------------------------------
# SoftHSM2 truncates and rewrites token.object on every login: a kill between the two leaves it
# empty and the token unlisted. The instance keeps a copy and puts it back.
token_object=$(find "$D/tokens" -name token.object | head -1)
[ -n "$token_object" ] || fail "no token.object under $D/tokens"
cmp -s "$token_object" "$D/tokens.keep/$(basename "$(dirname "$token_object")").object" ||
    fail "tokens.keep holds no copy of $token_object"
pass "tokens.keep holds a copy of token.object"
: >"$token_object"
run_ok "issuing CRL with token.object emptied" "$TESSERA" crl --dir "$D" --out "$TS_TEST_TMP/after.crl"
assert_match "$ERR" "restored .*token.object" "it says it restored token.object"
[ -s "$token_object" ] || fail "token.object is still empty"
pass "token.object is whole again"
: >"$token_object"
rm "$D/tokens.keep/"*.object
expect_fail "emptied with no copy" "$TESSERA" crl --dir "$D" --out "$TS_TEST_TMP/after.crl"
assert_match "$ERR" "token.object is empty .*no copy" "the error names the empty file"
finish
