#!/usr/bin/env bash
# Remote mode: the instance commands through a running `tessera serve` with --server/--token
# (and $TESSERA_SERVER/$TESSERA_TOKEN), each result compared with the same command on the
# instance directory. Refusals: a bad token (exit 1, the server's message), another tenant's
# token (not found), a role without the right (forbidden), and bad remote options (exit 2).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/serve.sh"

[ -x "$TESSERA" ] || fail "no tessera at $TESSERA (set TS_BUILD_DIR)"
unset TESSERA_OPERATOR TESSERA_SERVER TESSERA_TOKEN TESSERA_CACERT TESSERA_DIR
D=$TS_TEST_TMP/ca
W=$TS_TEST_TMP

newcsr() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/$1.key" \
        -subj "/CN=$2" -out "$W/$1.csr" 2>/dev/null
}

serial_of() {
    openssl x509 -in "$1" -noout -serial | cut -d= -f2
}

# json_norm: the JSON document on stdin, keys sorted, for comparing content.
json_norm() {
    python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin), sort_keys=True))'
}

# same DESCRIPTION ARGS...: `tessera ARGS` on --dir and through --server must print the same.
same() {
    local desc=$1 local_out
    shift
    run_ok "$desc (local)" "$TESSERA" "$@" --dir "$D"
    local_out=$OUT
    run_ok "$desc (remote)" "$TESSERA" "$@" "${R[@]}"
    assert_eq "$OUT" "$local_out" "$desc: remote output equals local"
}

serve_init "$D"
serve_start "$D"
pass "service listening at $SERVE_URL"
R=(--server "$SERVE_URL" --token "$ADMIN_TOKEN" --cacert "$D/root.pem")

# --- reading --------------------------------------------------------------------------------------

same "tenant list" tenant list
same "profile list" profile list
run_ok "profile show (local)" "$TESSERA" profile show device --dir "$D"
want=$(json_norm <<<"$OUT")
run_ok "profile show (remote)" "$TESSERA" profile show device "${R[@]}"
assert_eq "$(json_norm <<<"$OUT")" "$want" "profile show: the same definition"
same "ca show --root" ca show --root
same "ca show --issuing" ca show --issuing
"$TESSERA" ca show --issuing --dir "$D" >"$W/issuing.pem"

# --- certificates ---------------------------------------------------------------------------------

newcsr r1 dev-r1
run_ok "cert issue (remote)" "$TESSERA" cert issue --csr "$W/r1.csr" --profile device \
    --out "$W/r1.pem" "${R[@]}"
openssl verify -CAfile "$D/root.pem" -untrusted "$W/issuing.pem" "$W/r1.pem" >/dev/null 2>&1 ||
    fail "the remotely issued certificate does not chain"
pass "cert issue (remote): chains to the root"
s1=$(serial_of "$W/r1.pem")
openssl req -in "$W/r1.csr" -outform DER -out "$W/r1b.der" 2>/dev/null
run_ok "cert issue (remote, DER CSR)" "$TESSERA" cert issue --csr "$W/r1b.der" --profile device \
    "${R[@]}"
assert_match "$OUT" '^-----BEGIN CERTIFICATE-----$' "cert issue (DER CSR): PEM to stdout"
expect_status 1 "cert issue (remote) under an unknown profile" "$TESSERA" cert issue \
    --csr "$W/r1.csr" --profile nosuch "${R[@]}"
assert_match "$ERR" "^tessera: .*nosuch" "unknown profile: the server's message"
same "cert show" cert show "$s1"
same "cert list" cert list
same "cert list --device" cert list --device dev-r1

run_ok "cert renew (remote)" "$TESSERA" cert renew "$s1" --out "$W/r1-renewed.pem" "${R[@]}"
[ "$(serial_of "$W/r1-renewed.pem")" != "$s1" ] || fail "renew kept the serial"
[ "$(openssl x509 -in "$W/r1-renewed.pem" -noout -pubkey)" = \
    "$(openssl x509 -in "$W/r1.pem" -noout -pubkey)" ] || fail "renew changed the key"
pass "cert renew (remote): new serial, same key"
newcsr r1new dev-r1
run_ok "cert rekey (remote)" "$TESSERA" cert rekey "$s1" --csr "$W/r1new.csr" \
    --out "$W/r1-rekeyed.pem" "${R[@]}"
run_ok "cert show after rekey" "$TESSERA" cert show "$s1" "${R[@]}"
assert_match "$OUT" '^revoked: .*\(superseded\)$' "cert rekey (remote): the old one superseded"
s2=$(serial_of "$W/r1-renewed.pem")
run_ok "cert revoke (remote)" "$TESSERA" cert revoke "$s2" --reason keyCompromise "${R[@]}"
assert_eq "$OUT" "revoked $s2 (keyCompromise)" "cert revoke (remote): said so as locally"
expect_status 1 "cert revoke (remote) twice" "$TESSERA" cert revoke "$s2" \
    --reason keyCompromise "${R[@]}"
expect_status 1 "cert show (remote) of an unknown serial" "$TESSERA" cert show 0BADC0DE "${R[@]}"
assert_match "$ERR" "^tessera: .*0BADC0DE" "unknown serial: the server's message"
same "cert show of a revoked certificate" cert show "$s2"
same "cert list --status revoked" cert list --status revoked
same "cert list --status valid" cert list --status valid

# --- the CRL --------------------------------------------------------------------------------------

run_ok "crl (remote)" "$TESSERA" crl --out "$W/remote.crl" "${R[@]}"
openssl crl -inform DER -in "$W/remote.crl" -CAfile "$W/issuing.pem" -noout 2>&1 |
    grep -q 'verify OK' || fail "the remote CRL does not verify"
pass "crl (remote): verifies against the issuing CA"
crl_text=$(openssl crl -inform DER -in "$W/remote.crl" -noout -text)
assert_match "$crl_text" "Serial Number: $s2" "crl (remote): lists the revoked certificate"
run_ok "crl --pem without a token" "$TESSERA" crl --tenant default --pem --server "$SERVE_URL" \
    --cacert "$D/root.pem"
assert_match "$OUT" '^-----BEGIN X509 CRL-----$' "crl --pem (remote, no token): PEM"
expect_status 2 "crl --root (remote)" "$TESSERA" crl --root "${R[@]}"

# --- devices --------------------------------------------------------------------------------------

run_ok "device register (remote)" "$TESSERA" device register dev-r2 "${R[@]}"
assert_eq "$OUT" "device dev-r2 registered in tenant default" "device register (remote): said so"
expect_status 1 "device register (remote) twice" "$TESSERA" device register dev-r2 "${R[@]}"
expect_status 2 "device register (remote) of a bad UID" "$TESSERA" device register 'a b' "${R[@]}"
same "device list" device list
run_ok "device disable (remote)" "$TESSERA" device disable dev-r2 "${R[@]}"
same "device list --status disabled" device list --status disabled
same "device show" device show dev-r1
same "device show (disabled)" device show dev-r2
run_ok "device enable (remote)" "$TESSERA" device enable dev-r2 "${R[@]}"
same "device list after enable" device list
expect_status 1 "device show (remote) of an unknown device" "$TESSERA" device show nobody \
    "${R[@]}"

# --- claim codes ----------------------------------------------------------------------------------

run_ok "claim create (remote)" "$TESSERA" claim create --uses 2 --expires 1h "${R[@]}"
code=$(tail -n1 <<<"$OUT")
assert_match "$code" '^TSC(-[0-9A-Z]{4}){7}$' "claim create (remote): the code on the last line"
assert_match "$OUT" '^uses: +2$' "claim create (remote): uses"
assert_match "$OUT" '^tenant: +default$' "claim create (remote): tenant"
cid=$(sed -n 's/^claim: *//p' <<<"$OUT")
expect_status 2 "claim create (remote) --expires 0s" "$TESSERA" claim create --expires 0s \
    "${R[@]}"
same "claim list" claim list
run_ok "claim revoke (remote)" "$TESSERA" claim revoke "$cid" "${R[@]}"
same "claim list after revoke" claim list
assert_match "$OUT" "^$cid	.*	revoked$" "claim revoke (remote): revoked"

# --- tenants, users and tokens --------------------------------------------------------------------

run_ok "tenant create (remote)" "$TESSERA" tenant create acme --org Acme --country DE "${R[@]}"
same "tenant list after create" tenant list
same "ca show --issuing of acme" ca show --issuing --tenant acme
run_ok "user create (remote)" "$TESSERA" user create op --role operator --tenant acme "${R[@]}"
assert_eq "$OUT" "user op (operator) created in tenant acme" "user create (remote): said so"
run_ok "user create (remote) auditor" "$TESSERA" user create aud --role auditor --tenant acme \
    "${R[@]}"
expect_status 2 "user create (remote) --instance" "$TESSERA" user create x --role admin \
    --instance "${R[@]}"
same "user list --tenant acme" user list --tenant acme
run_ok "token create (remote)" "$TESSERA" token create --user op --tenant acme --name it \
    "${R[@]}"
TA=$(tail -n1 <<<"$OUT")
assert_match "$TA" '^tsk_[0-9a-f]{64}$' "token create (remote): the token on the last line"
run_ok "token create (remote) for the auditor" "$TESSERA" token create --user aud --tenant acme \
    "${R[@]}"
TU=$(tail -n1 <<<"$OUT")
same "token list --tenant acme" token list --tenant acme

# The operator of acme works in acme without naming it...
RA=(--server "$SERVE_URL" --token "$TA" --cacert "$D/root.pem")
newcsr a1 acme-1
run_ok "acme operator: cert issue in its tenant" "$TESSERA" cert issue --csr "$W/a1.csr" \
    --profile device --out "$W/a1.pem" "${RA[@]}"
run_ok "acme operator: cert list" "$TESSERA" cert list "${RA[@]}"
assert_eq "$OUT" "$("$TESSERA" cert list --tenant acme --dir "$D")" \
    "acme operator: cert list is acme's"
assert_match "$OUT" "^$(serial_of "$W/a1.pem")	valid	" "acme operator: its certificate listed"
# ...and finds nothing of another tenant.
expect_status 1 "acme operator: cert list of default" "$TESSERA" cert list --tenant default \
    "${RA[@]}"
assert_match "$ERR" "^tessera: .*(not found|no tenant).*default" "another tenant: not found"
expect_status 1 "acme operator: cert show of default's certificate" "$TESSERA" cert show "$s1" \
    --tenant default "${RA[@]}"
assert_match "$ERR" "^tessera: .*default" "another tenant's certificate: not found"
expect_status 1 "acme operator: device list of default" "$TESSERA" device list --tenant default \
    "${RA[@]}"
assert_match "$ERR" "^tessera: .*default" "another tenant's devices: not found"
# Roles: an operator makes no tenants and reads no instance audit log; an auditor revokes nothing.
expect_status 1 "acme operator: tenant create" "$TESSERA" tenant create evil "${RA[@]}"
assert_match "$ERR" "^tessera: .*operator.*may not" "acme operator: tenant create forbidden"
expect_status 1 "acme operator: audit list" "$TESSERA" audit list "${RA[@]}"
assert_match "$ERR" "^tessera: .*may not" "acme operator: audit list forbidden"
expect_status 1 "acme operator: user list" "$TESSERA" user list "${RA[@]}"
assert_match "$ERR" "^tessera: .*may not" "acme operator: user list forbidden"
RU=(--server "$SERVE_URL" --token "$TU" --cacert "$D/root.pem")
expect_status 1 "acme auditor: cert revoke" "$TESSERA" cert revoke "$(serial_of "$W/a1.pem")" \
    --reason superseded "${RU[@]}"
assert_match "$ERR" "^tessera: .*auditor.*may not" "acme auditor: cert revoke forbidden"
run_ok "acme auditor: cert list" "$TESSERA" cert list "${RU[@]}"
run_ok "tenant list with acme's token" "$TESSERA" tenant list "${RA[@]}"
assert_match "$OUT" '^acme	Acme	DE	' "tenant list: acme's own"
assert_no_match "$OUT" '^default	' "tenant list: not default"

# Revoking the token ends it at once.
tid=$("$TESSERA" token list --tenant acme --user op --dir "$D" | cut -f1)
run_ok "token revoke (remote)" "$TESSERA" token revoke "$tid" --tenant acme "${R[@]}"
expect_status 1 "a revoked token is refused" "$TESSERA" cert list "${RA[@]}"
assert_match "$ERR" "^tessera: .*token" "revoked token: the server's message"

# --- the audit log --------------------------------------------------------------------------------

same "audit list" audit list
same "audit list --after --limit" audit list --after 3 --limit 5
same "audit verify" audit verify

# --- bad tokens and options -----------------------------------------------------------------------

bad=tsk_$(printf '0%.0s' $(seq 1 64))
expect_status 1 "an unknown token" "$TESSERA" cert list --server "$SERVE_URL" --token "$bad" \
    --cacert "$D/root.pem"
assert_match "$ERR" "^tessera: .*token" "unknown token: the server's message"
assert_no_string "$ERR" "$bad" "unknown token: not repeated"
expect_status 2 "a malformed token" "$TESSERA" cert list --server "$SERVE_URL" \
    --token 'not a token' --cacert "$D/root.pem"
assert_match "$ERR" "--token" "malformed token: named"
expect_status 2 "no token" "$TESSERA" cert list --server "$SERVE_URL" --cacert "$D/root.pem"
assert_match "$ERR" "--token or \\\$TESSERA_TOKEN" "no token: said how to give one"
expect_status 2 "an http:// server" "$TESSERA" cert list --server "${SERVE_URL/https/http}" \
    --token "$ADMIN_TOKEN"
assert_match "$ERR" "https" "http server: refused"
expect_status 2 "--server with --dir" "$TESSERA" cert list "${R[@]}" --dir "$D"
expect_status 2 "--server with a query" "$TESSERA" cert list --server "$SERVE_URL/?a=b" \
    --token "$ADMIN_TOKEN"
expect_status 1 "a server not trusted" "$TESSERA" cert list --server "$SERVE_URL" \
    --token "$ADMIN_TOKEN"
assert_match "$ERR" "certificate" "untrusted server: the TLS failure named"
expect_status 1 "a server that is not there" "$TESSERA" cert list --server https://127.0.0.1:1 \
    --token "$ADMIN_TOKEN" --cacert "$D/root.pem"

# --- the environment ------------------------------------------------------------------------------

run_ok "tenant list (local)" "$TESSERA" tenant list --dir "$D"
want=$OUT
run_capture env TESSERA_SERVER="$SERVE_URL" TESSERA_TOKEN="$ADMIN_TOKEN" \
    TESSERA_CACERT="$D/root.pem" "$TESSERA" tenant list
[ "$RC" -eq 0 ] || fail "tenant list from \$TESSERA_SERVER: exit $RC"
assert_eq "$OUT" "$want" "\$TESSERA_SERVER and \$TESSERA_TOKEN: remote mode"
run_capture env TESSERA_SERVER=https://127.0.0.1:1 TESSERA_TOKEN="$ADMIN_TOKEN" \
    "$TESSERA" tenant list --dir "$D"
[ "$RC" -eq 0 ] || fail "--dir with \$TESSERA_SERVER set: exit $RC"
assert_eq "$OUT" "$want" "--dir wins over \$TESSERA_SERVER"

serve_stop
assert_eq "$SERVE_STATUS" 0 "tessera serve stopped cleanly"
run_ok "audit verify after the session" "$TESSERA" audit verify --dir "$D"
finish
