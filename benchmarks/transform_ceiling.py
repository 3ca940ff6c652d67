"""Where a trained model loses quality: the transforms or the quantisation. For each
bundle, the mean PSNR over the images of

  * ``g_s(g_a(x))``: the analysis and synthesis transforms alone, y not quantised
    (the ceiling that no rate can pass),
  * the evaluation forward (y rounded around the entropy model's means, as coded),

with the estimated bpp (results in docs/benchmarks.md).

  .venv/bin/python benchmarks/transform_ceiling.py models [--data DIR] [--limit N]
  .venv/bin/python benchmarks/transform_ceiling.py models/cca-m96-l0.05.ccam

A model whose two PSNRs are close is limited by its transforms (capacity or
training), not by its rate: a lower lambda alone will not lift it.
"""

from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("models", nargs="+", help="bundle files or directories of bundles")
  p.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "kodak"))
  p.add_argument("--limit", type=int)
  args = p.parse_args()

  import jax
  import jax.numpy as jnp
  from cca_jax.codec.bundle import bundle_files, load_bundle
  from cca_jax.eval.dataset import load_images
  from cca_jax.eval.metrics import psnr
  from cca_jax.model.cca import CCAModel
  from cca_jax.model.inference import estimate_image
  from cca_jax.ops.padding import crop, pad_centered

  paths = [f for m in args.models
           for f in (bundle_files(m) if os.path.isdir(m) else [m])]
  images, _ = load_images(args.data, args.limit)
  print(f"{len(images)} images of {args.data}")
  print(f"{'model':<28} {'bpp est':>8} {'PSNR coded':>11} {'PSNR no quant':>14} "
        f"{'gap dB':>7}")
  for path in paths:
    bundle = load_bundle(path)
    model = CCAModel.from_config(bundle.config, aux_model=False)

    @jax.jit
    def autoencode(params, x, model=model):
      def fn(m, x):
        return jnp.clip(m.g_s(m.g_a(x)), 0.0, 1.0)
      return model.apply({"params": params}, x, method=fn)

    bpp, coded, ceiling = [], [], []
    for _, x8 in images:
      x = x8.astype(np.float32) / 255.0
      est = estimate_image(bundle.config, bundle.params, x)
      xp, padding = pad_centered(x[None], 128)
      x_ae = crop(np.asarray(autoencode(bundle.params, jnp.asarray(xp))), padding)[0]
      bpp.append(est["bpp_est"])
      coded.append(est["psnr"])
      ceiling.append(psnr(x, x_ae))
    c, a = float(np.mean(coded)), float(np.mean(ceiling))
    print(f"{os.path.basename(path):<28} {np.mean(bpp):8.4f} {c:11.2f} {a:14.2f} "
          f"{a - c:7.2f}", flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
