"""cca_jax.eval.bdrate on worked examples: closed forms, the ``bjontegaard`` package's
README example, and the paper's points against CompressAI's VTM anchor."""

import math

import numpy as np
import pytest

from cca_jax.eval import bdrate, reference

# The example of the bjontegaard package's README (FAU-LMS/bjontegaard; x265 presets).
RATE_ANCHOR = [9487.76, 4593.60, 2486.44, 1358.24]
PSNR_ANCHOR = [40.037, 38.615, 36.845, 34.851]
RATE_TEST = [9787.80, 4469.00, 2451.52, 1356.24]
PSNR_TEST = [40.121, 38.651, 36.970, 34.987]
# Computed with bjontegaard 1.3.0 (bd_rate / bd_psnr, method=...).
PACKAGE_BD_RATE = {"pchip": -4.417485350589045, "cubic": -4.420462706026296,
                   "akima": -4.425245156997493}
PACKAGE_BD_PSNR = {"pchip": 0.11969278542479489, "cubic": 0.12040941911471303,
                   "akima": 0.11940927028529469}


@pytest.mark.parametrize("method", bdrate.METHODS)
def test_bjontegaard_package_example(method):
  r = bdrate.bd_rate(RATE_ANCHOR, PSNR_ANCHOR, RATE_TEST, PSNR_TEST, method)
  assert r.value == pytest.approx(PACKAGE_BD_RATE[method], abs=1e-9)
  assert (r.lo, r.hi) == (34.987, 40.037)
  p = bdrate.bd_psnr(RATE_ANCHOR, PSNR_ANCHOR, RATE_TEST, PSNR_TEST, method)
  assert p.value == pytest.approx(PACKAGE_BD_PSNR[method], abs=1e-9)
  # Order of the points does not matter; swapping the curves flips the sign in log.
  rev = bdrate.bd_rate(RATE_ANCHOR[::-1], PSNR_ANCHOR[::-1], RATE_TEST, PSNR_TEST, method)
  assert rev.value == pytest.approx(r.value, abs=1e-12)
  back = bdrate.bd_rate(RATE_TEST, PSNR_TEST, RATE_ANCHOR, PSNR_ANCHOR, method)
  assert (1 + back.value / 100) * (1 + r.value / 100) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("method", bdrate.METHODS)
def test_constant_rate_ratio_is_exact(method):
  """A test codec that needs 0.8x the anchor's rate at every quality: -20 %."""
  q = np.array([28.0, 30.5, 33.0, 35.0, 37.5])
  rate = np.array([0.12, 0.25, 0.45, 0.7, 1.2])
  r = bdrate.bd_rate(rate, q, 0.8 * rate, q, method)
  assert r.value == pytest.approx(-20.0, abs=1e-9)
  assert r.overlap == 1.0 and r.coverage == 1.0


def test_worked_example_linear_in_log_rate():
  """Both curves linear in log10(rate): PCHIP reproduces lines exactly, so
  BD-rate = 10 ** mean(log-rate difference) - 1 in closed form.

  anchor: log10 R = -3.0 + 0.08 q on q in [28, 38]; test: log10 R = -2.6 + 0.065 q on
  q in [30, 40]. Common interval [30, 38]; mean difference
  0.4 - 0.015 * (30 + 38) / 2 = -0.11, so BD-rate = 10 ** -0.11 - 1 = -22.375 %.
  """
  qa = np.linspace(28, 38, 6)
  qt = np.linspace(30, 40, 5)
  ra = 10 ** (-3.0 + 0.08 * qa)
  rt = 10 ** (-2.6 + 0.065 * qt)
  r = bdrate.bd_rate(ra, qa, rt, qt, "pchip")
  assert r.value == pytest.approx((10 ** -0.11 - 1) * 100, abs=1e-9)
  assert r.value == pytest.approx(-22.3753, abs=1e-4)
  assert (r.lo, r.hi) == (30.0, 38.0)
  assert r.overlap == pytest.approx(8 / 12) and r.coverage == pytest.approx(8 / 10)


def test_paper_points_against_vtm():
  """Our BD-rate of official RD_data.json (Kodak) vs CompressAI's vtm.json: -13.73 %."""
  curves = {c["name"]: c for c in reference.reference_curves("kodak")}

  def arrays(name):
    pts = curves[name]["points"]
    return ([p["summary"]["bpp"] for p in pts], [p["summary"]["psnr"] for p in pts])
  r = bdrate.bd_rate(*arrays("vtm"), *arrays("cca-paper"), "pchip")
  assert r.value == pytest.approx(-13.730114014187789, abs=1e-9)  # bjontegaard 1.3.0
  assert r.coverage == 1.0
  # VCEG-M33's cubic over all 8 VTM points (the bjontegaard package agrees); the
  # cubic -13.68 % comes from fitting the 6 VTM points up to 40.4 dB only.
  assert bdrate.bd_rate(*arrays("vtm"), *arrays("cca-paper"), "cubic").value == \
      pytest.approx(-13.941214808786818, abs=1e-6)
  vtm_r, vtm_q = arrays("vtm")
  six = bdrate.bd_rate(vtm_r[:6], vtm_q[:6], *arrays("cca-paper"), "cubic")
  assert six.value == pytest.approx(-13.68, abs=0.005)


def test_front_overlap_and_points():
  # Dominated points (no quality gain for more bits) are dropped before interpolating.
  r, q = bdrate.rd_front([0.5, 0.1, 0.3, 0.4, 0.6, float("nan")],
                         [30.0, 25.0, 28.0, 27.0, 31.0, 40.0])
  np.testing.assert_array_equal(r, [0.1, 0.3, 0.5, 0.6])
  np.testing.assert_array_equal(q, [25.0, 28.0, 30.0, 31.0])
  # Disjoint quality ranges: no BD-rate, and it says why.
  res = bdrate.bd_rate([0.1, 0.2], [20.0, 22.0], [0.5, 1.0], [30.0, 33.0])
  assert math.isnan(res.value) and not res.ok and "overlap" in res.reason
  res = bdrate.bd_rate([0.1, 0.2, 0.4], [20, 22, 25], [0.1, 0.2, 0.4], [21, 23, 26],
                       "cubic")
  assert not res.ok and ">= 4 points" in res.reason
  with pytest.raises(ValueError, match="method"):
    bdrate.bd_rate([0.1, 0.2], [20, 22], [0.1, 0.2], [20, 22], "spline")
  # One point against a curve: the anchor's log-rate is interpolated at its quality.
  ra = [0.1, 0.2, 0.4, 0.8]
  qa = [26.0, 29.0, 32.0, 35.0]
  assert bdrate.rate_at_quality(ra, qa, 29.0) == pytest.approx(0.2)
  assert bdrate.rate_saving_at_quality(ra, qa, 0.15, 29.0) == pytest.approx(-25.0)
  assert math.isnan(bdrate.rate_saving_at_quality(ra, qa, 0.15, 40.0))
  # ... or its quality interpolated at the point's rate (quality outside the range).
  assert bdrate.quality_at_rate(ra, qa, 0.4) == pytest.approx(32.0)
  assert bdrate.quality_gain_at_rate(ra, qa, 0.4, 20.0) == pytest.approx(-12.0)
  assert math.isnan(bdrate.quality_gain_at_rate(ra, qa, 2.0, 20.0))
