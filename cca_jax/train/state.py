"""The training state: step, parameters and both optimizers' states (one pytree)."""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp

from cca_jax.model.cca import CCAModel, init_params
from cca_jax.train.optimizers import main_optimizer, quantile_optimizer


@flax.struct.dataclass
class TrainState:
  step: jax.Array          # completed optimizer steps (int32 scalar)
  params: Any
  opt_state: Any           # main optimizer (everything but the quantiles)
  quantile_opt_state: Any  # quantile optimizer


def create_train_state(config, model: CCAModel | None = None,
                       params=None) -> TrainState:
  """Fresh state at step 0: ``params`` (fine-tuning) or the PyTorch-default
  initialisation from ``config.seed``; fresh optimizer states."""
  model = model or CCAModel.from_config(config.model)
  if params is None:
    params = init_params(model, seed=config.seed)
  params = jax.tree.map(jnp.asarray, params)
  return TrainState(
      step=jnp.zeros((), jnp.int32), params=params,
      opt_state=main_optimizer(config).init(params),
      quantile_opt_state=quantile_optimizer(config).init(params))
