#!/usr/bin/env bash
# The audit log of an instance: every operation appends its entry, `tessera audit list` shows
# them, `tessera audit verify` passes on the untouched log, and rows edited, deleted or swapped
# with the sqlite3 command-line tool are detected, with the right entry named.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ -x "$TESSERA" ] || fail "no tessera at $TESSERA (set TS_BUILD_DIR)"
command -v sqlite3 >/dev/null || fail "no sqlite3 command (Debian package sqlite3)"
module=$(softhsm_module)
softhsm_setup
export TS_SOFTHSM_MODULE="$module"
export TESSERA_DIR="$TS_TEST_TMP/ca"
export TESSERA_OPERATOR="Audit Tester"
W=$TS_TEST_TMP
db="$TESSERA_DIR/tessera.db"

run_ok "init" "$TESSERA" init --shares 2/3 --operator "Ceremony Officer"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/throwaway.key" \
    -subj /CN=audit-dev -out "$W/dev.csr" 2>/dev/null
run_ok "issue" "$TESSERA" cert issue --csr "$W/dev.csr" --profile device --out "$W/dev.pem"
serial=$(openssl x509 -in "$W/dev.pem" -noout -serial | cut -d= -f2)
run_ok "renew" "$TESSERA" cert renew "$serial" --out "$W/renewed.pem"
run_ok "revoke" "$TESSERA" cert revoke "$serial" --reason cessationOfOperation
run_ok "crl" "$TESSERA" crl --out "$W/c.crl"
run_ok "tenant create" "$TESSERA" tenant create acme
run_ok "verification-cert" "$TESSERA" ca verification-cert --code abc123 --tenant acme --out "$W/ver.pem"

# --- the log as written ------------------------------------------------------------------------------

run_ok "audit list" "$TESSERA" audit list
all=$OUT
count=$(wc -l <<<"$all")
[ "$count" -ge 20 ] || fail "only $count audit entries"
pass "$count audit entries"
assert_eq "$(cut -f1 <<<"$all" | tr '\n' ' ')" "$(seq -s ' ' 1 "$count") " "ids 1..$count in order"
assert_match "$(head -n 1 <<<"$all")" $'^1\t[0-9T:Z-]+\tCeremony Officer\tceremony\\.begin\t' \
    "the transcript comes first, by the ceremony's operator"
for action in cert.issue cert.renew cert.revoke crl.issue tenant.create cert.verification; do
    assert_match "$all" $'\tAudit Tester\t'"$action"$'\t' "$action audited, by the operator"
done
assert_match "$all" $'\tcert\\.revoke\t'"$serial"$'\t.*"reason":"cessationOfOperation"' \
    "the revocation's details"
run_ok "audit list --after 3 --limit 2" "$TESSERA" audit list --after 3 --limit 2
assert_eq "$(cut -f1 <<<"$OUT" | tr '\n' ' ')" "4 5 " "--after and --limit"
expect_status 2 "audit list --limit x" "$TESSERA" audit list --limit x

run_ok "audit verify" "$TESSERA" audit verify
assert_eq "$OUT" "audit log intact: $count entries" "verify: intact"

# --- tampering --------------------------------------------------------------------------------------

sqlite3 "$db" ".backup '$W/pristine.db'"
restore() {
    sqlite3 "$db" ".restore '$W/pristine.db'"
    "$TESSERA" audit verify >/dev/null || fail "the restored log does not verify"
}

# tampered DESCRIPTION ID SQL: after SQL, verify fails and names entry ID; then the log is restored.
tampered() {
    local desc=$1 id=$2 sql=$3
    sqlite3 "$db" "$sql"
    expect_status 1 "$desc: detected" "$TESSERA" audit verify
    assert_match "$ERR" "^tessera: audit log broken at entry $id: " "$desc: entry $id named"
    restore
}

mid=$((count / 2))
tampered "details edited" "$mid" \
    "UPDATE audit_log SET details = replace(details, '\"', '''') WHERE id = $mid"
tampered "actor edited" 5 "UPDATE audit_log SET actor = 'Mallory' WHERE id = 5"
tampered "time edited" 9 "UPDATE audit_log SET logged_at = logged_at + 1 WHERE id = 9"
tampered "first entry edited" 1 "UPDATE audit_log SET object = 'elsewhere' WHERE id = 1"
tampered "row deleted" "$mid" "DELETE FROM audit_log WHERE id = $mid"
tampered "first row deleted" 1 "DELETE FROM audit_log WHERE id = 1"
tampered "last row deleted" "$count" "DELETE FROM audit_log WHERE id = $count"
tampered "two rows swapped" 7 \
    "UPDATE audit_log SET id = -1 WHERE id = 7; UPDATE audit_log SET id = 7 WHERE id = 8;
     UPDATE audit_log SET id = 8 WHERE id = -1;"
assert_match "$ERR" 'out of order' "swap: said to be out of order"
tampered "distant rows swapped" 3 \
    "UPDATE audit_log SET id = -1 WHERE id = 3; UPDATE audit_log SET id = 3 WHERE id = $mid;
     UPDATE audit_log SET id = $mid WHERE id = -1;"
tampered "hash replaced" 4 \
    "UPDATE audit_log SET hash = (SELECT hash FROM audit_log WHERE id = 5) WHERE id = 4"

# The log goes on after a restore, and new entries chain on.
run_ok "issue after the restore" "$TESSERA" cert issue --csr "$W/dev.csr" --profile device
run_ok "audit verify at the end" "$TESSERA" audit verify
assert_eq "$OUT" "audit log intact: $((count + 1)) entries" "the new entry chains on"

# --- the same on PostgreSQL (tessera init --db) ------------------------------------------------------

. "$(dirname "${BASH_SOURCE[0]}")/pg.sh"
pg_rc=0
pg_start || pg_rc=$?
if [ "$pg_rc" -eq 2 ]; then
    finish
    exit 0
fi
[ "$pg_rc" -eq 0 ] || fail "PostgreSQL did not start"
P="$W/pgca"
run_ok "pg: init --db" "$TESSERA" init --dir "$P" --shares 2/3 --db "$PG_URL"
[ ! -e "$P/tessera.db" ] || fail "pg: an SQLite file was made"
run_ok "pg: issue" "$TESSERA" cert issue --dir "$P" --csr "$W/dev.csr" --profile device \
    --out "$W/pg.pem"
run_ok "pg: revoke" "$TESSERA" cert revoke --dir "$P" \
    "$(openssl x509 -in "$W/pg.pem" -noout -serial | cut -d= -f2)" --reason superseded
run_ok "pg: crl" "$TESSERA" crl --dir "$P" --out "$W/pg.crl"
run_ok "pg: audit verify" "$TESSERA" audit verify --dir "$P"
expect_fail "pg: a second instance on the same database" "$TESSERA" init --dir "$W/pgca2" \
    --shares 2/3 --db "$PG_URL"
assert_match "$ERR" 'already holds an instance' "pg: the database is taken"
[ ! -e "$W/pgca2" ] || fail "pg: the refused init left its directory"
"$PG_BIN/psql" -q "$PG_URL" -c "UPDATE audit_log SET actor = 'Mallory' WHERE id = 3" >/dev/null
expect_status 1 "pg: an edited row is detected" "$TESSERA" audit verify --dir "$P"
assert_match "$ERR" '^tessera: audit log broken at entry 3: ' "pg: entry 3 named"
finish
