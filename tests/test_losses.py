"""Loss terms against values worked out by hand."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from cca_jax.model.losses import aux2_loss, rate_terms, rd_loss


def _out(x_hat, aux=True):
  # Batch 1, 2x2 image (npix = 4); y has 2 slices, z one channel.
  lik = {"y": [jnp.full((1, 1, 1, 1), 0.5), jnp.full((1, 1, 1, 2), 0.25)],
         "z": jnp.full((1, 1, 1, 1), 0.125)}
  if aux:
    lik["y_cca"] = [jnp.full((1, 1, 1, 1), 0.25), jnp.full((1, 1, 1, 2), 0.5)]
    lik["y_aux"] = jnp.full((1, 1, 1, 3), 0.5)
  return {"x_hat": x_hat, "likelihoods": lik}


def test_rates_by_hand():
  t = rate_terms(_out(None)["likelihoods"], 4)
  # y: 1 bit + 2 * 2 bits = 5 bits; z: 3 bits; per 4 pixels.
  assert float(t["bpp_y"]) == pytest.approx(5 / 4)
  assert float(t["bpp_z"]) == pytest.approx(3 / 4)
  assert float(t["bpp"]) == pytest.approx(2.0)
  np.testing.assert_allclose(t["slice_bpp"], [1 / 4, 4 / 4])
  # cca model: 2 bits + 2 * 1 bit = 4 bits.
  assert float(t["bpp_cca"]) == pytest.approx(1.0)


def test_aux2_by_hand():
  # -(0.25*log2(.5) + 2 * 0.5*log2(.5)) / 4 = (0.25 + 1) / 4
  assert float(aux2_loss(_out(None)["likelihoods"], 4)) == pytest.approx(1.25 / 4)


def test_total_objective_by_hand():
  x = jnp.zeros((1, 2, 2, 3))
  x_hat = jnp.full((1, 2, 2, 3), 0.1)
  t = rd_loss(_out(x_hat), x, lmbda=0.85, distortion_weight=0.05, alpha=1.0)
  mse = 0.01
  assert float(t["mse"]) == pytest.approx(mse)
  assert float(t["distortion"]) == pytest.approx(0.05 * 255 ** 2 * mse, rel=1e-5)
  assert float(t["cca"]) == pytest.approx(5 / 4 - 1.0)  # main minus aux
  expected = 0.05 * 255 ** 2 * mse + 0.85 * 2.0 + 1.0 * 0.25 + 1.25 / 4
  assert float(t["loss"]) == pytest.approx(expected, rel=1e-5)
  assert float(t["psnr"]) == pytest.approx(20.0, rel=1e-5)


def test_without_aux_model_no_cca_terms():
  x = jnp.zeros((1, 2, 2, 3))
  t = rd_loss(_out(x, aux=False), x, lmbda=0.3)
  assert "cca" not in t and "aux2" not in t
  assert float(t["loss"]) == pytest.approx(0.3 * 2.0)


def test_ms_ssim_objective():
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.uniform(0, 1, (1, 176, 176, 3)).astype(np.float32))
  t = rd_loss(_out(x), x, lmbda=0.3, distortion_weight=8.0, metric="ms-ssim")
  assert float(t["ms_ssim"]) == pytest.approx(1.0, abs=1e-6)
  assert float(t["distortion"]) == pytest.approx(0.0, abs=1e-5)
  with pytest.raises(ValueError, match="metric"):
    rd_loss(_out(x), x, lmbda=0.3, metric="l1")


def test_saturation_cap():
  """A floored aux likelihood costs -log2(1e-9) = 29.897 bits per element."""
  assert -math.log2(1e-9) == pytest.approx(29.897, abs=1e-3)
