"""Convolutions as pure functions, in two formulations (NHWC, kernels HWIO).

``conv2d``, ``conv_transpose2d`` and ``depthwise_conv2d`` compute PyTorch's
``torch.nn.functional`` convolutions with the official code's padding
(``cca_jax.model.layers`` wraps them as Flax modules).

Each computes the same function in one of two formulations, chosen by
``formulation()`` (explicitly overridable with ``use_formulation``):

* ``'plain'`` (default on GPU/TPU, where cuDNN and the TPU handle every convolution
  well): one ``lax.conv_general_dilated`` per layer.
* ``'cpu'`` (default when ``jax.default_backend() == 'cpu'``): XLA's CPU backend is
  slow at grouped, dilated-input and some kernel-gradient convolutions, so
  1x1 convolutions are einsums; 3x3 depthwise convolutions are nine shifted
  multiply-adds with a custom backward pass; strided transposed convolutions are
  sub-pixel convolutions (all ``stride**2`` output phases from one stride-1
  convolution, then depth-to-space) with a custom backward pass; strided
  convolutions keep XLA's forward pass but get their input gradient from the
  sub-pixel transposed convolution. ``benchmarks/layer_speed.py`` measures both
  (docs/benchmarks.md has the numbers).

Tests check every formulation, values and gradients, against the plain one and
against ``torch.nn.functional``. Parameters are the same in both.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

_DN = ("NHWC", "HWIO", "NHWC")

# ----------------------------------------------------------------------------
# Formulation policy.
# ----------------------------------------------------------------------------

FORMULATIONS = ("cpu", "plain")
_FORCED: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "cca_jax_convolution_formulation", default=None)


def formulation() -> str:
  """Which formulation the convolution functions use: ``'cpu'`` or ``'plain'``.

  ``'cpu'`` (the default when ``jax.default_backend() == 'cpu'``) rewrites the
  convolutions XLA's CPU backend is slow at into ones it is fast at; ``'plain'`` (the
  default on GPU and TPU, where cuDNN / the TPU convolution units handle every case
  well) is one ``lax.conv_general_dilated`` per layer. Both compute the same function
  (tests compare them, values and gradients). ``use_formulation`` overrides the
  default. The choice is read when a function is *traced*: a function jit-compiled
  under one formulation keeps it, so jit a fresh function after switching.
  """
  forced = _FORCED.get()
  if forced is not None:
    return forced
  return "cpu" if jax.default_backend() == "cpu" else "plain"


@contextlib.contextmanager
def use_formulation(name: str):
  """Force ``formulation()`` to ``name`` (``'cpu'`` or ``'plain'``) in this block."""
  if name not in FORMULATIONS:
    raise ValueError(f"unknown formulation {name!r} (one of {', '.join(FORMULATIONS)})")
  token = _FORCED.set(name)
  try:
    yield
  finally:
    _FORCED.reset(token)


# ----------------------------------------------------------------------------
# Pure convolution functions.
# ----------------------------------------------------------------------------


def _pair(v) -> tuple[int, int]:
  return (v, v) if isinstance(v, int) else tuple(v)


def _xla_conv(x, kernel, stride, padding):
  return lax.conv_general_dilated(
      x, kernel, stride, [(p, p) for p in padding], dimension_numbers=_DN)


def conv2d(x: jax.Array, kernel: jax.Array, bias: jax.Array | None = None,
           stride: int = 1, padding: int | None = None) -> jax.Array:
  """``torch.nn.functional.conv2d`` with symmetric padding (default ``k // 2``).

  ``kernel`` is ``(kh, kw, in, out)``. The ``'cpu'`` formulation computes a 1x1
  stride-1 convolution as an einsum (its backward pass is several times faster), and
  gives a strided convolution a custom backward pass whose input gradient is the
  sub-pixel transposed convolution of ``conv_transpose2d`` (XLA's own is a
  dilated-input convolution, up to 10x slower on the CPU).
  """
  kh, kw = kernel.shape[:2]
  if padding is None:
    padding = kh // 2
  stride, padding = _pair(stride), _pair(padding)
  if formulation() == "plain":
    y = _xla_conv(x, kernel, stride, padding)
  elif (kh, kw, stride, padding) == (1, 1, (1, 1), (0, 0)):
    y = jnp.einsum("nhwc,cd->nhwd", x, kernel[0, 0])
  elif stride != (1, 1):
    y = _strided_conv2d(x, kernel, stride, padding)
  else:
    y = _xla_conv(x, kernel, stride, padding)
  return y if bias is None else y + bias


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _strided_conv2d(x, kernel, stride, padding):
  """XLA's strided convolution with a backward pass that avoids XLA's dilated-input
  convolution: the input gradient is a sub-pixel transposed convolution."""
  return _xla_conv(x, kernel, stride, padding)


def _strided_conv2d_fwd(x, kernel, stride, padding):
  return _xla_conv(x, kernel, stride, padding), (x, kernel)


def _strided_conv2d_bwd(stride, padding, res, g):
  x, kernel = res
  # The input gradient is the transposed convolution of g with the same kernel (in and
  # out swapped), its output padding chosen to give back the input's size.
  out_pad = tuple((n + 2 * p - k) % s for n, p, k, s in
                  zip(x.shape[1:3], padding, kernel.shape[:2], stride))
  dx = _conv_transpose2d_subpixel(g, jnp.swapaxes(kernel, 2, 3), stride, padding,
                                  out_pad)
  # XLA's own kernel gradient: as fast here as one matrix product per tap.
  dkernel, = jax.linear_transpose(
      lambda k: _xla_conv(x, k, stride, padding), kernel)(g)
  return dx, dkernel


_strided_conv2d.defvjp(_strided_conv2d_fwd, _strided_conv2d_bwd)


def _kernel_grad_taps(xp, g, kernel_size, stride):
  """Kernel gradient of the correlation ``y[q] = sum_k xp[s * q + k] w[k]`` (``xp``
  already padded), one matrix product per tap: ``dw[k] = sum_q xp[s * q + k]^T g[q]``.
  """
  (kh, kw), (sh, sw) = kernel_size, stride
  qh, qw = g.shape[1:3]
  rows = []
  for i in range(kh):
    row = []
    for j in range(kw):
      window = xp[:, i:i + sh * (qh - 1) + 1:sh, j:j + sw * (qw - 1) + 1:sw]
      row.append(jnp.einsum("nhwc,nhwd->cd", window, g))
    rows.append(jnp.stack(row))
  return jnp.stack(rows)


def _phase_taps(k: int, s: int, p: int):
  """One axis of a transposed convolution split into ``s`` sub-pixel phases.

  Output ``o = s * q + r`` receives ``x[q + d] * w[r + p - s * d]`` for every ``d``
  with a kernel index in ``[0, k)``. Returns ``(d0, index, valid)``: the first offset
  ``d0`` and, for phase ``r`` and tap ``t`` (offset ``d0 + t``), the kernel index and
  whether it exists (``(s, taps)`` arrays).
  """
  d0 = -((k - 1 - p) // s)
  taps = (s - 1 + p) // s - d0 + 1
  index = np.arange(s)[:, None] + p - s * (d0 + np.arange(taps))[None, :]
  valid = (index >= 0) & (index < k)
  return d0, np.where(valid, index, 0), valid


def subpixel_kernel(kernel, stride, padding):
  """The ``sh * sw`` sub-pixel phase kernels of a transposed convolution, zero-padded
  to a common ``th x tw`` window and stacked along the output channels (phase-major):
  ``(th, tw, cin, sh * sw * cout)``. A 5x5 stride-2 kernel with padding 2 splits into
  3x3, 3x2, 2x3 and 2x2 phase kernels. Returns ``(kernel, (d0_h, d0_w))``, ``d0`` the
  input offset of the window's first tap (``_phase_taps``). Works on NumPy arrays (in
  NumPy) as on JAX arrays; it only moves values.
  """
  xp = np if isinstance(kernel, np.ndarray) else jnp
  kh, kw, cin, cout = kernel.shape
  (d0_h, ih, vh), (d0_w, iw, vw) = (_phase_taps(k, s, p)
                                    for k, s, p in zip((kh, kw), stride, padding))
  sh, sw = stride
  th, tw = ih.shape[1], iw.shape[1]
  # (sh, th, sw, tw, cin, cout) -> (th, tw, cin, sh * sw * cout)
  k = kernel[ih[:, :, None, None], iw[None, None, :, :]]
  k = xp.where((vh[:, :, None, None] & vw[None, None, :, :])[..., None, None], k, 0)
  k = k.transpose(1, 3, 4, 0, 2, 5).reshape(th, tw, cin, sh * sw * cout)
  return k, (d0_h, d0_w)


def _conv_transpose2d_subpixel(x, kernel, stride, padding, output_padding):
  """Transposed convolution as one stride-1 convolution to ``sh * sw`` phases of the
  output (``subpixel_kernel``) followed by depth-to-space."""
  b, n_h, n_w, cin = x.shape
  cout = kernel.shape[3]
  k, d0s = subpixel_kernel(kernel, stride, padding)
  axes = []
  for n, kk, s, p, op, d0, taps in zip((n_h, n_w), kernel.shape[:2], stride, padding,
                                       output_padding, d0s, k.shape[:2]):
    length = (n - 1) * s - 2 * p + kk + op
    q = -(-length // s)
    axes.append((length, q, -d0, q - n + d0 + taps - 1))
  (len_h, q_h, lo_h, hi_h), (len_w, q_w, lo_w, hi_w) = axes
  sh, sw = stride
  xp = lax.pad(x, jnp.zeros((), x.dtype),
               [(0, 0, 0), (lo_h, hi_h, 0), (lo_w, hi_w, 0), (0, 0, 0)])
  y = lax.conv_general_dilated(xp, k, (1, 1), "VALID", dimension_numbers=_DN)
  return depth_to_space(y, sh, sw, cout)[:, :len_h, :len_w]


def depth_to_space(y, sh: int, sw: int, cout: int):
  """``(b, q_h, q_w, sh * sw * cout)`` phase-major channels -> ``(b, q_h * sh, q_w * sw,
  cout)``."""
  b, q_h, q_w = y.shape[:3]
  y = y.reshape(b, q_h, q_w, sh, sw, cout).transpose(0, 1, 3, 2, 4, 5)
  return y.reshape(b, q_h * sh, q_w * sw, cout)


def conv_transpose2d(x: jax.Array, kernel: jax.Array, bias: jax.Array | None = None,
                     stride: int = 2, padding: int | None = None,
                     output_padding: int | None = None) -> jax.Array:
  """``torch.nn.functional.conv_transpose2d`` for a kernel stored ``(kh, kw, in, out)``.

  Defaults: ``padding = k // 2``, ``output_padding = stride - 1``. The ``'cpu'``
  formulation of a strided one splits the output into its ``stride x stride``
  sub-pixel phases, each a stride-1 convolution of the input with a subset of the
  kernel's taps, computed as one convolution followed by depth-to-space
  (``_conv_transpose2d_subpixel``); its backward pass computes the input gradient as
  XLA's strided convolution and the kernel gradient as one matrix product per tap.
  The same sums, 10x or more faster forward and backward on the CPU than XLA's
  dilated-input convolution (the ``'plain'`` formulation: dilate the input by
  ``stride``, pad it by ``(k - 1 - p, k - 1 - p + output_padding)``, correlate with the
  flipped kernel).
  """
  k = kernel.shape[0]
  p = _pair(k // 2 if padding is None else padding)
  s = _pair(stride)
  op = _pair(tuple(si - 1 for si in s) if output_padding is None else output_padding)
  if formulation() == "plain" or s == (1, 1):
    y = _conv_transpose2d_xla(x, kernel, s, p, op)
  else:
    y = _conv_transpose2d_fast(x, kernel, s, p, op)
  return y if bias is None else y + bias


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _conv_transpose2d_fast(x, kernel, stride, padding, output_padding):
  return _conv_transpose2d_subpixel(x, kernel, stride, padding, output_padding)


def _conv_transpose2d_fast_fwd(x, kernel, stride, padding, output_padding):
  y = _conv_transpose2d_subpixel(x, kernel, stride, padding, output_padding)
  return y, (x, kernel)


def _conv_transpose2d_fast_bwd(stride, padding, output_padding, res, g):
  x, kernel = res
  # The transposed convolution is the adjoint of the strided convolution
  # y[q] = sum_k g_padded[s * q + k] w[k] (in and out swapped), which gives both
  # gradients: that convolution of g, and its kernel gradient with x as the "output".
  dx = _xla_conv(g, jnp.swapaxes(kernel, 2, 3), stride, padding)
  gp = jnp.pad(g, ((0, 0), (padding[0],) * 2, (padding[1],) * 2, (0, 0)))
  dkernel = _kernel_grad_taps(gp, x, kernel.shape[:2], stride)
  return dx, jnp.swapaxes(dkernel, 2, 3)


_conv_transpose2d_fast.defvjp(_conv_transpose2d_fast_fwd, _conv_transpose2d_fast_bwd)


def _conv_transpose2d_xla(x, kernel, stride, padding, output_padding):
  kh, kw = kernel.shape[:2]
  pads = [(k - 1 - p, k - 1 - p + op)
          for k, p, op in zip((kh, kw), padding, output_padding)]
  return lax.conv_general_dilated(
      x, kernel[::-1, ::-1], (1, 1), pads, lhs_dilation=stride, dimension_numbers=_DN)


def depthwise_conv2d(x: jax.Array, kernel: jax.Array,
                     bias: jax.Array | None = None) -> jax.Array:
  """Depthwise stride-1 convolution with padding ``k // 2``; kernel ``(kh, kw, 1, C)``.

  The ``'cpu'`` formulation (odd kernels) writes it as ``kh * kw`` shifted
  multiply-adds, which XLA fuses into one loop, with a custom backward pass: the input
  gradient is the same loop over the output gradient with the flipped kernel, the
  kernel gradient one variadic reduction (all ``kh * kw`` products in one pass). On
  the CPU that is several times faster than a grouped convolution (the ``'plain'``
  formulation), and faster than differentiating the loop, which stores every shifted
  copy of the input for the backward pass.
  """
  kh, kw = kernel.shape[:2]
  if formulation() == "plain" or kh % 2 == 0 or kw % 2 == 0:
    return _depthwise_conv2d_xla(x, kernel, bias)
  y = _depthwise_shifted(x, kernel)
  return y if bias is None else y + bias


def _shifted_windows(x, kh, kw):
  """The ``kh * kw`` shifted views of ``x`` (zero-padded by ``k // 2``), row-major."""
  h, w = x.shape[1], x.shape[2]
  xp = jnp.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
  return [xp[:, i:i + h, j:j + w, :] for i in range(kh) for j in range(kw)]


def _shifted_mac(x, kernel):
  kh, kw = kernel.shape[:2]
  taps = kernel.reshape(kh * kw, -1)
  y = None
  for t, window in enumerate(_shifted_windows(x, kh, kw)):
    term = window * taps[t]
    y = term if y is None else y + term
  return y


@jax.custom_vjp
def _depthwise_shifted(x, kernel):
  return _shifted_mac(x, kernel)


def _depthwise_shifted_fwd(x, kernel):
  return _shifted_mac(x, kernel), (x, kernel)


def _depthwise_shifted_bwd(res, g):
  x, kernel = res
  kh, kw = kernel.shape[:2]
  dx = _shifted_mac(g, kernel[::-1, ::-1])
  # One variadic reduction over the width axis computes all kh * kw products in one
  # pass over x and g (separate reductions would read them kh * kw times).
  products = tuple(window * g for window in _shifted_windows(x, kh, kw))
  zeros = tuple(jnp.zeros((), g.dtype) for _ in products)
  rows = lax.reduce(products, zeros,
                    lambda a, b: tuple(u + v for u, v in zip(a, b)), (2,))
  dkernel = jnp.stack([jnp.sum(r, axis=(0, 1)) for r in rows])
  return dx, dkernel.reshape(kernel.shape)


_depthwise_shifted.defvjp(_depthwise_shifted_fwd, _depthwise_shifted_bwd)


def _depthwise_conv2d_xla(x, kernel, bias=None):
  """The plain formulation: one grouped XLA convolution (``feature_group_count = C``)."""
  kh = kernel.shape[0]
  y = lax.conv_general_dilated(
      x, kernel, (1, 1), [(kh // 2, kh // 2)] * 2, dimension_numbers=_DN,
      feature_group_count=x.shape[-1])
  return y if bias is None else y + bias
