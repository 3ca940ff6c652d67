"""Schedules of the official recipe (paper.md 3), as pure functions of the step.

* Learning rate: ``learning_rate`` until ``milestone_step``, then ``x lr_decay``
  (official MultiStepLR, milestone epoch 56 of 65, gamma 0.1).
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
  """Step-wise constant: ``learning_rate``, times ``lr_decay`` from the milestone."""
  return optax.piecewise_constant_schedule(
      config.learning_rate, {int(config.milestone_step): float(config.lr_decay)})
