"""Building blocks of the CCA transforms (paper.md 2.1), NHWC layout.

Every layer reproduces the PyTorch module the official code uses:

* ``Conv2d``: ``nn.Conv2d(padding=k // 2)`` -- explicit symmetric padding, never
  ``'SAME'`` (which pads (1, 2) for k=5, s=2 on even sizes and shifts the grid).
* ``ConvTranspose2d``: ``nn.ConvTranspose2d(padding=k // 2, output_padding=s - 1)``,
  exactly ``s`` times upsampling. The kernel is stored as PyTorch's
  ``(in, out, kh, kw)`` transposed to ``(kh, kw, in, out)``, *not* flipped.
* ``DepthwiseConv2d``: ``nn.Conv2d(groups=channels)``.
* ``LayerNorm2d``: NAFNet's per-pixel LayerNorm over channels (biased variance).
* ``NAFBlock``, ``ResidualBottleneckBlock`` and ``NAFStack`` (the entropy model's
  ``blocks``: ``out_conv(h + NAF^L(h))`` with ``h = in_conv(x)``).

Parameter initialisation follows PyTorch's defaults (paper.md 2.8): weights and
biases ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (kaiming_uniform with a=sqrt(5)), where
a transposed convolution's fan_in is ``out_channels * k * k`` as PyTorch computes it.

Computation: each layer calls a pure function (``conv2d``, ``conv_transpose2d``,
``depthwise_conv2d``) which picks a formulation that is fast on the backend while
computing the same function (1x1 convolutions as an einsum, 3x3 depthwise as nine
shifted multiply-adds); tests check each against the plain XLA convolution and
against ``torch.nn.functional``.
"""

from __future__ import annotations

import math
import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

_DN = ("NHWC", "HWIO", "NHWC")


def torch_uniform_init(fan_in: int):
  """PyTorch's default conv init: ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``."""
  bound = 1.0 / math.sqrt(fan_in)

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init


def gelu(x: jax.Array) -> jax.Array:
  """PyTorch's exact (erf) GELU."""
  return jax.nn.gelu(x, approximate=False)


# ----------------------------------------------------------------------------
# Pure convolution functions.
# ----------------------------------------------------------------------------


def conv2d(x: jax.Array, kernel: jax.Array, bias: jax.Array | None = None,
           stride: int = 1, padding: int | None = None) -> jax.Array:
  """``torch.nn.functional.conv2d`` with symmetric padding (default ``k // 2``).

  ``kernel`` is ``(kh, kw, in, out)``. A 1x1 stride-1 convolution is computed as an
  einsum (same function; its backward pass is several times faster on the CPU).
  """
  kh, kw = kernel.shape[:2]
  if padding is None:
    padding = kh // 2
  if kh == 1 and kw == 1 and stride == 1 and padding == 0:
    y = jnp.einsum("nhwc,cd->nhwd", x, kernel[0, 0])
  else:
    y = lax.conv_general_dilated(
        x, kernel, (stride, stride), [(padding, padding), (padding, padding)],
        dimension_numbers=_DN)
  return y if bias is None else y + bias


def conv2d_reference(x, kernel, bias=None, stride=1, padding=None):
  """The plain XLA convolution, kept to test the fast paths against."""
  kh = kernel.shape[0]
  padding = kh // 2 if padding is None else padding
  y = lax.conv_general_dilated(
      x, kernel, (stride, stride), [(padding, padding), (padding, padding)],
      dimension_numbers=_DN)
  return y if bias is None else y + bias


def conv_transpose2d(x: jax.Array, kernel: jax.Array, bias: jax.Array | None = None,
                     stride: int = 2, padding: int | None = None,
                     output_padding: int | None = None) -> jax.Array:
  """``torch.nn.functional.conv_transpose2d`` for a kernel stored ``(kh, kw, in, out)``.

  Equivalent to dilating the input by ``stride``, padding it by
  ``(k - 1 - p, k - 1 - p + output_padding)`` and correlating with the spatially
  flipped kernel.
  """
  k = kernel.shape[0]
  p = k // 2 if padding is None else padding
  op = stride - 1 if output_padding is None else output_padding
  lo, hi = k - 1 - p, k - 1 - p + op
  y = lax.conv_general_dilated(
      x, kernel[::-1, ::-1], (1, 1), [(lo, hi), (lo, hi)],
      lhs_dilation=(stride, stride), dimension_numbers=_DN)
  return y if bias is None else y + bias


def depthwise_conv2d(x: jax.Array, kernel: jax.Array,
                     bias: jax.Array | None = None) -> jax.Array:
  """Depthwise stride-1 convolution with padding ``k // 2``; kernel ``(kh, kw, 1, C)``.

  Written as ``kh * kw`` shifted multiply-adds, which XLA fuses into one loop; on the
  CPU this is several times faster than a grouped convolution (forward and backward).
  """
  kh, kw = kernel.shape[:2]
  ph, pw = kh // 2, kw // 2
  h, w = x.shape[1], x.shape[2]
  xp = jnp.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
  y = None
  for i in range(kh):
    for j in range(kw):
      term = xp[:, i:i + h, j:j + w, :] * kernel[i, j, 0]
      y = term if y is None else y + term
  return y if bias is None else y + bias


def depthwise_conv2d_reference(x, kernel, bias=None):
  """Grouped XLA convolution (``feature_group_count = C``), for tests."""
  kh = kernel.shape[0]
  y = lax.conv_general_dilated(
      x, kernel, (1, 1), [(kh // 2, kh // 2)] * 2, dimension_numbers=_DN,
      feature_group_count=x.shape[-1])
  return y if bias is None else y + bias


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


# ----------------------------------------------------------------------------
# Modules.
# ----------------------------------------------------------------------------


class Conv2d(nn.Module):
  """``nn.Conv2d(in, features, kernel_size, stride, padding=kernel_size // 2)``."""
  features: int
  kernel_size: int
  stride: int = 1

  @nn.compact
  def __call__(self, x):
    k, cin = self.kernel_size, x.shape[-1]
    init = torch_uniform_init(cin * k * k)
    kernel = self.param("kernel", init, (k, k, cin, self.features))
    bias = self.param("bias", init, (self.features,))
    return conv2d(x, kernel, bias, self.stride)


class ConvTranspose2d(nn.Module):
  """``nn.ConvTranspose2d(in, features, k, s, padding=k // 2, output_padding=s - 1)``."""
  features: int
  kernel_size: int
  stride: int = 2

  @nn.compact
  def __call__(self, x):
    k, cin = self.kernel_size, x.shape[-1]
    # PyTorch computes fan_in from weight.size(1), which is out_channels here.
    init = torch_uniform_init(self.features * k * k)
    kernel = self.param("kernel", init, (k, k, cin, self.features))
    bias = self.param("bias", init, (self.features,))
    return conv_transpose2d(x, kernel, bias, self.stride)


class DepthwiseConv2d(nn.Module):
  """``nn.Conv2d(C, C, kernel_size, padding=kernel_size // 2, groups=C)``."""
  kernel_size: int = 3

  @nn.compact
  def __call__(self, x):
    k, c = self.kernel_size, x.shape[-1]
    init = torch_uniform_init(k * k)
    kernel = self.param("kernel", init, (k, k, 1, c))
    bias = self.param("bias", init, (c,))
    return depthwise_conv2d(x, kernel, bias)


class LayerNorm2d(nn.Module):
  """NAFNet's ``LayerNorm2d`` (eps 1e-6): weight 1, bias 0 at init."""
  eps: float = 1e-6

  @nn.compact
  def __call__(self, x):
    c = x.shape[-1]
    weight = self.param("weight", nn.initializers.ones, (c,))
    bias = self.param("bias", nn.initializers.zeros, (c,))
    return layer_norm_2d(x, weight, bias, self.eps)


class NAFBlock(nn.Module):
  """NAFNet block (paper.md 2.1); identity at init since beta = gamma = 0.

  Sub-module names follow the official state dict (``dwconv.0``, ``dwconv.1``,
  ``sca.1``, ``conv1``, ``FFN.0``, ``FFN.2``, ``norm1``, ``norm2``, ``beta``, ``gamma``).
  SCA pools over the whole spatial extent it is given.
  """

  @nn.compact
  def __call__(self, x):
    d = x.shape[-1]
    t = LayerNorm2d(name="norm1")(x)
    t = Conv2d(2 * d, 1, name="dwconv_0")(t)
    t = DepthwiseConv2d(3, name="dwconv_1")(t)
    t = simple_gate(t)
    t = t * Conv2d(d, 1, name="sca_1")(jnp.mean(t, axis=(1, 2), keepdims=True))
    t = Conv2d(d, 1, name="conv1")(t)
    beta = self.param("beta", nn.initializers.zeros, (d,))
    x = x + beta * t
    t = LayerNorm2d(name="norm2")(x)
    t = Conv2d(2 * d, 1, name="FFN_0")(t)
    t = simple_gate(t)
    t = Conv2d(d, 1, name="FFN_2")(t)
    gamma = self.param("gamma", nn.initializers.zeros, (d,))
    return x + gamma * t


class ResidualBottleneckBlock(nn.Module):
  """``x + conv1x1(relu(conv3x3(relu(conv1x1(x)))))`` with a C/2 bottleneck."""

  @nn.compact
  def __call__(self, x):
    c = x.shape[-1]
    m = c // 2
    t = nn.relu(Conv2d(m, 1, name="conv1")(x))
    t = nn.relu(Conv2d(m, 3, name="conv2")(t))
    return x + Conv2d(c, 1, name="conv3")(t)


class NAFStack(nn.Module):
  """The entropy model's NAF transform (``blocks`` in the official code).

  ``out_conv(h + NAF_L(...NAF_1(h)))`` with ``h = in_conv(x)``; ``features`` output
  channels (``None``: as many as the input), ``dim`` internal width, ``layers`` NAF
  blocks.
  """
  features: int | None = None
  dim: int = 224
  layers: int = 4

  @nn.compact
  def __call__(self, x):
    h = Conv2d(self.dim, 1, name="in_conv")(x)
    t = h
    for j in range(self.layers):
      t = NAFBlock(name=f"blocks_{j}")(t)
    features = x.shape[-1] if self.features is None else self.features
    return Conv2d(features, 1, name="out_conv")(h + t)
