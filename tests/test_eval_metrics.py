"""cca_jax.eval.metrics: PSNR (float and 8-bit) and MS-SSIM against known values."""

import math

import numpy as np
import pytest

from cca_jax.eval import metrics
from codec_helpers import synthetic_image


def _pair():
  """A synthetic image and a deterministically distorted copy (+-5 levels)."""
  a = synthetic_image(176, 192, seed=1)
  i = np.arange(176)[:, None, None]
  j = np.arange(192)[None, :, None]
  c = np.arange(3)[None, None, :]
  noise = (i * 7 + j * 13 + c * 5) % 11 - 5
  d = np.clip(a.astype(np.int64) + noise, 0, 255).astype(np.uint8)
  return a, d


def test_psnr_known_values():
  x = np.full((8, 8, 3), 100, np.uint8)
  # Every value off by one level: MSE = (1/255)^2, PSNR = 20 log10(255).
  assert metrics.psnr(x, x + 1) == pytest.approx(20 * math.log10(255), abs=1e-9)
  assert metrics.psnr(x, x) == math.inf
  # Float inputs are taken as [0, 1]: an error of 0.1 everywhere is 20 dB.
  f = np.full((4, 4, 3), 0.5, np.float32)
  assert metrics.psnr(f, f + np.float32(0.1)) == pytest.approx(20.0, abs=1e-5)
  a, d = _pair()
  err = a.astype(np.float64) - d
  expected = 10 * math.log10(255.0 ** 2 / np.mean(err ** 2))
  assert metrics.psnr(a, d) == pytest.approx(expected, abs=1e-6)
  assert expected == pytest.approx(38.1856625, abs=1e-6)


def test_ms_ssim_known_values():
  a, d = _pair()
  # pytorch_msssim.ms_ssim(data_range=1, float64) on the same pair: 0.9984957306970842
  # (distorted copy) and 0.909612470803681 (two different synthetic images).
  assert metrics.ms_ssim(a, d) == pytest.approx(0.9984957306970842, abs=1e-5)
  b = synthetic_image(176, 192, seed=2)
  assert metrics.ms_ssim(a, b) == pytest.approx(0.909612470803681, abs=1e-5)
  assert metrics.ms_ssim(a, a) == pytest.approx(1.0, abs=1e-6)
  # dB: -10 log10(1 - v).
  assert metrics.db(0.99) == pytest.approx(20.0)
  assert metrics.db(0.9) == pytest.approx(10.0)
  assert metrics.db(1.0) == math.inf and math.isnan(metrics.db(float("nan")))
  # Too small for 5 scales (both sides must exceed 160): NaN, not an exception.
  small = synthetic_image(160, 200)
  assert math.isnan(metrics.ms_ssim(small, small))
  with pytest.raises(ValueError, match="same"):
    metrics.ms_ssim(a, b[:, :-1])


def test_ms_ssim_matches_pytorch_msssim():
  torch = pytest.importorskip("torch")
  pytorch_msssim = pytest.importorskip("pytorch_msssim")
  a, d = _pair()

  def t(z):
    return torch.from_numpy(z.astype(np.float64) / 255.0).permute(2, 0, 1)[None]
  ref = float(pytorch_msssim.ms_ssim(t(a), t(d), data_range=1.0, size_average=False)[0])
  assert metrics.ms_ssim(a, d) == pytest.approx(ref, abs=1e-5)


def test_model_quality_clamps_and_rounds():
  a, _ = _pair()
  x = a.astype(np.float32) / 255.0
  # An unclamped output: off by 0.3 / 255 everywhere and overshooting [0, 1].
  x_hat = x + np.float32(0.3 / 255.0)
  x_hat[0, 0] = [1.5, -0.5, 2.0]
  q = metrics.model_quality(a, x_hat)
  assert set(q) == {"psnr", "ms_ssim", "ms_ssim_db", "psnr_8bit", "ms_ssim_8bit",
                    "ms_ssim_db_8bit"}
  clamped = np.clip(x_hat, 0, 1)
  assert q["psnr"] == pytest.approx(metrics.psnr(a, clamped), abs=1e-9)
  # Rounded to 8 bit the 0.3-level offset disappears except at the clamped pixel.
  rounded = np.round(clamped * 255).astype(np.uint8)
  assert q["psnr_8bit"] == pytest.approx(metrics.psnr(a, rounded), abs=1e-9)
  assert q["psnr_8bit"] > q["psnr"]
  assert q["ms_ssim_db"] == pytest.approx(metrics.db(q["ms_ssim"]))
