"""Rate-distortion curves: what the evaluation writes and the report reads.

A curve is one codec (or one family of models) at several operating points::

  {"name": "jpeg420", "label": "JPEG 4:2:0", "kind": "classical" | "model" | "reference",
   "settings": {...}, "points": [point, ...]}

and a point is one quality setting (or one model) evaluated over a dataset::

  {"setting": {"quality": 50} | {"model": "m.ccam", "model_id": ...},
   "summary": {"bpp": ..., "psnr": ..., "ms_ssim": ..., "ms_ssim_db": ..., ...},
   "images": [{"image": "kodim01.png", "bpp": ..., ...}, ...]}

``summary`` holds the means over the images of every numeric per-image field (NaN
values are skipped; ``num_images`` counts the images). Reference curves (published
numbers) have summaries only. Rates are bits per pixel of the *original* image; for a
learned model ``bpp`` counts every byte of the stream (header included). ``psnr`` /
``ms_ssim`` are the paper's metrics (a learned model's clamped float output; a
classical codec's decoded 8-bit image); ``*_8bit`` keys are a model's 8-bit output.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

# The quality keys a curve can be plotted / compared with, and their axis labels.
QUALITY_KEYS = {
    "psnr": "PSNR (dB)",
    "psnr_8bit": "PSNR of the 8-bit output (dB)",
    "ms_ssim_db": "MS-SSIM (dB)",
    "ms_ssim_db_8bit": "MS-SSIM of the 8-bit output (dB)",
}
RATE_KEYS = {
    "bpp": "bits per pixel (whole file)",
    "bpp_payload": "bits per pixel (entropy-coded parts, no header)",
    "bpp_est": "bits per pixel (estimated from the likelihoods)",
}


def summarize(images: Sequence[dict]) -> dict:
  """Means of every numeric field over per-image records (NaN and inf skipped for a
  field only when some values are finite; a field that is never finite keeps NaN)."""
  keys: list[str] = []
  for rec in images:
    for k, v in rec.items():
      if k not in keys and isinstance(v, (int, float)) and not isinstance(v, bool):
        keys.append(k)
  out = {}
  for k in keys:
    vals = np.asarray([float(r[k]) for r in images if k in r], np.float64)
    finite = vals[np.isfinite(vals)]
    out[k] = float(finite.mean()) if finite.size else (
        float(vals[0]) if vals.size and np.all(vals == vals[0]) else math.nan)
  out["num_images"] = len(images)
  return out


def point_value(point: dict, key: str) -> float:
  """``point["summary"][key]``; a ``*_8bit`` key falls back to the plain key (classical
  codecs only have 8-bit outputs), ``ms_ssim_db`` to the dB of ``ms_ssim``."""
  s = point.get("summary", {})
  if key in s:
    return float(s[key])
  if key.endswith("_8bit") and key[:-5] in s:
    return float(s[key[:-5]])
  base = key.replace("_8bit", "")
  if base == "ms_ssim_db" and "ms_ssim" in s:
    v = float(s["ms_ssim"])
    return -10.0 * math.log10(1.0 - v) if v < 1 else math.inf
  return math.nan


def curve_arrays(curve: dict, rate_key: str = "bpp", quality_key: str = "psnr"):
  """``(rates, qualities)`` of a curve's points (NaN where a point lacks the key),
  sorted by rate."""
  pts = curve.get("points", [])
  r = np.asarray([point_value(p, rate_key) for p in pts], np.float64)
  q = np.asarray([point_value(p, quality_key) for p in pts], np.float64)
  order = np.argsort(r, kind="stable")
  return r[order], q[order]


def has_quality(curve: dict, quality_key: str) -> bool:
  _, q = curve_arrays(curve, "bpp", quality_key)
  return bool(np.any(np.isfinite(q)))


def merge_curves(curve_lists: Iterable[Sequence[dict]], replace: bool = False
                 ) -> list[dict]:
  """Concatenate curves from several result files; curves of the same name and kind
  are merged (their points pooled), so a model family evaluated in two runs is one
  curve. With ``replace``, a later file's curve replaces the earlier one of the same
  name and kind instead (e.g. new models of a family against classical curves of an
  earlier run)."""
  out: dict[tuple, dict] = {}
  for curves in curve_lists:
    for c in curves:
      key = (c["name"], c.get("kind"))
      if key in out and not replace:
        out[key] = dict(out[key], points=list(out[key]["points"]) + list(c["points"]))
      else:
        out[key] = dict(c, points=list(c["points"]))
  return list(out.values())
