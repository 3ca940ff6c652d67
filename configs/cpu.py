"""A scaled-down CCA model of the same architecture, sized to train on a 2-core CPU.

M=96 latents in 5 uneven slices (k=1.7), one NAF block per stage, narrow entropy
model; 128x128 patches, batch 8; 2000 steps (about 23 epochs of the 680 training
images), lr drop and lambda switch at step 1700.

  .venv/bin/python -m cca_jax.summary --config configs/cpu.py
  .venv/bin/python -m cca_jax.train --config configs/cpu.py --workdir workdirs/cpu
  bash launch/train_local.sh      # the same, 300 steps, with set-up
"""

from cca_jax.config import base_config, model_config, parse_config_arg


def get_config(arg=None):
  c = base_config()
  c.model = model_config(M=96, N=64, hyper_dim=96, ae_dim=(48, 64, 80),
                         ae_layers=(1, 1, 1), num_rbb=1, em_dim=64, em_layers=1,
                         cc_dims=(64, 48))
  c.batch_size = 8
  c.patch_size = 128
  c.num_steps = 2000
  c.milestone_step = 1700
  c.checkpoint_every = 200
  c.log_every = 10
  c.eval_every = 200
  c.update(parse_config_arg(arg))
  return c
