"""The CPU speed targets as ratios, both sides measured interleaved in one run.

  nice .venv/bin/python benchmarks/speed_ratios.py                   # all three parts
  .venv/bin/python benchmarks/speed_ratios.py --parts codec --repeats 3

Parts (each in its own process, so each runs under its own XLA setting):

* ``codec``: the paper config (configs/paper.py, random weights as in
  ``codec_latency.py``'s ``calibrated``), compress + decompress of a Kodak image by
  ``cca_jax.codec`` (real streams, integer entropy parameters, the codec's XLA
  setting) against the PyTorch path the official compress / decompress run
  (models/vae.py: g_a, h_a, the hyper-synthesis, the per-slice loop with scale indexes
  and LRP, g_s; tests/torch_reference.py's modules, ``--threads`` threads). The PyTorch
  side leaves out the official rANS coder (about 0.03 s); ours includes constriction.
  Target: at most 0.25x.
* ``train``: one whole training step of the paper config (objective, gradients, both
  optimizers) at batch 2 of 256x256: ``cca_jax.train``'s jitted step (XLA's defaults)
  against the official train.py iteration on the reference. Target: at most 0.67x.
* ``shipped``: encode and decode of the image with the default shipped model. Target:
  under 150 ms each.

Every timed call alternates between the two sides (warm-up calls first); medians.
Both sides of a part share its process, so both keep freed memory mapped as the entry
points do (``cca_jax.utils.memory``), or both run on glibc's defaults with
``CCA_JAX_MALLOC=default`` (docs/benchmarks.md records both).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

from cca_jax.utils.memory import retain_freed_memory  # noqa: E402

# As the entry points do (cca_jax/utils/memory.py): first, before any thread
# allocates; CCA_JAX_MALLOC=default measures glibc's defaults.
retain_freed_memory()

KODIM01 = os.path.join(ROOT, "..", "shared", "data", "kodak", "kodim01.png")


def _timed(fn):
  t = time.perf_counter()
  out = fn()
  return time.perf_counter() - t, out


def _interleave(sides: dict, repeats: int) -> dict:
  """``sides``: name -> zero-argument callable; one warm-up call each, then
  ``repeats`` rounds calling each side in turn. Returns name -> list of seconds."""
  for fn in sides.values():
    fn()
  times = {name: [] for name in sides}
  for _ in range(repeats):
    for name, fn in sides.items():
      times[name].append(_timed(fn)[0])
  return times


def torch_codec(config, threads: int, seed: int = 0):
  """``(compress(x), decompress(stream))`` on the reference modules, as the official
  ``compress`` / ``decompress`` of models/vae.py compute (the symbols and scale
  indexes stand in for the rANS stream)."""
  import torch
  import torch_reference as tr
  torch.set_num_threads(threads)
  net = tr.CCARef.from_config(config.model, cca_training=False)
  tr.randomize_(net, seed)
  net.eval()
  table = torch.exp(torch.linspace(torch.log(torch.tensor(0.11)),
                                   torch.log(torch.tensor(256.0)), 64))

  def build_indexes(scales):  # CompressAI GaussianConditional.build_indexes
    scales = scales.clamp_min(0.11)
    idx = scales.new_full(scales.size(), len(table) - 1).int()
    for s in table[:-1]:
      idx -= (scales <= s).int()
    return idx

  def hyper(z_q):
    med = net.z_entropy_bottleneck._get_medians()
    z_hat = z_q + med
    return net.h_mean_s(z_hat), net.h_scale_s(z_hat)

  def slice_params(i, lm, ls, y_hat):
    ms = net.mean_NAF_transforms[i](torch.cat([lm] + y_hat, 1))
    mu = net.mean_cc_transforms[i](ms)
    ss = net.scale_NAF_transforms[i](torch.cat([ls] + y_hat, 1))
    return ms, mu, build_indexes(net.scale_cc_transforms[i](ss))

  def refine(i, ms, q, mu):
    yh = q + mu
    return yh + 0.5 * torch.tanh(net.lrp_transforms[i](torch.cat([ms, yh], 1)))

  @torch.no_grad()
  def compress(x):
    y = net.g_a(x)
    z = net.h_a(y)
    z_q = torch.round(z - net.z_entropy_bottleneck._get_medians())
    lm, ls = hyper(z_q)
    y_hat, stream = [], []
    for i, ys in enumerate(y.split(net.sizes, 1)):
      ms, mu, idx = slice_params(i, lm, ls, y_hat)
      q = torch.round(ys - mu)
      stream.append((q, idx))
      y_hat.append(refine(i, ms, q, mu))
    return z_q, stream

  @torch.no_grad()
  def decompress(data):
    z_q, stream = data
    lm, ls = hyper(z_q)
    y_hat = []
    for i, (q, _) in enumerate(stream):
      ms, mu, _ = slice_params(i, lm, ls, y_hat)
      y_hat.append(refine(i, ms, q, mu))
    return net.g_s(torch.cat(y_hat, 1)).clamp(0, 1)

  return compress, decompress


def part_codec(args) -> dict:
  from cca_jax.utils.cli import use_codec_xla_flags
  use_codec_xla_flags()
  import torch
  from cca_jax.codec import decode, encode
  from cca_jax.config import load_config_file
  from cca_jax.utils.image_io import read_image
  from lively_weights import calibrated_bundle

  config = load_config_file(os.path.join(ROOT, "configs", "paper.py"))
  image, _ = read_image(args.image)  # float32 in [0, 1]
  bundle = calibrated_bundle(config.model, image)
  compress, decompress = torch_codec(config, args.threads)
  x = torch.from_numpy(image).permute(2, 0, 1)[None]
  if x.shape[2] % 128 or x.shape[3] % 128:
    raise SystemExit("error: the image must be a multiple of 128 per side (Kodak is)")
  t = time.perf_counter()
  data = encode(bundle, image).data
  compile_s = time.perf_counter() - t
  ref = compress(x)
  times = _interleave({
      "torch compress": lambda: compress(x),
      "jax compress": lambda: encode(bundle, image),
      "torch decompress": lambda: decompress(ref),
      "jax decompress": lambda: decode(bundle, data)}, args.repeats)
  med = {k: statistics.median(v) for k, v in times.items()}
  ratio = ((med["jax compress"] + med["jax decompress"])
           / (med["torch compress"] + med["torch decompress"]))
  return {"part": "codec", "times": times, "medians": med, "ratio": ratio,
          "target": 0.25, "jax_first_encode_s": compile_s, "bytes": len(data)}


def part_train(args) -> dict:
  import jax
  import numpy as np
  import torch
  from cca_jax.config import load_config_file
  from cca_jax.model.cca import CCAModel
  from cca_jax.train import partitioning
  from cca_jax.train.state import create_train_state
  from cca_jax.train.step import make_train_step
  from train_throughput import make_torch_step

  config = load_config_file(os.path.join(ROOT, "configs", "paper.py"))
  config.batch_size, config.patch_size = 2, 256
  mesh = partitioning.make_mesh()
  model = CCAModel.from_config(config.model)
  state = partitioning.replicate(create_train_state(config, model), mesh)
  x_np = np.random.RandomState(0).rand(2, 256, 256, 3).astype(np.float32)
  x = partitioning.global_batch(x_np, mesh)
  t = time.perf_counter()
  step = partitioning.jit_train_step(make_train_step(config, model), mesh)
  step = step.lower(state, x).compile()
  compile_s = time.perf_counter() - t
  holder = {"state": state}

  def jax_step():
    holder["state"], m = step(holder["state"], x)
    jax.block_until_ready(m)

  torch_step = make_torch_step(config, 0, args.threads)
  xt = torch.from_numpy(x_np).permute(0, 3, 1, 2).contiguous()
  times = _interleave({"torch step": lambda: torch_step(xt), "jax step": jax_step},
                      args.repeats)
  med = {k: statistics.median(v) for k, v in times.items()}
  return {"part": "train", "times": times, "medians": med,
          "ratio": med["jax step"] / med["torch step"], "target": 0.67,
          "jax_compile_s": compile_s}


def part_shipped(args) -> dict:
  from cca_jax.utils.cli import use_codec_xla_flags
  use_codec_xla_flags()
  from cca_jax.codec import decode, encode, load_bundle
  from cca_jax.utils.image_io import read_image
  bundle = load_bundle("default")
  image, _ = read_image(args.image)
  data = encode(bundle, image).data
  times = _interleave({"encode": lambda: encode(bundle, image),
                       "decode": lambda: decode(bundle, data)}, max(args.repeats, 5))
  med = {k: statistics.median(v) for k, v in times.items()}
  return {"part": "shipped", "model": bundle.describe(), "times": times,
          "medians": med, "target_s": 0.150}


PARTS = {"codec": part_codec, "train": part_train, "shipped": part_shipped}


def report(r: dict) -> str:
  med = r["medians"]
  if r["part"] == "shipped":
    return (f"shipped model ({r['model']}): encode {med['encode'] * 1e3:.0f} ms, decode "
            f"{med['decode'] * 1e3:.0f} ms (target under 150 ms each)")
  sides = ", ".join(f"{k} {v:.2f} s" for k, v in med.items())
  what = ("paper config, compress + decompress" if r["part"] == "codec"
          else "paper config, training step (batch 2 of 256x256)")
  return f"{what}: {sides}; ratio {r['ratio']:.2f}x (target at most {r['target']}x)"


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--parts", default="codec,train,shipped")
  p.add_argument("--image", default=KODIM01)
  p.add_argument("--repeats", type=int, default=2, help="timed rounds per side")
  p.add_argument("--threads", type=int, default=2, help="PyTorch threads")
  p.add_argument("--json", help="write every time here")
  p.add_argument("--one", help=argparse.SUPPRESS)  # run one part in this process
  args = p.parse_args(argv)
  if args.one:
    print("RESULT " + json.dumps(PARTS[args.one](args)), flush=True)
    return 0
  print(f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {os.cpu_count()} CPUs, load "
        f"{os.getloadavg()[0]:.2f}", flush=True)
  results = []
  for part in args.parts.split(","):
    if part not in PARTS:
      raise SystemExit(f"error: unknown part {part!r} (one of {', '.join(PARTS)})")
    out = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--one", part, "--image", args.image,
         "--repeats", str(args.repeats), "--threads", str(args.threads)],
        capture_output=True, text=True, env=dict(os.environ, JAX_PLATFORMS="cpu"))
    lines = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")]
    if out.returncode or not lines:
      print(out.stderr[-3000:], file=sys.stderr)
      raise SystemExit(f"error: part {part} failed")
    r = json.loads(lines[-1][len("RESULT "):])
    results.append(r)
    print(report(r), flush=True)
  if args.json:
    with open(args.json, "w") as f:
      json.dump(results, f, indent=1)
  return 0


if __name__ == "__main__":
  sys.exit(main())
