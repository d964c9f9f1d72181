#!/usr/bin/env bash
# The test command of the README: sets up everything on a fresh machine, then runs the suite.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/protocol -k hdlc).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
exec "$VENV/bin/python" -m pytest "$@"
