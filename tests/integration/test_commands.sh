#!/usr/bin/env bash
# Signed remote commands end to end (docs/commands.md): `tessera serve --mqtt` with a real
# Mosquitto (client certificates required, the instance's CA chain as cafile, no plugin) and
# mosquitto_sub/mosquitto_pub as the device. A command made through REST arrives signed on the
# device's commands topic, `openssl cms -verify` accepts it against the instance root, a signed
# result published back is recorded (REST and CLI), a result signed by another device is refused,
# the CLI waits for results and reports expiry and silence, and the routes check roles. Last, a
# real `tessera-agent run` asked through the service to re-enroll with a new key (`tessera device
# command UID reenroll rekey`): an unknown argument is refused, the rekey answers with the new
# serial, the new certificate is for a new key and the old one is revoked as superseded.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/serve.sh"
. "$(dirname "${BASH_SOURCE[0]}")/broker.sh"
. "$(dirname "${BASH_SOURCE[0]}")/agent.sh"

RESULT_TOOL="${TS_BUILD_DIR:-build}/bin/result_tool"
command -v mosquitto_sub >/dev/null || fail "mosquitto_sub is not installed"

D="$TS_TEST_TMP/inst"
B="$TS_TEST_TMP/broker"
serve_init "$D"
ROOT="$D/root.pem"
[ -s "$D/tls/client.pem" ] || fail "tessera init made no tls/client.pem"
openssl x509 -in "$D/tls/client.pem" -noout -subject -ext extendedKeyUsage >"$TS_TEST_TMP/cl.txt"
assert_match "$(cat "$TS_TEST_TMP/cl.txt")" 'CN *= *tessera-service' "the client certificate's CN"
assert_match "$(cat "$TS_TEST_TMP/cl.txt")" 'TLS Web Client Authentication' "its EKU is clientAuth"
pass "tessera init makes the service's MQTT client certificate"

# An older instance: serve --mqtt makes the client certificate when it is missing.
rm "$D/tls/client.pem"

broker_cert "$D" "$B"
PORT=$(free_port)
{
    echo "per_listener_settings false"
    echo "user $(id -un)"
    echo "persistence false"
    echo "log_dest stderr"
    echo "log_type all"
    echo "connection_messages true"
    echo "allow_anonymous true"
    echo "listener $PORT 127.0.0.1"
    echo "certfile $B/broker.pem"
    echo "keyfile $B/broker.key"
    echo "cafile $B/cafile.pem"
    echo "require_certificate true"
    echo "set_tcp_nodelay true"
} >"$B/mosquitto.conf"
broker_start "$B/mosquitto.conf" || fail "mosquitto did not start: $(cat "$BROKER_LOG")"

device_cert "$D" "$TS_TEST_TMP/dev-1" dev-1 >/dev/null
device_cert "$D" "$TS_TEST_TMP/dev-2" dev-2 >/dev/null

serve_start "$D" --mqtt "127.0.0.1:$PORT"
for i in $(seq 1 100); do
    grep -q "mqtt: connected to" "$SERVE_LOG" && break
    sleep 0.1
done
grep -q "mqtt: connected to 127.0.0.1:$PORT" "$SERVE_LOG" || fail "no MQTT connection: $(cat "$SERVE_LOG")"
[ -s "$D/tls/client.pem" ] || fail "serve --mqtt did not make tls/client.pem"
pass "serve --mqtt connects with the key store's key and makes the missing client certificate"

api() { # METHOD PATH TOKEN [BODY]
    local args=(-sS --cacert "$ROOT" -o "$TS_TEST_TMP/body" -w '%{http_code}' -X "$1"
        -H "Authorization: Bearer $3")
    [ $# -lt 4 ] || args+=(-H 'Content-Type: application/json' --data "$4")
    curl "${args[@]}" "$SERVE_URL$2"
}
jget() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$TS_TEST_TMP/body" "$1"; }

sub_start() { # UID OUTFILE: a device listening on its commands topic for one message
    local subs
    subs=$(grep -c "Received SUBSCRIBE from $1\$" "$BROKER_LOG" || true)
    : >"$2"
    mosquitto_sub -h 127.0.0.1 -p "$PORT" --cafile "$ROOT" --cert "$TS_TEST_TMP/$1.pem" \
        --key "$TS_TEST_TMP/$1.key" -i "$1" -q 1 -C 1 -F %x \
        -t "tessera/default/$1/commands" >"$2" 2>"$2.err" &
    SUB_PID=$!
    on_exit kill "$SUB_PID"
    for i in $(seq 1 100); do
        [ "$(grep -c "Received SUBSCRIBE from $1\$" "$BROKER_LOG" || true)" -gt "$subs" ] && return 0
        sleep 0.1
    done
    fail "the device did not subscribe: $(cat "$BROKER_LOG")"
}
sub_wait() { # OUTFILE -> OUTFILE.der
    local i
    for i in $(seq 1 150); do
        [ -s "$1" ] && break
        sleep 0.1
    done
    [ -s "$1" ] || fail "no command arrived: $(cat "$1.err") $(tail -20 "$SERVE_LOG")"
    python3 -c 'import sys; open(sys.argv[2], "wb").write(bytes.fromhex(open(sys.argv[1]).read().strip()))' "$1" "$1.der"
}
publish_result() { # DEVICE(cert) UID(topic) FILE
    mosquitto_pub -h 127.0.0.1 -p "$PORT" --cafile "$ROOT" --cert "$TS_TEST_TMP/$1.pem" \
        --key "$TS_TEST_TMP/$1.key" -i "$1-pub" -q 1 -t "tessera/default/$2/results" -f "$3" ||
        fail "mosquitto_pub failed"
}
wait_status() { # UID ID STATUS
    local i s=""
    for i in $(seq 1 100); do
        api GET "/api/v1/tenants/default/devices/$1/commands/$2" "$ADMIN_TOKEN" >/dev/null
        s=$(jget 'd["status"]')
        [ "$s" = "$3" ] && return 0
        sleep 0.1
    done
    fail "command $2 is $s, not $3"
}

# --- A command through REST, signed on the device's topic --------------------------------------
sub_start dev-1 "$TS_TEST_TMP/c1.hex"
code=$(api POST /api/v1/tenants/default/devices/dev-1/commands "$ADMIN_TOKEN" \
    '{"name":"echo","args":["hello","world"],"ttl":60}')
assert_eq "$code" 201 "POST .../commands answers 201"
ID1=$(jget 'd["id"]')
assert_eq "$(jget 'd["seq"]')" 1 "the first command of dev-1 has seq 1"
assert_eq "$(jget 'd["status"]')" pending "a new command is pending"
assert_eq "$(jget 'd["args"]')" "['hello', 'world']" "the arguments as given"
sub_wait "$TS_TEST_TMP/c1.hex"
run_ok "openssl cms -verify accepts the envelope against the instance root" \
    openssl cms -verify -inform DER -in "$TS_TEST_TMP/c1.hex.der" -CAfile "$ROOT" -purpose any \
    -out "$TS_TEST_TMP/c1.json"
C1=$(cat "$TS_TEST_TMP/c1.json")
assert_match "$C1" "\"id\": *\"$ID1\"" "the envelope names the command"
assert_match "$C1" '"uid": *"dev-1"' "the envelope names the device"
assert_match "$C1" '"seq": *1[,}]' "the envelope carries the seq"
assert_match "$C1" '"type": *"command"' "the envelope is a command"
openssl pkcs7 -inform DER -in "$TS_TEST_TMP/c1.hex.der" -print_certs -text \
    >"$TS_TEST_TMP/c1.certs" || fail "openssl pkcs7 cannot read the envelope"
assert_match "$(cat "$TS_TEST_TMP/c1.certs")" 'CN *= *Tessera commands default' \
    "the envelope carries the command key's certificate"
assert_match "$(cat "$TS_TEST_TMP/c1.certs")" '2\.25\.239523024646244241113312767600684709737' \
    "with the command-signing EKU"
wait_status dev-1 "$ID1" sent
pass "the command was published signed and marked sent"

# --- A result signed by another device is refused; the device's own is recorded -------------------
# dev-2 answers its own command, and publishes that result on dev-1's topic.
sub_start dev-2 "$TS_TEST_TMP/c2.hex"
code=$(api POST /api/v1/tenants/default/devices/dev-2/commands "$ADMIN_TOKEN" '{"name":"echo"}')
assert_eq "$code" 201 "a command for dev-2"
ID2=$(jget 'd["id"]')
sub_wait "$TS_TEST_TMP/c2.hex"
expect_fail "dev-2 does not take dev-1's command" "$RESULT_TOOL" "$TS_TEST_TMP/dev-2.key" \
    "$TS_TEST_TMP/dev-2.pem" "$ROOT" "$TS_TEST_TMP/c1.hex.der" done x
"$RESULT_TOOL" "$TS_TEST_TMP/dev-2.key" "$TS_TEST_TMP/dev-2.pem" "$ROOT" "$TS_TEST_TMP/c2.hex.der" \
    done forged >"$TS_TEST_TMP/forged.der" || fail "result_tool failed"
publish_result dev-2 dev-1 "$TS_TEST_TMP/forged.der"
for i in $(seq 1 100); do
    grep -q "mqtt: result on tessera/default/dev-1/results: result refused" "$SERVE_LOG" && break
    sleep 0.1
done
assert_match "$(cat "$SERVE_LOG")" "result on tessera/default/dev-1/results: result refused" \
    "the service logs the refusal"
api GET "/api/v1/tenants/default/devices/dev-1/commands/$ID1" "$ADMIN_TOKEN" >/dev/null
assert_eq "$(jget 'd["status"]')" sent "a refused result changes nothing"
api GET "/api/v1/tenants/default/devices/dev-2/commands/$ID2" "$ADMIN_TOKEN" >/dev/null
assert_eq "$(jget 'd["status"]')" sent "nor the command it answers"

"$RESULT_TOOL" "$TS_TEST_TMP/dev-1.key" "$TS_TEST_TMP/dev-1.pem" "$ROOT" "$TS_TEST_TMP/c1.hex.der" \
    done "hello world" >"$TS_TEST_TMP/r1.der" || fail "result_tool failed"
publish_result dev-1 dev-1 "$TS_TEST_TMP/r1.der"
wait_status dev-1 "$ID1" done
assert_eq "$(jget 'd["output"]')" "hello world" "the result's output is recorded"
pass "a verified result is recorded"
run_ok "device commands lists them" "$TESSERA" device commands dev-1 --dir "$D"
assert_match "$OUT" "^$ID1	1	echo	done	" "the CLI list shows the done command"
run_ok "remote device commands" "$TESSERA" device commands dev-1 --server "$SERVE_URL" \
    --token "$ADMIN_TOKEN" --cacert "$ROOT"
assert_match "$OUT" "^$ID1	1	echo	done	" "the remote list shows it too"

# --- The CLI: wait for a result --------------------------------------------------------------------
sub_start dev-1 "$TS_TEST_TMP/c3.hex"
"$TESSERA" device command dev-1 uptime --word=-p --dir "$D" --wait 20 >"$TS_TEST_TMP/cli3.out" 2>&1 &
CLI_PID=$!
sub_wait "$TS_TEST_TMP/c3.hex"
"$RESULT_TOOL" "$TS_TEST_TMP/dev-1.key" "$TS_TEST_TMP/dev-1.pem" "$ROOT" "$TS_TEST_TMP/c3.hex.der" \
    done "up 3 days" >"$TS_TEST_TMP/r3.der" || fail "result_tool failed"
openssl cms -verify -inform DER -in "$TS_TEST_TMP/c3.hex.der" -CAfile "$ROOT" -purpose any \
    2>/dev/null | grep -q '"args": *\["-p"\]' || fail "the CLI's argument is in the envelope"
publish_result dev-1 dev-1 "$TS_TEST_TMP/r3.der"
CLI_RC=0
wait "$CLI_PID" || CLI_RC=$?
assert_eq "$CLI_RC" 0 "device command exits 0 on done"
assert_match "$(cat "$TS_TEST_TMP/cli3.out")" '^command [0-9a-f-]+ seq 2$' "it prints the id and seq"
assert_match "$(cat "$TS_TEST_TMP/cli3.out")" '^done: up 3 days$' "it prints the output"

sub_start dev-1 "$TS_TEST_TMP/c4.hex"
"$TESSERA" device command dev-1 reboot --server "$SERVE_URL" --token "$ADMIN_TOKEN" \
    --cacert "$ROOT" --wait 20 >"$TS_TEST_TMP/cli4.out" 2>&1 &
CLI_PID=$!
sub_wait "$TS_TEST_TMP/c4.hex"
"$RESULT_TOOL" "$TS_TEST_TMP/dev-1.key" "$TS_TEST_TMP/dev-1.pem" "$ROOT" "$TS_TEST_TMP/c4.hex.der" \
    failed "no handler for reboot" >"$TS_TEST_TMP/r4.der" || fail "result_tool failed"
publish_result dev-1 dev-1 "$TS_TEST_TMP/r4.der"
CLI_RC=0
wait "$CLI_PID" || CLI_RC=$?
assert_eq "$CLI_RC" 1 "a failed command exits 1"
assert_match "$(cat "$TS_TEST_TMP/cli4.out")" '^failed: no handler for reboot$' "remote: the error"

expect_status 1 "no answer" "$TESSERA" device command dev-2 ping --dir "$D" --wait 2 --ttl 600
assert_match "$OUT" '^no result within 2 s$' "silence is reported"
expect_status 1 "expiry" "$TESSERA" device command dev-2 ping --dir "$D" --wait 8 --ttl 1
assert_match "$OUT" '^expired$' "expiry is reported"
run_ok "--wait 0 does not wait" "$TESSERA" device command dev-2 ping --dir "$D" --wait 0
assert_match "$OUT" '^command [0-9a-f-]+ seq [0-9]+$' "only the command line"
expect_status 2 "bad name" "$TESSERA" device command dev-2 Ping --dir "$D"
assert_eq "$RC" 2 "a bad name is a usage error"
expect_fail "unknown device" "$TESSERA" device command dev-9 ping --dir "$D" --wait 0
assert_match "$ERR" 'no device dev-9' "an unknown device is named"

# --- A real agent: a re-enrollment with a new key asked through the service -------------------------
agent_enroll_by_claim "$TS_TEST_TMP/agent" "$D"
AUID=$AGENT_UID
ASERIAL=$AGENT_SERIAL
APUB=$AGENT_PUB
# Not through agent(): a function run in the background is a subshell, which SIGTERM would stop
# without the agent under it.
"$AGENT" run --keystore "$AGENT_KS" --state "$AGENT_STATE" --mqtt "127.0.0.1:$PORT" \
    --trust "$ROOT" --server "$SERVE_URL" --interval 60 >"$TS_TEST_TMP/agent.out" 2>&1 &
APID=$!
on_exit kill "$APID"
for i in $(seq 1 100); do
    grep -q "Received SUBSCRIBE from $AUID\$" "$BROKER_LOG" && break
    sleep 0.1
done
grep -q "Received SUBSCRIBE from $AUID\$" "$BROKER_LOG" ||
    fail "the agent did not subscribe: $(cat "$TS_TEST_TMP/agent.out")"
expect_status 1 "reenroll with an unknown argument, through the service" "$TESSERA" device command \
    "$AUID" reenroll bogus --dir "$D" --wait 30
assert_match "$OUT" '^failed: reenroll takes no argument or "rekey"' "...the agent refuses it"
run_ok "reenroll rekey through the service" "$TESSERA" device command "$AUID" reenroll rekey \
    --server "$SERVE_URL" --token "$ADMIN_TOKEN" --cacert "$ROOT" --wait 60
assert_match "$OUT" '^done: rekeyed serial [0-9a-f]+$' "...the agent answers with the new serial"
NSERIAL=$(sed -n 's/^done: rekeyed serial //p' <<<"$OUT")
[ "$NSERIAL" != "$ASERIAL" ] || fail "the rekey kept the serial"
run_ok "the replaced certificate" "$TESSERA" cert show "$ASERIAL" --dir "$D"
assert_match "$OUT" 'revoked: .*\(superseded\)' "...is revoked as superseded"
kill -TERM "$APID"
wait "$APID" || true
run_ok "agent status after the rekey" agent status --trust "$ROOT"
assert_match "$OUT" "serial: *$NSERIAL" "the agent's certificate is the new one"
CLABEL=$(sed -n 's/^cert: *//p' <<<"$OUT")
"$TESSERA" keystore get --keystore "$AGENT_KS" --label "$CLABEL" >"$TS_TEST_TMP/agent-new.pem"
[ "$(openssl x509 -in "$TS_TEST_TMP/agent-new.pem" -noout -pubkey)" != "$APUB" ] ||
    fail "the new certificate has the old public key"
pass "the new certificate is for a new key"

# --- REST validation and roles -----------------------------------------------------------------
C=/api/v1/tenants/default/devices
assert_eq "$(api POST $C/dev-1/commands "$ADMIN_TOKEN" '{"name":"Bad"}')" 400 "a bad name: 400"
assert_eq "$(api POST $C/dev-1/commands "$ADMIN_TOKEN" '{"name":"x","ttl":0}')" 400 "ttl 0: 400"
assert_eq "$(api POST $C/dev-1/commands "$ADMIN_TOKEN" '{"name":"x","ttl":604801}')" 400 \
    "ttl over a week: 400"
assert_eq "$(api POST $C/dev-1/commands "$ADMIN_TOKEN" '{"name":"x","args":[1]}')" 400 \
    "a number in args: 400"
assert_eq "$(api POST $C/dev-1/commands "$ADMIN_TOKEN" '{"name":"x","other":1}')" 400 \
    "an unknown member: 400"
assert_eq "$(api POST $C/dev-9/commands "$ADMIN_TOKEN" '{"name":"x"}')" 404 "an unknown device: 404"
"$TESSERA" device disable dev-2 --dir "$D" >/dev/null
assert_eq "$(api POST $C/dev-2/commands "$ADMIN_TOKEN" '{"name":"x"}')" 409 "a disabled device: 409"
"$TESSERA" device enable dev-2 --dir "$D" >/dev/null
assert_eq "$(api GET "$C/dev-1/commands/nope" "$ADMIN_TOKEN")" 404 "an unknown command: 404"

token_of() { # NAME ROLE [DEVICE]
    local extra=()
    [ $# -lt 3 ] || extra=(--device "$3")
    "$TESSERA" user create "$1" --role "$2" "${extra[@]}" --dir "$D" >/dev/null ||
        fail "user create $1"
    "$TESSERA" token create --user "$1" --name t --dir "$D" | tail -n1
}
OPER=$(token_of op1 operator)
AUD=$(token_of au1 auditor)
DEVT=$(token_of d1 device dev-1)
[ -n "$OPER" ] && [ -n "$AUD" ] && [ -n "$DEVT" ] || fail "tokens not made"
assert_eq "$(api POST $C/dev-1/commands "$OPER" '{"name":"x","ttl":5}')" 201 "an operator creates"
assert_eq "$(api POST $C/dev-1/commands "$AUD" '{"name":"x"}')" 403 "an auditor does not create"
assert_eq "$(api POST $C/dev-1/commands "$DEVT" '{"name":"x"}')" 403 "a device does not create"
assert_eq "$(api GET $C/dev-1/commands "$AUD")" 200 "an auditor reads"
assert_eq "$(api GET $C/dev-1/commands "$DEVT")" 200 "a device reads its own"
assert_eq "$(api GET "$C/dev-1/commands/$ID1" "$DEVT")" 200 "a device reads its own command"
assert_eq "$(api GET $C/dev-2/commands "$DEVT")" 404 "a device does not read another's"
assert_eq "$(api GET "$C/dev-1/commands?limit=1" "$ADMIN_TOKEN")" 200 "a page of one"
assert_eq "$(jget 'len(d["items"])')" 1 "one row"
NEXT=$(jget 'd["next"]')
assert_eq "$(api GET "$C/dev-1/commands?limit=1&cursor=$NEXT" "$ADMIN_TOKEN")" 200 "the next page"
assert_eq "$(jget 'len(d["items"]) == 1 and d["items"][0]["seq"] < 99')" True "the next page's row"
pass "REST validation and roles"

run_ok "the audit log verifies" "$TESSERA" audit verify --dir "$D"
run_ok "audit has command entries" "$TESSERA" audit list --dir "$D"
assert_match "$OUT" 'command.create' "command.create is audited"
assert_match "$OUT" 'command.result' "command.result is audited"
assert_match "$OUT" 'command.key' "the command key is audited"

serve_stop
assert_eq "$SERVE_STATUS" 0 "serve --mqtt stops cleanly"
finish
