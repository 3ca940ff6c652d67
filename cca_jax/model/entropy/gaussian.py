"""The discretised Gaussian conditional (CompressAI ``GaussianConditional``).

Pure functions: the bin mass of a Gaussian over ``[v - 0.5, v + 0.5]`` around its
mean, with the scale lower-bounded at 0.11 and the likelihood at 1e-9, both with
CompressAI's ``LowerBound`` gradient rule (CompressAI 1.2.x), and the 64-level scale
table used for entropy coding.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from cca_jax.ops.quantization import LIKELIHOOD_BOUND, lower_bound, quantize

SCALE_BOUND = 0.11
SCALE_TABLE_MIN = 0.11
SCALE_TABLE_MAX = 256.0
SCALE_TABLE_LEVELS = 64


def standardized_cumulative(x: jax.Array) -> jax.Array:
  """Standard normal CDF written as CompressAI does: ``0.5 * erfc(-x / sqrt(2))``."""
  return 0.5 * jax.scipy.special.erfc(-(2.0 ** -0.5) * x)


def gaussian_likelihood(values: jax.Array, scales: jax.Array,
                        means: jax.Array | None = None,
                        scale_bound: float = SCALE_BOUND,
                        likelihood_bound: float = LIKELIHOOD_BOUND) -> jax.Array:
  """Probability mass of the unit-width bin at ``values`` under N(means, scales)."""
  scales = lower_bound(scales, scale_bound)
  v = values if means is None else values - means
  v = jnp.abs(v)
  upper = standardized_cumulative((0.5 - v) / scales)
  lower = standardized_cumulative((-0.5 - v) / scales)
  return lower_bound(upper - lower, likelihood_bound)


def gaussian_conditional(y: jax.Array, scales: jax.Array, means: jax.Array,
                         training: bool, noise: jax.Array | None = None):
  """CompressAI's ``GaussianConditional.forward``: returns ``(y_tilde, likelihoods)``.

  Training adds the given uniform ``noise`` (means ignored); evaluation rounds around
  the mean (``round(y - mu) + mu``), exactly the values the coder transmits.
  """
  mode = "noise" if training else "dequantize"
  y_tilde = quantize(y, mode, means, noise)
  return y_tilde, gaussian_likelihood(y_tilde, scales, means)


def scale_table(lo: float = SCALE_TABLE_MIN, hi: float = SCALE_TABLE_MAX,
                levels: int = SCALE_TABLE_LEVELS) -> np.ndarray:
  """``exp(linspace(log(lo), log(hi), levels))``: the coder's quantised scales."""
  return np.exp(np.linspace(np.log(lo), np.log(hi), levels))
