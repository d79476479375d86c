#!/usr/bin/env bash
# Start the Celery worker and the web server together; Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
mkdir -p var/log  # the broker folders are made by webapp/settings.py, for hand-started workers too
$PY -m celery -A webapp worker -Q ingest,train,predict --concurrency "${WORKER_CONCURRENCY:-2}" \
    --loglevel INFO >var/log/worker.log 2>&1 &
WORKER=$!
trap 'kill $WORKER 2>/dev/null; wait $WORKER 2>/dev/null' EXIT INT TERM
echo
echo "  IonSieve is running at http://$HOST:$PORT/"
echo "  Demo login: username 'demo', password 'demo-ionsieve'"
echo "  Worker log: var/log/worker.log    (Ctrl-C stops the server and the worker)"
echo
$PY manage.py runserver "$HOST:$PORT" --noreload
