#!/usr/bin/env bash
# The sources example end to end, offline: a PostgreSQL database seeded with seed.sql, the
# catalogue API (api.py) on port 8765, then one `lakestar run` that extracts both into
# landing/ and runs their pages through the pipeline. Run from the repository's root:
#   bash examples/sources/run.sh [--home DIR]
# PostgreSQL is the local one (postgres@127.0.0.1:5432, trust auth) unless SHOP_ADMIN_URL
# names another; LAKESTAR is the lakestar command (default: cargo run).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
admin="${SHOP_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
database="${SHOP_DATABASE:-lakestar_example_shop}"
psql -q "$admin" -c "DROP DATABASE IF EXISTS $database" -c "CREATE DATABASE $database"
export SHOP_DATABASE_URL="${admin%/*}/$database"
psql -q "$SHOP_DATABASE_URL" -f "$here/seed.sql"
export CATALOG_TOKEN="${CATALOG_TOKEN:-example-token}"
python3 "$here/api.py" 8765 > /dev/null &
api=$!
trap 'kill $api 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do python3 -c "import socket; socket.create_connection(('127.0.0.1', 8765), 1)" 2>/dev/null && break; sleep 0.1; done
if [ -n "${LAKESTAR:-}" ]; then
  "$LAKESTAR" run "$here" "$@"
else
  cargo run --quiet --locked -p lakestar-local -- run "$here" "$@"
fi
