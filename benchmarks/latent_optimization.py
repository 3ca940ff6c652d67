"""How much the encoder's latent optimisation (``cca_jax.codec.latent_optimization``,
``encode(..., optimize=STEPS)``) gains, per setting of steps and learning rate: each
image coded plainly and with each setting, real bitstreams decoded and checked, and
the rate-distortion cost ``J = 0.05 * 255^2 * MSE + lambda * bpp`` (the bundle's
lambda; bpp from the stream's bytes, MSE of the decoded 8-bit image) compared.

  .venv/bin/python benchmarks/latent_optimization.py --quality 2 --quality 6 \\
      --data ../shared/data/train/urban100_half --limit 4 --crop 256 \\
      --settings 30:0.01,30:0.03,30:0.1,100:0.03

Settings are chosen on training images (not Kodak, which stays for the final
report). Prints one row per model and setting: mean change of J, bpp and PSNR over
the images, and the optimisation's seconds per step (compilation excluded: each
setting is compiled on a first image before it is timed).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402


def _settings(text: str) -> list[tuple[int, float]]:
  out = []
  for part in text.split(","):
    steps, lr = part.split(":")
    out.append((int(steps), float(lr)))
  return out


def _centre_crop(image: np.ndarray, size: int | None) -> np.ndarray:
  if not size:
    return image
  h, w = image.shape[:2]
  t, l = max((h - size) // 2, 0), max((w - size) // 2, 0)
  return image[t:t + size, l:l + size]


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--quality", type=int, action="append", default=[],
                 help="shipped model quality (repeatable; default 4)")
  p.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "train",
                                                "urban100_half"))
  p.add_argument("--limit", type=int, default=4)
  p.add_argument("--crop", type=int, default=256, help="centre crop size (0: whole)")
  p.add_argument("--settings", default="30:0.01,30:0.03,30:0.1")
  args = p.parse_args()

  from cca_jax.codec import decode, encode, registry
  from cca_jax.codec.bundle import load_bundle
  from cca_jax.codec.latent_optimization import DEFAULT_LEARNING_RATE, bundle_lambda
  from cca_jax.eval.dataset import load_images
  from cca_jax.eval.metrics import psnr
  from cca_jax.utils import compilation_cache
  from cca_jax.utils.cli import use_codec_xla_flags
  use_codec_xla_flags()
  compilation_cache.enable()

  images, _ = load_images(args.data, args.limit)
  images = [(n, _centre_crop(im, args.crop)) for n, im in images]
  settings = _settings(args.settings)
  print(f"{len(images)} images of {args.data} (crop {args.crop or 'none'}), "
        f"load {os.getloadavg()[0]:.2f}", flush=True)
  print("| quality | lambda | steps | lr | J change | bpp change | PSNR change (dB) "
        "| s/step |")
  print("| --- | --- | --- | --- | --- | --- | --- | --- |")
  for q in args.quality or [4]:
    bundle = load_bundle(registry.by_quality(q).path)
    lam = bundle_lambda(bundle)

    def code(image, steps=0, lr=DEFAULT_LEARNING_RATE):
      t = time.perf_counter()
      enc = encode(bundle, image, optimize=steps, optimize_lr=lr)
      seconds = time.perf_counter() - t
      dec = decode(bundle, enc.data)
      assert np.array_equal(dec.y_hat, enc.y_hat), "round trip not exact"
      bpp = 8 * len(enc.data) / (image.shape[0] * image.shape[1])
      p_db = psnr(image, dec.image)
      j = 0.05 * 255**2 * 10 ** (-p_db / 10) + lam * bpp
      return j, bpp, p_db, enc.timings.get("optimize", seconds)

    base = [code(im) for _, im in images]
    for steps, lr in settings:
      code(images[0][1], steps, lr)  # compile
      rows = [code(im, steps, lr) for _, im in images]
      dj = np.mean([r[0] / b[0] - 1 for r, b in zip(rows, base)]) * 100
      db = np.mean([r[1] / b[1] - 1 for r, b in zip(rows, base)]) * 100
      dp = np.mean([r[2] - b[2] for r, b in zip(rows, base)])
      sps = np.mean([r[3] for r in rows]) / steps
      print(f"| {q} | {lam:g} | {steps} | {lr:g} | {dj:+.1f} % | {db:+.1f} % | "
            f"{dp:+.2f} | {sps:.3f} |", flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
