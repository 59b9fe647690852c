#!/usr/bin/env bash
# One role of the test cluster that must give its password (the cluster trusts every other
# local connection): the load's secret-rotation test changes that password mid-run.
set -euo pipefail
hba="$(psql -h 127.0.0.1 -U postgres -Atc 'SHOW hba_file')"
if ! grep -q '^host all lakestar_rotation ' "$hba"; then
  sed -i '1i host all lakestar_rotation 127.0.0.1/32 scram-sha-256' "$hba"
  psql -h 127.0.0.1 -U postgres -qAtc 'SELECT pg_reload_conf()' >/dev/null
fi
