"""Entropy models: lower bounds, quantisation, Gaussian conditional, factorized
bottleneck, slice sizes."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cca_jax.model.entropy.bottleneck import EntropyBottleneck
from cca_jax.model.entropy.gaussian import gaussian_likelihood, scale_table
from cca_jax.model.entropy.slices import slice_sizes
from cca_jax.ops.quantization import lower_bound, quantize, ste_round


def test_lower_bound_gradient_rule():
  """Gradient passes where x >= bound, or where it would push x up (g < 0)."""
  x = jnp.array([0.05, 0.05, 0.5])
  # d/dx of sum(w * lb(x)) with w = +1 (pushes x down) and -1 (pushes x up).
  g_down = jax.grad(lambda x: jnp.sum(lower_bound(x, 0.11)))(x)
  g_up = jax.grad(lambda x: -jnp.sum(lower_bound(x, 0.11)))(x)
  np.testing.assert_array_equal(g_down, [0.0, 0.0, 1.0])
  np.testing.assert_array_equal(g_up, [-1.0, -1.0, -1.0])
  np.testing.assert_allclose(lower_bound(x, 0.11), [0.11, 0.11, 0.5], rtol=1e-7)


def test_quantize_modes_and_ste():
  x = jnp.array([0.2, 1.7, -2.6])
  m = jnp.array([0.5, 0.5, 0.5])
  np.testing.assert_allclose(quantize(x, "dequantize", m), [0.5, 1.5, -2.5])
  np.testing.assert_array_equal(quantize(x, "symbols", m), [0, 1, -3])
  np.testing.assert_allclose(quantize(x, "noise", noise=jnp.array([0.1, -0.2, 0.3])),
                             [0.3, 1.5, -2.3])
  np.testing.assert_array_equal(ste_round(x), [0.0, 2.0, -3.0])
  np.testing.assert_array_equal(jax.grad(lambda x: jnp.sum(ste_round(x)))(x), [1, 1, 1])
  # d/dm (ste_round(x - m) + m) == 0: why the quantiles get no gradient.
  np.testing.assert_array_equal(
      jax.grad(lambda m: jnp.sum(ste_round(x - m) + m))(m), [0, 0, 0])


def test_gaussian_likelihood_by_hand():
  phi = lambda t: 0.5 * math.erfc(-t / math.sqrt(2))
  # value 1 around mean 0, scale 1: Phi(1.5) - Phi(0.5).
  p = gaussian_likelihood(jnp.array(1.0), jnp.array(1.0), jnp.array(0.0))
  assert float(p) == pytest.approx(phi(1.5) - phi(0.5), rel=1e-6)
  # Scales below 0.11 are raised to 0.11; far values floor at 1e-9.
  p_small = gaussian_likelihood(jnp.array(0.0), jnp.array(0.01))
  assert float(p_small) == pytest.approx(phi(0.5 / 0.11) - phi(-0.5 / 0.11), rel=1e-6)
  assert float(gaussian_likelihood(jnp.array(40.0), jnp.array(0.5))) == pytest.approx(1e-9)
  # The bins of a Gaussian sum to 1.
  v = jnp.arange(-60.0, 61.0)
  assert float(jnp.sum(gaussian_likelihood(v + 0.3, jnp.array(3.0), jnp.array(0.3)))) == \
      pytest.approx(1.0, abs=1e-5)


def test_scale_table():
  t = scale_table()
  assert len(t) == 64 and t[0] == pytest.approx(0.11) and t[-1] == pytest.approx(256.0)
  assert np.allclose(np.diff(np.log(t)), np.log(256 / 0.11) / 63)


@pytest.mark.parametrize("k,expected", [
    (1.7, [8, 28, 56, 92, 136]), (0, [64] * 5), (0.5, [38, 53, 66, 76, 87]),
    (1, [21, 42, 64, 85, 108]), (1.5, [11, 32, 58, 90, 129]), (2, [5, 23, 52, 93, 147]),
    (2.5, [2, 16, 45, 92, 165]), (3, [1, 11, 38, 91, 179])])
def test_slice_sizes_table(k, expected):
  assert slice_sizes(320, k, 5) == expected


@pytest.fixture(scope="module")
def eb():
  m = EntropyBottleneck(4)
  x = jnp.zeros((1, 2, 2, 4))
  params = m.init(jax.random.key(0), x, training=False)["params"]
  return m, params


def test_bottleneck_init_as_compressai(eb):
  m, p = eb
  scale = 10 ** (1 / 5)
  assert np.allclose(p["matrices_0"], math.log(math.expm1(1 / scale / 3)))
  assert np.allclose(p["matrices_4"], math.log(math.expm1(1 / scale / 1)))
  assert p["matrices_1"].shape == (4, 3, 3) and p["biases_4"].shape == (4, 1, 1)
  assert np.all(np.abs(p["biases_0"]) <= 0.5) and np.all(p["factors_0"] == 0)
  np.testing.assert_array_equal(p["quantiles"][0, 0], [-10, 0, 10])


def test_bottleneck_masses_sum_to_one(eb):
  m, p = eb
  v = jnp.arange(-200.0, 201.0)[:, None] * jnp.ones((1, 4)) + 0.25
  lik = m.apply({"params": p}, v, method=m.likelihood)
  np.testing.assert_allclose(jnp.sum(lik, axis=0), 1.0, atol=1e-4)


def test_bottleneck_modes(eb):
  m, p = eb
  x = jnp.array([[[[0.2, 1.6, -0.7, 3.4]]]])
  noise = jnp.full(x.shape, 0.25)
  xt, _ = m.apply({"params": p}, x, training=True, noise=noise)
  np.testing.assert_allclose(xt, x + 0.25)
  xt, lik = m.apply({"params": p}, x, training=False)
  np.testing.assert_allclose(xt, jnp.round(x))  # medians are 0 at init
  assert lik.shape == x.shape and np.all((lik > 0) & (lik <= 1))


def test_quantile_loss_trains_only_quantiles(eb):
  m, p = eb
  g = jax.grad(lambda p: m.apply({"params": p}, method=m.quantile_loss))(p)
  assert float(jnp.abs(g["quantiles"]).sum()) > 0
  for k, v in g.items():
    if k != "quantiles":
      assert float(jnp.abs(v).sum()) == 0.0, k
  # And the likelihood (main loss) gives the quantiles no gradient in training mode.
  x = jnp.ones((1, 2, 2, 4)) * 0.3
  g = jax.grad(lambda p: jnp.sum(jnp.log(m.apply({"params": p}, x, training=True,
                                                  noise=jnp.zeros_like(x))[1])))(p)
  assert float(jnp.abs(g["quantiles"]).sum()) == 0.0
