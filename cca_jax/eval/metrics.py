"""Per-image quality metrics of the evaluation, in the conventions of official eval.py.

* ``psnr``: ``10 log10(1 / MSE)`` over all RGB values of images in [0, 1]
  (``cca_jax.ops.metrics.psnr``). For a learned model the paper takes the reconstruction
  clamped to [0, 1] but **not** rounded to 8 bit; the evaluation also reports the PSNR
  of the 8-bit image a user gets (``to_uint8``), which is what every classical codec
  produces.
* ``ms_ssim``: MS-SSIM as ``pytorch_msssim.ms_ssim(data_range=1)``
  (``cca_jax.ops.ms_ssim``: 11x11 Gaussian window, sigma 1.5, 5 scales, standard weights;
  both sides must exceed 160 pixels), and ``ms_ssim_db = -10 log10(1 - MS-SSIM)``.
  Means over a dataset are means of the per-image values (dB too), as eval.py.

``quality(reference, decoded)`` returns all of them for one image; ``uint8`` inputs
are divided by 255.
"""

from __future__ import annotations

import functools

import jax
import numpy as np

from cca_jax.ops import metrics as _metrics
from cca_jax.ops import ms_ssim as _ms_ssim
from cca_jax.utils.image_io import to_uint8

MS_SSIM_MIN_SIDE = 161  # (win_size - 1) * 2**4 + 1 with the default window


def as_float(image, dtype=np.float32) -> np.ndarray:
  """An ``(H, W, 3)`` image as floats in [0, 1] (``uint8`` is divided by 255)."""
  a = np.asarray(image)
  if a.dtype == np.uint8:
    return a.astype(dtype) / dtype(255.0)
  return a.astype(dtype)


def psnr(reference, decoded) -> float:
  """PSNR in dB of two ``(H, W, 3)`` images (uint8 or [0, 1] floats; computed in
  float64); inf if equal."""
  return _metrics.psnr(as_float(reference, np.float64), as_float(decoded, np.float64))


@functools.lru_cache(maxsize=1)
def _ms_ssim_fn():
  return jax.jit(lambda x, y: _ms_ssim.ms_ssim(x, y, data_range=1.0))


def ms_ssim(reference, decoded) -> float:
  """MS-SSIM of two ``(H, W, 3)`` images (uint8 or [0, 1] floats); NaN when a side is
  too short for the 5 scales (160 pixels or less)."""
  x, y = as_float(reference), as_float(decoded)
  if x.shape != y.shape or x.ndim != 3:
    raise ValueError(f"images must have the same (H, W, C) shape, got {x.shape} and "
                     f"{y.shape}")
  if min(x.shape[:2]) < MS_SSIM_MIN_SIDE:
    return float("nan")
  return float(_ms_ssim_fn()(x[None], y[None])[0])


db = _metrics.db  # MS-SSIM in dB, -10 log10(1 - value)


def quality(reference, decoded, suffix: str = "") -> dict:
  """``psnr``, ``ms_ssim`` and ``ms_ssim_db`` of one image (keys get ``suffix``)."""
  m = ms_ssim(reference, decoded)
  return {f"psnr{suffix}": psnr(reference, decoded), f"ms_ssim{suffix}": m,
          f"ms_ssim_db{suffix}": db(m)}


def model_quality(reference, x_hat) -> dict:
  """The metrics of a learned codec's output ``x_hat`` (float, unclamped or clamped):
  ``psnr`` / ``ms_ssim`` / ``ms_ssim_db`` on the clamped float output (the paper's
  protocol) and the same with suffix ``_8bit`` on the 8-bit image a user gets."""
  x_hat = np.clip(np.asarray(x_hat, np.float32), 0.0, 1.0)
  out = quality(reference, x_hat)
  out.update(quality(reference, to_uint8(x_hat), "_8bit"))
  return out
