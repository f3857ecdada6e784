#!/usr/bin/env bash
# A device changing its key while it is connected through the broker plugin (docs/broker.md,
# docs/commands.md). A real tessera-agent runs against Mosquitto with the Tessera plugin, and the
# service (`tessera serve --mqtt`) is connected to the same broker as its service account.
#
# Asked through the service to re-enroll with a new key, the agent:
#   - answers with the new serial;
#   - connects again with the new certificate, which the plugin admits;
#   - answers a command sent after the change.
# The service revokes the old certificate as superseded, and the plugin's state says so.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/serve.sh"
. "$(dirname "${BASH_SOURCE[0]}")/broker.sh"
. "$(dirname "${BASH_SOURCE[0]}")/agent.sh"

[ -x "$MOSQUITTO" ] || fail "$MOSQUITTO not installed (apt-get install mosquitto mosquitto-clients)"
[ -r "$TS_BROKER_PLUGIN" ] || fail "$TS_BROKER_PLUGIN not built"

D=$TS_TEST_TMP
I=$D/inst
serve_init "$I"
ROOT="$I/root.pem"
[ -s "$I/tls/client.pem" ] || fail "tessera init made no tls/client.pem"
run_ok "a tenant auditor for the broker" "$TESSERA" user create broker --role auditor --dir "$I"
"$TESSERA" token create --user broker --name mosquitto --dir "$I" | tail -n1 >"$D/token"
chmod 600 "$D/token"
broker_cert "$I" "$D"

# The service first (it retries the broker every second at first), then the broker, whose
# plugin reads the service's state when it starts.
PORT=$(free_port)
serve_start "$I" --mqtt "127.0.0.1:$PORT"
broker_conf "$D/mosquitto.conf" "$PORT" "$D" \
    "plugin $TS_BROKER_PLUGIN" \
    "plugin_opt_service_url $SERVE_URL" \
    "plugin_opt_token_file $D/token" \
    "plugin_opt_trust $ROOT" \
    "plugin_opt_cache $D/broker.cache" \
    "plugin_opt_refresh 1" \
    "plugin_opt_service_cert $I/tls/client.pem" \
    "log_type all"
broker_start "$D/mosquitto.conf" || fail "mosquitto exited: $(cat "$BROKER_LOG")"
broker_wait_log 'tessera: state updated from the service' 15 ||
    fail "no state from the service: $(cat "$BROKER_LOG")"
for i in $(seq 1 150); do
    grep -q "mqtt: connected to 127.0.0.1:$PORT" "$SERVE_LOG" && break
    sleep 0.1
done
grep -q "mqtt: connected to 127.0.0.1:$PORT" "$SERVE_LOG" ||
    fail "the service is not connected: $(tail -20 "$SERVE_LOG") $(cat "$BROKER_LOG")"
pass "the service's own certificate is admitted as the service account"

# The device: a soft key store, enrolled by claim code, running against the broker.
agent_enroll_by_claim "$D/agent" "$I"
AUID=$AGENT_UID
OLD=$AGENT_SERIAL

# connections UID: how many times the broker has admitted the client id UID.
connections() {
    grep -c "New client connected from .* as $1 " "$BROKER_LOG" || true
}
# Not through agent(): a function run in the background is a subshell, which SIGTERM would stop
# without the agent under it.
"$AGENT" run --keystore "$AGENT_KS" --state "$AGENT_STATE" --mqtt "127.0.0.1:$PORT" \
    --trust "$ROOT" --server "$SERVE_URL" --interval 60 >"$D/agent.out" 2>&1 &
APID=$!
on_exit kill "$APID"
broker_wait_log "Received SUBSCRIBE from $AUID\$" 15 ||
    fail "the agent did not subscribe: $(cat "$D/agent.out") $(cat "$BROKER_LOG")"
assert_eq "$(connections "$AUID")" 1 "the plugin admitted the device once"

run_ok "a command before the rekey" "$TESSERA" device command "$AUID" ping --dir "$I" --wait 30
assert_match "$OUT" '^done: ' "...is answered through the broker"

run_ok "reenroll rekey through the service" "$TESSERA" device command "$AUID" reenroll rekey \
    --dir "$I" --wait 60
assert_match "$OUT" '^done: rekeyed serial [0-9a-f]+$' "...the agent answers with the new serial"
NEW=$(sed -n 's/^done: rekeyed serial //p' <<<"$OUT")
[ "$(tr a-f A-F <<<"$NEW")" != "$(tr a-f A-F <<<"$OLD")" ] || fail "the rekey kept the serial"
run_ok "the replaced certificate" "$TESSERA" cert show "$OLD" --dir "$I"
assert_match "$OUT" 'revoked: .*\(superseded\)' "...is revoked as superseded"

# The agent drops the connection made with the old certificate and connects with the new one.
subscriptions() {
    grep -c "Received SUBSCRIBE from $1\$" "$BROKER_LOG" || true
}
for i in $(seq 1 300); do
    [ "$(connections "$AUID")" -ge 2 ] && [ "$(subscriptions "$AUID")" -ge 2 ] && break
    sleep 0.1
done
assert_eq "$(connections "$AUID")" 2 "the device connected again, once"
assert_eq "$(subscriptions "$AUID")" 2 "...and subscribed again"
grep -q 'reconnecting with the new certificate' "$D/agent.out" ||
    fail "the agent did not say why it reconnected: $(cat "$D/agent.out")"
pass "the agent reconnected with the new certificate"

run_ok "a command after the rekey" "$TESSERA" device command "$AUID" ping --dir "$I" --wait 30
assert_match "$OUT" '^done: ' "...is answered over the new connection, admitted by the plugin"

# The plugin's state names the old serial as revoked (it refuses that certificate from now on).
broker_wait_log 'tessera: state updated from the service' 15 || fail "no refresh"
for i in $(seq 1 100); do
    grep -qi "$OLD" "$D/broker.cache" 2>/dev/null && break
    sleep 0.1
done
grep -qi "$OLD" "$D/broker.cache" || fail "the plugin's cache does not list the old serial"
pass "the plugin's state lists the old certificate as revoked"

kill -TERM "$APID"
wait "$APID" || true
run_ok "agent status after the rekey" agent status --trust "$ROOT"
assert_match "$OUT" "serial: *$NEW" "the agent's certificate is the new one"
CLABEL=$(sed -n 's/^cert: *//p' <<<"$OUT")
"$TESSERA" keystore get --keystore "$AGENT_KS" --label "$CLABEL" >"$D/agent-new.pem" ||
    fail "no certificate $CLABEL in the device's key store"
NEWPUB=$(openssl x509 -in "$D/agent-new.pem" -noout -pubkey)
[ -n "$NEWPUB" ] && [ "$NEWPUB" != "$AGENT_PUB" ] || fail "the new certificate has the old public key"
pass "the new certificate is for a new key"

serve_stop
assert_eq "$SERVE_STATUS" 0 "the service stops cleanly"
broker_stop
finish
