"""Analysis, synthesis and hyper transforms of the CCA model (official models/vae.py).

Role names follow tensorflow/compression; parameter names follow the official
PyTorch state dict (``g_a.down.i``, ``g_a.blocks.stage.j``, ``h_a.i`` ...), with
numeric indices joined by ``_`` (see ``cca_jax.convert_torch``).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn

from cca_jax.model.layers import Conv2d, ConvTranspose2d, NAFBlock, ResidualBottleneckBlock
from cca_jax.ops.activations import gelu


class AnalysisTransform(nn.Module):
  """g_a: per stage ``conv5x5 s2`` -> ``num_rbb`` x RBB -> ``layers`` x NAF;
  then a final ``conv5x5 s2`` to ``M`` channels (16x downsampling in all)."""
  M: int
  dims: Sequence[int]
  layers: Sequence[int]
  num_rbb: int

  @nn.compact
  def __call__(self, x):
    for s, (d, n_naf) in enumerate(zip(self.dims, self.layers)):
      x = Conv2d(d, 5, 2, name=f"down_{s}")(x)
      for j in range(self.num_rbb):
        x = ResidualBottleneckBlock(name=f"blocks_{s}_{j}")(x)
      for j in range(n_naf):
        x = NAFBlock(name=f"blocks_{s}_{self.num_rbb + j}")(x)
    return Conv2d(self.M, 5, 2, name=f"down_{len(self.dims)}")(x)


class SynthesisTransform(nn.Module):
  """g_s: ``deconv5x5 s2`` then per stage ``layers`` x NAF -> ``num_rbb`` x RBB ->
  ``deconv5x5 s2``, mirroring g_a; 3 output channels, no clamp."""
  dims: Sequence[int]
  layers: Sequence[int]
  num_rbb: int
  out_channels: int = 3

  @nn.compact
  def __call__(self, y):
    dims = list(self.dims)[::-1]
    layers = list(self.layers)[::-1]
    x = y
    for s, (d, n_naf) in enumerate(zip(dims, layers)):
      x = ConvTranspose2d(d, 5, 2, name=f"up_{s}")(x)
      for j in range(n_naf):
        x = NAFBlock(name=f"blocks_{s}_{j}")(x)
      for j in range(self.num_rbb):
        x = ResidualBottleneckBlock(name=f"blocks_{s}_{n_naf + j}")(x)
    return ConvTranspose2d(self.out_channels, 5, 2, name=f"up_{len(dims)}")(x)


class HyperAnalysisTransform(nn.Module):
  """h_a: ``conv3x3 s1 -> GELU -> conv5x5 s2 -> GELU -> conv5x5 s2`` (y -> z)."""
  N: int
  dim: int

  @nn.compact
  def __call__(self, y):
    x = gelu(Conv2d(self.dim, 3, 1, name="layers_0")(y))
    x = gelu(Conv2d(self.dim, 5, 2, name="layers_2")(x))
    return Conv2d(self.N, 5, 2, name="layers_4")(x)


class HyperSynthesisTransform(nn.Module):
  """h_mean_s / h_scale_s: ``deconv5x5 s2 -> GELU -> deconv5x5 s2 -> GELU ->
  deconv3x3 s1`` (z_hat -> M channels of latent means or scales)."""
  M: int
  dim: int

  @nn.compact
  def __call__(self, z_hat):
    x = gelu(ConvTranspose2d(self.dim, 5, 2, name="layers_0")(z_hat))
    x = gelu(ConvTranspose2d(self.dim, 5, 2, name="layers_2")(x))
    return ConvTranspose2d(self.M, 3, 1, name="layers_4")(x)
