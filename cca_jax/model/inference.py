"""The evaluation forward on one image, as the official eval.py (no ``--real``) does.

Pad to a multiple of 128 (centred zeros), run the model in evaluation mode (latents
rounded around their means / medians), estimate the rate from the likelihoods of y
and z over the *unpadded* pixel count, clamp the reconstruction to [0, 1] (not
rounded to 8 bit), crop, and compute PSNR (official eval.py).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from cca_jax.ops.metrics import psnr
from cca_jax.ops.padding import crop, pad_centered
from cca_jax.ops.quantization import bits


@functools.lru_cache(maxsize=8)
def _forward(model):
  @jax.jit
  def fwd(params, x):
    out = model.apply({"params": params}, x, training=False)
    lik = out["likelihoods"]
    bits_y = jnp.stack([bits(l) for l in lik["y"]])
    bits_z = bits(lik["z"])
    return jnp.clip(out["x_hat"], 0.0, 1.0), bits_y, bits_z
  return fwd


def inference_params(params) -> dict:
  """Drop the auxiliary model's parameters (not used for coding or evaluation)."""
  return {k: v for k, v in params.items() if k != "aux_entropymodel"}


def estimate_image(model_cfg, params, x: np.ndarray, multiple: int = 128) -> dict:
  """``x``: ``(H, W, 3)`` float in [0, 1]. Returns bpp_est, bpp_y, bpp_z, per-slice
  bits, psnr and the clamped reconstruction ``x_hat`` (unrounded)."""
  from cca_jax.model.cca import CCAModel
  model = CCAModel.from_config(model_cfg, aux_model=False)
  h, w = x.shape[:2]
  xp, padding = pad_centered(x[None].astype(np.float32), multiple)
  x_hat, bits_y, bits_z = _forward(model)(inference_params(params), jnp.asarray(xp))
  x_hat = crop(np.asarray(x_hat), padding)[0]
  bits_y = np.asarray(bits_y, np.float64)
  npix = h * w
  return {
      "bpp_est": float((bits_y.sum() + float(bits_z)) / npix),
      "bpp_y": float(bits_y.sum() / npix),
      "bpp_z": float(bits_z) / npix,
      "slice_bits": bits_y.tolist(),
      "psnr": psnr(x, x_hat),
      "x_hat": x_hat,
  }
