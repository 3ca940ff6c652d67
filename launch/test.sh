#!/usr/bin/env bash
# Set up (with test dependencies) and run the whole test suite on the CPU, in two
# processes (pytest-xdist, one file per process at a time, in the order of
# tests/conftest.py: the longest file first, which xdist's default reordering by test
# count would undo; CCA_JAX_TEST_WORKERS=N for another count, 0 for one process).
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh --test
export JAX_PLATFORMS=cpu
exec .venv/bin/python -m pytest -q -n "${CCA_JAX_TEST_WORKERS:-2}" --dist loadfile --no-loadscope-reorder "$@"
