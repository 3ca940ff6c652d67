"""Training throughput: the jitted data-parallel training step of ``cca_jax.train``
(optionally next to the same step of the official PyTorch code, through the
independent reference in tests/torch_reference.py).

Prints initialisation and compilation time apart from the steady-state step time.

  .venv/bin/python benchmarks/train_throughput.py --config configs/paper.py \
      --batch 2 --patch 256 --steps 5 --torch
  .venv/bin/python benchmarks/train_throughput.py --config configs/cpu.py --torch
"""

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

from cca_jax.utils.memory import retain_freed_memory  # noqa: E402

# As the entry points do (cca_jax/utils/memory.py): first, before any thread
# allocates; CCA_JAX_MALLOC=default measures glibc's defaults.
retain_freed_memory()

import numpy as np  # noqa: E402


def bench_jax(config, steps, warmup):
  import jax
  from cca_jax.model.cca import CCAModel
  from cca_jax.train import partitioning
  from cca_jax.train.state import create_train_state
  from cca_jax.train.step import make_train_step

  mesh = partitioning.make_mesh()
  model = CCAModel.from_config(config.model)
  t = time.perf_counter()
  state = partitioning.replicate(create_train_state(config, model), mesh)
  jax.block_until_ready(state)
  t_init = time.perf_counter() - t
  rng = np.random.RandomState(0)
  x = partitioning.global_batch(
      rng.rand(config.batch_size, config.patch_size, config.patch_size, 3).astype(
          np.float32), mesh)
  t = time.perf_counter()
  step = partitioning.jit_train_step(make_train_step(config, model), mesh)
  step = step.lower(state, x).compile()
  t_compile = time.perf_counter() - t
  for _ in range(warmup):
    state, m = step(state, x)
  jax.block_until_ready(m)
  times = []
  for _ in range(steps):
    t = time.perf_counter()
    state, m = step(state, x)
    jax.block_until_ready(m)
    times.append(time.perf_counter() - t)
  return {"init_s": t_init, "compile_s": t_compile, "step_s": float(np.median(times)),
          "step_s_all": times, "devices": len(jax.devices()),
          "backend": jax.default_backend(), "loss": float(m["loss"])}


def make_torch_step(config, seed: int = 0, threads: int = 2):
  """The official train.py iteration on the PyTorch reference (tests/torch_reference.py):
  ``step(x NCHW tensor) -> terms`` (loss, mse_loss, bpp_loss, ... as floats). The
  model is initialised as the official code does (PyTorch defaults) under ``seed``."""
  import torch
  import torch_reference as tr
  torch.set_num_threads(threads)
  torch.manual_seed(seed)
  net = tr.CCARef.from_config(config.model)
  main = [p for n, p in net.named_parameters() if not n.endswith("quantiles")]
  quant = [p for n, p in net.named_parameters() if n.endswith("quantiles")]
  opt = torch.optim.Adam(main, lr=config.learning_rate)
  qopt = torch.optim.Adam(quant, lr=config.quantile_learning_rate)

  def step(x):  # the official train.py iteration
    opt.zero_grad()
    qopt.zero_grad()
    out = net(x, training=True)
    terms = tr.rd_loss(out, x, beta=config.lmbda,
                       lmbda=config.get("distortion_weight", 0.05))
    terms["loss"].backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip_norm)
    opt.step()
    q = tr.quantile_loss(net)
    q.backward()
    qopt.step()
    return {k: float(v) for k, v in terms.items()}
  return step


def bench_torch(config, steps, warmup, threads):
  import torch
  step_fn = make_torch_step(config, 0, threads)
  x = torch.rand(config.batch_size, 3, config.patch_size, config.patch_size,
                 generator=torch.Generator().manual_seed(0))

  def step():
    return step_fn(x)["loss"]

  for _ in range(warmup):
    step()
  times = []
  for _ in range(steps):
    t = time.perf_counter()
    step()
    times.append(time.perf_counter() - t)
  return {"step_s": float(np.median(times)), "step_s_all": times, "threads": threads}


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--config", default=os.path.join(ROOT, "configs", "paper.py"))
  p.add_argument("--batch", type=int, help="global batch (default: the config's)")
  p.add_argument("--patch", type=int, help="patch size (default: the config's)")
  p.add_argument("--steps", type=int, default=5, help="timed steps")
  p.add_argument("--warmup", type=int, default=1)
  p.add_argument("--torch", action="store_true", help="also time the PyTorch step")
  p.add_argument("--threads", type=int, default=2, help="PyTorch threads")
  p.add_argument("--json", help="write the results here")
  args = p.parse_args()
  from cca_jax.config import load_config_file
  from cca_jax.utils import compilation_cache
  compilation_cache.enable()
  config = load_config_file(args.config)
  if args.batch:
    config.batch_size = args.batch
  if args.patch:
    config.patch_size = args.patch
  shape = f"batch {config.batch_size} x {config.patch_size}x{config.patch_size}"
  res = {"config": args.config, "batch": config.batch_size, "patch": config.patch_size}
  r = bench_jax(config, args.steps, args.warmup)
  res["jax"] = r
  print(f"jax ({r['backend']}, {r['devices']} device(s)), {shape}: init {r['init_s']:.1f} s, "
        f"compile {r['compile_s']:.1f} s, step {r['step_s']:.3f} s "
        f"({1 / r['step_s']:.2f} steps/s, {config.batch_size / r['step_s']:.1f} img/s)",
        flush=True)
  if args.torch:
    r = bench_torch(config, args.steps, args.warmup, args.threads)
    res["torch"] = r
    print(f"torch ({r['threads']} threads), {shape}: step {r['step_s']:.3f} s "
          f"({1 / r['step_s']:.2f} steps/s, {config.batch_size / r['step_s']:.1f} img/s)")
  if args.json:
    with open(args.json, "w") as f:
      json.dump(res, f, indent=2)


if __name__ == "__main__":
  main()
