"""The CCA model (official models/vae.py): transforms, hyperprior, channel-wise
autoregressive entropy model and, for training, the auxiliary entropy model.

Data flow (NHWC; official models/vae.py)::

    x -> g_a -> y -> h_a -> z -> EntropyBottleneck -> z_hat = ste_round(z - med) + med
    z_hat -> h_mean_s -> latent_means ; z_hat -> h_scale_s -> latent_scales
    ChannelContext slice loop -> y_hat (straight-through rounding around mu, + LRP)
    y_hat -> g_s -> x_hat        (no clamp here; evaluation clamps)
    training only: AuxEntropyModel(y, latent_means, latent_scales) -> y_cca, y_aux

Rates are always computed from likelihoods of *noisy* latents in training (uniform
noise, one independent draw per use: z, y, y_cca, y_aux) and of latents rounded around
their means/medians in evaluation; the decoder path always uses straight-through
rounding, as the official code does.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from cca_jax.model.entropy.auxiliary import AuxEntropyModel
from cca_jax.model.entropy.bottleneck import EntropyBottleneck
from cca_jax.model.entropy.context import ChannelContext
from cca_jax.model.entropy.slices import slice_sizes
from cca_jax.ops.quantization import ste_round
from cca_jax.model.transforms import (AnalysisTransform, HyperAnalysisTransform,
                                HyperSynthesisTransform, SynthesisTransform)

# Total down-sampling of g_a (16) times h_a (4): inputs are padded to a multiple of it.
DOWNSAMPLING = 64


class CCAModel(nn.Module):
  """The CCA learned image codec. Widths are fields so that scaled-down models of the
  same architecture exist (``configs/tiny.py``, ``configs/cpu.py``).

  Attributes follow the official names: ``M`` latent channels, ``N`` hyper-latent
  channels, ``hyper_dim`` hyper-transform width (official 256), ``ae_dim`` /
  ``ae_layers`` / ``num_rbb`` main-transform widths, NAF blocks and residual
  bottleneck blocks per stage, ``em_dim`` / ``em_layers`` the entropy model's NAF
  transforms, ``cc_dims`` the hidden widths of the cc/LRP heads (official 224, 128),
  ``k`` / ``num_slices`` the uneven grouping, ``aux_model`` whether the auxiliary
  entropy model exists (training), as the official ``cca_training``.
  """
  # No defaults: the architecture's one source of truth is cca_jax/config.py
  # (``model_config``, the official values), which every config passes in full.
  M: int
  N: int
  hyper_dim: int
  ae_dim: Sequence[int]
  ae_layers: Sequence[int]
  num_rbb: int
  em_dim: int
  em_layers: int
  cc_dims: Sequence[int]
  k: float
  num_slices: int
  aux_model: bool = True

  @classmethod
  def from_config(cls, cfg: Any, **overrides) -> "CCAModel":
    """Build from a config (``ml_collections.ConfigDict`` or mapping) of the fields."""
    names = {f.name for f in dataclasses.fields(cls)} - {"parent", "name"}
    kw = {n: cfg[n] for n in names if n in cfg}
    for n in ("ae_dim", "ae_layers", "cc_dims"):
      if n in kw:
        kw[n] = tuple(kw[n])
    kw.update(overrides)
    return cls(**kw)

  @property
  def sizes(self) -> list[int]:
    return slice_sizes(self.M, self.k, self.num_slices)

  def setup(self):
    sizes = tuple(self.sizes)
    self.g_a = AnalysisTransform(self.M, tuple(self.ae_dim), tuple(self.ae_layers),
                                 self.num_rbb)
    self.g_s = SynthesisTransform(tuple(self.ae_dim), tuple(self.ae_layers),
                                  self.num_rbb)
    self.h_a = HyperAnalysisTransform(self.N, self.hyper_dim)
    self.h_mean_s = HyperSynthesisTransform(self.M, self.hyper_dim)
    self.h_scale_s = HyperSynthesisTransform(self.M, self.hyper_dim)
    self.z_entropy_bottleneck = EntropyBottleneck(self.N)
    self.entropy_model = ChannelContext(sizes, self.em_dim, self.em_layers,
                                        tuple(self.cc_dims))
    if self.aux_model:
      self.aux_entropymodel = AuxEntropyModel.for_sizes(
          sizes, self.em_dim, self.em_layers, tuple(self.cc_dims))

  # -- pieces, used by the codec ---------------------------------------------

  def hyper_synthesis(self, z_hat):
    """``z_hat -> (latent_means, latent_scales)``."""
    return self.h_mean_s(z_hat), self.h_scale_s(z_hat)

  def z_medians(self):
    return self.z_entropy_bottleneck.medians()

  # -- forward -----------------------------------------------------------------

  def __call__(self, x: jax.Array, training: bool,
               noise: dict | None = None) -> dict:
    """Training (``training=True``) or evaluation forward.

    Args:
      x: images, ``(B, H, W, 3)`` in [0, 1]; H and W multiples of 64.
      training: uniform noise for the rates (else rounding around means/medians).
      noise: optional uniform(-0.5, 0.5) draws to inject (tests): ``'z'``, ``'y'``
        (list per slice), ``'y_cca'`` (list per slice), ``'y_aux'``; missing ones are
        drawn from the ``'noise'`` RNG stream.

    Returns a dict: ``x_hat``, ``y``, ``z``, ``z_hat``, ``y_hat``, ``latent_means``,
    ``latent_scales``, ``means`` / ``scales`` (lists per slice; raw scales) and
    ``likelihoods`` = {``'y'``: list per slice, ``'z'``, and with the aux model
    ``'y_cca'`` (list per slice) and ``'y_aux'``}.
    """
    if x.ndim != 4 or x.shape[-1] != 3:
      raise ValueError(f"expected images of shape (B, H, W, 3), got {x.shape}")
    if x.shape[1] % DOWNSAMPLING or x.shape[2] % DOWNSAMPLING:
      raise ValueError(f"image size {x.shape[1]}x{x.shape[2]} is not a multiple of "
                       f"{DOWNSAMPLING}: pad it first (cca_jax.ops.padding.pad_centered)")
    noise = dict(noise or {})
    y = self.g_a(x)
    z = self.h_a(y)
    _, z_likelihoods = self.z_entropy_bottleneck(z, training, noise.get("z"))
    medians = self.z_medians()
    z_hat = ste_round(z - medians) + medians
    latent_means, latent_scales = self.hyper_synthesis(z_hat)

    y_hat_slices, mus, scales = self.entropy_model(y, latent_means, latent_scales)
    y_likelihoods = self.entropy_model.likelihoods(y, mus, scales, training,
                                                   noise.get("y"))
    y_hat = jnp.concatenate(y_hat_slices, axis=-1)
    x_hat = self.g_s(y_hat)

    likelihoods = {"y": y_likelihoods, "z": z_likelihoods}
    if self.aux_model:
      aux, cca = self.aux_entropymodel.rates(y, latent_means, latent_scales, training,
                                       noise.get("y_cca"), noise.get("y_aux"))
      likelihoods["y_cca"] = cca
      likelihoods["y_aux"] = aux
    return {
        "x_hat": x_hat, "y": y, "z": z, "z_hat": z_hat, "y_hat": y_hat,
        "latent_means": latent_means, "latent_scales": latent_scales,
        "means": mus, "scales": scales, "likelihoods": likelihoods,
    }

  def quantile_loss(self) -> jax.Array:
    """CompressAI's ``aux_loss``: the quantile losses of both bottlenecks."""
    loss = self.z_entropy_bottleneck.quantile_loss()
    if self.aux_model:
      loss = loss + self.aux_entropymodel.y_entropy_bottleneck.quantile_loss()
    return loss


def init_params(model: CCAModel, seed: int = 0, image_size: int = 64) -> dict:
  """Initialise parameters (PyTorch's default distributions, as in the official code).

  Runs eagerly with the ``rbg`` PRNG: jit-compiling ``init`` spends minutes compiling
  one threefry kernel per parameter on the CPU (measured: 308 s for configs/tiny.py),
  while eager rbg initialisation takes ~10 s even for the paper config.
  """
  x = jnp.zeros((1, image_size, image_size, 3), jnp.float32)
  key = jax.random.key(seed, impl="rbg")
  k1, k2 = jax.random.split(key)
  return model.init({"params": k1, "noise": k2}, x, training=False)["params"]


def param_shapes(model: CCAModel, image_size: int = 64) -> dict:
  """Parameter shapes (``jax.ShapeDtypeStruct`` tree) without computing anything."""
  x = jax.ShapeDtypeStruct((1, image_size, image_size, 3), jnp.float32)
  return jax.eval_shape(
      lambda k, x: model.init({"params": k, "noise": k}, x, training=False)["params"],
      jax.random.key(0), x)
