"""What storing a bundle's weights in float16 costs: real bytes and PSNR of the same
trained weights exported as float32 and as float16, on every Kodak image
(results in docs/benchmarks.md).

  .venv/bin/python benchmarks/float16_cost.py workdirs/ship_1.8 [--data DIR] [--limit N]

Both bundles are made in memory from the workdir's latest checkpoint
(``make_bundle(..., weights_dtype=...)``); each image is compressed and decompressed
with both (round trips checked) and the totals compared: bytes (float16 / float32 - 1)
and the mean PSNR of the 8-bit output.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("workdirs", nargs="+", help="training workdirs")
  p.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "kodak"))
  p.add_argument("--limit", type=int)
  args = p.parse_args()

  from cca_jax.codec import decode, encode, make_bundle
  from cca_jax.eval.dataset import load_images
  from cca_jax.eval.metrics import psnr
  from cca_jax.export import load_source
  images, _ = load_images(args.data, args.limit)
  print(f"{len(images)} images of {args.data}")
  print(f"{'workdir':<22} {'bytes f32':>10} {'bytes f16':>10} {'rate':>8} "
        f"{'PSNR f32':>9} {'PSNR f16':>9} {'dPSNR':>7} {'bundle MB f32/f16':>18}")
  for wd in args.workdirs:
    cfg, params, meta = load_source(wd)
    t = time.perf_counter()
    bundles = {d: make_bundle(cfg, params, meta, weights_dtype=d)
               for d in ("float32", "float16")}
    from cca_jax.codec.bundle import bundle_bytes
    sizes = {d: len(bundle_bytes(b)) / 1e6 for d, b in bundles.items()}
    total = {d: 0 for d in bundles}
    psnrs = {d: [] for d in bundles}
    for name, x in images:
      for d, b in bundles.items():
        enc = encode(b, x)
        dec = decode(b, enc.data)
        if not (np.array_equal(enc.y_hat, dec.y_hat)
                and np.array_equal(enc.z_hat, dec.z_hat)):
          raise SystemExit(f"{wd} {d} {name}: round trip not exact")
        total[d] += len(enc.data)
        psnrs[d].append(psnr(x, dec.image))
    a, b = total["float32"], total["float16"]
    pa, pb = float(np.mean(psnrs["float32"])), float(np.mean(psnrs["float16"]))
    print(f"{os.path.basename(wd.rstrip('/')):<22} {a:>10,} {b:>10,} "
          f"{100 * (b / a - 1):>+7.3f}% {pa:9.3f} {pb:9.3f} {pb - pa:>+7.3f} "
          f"{sizes['float32']:>8.2f} / {sizes['float16']:.2f}   "
          f"({time.perf_counter() - t:.0f} s)", flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
