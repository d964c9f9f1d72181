#!/usr/bin/env bash
# Static checks: ruff over everything; mypy --strict (setup.cfg [mypy]) over every layer of the
# package and the converter, read as the folders stand: the package's modules import each other
# relatively (tests/test_layers.py keeps it so), so no installed copy or mapping is needed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
"$VENV/bin/ruff" check connectors converters tests benchmarks
"$VENV/bin/mypy" --cache-dir /dev/null connectors/dlms converters
