#!/usr/bin/env bash
# The Mosquitto plugin (tessera_mosquitto.so) with a real `tessera serve` and /usr/sbin/mosquitto:
# device certificates admitted to their own topics only, refused when revoked, disabled, of
# another CA or with a client id that is not their UID, kicked when revoked while connected, the
# service account anywhere under tessera/, and the cache keeping all of it while the service is
# down. docs/broker.md.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/serve.sh"
. "$(dirname "${BASH_SOURCE[0]}")/broker.sh"

[ -x "$MOSQUITTO" ] || fail "$MOSQUITTO not installed (apt-get install mosquitto mosquitto-clients)"
[ -r "$TS_BROKER_PLUGIN" ] || fail "$TS_BROKER_PLUGIN not built"
command -v mosquitto_pub >/dev/null || fail "mosquitto_pub not installed"

D=$TS_TEST_TMP
I=$D/ca
serve_init "$I"
run_ok "a tenant auditor for the broker" "$TESSERA" user create broker --role auditor --dir "$I"
"$TESSERA" token create --user broker --name mosquitto --dir "$I" | tail -n1 >"$D/token"
chmod 600 "$D/token"

# Certificates: the broker's, devices of the default tenant, one of a CA the broker does not trust.
broker_cert "$I" "$D"
for u in dev-1 dev-2 dev-3 dev-4 dev-5; do
    device_cert "$I" "$D/$u" "$u" >"$D/$u.serial"
done
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$D/other-ca.key" \
    -subj /CN=Other -days 30 -out "$D/other-ca.pem" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$D/foreign.key" \
    -subj /CN=dev-1 -out "$D/foreign.csr" 2>/dev/null
openssl x509 -req -in "$D/foreign.csr" -CA "$D/other-ca.pem" -CAkey "$D/other-ca.key" \
    -CAcreateserial -days 30 -out "$D/foreign.pem" 2>/dev/null
# The service account: a clientAuth certificate with its key in a file, for mosquitto_pub. The
# instance's own MQTT client certificate (its key stays in the key store) is listed too when the
# instance has one: plugin_opt_service_cert takes several.
device_cert "$I" "$D/service" tessera-service >/dev/null
cp "$D/service.pem" "$D/service-accounts.pem"
if [ -r "$I/tls/client.pem" ]; then
    cat "$I/tls/client.pem" >>"$D/service-accounts.pem"
fi

# Revoked and disabled before the broker starts.
run_ok "dev-3 revoked" "$TESSERA" cert revoke --dir "$I" "$(cat "$D/dev-3.serial")" --reason keyCompromise
run_ok "dev-5 disabled" "$TESSERA" device disable --dir "$I" dev-5

serve_start "$I"
PORT=$(free_port)
PLUGIN_OPTS=(
    "plugin $TS_BROKER_PLUGIN"
    "plugin_opt_service_url $SERVE_URL"
    "plugin_opt_token_file $D/token"
    "plugin_opt_trust $I/root.pem"
    "plugin_opt_cache $D/broker.cache"
    "plugin_opt_refresh 1"
    "plugin_opt_service_cert $D/service-accounts.pem")
broker_conf "$D/mosquitto.conf" "$PORT" "$D" "${PLUGIN_OPTS[@]}"

# Bad options: the broker refuses to start and names the option.
broker_conf "$D/bad.conf" "$(free_port)" "$D" "plugin $TS_BROKER_PLUGIN" \
    "plugin_opt_service_url $SERVE_URL" "plugin_opt_trust $I/root.pem" "plugin_opt_cache $D/c2"
if broker_start "$D/bad.conf"; then
    fail "mosquitto started without plugin_opt_token_file"
fi
assert_match "$(cat "$BROKER_LOG")" 'plugin_opt_token_file is required' "a missing token_file is named"
broker_conf "$D/bad.conf" "$(free_port)" "$D" "plugin $TS_BROKER_PLUGIN" \
    "plugin_opt_service_url http://127.0.0.1:1" "plugin_opt_token_file $D/token" \
    "plugin_opt_trust $I/root.pem" "plugin_opt_cache $D/c2"
if broker_start "$D/bad.conf"; then
    fail "mosquitto started with an http service_url"
fi
assert_match "$(cat "$BROKER_LOG")" "plugin_opt_service_url 'http://127.0.0.1:1' is not https" \
    "a bad service_url is named"

broker_start "$D/mosquitto.conf" || fail "mosquitto exited: $(cat "$BROKER_LOG")"
broker_wait_log 'tessera: state updated from the service' 15 ||
    fail "no state from the service: $(cat "$BROKER_LOG")"
pass "the plugin read the service's state"
assert_no_string "$(cat "$BROKER_LOG")" "$(cat "$D/token")" "the token is not logged"
[ "$(file_mode "$D/broker.cache")" = 600 ] || fail "the cache is not mode 600"
pass "the cache is written, mode 600"

# tls_args NAME: the client TLS options for the certificate NAME.
tls_args() {
    echo "-h 127.0.0.1 -p $PORT --cafile $I/root.pem --cert $D/$1.pem --key $D/$1.key"
}
# pub NAME CLIENT_ID TOPIC MESSAGE [ARGS...]: mosquitto_pub with that certificate.
pub() {
    local name=$1 id=$2 topic=$3 msg=$4
    shift 4
    # shellcheck disable=SC2046
    run_capture timeout 10 mosquitto_pub $(tls_args "$name") -i "$id" -t "$topic" -m "$msg" -q 1 "$@"
}
# sub_start NAME CLIENT_ID TOPIC OUT [ARGS...]: mosquitto_sub in the background; SUB_PID.
sub_start() {
    local name=$1 id=$2 topic=$3 out=$4
    shift 4
    # shellcheck disable=SC2046
    mosquitto_sub $(tls_args "$name") -i "$id" -t "$topic" -q 1 -v "$@" >"$out" 2>&1 &
    SUB_PID=$!
    on_exit kill "$SUB_PID"
}
# wait_for FILE REGEX SECONDS: until FILE matches REGEX.
wait_for() {
    local i
    for i in $(seq 1 $(($3 * 10))); do
        grep -Eq -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# A device's client id is its UID, so one device has one session at a time: the service account
# is the witness that must see every allowed message and none of the denied ones.
sub_start service ops-watch 'tessera/#' "$D/subsvc.out"
sub_start dev-1 dev-1 'tessera/default/dev-1/#' "$D/sub1.out"
broker_wait_log "New client connected .* as dev-1 .*u'default/dev-1'" 10 ||
    fail "dev-1's subscriber was not admitted: $(cat "$BROKER_LOG")"
pass "dev-1 admitted with username default/dev-1"
broker_wait_log "New client connected .* as ops-watch .*u'service'" 10 ||
    fail "the service account was not admitted: $(cat "$BROKER_LOG")"
pass "the service account admitted with username service"
sleep 0.5

# dev-2 publishes on its own telemetry topic and receives it on its own subscription, in one
# session (mosquitto_rr subscribes to -e and publishes on -t).
# shellcheck disable=SC2046
run_capture timeout 10 mosquitto_rr $(tls_args dev-2) -i dev-2 -t tessera/default/dev-2/telemetry \
    -e tessera/default/dev-2/telemetry -m '{"t":2}' -W 5
assert_eq "$OUT" '{"t":2}' "dev-2 publishes and subscribes on its own topics"
wait_for "$D/subsvc.out" '^tessera/default/dev-2/telemetry \{"t":2\}$' 10 ||
    fail "the service account did not receive dev-2's telemetry"
pass "the service account receives a device's telemetry"

# A wildcard filter reaching beyond the device's prefix is refused (MQTT 5: reason 0x87).
# shellcheck disable=SC2046
run_capture timeout 10 mosquitto_sub $(tls_args dev-2) -i dev-2 -t 'tessera/default/+/telemetry' \
    -V mqttv5 -W 3
assert_match "$OUT$ERR" 'All subscription requests were denied' \
    "dev-2 subscribing to tessera/default/+/telemetry is refused"
# shellcheck disable=SC2046
run_capture timeout 10 mosquitto_sub $(tls_args dev-2) -i dev-2 -t 'tessera/#' -V mqttv5 -W 3
assert_match "$OUT$ERR" 'All subscription requests were denied' "dev-2 subscribing to tessera/# is refused"

# dev-2 publishing on dev-1's topic: MQTT 3.1.1 drops it silently, MQTT 5 says why.
pub dev-2 dev-2 tessera/default/dev-1/commands forged-311
pub dev-2 dev-2 tessera/default/dev-1/commands forged-v5 -V mqttv5 -d
assert_match "$OUT$ERR" 'rc135|Not authorized|reason code 135|0x87' \
    "dev-2 publishing on dev-1's topic: PUBACK not authorized (MQTT 5)"
pub dev-2 dev-2 tessera/default/dev-2/status allowed-after
wait_for "$D/subsvc.out" 'tessera/default/dev-2/status allowed-after' 10 ||
    fail "dev-2's own status did not arrive"
sleep 0.5
assert_no_match "$(cat "$D/subsvc.out")" 'forged' "the witness never got dev-2's publishes on dev-1's topic"
assert_no_match "$(cat "$D/sub1.out")" 'forged' "dev-1 never got dev-2's publishes on its topic"
pub dev-2 dev-2 tessera/other/x/telemetry out-of-prefix -V mqttv5 -d
assert_match "$OUT$ERR" 'rc135|Not authorized|reason code 135|0x87' "a publish outside the prefix is denied"

# The service account publishes to any device's topic.
pub service tessera-service tessera/default/dev-1/commands from-service
wait_for "$D/sub1.out" 'commands from-service' 10 || fail "dev-1 did not get the service's command"
pass "the service account publishes on dev-1's commands topic, and dev-1 receives it"
pub service tessera-service other/topic nope -V mqttv5 -d
assert_match "$OUT$ERR" 'rc135|Not authorized|reason code 135|0x87' \
    "the service account is kept under tessera/"

# Refusals at CONNECT.
pub dev-3 dev-3 tessera/default/dev-3/telemetry x
[ "$RC" -ne 0 ] || fail "a revoked certificate was admitted"
assert_match "$OUT$ERR" 'not authori[sz]ed|Connection Refused' "a revoked certificate is refused"
broker_wait_log "refused client 'dev-3' .*certificate of default is revoked" 5 ||
    fail "no refusal reason for dev-3 in the log"
pass "the log says dev-3's certificate is revoked"
pub dev-5 dev-5 tessera/default/dev-5/telemetry x
[ "$RC" -ne 0 ] || fail "a disabled device was admitted"
broker_wait_log "refused client 'dev-5' .*device default/dev-5 is disabled" 5 ||
    fail "no refusal reason for dev-5 in the log"
pass "a disabled device is refused"
pub dev-2 dev-1 tessera/default/dev-1/telemetry x
[ "$RC" -ne 0 ] || fail "a client id that is not the certificate's UID was admitted"
broker_wait_log "refused client 'dev-1' .*client id is not the certificate's UID default/dev-2" 5 ||
    fail "no refusal reason for the wrong client id"
pass "a client id other than the certificate's CN is refused"
pub foreign dev-1 tessera/default/dev-1/telemetry x
[ "$RC" -ne 0 ] || fail "a certificate of another CA was admitted"
broker_wait_log 'OpenSSL Error|certificate verify failed|unknown ca|unable to get' 5 ||
    fail "no TLS refusal in the log: $(cat "$BROKER_LOG")"
pass "a certificate of another CA is refused in TLS"

# Revoked while connected: the session ends within the refresh period.
sub_start dev-4 dev-4 'tessera/default/dev-4/#' "$D/sub4.out"
broker_wait_log "New client connected .* as dev-4 " 10 || fail "dev-4 was not admitted"
run_ok "dev-4 revoked while connected" "$TESSERA" cert revoke --dir "$I" "$(cat "$D/dev-4.serial")" \
    --reason keyCompromise
broker_wait_log 'tessera: disconnecting default/dev-4: its certificate is revoked' 15 ||
    fail "dev-4 was not kicked: $(tail -n 20 "$BROKER_LOG")"
for i in $(seq 1 100); do
    kill -0 "$SUB_PID" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$SUB_PID" 2>/dev/null; then
    # mosquitto_sub reconnects by itself; it must then be refused.
    broker_wait_log "refused client 'dev-4'" 10 || fail "dev-4's session goes on"
fi
pass "dev-4's session ended after its revocation"

# The service stops: the cache keeps the state.
serve_stop
broker_stop
broker_start "$D/mosquitto.conf" || fail "mosquitto exited: $(cat "$BROKER_LOG")"
broker_wait_log 'state loaded from the cache' 5 || fail "the cache was not loaded: $(cat "$BROKER_LOG")"
pass "with the service down the broker starts from its cache"
pub dev-1 dev-1 tessera/default/dev-1/telemetry offline-ok
[ "$RC" -eq 0 ] || fail "dev-1 refused while the service is down"
pass "a valid device is admitted while the service is down"
pub dev-3 dev-3 tessera/default/dev-3/telemetry x
[ "$RC" -ne 0 ] || fail "a revoked certificate admitted while the service is down"
pass "a revoked certificate is refused while the service is down"
pub dev-4 dev-4 tessera/default/dev-4/telemetry x
[ "$RC" -ne 0 ] || fail "dev-4 (revoked while connected) admitted from the cache"
pass "the certificate revoked while connected stays refused from the cache"
broker_wait_log 'cannot update from the service .*keeping the last state' 10 ||
    fail "the log does not say the service is unreachable"
pass "the log says the service is unreachable and the last state is kept"

# dev-1 connected while the service is down; its certificate is revoked meanwhile. When the
# service returns (same address), the broker catches up and ends dev-1's session.
sub_start dev-1 dev-1 'tessera/default/dev-1/#' "$D/sub1b.out"
broker_wait_log "New client connected .* as dev-1 " 10 || fail "dev-1 not admitted while offline"
run_ok "dev-1 revoked while the service is down" "$TESSERA" cert revoke --dir "$I" \
    "$(cat "$D/dev-1.serial")" --reason keyCompromise
# serve_start picks a fresh port; the plugin's service_url names the old one.
"$TESSERA" serve --dir "$I" --listen "${SERVE_URL#https://}" >"$D/serve-again.log" 2>&1 &
SERVE_PID=$!
wait_for "$D/serve-again.log" '^listening https ' 30 || fail "tessera serve did not restart: $(cat "$D/serve-again.log")"
broker_wait_log 'tessera: the service answers again' 20 ||
    fail "the broker did not catch up: $(tail -n 20 "$BROKER_LOG")"
pass "the broker reaches the service again"
broker_wait_log 'tessera: disconnecting default/dev-1: its certificate is revoked' 15 ||
    fail "dev-1 was not kicked after the catch-up"
pass "the revocation made while the service was down is applied on its return"
serve_stop
broker_stop

# No cache and no service: fail closed.
broker_conf "$D/nostate.conf" "$PORT" "$D" "plugin $TS_BROKER_PLUGIN" \
    "plugin_opt_service_url $SERVE_URL" "plugin_opt_token_file $D/token" \
    "plugin_opt_trust $I/root.pem" "plugin_opt_cache $D/none.cache" "plugin_opt_refresh 1"
broker_start "$D/nostate.conf" || fail "mosquitto exited: $(cat "$BROKER_LOG")"
pub dev-1 dev-1 tessera/default/dev-1/telemetry x
[ "$RC" -ne 0 ] || fail "a device admitted with neither cache nor service"
broker_wait_log "refused client 'dev-1' .*no revocation state yet" 5 || fail "no reason logged"
pass "with neither cache nor service every device is refused"
broker_stop

# A sanitized plugin (TS_SANITIZE builds) reports into the broker's log; shown when it does.
if grep -E -A40 'AddressSanitizer|runtime error:|LeakSanitizer' "$TS_TEST_TMP"/mosquitto.*.log >&2
then
    fail "no sanitizer report from the plugin"
fi
pass "no sanitizer report from the plugin"

finish
