"""Forward+backward speed of each layer and of the whole training loss, under the
``'plain'`` formulation (one XLA convolution per layer) and the ``'cpu'`` one
(``cca_jax.ops.convolution.formulation``), plus the PyTorch reference's training step and the
parameter initialisation. Prints measured numbers; results go to docs/benchmarks.md.

  .venv/bin/python benchmarks/layer_speed.py layers --config configs/cpu.py
  .venv/bin/python benchmarks/layer_speed.py layers --config configs/paper.py --batch 2 --size 256
  .venv/bin/python benchmarks/layer_speed.py model --config configs/cpu.py --torch
  .venv/bin/python benchmarks/layer_speed.py model --config configs/paper.py --batch 2 --size 256 --torch
  .venv/bin/python benchmarks/layer_speed.py init --config configs/tiny.py [--jit]

Timings interleave the variants (plain, cpu, torch, plain, cpu, torch, ...) so that
load from other processes hits all of them alike; each line gives the minimum and the
median wall time of ``--reps`` calls and, for the model, the process CPU time (user +
system) per call, which other processes on the machine disturb less. Compilation
(the first call) is reported separately. ``--batch`` / ``--size`` default to the
config's ``batch_size`` / ``patch_size``. Prefix a command with
``GLIBC_TUNABLES=glibc.malloc.hugetlb=1`` to measure JAX with transparent huge pages
(fewer page faults on XLA's per-call buffers; docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]


def _cpu_seconds() -> float:
  r = resource.getrusage(resource.RUSAGE_SELF)
  return r.ru_utime + r.ru_stime


def interleaved(calls: dict, reps: int) -> dict:
  """Times each zero-argument callable (which must block until done): the first
  call apart (``first``), then ``reps`` interleaved rounds. Returns name ->
  ``{'first', 'min', 'median', 'cpu'}`` in seconds (``cpu``: median CPU time)."""
  out = {}
  for name, call in calls.items():
    t = time.perf_counter()
    call()
    out[name] = {"first": time.perf_counter() - t, "wall": [], "cpu_t": []}
  for _ in range(reps):
    for name, call in calls.items():
      c, t = _cpu_seconds(), time.perf_counter()
      child_cpu = call()
      out[name]["wall"].append(time.perf_counter() - t)
      # A call that runs in another process returns that process's CPU time.
      cpu_t = child_cpu if isinstance(child_cpu, float) else _cpu_seconds() - c
      out[name]["cpu_t"].append(cpu_t)
  for r in out.values():
    wall, cpu_t = r.pop("wall"), r.pop("cpu_t")
    r.update(min=min(wall), median=float(np.median(wall)), cpu=float(np.median(cpu_t)))
  return out


# ----------------------------------------------------------------------------
# Layers.
# ----------------------------------------------------------------------------


def layer_cases(model_cfg, batch: int, size: int) -> list:
  """``(name, fn, input shapes)`` of the model's layer kinds at training shapes;
  ``fn`` takes arrays of those shapes and calls the functions of cca_jax.ops."""
  from cca_jax.ops import activations, convolution
  d0, d1, d2 = model_cfg.ae_dim
  m, n, hyper = model_cfg.M, model_cfg.N, model_cfg.hyper_dim
  s2, s4, s8, s16, s64 = (size // f for f in (2, 4, 8, 16, 64))
  b = batch
  conv = lambda s: (lambda x, w: convolution.conv2d(x, w, None, s))
  deconv = lambda s: (lambda x, w: convolution.conv_transpose2d(x, w, None, s))
  ctx = m + m // 2  # a typical context width of the entropy model's slices
  cases = [
      (f"conv5x5 s2 {3}->{d0} @{size}", conv(2), [(b, size, size, 3), (5, 5, 3, d0)]),
      (f"conv5x5 s2 {d0}->{d1} @{s2}", conv(2), [(b, s2, s2, d0), (5, 5, d0, d1)]),
      (f"conv5x5 s2 {d1}->{d2} @{s4}", conv(2), [(b, s4, s4, d1), (5, 5, d1, d2)]),
      (f"conv5x5 s2 {d2}->{m} @{s8}", conv(2), [(b, s8, s8, d2), (5, 5, d2, m)]),
      (f"conv5x5 s2 {hyper}->{hyper} @{s16}", conv(2),
       [(b, s16, s16, hyper), (5, 5, hyper, hyper)]),
      (f"deconv5x5 s2 {n}->{hyper} @{s64}", deconv(2),
       [(b, s64, s64, n), (5, 5, n, hyper)]),
      (f"deconv5x5 s2 {m}->{d2} @{s16}", deconv(2), [(b, s16, s16, m), (5, 5, m, d2)]),
      (f"deconv5x5 s2 {d2}->{d1} @{s8}", deconv(2), [(b, s8, s8, d2), (5, 5, d2, d1)]),
      (f"deconv5x5 s2 {d1}->{d0} @{s4}", deconv(2), [(b, s4, s4, d1), (5, 5, d1, d0)]),
      (f"deconv5x5 s2 {d0}->3 @{s2}", deconv(2), [(b, s2, s2, d0), (5, 5, d0, 3)]),
      (f"deconv3x3 s1 {hyper}->{m} @{s16}", deconv(1),
       [(b, s16, s16, hyper), (3, 3, hyper, m)]),
      (f"conv3x3 {d0 // 2}->{d0 // 2} @{s2} (RBB)", conv(1),
       [(b, s2, s2, d0 // 2), (3, 3, d0 // 2, d0 // 2)]),
      (f"conv3x3 {ctx}->{model_cfg.cc_dims[0]} @{s16} (cc head)", conv(1),
       [(b, s16, s16, ctx), (3, 3, ctx, model_cfg.cc_dims[0])]),
      (f"conv1x1 {d0}->{2 * d0} @{s2}", conv(1), [(b, s2, s2, d0), (1, 1, d0, 2 * d0)]),
      (f"depthwise3x3 {2 * d0} @{s2}", convolution.depthwise_conv2d,
       [(b, s2, s2, 2 * d0), (3, 3, 1, 2 * d0)]),
      (f"LayerNorm2d {d0} @{s2}", lambda x, w, c: activations.layer_norm_2d(x, w, c),
       [(b, s2, s2, d0), (d0,), (d0,)]),
      (f"SimpleGate {2 * d0} @{s2}", activations.simple_gate, [(b, s2, s2, 2 * d0)]),
      (f"GELU {hyper} @{s16}", activations.gelu, [(b, s16, s16, hyper)]),
  ]
  return cases


def naf_block_case(model_cfg, batch: int, size: int):
  """A whole NAF block of the first stage (d0 channels at half resolution)."""
  import jax
  import jax.numpy as jnp
  from cca_jax.model import layers
  d0, s2 = model_cfg.ae_dim[0], size // 2
  block = layers.NAFBlock()
  x = jnp.zeros((batch, s2, s2, d0))
  params = block.init(jax.random.key(0), x)["params"]
  # Non-zero beta/gamma so that both branches carry gradient.
  params = jax.tree_util.tree_map(lambda p: p + 0.1, params)
  return f"NAFBlock {d0} @{s2}", block, params, x


def run_layers(args, cfg) -> None:
  import jax
  import jax.numpy as jnp
  from cca_jax.ops import convolution
  rng = np.random.default_rng(0)
  rand = lambda shape: jnp.asarray(rng.normal(size=shape).astype(np.float32) * 0.1)
  print(f"{'layer (fwd+bwd)':40s} {'plain min/med ms':>18s} {'cpu min/med ms':>18s} "
        f"{'speed-up':>8s}  compile plain/cpu s")
  for name, fn, shapes in layer_cases(cfg.model, args.batch, args.size):
    inputs = [rand(s) for s in shapes]
    ct = rand(jax.eval_shape(fn, *inputs).shape)
    grad = lambda *a: jnp.vdot(fn(*a), ct)
    calls, compile_s = {}, {}
    for form in convolution.FORMULATIONS:
      with convolution.use_formulation(form):  # read when tracing: compile inside the block
        f, compile_s[form] = _compiled(
            jax.grad(grad, argnums=tuple(range(len(inputs)))), *inputs)
      calls[form] = (lambda f=f: jax.block_until_ready(f(*inputs)))
    _print_pair(name, interleaved(calls, args.reps), compile_s)
  name, block, params, x = naf_block_case(cfg.model, args.batch, args.size)
  x = rand(x.shape)
  ct = rand(x.shape)
  calls, compile_s = {}, {}
  for form in convolution.FORMULATIONS:
    with convolution.use_formulation(form):
      f, compile_s[form] = _compiled(
          jax.grad(lambda p, x: jnp.vdot(block.apply({"params": p}, x), ct),
                   argnums=(0, 1)), params, x)
    calls[form] = (lambda f=f: jax.block_until_ready(f(params, x)))
  _print_pair(name, interleaved(calls, args.reps), compile_s)


def _compiled(fn, *args):
  """``(jax.jit(fn) compiled for args, seconds)``: compiled now, because the
  formulation is read while tracing."""
  import jax
  t = time.perf_counter()
  compiled = jax.jit(fn).lower(*args).compile()
  return compiled, time.perf_counter() - t


def _print_pair(name, r, compile_s) -> None:
  p, c = r["plain"], r["cpu"]
  print(f"{name:40s} {p['min'] * 1e3:8.1f}/{p['median'] * 1e3:8.1f} "
        f"{c['min'] * 1e3:8.1f}/{c['median'] * 1e3:8.1f} {p['min'] / c['min']:7.1f}x  "
        f"{compile_s['plain']:.1f}/{compile_s['cpu']:.1f}", flush=True)


# ----------------------------------------------------------------------------
# Whole model.
# ----------------------------------------------------------------------------


def torch_step(cfg, batch: int, size: int, threads: int):
  """The PyTorch reference's training step (forward, loss, backward) as a callable."""
  import torch
  import torch_reference as tr
  torch.set_num_threads(threads)
  net = tr.CCARef.from_config(cfg.model)
  net.train()
  x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0))

  def step():
    net.zero_grad(set_to_none=True)
    out = net(x, training=True)
    tr.rd_loss(out, x, beta=float(cfg.lmbda))["loss"].backward()

  return step


def _torch_worker(conn, config: str, batch: int, size: int, threads: int) -> None:
  """Runs ``torch_step`` whenever asked; answers with its CPU time."""
  from cca_jax.config import load_config_file
  step = torch_step(load_config_file(config), batch, size, threads)
  conn.send("ready")
  while conn.recv():
    c = _cpu_seconds()
    step()
    conn.send(_cpu_seconds() - c)


class TorchProcess:
  """The PyTorch step in a child process, so that its thread pool and JAX's never
  share a process (in one process, torch's step ran 2-3x slower after XLA's)."""

  def __init__(self, config: str, batch: int, size: int, threads: int):
    import multiprocessing as mp
    ctx = mp.get_context("spawn")
    self.conn, child = ctx.Pipe()
    self.proc = ctx.Process(target=_torch_worker,
                            args=(child, config, batch, size, threads), daemon=True)
    self.proc.start()
    assert self.conn.recv() == "ready"

  def __call__(self) -> float:
    self.conn.send(True)
    return self.conn.recv()

  def close(self) -> None:
    self.conn.send(False)
    self.proc.join()


def run_model(args, cfg) -> None:
  import jax
  from cca_jax.model.cca import CCAModel, init_params
  from cca_jax.model.losses import rd_loss
  from cca_jax.ops import convolution
  model = CCAModel.from_config(cfg.model)
  t = time.perf_counter()
  params = init_params(model, seed=0)
  print(f"init_params: {time.perf_counter() - t:.1f} s")
  x = jax.random.uniform(jax.random.key(1), (args.batch, args.size, args.size, 3))
  key = jax.random.key(2)

  def loss(p, x, k):
    out = model.apply({"params": p}, x, training=True, rngs={"noise": k})
    return rd_loss(out, x, lmbda=float(cfg.lmbda))["loss"]

  calls = {}
  for form in args.formulations.split(","):
    with convolution.use_formulation(form):
      step, seconds = _compiled(jax.grad(loss), params, x, key)
    temp = step.memory_analysis().temp_size_in_bytes / 2**30
    print(f"{form}: compile {seconds:.1f} s, XLA temp buffer {temp:.1f} GiB", flush=True)
    calls[form] = (lambda step=step: jax.block_until_ready(step(params, x, key)))
  worker = None
  if args.torch:
    worker = TorchProcess(args.config, args.batch, args.size, args.threads)
    calls["torch"] = worker
  r = interleaved(calls, args.reps)
  if worker is not None:
    worker.close()
  print(f"training loss fwd+bwd, {args.config} batch {args.batch} @{args.size} "
        f"({args.reps} interleaved reps)")
  for name, v in r.items():
    extra = f", torch {args.threads} threads" if name == "torch" else ""
    print(f"  {name:6s} wall min {v['min']:.2f} s, median {v['median']:.2f} s; "
          f"CPU time median {v['cpu']:.2f} s; first call {v['first']:.1f} s{extra}",
          flush=True)


# ----------------------------------------------------------------------------
# Initialisation.
# ----------------------------------------------------------------------------


def run_init(args, cfg) -> None:
  """``init_params`` (eager, rbg) twice in one process; with ``--jit`` also
  ``jax.jit(model.init)`` with an rbg key (trace+lower, compile, run)."""
  import jax
  import jax.numpy as jnp
  from cca_jax.model.cca import CCAModel, init_params
  model = CCAModel.from_config(cfg.model)
  for attempt in range(2):
    t = time.perf_counter()
    jax.block_until_ready(init_params(model, seed=attempt))
    print(f"init_params, eager (call {attempt + 1}): {time.perf_counter() - t:.1f} s",
          flush=True)
  if args.jit:
    x = jnp.zeros((1, 64, 64, 3), jnp.float32)

    def init(key):
      k1, k2 = jax.random.split(key)
      return model.init({"params": k1, "noise": k2}, x, training=False)["params"]

    key = jax.random.key(0, impl="rbg")
    t0 = time.perf_counter()
    lowered = jax.jit(init).lower(key)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    jax.block_until_ready(compiled(key))
    print(f"jax.jit(model.init), rbg key: trace+lower {t1 - t0:.1f} s, compile "
          f"{t2 - t1:.1f} s, run {time.perf_counter() - t2:.2f} s", flush=True)


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("part", choices=("layers", "model", "init"))
  p.add_argument("--config", default=os.path.join(ROOT, "configs", "cpu.py"))
  p.add_argument("--batch", type=int)
  p.add_argument("--size", type=int)
  p.add_argument("--reps", type=int, default=5)
  p.add_argument("--formulations", default="plain,cpu",
                 help="model part: which formulations to time (comma-separated)")
  p.add_argument("--torch", action="store_true",
                 help="model part: also time the PyTorch reference's training step")
  p.add_argument("--threads", type=int, default=2, help="torch threads")
  p.add_argument("--jit", action="store_true",
                 help="init part: also time jax.jit(model.init) (minutes to compile)")
  args = p.parse_args(argv)
  from cca_jax.config import load_config_file
  from cca_jax.utils.cli import fail
  try:
    cfg = load_config_file(args.config)
  except ValueError as e:
    sys.exit(fail(e))
  if args.formulations not in ("plain,cpu", "cpu,plain", "cpu", "plain"):
    sys.exit(fail(f"--formulations {args.formulations!r}: use plain, cpu or plain,cpu"))
  args.batch = args.batch or cfg.batch_size
  args.size = args.size or cfg.patch_size
  {"layers": run_layers, "model": run_model, "init": run_init}[args.part](args, cfg)


if __name__ == "__main__":
  main()
