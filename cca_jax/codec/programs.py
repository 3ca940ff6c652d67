"""The device functions of the codec, jit-compiled once per model and shape, shared
by the encoder and the decoder.

Exactness rests on this file: the decoder must reproduce the encoder's entropy
parameters bit for bit, so both sides call *the same* compiled functions on *the
same* inputs (XLA on one machine is deterministic for a given executable and input;
two differently fused graphs are not guaranteed to agree). The split follows the data
dependencies of decoding::

  analysis(params, x)                         -> y, z           (encoder only)
  hyper_synthesis(params, z_hat)              -> latent_means, latent_scales
  predict(params, i, lm, ls, y_hat_0..i-1)    -> mu_i, scale_i, mean_support_i
  refine(params, i, mean_support_i, q_i, mu_i) -> y_hat_i = LRP(q_i + mu_i)
  synthesis(params, y_hat_0..n-1)             -> x_hat          (unclamped)

``predict`` and ``refine`` are ``ChannelContext.predict`` / ``ChannelContext.refine``
applied through ``model.apply(method=...)``: the codec reuses the model's code, it
does not copy its math. ``i`` is static (one executable per slice). Parameters are
arguments, so bundles of one architecture share the compiled functions (``programs_for``).

Each program is a ``utils.executable_cache.CachedFunction``: with the executable cache
on (the codec commands turn it on), a new process loads the compiled programs from
disk instead of tracing them again; off, it is the jit-compiled function.

``IntegerCodecPrograms`` (version 2 bundles) has the same interface; its
``hyper_synthesis``, ``predict`` and ``refine`` are the exact integer networks of
``cca_jax.model.entropy.integer`` (float64, run with ``jax.enable_x64``), which give the same
bits on every machine, not only for one executable.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from cca_jax.model.entropy import integer
from cca_jax.ops.convolution import formulation
from cca_jax.utils.executable_cache import CachedFunction


def analysis(m, x):
  """``(y, z)`` of an image batch."""
  y = m.g_a(x)
  return y, m.h_a(y)


def _hyper_synthesis(m, z_hat):
  return m.hyper_synthesis(z_hat)


def _predict(m, i, latent_means, latent_scales, context):
  return m.entropy_model.predict(i, latent_means, latent_scales, context)


def _refine(m, i, mean_support, q, mu):
  return m.entropy_model.refine(i, mean_support, q + mu)


def _synthesis(m, y_hat_slices):
  return m.g_s(jnp.concatenate(y_hat_slices, axis=-1))


class CodecPrograms:
  """The jit-compiled programs of one ``CCAModel`` (see the module docstring)."""

  def __init__(self, model):
    self.model = model

    def apply(method):
      return lambda params, *args: model.apply({"params": params}, *args, method=method)

    def program(name, method, static_argnums=()):
      # The convolutions' formulation is read when the program is traced.
      return CachedFunction(jax.jit(apply(method), static_argnums=static_argnums),
                            name, static_argnums,
                            context=lambda: f"{model!r} {formulation()}")

    self.analysis = program("analysis", analysis)
    self.hyper_synthesis = program("hyper_synthesis", _hyper_synthesis)
    self.predict = program("predict", _predict, (1,))
    self.refine = program("refine", _refine, (1,))
    self.synthesis = program("synthesis", _synthesis)


@functools.lru_cache(maxsize=8)
def programs_for(model) -> CodecPrograms:
  """The ``CodecPrograms`` of a model architecture (``CCAModel`` is hashable)."""
  return CodecPrograms(model)


def _x64(fn):
  """Trace and run ``fn`` with 64-bit types enabled (the integer path's float64)."""
  @functools.wraps(fn, updated=())
  def call(*args):
    with jax.enable_x64(True):
      return fn(*args)
  return call


class IntegerCodecPrograms:
  """``analysis`` and ``synthesis`` of ``CodecPrograms``; the entropy parameters by the
  integer networks, which take ``bundle.entropy_params`` (``integer.convert``)."""

  def __init__(self, model):
    float_programs = programs_for(model)
    self.model = model
    self.analysis = float_programs.analysis
    self.synthesis = float_programs.synthesis
    self.hyper_synthesis = _x64(CachedFunction(
        jax.jit(integer.hyper_synthesis), "integer_hyper_synthesis"))
    self.predict = _x64(CachedFunction(
        jax.jit(integer.predict, static_argnums=1), "integer_predict", (1,)))
    self.refine = _x64(CachedFunction(
        jax.jit(integer.refine, static_argnums=1), "integer_refine", (1,)))


@functools.lru_cache(maxsize=8)
def integer_programs_for(model) -> IntegerCodecPrograms:
  return IntegerCodecPrograms(model)
