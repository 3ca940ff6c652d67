#!/usr/bin/env bash
# Train on one GPU host (all its GPUs: the batch is sharded over them).
#
#   bash launch/gpu.sh configs/paper.py:0.3 /data/runs/cca_0.3 [--config.batch_size=16 ...]
#
# Installs the CUDA build of the pinned jax into .venv (jax[cuda12] pulls NVIDIA's
# CUDA/cuDNN wheels; the machine needs an NVIDIA driver only). TensorFlow stays the
# CPU build and never sees the GPUs (it only reads data).
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:?usage: launch/gpu.sh CONFIG WORKDIR [--config.field=value ...]}
workdir=${2:?usage: launch/gpu.sh CONFIG WORKDIR [--config.field=value ...]}
shift 2
bash launch/setup.sh
jax_version=$(.venv/bin/python -c "import jax; print(jax.__version__)")
.venv/bin/python -m pip install -q --disable-pip-version-check "jax[cuda12]==${jax_version}"
.venv/bin/python -c "import jax; d = jax.devices(); print(len(d), 'x', d[0].device_kind)"
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.9}
exec .venv/bin/python -m cca_jax.train --config "$config" --workdir "$workdir" "$@"
