"""Building blocks of the CCA transforms (official models/vae.py), NHWC layout.

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

Parameter initialisation is PyTorch's default, as in the official code: weights and
biases ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (kaiming_uniform with a=sqrt(5)), where
a transposed convolution's fan_in is ``out_channels * k * k`` as PyTorch computes it.

Computation: each layer calls a pure function of ``cca_jax.ops.convolution``
(``conv2d``, ``conv_transpose2d``, ``depthwise_conv2d``), which picks the formulation
for the backend (``formulation()``; parameters are the same in both).
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from cca_jax.ops.activations import layer_norm_2d, simple_gate
from cca_jax.ops.convolution import conv2d, conv_transpose2d, depthwise_conv2d
from cca_jax.ops.initializers import torch_uniform_init


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
  """NAFNet block (official models/vae.py); identity at init since beta = gamma = 0.

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
  dim: int
  layers: int
  features: int | None = None

  @nn.compact
  def __call__(self, x):
    h = Conv2d(self.dim, 1, name="in_conv")(x)
    t = h
    for j in range(self.layers):
      t = NAFBlock(name=f"blocks_{j}")(t)
    features = x.shape[-1] if self.features is None else self.features
    return Conv2d(features, 1, name="out_conv")(h + t)
