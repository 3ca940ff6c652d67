"""Bjontegaard deltas between two rate-distortion curves.

BD-rate (Bjontegaard, VCEG-M33, 2001) is the average relative rate difference of a
*test* curve against an *anchor* curve at equal quality: with ``r = log10(rate)``
interpolated as a function of the quality ``q`` (PSNR, or MS-SSIM in dB) for each
curve, over the quality interval both curves cover ``[q_lo, q_hi]``::

    BD-rate = 10 ** ( (integral r_test(q) dq - integral r_anchor(q) dq) / (q_hi - q_lo) ) - 1

negative when the test codec needs fewer bits. BD-PSNR swaps the axes (quality as a
function of log-rate, the mean quality difference in dB).

Interpolation (``method``):

* ``"pchip"`` (default): piecewise cubic Hermite (Fritsch-Carlson,
  ``scipy.interpolate.PchipInterpolator``), the piecewise-cubic method of the
  JCT-VC/JVET common-test-conditions spreadsheets; monotone, no overshoot; any number
  of points >= 2. The same numbers as the ``bjontegaard`` package's ``"pchip"``.
* ``"cubic"``: VCEG-M33's single cubic polynomial fitted to all points (>= 4 points);
  its value depends on which anchor points are included far from the overlap.
* ``"akima"``: Akima's spline (>= 3 points).

Only points on the rate-distortion front are used (``rd_front``: a point that does not
improve the quality over every cheaper point is dropped), since the interpolation needs
quality strictly increasing with rate. Curves whose quality ranges do not overlap have
no BD-rate (``BDResult.value`` is NaN); ``BDResult.coverage`` is the share of the test
curve's range inside the anchor's (``overlap``: of the union of both), so a reader can
see how much of the test curve the number speaks for.

``rate_saving_at_quality`` gives a one-point comparison instead: the anchor's rate at
the test point's quality (interpolated), for a "curve" of a single model;
``quality_gain_at_rate`` the quality difference at the point's rate, for a point (or
``bd_psnr`` for a curve) whose qualities the anchor never reaches.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

METHODS = ("pchip", "cubic", "akima")
_MIN_POINTS = {"pchip": 2, "cubic": 4, "akima": 3}


@dataclasses.dataclass(frozen=True)
class BDResult:
  """A Bjontegaard delta: ``value`` (percent for BD-rate, dB for BD-PSNR; NaN when it
  cannot be computed, ``reason`` says why) and the common interval ``[lo, hi]``:
  ``overlap`` is its share of the union of both curves' ranges (as the
  ``bjontegaard`` package reports it), ``coverage`` its share of the test curve's own
  range (1 when the anchor spans every quality the test curve reaches)."""
  value: float
  lo: float = math.nan
  hi: float = math.nan
  overlap: float = 0.0
  coverage: float = 0.0
  reason: str = ""

  @property
  def ok(self) -> bool:
    return not math.isnan(self.value)


def rd_front(rates: Sequence[float], qualities: Sequence[float]):
  """The points of the rate-distortion front, sorted by rate: each kept point has a
  strictly higher quality than every cheaper point (non-finite points dropped)."""
  r = np.asarray(rates, np.float64)
  q = np.asarray(qualities, np.float64)
  if r.shape != q.shape or r.ndim != 1:
    raise ValueError(f"rates and qualities must be 1-D of one length, got {r.shape} "
                     f"and {q.shape}")
  keep = np.isfinite(r) & np.isfinite(q) & (r > 0)
  r, q = r[keep], q[keep]
  order = np.lexsort((-q, r))  # by rate, the best quality first among equal rates
  r, q = r[order], q[order]
  out_r, out_q = [], []
  for ri, qi in zip(r, q):
    if not out_q or (qi > out_q[-1] and ri > out_r[-1]):
      out_r.append(ri)
      out_q.append(qi)
  return np.asarray(out_r), np.asarray(out_q)


def _interpolator(x: np.ndarray, y: np.ndarray, method: str):
  """An object with ``integrate(a, b)`` and ``__call__`` for ``y(x)``, x increasing."""
  from scipy import interpolate
  if method == "pchip":
    return interpolate.PchipInterpolator(x, y)
  if method == "akima":
    return interpolate.Akima1DInterpolator(x, y)
  if method == "cubic":
    coeffs = np.polyfit(x, y, 3)
    return _Polynomial(coeffs)
  raise ValueError(f"unknown interpolation method {method!r} (one of {METHODS})")


class _Polynomial:
  def __init__(self, coeffs):
    self.coeffs = coeffs
    self.integral = np.polyint(coeffs)

  def __call__(self, x):
    return np.polyval(self.coeffs, x)

  def integrate(self, a, b):
    return float(np.polyval(self.integral, b) - np.polyval(self.integral, a))


def _check_method(method: str) -> None:
  if method not in METHODS:
    raise ValueError(f"unknown interpolation method {method!r} (one of {METHODS})")


def _delta(xa, ya, xt, yt, method) -> BDResult:
  """Mean of ``y_test - y_anchor`` over the common x interval."""
  need = _MIN_POINTS[method]
  if len(xa) < need or len(xt) < need:
    return BDResult(math.nan, reason=f"{method} needs >= {need} points on each curve "
                                     f"(anchor {len(xa)}, test {len(xt)})")
  lo, hi = max(xa[0], xt[0]), min(xa[-1], xt[-1])
  span = max(xa[-1], xt[-1]) - min(xa[0], xt[0])
  if not hi > lo:
    return BDResult(math.nan, reason="the curves do not overlap")
  fa = _interpolator(xa, ya, method)
  ft = _interpolator(xt, yt, method)
  avg = (float(ft.integrate(lo, hi)) - float(fa.integrate(lo, hi))) / (hi - lo)
  return BDResult(avg, float(lo), float(hi), float((hi - lo) / span),
                  float((hi - lo) / (xt[-1] - xt[0])))


def bd_rate(anchor_rates, anchor_qualities, test_rates, test_qualities,
            method: str = "pchip") -> BDResult:
  """BD-rate of the test curve against the anchor, in percent (negative = fewer bits).

  Rates in any unit (bpp, bytes) as long as both curves use the same one; qualities
  in dB (PSNR or MS-SSIM dB). The interval ``lo``/``hi`` is in quality units.
  """
  _check_method(method)
  ra, qa = rd_front(anchor_rates, anchor_qualities)
  rt, qt = rd_front(test_rates, test_qualities)
  d = _delta(qa, np.log10(ra), qt, np.log10(rt), method)
  if not d.ok:
    return d
  return dataclasses.replace(d, value=float((10.0 ** d.value - 1.0) * 100.0))


def bd_psnr(anchor_rates, anchor_qualities, test_rates, test_qualities,
            method: str = "pchip") -> BDResult:
  """BD-PSNR (BD-quality): mean quality gain of the test curve in dB at equal rate.
  The interval ``lo``/``hi`` is in log10(rate)."""
  _check_method(method)
  ra, qa = rd_front(anchor_rates, anchor_qualities)
  rt, qt = rd_front(test_rates, test_qualities)
  return _delta(np.log10(ra), qa, np.log10(rt), qt, method)


def rate_at_quality(anchor_rates, anchor_qualities, quality: float) -> float:
  """The anchor's rate at ``quality`` (PCHIP in log-rate; NaN outside its range)."""
  ra, qa = rd_front(anchor_rates, anchor_qualities)
  if len(ra) < 2 or not qa[0] <= quality <= qa[-1]:
    return math.nan
  return float(10.0 ** _interpolator(qa, np.log10(ra), "pchip")(quality))


def quality_at_rate(anchor_rates, anchor_qualities, rate: float) -> float:
  """The anchor's quality at ``rate`` (PCHIP in log-rate; NaN outside its range)."""
  ra, qa = rd_front(anchor_rates, anchor_qualities)
  if len(ra) < 2 or not ra[0] <= rate <= ra[-1]:
    return math.nan
  return float(_interpolator(np.log10(ra), qa, "pchip")(math.log10(rate)))


def quality_gain_at_rate(anchor_rates, anchor_qualities, rate: float,
                         quality: float) -> float:
  """``quality - anchor_quality(rate)`` in dB: one test point against a curve at equal
  rate (for a point whose quality lies outside the anchor's quality range)."""
  ref = quality_at_rate(anchor_rates, anchor_qualities, rate)
  return math.nan if math.isnan(ref) else quality - ref


def rate_saving_at_quality(anchor_rates, anchor_qualities, rate: float,
                           quality: float) -> float:
  """``rate / anchor_rate(quality) - 1`` in percent: one test point against a curve
  (negative = the point needs fewer bits than the anchor at its quality)."""
  ref = rate_at_quality(anchor_rates, anchor_qualities, quality)
  return math.nan if math.isnan(ref) else (rate / ref - 1.0) * 100.0
