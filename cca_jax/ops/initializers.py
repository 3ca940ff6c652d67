"""Initial values: PyTorch's default convolution initialiser, drawn with the same bits
on every machine."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax import lax


@functools.partial(jax.jit, static_argnames=("shape", "dtype"))
def symmetric_uniform(key, shape, bound: float, dtype=jnp.float32) -> jax.Array:
  """``U(-bound, bound)`` samples that are the same bits on every CPU and backend.

  ``jax.random.uniform`` computes ``u * (hi - lo) + lo``, which XLA may or may not
  contract into a fused multiply-add depending on the instruction set (measured: other
  weights under ``--xla_cpu_max_isa=SSE4_2``). Here 23 random bits make a float in
  [2, 4) by bit pattern, ``- 3`` gives ``v`` in [-1, 1) exactly, and the one rounding
  left is ``v * bound``, which no contraction can change.

  Compiled as one program per shape (``bound`` is an argument): the eager
  initialisation of a model then compiles one small program per parameter shape
  instead of six (configs/tiny.py, empty cache: 31-33 s -> 21-22 s, the same bits).
  """
  bits = jax.random.bits(key, shape, jnp.uint32)
  v = lax.bitcast_convert_type((bits >> 9) | jnp.uint32(0x40000000), jnp.float32) - 3.0
  return (v * jnp.float32(bound)).astype(dtype)


def torch_uniform_init(fan_in: int):
  """PyTorch's default conv init: ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``."""
  bound = 1.0 / math.sqrt(fan_in)

  def init(key, shape, dtype=jnp.float32):
    return symmetric_uniform(key, shape, bound, dtype)

  return init
