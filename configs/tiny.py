"""The smallest CCA model of the same architecture: tests and smoke runs.

  .venv/bin/python -m cca_jax.summary --config configs/tiny.py
  .venv/bin/python -m cca_jax.train --config configs/tiny.py --workdir /tmp/tiny
"""

from cca_jax.config import base_config, model_config, parse_config_arg


def get_config(arg=None):
  c = base_config()
  c.model = model_config(M=40, N=24, hyper_dim=32, ae_dim=(16, 24, 32),
                         ae_layers=(1, 1, 1), num_rbb=1, em_dim=16, em_layers=1,
                         cc_dims=(16, 16))
  c.batch_size = 2
  c.patch_size = 64
  c.num_steps = 20
  c.milestone_step = 15
  c.checkpoint_every = 10
  c.log_every = 1
  c.eval_every = 10
  c.update(parse_config_arg(arg))
  return c
