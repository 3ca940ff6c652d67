"""Learning curves of training runs from their TensorBoard event files: training
PSNR and bpp (means over each logging interval) and the validation points, one colour
per workdir; a fine-tuned run (``init_from``) is drawn after its source's last step.

  .venv/bin/python benchmarks/plot_training.py workdirs/ship_1.8 workdirs/ship_0.3 \\
      workdirs/ship_7 workdirs/ship_15 workdirs/ship_40 workdirs/ship_150 \\
      --out docs/figures/training_shipped.png
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys


def read_scalars(workdir: str) -> dict[str, list[tuple[int, float]]]:
  """``{tag: [(step, value), ...]}`` over every event file of the run (a resumed run
  writes several; the latest value of a step wins)."""
  import tensorflow as tf
  values: dict[str, dict[int, float]] = {}
  for path in sorted(glob.glob(os.path.join(workdir, "tensorboard", "events.*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for v in event.summary.value:
        if v.HasField("tensor"):
          value = float(tf.make_ndarray(v.tensor))
        elif v.HasField("simple_value"):
          value = float(v.simple_value)
        else:
          continue
        values.setdefault(v.tag, {})[int(event.step)] = value
  return {tag: sorted(d.items()) for tag, d in values.items()}


def _offset(workdir: str, last_steps: dict[str, int]) -> int:
  try:
    with open(os.path.join(workdir, "config.json")) as f:
      source = json.load(f).get("init_from") or ""
  except (OSError, ValueError):
    return 0
  return last_steps.get(os.path.abspath(source), 0) if source else 0


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("workdirs", nargs="+")
  p.add_argument("--out", required=True, help="PNG")
  args = p.parse_args()
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
  last_steps: dict[str, int] = {}
  for i, wd in enumerate(args.workdirs):
    s = read_scalars(wd)
    off = _offset(wd, last_steps)
    with open(os.path.join(wd, "config.json")) as f:
      config = json.load(f)
    color = f"C{i}"
    label = (f"{os.path.basename(wd.rstrip('/'))} (lambda {config.get('lmbda')}, batch "
             f"{config.get('batch_size')} of {config.get('patch_size')}^2)")
    for ax, key in zip(axes, ("psnr", "bpp")):
      tr = s.get(f"train/{key}", [])
      ev = s.get(f"eval/{key}", [])
      ax.plot([off + a for a, _ in tr], [b for _, b in tr], color=color, alpha=0.5,
              lw=1, label=f"{label} train")
      if ev:
        ax.plot([off + a for a, _ in ev], [b for _, b in ev], "o-", color=color,
                label=f"{label} validation")
    steps = [a for a, _ in s.get("train/psnr", [])]
    last_steps[os.path.abspath(wd)] = off + (steps[-1] if steps else 0)
  for ax, key in zip(axes, ("PSNR (dB)", "bpp")):
    ax.set_xlabel("step")
    ax.set_ylabel(key)
    ax.grid(alpha=0.3)
  axes[0].set_ylim(bottom=15)
  axes[1].set_ylim(0, 1.5)
  axes[0].legend(fontsize=7)
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  fig.savefig(args.out, dpi=90)
  print(f"wrote {args.out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
