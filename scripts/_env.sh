# Shared by scripts/demo and scripts/test: a virtual environment with the package installed.
# Re-installs only when setup.py or pyproject.toml changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VC_VENV:-$ROOT/.venv}"

find_python() {
  for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "vc_plugin needs Python 3.11 or newer; install it (Debian/Ubuntu: apt install python3 python3-venv)." >&2
  return 1
}

ensure_venv() {  # $1: extras, e.g. "test" or ""
  local extras="$1" spec="$ROOT" stamp
  [ -n "$extras" ] && spec="$ROOT[$extras]"
  if [ ! -x "$VENV/bin/python" ]; then
    "$(find_python)" -m venv "$VENV"
  fi
  stamp="$VENV/.vc_plugin-installed-$extras"
  local wanted
  wanted="$(cat "$ROOT/setup.py" "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
    echo "==> installing vc_plugin${extras:+[$extras]} into $VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip setuptools wheel 2>&1 | grep -v '^WARNING: Location' || true
    "$VENV/bin/python" -m pip install --quiet -e "$spec" 2>&1 | grep -v '^WARNING: Location' || true
    "$VENV/bin/python" -c 'import vc_plugin' || { echo "installation failed" >&2; exit 1; }
    echo "$wanted" > "$stamp"
  fi
}
