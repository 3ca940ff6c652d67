"""Coding tables: quantized CDFs, the z (factorized) and y (Gaussian) tables, scale
indexes (CompressAI's build_indexes)."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from cca_jax.model.entropy.bottleneck import factorized_likelihood
from cca_jax.model.entropy.gaussian import SCALE_BOUND, gaussian_likelihood
from cca_jax.model.entropy.tables import (CodingTables, build_tables, coding_scale_table,
                                    factorized_tables, gaussian_tables, quantize_cdf,
                                    scale_indexes)


def _freqs(cdf, length):
  return [np.diff(cdf[j, :length[j]].astype(np.int64)) for j in range(len(length))]


def test_quantize_cdf_properties():
  rng = np.random.default_rng(0)
  k = np.array([1, 5, 40, 300])
  pmf = rng.random((4, 300)) ** 4
  pmf[2, :10] = 0.0                           # zero-probability symbols
  tail = np.array([0.0, 1e-9, 0.3, 1e-3])
  cdf, length = quantize_cdf(pmf, tail, k, precision=16)
  np.testing.assert_array_equal(length, k + 2)
  for j, f in enumerate(_freqs(cdf, length)):
    assert len(f) == k[j] + 1
    assert f.sum() == 1 << 16 and f.min() >= 1
    p = np.append(pmf[j, :k[j]], tail[j])
    p = p / p.sum()
    # Largest remainder: every frequency is within 1 of the reserved-share target.
    target = 1 + p * ((1 << 16) - k[j] - 1)
    assert np.all(np.abs(f - target) < 1.0 + 1e-9)
  # Rows are padded with 2**precision; deterministic.
  assert cdf[0, -1] == 1 << 16
  cdf2, _ = quantize_cdf(pmf, tail, k, precision=16)
  np.testing.assert_array_equal(cdf, cdf2)


def test_quantize_cdf_rejects_bad_input():
  with pytest.raises(ValueError):
    quantize_cdf(np.array([[0.5, np.nan]]), np.array([0.0]), np.array([2]))
  with pytest.raises(ValueError):
    quantize_cdf(np.array([[0.5, -0.1]]), np.array([0.0]), np.array([2]))
  with pytest.raises(ValueError):
    quantize_cdf(np.ones((1, 10)), np.array([0.0]), np.array([0]))


def test_gaussian_tables_match_the_likelihood():
  st = coding_scale_table()
  t = gaussian_tables(st)
  t.validate()
  assert t.num_tables == 64 and t.precision == 16
  multiplier = -_ndtri(1e-9 / 2)
  centre = np.ceil(st.astype(np.float64) * multiplier).astype(int)
  np.testing.assert_array_equal(t.offset, -centre)
  np.testing.assert_array_equal(t.cdf_length, 2 * centre + 3)
  for j in (0, 10, 30, 63):
    f = t.frequencies(j)
    sym = np.arange(-centre[j], centre[j] + 1)
    p = np.asarray(gaussian_likelihood(jnp.asarray(sym, jnp.float32), jnp.float32(st[j]),
                                       likelihood_bound=0.0), np.float64)
    # Expected code length under the table vs under the exact density: the 16-bit
    # quantization costs far below 1%.
    bits_table = -(p * np.log2(f[:-1] / 65536.0)).sum()
    bits_exact = -(p[p > 0] * np.log2(p[p > 0])).sum()
    assert bits_table == pytest.approx(bits_exact, rel=0.01, abs=0.002)
    # Symmetric around 0 up to the tie-breaking of the rounding remainder.
    assert np.abs(f[:-1] - f[:-1][::-1]).max() <= 1


def _ndtri(q):
  from statistics import NormalDist
  return NormalDist().inv_cdf(q)


def test_factorized_tables_follow_compressai_update(tiny_params):
  eb = tiny_params["z_entropy_bottleneck"]
  t = factorized_tables(eb)
  t.validate()
  q = np.asarray(eb["quantiles"])[:, 0, :]
  med = q[:, 1]
  minima = np.maximum(np.ceil(med - q[:, 0]), 0).astype(int)
  maxima = np.maximum(np.ceil(q[:, 2] - med), 0).astype(int)
  np.testing.assert_array_equal(t.offset, -minima)
  np.testing.assert_array_equal(t.cdf_length, minima + maxima + 3)
  dens = {k: v for k, v in eb.items() if k != "quantiles"}
  for c in (0, 7, q.shape[0] - 1):
    sym = np.arange(-minima[c], maxima[c] + 1)
    x = np.zeros((len(sym), q.shape[0]), np.float32)
    x[:, c] = sym + med[c]
    p = np.asarray(factorized_likelihood(dens, jnp.asarray(x), 5))[:, c].astype(np.float64)
    f = t.frequencies(c)
    tail = 1.0 - p.sum()
    np.testing.assert_allclose(f[:-1] / 65536.0, p, atol=len(f) / 65536.0)
    assert f[-1] / 65536.0 == pytest.approx(tail, abs=len(f) / 65536.0)


def test_factorized_tables_refuse_untrained_ranges(tiny_params):
  eb = dict(tiny_params["z_entropy_bottleneck"])
  q = np.array(eb["quantiles"])
  q[0, 0, 0] = -1e7
  eb["quantiles"] = q
  with pytest.raises(ValueError, match="span"):
    factorized_tables(eb)


def _build_indexes_reference(scales, table):
  """CompressAI GaussianConditional.build_indexes, literally."""
  scales = np.maximum(scales, np.float32(SCALE_BOUND))
  indexes = np.full(scales.shape, len(table) - 1, np.int64)
  for s in table[:-1]:
    indexes -= (scales <= s).astype(np.int64)
  return indexes


def test_scale_indexes_are_build_indexes():
  st = coding_scale_table()
  rng = np.random.default_rng(1)
  scales = np.concatenate([
      st, np.nextafter(st, np.float32(0)), np.nextafter(st, np.float32(1e9)),
      np.float32([-5, 0, 0.05, 0.11, 300, 1e30]),
      np.exp(rng.uniform(-4, 7, 5000)).astype(np.float32)]).astype(np.float32)
  got = scale_indexes(scales, st)
  np.testing.assert_array_equal(got, _build_indexes_reference(scales, st))
  # The first level >= scale.
  assert got[0] == 0 and got[63] == 63 and scale_indexes(np.float32([1e9]), st) == 63


def test_build_tables_is_a_pure_function(tiny_params):
  a = build_tables(tiny_params)
  b = build_tables(tiny_params)
  for x, y in ((a.z, b.z), (a.y, b.y)):
    np.testing.assert_array_equal(x.cdf, y.cdf)
    np.testing.assert_array_equal(x.offset, y.offset)
  assert a.z.num_tables == tiny_params["z_entropy_bottleneck"]["quantiles"].shape[0]
  rt = CodingTables.from_dict(a.y.to_dict())
  np.testing.assert_array_equal(rt.cdf, a.y.cdf)
  assert rt.precision == 16
  assert math.isclose(float(a.scale_table[0]), 0.11, rel_tol=1e-6)


def test_validate_catches_broken_tables(tiny_params):
  t = build_tables(tiny_params).y
  cdf = t.cdf.copy()
  cdf[3, 2] = cdf[3, 1]  # a zero frequency
  with pytest.raises(ValueError):
    CodingTables(cdf, t.cdf_length, t.offset).validate()
  with pytest.raises(ValueError):
    CodingTables(t.cdf, t.cdf_length + 10**6, t.offset).validate()
