#!/usr/bin/env bash
# Firmware releases on a running `tessera serve` (docs/firmware-service.md): `tessera fw publish`
# refuses a tampered file, a file signed by a certificate without codeSigning and one signed under
# another instance's root, changing nothing; publishes for a group; a device of the group
# downloads the release over mutual TLS (same SHA-256) and resumes with Range; a device outside
# the group and a token of another tenant get 404; a status report with the hardware id and an
# older version gets an AGENT / FW_UPDATE offer whose data names the release, and the device's
# answer is recorded against the release.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/serve.sh"

CLIENT="${TS_BUILD_DIR:-build}/bin/session_client"
[ -x "$CLIENT" ] || fail "no $CLIENT: build it first"
unset TESSERA_OPERATOR
DIR=$TS_TEST_TMP/ca
W=$TS_TEST_TMP/work
mkdir -p "$W"
export TESSERA_DIR=$DIR
ks="soft:$W/fwks?pin-value=fw-publish-pin-1234"

serve_init "$DIR"
ROOT=$DIR/root.pem
run_ok "issuing.pem" "$TESSERA" ca show --issuing --out "$W/issuing.pem"

# A firmware signer of the instance, and an image signed by it.
run_ok "keystore init" "$TESSERA" keystore init --keystore "$ks"
run_ok "genkey" "$TESSERA" keystore genkey --keystore "$ks" --label fw
run_ok "csr" "$TESSERA" keystore csr --keystore "$ks" --label fw --subject "/CN=release-signer" \
    --out "$W/fw.csr"
run_ok "signer" "$TESSERA" cert issue --csr "$W/fw.csr" --profile firmware-signer --out "$W/signer.pem"
head -c 300000 /dev/urandom >"$W/image.bin"
run_ok "fw sign" "$TESSERA" fw sign --key "$ks" --label fw --cert "$W/signer.pem" \
    --chain "$W/issuing.pem" --version 9 --hw board-x --chunk-size 65536 "$W/image.bin" \
    -o "$W/update.tsfw"

# Devices: two in group "line-a", one outside it.
issue() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/$1.key" \
        -subj "/CN=$1" -out "$W/$1.csr" 2>/dev/null || fail "openssl req for $1"
    run_ok "cert issue for $1" "$TESSERA" cert issue --csr "$W/$1.csr" --profile device \
        --out "$W/$1.pem"
}
issue dev-fw-1
issue dev-fw-2
issue dev-fw-out
run_ok "group create" "$TESSERA" group create line-a
run_ok "group add" "$TESSERA" group add line-a --device dev-fw-1 --device dev-fw-2

# --- refusals: nothing is recorded --------------------------------------------------------------
python3 -c 'import sys; b=bytearray(open(sys.argv[1],"rb").read()); b[-5000]^=1; open(sys.argv[2],"wb").write(b)' \
    "$W/update.tsfw" "$W/tampered.tsfw"
expect_status 1 "a tampered file" "$TESSERA" fw publish "$W/tampered.tsfw" --group line-a
assert_match "$ERR" 'refused: .*chunk 4 does not match its digest' "names the bad chunk"

# Signed by a device certificate (no codeSigning): the manifest re-signed with stock OpenSSL.
run_ok "inspect" "$TESSERA" fw inspect --manifest-out "$W/manifest.der" "$W/update.tsfw"
run_ok "manifest content" openssl cms -verify -inform DER -in "$W/manifest.der" -CAfile "$ROOT" \
    -purpose any -out "$W/manifest.json"
openssl cms -sign -binary -nodetach -outform DER -md sha256 -signer "$W/dev-fw-1.pem" \
    -inkey "$W/dev-fw-1.key" -certfile "$W/issuing.pem" -in "$W/manifest.json" \
    -out "$W/bad-manifest.der" 2>/dev/null || fail "openssl cms -sign"
python3 - "$W/update.tsfw" "$W/bad-manifest.der" "$W/nonsigner.tsfw" <<'PY'
import struct, sys
f = open(sys.argv[1], "rb").read()
mlen, plen = struct.unpack(">IQ", f[8:20])
m = open(sys.argv[2], "rb").read()
open(sys.argv[3], "wb").write(f[:8] + struct.pack(">IQ", len(m), plen) + m + f[20 + mlen:])
PY
expect_status 1 "a file signed without codeSigning" "$TESSERA" fw publish "$W/nonsigner.tsfw" --all
assert_match "$ERR" 'refused: .*([Cc]ode[Ss]igning|code signing)' "names the missing EKU"

# Signed under another instance's root.
OTHER=$TS_TEST_TMP/other
oks="soft:$W/oks?pin-value=fw-publish-pin-1234"
run_ok "other init" "$TESSERA" init --dir "$OTHER" --keystore "soft:$OTHER/ks?pin-value=1234" \
    --operator test --url https://127.0.0.1
run_ok "other issuing" "$TESSERA" ca show --dir "$OTHER" --issuing --out "$W/o-issuing.pem"
run_ok "other keystore" "$TESSERA" keystore init --keystore "$oks"
run_ok "other genkey" "$TESSERA" keystore genkey --keystore "$oks" --label fw
run_ok "other csr" "$TESSERA" keystore csr --keystore "$oks" --label fw --subject "/CN=other" \
    --out "$W/o.csr"
run_ok "other signer" "$TESSERA" cert issue --dir "$OTHER" --csr "$W/o.csr" \
    --profile firmware-signer --out "$W/o-signer.pem"
run_ok "other sign" "$TESSERA" fw sign --key "$oks" --label fw --cert "$W/o-signer.pem" \
    --chain "$W/o-issuing.pem" --version 9 --hw board-x "$W/image.bin" -o "$W/other.tsfw"
expect_status 1 "a file of another root" "$TESSERA" fw publish "$W/other.tsfw" --all
assert_match "$ERR" 'refused: .*does not chain to a trusted root' "names the chain"
run_ok "releases" "$TESSERA" fw releases
assert_eq "$OUT" "" "no release after the refusals"
[ -z "$(ls -A "$DIR/firmware" 2>/dev/null)" ] || fail "no file kept after refusals"
pass "no file kept after the refusals"

expect_status 1 "an unknown group" "$TESSERA" fw publish "$W/update.tsfw" --group nope
assert_match "$ERR" "no group 'nope'" "names the group"
expect_status 2 "no target" "$TESSERA" fw publish "$W/update.tsfw"

# --- publish for the group -------------------------------------------------------------------------
run_ok "publish" "$TESSERA" fw publish "$W/update.tsfw" --group line-a
assert_match "$OUT" '^published: release [0-9a-f]{32} version 9 hw board-x for group line-a$' \
    "publish says what it did"
REL=$(sed -n 's/^published: release \([0-9a-f]*\) .*/\1/p' <<<"$OUT")
SHA=$(sha256sum "$W/update.tsfw" | cut -d' ' -f1)
[ -f "$DIR/firmware/$SHA.tsfw" ] || fail "the file is kept under its SHA-256"
pass "kept as firmware/<sha256>.tsfw"
run_ok "releases" "$TESSERA" fw releases
assert_match "$OUT" "^$REL	9	board-x	group	line-a	active	[^	]+	$SHA\$" "listed with the file's SHA-256"
LOCAL_RELEASES=$OUT
run_ok "audit" "$TESSERA" audit list
assert_match "$OUT" 'firmware.publish' "audited"

serve_start "$DIR" || fail "tessera serve did not start"
FW_URL=$SERVE_URL/agent/v1/firmware/$REL
run_ok "releases (remote)" "$TESSERA" fw releases --server "$SERVE_URL" --token "$ADMIN_TOKEN" \
    --cacert "$ROOT"
assert_eq "$(cut -f1-6,8 <<<"$OUT")" "$(cut -f1-6,8 <<<"$LOCAL_RELEASES")" \
    "through the service: the same release and SHA-256"

# --- device download over mutual TLS --------------------------------------------------------------
dl() { # dl NAME OUT [curl args...]: sets STATUS
    local n=$1 o=$2
    shift 2
    STATUS=$(curl -sS -o "$o" -w '%{http_code}' --cacert "$ROOT" --cert "$W/$n.pem" \
        --key "$W/$n.key" "$@" "$FW_URL")
}
dl dev-fw-1 "$W/got.tsfw"
assert_eq "$STATUS" 200 "the device downloads its release"
assert_eq "$(sha256sum <"$W/got.tsfw" | cut -d' ' -f1)" "$SHA" "the same bytes"
SIZE=$(stat -c %s "$W/update.tsfw")
head -c 100000 "$W/update.tsfw" >"$W/part.tsfw"
dl dev-fw-2 "$W/rest.tsfw" -r 100000-
assert_eq "$STATUS" 206 "a range answers 206"
cat "$W/part.tsfw" "$W/rest.tsfw" >"$W/resumed.tsfw"
run_ok "the resumed download is the file" cmp "$W/resumed.tsfw" "$W/update.tsfw"
STATUS=$(curl -sS -D "$W/h" -o /dev/null -w '%{http_code}' --cacert "$ROOT" --cert "$W/dev-fw-2.pem" \
    --key "$W/dev-fw-2.key" -r "$SIZE-" "$FW_URL")
assert_eq "$STATUS" 416 "a range past the end answers 416"
assert_match "$(tr -d '\r' <"$W/h")" "Content-Range: bytes \*/$SIZE" "with the size"
dl dev-fw-out "$W/x"
assert_eq "$STATUS" 404 "a device outside the group gets 404"
STATUS=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$ROOT" "$FW_URL")
assert_eq "$STATUS" 401 "no client certificate: 401"

# --- REST: another tenant's token gets 404 ------------------------------------------------------
api() { # api METHOD PATH TOKEN: sets STATUS, BODY
    STATUS=$(curl -sS -X "$1" -o "$W/api.body" -w '%{http_code}' --cacert "$ROOT" \
        -H "Authorization: Bearer $3" "$SERVE_URL$2")
    BODY=$(cat "$W/api.body")
}
run_ok "tenant beta" "$TESSERA" tenant create beta
run_ok "beta admin" "$TESSERA" user create admin-b --tenant beta --role admin
run_ok "beta token" "$TESSERA" token create --tenant beta --user admin-b --name t
BETA_TOKEN=$(tail -n1 <<<"$OUT")
api GET "/api/v1/tenants/default/firmware/$REL" "$BETA_TOKEN"
assert_eq "$STATUS" 404 "a token of another tenant gets 404"
api GET "/api/v1/tenants/beta/firmware/$REL" "$BETA_TOKEN"
assert_eq "$STATUS" 404 "the release is not in the other tenant"
api GET "/api/v1/tenants/default/firmware/$REL" "$ADMIN_TOKEN"
assert_eq "$STATUS" 200 "the admin reads the release"
assert_match "$BODY" "\"sha256\":\"$SHA\"" "with its SHA-256"

# --- the offer in a session ----------------------------------------------------------------------
# pb.py report UID FW HW OUT | offer REPLY: a StatusReport with hardware_id (field 10), and the
# FW_UPDATE requests of a ServiceMessage as "request ID ENDPOINT OPERATION DATA".
cat >"$W/pb.py" <<'PY'
import sys
def varint(n):
    out = b""
    while True:
        b = n & 0x7f
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out
def field(num, data): return varint(num << 3 | 2) + varint(len(data)) + data
def rd(buf, i):
    n = s = 0
    while True:
        b = buf[i]; i += 1; n |= (b & 0x7f) << s; s += 7
        if b < 0x80: return n, i
def fields(buf):
    i, out = 0, []
    while i < len(buf):
        key, i = rd(buf, i)
        if key & 7 == 0:
            v, i = rd(buf, i)
        elif key & 7 == 2:
            n, i = rd(buf, i); v = buf[i:i + n]; i += n
        else:
            raise SystemExit("unexpected wire type")
        out.append((key >> 3, v))
    return out
if sys.argv[1] == "report":
    uid, fw, hw, out = sys.argv[2:6]
    st = field(1, uid.encode()) + field(3, fw.encode()) + field(10, hw.encode())
    open(out, "wb").write(varint(1 << 3) + varint(1) + field(3, st))
else:
    for num, v in fields(open(sys.argv[2], "rb").read()):
        if num == 3:
            r = dict(fields(v))
            print("request", r.get(1), r.get(2), r.get(3), r.get(5, b"").decode())
PY
SESSION_URL=$SERVE_URL/agent/v1/session
run_ok "report v3" python3 "$W/pb.py" report dev-fw-1 3 board-x "$W/r1.bin"
run_capture "$CLIENT" post "$SESSION_URL" "$ROOT" "$W/dev-fw-1.pem" "$W/dev-fw-1.key" \
    application/x-protobuf "$W/r1.bin" "$W/r1.reply"
assert_eq "$OUT" 200 "the session is answered"
run_ok "offer" python3 "$W/pb.py" offer "$W/r1.reply"
assert_match "$OUT" "^request [0-9]+ 3 12 \{\"release\":\"$REL\",\"sha256\":\"$SHA\",\"url\":\"https://127\.0\.0\.1:[0-9]+/agent/v1/firmware/$REL\",\"version\":9\}$" \
    "AGENT (3) FW_UPDATE (12) with the release, SHA-256, URL and version"
OFFER_ID=$(awk '{print $2}' <<<"$OUT")
api GET "/api/v1/tenants/default/firmware/$REL" "$ADMIN_TOKEN"
assert_match "$BODY" "\"request_id\":$OFFER_ID,\"device\":\"dev-fw-1\",\"state\":\"sent\"|\"device\":\"dev-fw-1\".*\"state\":\"sent\"" \
    "the release lists the offer as sent"
api GET "/api/v1/tenants/default/devices/dev-fw-1" "$ADMIN_TOKEN"
assert_match "$BODY" '"firmware":\{"version":"3","hw":"board-x"|"hw":"board-x"' "GET device shows the reported firmware"
run_ok "device show" "$TESSERA" device show dev-fw-1
assert_match "$OUT" 'firmware: +3' "device show: firmware"
assert_match "$OUT" 'hardware: +board-x' "device show: hardware"

# The answer an agent without FW_UPDATE gives: "unsupported"; recorded, never offered again.
SID=$("$CLIENT" dump "$W/r1.reply" | sed -n 's/^session //p')
run_ok "results" "$CLIENT" results "$SID" "$W/a1.bin" "$OFFER_ID:fail:unsupported"
run_capture "$CLIENT" post "$SESSION_URL" "$ROOT" "$W/dev-fw-1.pem" "$W/dev-fw-1.key" \
    application/x-protobuf "$W/a1.bin" "$W/a1.reply"
assert_eq "$OUT" 200 "the answer is taken"
run_ok "dump" "$CLIENT" dump "$W/a1.reply"
assert_match "$OUT" '^done 1$' "and the session is done"
api GET "/api/v1/tenants/default/firmware/$REL" "$ADMIN_TOKEN"
assert_match "$BODY" '"state":"failed"' "the offer is failed"
assert_match "$BODY" '"error_code":"unsupported"' "with the device's error code"
run_capture "$CLIENT" post "$SESSION_URL" "$ROOT" "$W/dev-fw-1.pem" "$W/dev-fw-1.key" \
    application/x-protobuf "$W/r1.bin" "$W/r2.reply"
run_ok "offer again?" python3 "$W/pb.py" offer "$W/r2.reply"
assert_eq "$OUT" "" "an agent that answered unsupported is not offered it again"

# Up to date, another hardware, or outside the group: no offer.
for args in "dev-fw-2 9 board-x" "dev-fw-2 3 board-y" "dev-fw-out 3 board-x"; do
    set -- $args
    run_ok "report $args" python3 "$W/pb.py" report "$1" "$2" "$3" "$W/r.bin"
    run_capture "$CLIENT" post "$SESSION_URL" "$ROOT" "$W/$1.pem" "$W/$1.key" \
        application/x-protobuf "$W/r.bin" "$W/r.reply"
    assert_eq "$OUT" 200 "session of $1"
    run_ok "offer?" python3 "$W/pb.py" offer "$W/r.reply"
    assert_eq "$OUT" "" "no offer for $args"
done

# --- withdraw ---------------------------------------------------------------------------------
run_ok "withdraw" "$TESSERA" fw withdraw "$REL"
assert_eq "$OUT" "withdrawn: release $REL" "withdraw says so"
dl dev-fw-1 "$W/x"
assert_eq "$STATUS" 404 "a withdrawn release is not served"
expect_status 1 "withdraw twice" "$TESSERA" fw withdraw "$REL"
assert_match "$ERR" 'withdrawn already' "says so"
finish
