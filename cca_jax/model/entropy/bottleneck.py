"""The factorized entropy bottleneck (Balle et al. 2018; CompressAI ``EntropyBottleneck``).

A per-channel monotone cumulative density ``c(x)`` built from ``len(filters) + 1``
small matrices (softplus-positive), biases and tanh "factors". The likelihood of a
value is the mass of its unit bin, ``|sigmoid(s*c(x+.5)) - sigmoid(s*c(x-.5))|``
(the sign ``s`` keeps the subtraction in the accurate tail), floored at 1e-9.

Learned quantiles (``quantiles``, shape ``(C, 1, 3)`` as in PyTorch) track the
``tail_mass / 2`` and ``1 - tail_mass / 2`` points and the median; they are trained
only by ``quantile_loss`` (CompressAI's ``aux_loss``), which sees the density
parameters under stop-gradient. The main loss gives them exactly zero gradient
(noise mode ignores medians, and ``ste_round(z - m) + m`` has d/dm = 0).

Parameter names and shapes follow the PyTorch state dict (``matrices.i`` ->
``matrices_i`` ...), so official weights load without reshaping.
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from cca_jax.ops.initializers import symmetric_uniform
from cca_jax.ops.quantization import LIKELIHOOD_BOUND, lower_bound, quantize


def logits_cumulative(params: dict, x: jax.Array, num_layers: int,
                      stop_gradient: bool = False) -> jax.Array:
  """Cumulative logits ``c(x)`` of the factorized density; ``x`` is ``(..., C)``."""
  logits = x[..., None]  # (..., C, 1): one filter.
  for i in range(num_layers):
    matrix = params[f"matrices_{i}"]
    bias = params[f"biases_{i}"]
    if stop_gradient:
      matrix, bias = jax.lax.stop_gradient(matrix), jax.lax.stop_gradient(bias)
    logits = jnp.einsum("...cf,cgf->...cg", logits, jax.nn.softplus(matrix))
    logits = logits + bias[..., 0]
    if i < num_layers - 1:
      factor = params[f"factors_{i}"]
      if stop_gradient:
        factor = jax.lax.stop_gradient(factor)
      logits = logits + jnp.tanh(factor[..., 0]) * jnp.tanh(logits)
  return logits[..., 0]


def factorized_likelihood(params: dict, x: jax.Array, num_layers: int) -> jax.Array:
  """Bin mass of ``x`` (``(..., C)``) under the factorized density, floored at 1e-9."""
  lower = logits_cumulative(params, x - 0.5, num_layers)
  upper = logits_cumulative(params, x + 0.5, num_layers)
  sign = jax.lax.stop_gradient(-jnp.sign(lower + upper))
  likelihood = jnp.abs(jax.nn.sigmoid(sign * upper) - jax.nn.sigmoid(sign * lower))
  return lower_bound(likelihood, LIKELIHOOD_BOUND)


def quantile_target(tail_mass: float) -> jax.Array:
  t = math.log(2.0 / tail_mass - 1.0)
  return jnp.array([-t, 0.0, t], jnp.float32)


class EntropyBottleneck(nn.Module):
  """Factorized prior over the channels of a latent (``z``, or ``y`` in the aux model).

  ``__call__(x, training, noise=None) -> (x_tilde, likelihoods)``: training adds
  uniform noise (``noise``, or drawn from the ``'noise'`` RNG stream); evaluation
  rounds around the medians.
  """
  channels: int
  filters: Sequence[int] = (3, 3, 3, 3)
  init_scale: float = 10.0
  tail_mass: float = 1e-9

  @property
  def num_layers(self) -> int:
    return len(self.filters) + 1

  def setup(self):
    filters = (1,) + tuple(self.filters) + (1,)
    scale = self.init_scale ** (1.0 / (len(self.filters) + 1))
    c = self.channels
    for i in range(len(self.filters) + 1):
      init_value = math.log(math.expm1(1.0 / scale / filters[i + 1]))
      setattr(self, f"matrices_{i}", self.param(
          f"matrices_{i}", nn.initializers.constant(init_value),
          (c, filters[i + 1], filters[i])))
      setattr(self, f"biases_{i}", self.param(
          f"biases_{i}",
          lambda k, s: symmetric_uniform(k, s, 0.5),
          (c, filters[i + 1], 1)))
      if i < len(self.filters):
        setattr(self, f"factors_{i}", self.param(
            f"factors_{i}", nn.initializers.zeros, (c, filters[i + 1], 1)))
    s = self.init_scale
    self.quantiles = self.param(
        "quantiles",
        lambda k, shape: jnp.tile(jnp.array([-s, 0.0, s], jnp.float32), (shape[0], 1, 1)),
        (c, 1, 3))

  def density_params(self) -> dict:
    names = [f"matrices_{i}" for i in range(self.num_layers)]
    names += [f"biases_{i}" for i in range(self.num_layers)]
    names += [f"factors_{i}" for i in range(self.num_layers - 1)]
    return {n: getattr(self, n) for n in names}

  def medians(self) -> jax.Array:
    """Per-channel medians, ``quantiles[:, 0, 1]``."""
    return self.quantiles[:, 0, 1]

  def likelihood(self, x: jax.Array) -> jax.Array:
    return factorized_likelihood(self.density_params(), x, self.num_layers)

  def __call__(self, x: jax.Array, training: bool, noise: jax.Array | None = None):
    if training:
      if noise is None:
        noise = jax.random.uniform(self.make_rng("noise"), x.shape, x.dtype, -0.5, 0.5)
      x_tilde = quantize(x, "noise", noise=noise)
    else:
      x_tilde = quantize(x, "dequantize", self.medians())
    return x_tilde, self.likelihood(x_tilde)

  def quantile_loss(self) -> jax.Array:
    """``sum |c(quantiles) - target|`` with the density under stop-gradient."""
    q = self.quantiles[:, 0, :].T  # (3, C)
    logits = logits_cumulative(self.density_params(), q, self.num_layers,
                               stop_gradient=True)
    return jnp.sum(jnp.abs(logits - quantile_target(self.tail_mass)[:, None]))
