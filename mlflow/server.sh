#!/usr/bin/env bash
# A shared MLflow tracking server for mnistgen: runs, registry and proxied artifacts in one place.
#
#   mlflow/server.sh                      # SQLite + local artifacts under mlflow/server/, on 127.0.0.1:5000
#   MLFLOW_BACKEND_STORE_URI=postgresql+psycopg2://mlflow:secret@db:5432/mlflow \
#   MLFLOW_ARTIFACTS_DESTINATION=s3://my-bucket/mlflow \
#   MLFLOW_HOST=0.0.0.0 MLFLOW_ALLOWED_HOSTS=mlflow.example.org mlflow/server.sh
#
# Then point the project at it:  export MLFLOW_TRACKING_URI=http://HOST:PORT
# (S3-compatible stores also need AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and, for MinIO and the like,
# MLFLOW_S3_ENDPOINT_URL in the server's environment; psycopg2-binary and boto3 are in the lock file.)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mlflow_bin="${MLFLOW_BIN:-$(dirname "$here")/.venv/bin/mlflow}"
[[ -x "$mlflow_bin" ]] || mlflow_bin=mlflow
backend="${MLFLOW_BACKEND_STORE_URI:-sqlite:///$here/server/mlflow.db}"
artifacts="${MLFLOW_ARTIFACTS_DESTINATION:-$here/server/artifacts}"
[[ -n "${MLFLOW_BACKEND_STORE_URI:-}" ]] || mkdir -p "$here/server"
host="${MLFLOW_HOST:-127.0.0.1}"
port="${MLFLOW_PORT:-5000}"
allowed="${MLFLOW_ALLOWED_HOSTS:-localhost,127.0.0.1,localhost:$port,127.0.0.1:$port}"

# The store URI may hold a password: it goes to `mlflow server` in its environment (read as
# MLFLOW_BACKEND_STORE_URI), never in argv where `ps` shows it, and the banner prints it redacted.
export MLFLOW_BACKEND_STORE_URI="$backend"
shown="$(printf '%s' "$backend" | sed -E 's#^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]+@#\1***@#')"
echo "MLflow server on http://$host:$port (store: $shown, artifacts: $artifacts)" >&2
# With MLFLOW_AUTH_CONFIG_PATH (an ini file, see MLflow's basic_auth.ini), MLflow's basic-auth app asks
# every request but /health for a user and password (clients: MLFLOW_TRACKING_USERNAME/PASSWORD).
app=()
[[ -z "${MLFLOW_AUTH_CONFIG_PATH:-}" ]] || app=(--app-name basic-auth)
exec "$mlflow_bin" server "${app[@]}" \
  --serve-artifacts --artifacts-destination "$artifacts" \
  --host "$host" --port "$port" \
  --allowed-hosts "$allowed" \
  --workers "${MLFLOW_WORKERS:-2}"
