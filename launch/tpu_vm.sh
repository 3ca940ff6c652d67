#!/usr/bin/env bash
# Train on a Cloud TPU VM (single host or a pod slice), from your workstation.
#
#   TPU=my-v4-32 ZONE=us-central2-b bash launch/tpu_vm.sh \
#       configs/paper.py:0.3 gs://my-bucket/cca/0.3 \
#       --config.data.tfds_name=my_images --config.data.tfds_data_dir=gs://my-bucket/tfds
#
# Copies this checkout to every worker, sets up .venv with the TPU build of the pinned
# jax on each, and starts the same command on all workers at once
# (`gcloud compute tpus tpu-vm ssh --worker=all`). On a pod slice each worker is one
# JAX process: cca_jax.train calls jax.distributed.initialize() (detected from the
# TPU environment), each host reads its own share of every batch, and process 0
# writes the logs. The workdir must be shared storage (gs://...) for a pod slice;
# data too (a TFDS dataset or an image folder on GCS). Re-running the same command
# resumes from the latest checkpoint in the workdir. What is sent is the committed
# HEAD (git archive). The VM image needs Python 3.12 (e.g. tpu-ubuntu2404-base, or
# python3.12 installed): launch/setup.sh looks for pyenv 3.12.1 or python3.12.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${TPU:?set TPU to the TPU VM name}" "${ZONE:?set ZONE to its zone}"
config=${1:?usage: launch/tpu_vm.sh CONFIG WORKDIR [--config.field=value ...]}
workdir=${2:?usage: launch/tpu_vm.sh CONFIG WORKDIR [--config.field=value ...]}
shift 2
project=${PROJECT:+--project=$PROJECT}
remote_dir=${REMOTE_DIR:-cca-jax}
tarball=$(mktemp --suffix=.tar.gz)
git archive --format=tar.gz -o "$tarball" HEAD
gcloud compute tpus tpu-vm scp "$tarball" "$TPU:/tmp/cca-jax.tar.gz" --zone="$ZONE" $project --worker=all
rm -f "$tarball"
extra=$(printf ' %q' "$@")
gcloud compute tpus tpu-vm ssh "$TPU" --zone="$ZONE" $project --worker=all --command "
  set -e
  mkdir -p ~/$remote_dir && tar -xzf /tmp/cca-jax.tar.gz -C ~/$remote_dir && cd ~/$remote_dir
  bash launch/setup.sh
  v=\$(.venv/bin/python -c 'import jax; print(jax.__version__)')
  .venv/bin/python -m pip install -q \"jax[tpu]==\$v\"
  .venv/bin/python -m cca_jax.train --config $config --workdir $workdir$extra 2>&1 | tee -a ~/cca-jax-train.log
"
