# A throwaway PostgreSQL server for an integration test: the shell twin of
# tests/support/pg_fixture.c.
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   . "$(dirname "${BASH_SOURCE[0]}")/pg.sh"
#   if pg_start; then                      # sets PG_URL; pg_stop runs at exit
#       "$TESSERA" ... --store "$PG_URL"
#   fi
#
# pg_start returns 2, after saying so on stderr, when the PostgreSQL server binaries are not
# installed (the caller skips its PostgreSQL half with that message), and 1 when they are but
# the server does not start. The server runs from a directory of its own (a Unix socket there
# only, listen_addresses empty, fsync off), as `nobody` when the script runs as root, since
# PostgreSQL refuses to run as root. pg_stop stops it (immediate shutdown) and removes the
# directory.
#
# Globals set here: PG_DIR, PG_BIN, PG_PORT, PG_URL (a libpq URI of the database "tessera").

PG_DIR=""
PG_BIN=""
PG_PORT=54329
PG_URL=""

# pg_bindir: $TS_PG_BINDIR, else the newest /usr/lib/postgresql/N/bin with a server in it.
pg_bindir() {
    local d best="" v bestv=-1
    if [ -n "${TS_PG_BINDIR:-}" ]; then
        [ -x "$TS_PG_BINDIR/initdb" ] && [ -x "$TS_PG_BINDIR/pg_ctl" ] &&
            [ -x "$TS_PG_BINDIR/postgres" ] && echo "$TS_PG_BINDIR"
        return
    fi
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ] || continue
        v=${d#/usr/lib/postgresql/}
        v=${v%%/*}
        if [ "$v" -gt "$bestv" ] 2>/dev/null; then
            bestv=$v
            best=$d
        fi
    done
    [ -n "$best" ] && echo "$best"
}

# _pg_as CMD...: runs CMD as the server's user, in $PG_DIR.
_pg_as() {
    if [ "$(id -u)" = 0 ]; then
        (cd "$PG_DIR" && setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@")
    else
        (cd "$PG_DIR" && "$@")
    fi
}

pg_start() {
    PG_BIN=$(pg_bindir) || true
    if [ -z "$PG_BIN" ]; then
        echo "SKIP: PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in" \
            "\$TS_PG_BINDIR or /usr/lib/postgresql/*/bin: install Debian's postgresql" >&2
        return 2
    fi
    # The socket path must fit in 108 bytes: keep the directory short.
    PG_DIR=$(mktemp -d /tmp/tessera-pg-XXXXXX)
    on_exit pg_stop
    if [ "$(id -u)" = 0 ]; then
        chown nobody:nogroup "$PG_DIR"
    fi
    chmod 0700 "$PG_DIR"
    if ! _pg_as env -i PATH=/usr/bin:/bin LC_ALL=C "$PG_BIN/initdb" -D "$PG_DIR/data" \
        -U tessera -A trust -E UTF8 --locale=C --no-sync >"$TS_TEST_TMP/initdb.log" 2>&1; then
        echo "initdb failed:" >&2
        cat "$TS_TEST_TMP/initdb.log" >&2
        return 1
    fi
    cat >>"$PG_DIR/data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$PG_DIR'
port = $PG_PORT
fsync = off
full_page_writes = off
max_connections = 40
EOF
    if ! _pg_as env -i PATH=/usr/bin:/bin LC_ALL=C "$PG_BIN/pg_ctl" -D "$PG_DIR/data" \
        -l "$PG_DIR/server.log" -w -t 60 start >/dev/null 2>&1; then
        echo "pg_ctl start failed:" >&2
        cat "$PG_DIR/server.log" >&2 || true
        return 1
    fi
    PG_URL="postgresql:///tessera?host=$PG_DIR&port=$PG_PORT&user=tessera"
    if ! "$PG_BIN/psql" -q -v ON_ERROR_STOP=1 \
        "postgresql:///postgres?host=$PG_DIR&port=$PG_PORT&user=tessera" \
        -c 'CREATE DATABASE tessera' >/dev/null; then
        echo "cannot create the database tessera" >&2
        return 1
    fi
}

pg_stop() {
    if [ -n "$PG_DIR" ] && [ -d "$PG_DIR/data" ]; then
        _pg_as env -i PATH=/usr/bin:/bin "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w \
            stop >/dev/null 2>&1 || true
    fi
    if [ -n "$PG_DIR" ] && [ "${TS_KEEP_TMP:-0}" != 1 ]; then
        rm -rf "$PG_DIR"
    fi
    PG_DIR=""
}
