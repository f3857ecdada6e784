#!/usr/bin/env bash
# `tessera-agent run` against a real Mosquitto (a plain configuration: client certificates from
# the instance's CAs required, no plugin): a device enrolled by claim code sends telemetry over
# mutual TLS with its key-store key, seen by mosquitto_sub; signed commands made by cmd_tool with
# a command-signer certificate run (ping, echo, status, reenroll with a reconnect on the new
# certificate, reenroll rekey with a new key and the old certificate superseded), a forged, a
# replayed and an expired one and a reenroll with an unknown argument are refused, and the signed
# results say so; a broker refusal is reported; telemetry queued while the broker restarts is delivered
# (--count). docs/agent.md "Running: MQTT telemetry and commands" describes it.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/serve.sh"

AGENT="${TS_BUILD_DIR:-build}/bin/tessera-agent"
CMD_TOOL="${TS_BUILD_DIR:-build}/bin/cmd_tool"
MOSQUITTO=${MOSQUITTO:-/usr/sbin/mosquitto}
DIR=$TS_TEST_TMP/ca
WORK=$TS_TEST_TMP/work
STATE=$TS_TEST_TMP/state
mkdir -p "$WORK"
export TESSERA_DIR=$DIR
[ -x "$AGENT" ] || fail "no $AGENT: build the tessera-agent target"
[ -x "$CMD_TOOL" ] || fail "no $CMD_TOOL: build the cmd_tool target"
[ -x "$MOSQUITTO" ] || fail "no $MOSQUITTO: install mosquitto"
command -v mosquitto_sub >/dev/null || fail "no mosquitto_sub: install mosquitto-clients"

# --- helpers ---------------------------------------------------------------------------------------
free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}
# wait_for FILE REGEX [SECONDS]: until FILE has a line matching REGEX.
wait_for() {
    local file=$1 re=$2 secs=${3:-20} i
    for i in $(seq 1 $((secs * 10))); do
        grep -Eq -- "$re" "$file" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "--- $file:" >&2
    cat "$file" >&2 || true
    fail "no line matching /$re/ in $(basename "$file") within $secs s"
}
# wait_count FILE REGEX N [SECONDS]: until FILE has N lines matching REGEX.
wait_count() {
    local file=$1 re=$2 n=$3 secs=${4:-20} i
    for i in $(seq 1 $((secs * 10))); do
        [ "$(grep -Ec -- "$re" "$file" 2>/dev/null)" -ge "$n" ] && return 0
        sleep 0.1
    done
    fail "fewer than $n lines matching /$re/ in $(basename "$file") within $secs s"
}
# kill_pid PID: SIGTERM to a process this test started, then wait for it.
kill_pid() {
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
# issue NAME PROFILE SUBJECT [openssl req options...]: WORK/NAME.key and WORK/NAME.pem.
issue() {
    local name=$1 profile=$2 subj=$3
    shift 3
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$WORK/$name.key" -subj "$subj" "$@" -out "$WORK/$name.csr" 2>/dev/null ||
        fail "openssl req for $name"
    run_ok "issue the $name certificate (profile $profile)" "$TESSERA" cert issue \
        --csr "$WORK/$name.csr" --profile "$profile" --out "$WORK/$name.pem"
    chmod 600 "$WORK/$name.key"
}
BROKER_PID=""
broker_start() {
    "$MOSQUITTO" -c "$1" >>"$WORK/broker.log" 2>&1 &
    BROKER_PID=$!
    on_exit kill "$BROKER_PID"
    local i
    for i in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
        kill -0 "$BROKER_PID" 2>/dev/null || fail "mosquitto exited: $(cat "$WORK/broker.log")"
        sleep 0.1
    done
    fail "mosquitto did not listen on $PORT within 10 s"
}
broker_conf() {
    cat >"$1" <<CONF
per_listener_settings false
user $(id -un)
persistence false
log_dest stderr
allow_anonymous $2
listener $PORT 127.0.0.1
certfile $WORK/broker-chain.pem
keyfile $WORK/broker.key
cafile $WORK/cafile.pem
require_certificate true
set_tcp_nodelay true
CONF
}

# --- an instance, a broker certificate, a watcher and a command signer ----------------------------
serve_init "$DIR"
serve_start "$DIR" || fail "tessera serve did not start"
ROOT=$DIR/root.pem
"$TESSERA" ca show --issuing >"$WORK/issuing.pem" || fail "ca show --issuing"
cat "$ROOT" "$WORK/issuing.pem" >"$WORK/cafile.pem"
issue broker server /CN=localhost -addext 'subjectAltName=DNS:localhost,IP:127.0.0.1'
cat "$WORK/broker.pem" "$WORK/issuing.pem" >"$WORK/broker-chain.pem"
issue watcher device /CN=watcher
# The command-signing certificate: the tenant's built-in profile when it has one, else a stored
# profile with the same definition.
SIGNER_PROFILE=command-signer
if ! "$TESSERA" profile show --name command-signer >/dev/null 2>&1; then
    SIGNER_PROFILE=test-command-signer
    cat >"$WORK/signer-profile.json" <<'JSON'
{"name": "test-command-signer", "description": "Remote-command signing (test)",
 "kind": "command-signer", "key_types": ["P-256"], "signature_digest": "SHA-256",
 "key_usage": ["digitalSignature"], "extended_key_usage": ["tesseraCommandSigning"],
 "subject": [{"type": "O", "value": "<org>"}, {"type": "CN", "value": "<csr>"}],
 "csr_subject": ["O", "CN"], "san": {"policy": "forbidden"},
 "csr_extensions": ["keyUsage", "extendedKeyUsage", "basicConstraints"],
 "validity": {"days": 30}}
JSON
    run_ok "a command-signer profile" "$TESSERA" profile create --name test-command-signer \
        --file "$WORK/signer-profile.json"
fi
issue signer "$SIGNER_PROFILE" /CN=commands
assert_match "$(openssl x509 -in "$WORK/signer.pem" -noout -ext extendedKeyUsage)" \
    '2\.25\.239523024646244241113312767600684709737|tesseraCommandSigning' \
    "the signer certificate has the command EKU"

# --- the device: init, claim code, enroll -----------------------------------------------------------
KS="soft:$TS_TEST_TMP/device?pin-value=4321"
run_ok "a device key store" "$TESSERA" keystore init --keystore "$KS"
agent() {
    local cmd=$1
    shift
    "$AGENT" "$cmd" --keystore "$KS" --state "$STATE" "$@"
}
# For runs in the background: the program itself, so that $! is its process id.
RUN=("$AGENT" run --keystore "$KS" --state "$STATE")
run_ok "agent init" agent init
UID_=$OUT
"$TESSERA" claim create | tail -n1 >"$WORK/code"
run_ok "claim inject" agent claim inject "$WORK/code"
run_ok "enroll by claim code" agent enroll --server "$SERVE_URL" --trust "$ROOT"
SERIAL1=$(sed -n 's/^serial: *//p' <<<"$OUT")
[ -n "$SERIAL1" ] || fail "enroll printed no serial"
PUB1=$("$TESSERA" keystore pubkey --keystore "$KS" --label identity)
TOPIC=tessera/default/$UID_

# --- usage and start-up failures ------------------------------------------------------------------
PORT=$(free_port)
expect_status 2 "--interval must be a number" agent run --interval soon
expect_status 1 "a bad endpoint is refused" agent run --mqtt nohostport --trust "$ROOT"
assert_match "$ERR" 'not HOST:PORT' "...saying why"
expect_status 1 "no trust roots" agent run --mqtt "127.0.0.1:$PORT"
assert_match "$ERR" 'no trust roots' "...saying so"

# --- a broker that refuses: reported, retried ----------------------------------------------------
broker_conf "$WORK/refuse.conf" false
broker_start "$WORK/refuse.conf"
"${RUN[@]}" --mqtt "127.0.0.1:$PORT" --trust "$ROOT" --interval 1 --queue 2 \
    >"$WORK/refused.out" 2>&1 &
APID=$!
on_exit kill "$APID"
wait_for "$WORK/refused.out" '^refused by broker: .*not authori[sz]ed' 15
pass "a CONNACK refusal is reported"
wait_for "$WORK/refused.out" '^telemetry 1 queued' 5
pass "...and telemetry waits in the queue"
wait_for "$WORK/refused.out" '^telemetry 1 dropped' 10
pass "...bounded by --queue: the oldest is dropped"
wait_count "$WORK/refused.out" '^refused by broker' 2 10
pass "...and the refused connection is retried"
kill_pid "$APID"
kill_pid "$BROKER_PID"

# --- telemetry -------------------------------------------------------------------------------------
broker_conf "$WORK/mosquitto.conf" true
broker_start "$WORK/mosquitto.conf"
SUB=(mosquitto_sub -h 127.0.0.1 -p "$PORT" --cafile "$ROOT" --cert "$WORK/watcher.pem"
    --key "$WORK/watcher.key")
"${SUB[@]}" -i watcher-t -v -t "$TOPIC/telemetry" -t "$TOPIC/status" >"$WORK/sub.out" 2>&1 &
SPID=$!
on_exit kill "$SPID"
sleep 0.5
run_ok "run --count 5 --interval 0" agent run --mqtt "127.0.0.1:$PORT" --trust "$ROOT" \
    --interval 0 --count 5
assert_match "$OUT" "^connected 127\.0\.0\.1:$PORT$" "it connected"
assert_match "$OUT" '^telemetry 5 sent$' "five messages acknowledged"
assert_match "$OUT" '^disconnected: done$' "...then a clean disconnect"
wait_for "$WORK/sub.out" "^$TOPIC/telemetry .*\"seq\":5[,}]" 10
for n in 1 2 3 4 5; do
    grep -Eq "^$TOPIC/telemetry \{.*\"seq\":$n[,}]" "$WORK/sub.out" || fail "telemetry $n not seen"
done
pass "mosquitto_sub saw telemetry 1 to 5"
TEL=$(grep -m1 "^$TOPIC/telemetry " "$WORK/sub.out")
assert_match "$TEL" '"uptime":[0-9]+' "the default source reports the uptime"
assert_match "$TEL" '"load":\[' "...the load averages"
assert_match "$TEL" '"mem_free_kb":[0-9]+' "...and free memory"
assert_match "$(cat "$WORK/sub.out")" "^$TOPIC/status \{\"state\":\"online\",\"agent\":\"[0-9.]+\"" \
    "the status went online with the agent's version"
assert_match "$(cat "$WORK/sub.out")" "cert_not_after\":\"20[0-9-]+T" "...and the certificate's expiry"
wait_for "$WORK/sub.out" "^$TOPIC/status \{\"state\":\"offline\"\}" 5
pass "...and offline at the end"

# A telemetry program: its JSON object is the payload (seq and time added).
printf '#!/bin/sh\necho "{\\"temp\\": 21.5, \\"door\\": \\"closed\\"}"\n' >"$WORK/sensor.sh"
chmod +x "$WORK/sensor.sh"
printf '#!/bin/sh\necho "not json"\n' >"$WORK/broken.sh"
chmod +x "$WORK/broken.sh"
run_ok "run with --telemetry-cmd" agent run --mqtt "127.0.0.1:$PORT" --trust "$ROOT" \
    --interval 0 --count 2 --telemetry-cmd "$WORK/sensor.sh"
wait_for "$WORK/sub.out" "^$TOPIC/telemetry \{\"temp\":21.5,\"door\":\"closed\",\"seq\":2," 10
pass "the program's JSON arrived"
"${RUN[@]}" --mqtt "127.0.0.1:$PORT" --trust "$ROOT" --interval 1 --count 1 \
    --telemetry-cmd "$WORK/broken.sh" >"$WORK/broken.out" 2>&1 &
APID=$!
wait_for "$WORK/broken.out" 'telemetry 1 not made: .*not one JSON object' 10
pass "output that is not a JSON object is refused"
kill_pid "$APID"

# --- signed commands ---------------------------------------------------------------------------------
# commands_agent OUT: `run` in the background (APID), able to re-enroll, until it has connected
# and subscribed to its commands topic; its output in OUT.
commands_agent() {
    "${RUN[@]}" --mqtt "127.0.0.1:$PORT" --trust "$ROOT" --server "$SERVE_URL" --interval 5 \
        >"$1" 2>&1 &
    APID=$!
    on_exit kill "$APID"
    wait_for "$1" '^connected ' 15
    sleep 0.5 # the subscription to the commands topic
}
"${SUB[@]}" -i watcher-r -F '%x' -t "$TOPIC/results" >"$WORK/results.hex" 2>&1 &
RPID=$!
on_exit kill "$RPID"
commands_agent "$WORK/agent.out"
sign() { # sign SEQ ID NAME [ARGS...] > file
    "$CMD_TOOL" sign "$WORK/signer.key" "$WORK/signer.pem" "$WORK/issuing.pem" default "$UID_" "$@"
}
send() {
    mosquitto_pub -h 127.0.0.1 -p "$PORT" --cafile "$ROOT" --cert "$WORK/watcher.pem" \
        --key "$WORK/watcher.key" -i watcher-p -q 1 -t "$TOPIC/commands" -f "$1" ||
        fail "mosquitto_pub of $1"
}
results() {
    "$CMD_TOOL" result "$ROOT" <"$WORK/results.hex"
}
sign 1 c-ping ping >"$WORK/ping.der"
send "$WORK/ping.der"
wait_for "$WORK/agent.out" '^command c-ping ping: done$'
pass "a valid ping runs"
sign 2 c-echo echo hello "big world" >"$WORK/echo.der"
send "$WORK/echo.der"
wait_for "$WORK/agent.out" '^command c-echo echo: done$'
CMD_TAMPER=1 sign 3 c-forged ping >"$WORK/forged.der"
send "$WORK/forged.der"
wait_for "$WORK/agent.out" '^command c-forged .*: refused: forged'
pass "a forged command is refused"
send "$WORK/ping.der"
wait_for "$WORK/agent.out" '^command c-ping ping: refused: replayed'
pass "a replayed command is refused"
CMD_EXPIRES_IN=-60 sign 4 c-expired ping >"$WORK/expired.der"
send "$WORK/expired.der"
wait_for "$WORK/agent.out" '^command c-expired ping: refused: expired'
pass "an expired command is refused"
sign 5 c-other ping >"$WORK/other.der"
"$CMD_TOOL" sign "$WORK/signer.key" "$WORK/signer.pem" "$WORK/issuing.pem" default other-device \
    6 c-foreign ping >"$WORK/foreign.der"
send "$WORK/foreign.der"
wait_for "$WORK/agent.out" '^command c-foreign ping: refused: foreign'
pass "another device's command is refused"
sign 7 c-nope selfdestruct >"$WORK/nope.der"
send "$WORK/nope.der"
wait_for "$WORK/agent.out" '^command c-nope selfdestruct: failed: no handler'
pass "a command without a handler fails"
sign 8 c-status status >"$WORK/status.der"
send "$WORK/status.der"
wait_for "$WORK/agent.out" '^command c-status status: done$'
sign 9 c-reenroll reenroll >"$WORK/reenroll.der"
send "$WORK/reenroll.der"
wait_for "$WORK/agent.out" '^command c-reenroll reenroll: done$' 30
assert_match "$(cat "$WORK/agent.out")" '^reenrolled serial [0-9a-f]+$' "reenroll renews"
SERIAL2=$(sed -n 's/^reenrolled serial //p' "$WORK/agent.out")
[ "$SERIAL2" != "$SERIAL1" ] || fail "the new serial equals the old one"
wait_for "$WORK/agent.out" '^disconnected: re-enrolled, reconnecting with the new certificate$'
wait_count "$WORK/agent.out" '^connected ' 2 10
pass "...and reconnects with the new certificate"
sign 10 c-after ping >"$WORK/after.der"
send "$WORK/after.der"
wait_for "$WORK/agent.out" '^command c-after ping: done$'
pass "commands run on the new connection"
# reenroll takes one optional argument, "rekey": anything else is refused and changes nothing.
sign 11 c-bogus reenroll bogus >"$WORK/bogus.der"
send "$WORK/bogus.der"
wait_for "$WORK/agent.out" '^command c-bogus reenroll: failed: reenroll takes no argument or "rekey"'
pass "reenroll with an unknown argument is refused"
assert_eq "$(grep -Ec '^(reenrolled|rekeyed) serial ' "$WORK/agent.out")" 1 "...and re-enrolls nothing"
sign 12 c-rekey reenroll rekey >"$WORK/rekey.der"
send "$WORK/rekey.der"
wait_for "$WORK/agent.out" '^command c-rekey reenroll: done$' 30
assert_match "$(cat "$WORK/agent.out")" '^rekeyed serial [0-9a-f]+$' "reenroll rekey rekeys"
SERIAL3=$(sed -n 's/^rekeyed serial //p' "$WORK/agent.out")
[ "$SERIAL3" != "$SERIAL2" ] || fail "the rekey kept the serial"
wait_count "$WORK/agent.out" '^connected ' 3 10
pass "...and reconnects with the new certificate"

# The signed results, verified against the root.
wait_count "$WORK/results.hex" . 12 10
run_ok "the results verify" results
R=$OUT
assert_match "$R" '^c-ping 1 done pong$' "result: ping done, pong"
assert_match "$R" '^c-echo 2 done hello big world$' "result: echo"
assert_match "$R" '^c-forged [0-9]+ refused forged' "result: forged refused"
assert_match "$R" '^c-ping 1 refused replayed' "result: replay refused"
assert_match "$R" '^c-expired 4 refused expired' "result: expired refused"
assert_match "$R" '^c-foreign 6 refused foreign' "result: foreign refused"
assert_match "$R" '^c-nope 7 failed no handler' "result: no handler"
assert_match "$R" "^c-status 8 done uid: $UID_" "result: status"
assert_match "$R" "^c-reenroll 9 done reenrolled serial $SERIAL2" "result: reenroll"
assert_match "$R" '^c-after 10 done pong$' "result: after the reconnect"
assert_match "$R" '^c-bogus 11 failed reenroll takes no argument or "rekey"' "result: bogus refused"
assert_match "$R" "^c-rekey 12 done rekeyed serial $SERIAL3" "result: rekey"

kill -TERM "$APID"
RC=0
wait "$APID" || RC=$?
assert_eq "$RC" 0 "SIGTERM: exit 0"
assert_match "$(tail -n1 "$WORK/agent.out")" '^disconnected: stopped$' "...after a clean disconnect"
run_ok "status after the run" agent status --trust "$ROOT"
assert_match "$OUT" "serial: *$SERIAL3" "the rekeyed certificate is current"
assert_match "$OUT" 'key: *identity\.key\.[0-9]+$' "...for a new key-store key"
CERT_LABEL=$(sed -n 's/^cert: *//p' <<<"$OUT")
"$TESSERA" keystore get --keystore "$KS" --label "$CERT_LABEL" >"$WORK/cert3.pem"
[ "$(openssl x509 -in "$WORK/cert3.pem" -noout -pubkey)" != "$PUB1" ] ||
    fail "the rekeyed certificate has the old public key"
pass "the rekeyed certificate has a new public key"
run_ok "the replaced certificate" "$TESSERA" cert show "$SERIAL2"
assert_match "$OUT" 'revoked: .*\(superseded\)' "...is revoked as superseded"

# --- the broker restarts: queued telemetry is delivered ----------------------------------------------
"${RUN[@]}" --mqtt "127.0.0.1:$PORT" --trust "$ROOT" --interval 1 --count 7 \
    >"$WORK/restart.out" 2>&1 &
APID=$!
wait_for "$WORK/restart.out" '^telemetry 2 sent$' 15
kill_pid "$BROKER_PID"
wait_for "$WORK/restart.out" '^disconnected: ' 10
wait_for "$WORK/restart.out" '^telemetry [0-9]+ queued$' 10
# Restart right after a failed attempt: the next one is at least 2 s away, time enough for the
# subscriber to be there first.
wait_for "$WORK/restart.out" '^disconnected: cannot connect to ' 10
broker_start "$WORK/mosquitto.conf"
"${SUB[@]}" -i watcher-t2 -v -t "$TOPIC/telemetry" >"$WORK/sub2.out" 2>&1 &
SPID=$!
on_exit kill "$SPID"
RC=0
for i in $(seq 1 400); do
    kill -0 "$APID" 2>/dev/null || break
    sleep 0.1
done
wait "$APID" || RC=$?
assert_eq "$RC" 0 "the run ended with all 7 acknowledged"
OUT=$(cat "$WORK/restart.out")
for n in 1 2 3 4 5 6 7; do
    grep -q "^telemetry $n sent$" <<<"$OUT" || fail "telemetry $n was not acknowledged"
done
pass "telemetry 1 to 7 acknowledged, none lost"
assert_eq "$(grep -c '^connected ' <<<"$OUT")" 2 "connected twice (before and after the restart)"
QUEUED=$(sed -n 's/^telemetry \([0-9]*\) queued$/\1/p' <<<"$OUT" | grep -v '^1$' || true)
[ -n "$QUEUED" ] || fail "nothing was queued while the broker was down"
for n in $QUEUED; do
    grep -Eq "^$TOPIC/telemetry \{.*\"seq\":$n[,}]" "$WORK/sub2.out" ||
        fail "telemetry $n, queued while the broker was down, did not arrive"
done
pass "the messages queued while the broker was down arrived after the restart"
assert_no_match "$OUT" 'dropped' "nothing dropped"

# --- a signed fw-update command: the running agent downloads the release and applies it --------------
FWKS="soft:$WORK/fw-signer?pin-value=fw-run-pin-1234"
run_ok "a firmware signer's key store" "$TESSERA" keystore init --keystore "$FWKS"
run_ok "the firmware signer's key" "$TESSERA" keystore genkey --keystore "$FWKS" --label fw
run_ok "its csr" "$TESSERA" keystore csr --keystore "$FWKS" --label fw \
    --subject "/CN=run-release-signer" --out "$WORK/fw.csr"
run_ok "the firmware-signer certificate" "$TESSERA" cert issue --csr "$WORK/fw.csr" \
    --profile firmware-signer --out "$WORK/fw-signer.pem"
{
    printf '#!/bin/sh\necho "image v1"\n'
    head -c 6000 /dev/urandom | od -An -tx1 | sed 's/^/# /'
} >"$WORK/fw-img1"
run_ok "sign v1 for board-r" "$TESSERA" fw sign --key "$FWKS" --label fw \
    --cert "$WORK/fw-signer.pem" --chain "$WORK/issuing.pem" --version 1 --hw board-r \
    --chunk-size 4096 "$WORK/fw-img1" -o "$WORK/fw-v1.tsfw"
run_ok "publish v1 for this device" "$TESSERA" fw publish "$WORK/fw-v1.tsfw" --device "$UID_"
FW_REL=$(sed -n 's/^published: release \([0-9a-f]*\) .*/\1/p' <<<"$OUT")
[ -n "$FW_REL" ] || fail "no release id in: $OUT"
FW_URL=$SERVE_URL/agent/v1/firmware/$FW_REL
FW_SHA=$(sha256sum "$WORK/fw-v1.tsfw" | cut -d' ' -f1)
fw() { "$AGENT" fw "$@" --keystore "$KS" --state "$STATE"; }
run_ok "fw setup" fw setup --slot-a "$WORK/fw-slot-a" --slot-b "$WORK/fw-slot-b" --hw board-r \
    --roots "$ROOT"
commands_agent "$WORK/fw-agent.out"
FW_STATE=$(sha256sum "$STATE/fw.state" | cut -d' ' -f1)
sign 13 c-fw-args fw-update "$FW_URL" >"$WORK/fw-args.der"
send "$WORK/fw-args.der"
wait_for "$WORK/fw-agent.out" '^command c-fw-args fw-update: failed: ' 15
assert_match "$(cat "$WORK/fw-agent.out")" \
    '^command c-fw-args fw-update: failed: fw-update takes two arguments: URL and SHA256$' \
    "fw-update with one argument fails, saying what it takes"
ZERO=$(printf '0%.0s' $(seq 64))
sign 14 c-fw-sha fw-update "$FW_URL" "$ZERO" >"$WORK/fw-sha.der"
send "$WORK/fw-sha.der"
wait_for "$WORK/fw-agent.out" '^command c-fw-sha fw-update: failed: ' 30
assert_match "$(cat "$WORK/fw-agent.out")" \
    "^command c-fw-sha fw-update: failed: release $FW_REL: the update file's SHA-256 $FW_SHA is not the expected $ZERO$" \
    "fw-update with a wrong SHA256 fails, naming both digests"
assert_eq "$(sha256sum "$STATE/fw.state" | cut -d' ' -f1)" "$FW_STATE" \
    "...and leaves the boot state as it was"
sign 15 c-fw fw-update "$FW_URL" "$FW_SHA" >"$WORK/fw.der"
send "$WORK/fw.der"
wait_for "$WORK/fw-agent.out" '^command c-fw fw-update: (done|failed)' 30
assert_match "$(cat "$WORK/fw-agent.out")" '^command c-fw fw-update: done$' "fw-update runs"
wait_count "$WORK/results.hex" . 15 10
run_ok "the fw-update results verify" results
assert_match "$OUT" '^c-fw-args 13 failed fw-update takes two arguments: URL and SHA256$' \
    "result: one argument"
assert_match "$OUT" "^c-fw-sha 14 failed release $FW_REL: the update file's SHA-256 $FW_SHA is not the expected $ZERO$" \
    "result: wrong SHA256"
assert_match "$OUT" "^c-fw 15 done applied release $FW_REL: version 1 to slot b, pending$" \
    "result: applied release ID: version 1 to slot b, pending"
# fw status does not wait for the running agent's lock.
run_ok "fw status while the agent runs" timeout 20 "$AGENT" fw status --keystore "$KS" \
    --state "$STATE"
assert_match "$OUT" '^pending=b$' "slot b pending, seen while the agent runs"
kill_pid "$APID"
run_ok "fw status after fw-update" fw status
assert_match "$OUT" '^pending=b$' "slot b pending"
assert_match "$OUT" '^version\.b=1$' "...with version 1"
assert_match "$OUT" '^counter=0$' "the counter is not raised before confirm"
cmp -s "$WORK/fw-slot-b" "$WORK/fw-img1" || fail "slot b does not hold the image"
pass "slot b holds the released image, byte for byte"
finish
