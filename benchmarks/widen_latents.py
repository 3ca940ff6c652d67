"""Experiment: more latent channels (M) for a trained model, warm-started from it.

The shipped top rates are capped by their transforms (docs/benchmarks.md: g_s(g_a(x))
unquantised reaches only 0.1-0.4 dB more than the coded image, and two NAF blocks per
stage instead of one did not lift that), and M = 96 latents per 16x16x3 pixel block
is the narrowest point of the model. This writes a training workdir at step 0 for the
same config with a larger M, from a bundle:

  * the transform bodies (every g_a / g_s layer but the latent-side convolutions), the
    hyper-latent path and z's entropy bottleneck: the bundle's weights;
  * g_a's last convolution: the bundle's filters for the first M_src latents, fresh
    ones for the added latents; g_s's first and h_a's first convolution take the added
    latents with zero weights, so the reconstruction is the bundle's at step 0;
  * h_mean_s / h_scale_s's last convolution: the bundle's filters for the first M_src
    outputs, fresh ones for the others;
  * the channel-wise entropy model and the auxiliary model: fresh (their slices are
    cut from M, so none of their weights carries over).

Measured (docs/benchmarks.md, "Widening the latents"): quality 7 widened to M = 192
and trained 2500 steps (35 min on 2 CPU cores) codes Kodak at 33.7 dB, 1.0 dB above
the shipped model's transform ceiling; quality 6 widened the same way (2000 steps)
codes Kodak at 32.10 dB / 0.780 bpp, level with the M = 96 curve at that rate, so no
wider family was shipped.

  .venv/bin/python benchmarks/widen_latents.py models/cca-m96-l0.05.ccam \\
      --config configs/shipped.py:0.05 --M 192 --out workdirs/wide_init
  .venv/bin/python -m cca_jax.train --config configs/shipped.py:0.05 --config.model.M=192 \\
      --config.init_from=workdirs/wide_init --workdir workdirs/wide_0.05 --config.alpha=0.2
"""

from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

# The groups taken from the bundle (resized where M enters); the rest start fresh.
KEPT = ("g_a", "g_s", "h_a", "h_mean_s", "h_scale_s", "z_entropy_bottleneck")


def embed(old: np.ndarray, fresh: np.ndarray, zero_new_inputs: bool) -> np.ndarray:
  """``old`` written into the leading corner of ``fresh`` (a larger array of the same
  rank); with ``zero_new_inputs`` a kernel's added input channels (axis 2) are 0."""
  out = np.array(fresh, np.float32)
  out[tuple(slice(0, n) for n in old.shape)] = old
  if zero_new_inputs:
    out[:, :, old.shape[2]:, :] = 0.0
  return out


def widen(params: dict, fresh: dict) -> dict:
  """``params`` (the smaller M) resized to ``fresh``'s shapes, as the docstring says."""
  import jax
  out = dict(fresh)
  for name in KEPT:
    def leaf(path, old, new):
      old, new = np.asarray(old, np.float32), np.asarray(new)
      if old.shape == new.shape:
        return old
      keys = [getattr(k, "key", str(k)) for k in path]
      zero_in = keys[-1] == "kernel" and old.shape[2] != new.shape[2]
      if old.shape[2:3] != new.shape[2:3] and not zero_in or any(
          a > b for a, b in zip(old.shape, new.shape)):
        raise ValueError(f"{name}/{'/'.join(keys)}: cannot embed {old.shape} into "
                         f"{new.shape}")
      return embed(old, new, zero_in)
    out[name] = jax.tree_util.tree_map_with_path(leaf, params[name], fresh[name])
  return out


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("bundle", help="the trained model (a .ccam file or a model name)")
  p.add_argument("--config", required=True, help="its training config (.py[:arg])")
  p.add_argument("--M", type=int, required=True, help="the new number of latents")
  p.add_argument("--out", required=True, help="new training workdir (step 0)")
  p.add_argument("--seed", type=int, default=100, help="for the fresh parts")
  args = p.parse_args()

  from cca_jax.codec.bundle import canonical_config, load_bundle
  from cca_jax.config import load_config_file
  from cca_jax.model.cca import CCAModel, init_params
  from cca_jax.train.checkpointing import start_workdir
  bundle = load_bundle(args.bundle)
  config = load_config_file(args.config)
  if bundle.config != canonical_config(config.model):
    sys.exit(f"error: {args.bundle} is not a model of {args.config}")
  if args.M <= config.model.M:
    sys.exit(f"error: --M {args.M} is not larger than the model's M={config.model.M}")
  config.model.M = args.M
  fresh = init_params(CCAModel.from_config(config.model), seed=args.seed)
  start_workdir(args.out, config, widen(bundle.params, fresh))
  print(f"wrote {args.out}: M {bundle.config['M']} -> {args.M}, step 0; train it with "
        f"--config.model.M={args.M} --config.init_from={args.out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
