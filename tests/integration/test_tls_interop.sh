#!/usr/bin/env bash
# Mutual TLS between stock openssl (s_server, s_client) and ts_tls_peer, whose private key stays
# in a key store (a SoftHSM2 token, and a soft: store) and signs through the Tessera provider.
# Both directions, TLS 1.3 and TLS 1.2 (ECDHE-ECDSA-AES128-GCM-SHA256), plus refusals of clients
# whose certificate is not from the CA, or who have none.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

build=${TS_BUILD_DIR:?TS_BUILD_DIR must name the build directory}
tessera=$TESSERA
peer=$build/bin/ts_tls_peer
module=$(softhsm_module)
work=$TS_TEST_TMP

# expect_in FILE TEXT: the file holds TEXT on some line (fixed string).
expect_in() {
    grep -qF -- "$2" "$1" || {
        echo "--- $1" >&2
        cat "$1" >&2
        fail "'$2' not found in $(basename "$1")"
    }
}

# refused_cleanly FILE RC: a refusal is exit status 1 with no sanitizer report (ASan builds
# also exit non-zero on a memory error, which must not pass for a refusal).
refused_cleanly() {
    [ "$2" -eq 1 ] || fail "$(basename "$1"): exit $2, want 1 for a refusal"
    if grep -qE "Sanitizer|runtime error" "$1"; then
        cat "$1" >&2
        fail "$(basename "$1"): sanitizer report"
    fi
}

# A SoftHSM2 of our own: tests run in parallel and must not share tokens.
softhsm_setup

pin=interop-user-pin
so_pin=interop-so-pin
declare -A stores=(
    [pkcs11]="pkcs11:token=interop?module-path=$module&pin-value=$pin"
    [soft]="soft:$work/softstore?pin-value=$pin"
)

# --- A test CA and the openssl peers' keys, with stock openssl -------------------------------
cat >"$work/ca.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = Tessera Interop Test CA
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
ossl_quiet() {
    "$@" >"$work/openssl.log" 2>&1 || {
        cat "$work/openssl.log" >&2
        fail "openssl: $*"
    }
}
new_ca() { # new_ca NAME SUBJECT
    ossl_quiet openssl req -x509 -config "$work/ca.cnf" -extensions v3_ca -subj "$2" \
        -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/$1.key" \
        -out "$work/$1.pem" -days 2
}
issue() { # issue CA CSR OUT
    ossl_quiet openssl x509 -req -in "$2" -CA "$work/$1.pem" -CAkey "$work/$1.key" \
        -CAcreateserial -CAserial "$work/$1.srl" -days 2 -extfile "$work/ca.cnf" \
        -extensions leaf -out "$3"
}
openssl_peer() { # openssl_peer NAME SUBJECT CA
    ossl_quiet openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$work/$1.key" -out "$work/$1.csr" -subj "$2"
    issue "$3" "$work/$1.csr" "$work/$1.pem"
}

new_ca ca "/CN=Tessera Interop Test CA"
new_ca rogue "/CN=Tessera Interop Test CA"
openssl_peer ossl "/O=Tessera Test/CN=openssl-peer" ca
openssl_peer intruder "/O=Tessera Test/CN=openssl-peer" rogue
pass "test CA, openssl peer certificate and a rogue CA made with stock openssl"

# --- The key-store keys: generated inside, certified from a CSR the CLI makes ---------------
for b in pkcs11 soft; do
    uri=${stores[$b]}
    "$tessera" keystore init --so-pin "$so_pin" --keystore "$uri" >/dev/null ||
        fail "tessera keystore init ($b)"
    "$tessera" keystore genkey --label tls --curve P-256 --keystore "$uri" >/dev/null ||
        fail "tessera keystore genkey ($b)"
    "$tessera" keystore csr --label tls --subject "/O=Tessera Test/CN=tessera-$b" \
        --out "$work/ks-$b.csr" --keystore "$uri" || fail "tessera keystore csr ($b)"
    issue ca "$work/ks-$b.csr" "$work/ks-$b.pem"
    pass "$b: key generated in the store and certified by the test CA"
done

# reversed TEXT: what s_server -rev answers to the line TEXT.
reversed() {
    local s=$1 r="" i
    for ((i = ${#s} - 1; i >= 0; i--)); do
        r+=${s:i:1}
    done
    printf '%s' "$r"
}

# wait_for_file FILE PID: bounded wait until FILE exists, failing early if PID died.
wait_for_file() {
    local i
    for i in $(seq 1 200); do
        [ -s "$1" ] && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# protocol_args 1.2|1.3: the options of each side for the protocol and cipher asked for.
protocol_args() {
    if [ "$1" = 1.3 ]; then
        want_proto=TLSv1.3
        want_cipher=TLS_AES_128_GCM_SHA256
        peer_args=(--tls1.3 --cipher "$want_cipher")
        ossl_args=(-tls1_3 -ciphersuites "$want_cipher")
    else
        want_proto=TLSv1.2
        want_cipher=ECDHE-ECDSA-AES128-GCM-SHA256
        peer_args=(--tls1.2 --cipher "$want_cipher")
        ossl_args=(-tls1_2 -cipher "$want_cipher")
    fi
}

# (a) openssl s_server, ts_tls_peer client. s_server -rev answers each line reversed.
run_s_server_case() { # BACKEND PROTO
    local b=$1 tag="a-$1-$2" out pid port rc=0
    protocol_args "$2"
    out=$work/$tag
    timeout 60 openssl s_server -accept 127.0.0.1:0 -naccept 1 -rev -Verify 1 \
        -verify_return_error -cert "$work/ossl.pem" -key "$work/ossl.key" -CAfile "$work/ca.pem" \
        "${ossl_args[@]}" >"$out.server" 2>&1 </dev/null &
    pid=$!
    on_exit kill "$pid"
    for _ in $(seq 1 200); do
        port=$(sed -n 's/^ACCEPT 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$out.server")
        [ -n "$port" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    [ -n "$port" ] || {
        cat "$out.server" >&2
        fail "$tag: s_server did not start"
    }
    "$peer" client --keystore "${stores[$b]}" --label tls --cert "$work/ks-$b.pem" \
        --ca "$work/ca.pem" "${peer_args[@]}" --line "abc tessera $b" \
        --connect "127.0.0.1:$port" >"$out.client" 2>&1 || rc=$?
    wait "$pid" || true
    if [ "$rc" -ne 0 ]; then
        cat "$out.client" "$out.server" >&2
        fail "$tag: ts_tls_peer client exited $rc"
    fi
    expect_in "$out.client" "protocol: $want_proto"
    expect_in "$out.client" "cipher: $want_cipher"
    expect_in "$out.client" "peer: CN=openssl-peer,O=Tessera Test"
    expect_in "$out.client" "received: $(reversed "abc tessera $b")"
    expect_in "$out.server" "Peer certificate: O = Tessera Test, CN = tessera-$b"
    expect_in "$out.server" "Verification: OK"
    expect_in "$out.server" "Protocol version: $want_proto"
    expect_in "$out.server" "Ciphersuite: $want_cipher"
    pass "$tag: s_server verified ts_tls_peer's $b key ($want_proto $want_cipher)"
}

# start_peer_server BACKEND TAG PEER_ARGS...: ts_tls_peer server in the background; sets port.
start_peer_server() {
    local b=$1 tag=$2
    shift 2
    rm -f "$work/$tag.port"
    "$peer" server --keystore "${stores[$b]}" --label tls --cert "$work/ks-$b.pem" \
        --ca "$work/ca.pem" "$@" --listen 127.0.0.1:0 --port-file "$work/$tag.port" \
        >"$work/$tag.server" 2>&1 &
    server_pid=$!
    on_exit kill "$server_pid"
    wait_for_file "$work/$tag.port" "$server_pid" || {
        cat "$work/$tag.server" >&2
        fail "$tag: ts_tls_peer server did not start"
    }
    port=$(cat "$work/$tag.port")
}

# (b) ts_tls_peer server, openssl s_client.
run_s_client_case() { # BACKEND PROTO
    local b=$1 tag="b-$1-$2" out rc=0 crc=0
    protocol_args "$2"
    out=$work/$tag
    start_peer_server "$b" "$tag" "${peer_args[@]}"
    # -ign_eof: after sending its line, s_client waits for the server's answer and close.
    echo "hello from s_client" | timeout 60 openssl s_client -connect "127.0.0.1:$port" \
        -cert "$work/ossl.pem" -key "$work/ossl.key" -CAfile "$work/ca.pem" -verify 1 \
        -verify_return_error -ign_eof "${ossl_args[@]}" >"$out.client" 2>&1 || crc=$?
    wait "$server_pid" || rc=$?
    if [ "$rc" -ne 0 ] || [ "$crc" -ne 0 ]; then
        cat "$out.server" "$out.client" >&2
        fail "$tag: ts_tls_peer server exited $rc, s_client $crc"
    fi
    expect_in "$out.server" "protocol: $want_proto"
    expect_in "$out.server" "cipher: $want_cipher"
    expect_in "$out.server" "peer: CN=openssl-peer,O=Tessera Test"
    expect_in "$out.server" "received: hello from s_client"
    expect_in "$out.client" "subject=O = Tessera Test, CN = tessera-$b"
    expect_in "$out.client" "Verify return code: 0 (ok)"
    expect_in "$out.client" "Protocol  : $want_proto"
    expect_in "$out.client" "Cipher    : $want_cipher"
    expect_in "$out.client" "hello from the tessera server"
    pass "$tag: ts_tls_peer's $b key verified by s_client ($want_proto $want_cipher)"
}

for b in pkcs11 soft; do
    for proto in 1.3 1.2; do
        run_s_server_case "$b" "$proto"
        run_s_client_case "$b" "$proto"
    done
done

# --- Refusals: the server must not accept a client the CA did not certify -------------------
refused_case() { # TAG EXPECTED_MESSAGE S_CLIENT_CERT_ARGS...
    local tag=$1 want=$2 rc=0
    shift 2
    start_peer_server pkcs11 "$tag" --tls1.3
    echo "let me in" | timeout 60 openssl s_client -connect "127.0.0.1:$port" "$@" \
        -CAfile "$work/ca.pem" -ign_eof -tls1_3 >"$work/$tag.client" 2>&1 || true
    wait "$server_pid" || rc=$?
    [ "$rc" -ne 0 ] || {
        cat "$work/$tag.server" >&2
        fail "$tag: ts_tls_peer server accepted the client"
    }
    refused_cleanly "$work/$tag.server" "$rc"
    expect_in "$work/$tag.server" "$want"
    if grep -q '^received:' "$work/$tag.server"; then
        fail "$tag: the refused client's line was read"
    fi
    pass "$tag: refused (exit $rc): $want"
}
refused_case refuse-rogue "peer certificate rejected: unable to get local issuer certificate" \
    -cert "$work/intruder.pem" -key "$work/intruder.key"
refused_case refuse-nocert "peer did not return a certificate"

# --- and the client must not accept a server the CA did not certify --------------------------
tag=refuse-rogue-server
timeout 60 openssl s_server -accept 127.0.0.1:0 -naccept 1 -rev -cert "$work/intruder.pem" \
    -key "$work/intruder.key" -tls1_3 >"$work/$tag.server" 2>&1 </dev/null &
pid=$!
on_exit kill "$pid"
port=""
for _ in $(seq 1 200); do
    port=$(sed -n 's/^ACCEPT 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$work/$tag.server")
    [ -n "$port" ] && break
    sleep 0.05
done
[ -n "$port" ] || fail "$tag: s_server did not start"
rc=0
"$peer" client --keystore "${stores[pkcs11]}" --label tls --cert "$work/ks-pkcs11.pem" \
    --ca "$work/ca.pem" --tls1.3 --connect "127.0.0.1:$port" >"$work/$tag.client" 2>&1 || rc=$?
wait "$pid" || true
[ "$rc" -ne 0 ] || fail "$tag: ts_tls_peer client accepted the rogue server"
refused_cleanly "$work/$tag.client" "$rc"
expect_in "$work/$tag.client" "peer certificate rejected: unable to get local issuer certificate"
if grep -q '^received:' "$work/$tag.client"; then
    fail "$tag: the client exchanged data with the rogue server"
fi
pass "$tag: ts_tls_peer client refused a server certificate from another CA (exit $rc)"

finish
