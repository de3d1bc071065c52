#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on 127.0.0.1 for the storage tests and print its URL.
# Usage: eval "$(bash .ci/postgres.sh)"   (sets MIXNAS_TEST_POSTGRES_URL)
set -euo pipefail
PORT="${MIXNAS_PG_PORT:-55432}"
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >&2
fi
BIN="$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")"
DATA="$(mktemp -d /tmp/mixnas-pg.XXXXXX)"
chown postgres: "$DATA"
runuser -u postgres -- "$BIN/initdb" -D "$DATA" -A trust -U postgres >/dev/null
runuser -u postgres -- "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w \
    -o "-p $PORT -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=100" start >&2
"$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -q -c "CREATE DATABASE mixnas" >&2
echo "export MIXNAS_TEST_POSTGRES_URL=postgresql+psycopg2://postgres@127.0.0.1:$PORT/mixnas"
echo "export MIXNAS_TEST_POSTGRES_DATA=$DATA"
