#!/usr/bin/env bash
# Set up (with test dependencies) and run the whole test suite on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh --test
export JAX_PLATFORMS=cpu
exec .venv/bin/python -m pytest -q "$@"
