#!/usr/bin/env bash
# Create (or reuse) the peers venv at training/peers/.venv and install the pinned requirements.
# Idempotent: re-running only installs what is missing or at a different version.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q --upgrade pip
fi
"$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$HERE/requirements.txt"
"$VENV/bin/python" -c 'import sklearn, numpy, fasttext, fastapi, uvicorn, joblib, tritonclient.http; print("peers venv ok:", sklearn.__version__, numpy.__version__)'
