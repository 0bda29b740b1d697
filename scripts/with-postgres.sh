#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL server.
#
#   scripts/with-postgres.sh .venv/bin/python -m pytest
#
# The cluster (data, unix socket, logs) lives in a fresh directory under the system temp dir
# ($TMPDIR or /tmp), removed at exit, so a checkout anywhere works, even one the database user
# cannot enter. It listens on 127.0.0.1 only, on a free port from 54329 up (or
# $DDTPP_POSTGRES_PORT), with trust auth. The command gets DDTPP_POSTGRES_HOST/PORT/USER
# (tests/settings.py reads them) and runs in the caller's directory. The server is stopped
# whatever happens, and the script exits with the command's status.
#
# PostgreSQL refuses to run as root: as root, initdb and pg_ctl run as the `postgres` user
# (Debian's package creates it), or `nobody` when there is none, and the directory is theirs.
set -euo pipefail

if [ $# -eq 0 ]; then
    echo "usage: $0 command [args...]" >&2
    exit 2
fi

bindir=""
for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V); do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
        bindir=$dir
    fi
done
if [ -z "$bindir" ]; then
    echo "error: no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (Debian package: postgresql; try 'make postgres-deps')" >&2
    exit 1
fi

as_db_user=()
if [ "$(id -u)" = 0 ]; then
    db_user=postgres
    id -u "$db_user" >/dev/null 2>&1 || db_user=nobody
    as_db_user=(runuser -u "$db_user" --)
fi

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
port=${DDTPP_POSTGRES_PORT:-}
if [ -z "$port" ]; then
    for candidate in $(seq 54329 54428); do
        if ! port_in_use "$candidate"; then
            port=$candidate
            break
        fi
    done
fi
if [ -z "$port" ]; then
    echo "error: no free port between 54329 and 54428 on 127.0.0.1" >&2
    exit 1
fi

# The database user runs from inside the cluster's directory: the caller's may be private.
as_db_user_in() {
    (cd "$cluster" && "${as_db_user[@]}" "$@")
}

cluster=$(mktemp -d "${TMPDIR:-/tmp}/ddtpp-postgres.XXXXXX")
pgdata="$cluster/data"
logfile="$cluster/postgres.log"
stop_server() {
    if [ -f "$pgdata/postmaster.pid" ]; then
        as_db_user_in "$bindir/pg_ctl" --pgdata="$pgdata" --mode=fast --wait stop >/dev/null 2>&1 || true
    fi
    rm -rf "$cluster"
}
trap stop_server EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ ${#as_db_user[@]} -gt 0 ]; then
    chown "$db_user" "$cluster"
    if ! runuser -u "$db_user" -- test -w "$cluster"; then
        echo "error: user $db_user cannot reach $cluster (a parent directory is not searchable by others): set TMPDIR to a directory it can enter" >&2
        exit 1
    fi
fi

as_db_user_in "$bindir/initdb" --pgdata="$pgdata" --username=postgres --auth=trust \
    --encoding=UTF8 --locale=C --no-sync --no-instructions >"$cluster/initdb.log" 2>&1 || {
    cat "$cluster/initdb.log" >&2
    exit 1
}

# fsync and friends off: a test cluster that is thrown away after the run.
as_db_user_in "$bindir/pg_ctl" --pgdata="$pgdata" --log="$logfile" --wait --timeout=60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $cluster -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null || {
    cat "$logfile" >&2
    exit 1
}
echo "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data: $pgdata)"

export DDTPP_POSTGRES_HOST=127.0.0.1
export DDTPP_POSTGRES_PORT=$port
export DDTPP_POSTGRES_USER=postgres

status=0
"$@" || status=$?
exit "$status"
