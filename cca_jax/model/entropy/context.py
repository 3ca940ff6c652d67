"""The unevenly grouped channel-wise autoregressive entropy model (official vae.py).

For slice ``i`` (sizes from ``slices.slice_sizes``):

1. ``mean_support = mean_NAF[i](cat(latent_means, context))``,
   ``mu_i = mean_cc[i](mean_support)``;
2. ``scale_i = scale_cc[i](scale_NAF[i](cat(latent_scales, context)))`` (raw output,
   lower-bounded at 0.11 by the Gaussian conditional, no exp/softplus);
3. the slice is quantised around ``mu_i`` (how depends on the caller: straight-through
   rounding in training and evaluation, symbols read from the bitstream when decoding);
4. latent residual prediction: ``y_hat_i += 0.5 * tanh(lrp[i](cat(mean_support, y_hat_i)))``.

``context`` is ``y_hat_0 .. y_hat_{i-1}`` for the main model. ``ChannelContext`` also
serves the auxiliary model of the CCA loss (``context_skip=1``: slice ``i`` sees only
``y_hat_0 .. y_hat_{i-2}``, official models/aux_em.py), see ``auxiliary.py``.

Two slice loops walk these per-slice functions, and only these: ``__call__`` (traced
inside the model: training and the evaluation forward, straight-through rounding) and
the codec's ``cca_jax.codec.image_codec.slice_loop`` (host-driven: one compiled
``predict`` / ``refine`` per slice, symbols from the coder between them). Neither copies the math, so the
encoder, the decoder and the training model cannot drift apart.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from cca_jax.model.entropy.gaussian import gaussian_conditional
from cca_jax.model.layers import Conv2d, NAFStack
from cca_jax.ops.activations import gelu
from cca_jax.ops.quantization import ste_round


def _head(widths: Sequence[int]) -> list:
  """``conv3x3 -> GELU -> conv3x3 -> GELU -> conv3x3``, laid out as the official
  ``nn.Sequential`` (modules at indices 0, 2, 4, so parameters are named ``_0``,
  ``_2``, ``_4``)."""
  out = []
  for j, w in enumerate(widths):
    if j:
      out.append(gelu)
    out.append(Conv2d(w, 3))
  return out


def _apply(layers: list, x: jax.Array) -> jax.Array:
  for f in layers:
    x = f(x)
  return x


class ChannelContext(nn.Module):
  """Per-slice mean/scale transforms, context heads and LRP for ``len(sizes)`` slices.

  Attributes:
    sizes: channels per slice (e.g. [8, 28, 56, 92, 136]).
    em_dim / em_layers: width and depth of the NAF transforms.
    cc_dims: hidden widths of the cc and LRP heads (official: 224, 128).
    context_skip: 0 for the main model; 1 for the auxiliary model (skips the
      immediately preceding slice).
    num_lrp: slices that have an LRP head (``None``: all).
  """
  sizes: Sequence[int]
  em_dim: int
  em_layers: int
  cc_dims: Sequence[int]
  context_skip: int = 0
  num_lrp: int | None = None

  @property
  def num_slices(self) -> int:
    return len(self.sizes)

  @property
  def lrp_count(self) -> int:
    return self.num_slices if self.num_lrp is None else self.num_lrp

  def setup(self):
    n, sizes, cc = self.num_slices, list(self.sizes), list(self.cc_dims)
    self.mean_NAF_transforms = [
        NAFStack(self.em_dim, self.em_layers) for i in range(n)]
    self.scale_NAF_transforms = [
        NAFStack(self.em_dim, self.em_layers) for i in range(n)]
    self.mean_cc_transforms = [_head(cc + [sizes[i]]) for i in range(n)]
    self.scale_cc_transforms = [_head(cc + [sizes[i]]) for i in range(n)]
    self.lrp_transforms = [_head(cc + [sizes[i]]) for i in range(self.lrp_count)]

  def context_len(self, i: int) -> int:
    """Number of earlier slices that slice ``i`` is conditioned on."""
    return max(i - self.context_skip, 0)

  def predict(self, i: int, latent_means: jax.Array, latent_scales: jax.Array,
              context: Sequence[jax.Array]):
    """Entropy parameters of slice ``i``: returns ``(mu, scale, mean_support)``.

    ``context`` holds the (LRP-refined) slices this slice is conditioned on.
    """
    context = list(context)
    mean_support = self.mean_NAF_transforms[i](
        jnp.concatenate([latent_means] + context, axis=-1))
    mu = _apply(self.mean_cc_transforms[i], mean_support)
    scale_support = self.scale_NAF_transforms[i](
        jnp.concatenate([latent_scales] + context, axis=-1))
    scale = _apply(self.scale_cc_transforms[i], scale_support)
    return mu, scale, mean_support

  def refine(self, i: int, mean_support: jax.Array, y_hat_i: jax.Array) -> jax.Array:
    """Latent residual prediction: ``y_hat_i + 0.5 * tanh(lrp_i(...))``."""
    lrp = _apply(self.lrp_transforms[i],
                 jnp.concatenate([mean_support, y_hat_i], axis=-1))
    return y_hat_i + 0.5 * jnp.tanh(lrp)

  def likelihoods(self, y: jax.Array, mus, scales, training: bool, noise=None):
    """Gaussian-conditional likelihoods of each slice of ``y`` (list per slice).

    Training adds uniform noise: ``noise`` (a list per slice) or a draw from the
    ``'noise'`` RNG stream; evaluation rounds around the means.
    """
    y_slices = split_slices(y, self.sizes)
    if training and noise is None:
      noise = split_slices(
          jax.random.uniform(self.make_rng("noise"), y.shape, y.dtype, -0.5, 0.5),
          self.sizes)
    return [gaussian_conditional(y_slices[i], scales[i], mus[i], training,
                                 None if noise is None else noise[i])[1]
            for i in range(self.num_slices)]

  def __call__(self, y, latent_means, latent_scales):
    """The slice loop of training and evaluation: each slice quantised around its
    mean with straight-through rounding. Returns ``(y_hat_slices, mus, scales)``.

    Slices without an LRP head (the aux model's last two) are not refined and are
    never used as context; their ``y_hat`` entry is the unrefined quantised slice.
    """
    y_slices = split_slices(y, self.sizes)
    y_hat, mus, scales = [], [], []
    for i in range(self.num_slices):
      mu, scale, mean_support = self.predict(
          i, latent_means, latent_scales, y_hat[:self.context_len(i)])
      q = ste_round(y_slices[i] - mu) + mu
      if i < self.lrp_count:
        q = self.refine(i, mean_support, q)
      y_hat.append(q)
      mus.append(mu)
      scales.append(scale)
    return y_hat, mus, scales


def split_slices(y: jax.Array, sizes: Sequence[int]) -> list[jax.Array]:
  """Split the channel axis of ``y`` into the uneven groups."""
  idx, acc = [], 0
  for s in list(sizes)[:-1]:
    acc += s
    idx.append(acc)
  return jnp.split(y, idx, axis=-1)
