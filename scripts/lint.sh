#!/usr/bin/env bash
# Static checks: ruff over everything, mypy --strict over the sans-IO protocol core.
# mypy cannot follow the editable install's folder mapping (connectors/dlms -> tb_dlms), so it
# checks the package through a temporary symlink named tb_dlms.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
"$VENV/bin/ruff" check connectors converters tests benchmarks
view="$(mktemp -d)"
trap 'rm -rf "$view"' EXIT
ln -s "$ROOT/connectors/dlms" "$view/tb_dlms"
(cd "$view" && "$VENV/bin/mypy" --strict --cache-dir /dev/null -p tb_dlms.protocol)
