"""Test-only PyTorch reference of the official CCA model (Han et al., NeurIPS 2024).

This file re-creates, in one self-contained module, the official PyTorch model of
github.com/CVL-UESTC/CCA (models/vae.py, models/aux_em.py, train.py) together with
the CompressAI 1.2.x pieces it relies on (LowerBound, EntropyBottleneck,
GaussianConditional, ResidualBottleneckBlock, ste_round).  It imports only torch,
numpy, math and the standard library (no compressai), so tests of the JAX port can
compare against it without extra dependencies.

Comments cite the official files (models/vae.py, models/aux_em.py, train.py) and
CompressAI 1.2.x, which this module mirrors.

Public API
----------
slice_sizes(M, k, num_slices) -> list[int]                       (models/vae.py)
CCARef(M=320, N=192, hyper_dim=256, ae_dim=(192, 224, 256), ae_layers=(4, 4, 4),
    num_rbb=3, em_dim=224, em_layers=4, cc_dims=(224, 128), k=1.7,
    num_slices=5, cca_training=True)
CCARef.forward(x, training, noise=None) -> dict                  (vae.py, aux_em.py)
rd_loss(out, target, beta, lmbda=0.05, alpha=1.0, metric="mse") -> dict   (train.py)
quantile_loss(model) -> tensor                                   (train.py, "aux_loss")
randomize_(model, seed, scale=0.05) -> model

The state_dict of ``CCARef()`` (default config) has exactly the tensor names,
shapes and parameter/buffer kinds of the official checkpoint (2,316 tensors), so an
official checkpoint (``ckpt['state_dict']``, 'module.' prefix stripped) loads with
strict=True. The self-check compares against a tab-separated listing of the official
state dict, which is not part of this repository (pass its path as argument).

Run ``python tests/torch_reference.py`` for the self-checks at the bottom.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
  "LowerBound",
  "EntropyBottleneck",
  "GaussianConditional",
  "ste_round",
  "conv",
  "deconv",
  "LayerNorm2d",
  "SimpleGate",
  "NAFBlock",
  "ResidualBottleneckBlock",
  "NAFTransform",
  "AnalysisTransform",
  "SynthesisTransform",
  "AuxEntropyModel",
  "CCARef",
  "slice_sizes",
  "rd_loss",
  "quantile_loss",
  "randomize_",
]


# ---------------------------------------------------------------------------
# CompressAI 1.2.x pieces (compressai.entropy_models, compressai.ops)
# ---------------------------------------------------------------------------


class _LowerBoundFunction(torch.autograd.Function):
  """compressai.ops.parametrizers/bound_ops.LowerBoundFunction.

  forward: max(x, bound).  backward: the gradient passes where x >= bound, or
  where it is negative (i.e. where gradient descent would *raise* x).
  """

  @staticmethod
  def forward(ctx, input_, bound):
    ctx.save_for_backward(input_, bound)
    return torch.max(input_, bound)

  @staticmethod
  def backward(ctx, grad_output):
    input_, bound = ctx.saved_tensors
    pass_through_if = (input_ >= bound) | (grad_output < 0)
    return pass_through_if.type(grad_output.dtype) * grad_output, None


class LowerBound(nn.Module):
  """compressai.ops.LowerBound: buffer ``bound`` of shape (1,)."""

  bound: torch.Tensor

  def __init__(self, bound: float):
    super().__init__()
    self.register_buffer("bound", torch.Tensor([float(bound)]))

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return _LowerBoundFunction.apply(x, self.bound)


def ste_round(x: torch.Tensor) -> torch.Tensor:
  """compressai.ops.ste_round: round in the forward pass, identity gradient."""
  return torch.round(x) - x.detach() + x


def _uniform_noise(like: torch.Tensor, noise: Optional[torch.Tensor]) -> torch.Tensor:
  """The injected noise if given (checked against ``like``), else U(-0.5, 0.5)."""
  if noise is None:
    return torch.rand_like(like) - 0.5
  if tuple(noise.shape) != tuple(like.shape):
    raise ValueError(f"noise shape {tuple(noise.shape)} != {tuple(like.shape)}")
  return noise.to(dtype=like.dtype, device=like.device)


class _EntropyModelBuffers(nn.Module):
  """Buffers of compressai.entropy_models.EntropyModel (base class).

  ``_offset``, ``_quantized_cdf``, ``_cdf_length`` are empty int32 tensors until
  ``update()`` (not reproduced here); the likelihood floor is a LowerBound(1e-9).
  """

  def __init__(self, likelihood_bound: float = 1e-9):
    super().__init__()
    self.use_likelihood_bound = likelihood_bound > 0
    if self.use_likelihood_bound:
      self.likelihood_lower_bound = LowerBound(likelihood_bound)
    self.register_buffer("_offset", torch.IntTensor())
    self.register_buffer("_quantized_cdf", torch.IntTensor())
    self.register_buffer("_cdf_length", torch.IntTensor())


class EntropyBottleneck(_EntropyModelBuffers):
  """compressai.entropy_models.EntropyBottleneck (1.2.x), the factorized prior.

  Parameters: ``quantiles`` (C,1,3), ``matrices.{0..4}``, ``biases.{0..4}``,
  ``factors.{0..3}``; buffer ``target`` (3,).  Init as CompressAI.
  """

  def __init__(
    self,
    channels: int,
    tail_mass: float = 1e-9,
    init_scale: float = 10.0,
    filters: Sequence[int] = (3, 3, 3, 3),
    likelihood_bound: float = 1e-9,
  ):
    super().__init__(likelihood_bound)
    self.channels = int(channels)
    self.filters = tuple(int(f) for f in filters)
    self.init_scale = float(init_scale)
    self.tail_mass = float(tail_mass)

    filters_ = (1,) + self.filters + (1,)
    scale = self.init_scale ** (1 / (len(self.filters) + 1))
    C = self.channels

    self.matrices = nn.ParameterList()
    self.biases = nn.ParameterList()
    self.factors = nn.ParameterList()
    for i in range(len(self.filters) + 1):
      init = np.log(np.expm1(1 / scale / filters_[i + 1]))
      matrix = torch.empty(C, filters_[i + 1], filters_[i])
      matrix.data.fill_(init)
      self.matrices.append(nn.Parameter(matrix))

      bias = torch.empty(C, filters_[i + 1], 1)
      nn.init.uniform_(bias, -0.5, 0.5)
      self.biases.append(nn.Parameter(bias))

      if i < len(self.filters):
        factor = torch.empty(C, filters_[i + 1], 1)
        nn.init.zeros_(factor)
        self.factors.append(nn.Parameter(factor))

    self.quantiles = nn.Parameter(torch.empty(C, 1, 3))
    init = torch.Tensor([-self.init_scale, 0, self.init_scale])
    self.quantiles.data = init.repeat(self.quantiles.size(0), 1, 1)

    target = np.log(2 / self.tail_mass - 1)
    self.register_buffer("target", torch.Tensor([-target, 0, target]))

  def reset_density_(self, generator: Optional[torch.Generator] = None) -> None:
    """Put matrices/factors/quantiles back to the CompressAI init, re-draw biases."""
    filters_ = (1,) + self.filters + (1,)
    scale = self.init_scale ** (1 / (len(self.filters) + 1))
    with torch.no_grad():
      for i, m in enumerate(self.matrices):
        m.fill_(float(np.log(np.expm1(1 / scale / filters_[i + 1]))))
      for b in self.biases:
        b.copy_(torch.rand(b.shape, generator=generator, dtype=torch.float64).to(b.dtype) - 0.5)
      for f in self.factors:
        f.zero_()
      q = torch.tensor([-self.init_scale, 0.0, self.init_scale], dtype=self.quantiles.dtype)
      self.quantiles.copy_(q.repeat(self.channels, 1, 1))

  def _get_medians(self) -> torch.Tensor:
    # (C, 1, 1); not detached (its gradient through ste_round is exactly 0).
    return self.quantiles[:, :, 1:2]

  def _logits_cumulative(self, inputs: torch.Tensor, stop_gradient: bool) -> torch.Tensor:
    # inputs: (C, 1, L).  Cumulative logits of the learned per-channel density.
    logits = inputs
    for i in range(len(self.filters) + 1):
      matrix = self.matrices[i]
      if stop_gradient:
        matrix = matrix.detach()
      logits = torch.matmul(F.softplus(matrix), logits)

      bias = self.biases[i]
      if stop_gradient:
        bias = bias.detach()
      logits = logits + bias

      if i < len(self.factors):
        factor = self.factors[i]
        if stop_gradient:
          factor = factor.detach()
        logits = logits + torch.tanh(factor) * torch.tanh(logits)
    return logits

  def _likelihood(self, inputs: torch.Tensor) -> torch.Tensor:
    # Bin mass on [v-0.5, v+0.5], with CompressAI 1.2.x's sign trick (evaluates
    # the sigmoid difference in the tail where it is most accurate).
    half = float(0.5)
    lower = self._logits_cumulative(inputs - half, stop_gradient=False)
    upper = self._logits_cumulative(inputs + half, stop_gradient=False)
    sign = -torch.sign(lower + upper)
    sign = sign.detach()
    return torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))

  def loss(self) -> torch.Tensor:
    """Quantile ("aux") loss: trains only ``quantiles`` (density is detached)."""
    logits = self._logits_cumulative(self.quantiles, stop_gradient=True)
    return torch.abs(logits - self.target).sum()

  def forward(self, x: torch.Tensor, training: bool, noise: Optional[torch.Tensor] = None):
    """Returns (outputs, likelihood), both of x's shape (N, C, H, W).

    training: outputs = x + U(-0.5, 0.5) ("noise"; ``noise`` of x's shape if given).
    eval:     outputs = round(x - median) + median ("dequantize").
    """
    # x from N x C x ... to C x N x ... (as CompressAI does), then (C, 1, L).
    perm = list(range(x.dim()))
    perm[0], perm[1] = perm[1], perm[0]
    inv_perm = list(np.argsort(perm))
    xt = x.permute(*perm).contiguous()
    shape = xt.size()
    values = xt.reshape(xt.size(0), 1, -1)

    if training:
      n = _uniform_noise(x, noise).permute(*perm).reshape(values.shape)
      outputs = values + n
    else:
      medians = self._get_medians()
      outputs = torch.round(values - medians) + medians

    likelihood = self._likelihood(outputs)
    if self.use_likelihood_bound:
      likelihood = self.likelihood_lower_bound(likelihood)

    outputs = outputs.reshape(shape).permute(*inv_perm).contiguous()
    likelihood = likelihood.reshape(shape).permute(*inv_perm).contiguous()
    return outputs, likelihood


class GaussianConditional(_EntropyModelBuffers):
  """compressai.entropy_models.GaussianConditional(None) (1.2.x).

  Buffers: ``scale_table`` (empty), ``scale_bound`` (1,) = 0.11, plus
  ``lower_bound_scale.bound`` and the base-class ones.
  """

  def __init__(self, scale_bound: float = 0.11, tail_mass: float = 1e-9, likelihood_bound: float = 1e-9):
    super().__init__(likelihood_bound)
    self.register_buffer("scale_table", torch.Tensor())
    self.register_buffer("scale_bound", torch.Tensor([float(scale_bound)]))
    self.tail_mass = float(tail_mass)
    self.lower_bound_scale = LowerBound(scale_bound)

  @staticmethod
  def _standardized_cumulative(inputs: torch.Tensor) -> torch.Tensor:
    # Phi(x) = 0.5 * erfc(-x / sqrt(2)); erfc keeps precision in the lower tail.
    half = float(0.5)
    const = float(-(2**-0.5))
    return half * torch.erfc(const * inputs)

  def _likelihood(self, inputs: torch.Tensor, scales: torch.Tensor, means: Optional[torch.Tensor]) -> torch.Tensor:
    half = float(0.5)
    values = inputs - means if means is not None else inputs
    scales = self.lower_bound_scale(scales)
    values = torch.abs(values)
    upper = self._standardized_cumulative((half - values) / scales)
    lower = self._standardized_cumulative((-half - values) / scales)
    return upper - lower

  def forward(
    self,
    inputs: torch.Tensor,
    scales: torch.Tensor,
    means: Optional[torch.Tensor],
    training: bool,
    noise: Optional[torch.Tensor] = None,
  ):
    """training: inputs + U(-0.5,0.5) (means ignored); eval: round(inputs-means)+means."""
    if training:
      outputs = inputs + _uniform_noise(inputs, noise)
    else:
      if means is not None:
        outputs = torch.round(inputs - means) + means
      else:
        outputs = torch.round(inputs)
    likelihood = self._likelihood(outputs, scales, means)
    if self.use_likelihood_bound:
      likelihood = self.likelihood_lower_bound(likelihood)
    return outputs, likelihood


# ---------------------------------------------------------------------------
# Building blocks (models/vae.py)
# ---------------------------------------------------------------------------


def conv(cin: int, cout: int, k: int = 5, s: int = 2, groups: int = 1) -> nn.Conv2d:
  """Conv2d with symmetric padding k//2 (bias on)."""
  return nn.Conv2d(cin, cout, kernel_size=k, stride=s, padding=k // 2, groups=groups)


def deconv(cin: int, cout: int, k: int = 5, s: int = 2) -> nn.ConvTranspose2d:
  """ConvTranspose2d(padding=k//2, output_padding=s-1): exactly x s upsampling."""
  return nn.ConvTranspose2d(cin, cout, kernel_size=k, stride=s, padding=k // 2, output_padding=s - 1)


class LayerNorm2d(nn.Module):
  """NAFNet LayerNorm2d: per pixel over channels, biased variance, eps=1e-6.

  (NAFNet uses a custom autograd Function whose backward is the exact gradient,
  so plain autodiff is equivalent.)
  """

  def __init__(self, channels: int, eps: float = 1e-6):
    super().__init__()
    self.weight = nn.Parameter(torch.ones(channels))
    self.bias = nn.Parameter(torch.zeros(channels))
    self.eps = eps

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    C = x.size(1)
    mu = x.mean(1, keepdim=True)
    var = (x - mu).pow(2).mean(1, keepdim=True)
    y = (x - mu) / (var + self.eps).sqrt()
    return self.weight.view(1, C, 1, 1) * y + self.bias.view(1, C, 1, 1)


class SimpleGate(nn.Module):
  """Split channels into halves and multiply them."""

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=1)
    return x1 * x2


class NAFBlock(nn.Module):
  """NAFNet block with the official CCA submodule names (models/vae.py).

  stage 1: x + beta  * conv1(sca_mul(SG(dwconv(norm1(x)))))
  stage 2: x + gamma * FFN(norm2(x)),  FFN = 1x1 (d->2d), SG, 1x1 (d->d)
  sca_mul(t) = t * sca(t), sca = AdaptiveAvgPool2d(1) then 1x1 (d->d).
  beta, gamma: (1, d, 1, 1), zero-initialised.  Params: 7 d^2 + 33 d.
  """

  def __init__(self, d: int):
    super().__init__()
    self.norm1 = LayerNorm2d(d)
    self.dwconv = nn.Sequential(
      conv(d, 2 * d, k=1, s=1),
      conv(2 * d, 2 * d, k=3, s=1, groups=2 * d),
    )
    self.sg = SimpleGate()
    self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1), conv(d, d, k=1, s=1))
    self.conv1 = conv(d, d, k=1, s=1)
    self.norm2 = LayerNorm2d(d)
    self.FFN = nn.Sequential(conv(d, 2 * d, k=1, s=1), SimpleGate(), conv(d, d, k=1, s=1))
    self.beta = nn.Parameter(torch.zeros((1, d, 1, 1)))
    self.gamma = nn.Parameter(torch.zeros((1, d, 1, 1)))

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    t = self.norm1(x)
    t = self.dwconv(t)
    t = self.sg(t)
    t = t * self.sca(t)
    t = self.conv1(t)
    y = x + t * self.beta
    t = self.FFN(self.norm2(y))
    return y + t * self.gamma


class ResidualBottleneckBlock(nn.Module):
  """compressai.layers.ResidualBottleneckBlock(c, c): x + 1x1(ReLU(3x3(ReLU(1x1(x)))))."""

  def __init__(self, c: int):
    super().__init__()
    mid = c // 2
    self.conv1 = conv(c, mid, k=1, s=1)
    self.relu = nn.ReLU()
    self.conv2 = conv(mid, mid, k=3, s=1)
    self.conv3 = conv(mid, c, k=1, s=1)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    out = self.relu(self.conv1(x))
    out = self.relu(self.conv2(out))
    return x + self.conv3(out)


class NAFTransform(nn.Module):
  """The entropy model's ``blocks(cin, cout, inter, layers)`` (models/vae.py).

  h = in_conv(x) (1x1 cin->inter);  out_conv(h + blocks(h)) (1x1 inter->cout).
  """

  def __init__(self, cin: int, cout: int, inter: int = 224, layers: int = 4):
    super().__init__()
    self.in_conv = conv(cin, inter, k=1, s=1)
    self.blocks = nn.Sequential(*[NAFBlock(inter) for _ in range(layers)])
    self.out_conv = conv(inter, cout, k=1, s=1)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    h = self.in_conv(x)
    return self.out_conv(h + self.blocks(h))


def _cc_transform(cin: int, cout: int, cc_dims: Sequence[int]) -> nn.Sequential:
  """conv3x3 -> GELU -> conv3x3 -> GELU -> conv3x3 (models/vae.py); used for mean,
  scale and LRP heads.  Indices 0, 2, 4 hold the convs (state_dict names)."""
  return nn.Sequential(
    conv(cin, cc_dims[0], k=3, s=1),
    nn.GELU(),
    conv(cc_dims[0], cc_dims[1], k=3, s=1),
    nn.GELU(),
    conv(cc_dims[1], cout, k=3, s=1),
  )


# ---------------------------------------------------------------------------
# Main transforms (models/vae.py)
# ---------------------------------------------------------------------------


class AnalysisTransform(nn.Module):
  """g_a: for each stage d in ae_dim: conv5x5 s2 (prev->d), then blocks.{stage} =
  num_rbb x RBB(d) followed by ae_layers[stage] x NAF(d); finally conv5x5 s2 -> M.
  Names: down.{0..3}, blocks.{0..2}.{j}."""

  def __init__(self, M: int, ae_dim: Sequence[int], ae_layers: Sequence[int], num_rbb: int):
    super().__init__()
    dims = [3] + list(ae_dim)
    self.down = nn.ModuleList([conv(dims[i], dims[i + 1], 5, 2) for i in range(len(ae_dim))])
    self.down.append(conv(dims[-1], M, 5, 2))
    self.blocks = nn.ModuleList(
      [
        nn.Sequential(
          *[ResidualBottleneckBlock(d) for _ in range(num_rbb)],
          *[NAFBlock(d) for _ in range(n)],
        )
        for d, n in zip(ae_dim, ae_layers)
      ]
    )

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    for down, blocks in zip(self.down, self.blocks):
      x = blocks(down(x))
    return self.down[-1](x)


class SynthesisTransform(nn.Module):
  """g_s: deconv5x5 s2 (M->ae_dim[-1]), then for each stage (reversed dims):
  blocks.{stage} = NAF x ae_layers (reversed) followed by num_rbb x RBB, then
  deconv to the next dim; the last deconv goes to 3 channels.  No clamp.
  Names: up.{0..3}, blocks.{0..2}.{j}."""

  def __init__(self, M: int, ae_dim: Sequence[int], ae_layers: Sequence[int], num_rbb: int):
    super().__init__()
    rdims = list(ae_dim)[::-1]
    rlayers = list(ae_layers)[::-1]
    dims = [M] + rdims + [3]
    self.up = nn.ModuleList([deconv(dims[i], dims[i + 1], 5, 2) for i in range(len(dims) - 1)])
    self.blocks = nn.ModuleList(
      [
        nn.Sequential(
          *[NAFBlock(d) for _ in range(n)],
          *[ResidualBottleneckBlock(d) for _ in range(num_rbb)],
        )
        for d, n in zip(rdims, rlayers)
      ]
    )

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    for up, blocks in zip(self.up, self.blocks):
      x = blocks(up(x))
    return self.up[-1](x)


def _hyper_analysis(M: int, N: int, hyper_dim: int) -> nn.Sequential:
  """h_a: conv3x3 s1 (M->hd) GELU conv5x5 s2 (hd->hd) GELU conv5x5 s2 (hd->N)."""
  return nn.Sequential(
    conv(M, hyper_dim, 3, 1),
    nn.GELU(),
    conv(hyper_dim, hyper_dim, 5, 2),
    nn.GELU(),
    conv(hyper_dim, N, 5, 2),
  )


def _hyper_synthesis(M: int, N: int, hyper_dim: int) -> nn.Sequential:
  """h_mean_s / h_scale_s: deconv5x5 s2 (N->hd) GELU deconv5x5 s2 GELU deconv3x3 s1 (hd->M)."""
  return nn.Sequential(
    deconv(N, hyper_dim, 5, 2),
    nn.GELU(),
    deconv(hyper_dim, hyper_dim, 5, 2),
    nn.GELU(),
    deconv(hyper_dim, M, 3, 1),
  )


# ---------------------------------------------------------------------------
# Uneven channel groups (models/vae.py, prop_slices)
# ---------------------------------------------------------------------------


def slice_sizes(M: int, k: float, num_slices: int) -> List[int]:
  """prop_i = (i+1)^k; size_i = floor(M / sum(prop) * prop_i); the last slice takes
  the remainder.  M=320, k=1.7, 5 slices -> [8, 28, 56, 92, 136]."""
  prop = [float(i + 1) ** k for i in range(num_slices)]
  total = sum(prop)
  sizes = [int(math.floor(M / total * p)) for p in prop[:-1]]
  sizes.append(M - sum(sizes))
  return sizes


# ---------------------------------------------------------------------------
# Auxiliary entropy model (models/aux_em.py)
# ---------------------------------------------------------------------------


class AuxEntropyModel(nn.Module):
  """Aux channel-wise EM: slice i's context is cat(latent, y_hat_0..y_hat_{i-2})
  (skips the immediately preceding slice); LRP exists only for slices
  0..num_slices-3 (the only ones ever used as context).  Own EntropyBottleneck(M)
  on y (-> 'y_aux') and own GaussianConditional (-> 'y_cca')."""

  def __init__(self, M: int, sizes: Sequence[int], em_dim: int, em_layers: int, cc_dims: Sequence[int]):
    super().__init__()
    self.M = M
    self.sizes = list(sizes)
    S = len(self.sizes)
    # aux context width of slice i: M + sum(sizes[:max(i-1, 0)])
    ctx = [M + sum(self.sizes[: max(i - 1, 0)]) for i in range(S)]
    self.mean_NAF_transforms = nn.ModuleList([NAFTransform(c, c, em_dim, em_layers) for c in ctx])
    self.scale_NAF_transforms = nn.ModuleList([NAFTransform(c, c, em_dim, em_layers) for c in ctx])
    self.mean_cc_transforms = nn.ModuleList([_cc_transform(c, s, cc_dims) for c, s in zip(ctx, self.sizes)])
    self.scale_cc_transforms = nn.ModuleList([_cc_transform(c, s, cc_dims) for c, s in zip(ctx, self.sizes)])
    self.lrp_transforms = nn.ModuleList(
      [_cc_transform(ctx[i] + self.sizes[i], self.sizes[i], cc_dims) for i in range(max(S - 2, 0))]
    )
    self.y_entropy_bottleneck = EntropyBottleneck(M)
    self.gaussian_conditional = GaussianConditional(0.11)

  def forward(
    self,
    y: torch.Tensor,
    latent_means: torch.Tensor,
    latent_scales: torch.Tensor,
    training: bool,
    noise_y_aux: Optional[torch.Tensor] = None,
    noise_y_cca: Optional[Sequence[torch.Tensor]] = None,
  ):
    """Returns (y_aux_likelihoods, y_cca_likelihoods, aux_means, aux_scales).

    y is the UNQUANTISED encoder output (as in models/aux_em.py)."""
    # Factorized density of y (its own noise draw in training).
    _, y_aux_likelihoods = self.y_entropy_bottleneck(y, training, noise_y_aux)

    y_slices = y.split(self.sizes, dim=1)
    y_hat_slices: List[torch.Tensor] = []
    likelihoods, mus, scales = [], [], []
    for i, y_slice in enumerate(y_slices):
      # official: y_hat_slices[:(i-1)] if i-1 > 0 else []
      support = y_hat_slices[: (i - 1)] if i - 1 > 0 else []
      mean_support = self.mean_NAF_transforms[i](torch.cat([latent_means] + support, dim=1))
      mu = self.mean_cc_transforms[i](mean_support)
      scale_support = self.scale_NAF_transforms[i](torch.cat([latent_scales] + support, dim=1))
      scale = self.scale_cc_transforms[i](scale_support)
      n = noise_y_cca[i] if noise_y_cca is not None else None
      _, lik = self.gaussian_conditional(y_slice, scale, mu, training, n)
      likelihoods.append(lik)
      mus.append(mu)
      scales.append(scale)
      if i < len(self.lrp_transforms):
        y_hat_slice = ste_round(y_slice - mu) + mu
        lrp = self.lrp_transforms[i](torch.cat([mean_support, y_hat_slice], dim=1))
        y_hat_slice = y_hat_slice + 0.5 * torch.tanh(lrp)
        y_hat_slices.append(y_hat_slice)
    return y_aux_likelihoods, torch.cat(likelihoods, dim=1), mus, scales


# ---------------------------------------------------------------------------
# The full model (models/vae.py; CompressAI entropy models)
# ---------------------------------------------------------------------------


class CCARef(nn.Module):
  """Official CCA model (models/vae.py) with the official state_dict names."""

  @classmethod
  def from_config(cls, m, cca_training: bool = True) -> "CCARef":
    """The reference model of a cca-jax model config (``config.model``)."""
    return cls(M=m.M, N=m.N, hyper_dim=m.hyper_dim, ae_dim=tuple(m.ae_dim),
               ae_layers=tuple(m.ae_layers), num_rbb=m.num_rbb, em_dim=m.em_dim,
               em_layers=m.em_layers, cc_dims=tuple(m.cc_dims), k=m.k,
               num_slices=m.num_slices, cca_training=cca_training)

  def __init__(
    self,
    M: int = 320,
    N: int = 192,
    hyper_dim: int = 256,
    ae_dim: Sequence[int] = (192, 224, 256),
    ae_layers: Sequence[int] = (4, 4, 4),
    num_rbb: int = 3,
    em_dim: int = 224,
    em_layers: int = 4,
    cc_dims: Sequence[int] = (224, 128),
    k: float = 1.7,
    num_slices: int = 5,
    cca_training: bool = True,
  ):
    super().__init__()
    self.M, self.N = M, N
    self.num_slices = num_slices
    self.cca_training = cca_training
    self.sizes = slice_sizes(M, k, num_slices)

    # 2.2 transforms
    self.g_a = AnalysisTransform(M, ae_dim, ae_layers, num_rbb)
    self.g_s = SynthesisTransform(M, ae_dim, ae_layers, num_rbb)
    self.h_a = _hyper_analysis(M, N, hyper_dim)
    self.h_mean_s = _hyper_synthesis(M, N, hyper_dim)
    self.h_scale_s = _hyper_synthesis(M, N, hyper_dim)

    # 2.3 channel-wise AR EM: slice i's context width M + cum_i
    cum = [sum(self.sizes[:i]) for i in range(num_slices)]
    ctx = [M + c for c in cum]
    self.mean_NAF_transforms = nn.ModuleList([NAFTransform(c, c, em_dim, em_layers) for c in ctx])
    self.scale_NAF_transforms = nn.ModuleList([NAFTransform(c, c, em_dim, em_layers) for c in ctx])
    self.mean_cc_transforms = nn.ModuleList([_cc_transform(c, s, cc_dims) for c, s in zip(ctx, self.sizes)])
    self.scale_cc_transforms = nn.ModuleList([_cc_transform(c, s, cc_dims) for c, s in zip(ctx, self.sizes)])
    self.lrp_transforms = nn.ModuleList(
      [_cc_transform(c + s, s, cc_dims) for c, s in zip(ctx, self.sizes)]
    )

    # 2.4 entropy models
    self.z_entropy_bottleneck = EntropyBottleneck(N)
    self.gaussian_conditional = GaussianConditional(0.11)

    # 2.6 auxiliary EM (training only)
    if cca_training:
      self.aux_entropymodel = AuxEntropyModel(M, self.sizes, em_dim, em_layers, cc_dims)

  def forward(self, x: torch.Tensor, training: bool, noise: Optional[Dict] = None) -> Dict:
    """x: (N, 3, H, W) in [0, 1].

    training=True: rate terms use additive U(-0.5,0.5) noise ('noise' mode);
    training=False: rate terms use round(v - mu) + mu ('dequantize' mode).
    The decoder / context path always uses STE rounding (+ LRP for y).

    noise (optional, only read when training): dict of U(-0.5,0.5) tensors
     'z':     z's shape                       (z EntropyBottleneck)
     'y':     list of per-slice tensors       (main GaussianConditional)
     'y_cca': list of per-slice tensors       (aux GaussianConditional)
     'y_aux': y's shape                       (aux EntropyBottleneck)
    Missing keys fall back to fresh torch.rand noise.
    """
    noise = noise if (training and noise is not None) else {}

    y = self.g_a(x)
    z = self.h_a(y)

    # z rate + z_hat (CompressAI): likelihood from noise/dequantize, z_hat via STE.
    _, z_likelihoods = self.z_entropy_bottleneck(z, training, noise.get("z"))
    z_offset = self.z_entropy_bottleneck._get_medians()  # (C,1,1) broadcasts as (1,C,1,1)
    z_hat = ste_round(z - z_offset) + z_offset

    latent_scales = self.h_scale_s(z_hat)
    latent_means = self.h_mean_s(z_hat)
    # Not in the official code: crop the hyper-synthesis output to y's size.  It is a
    # no-op when H, W are multiples of 64 (the official code pads to 128); otherwise
    # the official forward fails at the first concatenation with a y_hat slice.
    Hy, Wy = y.shape[2:]
    latent_scales = latent_scales[:, :, :Hy, :Wy]
    latent_means = latent_means[:, :, :Hy, :Wy]

    # Slice loop (models/vae.py)
    y_slices = y.split(self.sizes, dim=1)
    y_hat_slices: List[torch.Tensor] = []
    y_likelihoods, mus, scales = [], [], []
    noise_y = noise.get("y")
    for i, y_slice in enumerate(y_slices):
      support = y_hat_slices  # all previous slices
      mean_support = self.mean_NAF_transforms[i](torch.cat([latent_means] + support, dim=1))
      mu = self.mean_cc_transforms[i](mean_support)
      mu = mu[:, :, :Hy, :Wy]
      scale_support = self.scale_NAF_transforms[i](torch.cat([latent_scales] + support, dim=1))
      scale = self.scale_cc_transforms[i](scale_support)
      scale = scale[:, :, :Hy, :Wy]
      mus.append(mu)
      scales.append(scale)

      n = noise_y[i] if noise_y is not None else None
      _, lik = self.gaussian_conditional(y_slice, scale, mu, training, n)
      y_likelihoods.append(lik)

      y_hat_slice = ste_round(y_slice - mu) + mu
      lrp = self.lrp_transforms[i](torch.cat([mean_support, y_hat_slice], dim=1))
      y_hat_slice = y_hat_slice + 0.5 * torch.tanh(lrp)
      y_hat_slices.append(y_hat_slice)

    y_hat = torch.cat(y_hat_slices, dim=1)
    x_hat = self.g_s(y_hat)

    out = {
      "x_hat": x_hat,
      "y": y,
      "z": z,
      "z_hat": z_hat,
      "y_hat": y_hat,
      "latent_means": latent_means,
      "latent_scales": latent_scales,
      "means": mus,
      "scales": scales,
      "likelihoods": {"y": torch.cat(y_likelihoods, dim=1), "z": z_likelihoods},
    }
    if self.cca_training:
      y_aux, y_cca, aux_mus, aux_scales = self.aux_entropymodel(
        y, latent_means, latent_scales, training, noise.get("y_aux"), noise.get("y_cca")
      )
      out["likelihoods"]["y_aux"] = y_aux
      out["likelihoods"]["y_cca"] = y_cca
      out["aux_means"] = aux_mus
      out["aux_scales"] = aux_scales
    return out


# ---------------------------------------------------------------------------
# Losses (train.py RateDistortionLoss)
# ---------------------------------------------------------------------------


def _bits(likelihoods: torch.Tensor) -> torch.Tensor:
  # CompressAI/train.py convention: log(p).sum() / (-ln 2)
  return torch.log(likelihoods).sum() / (-math.log(2))


def rd_loss(out: Dict, target: torch.Tensor, beta: float, lmbda: float = 0.05, alpha: float = 1.0, metric: str = "mse") -> Dict:
  """train.py RateDistortionLoss (MSE variant only).

  npix = N*H*W.  bpp_y = R_y, bpp_z = R_z, bpp_loss = R_y + R_z,
  cca_loss = R_y - R_cca, aux2_loss = -sum(p_cca * log2 p_aux) / npix,
  loss = lmbda*255^2*MSE + beta*bpp_loss + alpha*cca_loss + aux2_loss.
  Without the aux likelihoods (cca_training=False) cca_loss/aux2_loss are 0.
  """
  if metric != "mse":
    raise NotImplementedError("only the MSE objective is reproduced")
  N, _, H, W = target.size()
  npix = N * H * W
  lik = out["likelihoods"]
  res = {}
  res["bpp_y"] = _bits(lik["y"]) / npix
  res["bpp_z"] = _bits(lik["z"]) / npix
  res["bpp_loss"] = res["bpp_y"] + res["bpp_z"]
  if "y_cca" in lik and "y_aux" in lik:
    res["bpp_cca"] = _bits(lik["y_cca"]) / npix
    res["cca_loss"] = res["bpp_y"] - res["bpp_cca"]
    res["aux2_loss"] = -(lik["y_cca"] * torch.log2(lik["y_aux"])).sum() / npix
  else:
    zero = res["bpp_y"].new_zeros(())
    res["cca_loss"] = zero
    res["aux2_loss"] = zero
  res["mse_loss"] = F.mse_loss(out["x_hat"], target)
  res["loss"] = lmbda * 255**2 * res["mse_loss"] + beta * res["bpp_loss"] + alpha * res["cca_loss"] + res["aux2_loss"]
  return res


def quantile_loss(model: CCARef) -> torch.Tensor:
  """Sum of EntropyBottleneck.loss() over the z EB and (if present) the aux y EB."""
  loss = model.z_entropy_bottleneck.loss()
  aux = getattr(model, "aux_entropymodel", None)
  if aux is not None:
    loss = loss + aux.y_entropy_bottleneck.loss()
  return loss


# ---------------------------------------------------------------------------
# Deterministic non-trivial weights for comparison tests
# ---------------------------------------------------------------------------


def _fan_in(m: nn.Module) -> float:
  """Number of inputs feeding one output (per spatial position on average)."""
  kh, kw = m.kernel_size
  if isinstance(m, nn.ConvTranspose2d):
    return m.in_channels * kh * kw / (m.stride[0] * m.stride[1])
  return m.in_channels // m.groups * kh * kw


@torch.no_grad()
def randomize_(model: nn.Module, seed: int, scale: float = 0.05) -> nn.Module:
  """Overwrite parameters with deterministic, non-trivial random values.

  Values are drawn in float64 on the CPU from torch.Generator(seed), in sorted-name
  order, then cast to each parameter's dtype; buffers are untouched.

  * conv / deconv weights: N(0,1) * gain / sqrt(fan_in), gain 1, except
    - the last conv of g_a (-> y) and of h_a (-> z): gain 3, so y and z span
     several quantisation bins and rounding really matters;
    - the last conv of every scale_cc_transforms head: gain 0.25, with bias
     1 + N(0,1)*scale, so raw scales are mostly positive and O(1) (the 0.11
     bound handles the rest).
   (fan_in = Cin/groups*k^2 for Conv2d, Cin*k^2/stride^2 for ConvTranspose2d.)
   A fixed N(0,1)*scale for all weights makes the default (M=320) config blow
   up (|x_hat| ~ 1e2..1e3, most likelihoods floored) and leaves z ~ 0 in tiny
   configs, hence the fan-in scaling.
  * conv / deconv biases: N(0,1) * scale
  * NAF beta / gamma: N(0,1) * 0.3 (non-zero, so every block acts)
  * LayerNorm2d: weight 1 + N(0,1) * 0.1, bias N(0,1) * scale
  * EntropyBottlenecks: matrices / factors / quantiles put back to their
   CompressAI init, biases re-drawn U(-0.5, 0.5).
  """
  g = torch.Generator().manual_seed(int(seed))

  def randn(shape):
    return torch.randn(shape, generator=g, dtype=torch.float64)

  for _, m in sorted(model.named_modules(), key=lambda t: t[0]):
    if isinstance(m, EntropyBottleneck):
      m.reset_density_(g)

  last_ga = last_ha = None
  if isinstance(model, CCARef):
    last_ga = f"g_a.down.{len(model.g_a.down) - 1}"
    last_ha = "h_a.4"
  for name, m in sorted(model.named_modules(), key=lambda t: t[0]):
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
      gain = 1.0
      bias_mean = 0.0
      if name in (last_ga, last_ha):
        gain = 3.0
      elif "scale_cc_transforms." in name and name.endswith(".4"):
        gain, bias_mean = 0.25, 1.0
      m.weight.copy_((randn(m.weight.shape) * gain / math.sqrt(_fan_in(m))).to(m.weight.dtype))
      if m.bias is not None:
        m.bias.copy_((bias_mean + randn(m.bias.shape) * scale).to(m.bias.dtype))
    elif isinstance(m, LayerNorm2d):
      m.weight.copy_((1.0 + randn(m.weight.shape) * 0.1).to(m.weight.dtype))
      m.bias.copy_((randn(m.bias.shape) * scale).to(m.bias.dtype))
    elif isinstance(m, NAFBlock):
      m.beta.copy_((randn(m.beta.shape) * 0.3).to(m.beta.dtype))
      m.gamma.copy_((randn(m.gamma.shape) * 0.3).to(m.gamma.dtype))
  return model


# ---------------------------------------------------------------------------
# Self-checks (python tests/torch_reference.py)
# ---------------------------------------------------------------------------


def _read_tsv(path: str):
  rows = {}
  with open(path) as f:
    lines = [ln.rstrip("\n") for ln in f if not ln.startswith("#")]
  header = lines[0].split("\t")
  for ln in lines[1:]:
    if not ln.strip():
      continue
    rec = dict(zip(header, ln.split("\t")))
    shape = tuple(int(s) for s in rec["shape"].split("x"))
    if shape == (0,):
      shape = (0,)
    rows[rec["name"]] = (shape, rec["dtype"], int(rec["numel"]), rec["kind"], rec["part"])
  return rows


def _check_default_state_dict(tsv_path: str) -> None:
  torch.manual_seed(0)
  model = CCARef()
  assert model.sizes == [8, 28, 56, 92, 136], model.sizes
  sd = model.state_dict()
  rows = _read_tsv(tsv_path)
  missing = sorted(set(rows) - set(sd))
  extra = sorted(set(sd) - set(rows))
  assert not missing and not extra, f"missing={missing[:10]} extra={extra[:10]}"
  params = dict(model.named_parameters())
  buffers = dict(model.named_buffers())
  sums = {"main": 0, "aux": 0}
  for name, (shape, dtype, numel, kind, part) in rows.items():
    t = sd[name]
    assert tuple(t.shape) == shape, (name, tuple(t.shape), shape)
    assert str(t.dtype).replace("torch.", "") == dtype, (name, t.dtype, dtype)
    assert t.numel() == numel, name
    if kind == "parameter":
      assert name in params, name
      sums[part] += t.numel()
    else:
      assert name in buffers and name not in params, name
  assert sums == {"main": 64_988_067, "aux": 29_265_356}, sums
  n_main = sum(p.numel() for n, p in params.items() if not n.startswith("aux_entropymodel."))
  n_aux = sum(p.numel() for n, p in params.items() if n.startswith("aux_entropymodel."))
  assert (n_main, n_aux) == (64_988_067, 29_265_356), (n_main, n_aux)
  # loads strictly from its own state dict, and without the aux part into cca_training=False
  CCARef(cca_training=False).load_state_dict({k: v for k, v in sd.items() if not k.startswith("aux_")})
  print(f"[ok] default config: {len(sd)} state-dict tensors; params main {n_main:,} aux {n_aux:,}")


def _check_tiny(shape) -> None:
  cfg = dict(
    M=40, N=24, hyper_dim=32, ae_dim=(16, 24, 32), ae_layers=(1, 1, 1), num_rbb=1,
    em_dim=16, em_layers=1, cc_dims=(16, 8),
  )
  torch.manual_seed(0)
  model = randomize_(CCARef(**cfg), seed=1)
  x = torch.rand(shape, generator=torch.Generator().manual_seed(2))
  for training in (True, False):
    out = model(x, training=training)
    assert out["x_hat"].shape == x.shape
    for key, lik in out["likelihoods"].items():
      assert torch.isfinite(lik).all() and (lik > 0).all() and (lik <= 1).all(), key
      assert lik.min() >= 1e-9 * (1 - 1e-6), key
    losses = rd_loss(out, x, beta=0.3)
    for key, v in losses.items():
      assert torch.isfinite(v), (key, v)
    model.zero_grad(set_to_none=True)
    (losses["loss"] + quantile_loss(model)).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(gr).all() for gr in grads)
    if training:
      # in training the main loss gives exactly zero gradient to the z-EB
      # medians (noise mode ignores them; d/dm of ste_round(z-m)+m is 0), 1.4
      model.zero_grad(set_to_none=True)
      losses = rd_loss(model(x, training=True), x, beta=0.3)
      losses["loss"].backward()
      qg = model.z_entropy_bottleneck.quantiles.grad
      assert qg is None or bool((qg == 0).all())
    losses = {k: v.detach() for k, v in losses.items()}
    frac = {k: round(float((v <= 1.001e-9).float().mean()), 3) for k, v in out["likelihoods"].items()}
    print(
      f"[ok] tiny {tuple(shape)} training={training}: y {tuple(out['y'].shape)} z {tuple(out['z'].shape)} "
      f"loss {float(losses['loss']):.3f} bpp {float(losses['bpp_loss']):.3f} "
      f"cca {float(losses['cca_loss']):.3f} aux2 {float(losses['aux2_loss']):.3f} "
      f"|y| {float(out['y'].detach().abs().mean()):.3f} floored fraction {frac}"
    )
  # injected noise is honoured: same noise -> identical outputs
  out0 = model(x, training=True)
  noise = {
    "z": torch.rand_like(out0["z"]) - 0.5,
    "y": [torch.rand_like(m) - 0.5 for m in out0["means"]],
    "y_cca": [torch.rand_like(m) - 0.5 for m in out0["aux_means"]],
    "y_aux": torch.rand_like(out0["y"]) - 0.5,
  }
  a = model(x, training=True, noise=noise)
  b = model(x, training=True, noise=noise)
  for key in a["likelihoods"]:
    assert torch.equal(a["likelihoods"][key], b["likelihoods"][key]), key
  print(f"[ok] tiny {tuple(shape)}: injected noise reproduces likelihoods exactly")


if __name__ == "__main__":
  import os
  import sys

  torch.set_num_threads(2)
  here = os.path.dirname(os.path.abspath(__file__))
  tsv = os.path.join(here, "..", "..", "shared", "docs", "official_state_dict.tsv")
  if not os.path.exists(tsv):
    tsv = "/work/shared/docs/official_state_dict.tsv"
  if len(sys.argv) > 1:
    tsv = sys.argv[1]

  assert slice_sizes(320, 1.7, 5) == [8, 28, 56, 92, 136]
  assert slice_sizes(320, 0.0, 5) == [64] * 5
  assert slice_sizes(320, 1.0, 5) == [21, 42, 64, 85, 108]
  assert slice_sizes(320, 3.0, 5) == [1, 11, 38, 91, 179]
  print("[ok] slice sizes")
  _check_default_state_dict(tsv)
  _check_tiny((1, 3, 64, 96))
  _check_tiny((1, 3, 128, 128))
  print("all checks passed")
