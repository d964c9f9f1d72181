#!/usr/bin/env bash
# The main job of the README. Until the gateway connector lands it shows the pieces that exist.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
exec "$VENV/bin/tb-dlms" demo "$@"
