"""How a model distributes the information of y over its channel slices.

The paper's "information distributed ratio" figure compares models trained with and
without the CCA loss: with it, the code length shrinks as the slice index grows
(earlier slices carry more of the information, later ones are predicted from them).
Its exact definition is not available; this is our operationalisation, not the
paper's: for each image the estimated y bits of slice ``i`` (the evaluation forward,
``estimate.estimate_image``), ``R_i``, and

* ``share``: ``R_i / sum_j R_j`` averaged over the images (and its standard
  deviation); ``pooled_share``: the same from the dataset's summed bits;
* ``channel_share``: the share per channel, ``(R_i / C_i) / sum_j (R_j / C_j)`` with
  ``C_i`` the slice's channel count, since the uneven slices (e.g. 8, 28, 56, 92, 136)
  make the plain share grow with the slice size alone;
* ``bpp``: ``R_i`` per image pixel, averaged.

  .venv/bin/python -m cca_jax.eval.information --model A.ccam --model B.ccam \\
      --data ../shared/data/kodak [--limit N] [--pad-multiple 128] [--out info.json] \\
      [--plot info.png]
  .venv/bin/python -m cca_jax.eval.information --results results.json [--plot ...]

The second form reads the per-image slice bits that ``cca_jax.evaluate`` stored.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import numpy as np


def distribution(slice_bits, sizes: Sequence[int], pixels) -> dict:
  """The statistics above from ``slice_bits`` ``(images, slices)`` (bits of y per
  slice), the slices' channel counts and each image's pixel count."""
  bits = np.asarray(slice_bits, np.float64)
  if bits.ndim != 2 or bits.shape[1] != len(sizes):
    raise ValueError(f"slice bits of shape {bits.shape} do not match {len(sizes)} slices")
  c = np.asarray(sizes, np.float64)
  npix = np.asarray(pixels, np.float64).reshape(-1, 1)
  total = bits.sum(axis=1, keepdims=True)
  share = bits / np.where(total > 0, total, 1.0)
  per_channel = bits / c
  pc_total = per_channel.sum(axis=1, keepdims=True)
  channel_share = per_channel / np.where(pc_total > 0, pc_total, 1.0)
  return {
      "slice_sizes": [int(s) for s in sizes],
      "num_images": int(bits.shape[0]),
      "share": share.mean(axis=0).tolist(),
      "share_std": share.std(axis=0).tolist(),
      "pooled_share": (bits.sum(axis=0) / max(bits.sum(), 1e-300)).tolist(),
      "channel_share": channel_share.mean(axis=0).tolist(),
      "bpp": (bits / npix).mean(axis=0).tolist(),
      "bpp_y": float((total / npix).mean()),
  }


def measure(bundle, images, multiple: int = 128, progress=None) -> dict:
  """``distribution`` of a model bundle over ``(name, uint8 image)`` pairs."""
  from cca_jax.model.inference import estimate_image
  bits, pixels = [], []
  for _, image in images:
    est = estimate_image(bundle.config, bundle.params,
                         image.astype(np.float32) / np.float32(255.0), multiple)
    bits.append(est["slice_bits"])
    pixels.append(image.shape[0] * image.shape[1])
    if progress is not None:
      progress.update(1)
  return distribution(bits, bundle.model.sizes, pixels)


def from_point(point: dict) -> dict | None:
  """``distribution`` of an evaluated model point (``learned.evaluate_model``), or
  None when it has no slice bits (evaluated without the estimate)."""
  recs = point.get("images", [])
  sizes = point.get("setting", {}).get("slice_sizes")
  if not recs or not sizes or any("slice_bits" not in r or "pixels" not in r
                                  for r in recs):
    return None
  pixels = [r["pixels"] for r in recs]
  return distribution([r["slice_bits"] for r in recs], sizes, pixels)


def from_results(doc: dict) -> list[tuple[str, dict]]:
  """``(label, distribution)`` of every model point of an evaluation results file."""
  out = []
  for curve in doc.get("curves", []):
    if curve.get("kind") != "model":
      continue
    for p in curve["points"]:
      d = from_point(p)
      if d is not None:
        st = p["setting"]
        lmbda = f" (λ={st['lmbda']:g})" if "lmbda" in st else ""
        out.append((f"{curve['name']}: {st.get('model', '?')}{lmbda}", d))
  return out


def format_table(items: Sequence[tuple[str, dict]]) -> str:
  """A plain-text table: one row per model, share (and channel share) per slice."""
  lines = []
  for label, d in items:
    lines.append(f"{label} ({d['num_images']} images, y {d['bpp_y']:.4f} bpp)")
    lines.append("  slice  channels  share %  (std)   channel share %  bpp")
    for i, size in enumerate(d["slice_sizes"]):
      lines.append(f"  {i:5d}  {size:8d}  {100 * d['share'][i]:7.2f}  "
                   f"({100 * d['share_std'][i]:5.2f})  {100 * d['channel_share'][i]:15.2f}"
                   f"  {d['bpp'][i]:.4f}")
  return "\n".join(lines)


def main(argv=None) -> int:
  import argparse
  from cca_jax.utils.cli import fail_with
  p = argparse.ArgumentParser(
      prog="python -m cca_jax.eval.information",
      description="Per-slice share of the y bits of one or more models over a dataset "
                  "(cf. the paper's per-slice code length with / without CCA).")
  p.add_argument("--model", action="append", default=[], help="model bundle (repeat)")
  p.add_argument("--data", help="image folder (with --model)")
  p.add_argument("--limit", type=int, default=None, help="first N images only")
  p.add_argument("--pad-multiple", type=int, default=128, choices=(64, 128, 192, 256),
                 help="padding multiple (128 as the paper and cca_jax.evaluate)")
  p.add_argument("--results", action="append", default=[],
                 help="results JSON of cca_jax.evaluate (instead of --model)")
  p.add_argument("--out", help="write the distributions as JSON")
  p.add_argument("--plot", help="write a bar chart PNG")
  args = p.parse_args(argv)
  if bool(args.model) == bool(args.results):
    p.error("pass --model (with --data) or --results")
  if args.model and not args.data:
    p.error("--model needs --data")
  from cca_jax.codec.errors import CodecError
  from cca_jax.utils.image_io import ImageError
  try:
    items = []
    if args.results:
      for path in args.results:
        items += from_results(_read_json(path))
      if not items:
        raise ValueError("no model point with per-slice bits in the results")
    else:
      from tqdm import tqdm
      from cca_jax.codec import load_bundle
      from cca_jax.eval.dataset import load_images
      from cca_jax.utils import compilation_cache
      compilation_cache.enable()
      images, _ = load_images(args.data, args.limit)
      bundles = [(m, load_bundle(m)) for m in args.model]
      with tqdm(total=len(images) * len(bundles), desc="information", unit="img",
                file=sys.stderr) as bar:
        for path, b in bundles:
          items.append((os.path.basename(path),
                        measure(b, images, args.pad_multiple, progress=bar)))
    print(format_table(items))
    if args.out:
      from cca_jax.eval.results import write_json
      write_json(args.out, {"format": "cca-jax-information", "version": 1,
                            "models": [{"label": l, **d} for l, d in items]})
    if args.plot:
      from cca_jax.eval.plots import information_plot
      information_plot(items, args.plot)
  except (CodecError, ImageError, ValueError, OSError) as e:
    return fail_with(e)
  return 0


def _read_json(path: str) -> dict:
  from cca_jax.eval.results import read_results
  return read_results(path)


if __name__ == "__main__":
  sys.exit(main())
