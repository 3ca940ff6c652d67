"""Encoder-side latent optimisation: a better ``y`` for one image, same decoder.

The analysis transform predicts ``y`` in one pass (amortised inference); for any one
image a ``y`` with a lower rate-distortion cost usually exists, and searching for it
costs only encoding time: the stream format, the decoder and the model are unchanged.
This is iterative inference with stochastic Gumbel annealing (SGA; Yang, Bamler,
Mandt, "Improving Inference for Neural Image Compression", NeurIPS 2020, arXiv
2006.04240): gradient descent (Adam) on

    J(y) = distortion_weight * 255^2 * MSE(g_s(y_hat), x) + lambda * bpp(y_hat)

(the training objective's rate-distortion part, ``model.losses.rd_loss``, with the
bundle's lambda), where each slice is rounded around its mean by a stochastic soft
rounding whose temperature is annealed towards hard rounding, through the model's own
slice loop (``ChannelContext.predict`` / ``refine``, so later slices' means follow the
earlier slices' values). The MSE counts only the image's pixels (not the padding),
the rate every latent. ``z`` is kept as the analysis gives it (the shipped models'
hyperprior carries almost no information, docs/benchmarks.md).

The result is the optimised ``y`` if its hard-rounded objective (float model) is
below the analysis transform's, else the original ``y``: the option never makes the
estimate worse. The encoder then codes it as usual (exact integer entropy
parameters), so streams decode anywhere as before.

Schedule: ``tau = 0.5`` for the first 35 % of the steps, then an exponential decay
to ``0.5 * exp(-1.3) = 0.14`` at the last step (the reference's 2000-step schedule,
``t0 = 700``, ``r = 1e-3``, compressed to ``steps``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from cca_jax.codec.errors import CodecError
from cca_jax.model.entropy.context import split_slices
from cca_jax.model.entropy.gaussian import gaussian_likelihood

DEFAULT_LEARNING_RATE = 3e-2
TAU_MAX = 0.5
WARM_FRACTION = 0.35
DECAY = 1.3


def temperature(t, steps: int):
  """SGA's annealed temperature at step ``t`` of ``steps``."""
  t0 = WARM_FRACTION * steps
  r = DECAY / max(steps - t0, 1.0)
  return TAU_MAX * jnp.exp(-r * jnp.maximum(t - t0, 0.0))


def sga_round(r: jax.Array, tau, key, eps: float = 1e-5) -> jax.Array:
  """One SGA sample of ``r`` rounded to the integers: a relaxed (Gumbel-softmax)
  choice between ``floor(r)`` and ``floor(r) + 1`` with logits
  ``-atanh(distance) / tau`` and temperature ``tau`` (Yang et al. 2020)."""
  lo = jax.lax.stop_gradient(jnp.floor(r))
  logits = jnp.stack([-jnp.arctanh(jnp.clip(r - lo, -1 + eps, 1 - eps)),
                      -jnp.arctanh(jnp.clip(lo + 1 - r, -1 + eps, 1 - eps))], -1) / tau
  g = jax.random.gumbel(key, logits.shape, logits.dtype)
  w = jax.nn.softmax((logits + g) / tau, axis=-1)
  return lo + w[..., 1]


def _decoder_pass(m, y, latent_means, latent_scales, quantize):
  """The model's slice loop with a given rounding of each residual ``y_i - mu_i``;
  returns ``(x_hat, bits)``."""
  em = m.entropy_model
  y_hat, total = [], 0.0
  for i, y_i in enumerate(split_slices(y, em.sizes)):
    mu, scale, support = em.predict(i, latent_means, latent_scales, y_hat)
    q = quantize(i, y_i - mu)
    total = total - jnp.sum(jnp.log2(gaussian_likelihood(q, scale)))
    y_hat.append(em.refine(i, support, q + mu))
  return m.g_s(jnp.concatenate(y_hat, axis=-1)), total


@functools.lru_cache(maxsize=8)
def _optimizer(model, steps: int):
  """The jit-compiled search for one architecture and step count."""
  import optax  # only here: the codec's start-up does not pay for it

  def objective(params, y, x, mask, lm, ls, weights, quantize):
    x_hat, total_bits = model.apply({"params": params}, y, lm, ls, quantize,
                                    method=_decoder_pass)
    npix = jnp.sum(mask)
    mse = jnp.sum(mask * jnp.square(x_hat - x)) / (3 * npix)
    return weights[0] * mse + weights[1] * total_bits / npix

  def hard(params, y, x, mask, lm, ls, weights):
    return objective(params, y, x, mask, lm, ls, weights, lambda i, r: jnp.round(r))

  @jax.jit
  def run(params, x, mask, y0, z_hat, weights, lr, key):
    lm, ls = model.apply({"params": params}, z_hat, method=model.hyper_synthesis)
    opt = optax.adam(lr)

    def soft(y, t, key):
      keys = jax.random.split(key, model.num_slices)
      tau = temperature(t, steps)
      return objective(params, y, x, mask, lm, ls, weights,
                       lambda i, r: sga_round(r, tau, keys[i]))

    def step(t, carry):
      y, state, key = carry
      key, sub = jax.random.split(key)
      g = jax.grad(soft)(y, t.astype(jnp.float32), sub)
      updates, state = opt.update(g, state, y)
      return optax.apply_updates(y, updates), state, key

    y, _, _ = jax.lax.fori_loop(0, steps, step, (y0, opt.init(y0), key))
    j0 = hard(params, y0, x, mask, lm, ls, weights)
    j1 = hard(params, y, x, mask, lm, ls, weights)
    return jnp.where(j1 < j0, y, y0), j0, jnp.minimum(j0, j1)

  return run


def bundle_lambda(bundle) -> float:
  """The lambda a bundle was trained with (its metadata), for the objective."""
  meta = bundle.meta or {}
  if meta.get("metric", "mse") != "mse":
    raise CodecError(f"latent optimisation needs an MSE-trained model; "
                     f"{bundle.describe()} was trained for {meta['metric']}")
  if meta.get("lmbda") is None:
    raise CodecError(f"{bundle.describe()} records no training lambda, which latent "
                     "optimisation needs")
  return float(meta["lmbda"])


def optimize_latents(bundle, xp: np.ndarray, padding, y: np.ndarray, z_hat: np.ndarray,
                     steps: int, lmbda: float | None = None,
                     learning_rate: float = DEFAULT_LEARNING_RATE,
                     distortion_weight: float = 0.05, seed: int = 0):
  """Search a better ``y`` for the padded image ``xp`` (``(1, H, W, 3)`` in [0, 1])
  whose ``padding`` is ``((top, bottom), (left, right))``.

  Returns ``(y, j_before, j_after)``: the latents to code and the hard-rounded
  objective (float model) of the analysis transform's ``y`` and of the result.
  """
  if steps < 1:
    raise ValueError(f"steps must be positive, got {steps}")
  lmbda = bundle_lambda(bundle) if lmbda is None else float(lmbda)
  (top, bottom), (left, right) = padding
  mask = np.zeros(xp.shape[:3] + (1,), np.float32)
  mask[:, top:xp.shape[1] - bottom, left:xp.shape[2] - right] = 1.0
  weights = jnp.asarray([distortion_weight * 255.0**2, lmbda], jnp.float32)
  run = _optimizer(bundle.model, int(steps))
  y_out, j0, j1 = run(bundle.device_params, jnp.asarray(xp, jnp.float32), mask,
                      jnp.asarray(y), jnp.asarray(z_hat), weights,
                      jnp.float32(learning_rate), jax.random.key(seed))
  return np.asarray(y_out), float(j0), float(j1)
