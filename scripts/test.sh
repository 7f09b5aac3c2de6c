#!/usr/bin/env bash
# Install (scripts/setup.sh), lint, type-check and run the whole test suite; extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

bash scripts/setup.sh
echo "[test] ruff" >&2
dirs=()
for d in src tests testenv bench; do [[ -d $d ]] && dirs+=("$d"); done
"$PY" -m ruff check "${dirs[@]}"
echo "[test] mypy" >&2
"$PY" -m mypy
echo "[test] pytest" >&2
exec "$PY" -m pytest -q "$@"
