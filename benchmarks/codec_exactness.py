"""Exact round trips and real bits against the likelihood estimate on Kodak
(results in docs/benchmarks.md).

  .venv/bin/python benchmarks/codec_exactness.py                  # paper config, 24 images
  .venv/bin/python benchmarks/codec_exactness.py --images 3 --weights init
  .venv/bin/python benchmarks/codec_exactness.py --cross-process  # + thread-count check

For every image: ``encode`` (with the encoder's own reconstruction) and ``decode``
must give identical ``z_hat``, ``y_hat`` and pixels; the payload (z and y parts) and
the whole file are compared with the estimated rate of the evaluation forward
(``cca_jax.model.inference.estimate_image``, sum of -log2 likelihoods) of the same weights.

Weights are random (no trained paper model is available here): ``calibrated``
(default) rescales the seeded initialisation so the latents are spread and the scales
match the residuals (``tests.lively_weights.lively_params(scale_std=0.5,
scale_shift=4)``), the regime where the estimate is a meaningful reference; ``lively``
spreads the scales regardless of the residuals (many escapes: real bits fall *below*
the estimate, whose 1e-9 likelihood floor charges 30 bits per far-off symbol);
``init`` is the initialisation itself (almost every symbol is 0).

``--cross-process`` encodes the first image in a child process pinned to one CPU
(``taskset -c 0``) and decodes it here with every CPU: XLA:CPU's results can depend
on the thread count, and the stream's index checks must turn any divergence that
would change the decoded symbols into a clean error.
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402


def _weights(cfg, kind, calib):
  from tests.lively_weights import lively_params
  from cca_jax.model.cca import CCAModel, init_params
  from cca_jax.model.inference import inference_params
  params = inference_params(init_params(CCAModel.from_config(cfg), seed=0))
  model = CCAModel.from_config(cfg, aux_model=False)
  if kind == "calibrated":
    return lively_params(model, params, calib, scale_std=0.5, scale_shift=4.0)
  if kind == "lively":
    return lively_params(model, params, calib)
  return params


def _child_encode(bundle_path, image, out) -> None:
  from cca_jax.codec import encode, load_bundle
  from cca_jax.utils.image_io import read_image
  x, _ = read_image(image)
  enc = encode(load_bundle(bundle_path), x, reconstruct=True)
  with open(out, "wb") as f:
    f.write(enc.data)
  np.save(out + ".pixels.npy", enc.image)
  np.save(out + ".y_hat.npy", enc.y_hat)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--config", default=os.path.join(ROOT, "configs", "paper.py"))
  p.add_argument("--kodak", default=os.path.join(ROOT, "..", "shared", "data", "kodak"))
  p.add_argument("--images", type=int, default=24)
  p.add_argument("--weights", choices=("calibrated", "lively", "init"),
                 default="calibrated")
  p.add_argument("--cross-process", action="store_true")
  p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  if args.child:
    _child_encode(*args.child)
    return 0

  import jax
  from tqdm import tqdm
  from cca_jax.codec import CodecError, decode, encode, make_bundle, save_bundle
  from cca_jax.config import load_config_file
  from cca_jax.model.inference import estimate_image
  from cca_jax.utils.image_io import read_image

  print(f"jax {jax.__version__}, backend {jax.default_backend()}, "
        f"{len(os.sched_getaffinity(0))} CPUs")
  cfg = load_config_file(args.config).model
  paths = sorted(glob.glob(os.path.join(args.kodak, "kodim*.png")))[:args.images]
  first, _ = read_image(paths[0])
  t = time.perf_counter()
  params = _weights(cfg, args.weights, first[:128, :128])
  bundle = make_bundle(cfg, params, {"source": "benchmark"})
  print(f"{args.weights} random weights and bundle: {time.perf_counter() - t:.1f} s")

  rows, failures = [], 0
  t0 = time.perf_counter()
  for path in tqdm(paths, desc="kodak"):
    x, _ = read_image(path)
    enc = encode(bundle, x, reconstruct=True)
    dec = decode(bundle, enc.data)
    exact = (np.array_equal(dec.z_hat, enc.z_hat) and np.array_equal(dec.y_hat, enc.y_hat)
             and np.array_equal(dec.image, enc.image))
    failures += not exact
    est = estimate_image(cfg, params, x)
    npix = x.shape[0] * x.shape[1]
    payload = 8 * (enc.header.z_length + enc.header.y_length) / npix
    rows.append((os.path.basename(path), exact, est["bpp_est"], payload,
                 8 * len(enc.data) / npix))
  elapsed = time.perf_counter() - t0
  print(f"\n{'image':12} {'exact':>5} {'bpp_est':>9} {'payload':>9} {'file':>9} "
        f"{'payload/est':>11} {'file/est':>9}")
  for name, exact, est, pay, tot in rows:
    print(f"{name:12} {str(exact):>5} {est:9.4f} {pay:9.4f} {tot:9.4f} {pay / est:11.5f} "
          f"{tot / est:9.5f}")
  ratios = np.array([r[3] / r[2] for r in rows])
  file_ratios = np.array([r[4] / r[2] for r in rows])
  print(f"\n{len(rows)} images, {len(rows) - failures} exact; payload/estimate mean "
        f"{ratios.mean():.5f} (min {ratios.min():.5f}, max {ratios.max():.5f}); "
        f"file/estimate mean {file_ratios.mean():.5f} (max {file_ratios.max():.5f}); "
        f"{elapsed:.0f} s")

  if args.cross_process:
    tmp = tempfile.mkdtemp()
    bpath, out = os.path.join(tmp, "m.ccam"), os.path.join(tmp, "s.cca")
    save_bundle(bundle, bpath)
    subprocess.run(["taskset", "-c", "0", sys.executable, os.path.abspath(__file__),
                    "--child", bpath, paths[0], out], check=True)
    data = open(out, "rb").read()
    try:
      dec = decode(bundle, data)
      ref = np.load(out + ".pixels.npy")
      diff = np.abs(dec.image.astype(int) - ref)
      same_y = np.array_equal(dec.y_hat, np.load(out + ".y_hat.npy"))
      print(f"cross-process (encode on 1 CPU, decode on {len(os.sched_getaffinity(0))}): "
            f"decoded; y_hat identical: {same_y}; pixels differing: {np.mean(diff > 0):.2e} "
            f"(max {diff.max()} levels)")
    except CodecError as e:
      print(f"cross-process: refused cleanly: {e}")
  return 1 if failures else 0


if __name__ == "__main__":
  sys.exit(main())
