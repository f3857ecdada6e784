# Helpers for integration tests that run a real tessera-agent (source after lib.sh and serve.sh).
#
#   agent_enroll_by_claim WORK INSTANCE
#       a device enrolled in INSTANCE's default tenant through the running service (SERVE_URL):
#       a soft: key store and the agent's state in WORK, `tessera-agent init`, a claim code of
#       INSTANCE injected and redeemed by `enroll`, trusting INSTANCE/root.pem. Sets AGENT_KS,
#       AGENT_STATE, AGENT_UID, AGENT_SERIAL (hex, as enroll prints it) and AGENT_PUB (the
#       identity's public key, PEM).
#   agent CMD [ARGS...]
#       tessera-agent CMD with that key store and state.

if [ -n "${TS_AGENT_SOURCED:-}" ]; then
    return 0
fi
TS_AGENT_SOURCED=1

AGENT="${TS_BUILD_DIR:-build}/bin/tessera-agent"

agent() {
    local cmd=$1
    shift
    "$AGENT" "$cmd" --keystore "$AGENT_KS" --state "$AGENT_STATE" "$@"
}

agent_enroll_by_claim() {
    local work=$1 inst=$2
    [ -x "$AGENT" ] || fail "no $AGENT: build the tessera-agent target"
    mkdir -p "$work"
    AGENT_KS="soft:$work/agent-ks?pin-value=4321"
    AGENT_STATE=$work/agent-state
    run_ok "a device key store" "$TESSERA" keystore init --keystore "$AGENT_KS"
    run_ok "agent init" agent init
    AGENT_UID=$OUT
    "$TESSERA" claim create --dir "$inst" | tail -n1 >"$work/agent.code"
    run_ok "claim inject" agent claim inject "$work/agent.code"
    run_ok "enroll by claim code" agent enroll --server "$SERVE_URL" --trust "$inst/root.pem"
    AGENT_SERIAL=$(sed -n 's/^serial: *//p' <<<"$OUT")
    [ -n "$AGENT_SERIAL" ] || fail "no serial from enroll: $OUT"
    AGENT_PUB=$("$TESSERA" keystore pubkey --keystore "$AGENT_KS" --label identity)
}
