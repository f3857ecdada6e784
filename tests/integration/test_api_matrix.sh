#!/usr/bin/env bash
# The role x route x tenant matrix of the HTTP API: tests/integration/api_matrix.py walks every
# route of /api/v1/openapi.json with every kind of caller in its own and another tenant.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
. "$here/serve.sh"

dir=$TS_TEST_TMP/instance
serve_init "$dir"
# An instance-wide auditor: reads in every tenant and the instance's audit log, changes nothing.
run_ok "an instance-wide auditor" "$TESSERA" user create --dir "$dir" --name iaudit \
    --role auditor --instance
run_ok "its token" "$TESSERA" token create --dir "$dir" --user iaudit --instance --name matrix
AUDITOR_TOKEN=$(tail -n1 <<<"$OUT")
serve_start "$dir" --threads 2
pass "the service runs at $SERVE_URL"

log=$TS_TEST_TMP/matrix.log
status=0
ADMIN_TOKEN=$ADMIN_TOKEN AUDITOR_TOKEN=$AUDITOR_TOKEN python3 "$here/api_matrix.py" --url "$SERVE_URL" --cafile "$dir/root.pem" \
    >"$log" 2>&1 || status=$?
cat "$log"
[ "$status" -eq 0 ] || fail "the matrix has failing cells (exit $status)"
grep -Eq '^[0-9]+ passed, 0 failed$' "$log" || fail "the matrix printed no result"
pass "every cell of the matrix is as expected"

serve_stop
assert_eq "$SERVE_STATUS" 0 "SIGTERM stops the service cleanly"
run_ok "the audit chain verifies after the matrix" "$TESSERA" audit verify --dir "$dir"
finish
