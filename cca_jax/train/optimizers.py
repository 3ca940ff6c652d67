"""The two optimizers of the official recipe (train.py).

* main: Adam (PyTorch defaults, lr schedule of ``schedules.learning_rate``) on every
  parameter except the entropy bottlenecks' ``quantiles``, after global-norm gradient
  clipping (``grad_clip_norm``; PyTorch's ``clip_grad_norm_``, whose only difference is
  a 1e-6 in the divisor);
* quantiles: Adam (lr ``quantile_learning_rate``, constant) on the ``quantiles`` only,
  driven by the quantile loss and stepped after the main step (CompressAI's
  ``aux_optimizer``).

Each optimizer carries state only for its own parameters (``optax.multi_transform``
with ``set_to_zero`` for the rest).
"""

from __future__ import annotations

import jax
import optax

from cca_jax.train.schedules import learning_rate

MAIN, QUANTILES = "main", "quantiles"


def param_labels(params) -> dict:
  """``'quantiles'`` for every ``.../quantiles`` leaf, ``'main'`` for the rest."""
  def label(path, _):
    last = path[-1]
    name = getattr(last, "key", getattr(last, "name", None))
    return QUANTILES if name == "quantiles" else MAIN
  return jax.tree_util.tree_map_with_path(label, params)


def main_optimizer(config) -> optax.GradientTransformation:
  tx = optax.adam(learning_rate(config))
  if config.grad_clip_norm and config.grad_clip_norm > 0:
    tx = optax.chain(optax.clip_by_global_norm(config.grad_clip_norm), tx)
  return optax.multi_transform({MAIN: tx, QUANTILES: optax.set_to_zero()},
                               param_labels)


def quantile_optimizer(config) -> optax.GradientTransformation:
  return optax.multi_transform(
      {QUANTILES: optax.adam(config.quantile_learning_rate),
       MAIN: optax.set_to_zero()}, param_labels)
