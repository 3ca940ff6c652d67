"""SSIM and MS-SSIM in JAX (NHWC), numerically matching ``pytorch_msssim``.

What it computes
----------------
``ssim(x, y)`` returns the per-image structural similarity index and
``ms_ssim(x, y)`` the per-image multi-scale SSIM, both of shape ``(N,)`` for
images of shape ``(N, H, W, C)`` whose values span ``data_range`` (1.0 for
images in [0, 1], 255 for 8-bit images). ``ms_ssim_db`` maps an MS-SSIM value
to decibels, ``-10 * log10(1 - value)``, the customary way of reporting it in
the learned image compression literature.

Standard definition
-------------------
SSIM (Wang, Bovik, Sheikh & Simoncelli, 2004) compares local statistics
computed under a Gaussian window (11 taps, sigma 1.5)::

  l(x, y)  = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1)
  cs(x, y) = (2 sigma_xy + C2) / (sigma_x^2 + sigma_y^2 + C2)
  SSIM     = mean over positions of l * cs,
  C1 = (k1 L)^2, C2 = (k2 L)^2, k1 = 0.01, k2 = 0.03, L = data_range.

MS-SSIM (Wang, Simoncelli & Bovik, "Multi-scale structural similarity for
image quality assessment", Asilomar 2003) evaluates the contrast-structure
term ``cs`` at scales 1..M-1 and the full SSIM at the coarsest scale M,
halving the resolution between scales with a 2x2 average filter, and combines
them as a weighted geometric mean::

  MS-SSIM = prod_{j<M} mean(cs_j) ** w_j  *  mean(ssim_M) ** w_M

with M = 5 and weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333).

Conventions (those of ``pytorch_msssim``, which this module reproduces)
------------------------------------------------------------------------
* The Gaussian filter is separable, applied per channel (height first, then
 width) with *valid* (unpadded) convolution, so each map is
 ``(H - win + 1) x (W - win + 1)``. In ``ssim`` a spatial axis shorter than
 the window is left unfiltered (``pytorch_msssim`` does the same, with a
 warning).
* Variances are the biased ``E[x^2] - E[x]^2`` under the window (no N/(N-1)
 compensation).
* SSIM and cs are averaged over space *per channel*; for MS-SSIM the level
 values are clipped with ``relu``, combined per channel, and only the final
 per-channel MS-SSIM is averaged over channels. (Averaging the channels
 first, converting to grayscale, or using the luminance channel only, gives
 different numbers.) ``ssim`` averages the per-channel SSIM over channels and
 applies ``relu`` only if ``nonnegative=True`` (default off, as in
 ``pytorch_msssim.ssim``).
* Downsampling is ``avg_pool2d(kernel=2, stride=2, padding=s % 2)`` per axis
 with ``count_include_pad=True``: an odd axis gets one zero prepended and the
 first output sample is ``(0 + x[0]) / 2``; the axis shrinks to
 ``ceil(s / 2)``. Other implementations (e.g. the original MATLAB code, TF's
 ``tf.image.ssim_multiscale``) pad or crop differently and differ slightly on
 odd sizes.
* The smaller image side must exceed ``(win_size - 1) * 2**4`` (160 for the
 default window), otherwise a ``ValueError`` is raised.
* Unlike ``tf.image.ssim_multiscale``, the input is *not* assumed to be in a
 fixed range: pass ``data_range`` matching the images.

Differences to watch for / implementation notes
-----------------------------------------------
* Layout is NHWC (JAX/Flax), not NCHW as in ``pytorch_msssim``.
* ``data_range`` defaults to 1.0 here; ``pytorch_msssim`` defaults to 255.
* The convolutions use ``precision=lax.Precision.HIGHEST`` so that float32
 inputs are not silently reduced to TF32/bf16 on GPU/TPU.
* The window is the exact Gaussian computed in float64 and cast to the input
 dtype. ``pytorch_msssim`` builds it in float32 even for float64 input; that
 alone makes float64 results differ by up to ~3e-7 (MS-SSIM) and ~1.4e-6
 (single-scale SSIM of smooth images, where the luminance term is most
 sensitive to the window's sum). With the identical window the two agree to
 ~1e-15 in float64.
* ``E[x^2] - E[x]^2`` cancels in float32 for nearly flat regions; float32
 results agree with ``pytorch_msssim`` (float32 or float64) to ~2e-6.
* Gradients: ``relu(v) ** w`` has an infinite derivative at ``v == 0``; here
 the power is evaluated on a guarded argument so a clipped level contributes
 a zero (not NaN) gradient. Values are identical to ``pytorch_msssim``.
* All functions are pure and trace under ``jax.jit``; ``win_size``,
 ``sigma`` and ``weights`` must be static Python values (they determine
 shapes), ``data_range``, ``k1`` and ``k2`` may be traced.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import jax.numpy as jnp
from jax import lax

__all__ = [
  "MS_SSIM_WEIGHTS",
  "gaussian_window",
  "ssim",
  "ms_ssim",
  "ms_ssim_db",
]

#: Standard MS-SSIM scale weights (Wang et al. 2003), finest scale first.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def gaussian_window(size: int = 11, sigma: float = 1.5, dtype=None) -> jnp.ndarray:
  """Normalised 1-D Gaussian window of ``size`` taps centred on ``size // 2``.

  ``exp(-(i - size//2)**2 / (2 sigma**2))`` normalised to sum 1, computed in
  float64 with NumPy (a constant, never traced) and returned as a JAX array
  of ``dtype`` (default: JAX's default float type).
  """
  return jnp.asarray(_gaussian_window_np(size, sigma), dtype=dtype)


def _gaussian_window_np(size: int, sigma: float) -> np.ndarray:
  size = int(size)
  if size < 1:
    raise ValueError(f"Window size must be positive, got {size}.")
  coords = np.arange(size, dtype=np.float64) - size // 2
  g = np.exp(-(coords**2) / (2.0 * float(sigma) ** 2))
  return g / g.sum()


def _check_inputs(x, y, win_size):
  x = jnp.asarray(x)
  y = jnp.asarray(y)
  if x.shape != y.shape:
    raise ValueError(
      f"Input images should have the same shape, got {x.shape} and {y.shape}."
    )
  if x.ndim != 4:
    raise ValueError(
      f"Input images should be 4-d NHWC arrays (batch, height, width, "
      f"channels), got shape {x.shape}."
    )
  if int(win_size) % 2 != 1:
    raise ValueError(f"Window size should be odd, got {win_size}.")
  dtype = jnp.result_type(x.dtype, y.dtype)
  if not jnp.issubdtype(dtype, jnp.floating):
    dtype = jnp.float32
  return x.astype(dtype), y.astype(dtype)


def _gaussian_filter(z: jnp.ndarray, win: np.ndarray) -> jnp.ndarray:
  """Valid separable depthwise Gaussian filter of an NHWC array.

  Filters the height axis, then the width axis; an axis shorter than the
  window is left unfiltered (as ``pytorch_msssim.gaussian_filter`` does).
  Each pass is a sum of ``k`` shifted, weighted copies (the same sums as a
  depthwise convolution, which XLA:CPU runs about 20x slower).
  """
  k = win.shape[0]
  w = [float(v) for v in np.asarray(win, np.float64)]
  out = z
  for axis in (1, 2):
    n = out.shape[axis]
    if n < k:
      continue
    acc = None
    for i in range(k):
      term = lax.slice_in_dim(out, i, i + n - k + 1, axis=axis) * jnp.asarray(
        w[i], out.dtype)
      acc = term if acc is None else acc + term
    out = acc
  return out


def _ssim_per_channel(x, y, win, data_range, k1, k2):
  """Per-channel (SSIM, cs) averaged over space, each of shape (N, C)."""
  c = x.shape[-1]
  c1 = (k1 * data_range) ** 2
  c2 = (k2 * data_range) ** 2
  # One grouped convolution for all five local moments.
  stacked = jnp.concatenate([x, y, x * x, y * y, x * y], axis=-1)
  f = _gaussian_filter(stacked, win)
  mu1, mu2, xx, yy, xy = (f[..., i * c:(i + 1) * c] for i in range(5))
  mu1_sq = mu1 * mu1
  mu2_sq = mu2 * mu2
  mu1_mu2 = mu1 * mu2
  sigma1_sq = xx - mu1_sq
  sigma2_sq = yy - mu2_sq
  sigma12 = xy - mu1_mu2
  cs_map = (2 * sigma12 + c2) / (sigma1_sq + sigma2_sq + c2)
  ssim_map = ((2 * mu1_mu2 + c1) / (mu1_sq + mu2_sq + c1)) * cs_map
  return jnp.mean(ssim_map, axis=(1, 2)), jnp.mean(cs_map, axis=(1, 2))


def _avg_pool2_pad_odd(z: jnp.ndarray) -> jnp.ndarray:
  """``F.avg_pool2d(kernel_size=2, padding=[s % 2 ...])`` on NHWC.

  Odd axes get one zero in front (the symmetric padding's trailing zero is
  never reached by a stride-2 window), and zeros count in the average
  (``count_include_pad=True``), so the divisor is always 4.
  """
  ph = z.shape[1] % 2
  pw = z.shape[2] % 2
  if ph or pw:
    z = jnp.pad(z, ((0, 0), (ph, 0), (pw, 0), (0, 0)))
  n, h, w, c = z.shape
  s = z.reshape(n, h // 2, 2, w // 2, 2, c).sum(axis=(2, 4))
  return s * jnp.asarray(0.25, z.dtype)


def _safe_pow(v: jnp.ndarray, w) -> jnp.ndarray:
  """``v ** w`` for ``v >= 0`` with a finite (zero) gradient at ``v == 0``."""
  pos = v > 0
  return jnp.where(pos, jnp.where(pos, v, jnp.ones_like(v)) ** w, jnp.zeros_like(v))


def ssim(
  x,
  y,
  data_range=1.0,
  win_size: int = 11,
  sigma: float = 1.5,
  k1=0.01,
  k2=0.03,
  nonnegative: bool = False,
) -> jnp.ndarray:
  """Per-image SSIM of NHWC images ``x`` and ``y``; returns shape ``(N,)``.

  Equals ``pytorch_msssim.ssim(X, Y, data_range, size_average=False,
  win_size, win_sigma=sigma, K=(k1, k2), nonnegative_ssim=nonnegative)`` on
  the NCHW transposes. The per-channel SSIM is averaged over channels.
  """
  x, y = _check_inputs(x, y, win_size)
  win = _gaussian_window_np(win_size, sigma)
  ssim_pc, _ = _ssim_per_channel(x, y, win, data_range, k1, k2)
  if nonnegative:
    ssim_pc = jnp.maximum(ssim_pc, 0)
  return jnp.mean(ssim_pc, axis=-1)


def ms_ssim(
  x,
  y,
  data_range=1.0,
  win_size: int = 11,
  sigma: float = 1.5,
  weights: Optional[Sequence[float]] = None,
  k1=0.01,
  k2=0.03,
) -> jnp.ndarray:
  """Per-image MS-SSIM of NHWC images ``x`` and ``y``; returns shape ``(N,)``.

  Equals ``pytorch_msssim.ms_ssim(X, Y, data_range, size_average=False,
  win_size, win_sigma=sigma, weights, K=(k1, k2))`` on the NCHW
  transposes. ``weights`` defaults to :data:`MS_SSIM_WEIGHTS` (5 scales);
  the number of weights sets the number of scales.

  Raises ``ValueError`` if ``min(H, W) <= (win_size - 1) * 2**4``.
  """
  x, y = _check_inputs(x, y, win_size)
  if weights is None:
    weights = MS_SSIM_WEIGHTS
  weights = tuple(float(w) for w in weights)
  if len(weights) < 1:
    raise ValueError("weights must contain at least one scale weight.")
  min_side = (int(win_size) - 1) * 2**4
  smaller_side = min(x.shape[1], x.shape[2])
  if smaller_side <= min_side:
    raise ValueError(
      f"Image too small for MS-SSIM: height and width must both be larger "
      f"than {min_side} (= (win_size - 1) * 2**4, due to the 4 "
      f"downsamplings), got {x.shape[1]}x{x.shape[2]} (NHWC shape "
      f"{x.shape})."
    )
  win = _gaussian_window_np(win_size, sigma)
  levels = len(weights)
  val = None
  for i in range(levels):
    ssim_pc, cs_pc = _ssim_per_channel(x, y, win, data_range, k1, k2)
    level = cs_pc if i < levels - 1 else ssim_pc
    term = _safe_pow(jnp.maximum(level, 0), jnp.asarray(weights[i], x.dtype))
    val = term if val is None else val * term
    if i < levels - 1:
      x = _avg_pool2_pad_odd(x)
      y = _avg_pool2_pad_odd(y)
  return jnp.mean(val, axis=-1)


def ms_ssim_db(value) -> jnp.ndarray:
  """MS-SSIM in decibels: ``-10 * log10(1 - value)`` (inf for value == 1)."""
  value = jnp.asarray(value)
  return -10.0 * jnp.log10(1.0 - value)
