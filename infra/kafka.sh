#!/usr/bin/env bash
# Local single-node Kafka broker without Docker; see infra/kafka_local.py.
#   infra/kafka.sh start|stop|status|fetch [--data-dir D] [--port P]
# Run from the repo root: the default data dir (.meterline/kafka) is relative to it.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="$repo/.venv/bin/python"
[[ -x "$python" ]] || python="$(command -v python3)"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" -m infra.kafka_local "$@"
