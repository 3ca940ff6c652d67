"""``python -m cca_jax.compare``: the shipped models against JPEG, WebP and AVIF.

  .venv/bin/python -m cca_jax.compare --data ../shared/data/kodak --out out/kodak
      [--model q1 --model q2 ...] [--codecs jpeg420,webp,avif444] [--limit 2]

The README's main job. Every image is compressed and decompressed with every model
(real bitstreams, ``cca_jax.codec``; each round trip checked: the decoder must rebuild
exactly the encoder's latents, else the command fails) and with the classical codecs
at five settings each around the models' rates (real file sizes). Prints one table,
one row per model (bpp, PSNR of the 8-bit output, MS-SSIM dB, encode / decode ms)
with, per classical codec, its PSNR at the same rate (interpolated on its curve) and the BD-rate of the
models against it; writes ``OUT/results.json`` (models and codecs,
``cca_jax.eval.results``), ``OUT/report.md`` with the RD plots and a visual crop as
PNG (``cca_jax.report``), and says where. Without ``--model``: the shipped models
(``cca_jax.codec.registry``), every quality.

Exit codes: 0 success, 1 bad input or a round trip that is not exact (one-line
``error:``), 2 usage error.
"""

from __future__ import annotations

import math
import os
import shlex
import sys

from cca_jax.eval.curves import curve_arrays

DEFAULT_CODECS = "jpeg420,webp,avif444"
# Five settings each, spanning the shipped models' rates (0.2-0.7 bpp on Kodak) and a
# little beyond, so that the main job stays within minutes; cca_jax.evaluate sweeps
# more.
DEFAULT_QUALITIES = {"jpeg420": (5, 10, 20, 35, 50), "webp": (5, 10, 20, 35, 50),
                     "avif444": (10, 20, 30, 40, 50)}
# ../shared/data/kodak next to the repository (found from the package, so the default
# works from any working directory).
DEFAULT_DATA = os.path.normpath(os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "data",
    "kodak"))
PSNR_KEY = "psnr_8bit"  # what a user gets: the decoded 8-bit image


def _psnr_arrays(curve: dict):
  key = PSNR_KEY if curve.get("kind") == "model" else "psnr"
  return curve_arrays(curve, "bpp", key)


def matched_table(doc: dict, bd: dict | None = None) -> str:
  """One row per model point; per classical codec, its PSNR at the model's rate
  (``-`` outside its measured rates); then the BD-rate row (negative: fewer bits)."""
  from cca_jax.eval import bdrate
  models = [c for c in doc["curves"] if c.get("kind") == "model"]
  codecs = [c for c in doc["curves"] if c.get("kind") == "classical"]
  head = (f"{'model':<14} {'bpp':>6} {'PSNR':>6} {'MS-SSIM':>7} {'enc ms':>7} "
          f"{'dec ms':>7}")
  for c in codecs:
    head += f" | {c['label'][:12]:>12}"
  lines = [head, f"{'':<14} {'':>6} {'dB':>6} {'dB':>7} {'':>7} {'':>7}"
           + "".join(f" | {'PSNR@bpp':>12}" for _ in codecs)]
  fronts = [bdrate.rd_front(*_psnr_arrays(c)) for c in codecs]
  for m in models:
    for p in m["points"]:
      s = p["summary"]
      name = str(p["setting"].get("model", "?")).removesuffix(".ccam")
      row = (f"{name[:14]:<14} {s['bpp']:6.3f} {s[PSNR_KEY]:6.2f} "
             f"{s['ms_ssim_db']:7.2f} {1e3 * s['encode_s']:7.0f} "
             f"{1e3 * s['decode_s']:7.0f}")
      for ra, qa in fronts:
        q = bdrate.quality_at_rate(ra, qa, s["bpp"]) if len(ra) > 1 else math.nan
        row += f" | {'-' if math.isnan(q) else f'{q:.2f}':>12}"
      lines.append(row)
  if bd is not None:
    row_label = next((r for r in bd["rows"] if r.endswith("(8-bit output)")), None)
    if row_label:
      cells = bd["cells"][row_label]
      row = f"{'BD-rate':<14} {'':>6} {'':>6} {'':>7} {'':>7} {'':>7}"
      for c in codecs:
        row += f" | {cells.get(c['label'], {}).get('text', '') or '-':>12}"
      lines.append(row)
      lines.append("BD-rate: of the models against each codec (PSNR; < 0: fewer bits); "
                   "† one point: the rate difference at its PSNR; ‡ no overlap: "
                   "the PSNR difference at equal rate")
  return "\n".join(lines)


def main(argv=None) -> int:
  import argparse
  from cca_jax.utils.cli import fail_with
  argv = list(sys.argv[1:] if argv is None else argv)
  p = argparse.ArgumentParser(
      prog="python -m cca_jax.compare",
      description="Compress and decompress a folder of images with the shipped models "
                  "and classical codecs; print a side-by-side table, write an RD plot "
                  "and a visual crop.")
  p.add_argument("--data", default=DEFAULT_DATA,
                 help=f"folder of images (default {DEFAULT_DATA})")
  p.add_argument("--out", default=os.path.join("out", "kodak"),
                 help="output folder, created if needed (default out/kodak)")
  p.add_argument("--model", action="append", default=[],
                 help="model bundle, directory or name (repeat; default: every "
                      "shipped quality)")
  p.add_argument("--codecs", default=DEFAULT_CODECS,
                 help=f"classical codecs (default {DEFAULT_CODECS}; see "
                      "cca_jax.evaluate)")
  p.add_argument("--limit", type=int, help="only the first N images (quick check)")
  p.add_argument("--visual", help="image of the visual comparison (default: "
                                  "kodim20.png if present, else the first)")
  p.add_argument("--quiet", action="store_true", help="no progress bar")
  args = p.parse_args(argv)
  if args.limit is not None and args.limit < 1:
    p.error("--limit must be positive")

  from cca_jax.codec.errors import CodecError
  from cca_jax.utils.image_io import ImageError
  try:
    if os.path.exists(args.out) and not os.path.isdir(args.out):
      raise ValueError(f"{args.out}: is a file; --out names a folder")
    from cca_jax.codec import registry
    models = args.model or [e.path for e in registry.shipped_models()]
    if not models:
      raise ValueError(f"no shipped models in {registry.shipped_dir()}; pass --model")
    from cca_jax.eval import classical
    from cca_jax.eval.dataset import load_images
    codecs = classical.resolve(args.codecs) if args.codecs.strip() else []
    if not os.path.isdir(args.data):
      raise ValueError(f"{args.data}: no such directory (the Kodak images are expected "
                       f"in ../shared/data/kodak next to the repository; pass --data DIR)")
    names = [n for n, _ in load_images(args.data, args.limit)[0]]
    visual = args.visual or ("kodim20.png" if "kodim20.png" in names else names[0])
    os.makedirs(args.out, exist_ok=True)
    results = os.path.join(args.out, "results.json")
    from cca_jax.utils import compilation_cache
    from cca_jax.utils.cli import use_codec_xla_flags
    use_codec_xla_flags()
    compilation_cache.enable()
    from cca_jax.eval import evaluate
    command = "python -m cca_jax.compare " + " ".join(shlex.quote(a) for a in argv)
    with evaluate.sigterm_as_interrupt():
      doc = evaluate.run(models, args.data, results, codecs, DEFAULT_QUALITIES,
                         name="cca-jax",
                         label="cca-jax (shipped)" if not args.model else "cca-jax",
                         limit=args.limit, estimate=False, visual=visual,
                         command=command, progress=not args.quiet)
    bad = [f"{p['setting']['model']}: {r['image']}"
           for c in doc["curves"] if c.get("kind") == "model"
           for p in c["points"] for r in p["images"] if not r["roundtrip_exact"]]
    if bad:
      raise CodecError(f"round trip not exact for {len(bad)} images ({bad[0]}, ...)")
    from cca_jax.eval import report
    from cca_jax.eval.results import read_results
    res = report.build([read_results(results)], args.out, "report.md",
                       command=command)
  except (CodecError, ImageError, ValueError, OSError, KeyboardInterrupt) as e:
    return fail_with(e)
  n = doc["dataset"]["num_images"]
  print(f"\n{n} images of {args.data}, every round trip exact; PSNR of the 8-bit "
        f"RGB output, averaged per image; MS-SSIM in dB (-10 log10(1 - MS-SSIM)).")
  print(matched_table(doc, res["bd"]["psnr"]))
  assets = os.path.dirname(res["assets"][0])
  print(f"\nresults: {results}\nreport:  {res['markdown']}\n"
        f"RD plot: {os.path.join(assets, 'rd_psnr.png')}\n"
        f"visual:  {os.path.join(assets, 'visual.png')} ({visual})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
