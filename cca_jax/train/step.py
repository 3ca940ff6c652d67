"""The jit-compiled training and validation steps (pure functions of the state).

One training step, as the official loop (train.py):

1. the objective of ``losses.rd_loss`` (rate-distortion + ``alpha`` CCA + aux2) at
   the scheduled lambda, with one fresh uniform-noise draw per use from
   ``fold_in(key(seed), step)`` (so a resumed run draws the same noise);
2. the main optimizer's update (clipped Adam, everything but the quantiles);
3. the quantile loss on the *updated* parameters and the quantile optimizer's update.

The functions know nothing of devices: ``partitioning.py`` jit-compiles them over a
mesh with the batch sharded on ``'data'`` and the state replicated, so XLA inserts
the gradient all-reduce (the form of the pmapped step that ``jax.jit`` replaces).
"""

from __future__ import annotations

import jax
import optax

from cca_jax.model.cca import CCAModel
from cca_jax.model.losses import rd_loss
from cca_jax.train.optimizers import main_optimizer, quantile_optimizer
from cca_jax.train.schedules import learning_rate, lmbda_at
from cca_jax.train.state import TrainState

# Scalars reported by validation (per image, averaged on the host).
EVAL_KEYS = ("loss", "distortion", "mse", "psnr", "bpp", "bpp_y", "bpp_z", "cca",
             "aux2", "ms_ssim")


def noise_key(config, step) -> jax.Array:
  """The uniform-noise key of ``step``: a pure function of (seed, step)."""
  return jax.random.fold_in(jax.random.key(config.seed + 1), step)


def make_train_step(config, model: CCAModel):
  """``train_step(state, batch) -> (state, metrics)``; metrics are scalars (and the
  per-slice rates), averaged over the global batch."""
  tx, qtx = main_optimizer(config), quantile_optimizer(config)
  lr = learning_rate(config)

  def loss_fn(params, x, key, lmbda):
    out = model.apply({"params": params}, x, training=True, rngs={"noise": key})
    terms = rd_loss(out, x, lmbda, config.distortion_weight, config.alpha,
                    config.metric)
    return terms["loss"], terms

  def quantile_loss(params):
    return model.apply({"params": params}, method="quantile_loss")

  def train_step(state: TrainState, x: jax.Array):
    lmbda = lmbda_at(config, state.step)
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    (_, terms), grads = grad_fn(state.params, x, noise_key(config, state.step), lmbda)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)

    qloss, qgrads = jax.value_and_grad(quantile_loss)(params)
    qupdates, qopt_state = qtx.update(qgrads, state.quantile_opt_state, params)
    params = optax.apply_updates(params, qupdates)

    metrics = dict(terms)
    if "bpp_cca" in terms:  # ~29.9 bits/element = -log2(1e-9): aux saturated
      metrics["cca_bits_per_element"] = terms["bpp_cca"] * 256.0 / model.M
    metrics.update(quantile_loss=qloss, lmbda=lmbda, learning_rate=lr(state.step),
                   grad_norm=optax.tree.norm(grads))
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                              quantile_opt_state=qopt_state)
    return new_state, metrics

  return train_step


def make_eval_step(config, model: CCAModel):
  """``eval_step(params, x, step) -> per-image metrics`` (evaluation forward: latents
  rounded around their means/medians; loss at the lambda scheduled for ``step``)."""

  def one_image(params, xi, lmbda):
    out = model.apply({"params": params}, xi[None], training=False)
    terms = rd_loss(out, xi[None], lmbda, config.distortion_weight, config.alpha,
                    config.metric)
    return {k: terms[k] for k in EVAL_KEYS if k in terms}

  def eval_step(params, x, step):
    lmbda = lmbda_at(config, step)
    return jax.vmap(one_image, in_axes=(None, 0, None))(params, x, lmbda)

  return eval_step
