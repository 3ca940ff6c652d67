"""XLA:CPU library fusions (YNNPACK, XNNPACK, oneDNN) for the codec: encode and decode
time of one image under each set of XLA_FLAGS, measured side by side (one fresh
process per setting, settings interleaved over rounds), and the stream each setting
writes (results in docs/benchmarks.md).

  .venv/bin/python benchmarks/xla_flags.py [--model default] [--image kodim01.png] \\
      [--rounds 2] [--repeats 5]

Per setting: median encode / decode seconds (after a warm-up call), the transforms'
and entropy parameters' share, the ratio to the baseline (XLA's defaults) and the
sha256 of the stream: with a version 2 bundle (integer entropy parameters) every
setting must write the same bytes, whatever kernels XLA picks for the float
transforms.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

SETTINGS = {
    "baseline": "",
    "ynn conv": "--xla_cpu_experimental_ynn_fusion_type=individual_dot,"
                "individual_convolution",
    "ynn all": "--xla_cpu_experimental_ynn_fusion_type=individual_dot,"
               "individual_convolution,dot,eltwise,reduce",
    "no ynn": "--xla_cpu_experimental_ynn_fusion_type=",
    "xnn graph": "--xla_cpu_experimental_xnn_graph_fusion_mode="
                 "XNN_GRAPH_FUSION_MODE_GREEDY",
    "onednn": "--xla_cpu_use_onednn=true --xla_cpu_experimental_onednn_custom_call=true",
}


def child(args) -> int:
  from cca_jax.codec import decode, encode, load_bundle
  from cca_jax.eval.dataset import load_images
  bundle = load_bundle(args.model)
  (_, x), = load_images(os.path.dirname(args.image),
                        names=[os.path.basename(args.image)])[0]
  enc = encode(bundle, x)
  decode(bundle, enc.data)
  te, td, stages = [], [], []
  for _ in range(args.repeats):
    t = time.perf_counter()
    enc = encode(bundle, x)
    t1 = time.perf_counter()
    dec = decode(bundle, enc.data)
    te.append(t1 - t)
    td.append(time.perf_counter() - t1)
    stages.append({k: enc.timings.get(k, 0) + dec.timings.get(k, 0)
                   for k in set(enc.timings) | set(dec.timings)})
  print(json.dumps({
      "enc": statistics.median(te), "dec": statistics.median(td),
      "transforms": statistics.median(s.get("analysis", 0) + s.get("synthesis", 0)
                                      for s in stages),
      "entropy": statistics.median(s.get("hyper_synthesis", 0) + s.get("predict", 0)
                                   + s.get("refine", 0) for s in stages),
      "stream": hashlib.sha256(enc.data).hexdigest()[:16], "bytes": len(enc.data)}))
  return 0


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--model", default="default")
  p.add_argument("--image", default=os.path.join(ROOT, "..", "shared", "data", "kodak",
                                                 "kodim01.png"))
  p.add_argument("--rounds", type=int, default=2)
  p.add_argument("--repeats", type=int, default=5)
  p.add_argument("--settings", default=",".join(SETTINGS))
  p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  args = p.parse_args()
  if args.child:
    return child(args)
  names = args.settings.split(",")
  runs = {n: [] for n in names}
  for r in range(args.rounds):
    for n in names:
      env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=SETTINGS[n],
                 CCA_JAX_CACHE_DIR="")
      out = subprocess.run([sys.executable, __file__, "--child", "--model", args.model,
                            "--image", args.image, "--repeats", str(args.repeats)],
                           env=env, capture_output=True, text=True)
      if out.returncode:
        print(f"{n}: failed: {out.stderr.strip().splitlines()[-1:]}", flush=True)
        continue
      runs[n].append(json.loads(out.stdout.strip().splitlines()[-1]))
      print(f"round {r + 1} {n}: {runs[n][-1]}", flush=True)
  base = runs["baseline"] and min(x["enc"] + x["dec"] for x in runs["baseline"])
  print(f"\n{os.path.basename(args.image)}, model {args.model}, {args.repeats} repeats, "
        f"best of {args.rounds} rounds")
  print(f"{'setting':<10} {'enc s':>7} {'dec s':>7} {'transforms':>10} {'entropy':>8} "
        f"{'vs base':>8}  stream")
  for n in names:
    if not runs[n]:
      continue
    best = min(runs[n], key=lambda x: x["enc"] + x["dec"])
    ratio = (best["enc"] + best["dec"]) / base if base else float("nan")
    streams = sorted({x["stream"] for x in runs[n]})
    print(f"{n:<10} {best['enc']:7.3f} {best['dec']:7.3f} {best['transforms']:10.3f} "
          f"{best['entropy']:8.3f} {ratio:8.2f}  {','.join(streams)}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
