# Shared helpers for the integration tests (tests/integration/test_*.sh).
#
# Use from a test script, after its own `set -euo pipefail`:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   softhsm_setup                                  # a private SoftHSM2, if the test needs one
#   run_ok "list works" "$TESSERA" keystore list --keystore "$uri"
#   assert_match "$OUT" '^uid: ' "list shows the UID"
#   expect_fail "wrong PIN refused" "$TESSERA" keystore list --keystore "$bad_uri"
#   assert_match "$ERR" 'PIN' "the message names the PIN"
#   finish
#
# Sourcing it makes a private temporary directory, $TS_TEST_TMP, and arranges for it (and
# whatever on_exit registered) to be cleaned up when the script exits, however it exits. Set
# TS_KEEP_TMP=1 to keep the directory for a look after a failure.
#
# Globals set here:
#   TS_TEST_TMP   the private temporary directory
#   TESSERA       the tessera command of the build under test ($TS_BUILD_DIR/bin/tessera)
#   OUT ERR RC    stdout, stderr and exit status of the last run_ok / expect_fail / run_capture
#   TS_PASSED     how many checks have passed so far

if [ -n "${TS_LIB_SOURCED:-}" ]; then
    return 0
fi
TS_LIB_SOURCED=1

TS_PASSED=0
OUT=""
ERR=""
RC=0
TESSERA="${TS_BUILD_DIR:-build}/bin/tessera"
TS_TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/ts-it-XXXXXX")
_ts_exit_cmds=()

# on_exit CMD...: runs CMD (with its arguments) when the script exits, before the temporary
# directory goes. Commands run last-registered first, and a failing one does not stop the rest.
on_exit() {
    _ts_exit_cmds+=("$(printf '%q ' "$@")")
}

# cleanup: the EXIT trap. Runs the on_exit commands, then removes $TS_TEST_TMP unless
# TS_KEEP_TMP=1. Keeps the script's exit status.
cleanup() {
    local status=$? i
    for ((i = ${#_ts_exit_cmds[@]} - 1; i >= 0; i--)); do
        eval "${_ts_exit_cmds[$i]}" >/dev/null 2>&1 || true
    done
    if [ "${TS_KEEP_TMP:-0}" = 1 ]; then
        echo "kept $TS_TEST_TMP" >&2
    else
        rm -rf "$TS_TEST_TMP"
    fi
    return "$status"
}
trap cleanup EXIT

# fail MESSAGE: reports a failed check, with the output of the last command run through these
# helpers, and ends the script with status 1.
fail() {
    echo "FAIL: $*" >&2
    if [ -n "$OUT$ERR" ]; then
        echo "--- last command: exit $RC" >&2
        [ -z "$OUT" ] || printf -- '--- stdout:\n%s\n' "$OUT" >&2
        [ -z "$ERR" ] || printf -- '--- stderr:\n%s\n' "$ERR" >&2
    fi
    echo "$TS_PASSED passed, 1 failed" >&2
    exit 1
}

# pass MESSAGE: counts a passed check and prints it.
pass() {
    TS_PASSED=$((TS_PASSED + 1))
    echo "ok $TS_PASSED - $*"
}

# finish: prints the closing "N passed, 0 failed" line; call it last.
finish() {
    echo "$TS_PASSED passed, 0 failed"
}

# run_capture CMD...: runs CMD with stdin from /dev/null, sets OUT, ERR and RC; never fails.
run_capture() {
    local errfile="$TS_TEST_TMP/.stderr"
    RC=0
    OUT=$("$@" 2>"$errfile" </dev/null) || RC=$?
    ERR=$(cat "$errfile")
}

# run_ok DESCRIPTION CMD...: runs CMD, which must exit 0; passes with DESCRIPTION.
run_ok() {
    local desc=$1
    shift
    run_capture "$@"
    [ "$RC" -eq 0 ] || fail "$desc (exit $RC)"
    pass "$desc"
}

# expect_fail DESCRIPTION CMD...: runs CMD, which must exit non-zero and say why on stderr;
# passes with DESCRIPTION. Check the words with assert_match "$ERR" ... afterwards.
expect_fail() {
    local desc=$1
    shift
    run_capture "$@"
    [ "$RC" -ne 0 ] || fail "$desc: the command succeeded"
    [ -n "$ERR" ] || fail "$desc: exit $RC without a message"
    pass "$desc"
}

# expect_status N DESCRIPTION CMD...: runs CMD, which must exit with status N.
expect_status() {
    local want=$1 desc=$2
    shift 2
    run_capture "$@"
    [ "$RC" -eq "$want" ] || fail "$desc: exit $RC, want $want"
    pass "$desc"
}

# assert_match TEXT REGEX DESCRIPTION: TEXT must match the extended regular expression.
assert_match() {
    grep -Eq -- "$2" <<<"$1" || fail "$3: no match for /$2/"
    pass "$3"
}

# assert_no_match TEXT REGEX DESCRIPTION: TEXT must not match the extended regular expression.
assert_no_match() {
    if grep -Eq -- "$2" <<<"$1"; then
        fail "$3: unexpected match for /$2/"
    fi
    pass "$3"
}

# assert_no_string TEXT STRING DESCRIPTION: TEXT must not contain STRING (a fixed string; use it
# to check that secrets such as PINs are never printed).
assert_no_string() {
    if grep -Fq -- "$2" <<<"$1"; then
        fail "$3: the text contains it"
    fi
    pass "$3"
}

# assert_eq GOT WANT DESCRIPTION: the two strings must be equal.
assert_eq() {
    [ "$1" = "$2" ] || fail "$3: got '$1', want '$2'"
    pass "$3"
}

# softhsm_module: prints the SoftHSM2 module path ($TS_SOFTHSM_MODULE, else Debian's); fails
# the test when it is not there.
softhsm_module() {
    local m=${TS_SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
    [ -r "$m" ] || fail "SoftHSM2 module $m not found (install softhsm2 or set TS_SOFTHSM_MODULE)"
    echo "$m"
}

# softhsm_setup [DIR]: gives this test a SoftHSM2 of its own: a configuration and an empty
# token directory under DIR (default: a fresh directory in $TS_TEST_TMP), with SOFTHSM2_CONF
# exported to point at it. Sets SOFTHSM_DIR to the directory used.
softhsm_setup() {
    SOFTHSM_DIR=${1:-$(mktemp -d "$TS_TEST_TMP/softhsm-XXXXXX")}
    mkdir -p "$SOFTHSM_DIR/tokens"
    printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
        "$SOFTHSM_DIR/tokens" >"$SOFTHSM_DIR/softhsm2.conf"
    export SOFTHSM2_CONF="$SOFTHSM_DIR/softhsm2.conf"
}

# file_mode FILE: prints the permission bits of FILE in octal (644, 600...).
file_mode() {
    stat -c '%a' "$1"
}

# rtp_serve_start DIR OUT [--once]: `tessera rtp serve` on DIR on a free loopback port, in the
# background; sets RTP_PID and RTP_PORT (stdout in OUT.out, stderr in OUT.err); fails the test
# when it does not start.
rtp_serve_start() {
    local dir=$1 out=$2
    shift 2
    "$TESSERA" rtp serve --dir "$dir" --listen 127.0.0.1:0 --timeout 10 "$@" >"$out.out" \
        2>"$out.err" &
    RTP_PID=$!
    on_exit "kill $RTP_PID 2>/dev/null || true"
    RTP_PORT=
    for _ in $(seq 1 50); do
        RTP_PORT=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$out.out")
        [ -n "$RTP_PORT" ] && break
        sleep 0.1
    done
    [ -n "$RTP_PORT" ] || fail "rtp serve did not start: $(cat "$out.err")"
}
