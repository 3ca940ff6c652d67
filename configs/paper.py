"""The paper's model and training recipe (M=320, ae_dim 192/224/256, k=1.7).

Pick lambda (0.3, 0.85, 1.8, 3.5, 7, 15) and the metric after the colon or as
overrides:

  .venv/bin/python -m cca_jax.summary --config configs/paper.py
  .venv/bin/python -m cca_jax.train --config configs/paper.py:0.85 --workdir WORKDIR
  .venv/bin/python -m cca_jax.train --config configs/paper.py --config.lmbda=3.5 \
      --config.metric=ms-ssim --workdir WORKDIR
  bash launch/gpu.sh configs/paper.py:0.3 WORKDIR                 # one GPU host
  TPU=name ZONE=zone bash launch/tpu_vm.sh configs/paper.py:0.3 gs://bucket/run \
      --config.data.tfds_name=DATASET                              # Cloud TPU VM

The official run is 65 epochs of its (unpublished-size) dataset at batch 8 with the
milestone at epoch 56; ``num_steps`` / ``milestone_step`` default to 1,000,000 /
860,000 (about the 56/65 ratio). For a dataset of D images set
``num_steps = 65 * D / batch_size`` and ``milestone_step = 56 * D / batch_size``.
"""

from cca_jax.config import base_config, parse_config_arg


def get_config(arg=None):
  c = base_config()
  c.update(parse_config_arg(arg))
  return c
