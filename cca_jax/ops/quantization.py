"""Small differentiable operators shared by the entropy models (pure functions).

* ``lower_bound``: CompressAI's ``LowerBound`` -- ``max(x, bound)`` whose gradient
  passes where ``x >= bound`` *or* where the incoming gradient is negative (so that
  gradient descent may still push a clipped value back up). Used for the 0.11 scale
  bound and the 1e-9 likelihood floor (as in CompressAI's entropy models).
* ``ste_round``: rounding with a straight-through (identity) gradient.
* ``quantize``: the three quantisation modes of CompressAI entropy models.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

# CompressAI's floor on every likelihood (GaussianConditional and EntropyBottleneck
# alike): a symbol costs at most -log2(1e-9) = 29.9 bits.
LIKELIHOOD_BOUND = 1e-9


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def lower_bound(x: jax.Array, bound: float) -> jax.Array:
  """``max(x, bound)`` with CompressAI's ``LowerBound`` gradient rule."""
  return jnp.maximum(x, bound)


def _lower_bound_fwd(x, bound):
  return jnp.maximum(x, bound), x


def _lower_bound_bwd(bound, x, g):
  pass_through = (x >= bound) | (g < 0)
  return (jnp.where(pass_through, g, jnp.zeros_like(g)),)


lower_bound.defvjp(_lower_bound_fwd, _lower_bound_bwd)


def ste_round(x: jax.Array) -> jax.Array:
  """``round(x)`` in the forward pass, identity gradient (straight-through)."""
  return x + jax.lax.stop_gradient(jnp.round(x) - x)


def quantize(x: jax.Array, mode: str, means: jax.Array | None = None,
             noise: jax.Array | None = None) -> jax.Array:
  """CompressAI's ``EntropyModel.quantize``.

  Args:
    x: values to quantise.
    mode: ``"noise"`` adds ``noise`` (uniform in [-0.5, 0.5), ignores ``means``);
      ``"dequantize"`` returns ``round(x - means) + means``;
      ``"symbols"`` returns the integer symbols ``round(x - means)``.
    means: optional offsets (medians or Gaussian means).
    noise: the uniform noise for ``"noise"`` mode (drawn by the caller, so that a
      test can inject the same draw into a reference implementation).
  """
  if mode == "noise":
    if noise is None:
      raise ValueError("quantize(mode='noise') needs a noise array")
    return x + noise
  centred = x if means is None else x - means
  if mode == "symbols":
    return jnp.round(centred).astype(jnp.int32)
  if mode == "dequantize":
    out = jnp.round(centred)
    return out if means is None else out + means
  raise ValueError(f"unknown quantisation mode {mode!r}")


def bits(likelihoods: jax.Array) -> jax.Array:
  """Total information content ``sum(-log2 p)`` of a likelihood array."""
  return -jnp.sum(jnp.log2(likelihoods))
