#!/usr/bin/env bash
# The main job on this machine: set up, then show the paper model and the CPU model.
# (Training lands with the training issue and will replace this with a short
# training run of configs/cpu.py.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh
export JAX_PLATFORMS=cpu
echo "== paper model (configs/paper.py) =="
.venv/bin/cca-jax summary --config configs/paper.py
echo
echo "== CPU model (configs/cpu.py) =="
.venv/bin/cca-jax summary --config configs/cpu.py
