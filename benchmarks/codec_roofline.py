"""Where the codec's time goes, against what this CPU can do (issue: CPU speed).

  .venv/bin/python benchmarks/codec_roofline.py                     # default model
  .venv/bin/python benchmarks/codec_roofline.py --bundle q6 --image IMG
  .venv/bin/python benchmarks/codec_roofline.py --config configs/paper.py  # paper size

For each compiled program of one encode / decode of a Kodak image with a shipped model
(the codec's XLA setting, ``utils.cli.use_codec_xla_flags``): XLA's cost analysis
(floating-point operations and bytes accessed, as XLA:CPU counts them), the measured
time (median), and the rates they imply. Next to them, the machine's own ceilings
measured in the same process: float32 and float64 matrix products (XLA's dot, the
library kernel the convolutions use too) and memory bandwidth (a fused elementwise
pass over 256 MiB). The *floor* of a program is its flops at the matrix-product rate of
its precision: no formulation of the same arithmetic runs faster on this CPU.
``--config`` times a config's model with random calibrated weights instead
(``tests.lively_weights.calibrated_bundle``, as ``speed_ratios.py`` does for the paper
config): the same programs and flops as a trained model of that size. ``--layers``
adds the same table for each layer of g_a and g_s (strided convolutions, residual
bottleneck and NAF blocks), timed as separate programs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from cca_jax.utils.memory import retain_freed_memory  # noqa: E402

# As the entry points do (cca_jax/utils/memory.py): first, before any thread
# allocates; CCA_JAX_MALLOC=default measures glibc's defaults.
retain_freed_memory()


def _median_time(fn, repeats):
  import jax
  jax.block_until_ready(fn())
  ts = []
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(fn())
    ts.append(time.perf_counter() - t)
  return statistics.median(ts)


def _cost(jitted, *args):
  ca = jitted.lower(*args).compile().cost_analysis()
  ca = ca[0] if isinstance(ca, (list, tuple)) else ca
  return float(ca.get("flops", 0.0)), float(ca.get("bytes accessed", 0.0))


def machine_ceilings(repeats):
  """GFLOP/s of float32 / float64 matrix products and GB/s of a streaming pass."""
  import jax
  import jax.numpy as jnp
  out = {}
  n = 2048
  for dt in (jnp.float32, jnp.float64):
    with jax.enable_x64(dt == jnp.float64):
      a = jnp.ones((n, n), dt)
      f = jax.jit(lambda a: a @ a)
      out[f"matmul {jnp.dtype(dt).name}"] = 2 * n**3 / _median_time(lambda: f(a), repeats) / 1e9
  x = jnp.ones((64 << 20,), jnp.float32)  # 256 MiB
  f = jax.jit(lambda x: x * 1.5 + 1.0)
  out["stream GB/s"] = 2 * x.nbytes / _median_time(lambda: f(x), repeats) / 1e9
  return out


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--bundle", default="default")
  p.add_argument("--config", help="random calibrated weights of this config file "
                                  "instead of --bundle")
  p.add_argument("--image", default=os.path.join(ROOT, "..", "shared", "data", "kodak",
                                                 "kodim01.png"))
  p.add_argument("--repeats", type=int, default=7)
  p.add_argument("--layers", action="store_true",
                 help="also time each layer of g_a and g_s as its own program")
  args = p.parse_args(argv)

  from cca_jax.utils.cli import use_codec_xla_flags
  use_codec_xla_flags()
  import jax
  import jax.numpy as jnp
  import numpy as np
  from cca_jax.codec import encode, load_bundle
  from cca_jax.ops.padding import DEFAULT_MULTIPLE, pad_centered
  from cca_jax.utils.image_io import read_image

  print(f"jax {jax.__version__}, {os.cpu_count()} CPUs, XLA_FLAGS="
        f"{os.environ.get('XLA_FLAGS', '')!r}, load {os.getloadavg()[0]:.2f}")
  ceil = machine_ceilings(args.repeats)
  print("machine: " + ", ".join(
      f"{k} {v:.1f}" + ("" if "GB/s" in k else " GFLOP/s") for k, v in ceil.items()))

  image, _ = read_image(args.image)  # float32 in [0, 1]
  if args.config:
    from cca_jax.config import load_config_file
    from tests.lively_weights import calibrated_bundle
    bundle = calibrated_bundle(load_config_file(args.config).model, image)
  else:
    bundle = load_bundle(args.bundle)
  enc = encode(bundle, image)
  x, _ = pad_centered(image[None], DEFAULT_MULTIPLE)
  prog, dp, ip = bundle.programs, bundle.device_params, bundle.entropy_params
  sizes = list(bundle.model.sizes)
  offsets = np.cumsum([0] + sizes)
  y_hat = [jnp.asarray(enc.y_hat[..., offsets[i]:offsets[i + 1]])
           for i in range(len(sizes))]
  integer = not hasattr(prog.predict, "lower")  # integer programs run under x64

  rows = []

  def measure(name, f, *a):
    with jax.enable_x64(integer and name not in ("analysis", "synthesis")):
      flops, nbytes = _cost(unwrap(f), *a)
      t = _median_time(lambda: unwrap(f)(*a), args.repeats)
    rows.append((name, t, flops, nbytes))

  measure("analysis", prog.analysis, dp, x)
  with jax.enable_x64(integer):
    lm, ls = unwrap(prog.hyper_synthesis)(ip, enc.z_hat)
  measure("hyper_synthesis", prog.hyper_synthesis, ip, enc.z_hat)
  for i in range(len(sizes)):
    with jax.enable_x64(integer):
      mu, _, support = unwrap(prog.predict)(ip, i, lm, ls, tuple(y_hat[:i]))
    measure(f"predict {i}", bind_slice(prog.predict, i), ip, lm, ls,
            tuple(y_hat[:i]))
    q = jnp.asarray(np.rint(np.asarray(y_hat[i]) - np.asarray(mu)), jnp.float32)
    measure(f"refine {i}", bind_slice(prog.refine, i), ip, support, q, mu)
  measure("synthesis", prog.synthesis, dp, tuple(y_hat))

  gf32, gf64 = ceil["matmul float32"], ceil["matmul float64"]
  print(f"\n{bundle.describe()}, {os.path.basename(args.image)} "
        f"{image.shape[1]}x{image.shape[0]}, medians of {args.repeats}")
  print(f"{'program':<16}{'ms':>8}{'GFLOP':>8}{'GFLOP/s':>9}{'% of matmul':>13}"
        f"{'floor ms':>10}{'XLA GB':>8}")
  floor = {"transforms": 0.0, "entropy": 0.0}
  for name, t, flops, nbytes in rows:
    transform = name in ("analysis", "synthesis")
    peak = gf32 if transform or not integer else gf64
    floor["transforms" if transform else "entropy"] += flops / peak / 1e9
    print(f"{name:<16}{t * 1e3:8.1f}{flops / 1e9:8.2f}{flops / t / 1e9:9.1f}"
          f"{100 * flops / t / 1e9 / peak:12.0f}%{flops / peak / 1e9 * 1e3:10.1f}"
          f"{nbytes / 1e9:8.3f}")
  analysis_floor = rows[0][2] / gf32 / 1e9
  print(f"floor = the program's flops at the matrix-product rate of its precision; "
        f"encode floor {1e3 * (analysis_floor + floor['entropy']):.0f} ms, decode floor "
        f"{1e3 * (floor['transforms'] - analysis_floor + floor['entropy']):.0f} ms "
        f"(entropy coding not included). XLA GB: bytes accessed as XLA counts them, "
        f"cache traffic included (the stream rate above is DRAM's).")
  entropy = sum(t for n, t, _, _ in rows if n not in ("analysis", "synthesis"))
  print(f"entropy parameters in all: {entropy * 1e3:.1f} ms "
        f"({'integer networks, float64' if integer else 'float32'})")
  if args.layers:
    layer_table(bundle, x, args.repeats, gf32)
  return 0


def transform_layers(model, params, x):
  """``(name, module, params, input)`` for each layer of g_a, then of g_s, in order,
  with the inputs of one pass of ``x`` through them (the structure of
  ``model.transforms``)."""
  import numpy as np
  from cca_jax.model.layers import (Conv2d, ConvTranspose2d, NAFBlock,
                                    ResidualBottleneckBlock)
  dims, naf, rbb = tuple(model.ae_dim), tuple(model.ae_layers), model.num_rbb
  layers = []
  for s, (d, n) in enumerate(zip(dims, naf)):
    layers.append(("g_a", f"down_{s}", Conv2d(d, 5, 2)))
    layers += [("g_a", f"blocks_{s}_{j}", ResidualBottleneckBlock()) for j in range(rbb)]
    layers += [("g_a", f"blocks_{s}_{rbb + j}", NAFBlock()) for j in range(n)]
  layers.append(("g_a", f"down_{len(dims)}", Conv2d(model.M, 5, 2)))
  for s, (d, n) in enumerate(zip(dims[::-1], naf[::-1])):
    layers.append(("g_s", f"up_{s}", ConvTranspose2d(d, 5, 2)))
    layers += [("g_s", f"blocks_{s}_{j}", NAFBlock()) for j in range(n)]
    layers += [("g_s", f"blocks_{s}_{n + j}", ResidualBottleneckBlock())
               for j in range(rbb)]
  layers.append(("g_s", f"up_{len(dims)}", ConvTranspose2d(3, 5, 2)))
  out, x0 = [], x
  for part, name, module in layers:
    p = params[part][name]
    out.append((f"{part} {name}", module, p, x))
    x = module.apply({"params": p}, x)
  # The chain must be the model's own g_s(g_a(x)): a guard against this list drifting
  # from transforms.py.
  whole = model.apply({"params": params},
                      x0, method=lambda m, v: m.g_s(m.g_a(v)))
  if not np.allclose(np.asarray(x), np.asarray(whole), atol=1e-3):
    raise RuntimeError("the layer list does not reproduce g_s(g_a(x))")
  return out


def layer_table(bundle, x, repeats, gf32):
  """Time each transform layer of ``bundle`` as its own program on input ``x``."""
  import jax
  print(f"\n{'layer':<18}{'kind':<24}{'input':>16}{'ms':>8}{'GFLOP':>7}{'GFLOP/s':>9}"
        f"{'% of matmul':>13}{'XLA GB':>8}")
  kinds = {}
  for name, module, p, xin in transform_layers(bundle.model, bundle.device_params, x):
    f = jax.jit(lambda p, x, m=module: m.apply({"params": p}, x))
    flops, nbytes = _cost(f, p, xin)
    t = _median_time(lambda: f(p, xin), repeats)
    kind = type(module).__name__
    group = f"{name[:3]} {kind}"   # g_a / g_s and the layer class
    kinds[group] = kinds.get(group, 0.0) + t
    shape = "x".join(str(v) for v in xin.shape[1:])
    print(f"{name:<18}{kind:<24}{shape:>16}{t * 1e3:8.1f}{flops / 1e9:7.2f}"
          f"{flops / t / 1e9:9.1f}{100 * flops / t / 1e9 / gf32:12.0f}%{nbytes / 1e9:8.3f}")
  print("by kind: " + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in kinds.items()))


def bind_slice(f, i):
  """``f(params, i, *rest)`` with the static slice index bound, keeping ``lower``."""
  import jax
  inner = unwrap(f)
  return jax.jit(lambda params, *rest: inner(params, i, *rest))


def unwrap(f):
  """The jit-compiled function itself (the integer programs wrap it to run under
  ``jax.enable_x64``)."""
  return f if hasattr(f, "lower") else f.__wrapped__


if __name__ == "__main__":
  sys.exit(main())
