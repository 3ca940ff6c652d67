"""Schedules of the official recipe (train.py), as pure functions of the step.

* Learning rate (``lr_schedule``):
  - ``"step"`` (the official default): ``learning_rate`` until ``milestone_step``,
    then ``x lr_decay`` (official MultiStepLR, milestone epoch 56 of 65, gamma 0.1);
  - ``"cosine"`` (not the paper's; the short-budget recipe of the shipped models):
    linear warm-up over ``warmup_steps`` from 0 to ``learning_rate``, then a cosine
    decay to ``learning_rate * lr_end_factor`` at ``num_steps``.
* Two-stage lambda: before ``milestone_step`` the rate weight is the stage-1 value
  (official: 0.3 for targets below 7, 2 for 7 and 15; ``stage1_lmbda >= 0``
  overrides it), from ``milestone_step`` on it is the target ``lmbda``. With
  ``two_stage_lambda=False`` it is the target throughout.

The step is the number of completed optimizer steps, so a resumed run continues the
same schedules. Both functions accept Python ints and traced JAX integers.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax


def stage1_lmbda(config) -> float:
  """The rate weight before the milestone (official ``tmpbeta``)."""
  if config.get("stage1_lmbda", -1.0) >= 0:
    return float(config.stage1_lmbda)
  return 0.3 if config.lmbda < 7 else 2.0


def lmbda_at(config, step):
  """The rate weight used at ``step`` (0-based index of the step being taken)."""
  if not config.two_stage_lambda:
    return jnp.asarray(config.lmbda, jnp.float32)
  return jnp.where(jnp.asarray(step) < config.milestone_step,
                   jnp.float32(stage1_lmbda(config)), jnp.float32(config.lmbda))


def learning_rate(config) -> optax.Schedule:
  """The main optimizer's learning rate as a function of the step."""
  kind = config.get("lr_schedule", "step")
  if kind == "step":
    return optax.piecewise_constant_schedule(
        config.learning_rate, {int(config.milestone_step): float(config.lr_decay)})
  if kind == "cosine":
    warmup = int(config.get("warmup_steps", 0))
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=config.learning_rate,
        warmup_steps=max(warmup, 0), decay_steps=max(int(config.num_steps), warmup + 1),
        end_value=config.learning_rate * float(config.get("lr_end_factor", 0.0)))
  raise ValueError(f"config.lr_schedule={kind!r}: expected 'step' or 'cosine'")
