"""Figures of the evaluation (matplotlib, Agg backend, PNG written atomically).

* ``rd_plot``: rate (bpp) against quality (PSNR or MS-SSIM dB), one line per codec
  or model family; learned models bold, the published reference points dashed.
* ``visual_comparison``: the same crop of one image from the original, the learned
  model and each classical codec, titled with each one's bpp and PSNR on that image.
* ``information_plot``: per-slice share of the y bits (``information.py``).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np

from cca_jax.eval.curves import QUALITY_KEYS, curve_arrays
from cca_jax.eval.results import atomic_write_bytes

_REFERENCE_STYLE = {
    "cca-paper": dict(color="black", linestyle="--", marker="*", markersize=9),
    "vtm": dict(color="0.45", linestyle="--", marker="v", markersize=5),
    "bpg444": dict(color="0.45", linestyle=":", marker="^", markersize=5),
}
_MODEL_COLORS = ("tab:red", "darkred", "tab:pink", "saddlebrown")
_CLASSICAL_COLORS = ("tab:blue", "tab:cyan", "tab:green", "tab:olive", "tab:purple",
                     "tab:orange", "tab:brown", "tab:gray")


def _pyplot():
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def _save(fig, path: str) -> None:
  buf = io.BytesIO()
  fig.savefig(buf, format="png", dpi=fig.dpi, bbox_inches="tight")
  _pyplot().close(fig)
  atomic_write_bytes(path, buf.getvalue())


def _style(curve: dict, i_model: int, i_classical: int) -> dict:
  kind = curve.get("kind")
  if kind == "reference":
    return dict(_REFERENCE_STYLE.get(curve["name"],
                                     dict(color="0.3", linestyle="--", marker="s")),
                linewidth=1.3, zorder=3)
  if kind == "model":
    return dict(color=_MODEL_COLORS[i_model % len(_MODEL_COLORS)], linestyle="-",
                marker="o", markersize=6, linewidth=2.4, zorder=4)
  return dict(color=_CLASSICAL_COLORS[i_classical % len(_CLASSICAL_COLORS)],
              linestyle="-", marker=".", markersize=6, linewidth=1.2, zorder=2)


def x_limit(curves: Sequence[dict], rate_key: str = "bpp") -> float:
  """The plotted rate range: 1.3 x the highest rate of a learned model or of the
  paper's points, at least 1 bpp and at most 3 (classical sweeps and anchors reach
  much higher rates)."""
  top = 0.0
  for c in curves:
    if c.get("kind") == "model" or c.get("name") == "cca-paper":
      r, _ = curve_arrays(c, rate_key, "psnr")
      if np.any(np.isfinite(r)):
        top = max(top, float(np.nanmax(r)))
  return float(min(3.0, max(1.0, 1.3 * top)))


def rd_plot(curves: Sequence[dict], path: str, quality_key: str = "psnr",
            rate_key: str = "bpp", title: str = "", xmax: float | None = None) -> None:
  """Write the RD plot of ``curves`` (``curves.py``) to ``path``; curves without any
  value for ``quality_key`` are left out."""
  plt = _pyplot()
  xmax = xmax or x_limit(curves, rate_key)
  fig, ax = plt.subplots(figsize=(7.5, 5.2), dpi=140)
  shown = []
  im = ic = 0
  for c in curves:
    r, q = curve_arrays(c, rate_key, quality_key)
    ok = np.isfinite(r) & np.isfinite(q)
    if not np.any(ok):
      continue
    style = _style(c, im, ic)
    if c.get("kind") == "model":
      im += 1
    elif c.get("kind") == "classical":
      ic += 1
    ax.plot(r[ok], q[ok], label=c.get("label", c["name"]), **style)
    vis = ok & (r <= xmax)
    if np.any(vis):
      shown.append(q[vis])
  if shown:
    vals = np.concatenate(shown)
    lo, hi = float(vals.min()), float(vals.max())
    pad = max(0.5, 0.04 * (hi - lo))
    ax.set_ylim(lo - pad, hi + pad)
  ax.set_xlim(0.0, xmax)
  ax.set_xlabel(f"rate ({rate_key}: {_rate_label(rate_key)})")
  ax.set_ylabel(QUALITY_KEYS.get(quality_key, quality_key))
  ax.grid(True, alpha=0.35)
  ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
  if title:
    ax.set_title(title, fontsize=10)
  _save(fig, path)


def _rate_label(key: str) -> str:
  return {"bpp": "bits per pixel", "bpp_payload": "bits per pixel, no header",
          "bpp_est": "estimated bits per pixel"}.get(key, key)


def detail_box(image: np.ndarray, size: int = 192, stride: int = 16):
  """``(top, left, size)`` of the square with the most gradient energy (a
  deterministic choice of a detailed region for the visual comparison)."""
  g = np.asarray(image, np.float64).mean(axis=-1)
  h, w = g.shape
  size = int(min(size, h, w))
  e = np.zeros_like(g)
  e[:, 1:] += np.abs(np.diff(g, axis=1))
  e[1:, :] += np.abs(np.diff(g, axis=0))
  s = np.pad(e, ((1, 0), (1, 0))).cumsum(0).cumsum(1)  # summed-area table
  tops = np.arange(0, h - size + 1, stride)
  lefts = np.arange(0, w - size + 1, stride)
  t, l = np.meshgrid(tops, lefts, indexing="ij")
  energy = s[t + size, l + size] - s[t, l + size] - s[t + size, l] + s[t, l]
  k = np.unravel_index(int(np.argmax(energy)), energy.shape)
  return int(tops[k[0]]), int(lefts[k[1]]), size


def visual_comparison(panels: Sequence[tuple[str, np.ndarray]], path: str,
                      box: tuple[int, int, int, int] | None = None,
                      title: str = "") -> tuple[int, int, int, int]:
  """Crops of the same region of several images (``(title, uint8 image)``; the first
  is the original), side by side; returns the box ``(top, left, height, width)``."""
  plt = _pyplot()
  if box is None:
    t, l, s = detail_box(panels[0][1])
    box = (t, l, s, s)
  t, l, bh, bw = box
  n = len(panels)
  ncols = min(4, n)
  nrows = math.ceil(n / ncols)
  fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 3.9 * nrows), dpi=100,
                           squeeze=False)
  for ax in axes.ravel():
    ax.axis("off")
  for ax, (label, img) in zip(axes.ravel(), panels):
    ax.imshow(np.asarray(img)[t:t + bh, l:l + bw], interpolation="nearest")
    ax.set_title(label, fontsize=8)
  if title:
    fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  _save(fig, path)
  return box


def information_plot(items: Sequence[tuple[str, dict]], path: str) -> None:
  """Grouped bars per slice: share of the y bits and share per channel, one bar per
  model (``information.distribution`` dicts)."""
  plt = _pyplot()
  fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), dpi=130)
  n = max(len(items), 1)
  width = 0.8 / n
  for ax, key, ylabel in ((axes[0], "share", "share of the y bits (%)"),
                          (axes[1], "channel_share", "share per channel (%)")):
    for i, (label, d) in enumerate(items):
      s = np.asarray(d[key]) * 100.0
      x = np.arange(len(s)) + (i - (n - 1) / 2) * width
      ax.bar(x, s, width, label=label)
    if items:
      sizes = items[0][1]["slice_sizes"]
      ax.set_xticks(np.arange(len(sizes)))
      ax.set_xticklabels([f"{i}\n({c} ch)" for i, c in enumerate(sizes)], fontsize=8)
    ax.set_xlabel("slice")
    ax.set_ylabel(ylabel)
    ax.grid(True, axis="y", alpha=0.35)
  fig.tight_layout()
  handles, labels = axes[0].get_legend_handles_labels()
  fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0),
             ncol=min(len(labels), 3) or 1, fontsize=8, frameon=False)
  _save(fig, path)
