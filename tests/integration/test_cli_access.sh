#!/usr/bin/env bash
# The access commands on an instance directory: claim codes (create/list/revoke), the device
# registry (register/disable/enable/list/show), users and API tokens (create/list/revoke). The
# secrets are printed once, alone on the last line, and stored only hashed; bad durations,
# roles and UIDs are usage errors (exit 2) that name the option.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/serve.sh"

[ -x "$TESSERA" ] || fail "no tessera at $TESSERA (set TS_BUILD_DIR)"
unset TESSERA_OPERATOR TESSERA_SERVER TESSERA_TOKEN TESSERA_CACERT
D=$TS_TEST_TMP/ca
export TESSERA_DIR=$D
W=$TS_TEST_TMP

# newcsr NAME CN: a fresh P-256 key and CSR in $W/NAME.{key,csr}.
newcsr() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/$1.key" \
        -subj "/CN=$2" -out "$W/$1.csr" 2>/dev/null
}

# epoch TIME: seconds since 1970 of an RFC 3339 UTC time.
epoch() {
    date -u -d "$1" +%s
}

# db_has TEXT: whether TEXT occurs anywhere in the instance's SQLite files.
db_has() {
    cat "$D"/tessera.db* 2>/dev/null | grep -aFq -- "$1"
}

serve_init "$D"
pass "instance created"

# --- help and usage -------------------------------------------------------------------------------

for cmd in "claim create" "claim list" "claim revoke" "device list" "device show" \
    "device register" "device disable" "device enable" "user create" "user list" \
    "user disable" "user enable" "token create" "token list" "token revoke"; do
    # shellcheck disable=SC2086 # the command words split on purpose
    run_ok "$cmd --help" "$TESSERA" $cmd --help
    assert_match "$OUT" "^usage: tessera $cmd " "$cmd --help: usage line"
    assert_match "$OUT" '--server URL' "$cmd --help: names --server"
done
expect_status 2 "claim revoke without an id" "$TESSERA" claim revoke
expect_status 2 "claim revoke with a bad id" "$TESSERA" claim revoke 12x
assert_match "$ERR" "^tessera: claim revoke: --id: " "bad id: named"
expect_status 2 "device show without a UID" "$TESSERA" device show
expect_status 2 "--token without a server" "$TESSERA" claim list --token tsk_abc
assert_match "$ERR" "go with --server" "--token without a server: said so"

# --- claim codes ----------------------------------------------------------------------------------

before=$(date -u +%s)
run_ok "claim create" "$TESSERA" claim create --uses 3 --expires 12h --profile device
after=$(date -u +%s)
code=$(tail -n1 <<<"$OUT")
assert_match "$code" '^TSC(-[0-9A-Z]{4}){7}$' "claim create: the code alone on the last line"
assert_match "$OUT" '^claim: +[0-9]+$' "claim create: id"
assert_match "$OUT" '^tenant: +default$' "claim create: tenant"
assert_match "$OUT" '^profile: +device$' "claim create: profile"
assert_match "$OUT" '^uses: +3$' "claim create: uses"
claim_id=$(sed -n 's/^claim: *//p' <<<"$OUT")
expires=$(sed -n 's/^expires: *//p' <<<"$OUT")
assert_match "$expires" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' \
    "claim create: expiry in RFC 3339"
e=$(epoch "$expires")
[ "$e" -ge $((before + 43200)) ] && [ "$e" -le $((after + 43200)) ] ||
    fail "claim create --expires 12h: expires $expires is not 12 h from now"
pass "claim create: expires 12 h from now"
[ "$(grep -c -- "$code" <<<"$OUT")" -eq 1 ] || fail "the code is printed more than once"
pass "claim create: the code is printed once"
letters=$(tr -d -- '-' <<<"${code:3}")
if db_has "${code:8}" || db_has "${letters:4}"; then
    fail "the claim code is stored in clear"
fi
pass "the claim code is not stored in clear"

run_ok "claim create with defaults" "$TESSERA" claim create
code1=$(tail -n1 <<<"$OUT")
id1=$(sed -n 's/^claim: *//p' <<<"$OUT")
assert_match "$OUT" '^uses: +1$' "claim create: single use by default"
e=$(epoch "$(sed -n 's/^expires: *//p' <<<"$OUT")")
[ "$e" -ge $((before + 7 * 86400)) ] || fail "claim create: default lifetime under 7 days"
pass "claim create: default lifetime 7 days"
[ "$code1" != "$code" ] || fail "two claim codes are the same"
pass "each claim code is new"

run_ok "claim list" "$TESSERA" claim list
assert_match "$OUT" "^$claim_id	${code:0:8}	device	3/3	$expires	active$" \
    "claim list: id, prefix, profile, uses, expires, state"
assert_no_string "$OUT" "${code:8}" "claim list: never the code"
[ "$(wc -l <<<"$OUT")" -eq 2 ] || fail "claim list: want 2 lines"
pass "claim list: both codes"

for bad in 0s 0d 10 5w -1d 1.5h 367d 99999999999999999999d 12H " 1d" "1 d"; do
    expect_status 2 "claim create --expires '$bad'" "$TESSERA" claim create --expires "$bad"
    assert_match "$ERR" "^tessera: claim create: --expires: " "--expires '$bad': named"
done
for bad in 0 -1 1000001 x; do
    expect_status 2 "claim create --uses $bad" "$TESSERA" claim create --uses "$bad"
    assert_match "$ERR" "^tessera: claim create: --uses: " "--uses $bad: named"
done
expect_status 1 "claim create with an unknown profile" "$TESSERA" claim create --profile nosuch
assert_match "$ERR" "nosuch" "unknown profile: named"
expect_status 1 "claim create in an unknown tenant" "$TESSERA" claim create --tenant nosuch
run_ok "claim list still 2" "$TESSERA" claim list
[ "$(wc -l <<<"$OUT")" -eq 2 ] || fail "a refused claim create stored a code"
pass "refused claim creates stored nothing"

run_ok "claim revoke" "$TESSERA" claim revoke "$id1"
assert_match "$OUT" "^claim code $id1 revoked$" "claim revoke: said so"
run_ok "claim list after revoke" "$TESSERA" claim list
assert_match "$OUT" "^$id1	${code1:0:8}	device	1/1	.*	revoked$" "claim list: revoked"
assert_match "$OUT" "^$claim_id	.*	active$" "claim list: the other stays active"
expect_status 1 "claim revoke of an unknown id" "$TESSERA" claim revoke 999999
assert_match "$ERR" "999999" "unknown claim id: named"

# Another tenant's codes are its own.
run_ok "tenant acme" "$TESSERA" tenant create acme
run_ok "claim create --tenant acme" "$TESSERA" claim create --tenant acme --expires 30m
assert_match "$OUT" '^tenant: +acme$' "claim create --tenant acme: tenant"
acme_claim=$(sed -n 's/^claim: *//p' <<<"$OUT")
run_ok "claim list --tenant acme" "$TESSERA" claim list --tenant acme
[ "$(wc -l <<<"$OUT")" -eq 1 ] || fail "claim list --tenant acme: want 1 line"
pass "claim list --tenant acme: its own code only"
expect_status 1 "claim revoke of acme's code in default" "$TESSERA" claim revoke "$acme_claim"

# --- devices --------------------------------------------------------------------------------------

run_ok "device register" "$TESSERA" device register dev-0001
assert_match "$OUT" '^device dev-0001 registered in tenant default$' "device register: said so"
expect_status 1 "device register twice" "$TESSERA" device register dev-0001
for bad in "bad uid" "dev/1" "$(printf 'x%.0s' $(seq 1 65))" "dev*"; do
    expect_status 2 "device register '$bad'" "$TESSERA" device register "$bad"
    assert_match "$ERR" "^tessera: device register: --uid: " "bad UID: named"
done

newcsr dev2 dev-0002
run_ok "issue for dev-0002" "$TESSERA" cert issue --csr "$W/dev2.csr" --profile device \
    --out "$W/dev2.pem"
serial2=$(openssl x509 -in "$W/dev2.pem" -noout -serial | cut -d= -f2)

run_ok "device list" "$TESSERA" device list
assert_match "$OUT" '^dev-0001	enabled	[0-9TZ:-]+	[0-9TZ:-]+$' "device list: dev-0001"
assert_match "$OUT" '^dev-0002	enabled	' "device list: issuing registered dev-0002"
[ "$(wc -l <<<"$OUT")" -eq 2 ] || fail "device list: want 2 lines"
pass "device list: two devices"
run_ok "device list --tenant acme" "$TESSERA" device list --tenant acme
assert_eq "$OUT" "" "device list --tenant acme: empty"

run_ok "device show dev-0002" "$TESSERA" device show dev-0002
assert_match "$OUT" '^uid: +dev-0002$' "device show: uid"
assert_match "$OUT" '^tenant: +default$' "device show: tenant"
assert_match "$OUT" '^status: +enabled$' "device show: status"
assert_match "$OUT" '^certificates: +1$' "device show: one certificate"
certline=$("$TESSERA" cert list --device dev-0002)
assert_eq "$(tail -n1 <<<"$OUT")" "$certline" "device show: the certificate as cert list shows it"
assert_match "$certline" "^$serial2	valid	" "device show: the certificate's serial"
expect_status 1 "device show of an unknown device" "$TESSERA" device show dev-9999
assert_match "$ERR" "dev-9999" "unknown device: named"
expect_status 1 "device show of default's device in acme" "$TESSERA" device show dev-0002 \
    --tenant acme

run_ok "device disable" "$TESSERA" device disable dev-0002
assert_match "$OUT" '^device dev-0002 disabled in tenant default$' "device disable: said so"
expect_status 1 "device disable twice" "$TESSERA" device disable dev-0002
run_ok "device list --status disabled" "$TESSERA" device list --status disabled
assert_match "$OUT" '^dev-0002	disabled	' "device list --status disabled: dev-0002"
[ "$(wc -l <<<"$OUT")" -eq 1 ] || fail "device list --status disabled: want 1 line"
pass "device list --status disabled: only dev-0002"
run_ok "device list --status enabled" "$TESSERA" device list --status enabled
assert_no_match "$OUT" 'dev-0002' "device list --status enabled: not dev-0002"
expect_status 2 "device list --status bogus" "$TESSERA" device list --status bogus
assert_match "$ERR" "^tessera: device list: --status: " "bad status: named"
newcsr dev2b dev-0002
expect_status 1 "no certificate for a disabled device" "$TESSERA" cert issue \
    --csr "$W/dev2b.csr" --profile device
assert_match "$ERR" "disabled" "disabled device: said so"
run_ok "device enable" "$TESSERA" device enable dev-0002
assert_match "$OUT" '^device dev-0002 enabled in tenant default$' "device enable: said so"
expect_status 1 "device enable twice" "$TESSERA" device enable dev-0002
run_ok "issue again once enabled" "$TESSERA" cert issue --csr "$W/dev2b.csr" --profile device \
    --out "$W/dev2b.pem"
run_ok "device show: two certificates" "$TESSERA" device show dev-0002
assert_match "$OUT" '^certificates: +2$' "device show: both certificates"

# --- users ----------------------------------------------------------------------------------------

run_ok "user create operator" "$TESSERA" user create alice --role operator
assert_match "$OUT" '^user alice \(operator\) created in tenant default$' "user create: said so"
expect_status 1 "user create twice" "$TESSERA" user create alice --role auditor
run_ok "user create device user" "$TESSERA" user create dev1 --role device --device dev-0001
run_ok "user create in acme" "$TESSERA" user create bob --role admin --tenant acme
run_ok "user create instance auditor" "$TESSERA" user create watcher --role auditor --instance
assert_match "$OUT" '^user watcher \(auditor\) created instance-wide$' "instance user: said so"
for bad in wizard "" root operators; do
    expect_status 2 "user create --role '$bad'" "$TESSERA" user create carl --role "$bad"
done
expect_status 2 "user create --role wizard" "$TESSERA" user create carl --role wizard
assert_match "$ERR" "^tessera: user create: --role: .*wizard" "bad role: named"
expect_status 2 "device user without --device" "$TESSERA" user create carl --role device
assert_match "$ERR" "--device" "device user without a device: said so"
expect_status 2 "--device with another role" "$TESSERA" user create carl --role operator \
    --device dev-0001
expect_status 2 "instance-wide operator" "$TESSERA" user create carl --role operator --instance
assert_match "$ERR" "admin or an auditor" "instance-wide operator: said why"
expect_status 2 "--tenant with --instance" "$TESSERA" user create carl --role admin \
    --instance --tenant acme
expect_status 1 "device user of an unknown device" "$TESSERA" user create carl --role device \
    --device dev-4242
run_ok "user list" "$TESSERA" user list
assert_match "$OUT" '^alice	operator	default	-	enabled	' "user list: alice"
assert_match "$OUT" '^dev1	device	default	dev-0001	enabled	' "user list: the device user"
assert_no_match "$OUT" '^(bob|carl|watcher)	' "user list: default's users only"
run_ok "user list --instance" "$TESSERA" user list --instance
assert_match "$OUT" '^admin	admin	\*	-	enabled	' "user list --instance: the first admin"
assert_match "$OUT" '^watcher	auditor	\*	' "user list --instance: the auditor"
run_ok "user list --tenant acme" "$TESSERA" user list --tenant acme
assert_match "$OUT" '^bob	admin	acme	' "user list --tenant acme: bob"

run_ok "user disable" "$TESSERA" user disable alice
assert_match "$OUT" '^user alice disabled$' "user disable: said so"
run_ok "user list after disable" "$TESSERA" user list
assert_match "$OUT" '^alice	operator	default	-	disabled	' "user list: alice disabled"
run_ok "user enable" "$TESSERA" user enable alice
run_ok "user list after enable" "$TESSERA" user list
assert_match "$OUT" '^alice	operator	default	-	enabled	' "user list: alice enabled again"
expect_status 1 "user disable of an unknown user" "$TESSERA" user disable nobody

# --- tokens ---------------------------------------------------------------------------------------

before=$(date -u +%s)
run_ok "token create" "$TESSERA" token create --user alice --name ci --expires 30d
token=$(tail -n1 <<<"$OUT")
assert_match "$token" '^tsk_[0-9a-f]{64}$' "token create: the token alone on the last line"
assert_match "$OUT" '^token: +[0-9]+$' "token create: id"
assert_match "$OUT" '^user: +alice$' "token create: user"
assert_match "$OUT" '^tenant: +default$' "token create: tenant"
assert_match "$OUT" '^name: +ci$' "token create: name"
token_id=$(sed -n 's/^token: *//p' <<<"$OUT")
texp=$(sed -n 's/^expires: *//p' <<<"$OUT")
e=$(epoch "$texp")
[ "$e" -ge $((before + 30 * 86400)) ] && [ "$e" -le $(($(date -u +%s) + 30 * 86400)) ] ||
    fail "token create --expires 30d: expires $texp"
pass "token create: expires in 30 days"
if db_has "${token:12}"; then
    fail "the token is stored in clear"
fi
pass "the token is not stored in clear"
run_ok "token create with defaults" "$TESSERA" token create --user alice
token2=$(tail -n1 <<<"$OUT")
token2_id=$(sed -n 's/^token: *//p' <<<"$OUT")
assert_match "$OUT" '^name: +cli$' "token create: default name"
[ "$token2" != "$token" ] || fail "two tokens are the same"
pass "each token is new"
run_ok "token create for the instance admin" "$TESSERA" token create --user admin --instance
assert_match "$OUT" '^tenant: +\*$' "instance token: no tenant"
assert_match "$(tail -n1 <<<"$OUT")" '^tsk_[0-9a-f]{64}$' "instance token: last line"

for bad in 0d 0s 367d 1y 30 -5m; do
    expect_status 2 "token create --expires '$bad'" "$TESSERA" token create --user alice \
        --expires "$bad"
    assert_match "$ERR" "^tessera: token create: --expires: " "token --expires '$bad': named"
done
expect_status 1 "token create for an unknown user" "$TESSERA" token create --user nobody
expect_status 1 "token create for bob in default" "$TESSERA" token create --user bob

run_ok "token list" "$TESSERA" token list
assert_match "$OUT" "^$token_id	${token:0:12}	alice	ci	$texp	active$" \
    "token list: id, prefix, user, name, expires, state"
assert_no_string "$OUT" "${token:12}" "token list: never the token"
run_ok "token list --user alice" "$TESSERA" token list --user alice
[ "$(wc -l <<<"$OUT")" -eq 2 ] || fail "token list --user alice: want 2 lines"
pass "token list --user alice: both tokens"
run_ok "token list --instance" "$TESSERA" token list --instance
assert_match "$OUT" '	admin	' "token list --instance: the admin's tokens"
run_ok "token revoke" "$TESSERA" token revoke "$token2_id"
assert_match "$OUT" "^token $token2_id revoked$" "token revoke: said so"
run_ok "token list after revoke" "$TESSERA" token list
assert_match "$OUT" "^$token2_id	.*	revoked$" "token list: revoked"
assert_match "$OUT" "^$token_id	.*	active$" "token list: the other stays active"
expect_status 1 "token revoke of an unknown id" "$TESSERA" token revoke 999999
expect_status 1 "token revoke of default's token in acme" "$TESSERA" token revoke "$token_id" \
    --tenant acme
expect_status 2 "token revoke with a bad id" "$TESSERA" token revoke abc

# --- nothing leaked, everything audited ----------------------------------------------------------

run_ok "audit list" "$TESSERA" audit list
assert_no_string "$OUT" "${code:8}" "audit log: never the claim code"
assert_no_string "$OUT" "${token:12}" "audit log: never the token"
assert_match "$OUT" 'claim.revoke' "audit log: the claim revocation"
run_ok "audit verify" "$TESSERA" audit verify
assert_match "$OUT" '^audit log intact' "audit chain intact"

finish
