"""Where the paper-config training step spends its time, cca-jax against the PyTorch
reference (tests/torch_reference.py), part by part, side by side in one run.

  nice .venv/bin/python benchmarks/train_profile.py [--config configs/paper.py]
      [--batch 2 --size 256 --reps 3 --threads 2 --json out/train_profile.json]
      [--parts g_a,h_a,h_s,g_s]   # a subset (the paper config's whole set needs more
                                  # than 24 GB in one process beside PyTorch's)
      [--torch-malloc default]    # PyTorch with glibc's malloc defaults

Parts, each forward + backward (gradients w.r.t. the part's parameters and its
input, a fixed random cotangent), then the whole objective and the whole step:

* ``g_a``, ``h_a``, ``h_s`` (mean and scale), ``g_s``: the transforms;
* ``loss``: the whole training objective, forward and backward (everything above
  plus the channel-wise entropy model, the auxiliary model and the loss terms;
  ``loss - sum(parts)`` is what the entropy models add);
* ``step``: one whole training step (``loss``, clipping, both Adam optimizers):
  ``step - loss`` is the optimizers' share.

JAX runs in this process (the ``cpu`` formulation, XLA's defaults, as training
does), PyTorch in a child process (its thread pool and XLA's never share a process),
both interleaved (one warm-up, ``--reps`` rounds, medians). Both keep freed memory
mapped as the entry points do (``cca_jax.utils.memory``; ``CCA_JAX_MALLOC=default``
gives both glibc's defaults, ``--torch-malloc default`` only PyTorch, as the
official train.py runs). For each JAX part the
compiled program's flop count (XLA's cost analysis) gives its arithmetic rate, next
to this machine's float32 matrix-product rate measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests"), os.path.dirname(__file__)]

from cca_jax.utils.memory import retain_freed_memory  # noqa: E402

# As the entry points do (cca_jax/utils/memory.py): first, before any thread
# allocates; CCA_JAX_MALLOC=default measures glibc's defaults.
retained = retain_freed_memory()

import numpy as np  # noqa: E402

PARTS = ("g_a", "h_a", "h_s", "g_s", "loss", "step")


def _shapes(cfg, batch: int, size: int) -> dict:
  """NHWC input shapes of the parts."""
  m = cfg.model
  return {"g_a": (batch, size, size, 3), "h_a": (batch, size // 16, size // 16, m.M),
          "h_s": (batch, size // 64, size // 64, m.N),
          "g_s": (batch, size // 16, size // 16, m.M)}


# ----------------------------------------------------------------------------
# PyTorch, in a child process.
# ----------------------------------------------------------------------------


def torch_parts(cfg, batch: int, size: int, threads: int, parts=PARTS) -> dict:
  """name -> zero-argument callable running that part forward and backward."""
  import torch
  import torch_reference as tr
  from train_throughput import make_torch_step
  torch.set_num_threads(threads)
  torch.manual_seed(0)
  net = tr.CCARef.from_config(cfg.model)
  net.train()
  gen = torch.Generator().manual_seed(1)
  calls = {}
  modules = {"g_a": [net.g_a], "h_a": [net.h_a], "h_s": [net.h_mean_s, net.h_scale_s],
             "g_s": [net.g_s]}
  for name, shape in _shapes(cfg, batch, size).items():
    if name not in parts:
      continue
    b, h, w, c = shape
    x = torch.rand(b, c, h, w, generator=gen).requires_grad_(True)
    outs = [mod(x) for mod in modules[name]]
    cts = [torch.randn(o.shape, generator=gen) for o in outs]

    def call(mods=modules[name], x=x, cts=cts):
      net.zero_grad(set_to_none=True)
      x.grad = None
      sum(torch.vdot(mod(x).flatten(), ct.flatten()) for mod, ct in zip(mods, cts)
          ).backward()

    calls[name] = call
  img = torch.rand(batch, 3, size, size, generator=gen)

  def loss():
    net.zero_grad(set_to_none=True)
    out = net(img, training=True)
    tr.rd_loss(out, img, beta=float(cfg.lmbda))["loss"].backward()

  if "loss" in parts:
    calls["loss"] = loss
  if "step" in parts:
    step = make_torch_step(cfg, 0, threads)
    calls["step"] = lambda: step(img)
  return calls


def _torch_worker(conn, config: str, batch: int, size: int, threads: int,
                  parts) -> None:
  from cca_jax.config import load_config_file
  calls = torch_parts(load_config_file(config), batch, size, threads, parts)
  conn.send("ready")
  while True:
    name = conn.recv()
    if name is None:
      return
    t = time.perf_counter()
    calls[name]()
    conn.send(time.perf_counter() - t)


class TorchProcess:
  def __init__(self, config: str, batch: int, size: int, threads: int, parts=PARTS):
    import multiprocessing as mp
    ctx = mp.get_context("spawn")
    self.conn, child = ctx.Pipe()
    self.proc = ctx.Process(target=_torch_worker,
                            args=(child, config, batch, size, threads, parts),
                            daemon=True)
    self.proc.start()
    assert self.conn.recv() == "ready"

  def run(self, name: str) -> float:
    self.conn.send(name)
    return self.conn.recv()

  def close(self) -> None:
    self.conn.send(None)
    self.proc.join()


# ----------------------------------------------------------------------------
# JAX, in this process.
# ----------------------------------------------------------------------------


def jax_parts(cfg, batch: int, size: int, parts=PARTS) -> tuple[dict, dict]:
  """``(name -> zero-argument callable that blocks, name -> GFLOP of the program)``."""
  import jax
  import jax.numpy as jnp
  from cca_jax.model.cca import CCAModel
  from cca_jax.model.losses import rd_loss
  from cca_jax.train import partitioning
  from cca_jax.train.state import create_train_state
  from cca_jax.train.step import make_train_step
  model = CCAModel.from_config(cfg.model)
  state = create_train_state(cfg, model)
  params = state.params
  submodules = {"g_a": ("g_a",), "h_a": ("h_a",), "h_s": ("h_mean_s", "h_scale_s"),
                "g_s": ("g_s",)}
  calls, gflop = {}, {}
  key = jax.random.key(1)
  for name, shape in _shapes(cfg, batch, size).items():
    key, k1, k2 = jax.random.split(key, 3)
    if name not in parts:
      continue
    x = jax.random.uniform(k1, shape)
    names = submodules[name]

    def apply(sub, x, names=names):
      def method(m, x):
        return tuple(getattr(m, n)(x) for n in names)
      return model.apply({"params": {**params, **sub}}, x, method=method)

    sub = {n: params[n] for n in names}
    outs = jax.eval_shape(apply, sub, x)
    cts = tuple(jax.random.normal(jax.random.fold_in(k2, i), o.shape)
                for i, o in enumerate(outs))

    def grads(sub, x, cts, apply=apply):
      return jax.grad(lambda s, x: sum(jnp.vdot(o, c) for o, c in
                                       zip(apply(s, x), cts)), argnums=(0, 1))(sub, x)

    compiled = jax.jit(grads).lower(sub, x, cts).compile()
    gflop[name] = _flops(compiled) / 1e9
    calls[name] = (lambda f=compiled, a=(sub, x, cts): jax.block_until_ready(f(*a)))
  img = jax.random.uniform(key, (batch, size, size, 3))

  def loss(p, x, k):
    out = model.apply({"params": p}, x, training=True, rngs={"noise": k})
    return rd_loss(out, x, lmbda=float(cfg.lmbda))["loss"]

  if "loss" in parts:
    compiled = jax.jit(jax.grad(loss)).lower(params, img, key).compile()
    gflop["loss"] = _flops(compiled) / 1e9
    calls["loss"] = (lambda f=compiled: jax.block_until_ready(f(params, img, key)))
  if "step" not in parts:
    return calls, gflop
  mesh = partitioning.make_mesh()
  # A copy: the step donates its state, and the parts above keep using ``params``.
  holder = {"state": partitioning.replicate(
      jax.tree.map(lambda a: jnp.array(a, copy=True), state), mesh)}
  xb = partitioning.global_batch(np.asarray(img), mesh)
  step = partitioning.jit_train_step(make_train_step(cfg, model), mesh)
  step = step.lower(holder["state"], xb).compile()
  gflop["step"] = _flops(step) / 1e9

  def run_step():
    holder["state"], m = step(holder["state"], xb)
    jax.block_until_ready(m)

  calls["step"] = run_step
  return calls, gflop


def _flops(compiled) -> float:
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get("flops", 0.0))


def matmul_rate(n: int = 2048, reps: int = 5) -> float:
  """This machine's float32 matrix-product rate in GFLOP/s (best of ``reps``)."""
  import jax
  import jax.numpy as jnp
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  f = jax.jit(lambda a: a @ a)
  jax.block_until_ready(f(a))
  best = float("inf")
  for _ in range(reps):
    t = time.perf_counter()
    jax.block_until_ready(f(a))
    best = min(best, time.perf_counter() - t)
  return 2 * n ** 3 / best / 1e9


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--config", default=os.path.join(ROOT, "configs", "paper.py"))
  p.add_argument("--batch", type=int, default=2)
  p.add_argument("--size", type=int, default=256)
  p.add_argument("--reps", type=int, default=3)
  p.add_argument("--threads", type=int, default=2, help="PyTorch threads")
  p.add_argument("--json", default="", help="also write the numbers here")
  p.add_argument("--torch-malloc", choices=("same", "default"), default="same",
                 help="PyTorch's malloc setting: the same as JAX's (utils/memory.py), "
                      "or glibc's defaults as the official train.py runs")
  p.add_argument("--parts", default=",".join(PARTS),
                 help=f"comma-separated subset of {','.join(PARTS)}")
  args = p.parse_args(argv)
  parts = tuple(n for n in PARTS if n in args.parts.split(","))
  if not parts or set(args.parts.split(",")) - set(PARTS):
    p.error(f"--parts: choose from {','.join(PARTS)}")
  from cca_jax.config import load_config_file
  cfg = load_config_file(args.config)
  cfg.batch_size, cfg.patch_size = args.batch, args.size
  load = os.getloadavg()[0]
  t = time.perf_counter()
  calls, gflop = jax_parts(cfg, args.batch, args.size, parts)
  print(f"compiled the JAX parts in {time.perf_counter() - t:.0f} s", flush=True)
  if args.torch_malloc == "default":  # read by the child's retain_freed_memory()
    os.environ["CCA_JAX_MALLOC"] = "default"
  torch = TorchProcess(args.config, args.batch, args.size, args.threads, parts)
  times = {(side, n): [] for n in parts for side in ("jax", "torch")}
  for rep in range(args.reps + 1):  # round 0 warms up
    for n in parts:
      t = time.perf_counter()
      calls[n]()
      jt = time.perf_counter() - t
      tt = torch.run(n)
      if rep:
        times[("jax", n)].append(jt)
        times[("torch", n)].append(tt)
  torch.close()
  rate = matmul_rate()
  med = {k: statistics.median(v) for k, v in times.items()}
  torch_retained = retained and args.torch_malloc == "same"
  print(f"\n{args.config} batch {args.batch} of {args.size}x{args.size}, forward + "
        f"backward, medians of {args.reps} interleaved rounds; malloc: JAX "
        f"{'kept mapped' if retained else 'glibc defaults'}, PyTorch "
        f"{'kept mapped' if torch_retained else 'glibc defaults'}; load {load:.2f} at "
        f"start, {os.getloadavg()[0]:.2f} at end; float32 matmul {rate:.0f} GFLOP/s")
  print(f"{'part':6s} {'jax ms':>9s} {'torch ms':>9s} {'ratio':>6s} {'GFLOP':>7s} "
        f"{'jax GFLOP/s':>11s} {'% matmul':>8s}")
  rows = []
  for n in parts:
    j, tt = med[("jax", n)], med[("torch", n)]
    rows.append({"part": n, "jax_s": j, "torch_s": tt, "ratio": j / tt,
                 "gflop": gflop[n], "jax_gflops": gflop[n] / j})
    print(f"{n:6s} {j * 1e3:9.1f} {tt * 1e3:9.1f} {j / tt:6.2f} {gflop[n]:7.1f} "
          f"{gflop[n] / j:11.0f} {100 * gflop[n] / j / rate:7.0f}%")
  if set(PARTS) <= set(parts):  # the derived shares need every part in this run
    tf = [sum(med[(side, n)] for n in PARTS[:4]) for side in ("jax", "torch")]
    for label, a, b in (("entropy models + loss terms (loss - transforms)",
                         med[("jax", "loss")] - tf[0], med[("torch", "loss")] - tf[1]),
                        ("optimizers and clipping (step - loss)",
                         med[("jax", "step")] - med[("jax", "loss")],
                         med[("torch", "step")] - med[("torch", "loss")])):
      print(f"{label}: jax {a * 1e3:.0f} ms, torch {b * 1e3:.0f} ms")
  if args.json:
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
      json.dump({"config": args.config, "batch": args.batch, "size": args.size,
                 "malloc_retained": retained, "torch_malloc": args.torch_malloc,
                 "reps": args.reps, "load_start": load, "matmul_gflops": rate,
                 "rows": rows, "times": {f"{s} {n}": v for (s, n), v in times.items()}},
                f, indent=1)
  return 0


if __name__ == "__main__":
  sys.exit(main())
