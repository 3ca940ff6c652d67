"""Does ``cca_jax.train`` learn as the official trainer does? Learning curves of the
JAX training step and of the PyTorch reference trainer (tests/torch_reference.py, the
official train.py iteration: Adam with gradient clipping, the quantile optimizer,
uniform noise), on the same scaled config, the same training batches and batch size,
two seeds each (results and plot in docs/benchmarks.md).

  .venv/bin/python benchmarks/learning_curves.py [--steps 2000] [--seeds 0,1] \\
      [--config configs/tiny.py] [--batch 8] [--patch 64] [--lr 5e-4] [--lmbda 1.8] \\
      [--out out/learning_curves]

Every run sees the same batches (``cca_jax.train.input_pipeline.train_batches``:
random crops of ../shared/data/train, fixed order); a seed sets the initialisation
(each framework its own: cca-jax's PyTorch-distributed init, PyTorch's defaults) and
the noise. Constant learning rate, one lambda (no schedule: nothing differs but the
implementations). Loss, PSNR (from the batch MSE), bpp (y + z) and z's bpp alone
are averaged over windows of ``--window`` steps. The verdict per window and metric:
the gap between the frameworks' seed means against the seed-to-seed spread (the
larger of the two frameworks' |seed a - seed b|); printed as a table, written as JSON
and a PNG.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests"), os.path.join(ROOT, "benchmarks")]

import numpy as np  # noqa: E402

METRICS = ("loss", "psnr", "bpp", "bpp_z")


def _psnr(mse: float) -> float:
  return 10 * math.log10(1.0 / max(mse, 1e-12))


def run_jax(config, batches, seed: int, log):
  import jax
  from cca_jax.model.cca import CCAModel
  from cca_jax.train import partitioning
  from cca_jax.train.state import create_train_state
  from cca_jax.train.step import make_train_step
  config = config.copy_and_resolve_references()
  config.seed = seed
  mesh = partitioning.make_mesh()
  model = CCAModel.from_config(config.model)
  state = partitioning.replicate(create_train_state(config, model), mesh)
  step = partitioning.jit_train_step(make_train_step(config, model), mesh)
  rows = []
  t = time.perf_counter()
  for i, x in enumerate(batches):
    state, m = step(state, partitioning.global_batch(x, mesh))
    m = jax.device_get(m)
    rows.append((float(m["loss"]), _psnr(float(m["mse"])), float(m["bpp"]),
                 float(m["bpp_z"])))
    log(i, rows, t)
  return np.asarray(rows)


def run_torch(config, batches, seed: int, log, threads: int):
  import torch
  from train_throughput import make_torch_step
  step = make_torch_step(config, seed, threads)
  rows = []
  t = time.perf_counter()
  for i, x in enumerate(batches):
    terms = step(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))))
    rows.append((terms["loss"], _psnr(terms["mse_loss"]), terms["bpp_loss"],
                 terms["bpp_z"]))
    log(i, rows, t)
  return np.asarray(rows)


def _config(args):
  from cca_jax.config import load_config_file
  config = load_config_file(args.config)
  config.batch_size, config.patch_size = args.batch, args.patch
  config.learning_rate, config.lmbda = args.lr, args.lmbda
  config.lr_schedule, config.milestone_step = "step", 10 * args.steps
  config.two_stage_lambda = False
  config.num_steps = args.steps
  config.data.train_dir = os.path.join(ROOT, "..", "shared", "data", "train")
  return config


def torch_child(args) -> int:
  """The PyTorch runs, in a process without TensorFlow (the two crash together):
  batches from the parent as uint8, curves back as JSON on stdout."""
  u8 = np.load(args.torch_child, mmap_mode="r")
  batches = (np.asarray(b, np.float32) / np.float32(255.0) for b in u8)
  config = _config(args)
  out = {}
  for seed in [int(s) for s in args.seeds.split(",")]:
    def log(i, rows, t0, seed=seed):
      if (i + 1) % args.window == 0:
        r = np.asarray(rows[-args.window:]).mean(0)
        print(f"torch    seed {seed} step {i + 1:>5}: loss {r[0]:8.4f} psnr "
              f"{r[1]:6.2f} bpp {r[2]:.4f} (z {r[3]:.4f})  "
              f"({time.perf_counter() - t0:.0f} s)",
              file=sys.stderr, flush=True)
    batches = (np.asarray(b, np.float32) / np.float32(255.0) for b in u8)
    out[seed] = run_torch(config, batches, seed, log, args.threads).tolist()
  print(json.dumps(out))
  return 0


def windows(rows: np.ndarray, size: int) -> np.ndarray:
  n = len(rows) // size
  return rows[:n * size].reshape(n, size, -1).mean(axis=1)


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--config", default=os.path.join(ROOT, "configs", "tiny.py"))
  p.add_argument("--steps", type=int, default=2000)
  p.add_argument("--seeds", default="0,1")
  p.add_argument("--batch", type=int, default=8)
  p.add_argument("--patch", type=int, default=64)
  p.add_argument("--lr", type=float, default=5e-4)
  p.add_argument("--lmbda", type=float, default=1.8)
  p.add_argument("--window", type=int, default=100)
  p.add_argument("--threads", type=int, default=2, help="PyTorch threads")
  p.add_argument("--out", default=os.path.join(ROOT, "out", "learning_curves"))
  p.add_argument("--torch-child", help=argparse.SUPPRESS)  # internal: BATCHES.npy
  args = p.parse_args()
  if args.torch_child:
    return torch_child(args)

  from cca_jax.train.input_pipeline import train_batches
  from cca_jax.utils import compilation_cache
  compilation_cache.enable()
  config = _config(args)
  it = train_batches(config)
  batches = [next(it) for _ in range(args.steps)]
  u8 = np.round(np.stack(batches) * 255.0)
  assert np.allclose(u8 / 255.0, np.stack(batches), atol=1e-6), "batches not 8-bit"
  seeds = [int(s) for s in args.seeds.split(",")]
  os.makedirs(args.out, exist_ok=True)
  npy = os.path.join(args.out, "batches.npy")
  np.save(npy, u8.astype(np.uint8))

  curves = {}
  import subprocess
  child = subprocess.run([sys.executable, __file__, "--torch-child", npy]
                         + [a for a in sys.argv[1:]], stdout=subprocess.PIPE,
                         text=True, check=True)
  for seed, rows in json.loads(child.stdout).items():
    curves[("torch", int(seed))] = windows(np.asarray(rows), args.window)
  os.remove(npy)
  for fw in ("cca-jax",):
    for seed in seeds:
      def log(i, rows, t0, fw=fw, seed=seed):
        if (i + 1) % args.window == 0:
          r = np.asarray(rows[-args.window:]).mean(0)
          print(f"{fw:<8} seed {seed} step {i + 1:>5}: loss {r[0]:8.4f} psnr "
                f"{r[1]:6.2f} bpp {r[2]:.4f} (z {r[3]:.4f})  "
              f"({time.perf_counter() - t0:.0f} s)",
                flush=True)
      rows = run_jax(config, batches, seed, log)
      curves[(fw, seed)] = windows(rows, args.window)

  steps = (np.arange(len(curves[("torch", seeds[0])])) + 1) * args.window
  report = {"config": args.config, "batch": args.batch, "patch": args.patch,
            "lr": args.lr, "lmbda": args.lmbda, "steps": args.steps,
            "window": args.window, "seeds": seeds, "step": steps.tolist(),
            "curves": {f"{fw}/{s}": c.tolist() for (fw, s), c in curves.items()}}
  print(f"\nper window of {args.window} steps: |mean cca-jax - mean torch| against the "
        f"seed-to-seed spread (max over frameworks of |seed {seeds[0]} - seed "
        f"{seeds[-1]}|)")
  verdict = {}
  for k, name in enumerate(METRICS):
    mj = np.mean([curves[("cca-jax", s)][:, k] for s in seeds], 0)
    mt = np.mean([curves[("torch", s)][:, k] for s in seeds], 0)
    spread = np.maximum(*[np.abs(curves[(fw, seeds[0])][:, k] - curves[(fw, seeds[-1])][:, k])
                          for fw in ("cca-jax", "torch")])
    gap = np.abs(mj - mt)
    inside = gap <= spread
    verdict[name] = {"gap": gap.tolist(), "spread": spread.tolist(),
                     "within": int(inside.sum()), "windows": int(len(inside))}
    print(f"{name:<5} within the spread in {inside.sum()}/{len(inside)} windows; "
          f"mean gap {gap.mean():.4f}, mean spread {spread.mean():.4f}; last window "
          f"cca-jax {mj[-1]:.4f} torch {mt[-1]:.4f}")
  report["verdict"] = verdict
  with open(os.path.join(args.out, "learning_curves.json"), "w") as f:
    json.dump(report, f, indent=1)

  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, len(METRICS), figsize=(5 * len(METRICS), 4))
  colors = {"cca-jax": "tab:blue", "torch": "tab:orange"}
  for k, (ax, name) in enumerate(zip(axes, METRICS)):
    for (fw, s), c in curves.items():
      ax.plot(steps, c[:, k], color=colors[fw],
              linestyle="-" if s == seeds[0] else "--", label=f"{fw} seed {s}")
    ax.set_xlabel("step")
    ax.set_title(name)
    ax.grid(alpha=0.3)
  axes[0].legend()
  fig.suptitle(f"{os.path.basename(args.config)} batch {args.batch}x{args.patch}^2, "
               f"lr {args.lr:g}, lambda {args.lmbda:g}; means over {args.window} steps")
  fig.tight_layout()
  png = os.path.join(args.out, "learning_curves.png")
  fig.savefig(png, dpi=100)
  print(f"wrote {png} and learning_curves.json")
  return 0


if __name__ == "__main__":
  sys.exit(main())
