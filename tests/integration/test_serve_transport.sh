#!/usr/bin/env bash
# tessera serve, the transport: TLS policy (versions and TLS 1.2 suites), health, metrics and the
# OpenAPI document, body and header-time limits, keep-alive and the idle timeout, and a graceful
# stop on SIGTERM that lets a request in flight finish.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/serve.sh"

DIR="$TS_TEST_TMP/inst"
serve_init "$DIR"
serve_ca "$DIR"
CA="$DIR/ca-chain.pem"
serve_start "$DIR" --threads 2 --request-timeout 2 --idle-timeout 3 --max-body 1024
PORT=${SERVE_URL##*:}

# A small TLS client for what curl cannot do: drip bytes, keep a connection idle, upload slowly.
CLIENT="$TS_TEST_TMP/client.py"
cat >"$CLIENT" <<'EOF'
import socket, ssl, sys, time

mode, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="127.0.0.1")


def read_reply(limit):
    s.settimeout(limit)
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep:
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        if len(body) >= int(line.split(b":")[1]):
                            return data
    except socket.timeout:
        pass
    return data


if mode == "slow-headers":
    # One header byte a second: far slower than the request time limit allows.
    s.sendall(b"GET /healthz HTTP/1.1\r\n")
    rest = b"Host: 127.0.0.1\r\nX-Slow: " + b"a" * 30 + b"\r\n\r\n"
    for i, byte in enumerate(rest):
        try:
            s.sendall(bytes([byte]))
            s.settimeout(1.0)
            data = s.recv(4096)
        except socket.timeout:
            continue
        except (ssl.SSLError, OSError):
            data = b""
        if data == b"":
            print("closed after %d of %d header bytes" % (i, len(rest)))
            sys.exit(0)
        print("unexpected reply: %r" % data[:60])
        sys.exit(1)
    print("every header byte was accepted")
    sys.exit(1)
elif mode == "drip-body":
    # A body a byte every half second: the whole request takes longer than the limit.
    s.sendall(b"POST /api/v1/tenants HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 40\r\n\r\n")
    for i in range(40):
        try:
            s.sendall(b"a")
            s.settimeout(0.5)
            data = s.recv(4096)
        except socket.timeout:
            continue
        except (ssl.SSLError, OSError):
            data = b""
        if data == b"":
            print("closed after %d of 40 body bytes" % i)
            sys.exit(0)
        print("unexpected reply: %r" % data[:60])
        sys.exit(1)
    print("the whole body was accepted")
    sys.exit(1)
elif mode == "idle":
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    print(read_reply(10).split(b"\r\n")[0].decode())
    s.settimeout(30)
    try:
        data = s.recv(4096)
    except (ssl.SSLError, OSError):
        data = b""
    print("closed when idle" if data == b"" else "still open: %r" % data[:60])
elif mode == "slow-body":
    body = b'{"slow":true}'
    s.sendall(b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n"
              % len(body))
    print("started", flush=True)
    for byte in body:
        time.sleep(0.1)
        s.sendall(bytes([byte]))
    reply = read_reply(10)
    print(reply.split(b"\r\n")[0].decode())
    print(reply.partition(b"\r\n\r\n")[2].decode())
EOF

# --- TLS -----------------------------------------------------------------------------------------
run_ok "GET /healthz over TLS, server verified with the root" \
    curl -sS --fail --cacert "$CA" "$SERVE_URL/healthz"
assert_match "$OUT" '^\{"status":"ok"\}$' "healthz answers ok"

s_client() {
    echo Q | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$CA" "$@" 2>&1
}

# The client offers the old versions (security level 0 lets it); the server must refuse them.
for v in tls1 tls1_1; do
    if out=$(s_client "-$v" -cipher 'DEFAULT:@SECLEVEL=0'); then
        :
    fi
    assert_match "$out" 'alert protocol version' "-$v refused by the server"
done
for c in ECDHE-ECDSA-AES128-SHA256 ECDHE-ECDSA-AES128-SHA AES128-GCM-SHA256 AES256-SHA256; do
    out=$(s_client -tls1_2 -cipher "$c" || true)
    assert_match "$out" 'alert handshake failure' "TLS 1.2 $c refused"
done
for c in ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-ECDSA-AES256-GCM-SHA384; do
    out=$(s_client -tls1_2 -cipher "$c")
    assert_match "$out" "Cipher is $c" "TLS 1.2 $c accepted"
    assert_match "$out" 'Verify return code: 0 \(ok\)' "$c: the server chain verifies"
done
out=$(s_client -tls1_3)
assert_match "$out" 'New, TLSv1.3, Cipher is TLS_' "TLS 1.3 accepted"
HEALTHZ_OK=1

# --- Keep-alive ----------------------------------------------------------------------------------
run_ok "two requests with one curl" \
    curl -sS -v --fail --cacert "$CA" "$SERVE_URL/healthz" "$SERVE_URL/healthz"
assert_match "$ERR" 'Re-using existing connection' "the second request reuses the connection"
HEALTHZ_OK=$((HEALTHZ_OK + 2))

run_ok "a keep-alive connection left idle" python3 "$CLIENT" idle "$PORT" "$CA"
assert_match "$OUT" '^HTTP/1.1 200 OK' "the request before going idle is answered"
assert_match "$OUT" 'closed when idle' "the idle connection is closed by the server"
HEALTHZ_OK=$((HEALTHZ_OK + 1))

# --- Limits --------------------------------------------------------------------------------------
head -c 4096 /dev/zero | tr '\0' a >"$TS_TEST_TMP/big"
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$CA" -X POST \
    --data-binary @"$TS_TEST_TMP/big" "$SERVE_URL/healthz" || true)
case "$code" in
413 | 000) pass "a body over --max-body is refused ($code)" ;;
*) fail "a body over --max-body answered $code" ;;
esac

DISABLE="$SERVE_URL/api/v1/tenants/default/users/admin/disable"
run_ok "a body where the route takes none" \
    curl -sS -w ' %{http_code}' --cacert "$CA" -X POST --data-binary '{"a":1}' "$DISABLE"
assert_match "$OUT" '"code":"invalid","message":"[^"]*takes no request body.* 400$' \
    "400 invalid for a body the route does not take"
run_ok "no body where the route needs one" \
    curl -sS -w ' %{http_code}' --cacert "$CA" -X POST "$SERVE_URL/api/v1/tenants"
assert_match "$OUT" '"code":"invalid","message":"[^"]*needs a request body.* 400$' \
    "400 invalid for a missing body"
run_ok "an unknown path" curl -sS -w ' %{http_code}' --cacert "$CA" "$SERVE_URL/nowhere"
assert_match "$OUT" '^\{"error":\{"code":"not_found","message":"[^"]+"\}\} 404$' "404 JSON error"
run_ok "a wrong method" curl -sS -i --cacert "$CA" -X DELETE "$SERVE_URL/healthz"
assert_match "$OUT" 'HTTP/1.1 405' "405 for a method the path does not take"
assert_match "$OUT" 'Allow: GET' "405 names the allowed methods"
assert_match "$OUT" '"code":"unsupported"' "405 JSON error"

run_ok "headers dripped a byte a second" python3 "$CLIENT" slow-headers "$PORT" "$CA"
assert_match "$OUT" '^closed after [0-9]+ of [0-9]+ header bytes$' \
    "the slow request is cut off before its headers are complete"

run_ok "a body dripped a byte every half second" python3 "$CLIENT" drip-body "$PORT" "$CA"
assert_match "$OUT" '^closed after [0-9]+ of 40 body bytes$' \
    "the slow body is cut off before it is complete"

# --- Metrics and OpenAPI -------------------------------------------------------------------------
run_ok "GET /metrics" curl -sS --fail --cacert "$CA" "$SERVE_URL/metrics"
assert_match "$OUT" "tessera_http_requests_total\\{method=\"GET\",route=\"/healthz\",status=\"200\"\\} $HEALTHZ_OK\$" \
    "metrics count the $HEALTHZ_OK healthz requests"
assert_match "$OUT" 'tessera_http_requests_total\{method="POST",route="/api/v1/tenants/\{tenant\}/users/\{user\}/disable",status="400"\} 1' \
    "metrics count the refused body by its route"
assert_match "$OUT" 'tessera_http_request_duration_seconds_bucket\{method="GET",route="/healthz",le="\+Inf"\}' \
    "metrics have a latency histogram"

run_ok "GET /api/v1/openapi.json" curl -sS --fail --cacert "$CA" "$SERVE_URL/api/v1/openapi.json"
printf '%s' "$OUT" >"$TS_TEST_TMP/openapi.json"
run_ok "openapi.json parses" python3 -c '
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["openapi"].startswith("3.0"), doc["openapi"]
print(" ".join(sorted(doc["paths"])))
assert doc["paths"]["/healthz"]["get"]["responses"]
' "$TS_TEST_TMP/openapi.json"
assert_match "$OUT" '(^| )/healthz( |$)' "openapi.json lists /healthz"
assert_match "$OUT" '(^| )/api/v1/openapi.json( |$)' "openapi.json lists itself"

# --- Graceful stop -------------------------------------------------------------------------------
python3 "$CLIENT" slow-body "$PORT" "$CA" >"$TS_TEST_TMP/slow.out" 2>&1 &
CLIENT_PID=$!
for _ in $(seq 1 50); do
    grep -q started "$TS_TEST_TMP/slow.out" && break
    sleep 0.1
done
kill -TERM "$SERVE_PID"
wait "$CLIENT_PID" || fail "the slow client failed: $(cat "$TS_TEST_TMP/slow.out")"
out=$(cat "$TS_TEST_TMP/slow.out")
assert_match "$out" 'HTTP/1.1 405' "the request in flight at SIGTERM is answered"
serve_stop
[ "$SERVE_STATUS" = 0 ] || fail "tessera serve exited $SERVE_STATUS after SIGTERM"
pass "tessera serve exits 0 after SIGTERM"
assert_match "$(cat "$SERVE_LOG")" 'stopping \(SIGTERM\)' "the log says why it stops"
if grep -Eq 'tsk_[0-9a-f]{16}' "$SERVE_LOG"; then
    fail "a token reached the log"
fi
pass "no token in the log"

finish
