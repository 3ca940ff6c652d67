"""The configuration schema: every field with the official (paper) default.

Experiment files in ``configs/`` start from ``base_config()`` and override what they
change; any field can be overridden on the command line (``--config.lmbda=0.85``).
Config files are loaded one way: ml_collections' ``config_flags`` (the tools'
``--config`` flag, and ``load_config_file`` for code).

Naming: ``lmbda`` is **the paper's lambda** (the rate weight, the official code's
``--beta``), one of 0.3, 0.85, 1.8, 3.5, 7, 15 for the published models.
``distortion_weight`` is the official code's ``--lmbda`` (0.05, fixed): the MSE
objective is ``distortion_weight * 255^2 * MSE + lmbda * bpp + alpha * cca + aux2``.
"""

from __future__ import annotations

import os

import ml_collections

PAPER_LAMBDAS = (0.3, 0.85, 1.8, 3.5, 7.0, 15.0)


def model_config(**overrides) -> ml_collections.ConfigDict:
  """Architecture fields of ``CCAModel`` (official models/vae.py, train.py defaults)."""
  cfg = ml_collections.ConfigDict(dict(
      M=320,                  # latent channels
      N=192,                  # hyper-latent channels
      hyper_dim=256,          # width of h_a / h_mean_s / h_scale_s
      ae_dim=(192, 224, 256),  # g_a / g_s stage widths
      ae_layers=(4, 4, 4),    # NAF blocks per stage
      num_rbb=3,              # residual bottleneck blocks per stage
      em_dim=224,             # entropy model NAF transform width
      em_layers=4,            # NAF blocks per entropy-model transform
      cc_dims=(224, 128),     # hidden widths of the cc / LRP heads
      k=1.7,                  # uneven grouping exponent (0 = even groups)
      num_slices=5,
      aux_model=True,         # build the auxiliary entropy model (training)
  ))
  cfg.update(overrides)
  return cfg


def model_config_dict(model_cfg) -> dict:
  """A model config (``ConfigDict`` or mapping) as plain JSON types (tuples as lists,
  keys sorted), as the model bundle stores it."""
  import json
  cfg = model_cfg.to_dict() if hasattr(model_cfg, "to_dict") else dict(model_cfg)
  cfg = {str(k): list(v) if isinstance(v, (tuple, list)) else v for k, v in cfg.items()}
  return json.loads(json.dumps(cfg, sort_keys=True))


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.model = model_config()

  # Objective (official train.py, RateDistortionLoss).
  c.lmbda = 0.3               # paper's lambda = official beta (rate weight)
  c.distortion_weight = 0.05  # official lmbda: MSE weight is 0.05 * 255^2
  c.alpha = 1.0               # CCA-loss weight
  c.metric = "mse"            # "mse" or "ms-ssim"

  # Training recipe (official train.py). Steps are the unit; the official run is 65
  # epochs with the milestone at epoch 56 (steps = epochs * dataset_size / batch_size).
  c.seed = 100
  c.batch_size = 8
  c.patch_size = 256
  c.num_steps = 1_000_000
  c.milestone_step = 860_000  # lr x0.1 and the lambda switch (epoch 56 of 65)
  c.learning_rate = 1e-4
  c.lr_decay = 0.1
  # "step" (official: x lr_decay at milestone_step) or "cosine" (warm-up, then cosine
  # decay to learning_rate * lr_end_factor at num_steps; schedules.py).
  c.lr_schedule = "step"
  c.warmup_steps = 0
  c.lr_end_factor = 0.0
  c.quantile_learning_rate = 1e-3
  c.grad_clip_norm = 1.0
  # Two-stage lambda: before the milestone train with 0.3 (targets < 7) or 2
  # (targets 7 and 15), then with the target. Set False to train at the target only.
  c.two_stage_lambda = True
  c.stage1_lmbda = -1.0       # stage-1 lambda; < 0: official (0.3 if lmbda < 7 else 2)
  # Fine-tuning: start from the parameters of another training workdir's latest
  # checkpoint, or from a model bundle's weights (a .ccam file or a model name such
  # as "q6"; the auxiliary model starts fresh), with fresh optimizers at step 0,
  # instead of the seeded initialisation, as the official code trains its other
  # rate points after the milestone.
  c.init_from = ""
  # Parameter groups to initialise fresh (from ``seed``) instead of taking them from
  # ``init_from``: comma-separated top-level names; to restart a collapsed
  # hyperprior (configs/shipped.py): "h_a,h_mean_s,h_scale_s,z_entropy_bottleneck".
  c.init_fresh = ""
  # ``init_from`` may name a model with fewer NAF blocks per g_a / g_s stage
  # (``model.ae_layers``): the added blocks start as the identity, so training starts
  # from the source model's function (cca_jax/model/growth.py).
  c.init_deepen = False

  # Checkpoints (orbax, in WORKDIR/checkpoints), logs, validation.
  c.checkpoint_every = 5000   # steps; a checkpoint is also written at the end
  c.keep_checkpoints = 3      # the last K are kept
  c.async_checkpointing = True
  c.log_every = 100           # console + TensorBoard (WORKDIR/tensorboard)
  c.eval_every = 5000         # validation on data.eval_dir centre crops (0 = never)
  c.eval_batch_size = 8       # validation images per jitted step (global)

  # Input (cca_jax/train/input_pipeline.py). A local image folder by default; a named
  # TFDS dataset when ``tfds_name`` is set (e.g. ``--config.data.tfds_name=clic``).
  c.data = ml_collections.ConfigDict(dict(
      train_dir="../shared/data/train",   # PNG/JPEG folder: random patch_size crops
      eval_dir="../shared/data/kodak",    # validation images: centre crops
      eval_patch_size=256,                # centre-crop size of validation images
      num_eval_images=24,                 # validation images used (0 = all)
      tfds_name="",                       # e.g. "clic"; overrides the folders
      tfds_data_dir="",                   # TFDS data_dir ("" = TFDS default)
      tfds_train_split="train",
      tfds_eval_split="validation",
      tfds_image_key="image",
      prefetch=2,                         # batches prefetched per host
  ))
  return c


def parse_config_arg(arg: str | None) -> dict:
  """Parse a ``configs/x.py:lmbda[,metric]`` argument (e.g. ``0.85,ms-ssim``)."""
  out = {}
  if not arg:
    return out
  for part in arg.split(","):
    part = part.strip()
    if not part:
      continue
    if part in ("mse", "ms-ssim"):
      out["metric"] = part
    else:
      try:
        out["lmbda"] = float(part)
      except ValueError:
        raise ValueError(f"config argument {part!r}: expected a lambda (e.g. 0.85) "
                         "or a metric (mse, ms-ssim)") from None
  return out


def load_config_file(spec: str, overrides=()) -> ml_collections.ConfigDict:
  """Load ``path/to/config.py[:arg]`` (its ``get_config(arg)``) as the tools'
  ``--config`` flag does, with ``overrides`` such as ``"--config.lmbda=7"``; errors
  are ``ValueError``s with a one-line message."""
  from absl import flags
  from ml_collections import config_flags
  path = spec.partition(":")[0]
  if not os.path.isfile(path):
    raise ValueError(f"config file {path!r} not found")
  argv = ["load_config_file", f"--config={spec}", *overrides]
  fv = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "config file", flag_values=fv,
                                  lock_config=False, sys_argv=argv)
  try:
    fv(argv)
    config = fv.config
    config.get("model")  # a load failure config_flags deferred is raised here
  except (flags.Error, OSError, AttributeError, KeyError) as e:
    # an unknown --config.field, a file without get_config(), a failed load
    raise ValueError(f"{spec}: {e}") from None
  return config
