#!/usr/bin/env bash
# The agent's datastore across crashes, and its refusals (docs/datastore.md).
#
# 200 trials: ds_tool commits generation after generation into a datastore bound to a soft:
# key store and is killed with SIGKILL at a random moment. The next trial first opens the
# datastore strictly and checks that it is exactly the last generation reported committed or the
# one after it (with that generation's own content, no temporary file left behind), then goes on
# committing. Then a copy of the datastore under another key store, an edited byte and a
# rolled-back copy must be refused with the right error.
#
# TS_DS_TRIALS overrides the number of trials.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TOOL="${TS_BUILD_DIR:-build}/bin/ds_tool"
TRIALS=${TS_DS_TRIALS:-200}
URI="soft:$TS_TEST_TMP/ks?pin-value=1234"
OTHER="soft:$TS_TEST_TMP/other-ks?pin-value=1234"
STATE="$TS_TEST_TMP/state"
mkdir -p "$STATE"

run_ok "key store created" "$TOOL" create "$URI"
run_ok "another key store created" "$TOOL" create "$OTHER"

# One trial: check the state against $last, commit until killed, update $last from what the tool
# reported before it died.
trial() {
    local line pid fd
    coproc DS { exec "$TOOL" trial "$URI" "$STATE" "$last" 2>&1; }
    pid=$DS_PID
    # bash forgets DS once the process ends: read from a copy of its output.
    exec {fd}<&"${DS[0]}"
    local out="" ready=0
    while IFS= read -r line <&"$fd"; do
        out+="$line"$'\n'
        if [ "$line" = ready ]; then
            ready=1
            break
        fi
    done
    if [ "$ready" = 1 ]; then
        sleep "$(printf '0.%03d' $((RANDOM % 40)))"
        kill -9 "$pid" 2>/dev/null || true
    fi
    while IFS= read -r line <&"$fd"; do
        out+="$line"$'\n'
    done
    exec {fd}<&-
    wait "$pid" 2>/dev/null || true
    if [ "$ready" != 1 ]; then
        OUT="$out" ERR="" RC=1
        fail "trial $1: the datastore did not open as generation $last or $((last + 1))"
    fi
    local seen
    seen=$(printf '%s' "$out" | sed -n 's/^generation //p')
    if [ "$seen" = $((last + 1)) ]; then
        found_new=$((found_new + 1))
    else
        found_old=$((found_old + 1))
    fi
    local committed
    committed=$(printf '%s' "$out" | sed -n 's/^committed //p' | tail -n 1)
    last=${committed:-$seen}
}

last=0
found_old=0
found_new=0
for i in $(seq 1 "$TRIALS"); do
    trial "$i"
done
run_ok "after $TRIALS kills the datastore opens as the old or the new generation" \
    "$TOOL" check "$URI" "$STATE" "$last"
current=$(sed -n 's/^generation //p' <<<"$OUT")
pass "$TRIALS kill -9 trials: old generation found $found_old times, new $found_new (last: $last)"

# --- refusals ------------------------------------------------------------------------------------
good=$(mktemp -d "$TS_TEST_TMP/good-XXXXXX")
cp -p "$STATE"/datastore-*.der "$good/"

expect_fail "another device's key store refuses the datastore" "$TOOL" get "$OTHER" "$STATE" server.url
assert_match "$ERR" '\(15\): .*another key store' "the refusal is TS_ERR_FOREIGN and says why"

# Edit one byte of the value of server.url in the newest slot.
# Slot a holds the even generations, slot b the odd ones.
newest="$STATE/datastore-a.der"
if [ $((current % 2)) = 1 ]; then
    newest="$STATE/datastore-b.der"
fi
python3 - "$newest" <<'EOF'
import sys
path = sys.argv[1]
data = bytearray(open(path, 'rb').read())
at = data.find(b'https://gen-') + len('https://')
data[at] ^= 0x01
open(path, 'wb').write(bytes(data))
EOF
expect_fail "a hand-edited byte is refused" "$TOOL" get "$URI" "$STATE" server.url
assert_match "$ERR" '\(13\): .*MAC does not verify' "the refusal is TS_ERR_AUTH and says the MAC does not verify"
cp -p "$good"/datastore-*.der "$STATE/"
run_ok "the restored datastore opens" "$TOOL" get "$URI" "$STATE" server.url

# Save this generation, commit two more, put the saved copy back.
old=$(mktemp -d "$TS_TEST_TMP/old-XXXXXX")
cp -p "$STATE"/datastore-*.der "$old/"
run_ok "two more commits" "$TOOL" loop "$URI" "$STATE" 2
cp -p "$old"/datastore-*.der "$STATE/"
expect_fail "a rolled-back copy is refused" "$TOOL" get "$URI" "$STATE" server.url
assert_match "$ERR" '\(16\): .*older copy' "the refusal is TS_ERR_ROLLBACK and says why"

finish
