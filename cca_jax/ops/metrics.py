"""Image-quality metrics on [0, 1] images (MS-SSIM lives in ``ms_ssim.py``)."""

from __future__ import annotations

import math

import numpy as np


def mse(a, b) -> float:
  a = np.asarray(a, np.float64)
  b = np.asarray(b, np.float64)
  return float(np.mean(np.square(a - b)))


def psnr(a, b, data_range: float = 1.0) -> float:
  """``10 log10(range^2 / MSE)`` over all values (inf for identical images)."""
  m = mse(a, b)
  return float("inf") if m == 0 else float(10.0 * np.log10(data_range ** 2 / m))


def db(value: float) -> float:
  """MS-SSIM (or any similarity in [0, 1]) in dB, ``-10 log10(1 - value)`` (inf for 1,
  NaN for NaN)."""
  value = float(value)
  if math.isnan(value):
    return float("nan")
  if value >= 1.0:
    return float("inf")
  return -10.0 * math.log10(1.0 - value)
