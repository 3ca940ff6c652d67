#!/usr/bin/env bash
# Create .venv (Python 3.12) if missing and install the pinned dependencies and the
# package (editable, with the `cca-jax` console script).
#   bash launch/setup.sh          # runtime
#   bash launch/setup.sh --test   # runtime + test dependencies (PyTorch reference)
set -euo pipefail
cd "$(dirname "$0")/.."
req=requirements.txt
[ "${1:-}" = "--test" ] && req=requirements-test.txt
if [ ! -x .venv/bin/python ]; then
  if command -v pyenv >/dev/null 2>&1 && pyenv versions --bare 2>/dev/null | grep -x '3.12.1' >/dev/null; then
    PYENV_VERSION=3.12.1 python3 -m venv .venv
  elif command -v python3.12 >/dev/null 2>&1; then
    python3.12 -m venv .venv
  else
    echo "error: Python 3.12 is needed (pyenv 3.12.1 or python3.12 on PATH)" >&2
    exit 1
  fi
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r "$req" -c constraints.txt
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . 2>/dev/null \
  || .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e .
