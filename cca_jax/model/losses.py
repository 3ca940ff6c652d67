"""The official training objective (train.py ``RateDistortionLoss``), term by term.

With ``npix = B * H * W`` and likelihoods floored at 1e-9:

* ``bpp_y = sum(-log2 p_main(y)) / npix`` (all slices), ``bpp_z`` likewise for z;
  ``bpp = bpp_y + bpp_z``;
* ``bpp_cca = sum(-log2 p_cca(y)) / npix``: y under the auxiliary model;
* ``cca = bpp_y - bpp_cca``: main minus aux, the *negative* of the paper's
  L_CCA = R_aux - R_main (arXiv 2410.04847, Eqs. 6-7). Minimising ``+alpha * cca``
  therefore *enlarges* the gap between the auxiliary and the main model. With no
  stop-gradient anywhere (none in the official code), this term also pushes the aux
  model's rate *up* (gradient ascent on R_cca), capped by the 1e-9 floor at
  -log2(1e-9) = 29.9 bits per element;
* ``aux2 = -sum(p_cca(y) * log2 p_fact(y)) / npix``: the paper's L_Aux (Eq. 9) as the
  code writes it -- a per-symbol product, not a cross-entropy over the alphabet, with
  the two likelihoods at different noise draws;
* distortion: ``distortion_weight * 255^2 * MSE`` (MSE over all values of [0, 1]
  images, x_hat unclamped) or ``distortion_weight * (1 - MS-SSIM)``.

``loss = distortion + lmbda * bpp + alpha * cca + aux2``, where ``lmbda`` is the
paper's lambda (the official ``--beta``) and ``distortion_weight`` the official
``--lmbda`` (0.05). The quantile loss of the entropy bottlenecks is separate: it has
its own optimizer and the main loss gives the quantiles exactly zero gradient.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from cca_jax.ops.ms_ssim import ms_ssim
from cca_jax.ops.quantization import bits


def rate_terms(likelihoods: dict, num_pixels) -> dict:
  """Rates in bits per pixel from a model output's ``likelihoods``.

  Returns ``bpp_y``, ``bpp_z``, ``bpp`` (= y + z), ``slice_bpp`` (one value per
  slice), and with the aux model ``bpp_cca`` and ``slice_bpp_cca``.
  """
  slice_bpp = jnp.stack([bits(l) for l in likelihoods["y"]]) / num_pixels
  out = {"bpp_y": jnp.sum(slice_bpp), "bpp_z": bits(likelihoods["z"]) / num_pixels,
         "slice_bpp": slice_bpp}
  out["bpp"] = out["bpp_y"] + out["bpp_z"]
  if "y_cca" in likelihoods:
    slice_cca = jnp.stack([bits(l) for l in likelihoods["y_cca"]]) / num_pixels
    out["slice_bpp_cca"] = slice_cca
    out["bpp_cca"] = jnp.sum(slice_cca)
  return out


def aux2_loss(likelihoods: dict, num_pixels) -> jax.Array:
  """``-sum(p_cca * log2 p_fact) / npix`` over all elements of y."""
  p_cca = jnp.concatenate(likelihoods["y_cca"], axis=-1)
  return -jnp.sum(p_cca * jnp.log2(likelihoods["y_aux"])) / num_pixels


def rd_loss(out: dict, x: jax.Array, lmbda: float, distortion_weight: float = 0.05,
            alpha: float = 1.0, metric: str = "mse") -> dict:
  """All terms of the objective; ``out`` from ``CCAModel.__call__``, ``x`` the target
  ``(B, H, W, 3)`` in [0, 1]. Returns a dict with ``loss`` and every term apart:
  ``distortion``, ``mse``, ``psnr`` (or ``ms_ssim``), ``bpp``, ``bpp_y``, ``bpp_z``,
  ``slice_bpp``, and with the aux model ``bpp_cca``, ``cca``, ``aux2``.
  """
  b, h, w = x.shape[:3]
  num_pixels = b * h * w
  terms = rate_terms(out["likelihoods"], num_pixels)
  x_hat = out["x_hat"]
  mse = jnp.mean(jnp.square(x_hat - x))
  terms["mse"] = mse
  terms["psnr"] = -10.0 * jnp.log10(mse)
  if metric == "mse":
    terms["distortion"] = distortion_weight * 255.0 ** 2 * mse
  elif metric == "ms-ssim":
    terms["ms_ssim"] = jnp.mean(ms_ssim(x_hat, x, data_range=1.0))
    terms["distortion"] = distortion_weight * (1.0 - terms["ms_ssim"])
  else:
    raise ValueError(f"unknown metric {metric!r} (mse, ms-ssim)")
  loss = terms["distortion"] + lmbda * terms["bpp"]
  if "bpp_cca" in terms:
    terms["cca"] = terms["bpp_y"] - terms["bpp_cca"]
    terms["aux2"] = aux2_loss(out["likelihoods"], num_pixels)
    loss = loss + alpha * terms["cca"] + terms["aux2"]
  terms["loss"] = loss
  return terms
