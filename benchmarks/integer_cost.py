"""What the integer entropy parameters cost (bundle version 2 against the float path of
version 1, on the same weights and coding tables): real bytes, PSNR and codec time on
Kodak (results in docs/benchmarks.md).

  .venv/bin/python benchmarks/integer_cost.py [MODEL ...] [--data DIR] [--limit N]
  .venv/bin/python benchmarks/integer_cost.py --config configs/paper.py --limit 1

``MODEL``: bundle files or names (default: every shipped quality); ``--config``: the
seeded initialisation of a config with calibrated latents and scales
(``tests.lively_weights``, as benchmarks/codec_latency.py), for speed only (its rates
mean nothing). Each image is
compressed and decompressed with both bundles, interleaved (round trips checked); the
table gives total bytes (integer / float - 1), mean PSNR of the 8-bit output and the
median encode / decode time of each path.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402


def _random_bundle(config: str, image):
  from cca_jax.config import load_config_file
  from tests.lively_weights import calibrated_bundle
  return calibrated_bundle(load_config_file(config).model,
                           np.asarray(image, np.float32) / 255.0)


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("models", nargs="*")
  p.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "kodak"))
  p.add_argument("--limit", type=int)
  p.add_argument("--config", help="random calibrated weights of this config instead")
  args = p.parse_args()

  from cca_jax.codec import decode, encode, load_bundle, registry
  from cca_jax.eval.dataset import load_images
  from cca_jax.eval.metrics import psnr
  images, _ = load_images(args.data, args.limit)
  models = args.models or [e.path for e in registry.shipped_models()]
  if args.config:
    models = [_random_bundle(args.config, images[0][1])]
  print(f"{len(images)} images of {args.data}")
  print(f"{'model':<16} {'bytes float':>11} {'bytes int':>10} {'rate':>8} "
        f"{'PSNR float':>10} {'PSNR int':>9} {'dPSNR':>7} {'enc ms f/i':>12} "
        f"{'dec ms f/i':>12}")
  for spec in models:
    loaded = spec if not isinstance(spec, str) else load_bundle(spec)
    bundles = {"float": loaded.with_version(1), "integer": loaded.with_version(2)}
    total = {k: 0 for k in bundles}
    psnrs = {k: [] for k in bundles}
    times = {k: ([], []) for k in bundles}
    for b in bundles.values():  # compile outside the timings
      decode(b, encode(b, images[0][1]).data)
    for name, x in images:
      for k, b in bundles.items():
        t = time.perf_counter()
        enc = encode(b, x)
        t1 = time.perf_counter()
        dec = decode(b, enc.data)
        t2 = time.perf_counter()
        if not (np.array_equal(enc.y_hat, dec.y_hat)
                and np.array_equal(enc.z_hat, dec.z_hat)):
          raise SystemExit(f"{spec} {k} {name}: round trip not exact")
        total[k] += len(enc.data)
        psnrs[k].append(psnr(x, dec.image))
        times[k][0].append(t1 - t)
        times[k][1].append(t2 - t1)
    a, b = total["float"], total["integer"]
    pa, pb = float(np.mean(psnrs["float"])), float(np.mean(psnrs["integer"]))
    ms = {k: [1e3 * float(np.median(v)) for v in times[k]] for k in bundles}
    name = (os.path.splitext(os.path.basename(loaded.path))[0] if loaded.path
            else os.path.basename(args.config))
    print(f"{name:<16} {a:>11,} "
          f"{b:>10,} {100 * (b / a - 1):>+7.3f}% {pa:10.3f} {pb:9.3f} {pb - pa:>+7.3f} "
          f"{ms['float'][0]:>5.0f}/{ms['integer'][0]:<5.0f} "
          f"{ms['float'][1]:>5.0f}/{ms['integer'][1]:<5.0f}", flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
