#!/usr/bin/env bash
# The main job: set up .venv, then compress and decompress the 24 Kodak images with the
# shipped models (models/*.ccam, every quality), check each round trip, and compare
# with JPEG, WebP and AVIF: a side-by-side table on stdout, the RD plot, a visual crop
# and the report in out/kodak (python -m cca_jax.compare; any of its flags passes
# through, e.g. --limit 2 for a quick check, --out DIR, --model FILE).
#   bash launch/local.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh
export JAX_PLATFORMS=cpu
exec .venv/bin/python -m cca_jax.compare "$@"
