"""The NAF blocks' pointwise functions (official models/vae.py, NAFNet): exact GELU,
NAFNet's per-pixel LayerNorm over channels and SimpleGate."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax


def gelu(x: jax.Array) -> jax.Array:
  """PyTorch's exact (erf) GELU."""
  return jax.nn.gelu(x, approximate=False)


def layer_norm_2d(x: jax.Array, weight: jax.Array, bias: jax.Array,
                  eps: float = 1e-6) -> jax.Array:
  """Normalise each pixel over channels: ``(x - mean) / sqrt(var + eps) * w + b``."""
  mu = jnp.mean(x, axis=-1, keepdims=True)
  var = jnp.mean(jnp.square(x - mu), axis=-1, keepdims=True)
  return (x - mu) * lax.rsqrt(var + eps) * weight + bias


def simple_gate(x: jax.Array) -> jax.Array:
  """NAFNet's SimpleGate: split channels in two halves and multiply them."""
  a, b = jnp.split(x, 2, axis=-1)
  return a * b
