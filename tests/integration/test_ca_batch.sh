#!/usr/bin/env bash
# tessera batch under kill -9: 20 trials, each killing a batch at a random moment (2% to 70% of the
# time a whole batch takes on this machine, after it starts, and once more during the resume in
# every other trial), then resuming it to the end. After each trial the invariants hold: exactly N
# devices, N distinct serials, the manifest and the store list the same devices, every manifest
# fingerprint is its stored certificate's, every device's key store holds the key its certificate
# certifies, and no unfinished device is left. Then the repairs one by one (torn manifest line,
# missing line, stray device), resuming with other parameters, and a batch on a PKCS#11 token.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ -x "$TESSERA" ] || fail "no tessera at $TESSERA (set TS_BUILD_DIR)"
module=$(softhsm_module)
softhsm_setup
export TS_SOFTHSM_MODULE="$module"
export TESSERA_DIR="$TS_TEST_TMP/ca"
W=$TS_TEST_TMP
N=5
TRIALS=${TS_BATCH_TRIALS:-20}

run_ok "init" "$TESSERA" init --org "Factory Test" --shares 2/3
"$TESSERA" ca show --root >"$W/root.pem"
"$TESSERA" ca show --issuing >"$W/issuing.pem"

# job_of OUT: the batch's job id.
job_of() {
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["job"])' "$1/batch.json"
}

# check_batch OUT N [token]: the invariants of a finished batch (token: keys on the template).
check_batch() {
    local out=$1 n=$2 job uri label serial sha uid store_rows man want_dirs got_dirs
    job=$(job_of "$out")
    python3 - "$out/manifest.jsonl" "$n" <<'EOF' || fail "$out: manifest malformed"
import json, sys
lines = open(sys.argv[1]).read().split("\n")
assert lines[-1] == "", "the manifest does not end with a newline"
rows = [json.loads(l) for l in lines[:-1]]
assert len(rows) == int(sys.argv[2]), f"{len(rows)} lines"
for r in rows:
    assert sorted(r) == ["keystore", "serial", "sha256", "uid"], r
assert len({r["uid"] for r in rows}) == len(rows), "a UID twice"
assert len({r["serial"] for r in rows}) == len(rows), "a serial twice"
EOF
    # The store's certificates of the job, as "serial uid", against the manifest's.
    store_rows=$("$TESSERA" cert list | awk -F'\t' -v p="$job-" 'index($5, p) == 1 { print $1, $5 }' | sort)
    man=$(python3 -c 'import json,sys
for l in open(sys.argv[1]): r = json.loads(l); print(r["serial"], r["uid"])' "$out/manifest.jsonl" | sort)
    [ "$(wc -l <<<"$store_rows")" -eq "$n" ] || fail "$out: the store has $(wc -l <<<"$store_rows") certificates of job $job, want $n"
    [ "$store_rows" = "$man" ] || fail "$out: manifest and store differ"
    # A device directory per device (none on a token): nothing unfinished is left.
    want_dirs=$n
    [ -z "${3:-}" ] || want_dirs=0
    got_dirs=$(find "$out/devices" -mindepth 1 -maxdepth 1 | wc -l)
    [ "$got_dirs" -eq "$want_dirs" ] || fail "$out: devices/ holds $got_dirs entries, want $want_dirs"
    while IFS=$'\t' read -r uid serial sha uri; do
        "$TESSERA" cert show "$serial" >"$W/show.txt" || fail "$out: no certificate $serial"
        openssl x509 -in "$W/show.txt" -outform DER -out "$W/show.der"
        [ "$(sha256sum <"$W/show.der" | cut -d' ' -f1)" = "$sha" ] ||
            fail "$out: the manifest's fingerprint of $uid is not its certificate's"
        openssl x509 -inform DER -in "$W/show.der" -noout -subject | grep -q "CN = $uid$" ||
            fail "$out: certificate $serial is not for $uid"
        openssl verify -CAfile "$W/root.pem" -untrusted "$W/issuing.pem" "$W/show.txt" >/dev/null ||
            fail "$out: certificate of $uid does not chain"
        label=device
        [ "${uri#soft:}" != "$uri" ] || label=$uid
        "$TESSERA" keystore pubkey --keystore "$uri" --label "$label" --out "$W/dev.pub" ||
            fail "$out: the key store of $uid does not open ($uri)"
        [ "$(openssl x509 -inform DER -in "$W/show.der" -noout -pubkey)" = "$(cat "$W/dev.pub")" ] ||
            fail "$out: the key store of $uid does not hold the certified key"
    done < <(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l); print(r["uid"], r["serial"], r["sha256"], r["keystore"], sep="\t")' "$out/manifest.jsonl")
    pass "$out: $n devices, manifest == store, fingerprints and keys match"
}

# kill_after SECONDS CMD...: runs CMD in the background and kill -9s it after SECONDS; prints
# "killed" when the kill ended it (exit status 128 + 9), "finished" when it was done before.
kill_after() {
    local delay=$1 pid rc=0
    shift
    "$@" >/dev/null 2>&1 &
    pid=$!
    sleep "$delay"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || rc=$?
    if [ "$rc" -eq 137 ]; then
        echo killed
    else
        echo finished
    fi
}

# A random moment inside a batch's run on this machine: between 2% and 70% of how long a whole
# batch took here, so the kills land while devices are being made on a fast build and a slow
# (sanitizer) build alike.
random_delay() {
    awk -v r="$RANDOM" -v full="$batch_seconds" \
        'BEGIN { printf "%.3f", full * (0.02 + 0.68 * (r % 1000) / 1000) }'
}

# --- kill -9 at random points ---------------------------------------------------------------------

start=$(date +%s.%N)
run_ok "an untouched batch, to learn how long one takes here" \
    "$TESSERA" batch --count "$N" --out "$W/lot-timing" --quiet
batch_seconds=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')
check_batch "$W/lot-timing" "$N"

killed=0
for t in $(seq 1 "$TRIALS"); do
    out="$W/lot-$t"
    d=$(random_delay)
    k=$(kill_after "$d" "$TESSERA" batch --count "$N" --out "$out")
    [ "$k" = killed ] && killed=$((killed + 1))
    if [ $((t % 2)) -eq 0 ]; then
        d2=$(random_delay)
        k=$(kill_after "$d2" "$TESSERA" batch --count "$N" --out "$out")
        [ "$k" = killed ] && killed=$((killed + 1))
    fi
    run_ok "trial $t: resume after kill -9 at ${d}s" "$TESSERA" batch --count "$N" --out "$out" --quiet
    assert_match "$OUT" "$N of $N devices" "trial $t: the batch completes"
    check_batch "$out" "$N"
done
[ "$killed" -ge $((TRIALS / 2)) ] || fail "only $killed kills hit a running batch"
pass "$killed kills hit a running batch"
all=$("$TESSERA" cert list | cut -f1)
assert_eq "$(sort <<<"$all" | uniq -d)" "" "no serial in the store twice"
run_ok "audit verify after the kills" "$TESSERA" audit verify

# --- the repairs, one by one ------------------------------------------------------------------------

out="$W/lot-repair"
run_ok "a batch of 3" "$TESSERA" batch --count 3 --out "$out"
assert_match "$OUT" 'device 3/3 ' "a line per device"
check_batch "$out" 3
run_ok "running it again changes nothing" "$TESSERA" batch --count 3 --out "$out"
assert_match "$OUT" '3 of 3 devices \(0 made now\)' "nothing to do"

# A torn last line (a crash in the middle of the append): rewritten from the store.
cp "$out/manifest.jsonl" "$W/manifest.good"
head -c -20 "$W/manifest.good" >"$out/manifest.jsonl"
run_ok "resume with a torn manifest" "$TESSERA" batch --count 3 --out "$out"
assert_match "$OUT" 'manifest rewritten from the store' "torn line: rewritten"
assert_eq "$(cat "$out/manifest.jsonl")" "$(cat "$W/manifest.good")" "torn line: the manifest is whole"

# The last line missing (a crash after the commit, before the append): appended.
head -n 2 "$W/manifest.good" >"$out/manifest.jsonl"
run_ok "resume with a line missing" "$TESSERA" batch --count 3 --out "$out"
assert_match "$OUT" '1 manifest line\(s\) restored' "missing line: restored"
assert_eq "$(cat "$out/manifest.jsonl")" "$(cat "$W/manifest.good")" "missing line: the manifest is whole"

# A line the store does not back: the store wins.
{ head -n 2 "$W/manifest.good"; echo '{"uid":"forged","serial":"01","sha256":"00","keystore":"soft:/x"}'; } \
    >"$out/manifest.jsonl"
run_ok "resume with a forged line" "$TESSERA" batch --count 3 --out "$out"
assert_eq "$(cat "$out/manifest.jsonl")" "$(cat "$W/manifest.good")" "forged line: replaced"

# An unfinished device (key store made, no certificate): discarded.
job=$(job_of "$out")
mkdir -p "$out/devices/$job-00000000deadbeef/keystore"
run_ok "resume with an unfinished device" "$TESSERA" batch --count 4 --out "$out"
assert_match "$OUT" '1 unfinished device\(s\) discarded' "unfinished device: discarded"
[ ! -e "$out/devices/$job-00000000deadbeef" ] || fail "the unfinished device is still there"
check_batch "$out" 4

expect_status 1 "resume with another profile" "$TESSERA" batch --count 4 --out "$out" --profile server
assert_match "$ERR" "belongs to batch $job" "other profile: refused"
expect_status 1 "a count below what is done" "$TESSERA" batch --count 2 --out "$out"
assert_match "$ERR" 'already has 4 devices' "lower count: refused"
mkdir -p "$W/junk/devices/x"
expect_status 1 "an OUT with devices but no batch" "$TESSERA" batch --count 2 --out "$W/junk"
expect_status 2 "--count 0" "$TESSERA" batch --count 0 --out "$W/zero"
expect_status 1 "an unknown profile" "$TESSERA" batch --count 1 --out "$W/np" --profile nope
expect_status 1 "a template with pin-value" "$TESSERA" batch --count 1 --out "$W/pv" \
    --keystore-template "pkcs11:token=x?module-path=$module&pin-value=1"

# --- keys on a PKCS#11 token, labelled by UID --------------------------------------------------------

# The token lives in the instance's SoftHSM2 (which the instance selects whenever it runs).
export SOFTHSM2_CONF="$TESSERA_DIR/softhsm2.conf"
printf 'factory-pin-3141' >"$W/factory.pin"
tmpl="pkcs11:token=factory?module-path=$module&pin-source=$W/factory.pin"
run_ok "a factory token" "$TESSERA" keystore init --keystore "$tmpl" --so-pin factory-so-2718
out="$W/lot-token"
k=$(kill_after "$(random_delay)" "$TESSERA" batch --count 4 --out "$out" --keystore-template "$tmpl")
run_ok "token batch (resumed: $k)" "$TESSERA" batch --count 4 --out "$out" --keystore-template "$tmpl"
assert_match "$(head -n 1 "$out/manifest.jsonl")" '"keystore":"pkcs11:token=factory;object=[0-9a-f]{12}-[0-9a-f]{16}\?module-path=' \
    "token: the manifest names each device's object"
check_batch "$out" 4 token
job=$(job_of "$out")
assert_eq "$("$TESSERA" keystore list --keystore "$tmpl" | grep -c "^$job-")" 4 \
    "token: exactly the batch's keys, none left over"
finish
