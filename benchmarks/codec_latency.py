"""Codec latency: encode and decode one image, split into transforms / entropy
parameters / coding, compile time separately (results in docs/benchmarks.md).

  .venv/bin/python benchmarks/codec_latency.py                 # paper config, kodim01
  .venv/bin/python benchmarks/codec_latency.py --config configs/tiny.py --repeats 5
  .venv/bin/python benchmarks/codec_latency.py --bundle default --cli   # a shipped model

Random weights (``--weights calibrated``: the seeded initialisation with the latents
and scales rescaled by ``tests.lively_weights.lively_params`` so that every y
symbol is coded with a matching, non-trivial table; ``init``: the initialisation as
it is, where nearly every symbol is 0). The network time does not depend on the
weights; the coding time grows with the number of non-zero symbols.

Stages: transforms = analysis (g_a, h_a) on the encoder, synthesis (g_s) on the
decoder; entropy parameters = h_mean_s / h_scale_s and the per-slice networks
(predict, LRP refine); coding = rounding, scale indexes, constriction, container.
Compile time = first call minus the median of the later calls. As a reference for
the machine's load, the evaluation forward (``estimate_image``: g_a, the entropy
model and g_s in one jit, as ``benchmarks/paper_parity.py`` times it) is timed in the
same process. ``--bundle`` times a model bundle (a file or a name such as
``default``) instead of random weights. ``--cli`` also times the ``cca-jax compress`` /
``decompress`` commands as a user runs them (a new process each: imports, bundle
loading, compilation, the work, file output), twice: with an empty compilation cache
(a user's very first call) and again with the cache it left (every later start).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from cca_jax.utils.memory import retain_freed_memory  # noqa: E402

# As the entry points do (cca_jax/utils/memory.py): first, before any thread
# allocates; CCA_JAX_MALLOC=default measures glibc's defaults.
retain_freed_memory()


def _stages(t: dict, side: str) -> dict:
  transforms = t.get("analysis", 0.0) if side == "encode" else t.get("synthesis", 0.0)
  entropy = t.get("hyper_synthesis", 0.0) + t.get("predict", 0.0) + t.get("refine", 0.0)
  coding = t.get("coding", 0.0) + t.get("output", 0.0)
  return {"transforms": transforms, "entropy parameters": entropy, "coding": coding,
          "total": transforms + entropy + coding}


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--config", default=os.path.join(ROOT, "configs", "paper.py"))
  p.add_argument("--image", default=os.path.join(ROOT, "..", "shared", "data", "kodak",
                                                 "kodim01.png"))
  p.add_argument("--weights", choices=("calibrated", "init"), default="calibrated")
  p.add_argument("--repeats", type=int, default=3)
  p.add_argument("--bundle", help="time this model bundle (file or name, e.g. default) "
                                  "instead of random weights of --config")
  p.add_argument("--cli", action="store_true", help="also time the CLI commands")
  args = p.parse_args(argv)

  import jax
  from cca_jax.codec import decode, encode, load_bundle, make_bundle, save_bundle
  from cca_jax.config import load_config_file
  from tests.lively_weights import calibrated_bundle
  from cca_jax.model.cca import CCAModel, init_params
  from cca_jax.model.inference import inference_params
  from cca_jax.utils.image_io import read_image

  print(f"jax {jax.__version__}, backend {jax.default_backend()}, "
        f"{os.cpu_count()} CPUs visible, affinity {len(os.sched_getaffinity(0))}")
  x, _ = read_image(args.image)
  tmp = tempfile.mkdtemp()
  if args.bundle:
    from cca_jax.codec import read_manifest, registry
    path = args.bundle if os.path.exists(args.bundle) else registry.resolve_name(
        args.bundle)
    if path is None:
      raise SystemExit(f"error: {args.bundle}: no such bundle or model name")
    cfg = read_manifest(path)["model"]
    print(f"bundle {path}")
  else:
    cfg = load_config_file(args.config).model
    t = time.perf_counter()
    if args.weights == "calibrated":
      bundle = calibrated_bundle(cfg, x)
    else:
      params = inference_params(init_params(CCAModel.from_config(cfg), seed=0))
      bundle = make_bundle(cfg, params, {"source": "benchmark"})
    print(f"weights ({args.weights}) and make_bundle (tables + hash): "
          f"{time.perf_counter() - t:.1f} s")
    path = os.path.join(tmp, "model.ccam")
    save_bundle(bundle, path)
  t = time.perf_counter()
  bundle = load_bundle(path)
  print(f"load_bundle (read + verify hash): {time.perf_counter() - t:.2f} s, "
        f"{os.path.getsize(path) / 2**20:.1f} MiB")

  runs = {"encode": [], "decode": []}
  first = {}
  for r in range(args.repeats + 1):
    t = time.perf_counter()
    enc = encode(bundle, x)
    te = time.perf_counter() - t
    t = time.perf_counter()
    dec = decode(bundle, enc.data)
    td = time.perf_counter() - t
    if r == 0:
      first = {"encode": te, "decode": td}
      continue
    runs["encode"].append((te, _stages(enc.timings, "encode")))
    runs["decode"].append((td, _stages(dec.timings, "decode")))
  npix = x.shape[0] * x.shape[1]
  print(f"\n{os.path.basename(args.image)} {x.shape[1]}x{x.shape[0]}: {len(enc.data):,} "
        f"bytes ({8 * len(enc.data) / npix:.3f} bpp)")
  print(f"{'':8} {'wall':>8} {'transforms':>11} {'entropy par.':>13} {'coding':>8} "
        f"{'compile':>8}   (median of {args.repeats}, seconds)")
  for side in ("encode", "decode"):
    wall = statistics.median(w for w, _ in runs[side])
    st = {k: statistics.median(s[k] for _, s in runs[side]) for k in runs[side][0][1]}
    print(f"{side:8} {wall:8.3f} {st['transforms']:11.3f} {st['entropy parameters']:13.3f} "
          f"{st['coding']:8.3f} {first[side] - wall:8.2f}")

  from cca_jax.model.inference import estimate_image
  times = []
  for _ in range(3):
    t = time.perf_counter()
    estimate_image(cfg, bundle.params, x)
    times.append(time.perf_counter() - t)
  print(f"reference: evaluation forward (estimate_image) {statistics.median(times[1:]):.3f} s "
        f"(first call {times[0]:.1f} s)")

  if args.cli:
    exe = os.path.join(ROOT, ".venv", "bin", "cca-jax")
    env = dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"),
               CCA_JAX_CACHE_DIR=os.path.join(tmp, "jax_cache"))
    cca, png = os.path.join(tmp, "a.cca"), os.path.join(tmp, "a.png")
    for cache in ("empty compilation cache", "warm compilation cache"):
      for argv_ in ([exe, "compress", args.image, cca, "--model", path, "--quiet"],
                    [exe, "decompress", cca, png, "--model", path, "--quiet"]):
        t = time.perf_counter()
        subprocess.run(argv_, check=True, env=env)
        print(f"cli {argv_[1]}: {time.perf_counter() - t:.1f} s (new process, {cache})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
