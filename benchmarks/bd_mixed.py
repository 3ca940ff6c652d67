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
``--write OUT --name NAME --label LABEL`` also saves the assembled points, each with
its whole record, as one curve of a results file that ``python -m cca_jax.report``
reads (e.g. the latent-optimised points of the bundles still shipped, measured in
two runs); its ``command`` lists the source files and their commands.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402


def _select(spec: str) -> tuple[dict, dict, list[dict]]:
  """``(results file, curve, its selected points sorted by rate)`` of a ``--points``."""
  path, name, *rest = spec.split(":")
  with open(path) as f:
    doc = json.load(f)
  curve = next(c for c in doc["curves"] if c["name"] == name)
  points = sorted(curve["points"], key=lambda p: p["summary"]["bpp"])
  if rest:
    first, last = (int(v) for v in rest[0].split("-"))
    points = points[first:last + 1]
  return doc, curve, points


def write_curve(specs: list[str], selected: list[tuple], points: list[dict], out: str,
                name: str, label: str) -> None:
  """``points`` (chosen by ``specs``, read as ``selected``) as one curve ``name`` of a
  new results file ``out``."""
  doc, curve, _ = selected[0]
  sources = "; ".join(f"{s} from: {d['command']}" for s, (d, _, _) in zip(specs, selected))
  new = {k: v for k, v in doc.items() if k not in ("curves", "visual", "command")}
  new["command"] = ("python benchmarks/bd_mixed.py " + " ".join(
      f"--points {s}" for s in specs) + f" --write {out}; sources: {sources}")
  new["curves"] = [dict(curve, name=name, label=label, points=points)]
  folder = os.path.dirname(out)
  if folder:
    os.makedirs(folder, exist_ok=True)
  with open(out, "w") as f:
    json.dump(new, f, indent=1)


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--anchors", required=True, help="results file with classical codecs")
  p.add_argument("--points", action="append", required=True,
                 help="FILE:CURVE[:FIRST-LAST] (repeatable)")
  p.add_argument("--write", metavar="OUT", help="save the assembled curve (results file)")
  p.add_argument("--name", help="its curve name (with --write)")
  p.add_argument("--label", help="its label (with --write)")
  args = p.parse_args()
  if args.write and not (args.name and args.label):
    p.error("--write needs --name and --label")
  from cca_jax.eval import bdrate
  selected = [_select(s) for s in args.points]
  points = sorted((pt for _, _, pts in selected for pt in pts),
                  key=lambda pt: pt["summary"]["bpp"])
  with open(args.anchors) as f:
    anchors = [c for c in json.load(f)["curves"] if c["kind"] != "model"]
  for key, anchor_key in (("psnr_8bit", "psnr"), ("ms_ssim_db", "ms_ssim_db")):
    test = np.array([(pt["summary"]["bpp"], pt["summary"][key]) for pt in points])
    print(f"{key}: {len(test)} points, {test[0, 0]:.3f}-{test[-1, 0]:.3f} bpp")
    for c in anchors:
      a = np.array([(q["summary"]["bpp"], q["summary"][anchor_key]) for q in c["points"]])
      r = bdrate.bd_rate(a[:, 0], a[:, 1], test[:, 0], test[:, 1])
      print(f"  vs {c['name']:8s} {r.value:+6.1f} %")
  if args.write:
    write_curve(args.points, selected, points, args.write, args.name, args.label)
    print(f"wrote {args.write}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
