#!/usr/bin/env bash
# A bounded schemathesis run against the OpenAPI schema of a live `twofa serve`:
# no 5xx (not_a_server_error) and every response matching its declared schema
# (response_schema_conformance), with an admin API key so every route is reached.
# /readyz is left out: it answers 503 by design here, where no broker runs.
#
# Usage: scripts/schemathesis.sh            (from the repository root)
#   PYTHON=...        interpreter with the project's deps and schemathesis (default: python)
#   MAX_EXAMPLES=N    examples per operation and phase (default 10: about 600 cases)
#   SEED=N            for a reproducible run (default 20261128)
#   SCHEMATHESIS_DATABASE_URL=URL  an empty database to run on (default: a fresh SQLite file);
#                     CI runs it once more on PostgreSQL, which refuses text SQLite would keep
set -euo pipefail

PY=${PYTHON:-python}
MAX_EXAMPLES=${MAX_EXAMPLES:-10}
SEED=${SEED:-20261128}
WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

export TWOFA_ENV=test
export TWOFA_VAR_DIR="$WORK/var"
export TWOFA_DATABASE_URL="${SCHEMATHESIS_DATABASE_URL:-sqlite:///$WORK/twofa.db}"
export TWOFA_LOG_LEVEL=WARNING

"$PY" -m services.cli.main migrate >/dev/null
KEY=$("$PY" -m services.cli.main apikey create --name schemathesis --scopes admin | tail -n 1)
PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')

"$PY" -m services.cli.main serve --host 127.0.0.1 --port "$PORT" >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  if "$PY" -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$PORT/healthz', timeout=1)" 2>/dev/null; then
    break
  fi
  sleep 0.1
done

set +e
"$PY" -m schemathesis.cli run "http://127.0.0.1:$PORT/openapi.json" \
  --header "Authorization: Bearer $KEY" \
  --checks not_a_server_error,response_schema_conformance \
  --exclude-path /readyz \
  --phases examples,coverage,fuzzing \
  --max-examples "$MAX_EXAMPLES" \
  --seed "$SEED" \
  --workers 1 \
  --request-timeout 10
STATUS=$?
set -e
if [ "$STATUS" -ne 0 ]; then
  echo "--- twofa serve log (tail) ---" >&2
  tail -n 50 "$WORK/serve.log" >&2
fi
exit "$STATUS"
