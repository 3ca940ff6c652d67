"""The encoder's latent optimisation (codec.latent_optimization): SGA's soft rounding,
and an optimised stream that the unchanged decoder reads exactly, at a lower
rate-distortion cost than the analysis transform's latents."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cca_jax.codec import CodecError, decode, encode, make_bundle
from cca_jax.codec import latent_optimization as lo
from cca_jax.ops.padding import pad_centered
from tests.codec_helpers import synthetic_image, tiny_bundles


def test_sga_round_between_neighbours_and_anneals_to_rounding():
  r = jnp.asarray(np.random.default_rng(0).uniform(-4, 4, 4096), jnp.float32)
  soft = lo.sga_round(r, 0.5, jax.random.key(0))
  assert bool(jnp.all((soft >= jnp.floor(r)) & (soft <= jnp.floor(r) + 1)))
  assert float(jnp.mean(jnp.abs(soft - jnp.round(soft)))) > 0.05  # really soft
  far = jnp.abs(r - jnp.round(r)) < 0.4  # away from the half-way points
  cold = lo.sga_round(r, 1e-3, jax.random.key(1))
  np.testing.assert_allclose(np.asarray(cold)[far], np.round(np.asarray(r))[far], atol=1e-3)
  g = jax.grad(lambda r: jnp.sum(lo.sga_round(r, 0.3, jax.random.key(2))))(r)
  assert bool(jnp.all(jnp.isfinite(g))) and float(jnp.max(jnp.abs(g))) > 0


def test_temperature_schedule():
  assert float(lo.temperature(0, 100)) == pytest.approx(0.5)
  assert float(lo.temperature(35, 100)) == pytest.approx(0.5)
  assert float(lo.temperature(100, 100)) == pytest.approx(0.5 * np.exp(-1.3), rel=1e-5)


@pytest.fixture(scope="module")
def bundle(tiny_config, tiny_params):
  b = tiny_bundles(tiny_config, tiny_params)["calibrated"]
  return make_bundle(b.config, b.params, {"source": "test", "lmbda": 0.3,
                                          "metric": "mse"})


def test_optimized_stream_decodes_exactly_at_a_lower_cost(bundle):
  img = synthetic_image(100, 120, seed=3)
  xp, padding = pad_centered((img.astype(np.float32) / 255.0)[None], 128)
  y, z = bundle.programs.analysis(bundle.device_params, xp)
  z_sym = np.rint(np.asarray(z) - bundle.medians)
  _, j0, j1 = lo.optimize_latents(bundle, xp, padding, np.asarray(y),
                                  z_sym + bundle.medians, 30, learning_rate=0.1)
  assert j1 < 0.98 * j0, (j0, j1)  # a real improvement, not only "not worse"

  plain = encode(bundle, img)
  opt = encode(bundle, img, optimize=30)
  assert opt.data != plain.data and opt.timings["optimize"] > 0
  dec = decode(bundle, opt.data)
  np.testing.assert_array_equal(dec.y_hat, opt.y_hat)
  assert dec.image.shape == img.shape


def test_bad_settings(bundle, tiny_config, tiny_params):
  img = synthetic_image(64, 64)
  with pytest.raises(CodecError, match="non-negative"):
    encode(bundle, img, optimize=-1)
  no_lambda = tiny_bundles(tiny_config, tiny_params)["calibrated"]
  with pytest.raises(CodecError, match="no training lambda"):
    encode(no_lambda, img, optimize=1)
  ssim = make_bundle(bundle.config, bundle.params, {"lmbda": 0.3, "metric": "ms-ssim"})
  with pytest.raises(CodecError, match="MSE-trained"):
    encode(ssim, img, optimize=1)
