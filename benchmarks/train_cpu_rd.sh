#!/usr/bin/env bash
# Short CPU trainings of configs/cpu.py at three lambdas: the learned models of
# docs/results.md (1200 steps each; about 10-25 min per model on this 2-core CPU).
cd "$(dirname "$0")/.."
export JAX_PLATFORMS=cpu
for spec in "cpu 0.3" "cpu_1.8 1.8" "cpu_7 7"; do
  set -- $spec
  echo "== $1 lambda $2 $(date)"
  nice -n 15 .venv/bin/python -m cca_jax.train --config configs/cpu.py --workdir workdirs/$1 \
    --config.lmbda=$2 --config.num_steps=1200 --config.milestone_step=1000 \
    --config.eval_every=400 --config.checkpoint_every=100 --config.log_every=50
  echo "== done $1 $(date)"
done
