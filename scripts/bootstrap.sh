#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian machine: system tools, a venv in .venv, the package with
# its test and gateway extras. Sourced by scripts/test.sh and scripts/demo.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TB_DLMS_VENV:-$ROOT/.venv}"

need_apt=()
command -v socat >/dev/null 2>&1 || need_apt+=(socat)
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
if [ ${#need_apt[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "bootstrap: installing ${need_apt[*]} with apt-get" >&2
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "bootstrap: please install ${need_apt[*]} (tests that need them will be skipped)" >&2
  fi
fi

PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "bootstrap: creating $VENV" >&2
  "$PY" -m venv "$VENV"
fi
# Re-install only when setup.py changed since the last install (keeps repeated runs fast).
# pip's output (dozens of setuptools build warnings) goes to a log, shown only when it failed:
# on the console it would hide the test results that follow.
stamp="$VENV/.tb-dlms-installed"
log="$VENV/pip-install.log"
if [ ! -f "$stamp" ] || [ "$ROOT/setup.py" -nt "$stamp" ]; then
  echo "bootstrap: installing the package with its test and gateway extras (log: $log)" >&2
  : > "$log"
  if ! { "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip setuptools wheel \
         && "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT[test,gateway]"; } >>"$log" 2>&1 \
     || ! "$VENV/bin/python" -c "import tb_dlms, gurux_dlms, thingsboard_gateway" >>"$log" 2>&1; then
    grep -v '^WARNING: Location' "$log" | tail -n 40 >&2
    echo "bootstrap: install failed (whole log: $log)" >&2
    exit 1
  fi
  touch "$stamp"
fi
