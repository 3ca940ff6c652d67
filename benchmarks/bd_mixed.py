"""BD-rates of one curve assembled from points of several results files (PSNR of the
8-bit output for the learned points, as docs/results.md), against the curves of
anchor codecs: e.g. the shipped models' plain points at qualities 1-3 with their
latent-optimised points at qualities 4-7.

  .venv/bin/python benchmarks/bd_mixed.py --anchors out/kodak_shipped7.json \\
      --points out/kodak_round6.json:cca-jax:0-2 \\
      --points out/kodak_optimize30.json:cca-jax-optimize30

``--points FILE:CURVE[:FIRST-LAST]`` takes the curve's points (sorted by rate;
indices from 0) of that file; the assembled curve is compared with every classical
curve of ``--anchors`` (BD-rate, PCHIP, over the quality range both cover).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402


def _points(spec: str, key: str) -> np.ndarray:
  path, name, *rest = spec.split(":")
  curve = next(c for c in json.load(open(path))["curves"] if c["name"] == name)
  pts = np.array([(p["summary"]["bpp"], p["summary"][key]) for p in curve["points"]])
  pts = pts[np.argsort(pts[:, 0])]
  if rest:
    first, last = (int(v) for v in rest[0].split("-"))
    pts = pts[first:last + 1]
  return pts


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--anchors", required=True, help="results file with classical codecs")
  p.add_argument("--points", action="append", required=True,
                 help="FILE:CURVE[:FIRST-LAST] (repeatable)")
  args = p.parse_args()
  from cca_jax.eval import bdrate
  for key, anchor_key in (("psnr_8bit", "psnr"), ("ms_ssim_db", "ms_ssim_db")):
    test = np.concatenate([_points(s, key) for s in args.points])
    test = test[np.argsort(test[:, 0])]
    print(f"{key}: {len(test)} points, {test[0, 0]:.3f}-{test[-1, 0]:.3f} bpp")
    for c in json.load(open(args.anchors))["curves"]:
      if c["kind"] == "model":
        continue
      a = np.array([(q["summary"]["bpp"], q["summary"][anchor_key]) for q in c["points"]])
      r = bdrate.bd_rate(a[:, 0], a[:, 1], test[:, 0], test[:, 1])
      print(f"  vs {c['name']:8s} {r.value:+6.1f} %")
  return 0


if __name__ == "__main__":
  sys.exit(main())
