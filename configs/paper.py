"""The paper's model and training recipe (M=320, ae_dim 192/224/256, k=1.7).

Pick lambda (0.3, 0.85, 1.8, 3.5, 7, 15) and the metric after the colon or as
overrides:

  .venv/bin/python -m cca_jax.summary --config configs/paper.py
  .venv/bin/python -m cca_jax.train --config configs/paper.py:0.85 --workdir WORKDIR
  .venv/bin/python -m cca_jax.train --config configs/paper.py --config.lmbda=3.5 \
      --config.metric=ms-ssim --workdir WORKDIR
"""

from cca_jax.config import base_config, parse_config_arg


def get_config(arg=None):
  c = base_config()
  c.update(parse_config_arg(arg))
  return c
