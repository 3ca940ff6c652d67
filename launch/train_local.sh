#!/usr/bin/env bash
# Training on this machine (CPU): set up .venv, then a short training run of
# configs/cpu.py on ../shared/data/train with progress; ends by printing where the
# checkpoints and TensorBoard logs are. Re-running resumes from the workdir.
#
#   bash launch/train_local.sh                                  # 300 steps -> workdirs/cpu
#   STEPS=2000 WORKDIR=workdirs/cpu_full bash launch/train_local.sh   # the whole config
#   bash launch/train_local.sh --config.lmbda=0.85              # any config override
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh
export JAX_PLATFORMS=cpu
exec .venv/bin/python -m cca_jax.train --config "${CONFIG:-configs/cpu.py}" \
  --workdir "${WORKDIR:-workdirs/cpu}" --config.num_steps="${STEPS:-300}" "$@"
