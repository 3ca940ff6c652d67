"""``python -m cca_jax.evaluate``: measure models and classical codecs on a dataset.

  .venv/bin/python -m cca_jax.evaluate --model A.ccam [--model B.ccam ...] \\
      --data ../shared/data/kodak --out results.json [--codecs jpeg,webp,avif,jxl]

Every ``--model`` is one point of one RD curve (``--name`` / ``--label``; a second
family of models is a second run, and ``cca_jax.report`` takes both files). Each
classical codec in ``--codecs`` (``classical.py``; ``default`` = jpeg420, jpeg444,
webp, avif444, jxl, heic420; ``all``) is one curve over its quality sweep
(``--qualities jpeg420=10,30,50``). Per image: real bpp (whole stream and without the
header), estimated bpp, PSNR (clamped float output, as the paper, and the 8-bit PNG),
MS-SSIM and its dB, encode and decode times (``learned.py``, ``classical.py``); per
point the means. ``--visual IMAGE`` also keeps that image's reconstruction from every
point (PNGs next to the results file) for the report's visual comparison.

The results file is written atomically at the end (``results.py`` describes it); a
summary table goes to stdout, the progress bar to stderr. Exit codes: 0 success, 1
bad input (one-line ``error:``), 2 usage error.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import shlex
import shutil
import sys

import numpy as np

from cca_jax.eval import classical, learned
from cca_jax.eval.reference import guess_dataset
from cca_jax.eval.results import FORMAT, VERSION, save_png, write_json


def environment(codecs=()) -> dict:
  """Versions and the machine, for the record (timings depend on them)."""
  import jax
  env = {
      "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      "python": platform.python_version(), "platform": platform.platform(),
      "cpu_count": os.cpu_count(), "jax": jax.__version__,
      "backend": jax.default_backend(),
      "devices": sorted({str(d.device_kind) for d in jax.devices()}),
  }
  for c in codecs:
    env[f"codec_{c.name}"] = c.version()
  return env


class _Visual:
  """Keeps one image's reconstructions (PNGs in a folder next to the results)."""

  def __init__(self, image_name: str | None, out_path: str):
    self.image = image_name
    stem = os.path.splitext(os.path.abspath(out_path))[0]
    self.final_dir = f"{stem}_visual"
    self.dir = f"{self.final_dir}.tmp-{os.getpid()}"
    self.rel = os.path.basename(self.final_dir)
    self.recon: dict[str, list[str]] = {}
    if image_name:
      os.makedirs(self.dir, exist_ok=True)

  def keeper(self, curve: str, point_index: int):
    def keep(name, decoded):
      if name == self.image:
        fname = f"{curve}_{point_index:02d}.png"
        save_png(os.path.join(self.dir, fname), decoded)
        slots = self.recon.setdefault(curve, [])
        slots.extend([None] * (point_index + 1 - len(slots)))
        slots[point_index] = f"{self.rel}/{fname}"
    return keep

  def finish(self, original) -> dict | None:
    if not self.image:
      return None
    save_png(os.path.join(self.dir, "original.png"), original)
    if os.path.isdir(self.final_dir):
      shutil.rmtree(self.final_dir)
    os.replace(self.dir, self.final_dir)
    return {"image": self.image, "original": f"{self.rel}/original.png",
            "reconstructions": self.recon}

  def abandon(self) -> None:
    if self.image and os.path.isdir(self.dir):
      shutil.rmtree(self.dir, ignore_errors=True)


def run(models, data: str, out: str, codecs=(), qualities=None, name: str = "cca-jax",
        label: str | None = None, limit: int | None = None, image_names=None,
        multiple: int = 128, estimate: bool = True, warmup: bool = True,
        visual: str | None = None, command: str = "", progress: bool = True,
        optimize: int = 0) -> dict:
  """Evaluate and write ``out``; returns the results document."""
  from tqdm import tqdm
  from cca_jax.codec import load_bundle
  from cca_jax.eval.dataset import load_images
  images, notes = load_images(data, limit, image_names)
  if visual and visual not in {n for n, _ in images}:
    raise ValueError(f"--visual {visual}: not among the evaluated images")
  bundles = [(m, load_bundle(m)) for m in learned.expand_models(models)]
  qualities = qualities or {}
  total = len(images) * (len(bundles) + sum(len(qualities.get(c.name, c.qualities))
                                            for c in codecs))
  keeper = _Visual(visual, out)
  curves = []
  try:
    with tqdm(total=total, desc="evaluate", unit="img", file=sys.stderr,
              disable=not progress) as bar:
      if bundles:
        points = []
        for i, (path, b) in enumerate(bundles):
          bar.set_postfix_str(os.path.basename(path))
          keep = keeper.keeper(name, i)
          points.append(learned.evaluate_model(
              b, images, path, multiple, estimate, warmup, bar,
              keep=lambda n, d, keep=keep: keep(n, d), optimize=optimize))
        order = np.argsort([p["summary"]["bpp"] for p in points], kind="stable")
        if visual:
          rec = keeper.recon.get(name, [])
          keeper.recon[name] = [rec[i] if i < len(rec) else None for i in order]
        curves.append({"name": name, "label": label or name, "kind": "model",
                       "settings": {"multiple": multiple, "estimate": estimate,
                                    "warmup": warmup, "optimize": optimize},
                       "points": [points[i] for i in order]})
      for c in codecs:
        bar.set_postfix_str(c.name)
        qs = qualities.get(c.name, c.qualities)
        curves.append(classical.evaluate_codec(
            c, images, qs, bar,
            keep=lambda n, pi, d, c=c: keeper.keeper(c.name, pi)(n, d)))
    vis = keeper.finish(dict(images)[visual]) if visual else None
  except BaseException:
    keeper.abandon()
    raise
  doc = {"format": FORMAT, "version": VERSION,
         "dataset": {"path": data, "name": guess_dataset(data),
                     "images": [n for n, _ in images], "num_images": len(images),
                     "notes": notes},
         "environment": environment(codecs), "command": command, "curves": curves}
  if vis:
    doc["visual"] = vis
  write_json(out, doc)
  return doc


def summary_table(doc: dict) -> str:
  """One line per point: rate, quality, times."""
  lines = [f"{'curve':<10} {'point':<22} {'bpp':>7} {'bpp_est':>7} {'PSNR':>6} "
           f"{'PSNR8':>6} {'MS-SSIM dB':>10} {'enc ms':>8} {'dec ms':>8}"]
  for c in doc["curves"]:
    for p in c["points"]:
      s = p["summary"]
      st = p["setting"]
      label = st.get("model") or f"q={st.get('quality')}"
      est = f"{s['bpp_est']:7.4f}" if "bpp_est" in s else f"{'-':>7}"
      lines.append(
          f"{c['name']:<10} {str(label)[:22]:<22} {s['bpp']:7.4f} {est} "
          f"{s['psnr']:6.2f} {s.get('psnr_8bit', s['psnr']):6.2f} "
          f"{s['ms_ssim_db']:10.3f} {1e3 * s['encode_s']:8.1f} "
          f"{1e3 * s['decode_s']:8.1f}")
  return "\n".join(lines)


@contextlib.contextmanager
def sigterm_as_interrupt():
  """While evaluating, SIGTERM unwinds like Ctrl-C: temporary outputs are removed and
  nothing is left half-written. The previous handler is restored afterwards."""
  import signal
  import threading
  if threading.current_thread() is not threading.main_thread():
    yield
    return

  def handler(signum, frame):
    raise KeyboardInterrupt
  old = signal.signal(signal.SIGTERM, handler)
  try:
    yield
  finally:
    signal.signal(signal.SIGTERM, old)


def _parser():
  import argparse
  p = argparse.ArgumentParser(
      prog="python -m cca_jax.evaluate",
      description="Rate-distortion evaluation of cca-jax model bundles and classical "
                  "codecs on a folder of images (results JSON for cca_jax.report).")
  p.add_argument("--model", action="append", default=[],
                 help="model bundle (.ccam), or a directory of them; repeat: each "
                      "bundle is one point of the curve")
  p.add_argument("--data", required=True, help="folder of images (e.g. Kodak)")
  p.add_argument("--out", required=True, help="results JSON to write")
  p.add_argument("--codecs", default="",
                 help="classical codecs, comma-separated: "
                      f"{', '.join(classical.CODECS)} (aliases "
                      f"{', '.join(classical.ALIASES)}), 'default' "
                      f"({','.join(classical.DEFAULT_CODECS)}) or 'all'")
  p.add_argument("--qualities", action="append", default=[],
                 help="CODEC=Q1,Q2,... quality sweep of one codec (repeat)")
  p.add_argument("--name", default="cca-jax", help="name of the model curve")
  p.add_argument("--label", help="legend label of the model curve (default: --name)")
  p.add_argument("--limit", type=int, help="only the first N images")
  p.add_argument("--images", help="only these images (comma-separated file names)")
  p.add_argument("--pad-multiple", type=int, default=128, choices=(64, 128, 192, 256),
                 help="padding multiple of the learned codec (128 as the paper)")
  p.add_argument("--no-estimate", action="store_true",
                 help="skip the estimated rate (and per-slice bits)")
  p.add_argument("--no-warmup", action="store_true",
                 help="time the first image of each size too (includes compilation)")
  p.add_argument("--visual", metavar="IMAGE",
                 help="keep this image's reconstructions for a visual comparison")
  p.add_argument("--optimize", type=int, default=0, metavar="STEPS",
                 help="the encoder's latent optimisation: STEPS gradient steps per image "
                      "(slow; the decoder is unchanged; default 0: off)")
  p.add_argument("--quiet", action="store_true", help="no progress bar, no table")
  return p


def main(argv=None) -> int:
  from cca_jax.codec.errors import CodecError
  from cca_jax.utils.cli import fail_with
  from cca_jax.utils.image_io import ImageError
  argv = list(sys.argv[1:] if argv is None else argv)
  p = _parser()
  args = p.parse_args(argv)
  if args.limit is not None and args.limit < 1:
    p.error("--limit must be positive")
  if args.optimize < 0:
    p.error("--optimize must be 0 or positive")
  try:
    names = [] if args.codecs.strip().lower() in ("", "none") else (
        list(classical.DEFAULT_CODECS) if args.codecs.strip().lower() == "default"
        else args.codecs)
    codecs = classical.resolve(names) if names else []
    qualities = classical.parse_qualities(args.qualities)
    if not args.model and not codecs:
      p.error("nothing to evaluate: pass --model and/or --codecs")
    unused = sorted(set(qualities) - {c.name for c in codecs})
    if unused:
      raise ValueError(f"--qualities for {unused[0]}, which is not in --codecs")
    if os.path.isdir(args.out):
      raise ValueError(f"{args.out}: is a directory; --out names the results file")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
      raise ValueError(f"{args.out}: {out_dir} is a file")
    os.makedirs(out_dir, exist_ok=True)
    from cca_jax.utils import compilation_cache
    from cca_jax.utils.cli import use_codec_xla_flags
    use_codec_xla_flags()
    compilation_cache.enable()
    command = "python -m cca_jax.evaluate " + " ".join(shlex.quote(a) for a in argv)
    image_names = [n.strip() for n in args.images.split(",")] if args.images else None
    with sigterm_as_interrupt():
      doc = run(args.model, args.data, args.out, codecs, qualities, args.name,
                args.label, args.limit, image_names, args.pad_multiple,
                not args.no_estimate, not args.no_warmup, args.visual, command,
                progress=not args.quiet, optimize=args.optimize)
  except (CodecError, ImageError, ValueError, OSError, KeyboardInterrupt) as e:
    return fail_with(e)
  if not args.quiet:
    print(summary_table(doc))
  print(f"wrote {args.out}", file=sys.stderr)
  return 0
