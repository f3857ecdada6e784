#!/usr/bin/env bash
# Two `tessera serve` processes on one PostgreSQL database serve the same tenants at once:
# concurrent EST enrollments against both, in two tenants (bootstrap certificates and a claim
# code), and revocations through the API of both at the same time. Then: no serial twice, every
# certificate a client received is stored, every revocation is in its tenant's feed exactly once
# with increasing seq and on the CRL either service serves, one audit entry per revocation, and
# `tessera audit verify` passes (the chain stays valid with concurrent writers).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/serve.sh"
. "$(dirname "${BASH_SOURCE[0]}")/pg.sh"

LOAD="${TS_BUILD_DIR:-build}/bin/est_load"
[ -x "$LOAD" ] || fail "$LOAD is not built"
N=${TS_PG_ENROLLS:-150} # per client; four clients
REVOKE=10               # per tenant, half through each service

pg_rc=0
pg_start || pg_rc=$?
if [ "$pg_rc" -eq 2 ]; then
    finish
    exit 0
fi
[ "$pg_rc" -eq 0 ] || fail "PostgreSQL did not start"

W=$TS_TEST_TMP
D=$W/inst
serve_init "$D" --db "$PG_URL"
serve_ca "$D"
run_ok "a second tenant" "$TESSERA" tenant create --dir "$D" --name acme

# A bootstrap certificate per tenant.
for t in default acme; do
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/boot-$t.key" \
        -subj "/CN=bootstrap-$t" -out "$W/boot-$t.csr" 2>/dev/null
    run_ok "bootstrap certificate of $t" "$TESSERA" cert issue --dir "$D" --tenant "$t" \
        --csr "$W/boot-$t.csr" --profile device --out "$W/boot-$t.pem"
done

serve_start "$D" --db "$PG_URL"
A_PID=$SERVE_PID A_URL=$SERVE_URL
on_exit kill -KILL "$A_PID"
serve_start "$D" --db "$PG_URL"
B_PID=$SERVE_PID B_URL=$SERVE_URL
pass "two services on one database: $A_URL and $B_URL"

# load URL TENANT PREFIX N C: enrollments into TENANT through the service at URL, with the
# tenant's bootstrap certificate (mutual TLS).
load() {
    "$LOAD" --url "$1" --cacert "$D/ca-chain.pem" --mode enroll --tenant "$2" -n "$4" -c "$5" \
        --cert "$W/boot-$2.pem" --key "$W/boot-$2.key" --cn "bootstrap-$2" --serials "$W/serials.$3" \
        --timeout 120 >"$W/load.$3.out" 2>&1
}

# load_claim URL TENANT PREFIX N C: zero-touch enrollments of N new devices (CN=PREFIX-i) with
# one claim code of N uses as the HTTP Basic password.
load_claim() {
    local code
    code=$("$TESSERA" claim create --dir "$D" --tenant "$2" --uses "$4" | tail -n1)
    "$LOAD" --url "$1" --cacert "$D/ca-chain.pem" --mode enroll --tenant "$2" -n "$4" -c "$5" \
        --claim "$code" --prefix "$3" --serials "$W/serials.$3" --timeout 120 \
        >"$W/load.$3.out" 2>&1
}

# Certificates to revoke later, one set per tenant and service.
for t in default acme; do
    load "$A_URL" "$t" "victim-a-$t" $((REVOKE / 2)) 5 || fail "victims: $(cat "$W/load.victim-a-$t.out")"
    load "$B_URL" "$t" "victim-b-$t" $((REVOKE / 2)) 5 || fail "victims: $(cat "$W/load.victim-b-$t.out")"
done
pass "certificates to revoke enrolled through both services"

# revoke_all URL TENANT FILE: revokes every serial in FILE through the API of the service at URL.
revoke_all() {
    local serial code
    while read -r serial; do
        code=$(curl -sS --cacert "$D/ca-chain.pem" -o "$W/revoke.$serial.json" -w '%{http_code}' \
            -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' \
            -d '{"reason": "keyCompromise"}' \
            "$1/api/v1/tenants/$2/certificates/$serial/revoke") || code="curl-failed"
        echo "$2 $serial $code"
    done <"$3"
}

# Everything at once: four enrollment clients and four revocation loops over two services.
pids=()
load "$A_URL" default load-a-default "$N" 16 &
pids+=($!)
load "$B_URL" default load-b-default "$N" 16 &
pids+=($!)
load "$A_URL" acme load-a-acme "$N" 16 &
pids+=($!)
load_claim "$B_URL" acme load-b-acme "$N" 16 &
pids+=($!)
for t in default acme; do
    revoke_all "$A_URL" "$t" "$W/serials.victim-b-$t" >"$W/revoked.a-$t" &
    pids+=($!)
    revoke_all "$B_URL" "$t" "$W/serials.victim-a-$t" >"$W/revoked.b-$t" &
    pids+=($!)
done
status=0
for pid in "${pids[@]}"; do
    wait "$pid" || status=1
done
for f in "$W"/load.load-*.out; do
    grep -q "^est_load enroll ok=$N errors=0 " "$f" || fail "$f: $(cat "$f")"
done
[ "$status" -eq 0 ] || fail "a client failed"
pass "4 x $N concurrent enrollments through two services: 0 errors"
cat "$W"/revoked.* >"$W/revoked.all"
assert_eq "$(grep -vc ' 200$' "$W/revoked.all" || true)" 0 "every revocation answered 200"
assert_eq "$(wc -l <"$W/revoked.all")" $((2 * REVOKE)) "$((2 * REVOKE)) revocations made"

# No serial twice, and every received serial is stored.
cat "$W"/serials.* | sort >"$W/received.txt"
assert_eq "$(uniq -d "$W/received.txt" | wc -l)" 0 "no serial was handed out twice"
: >"$W/stored.txt"
for t in default acme; do
    run_ok "cert list --tenant $t" "$TESSERA" cert list --dir "$D" --tenant "$t"
    printf '%s\n' "$OUT" | cut -f1 >>"$W/stored.txt"
done
sort -o "$W/stored.txt" "$W/stored.txt"
assert_eq "$(uniq -d "$W/stored.txt" | wc -l)" 0 "no serial twice in the store"
assert_eq "$(comm -23 "$W/received.txt" "$W/stored.txt" | wc -l)" 0 \
    "every certificate received is in the store"

# Every revocation is in its tenant's feed, once, in increasing seq; both services agree.
for t in default acme; do
    for url in "$A_URL" "$B_URL"; do
        curl -sS --cacert "$D/ca-chain.pem" -H "Authorization: Bearer $ADMIN_TOKEN" \
            "$url/api/v1/tenants/$t/revocations?since=0&limit=1000" >"$W/feed.json"
        run_ok "feed of $t via $url: every revocation once, seq increasing" python3 -c '
import json, sys
items = json.load(open(sys.argv[1]))["items"]
want = sorted(l.split()[1] for l in open(sys.argv[2]) if l.split()[0] == sys.argv[3])
got = [i["serial"] for i in items if i["event"] == "cert.revoked"]
assert sorted(got) == want, (got, want)
seqs = [i["seq"] for i in items]
assert all(a < b for a, b in zip(seqs, seqs[1:])), seqs' "$W/feed.json" "$W/revoked.all" "$t"
    done
done

# The CRL of each tenant, from either service, lists every revocation made through both.
for t in default acme; do
    for url in "$A_URL" "$B_URL"; do
        curl -sS --cacert "$D/ca-chain.pem" -o "$W/$t.crl" "$url/crl/$t.crl"
        run_ok "CRL of $t via $url lists every revocation" python3 -c '
import sys
from cryptography import x509
crl = x509.load_der_x509_crl(open(sys.argv[1], "rb").read())
got = sorted("%X" % r.serial_number for r in crl)
want = sorted(l.split()[1].lstrip("0") for l in open(sys.argv[2]) if l.split()[0] == sys.argv[3])
assert got == want, (got, want)' "$W/$t.crl" "$W/revoked.all" "$t"
    done
done

kill -TERM "$A_PID"
wait "$A_PID" || fail "service A did not stop cleanly"
serve_stop
assert_eq "$SERVE_STATUS" 0 "service B stops cleanly"
run_ok "audit list" "$TESSERA" audit list --dir "$D"
assert_eq "$(printf '%s\n' "$OUT" | cut -f4 | grep -c '^cert\.revoke$')" $((2 * REVOKE)) \
    "one audit entry per revocation"
run_ok "the audit chain verifies after concurrent writers" "$TESSERA" audit verify --dir "$D"
assert_match "$OUT" 'intact' "audit verify says intact"

# Jobs on PostgreSQL: a re-enrollment with a new key is told apart from a plain one.
run_ok "a re-enrollment job" "$TESSERA" job create --dir "$D" --device pg-dev --reenroll
PLAIN_JOB=$OUT
run_ok "a rekey job" "$TESSERA" job create --dir "$D" --device pg-dev --reenroll --rekey
REKEY_JOB=$OUT
run_ok "job list" "$TESSERA" job list --dir "$D" --device pg-dev
assert_match "$OUT" "^$REKEY_JOB[[:space:]]+pg-dev[[:space:]]+reenroll \(rekey\)[[:space:]]" \
    "the rekey job is marked"
assert_match "$OUT" "^$PLAIN_JOB[[:space:]]+pg-dev[[:space:]]+reenroll[[:space:]]+pending" \
    "...the plain one is not"
run_ok "job show" "$TESSERA" job show --dir "$D" --id "$REKEY_JOB"
assert_match "$OUT" 'REENROLL[[:space:]]+rekey[[:space:]]+pending' "its request asks for a new key"
finish
