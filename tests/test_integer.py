"""The integer entropy parameters (cca_jax/model/entropy/integer.py, bundle version 2): exact
operations, closeness to the float networks, the proof that the compiled functions hold
only exact arithmetic, and round trips under another instruction set and thread count."""

import math
import os
import subprocess
import sys

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest

from cca_jax.codec import encode, load_bundle
from cca_jax.model.entropy import integer
from cca_jax.ops.activations import gelu, layer_norm_2d
from tests.codec_helpers import synthetic_image, tiny_bundles

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN_BUNDLE = os.path.join(ROOT, "tests", "data", "golden_tiny.ccam")


def x64(fn, *args):
  with jax.enable_x64(True):
    return jax.device_get(jax.jit(fn)(*args))


@pytest.fixture(scope="module")
def bundle(tiny_config, tiny_params):
  b = tiny_bundles(tiny_config, tiny_params)["lively"]
  assert b.version == 2 and b.arithmetic == "integer"
  return b


def test_exact_division_and_square_root():
  rng = np.random.default_rng(0)
  a = np.concatenate([rng.integers(-2**51, 2**51, 4000), [2**51 - 1, -2**51, 0, 7, -7]])
  b = np.concatenate([rng.integers(1, 2**40, 2000), rng.integers(1, 100, 2000),
                      [1, 3, 2**40 - 1, 5, 5]])
  got = x64(integer.floor_div, a.astype(np.float64), b.astype(np.float64))
  np.testing.assert_array_equal(got, [x // y for x, y in zip(a.tolist(), b.tolist())])
  a4 = a // 4  # keep |2a + b| < 2**53
  np.testing.assert_array_equal(
      x64(integer.round_div, a4.astype(np.float64), b.astype(np.float64)),
      [(2 * x + y) // (2 * y) for x, y in zip(a4.tolist(), b.tolist())])
  v = np.concatenate([rng.integers(0, 3 * 2**51, 4000),
                      [0, 1, 2, 3, 4, 2**52, 3 * 2**51 - 1, (2**26 - 1)**2, 2**26 * 2**26 - 1]])
  np.testing.assert_array_equal(x64(integer.isqrt, v.astype(np.float64)),
                                [math.isqrt(x) for x in v.tolist()])
  e = np.arange(-60, 61, dtype=np.float64)
  np.testing.assert_array_equal(x64(integer.pow2, e), 2.0**e)
  m = np.asarray([1, 2, 3, 4, 2**40 - 1, 2**40, 2**52 + 1], np.float64)
  np.testing.assert_array_equal(x64(integer.ilog2, m), [0, 1, 1, 2, 39, 40, 52])


def test_tables_follow_their_functions():
  luts = {k: np.asarray(v, np.float64) for k, v in integer.lookup_tables().items()}
  x = np.linspace(-12, 12, 20001)
  a = np.round(x * 2**integer.FRAC_BITS)
  g = x64(lambda a, t: integer.table(a, t, "x"), a, luts["gelu"]) / 2**16
  t = x64(lambda a, t: integer.table(a, t, "last"), a, luts["half_tanh"]) / 2**16
  xr = a / 2**16
  assert np.abs(g - np.asarray(gelu(jnp.asarray(xr)), np.float64)).max() < 4e-5
  assert np.abs(t - 0.5 * np.tanh(xr)).max() < 4e-5


def test_layer_norm_matches_the_float_one():
  rng = np.random.default_rng(1)
  c = 48
  x = rng.normal(0, 3, (2, 5, 7, c)) + rng.normal(0, 5, (2, 5, 7, 1))
  x[0, 0, 0] = 0.25          # a constant pixel: output = bias
  x[0, 0, 1] = 1e-4 * np.arange(c)   # a tiny variance (the eps matters)
  w, b = rng.normal(1, 0.3, c), rng.normal(0, 0.2, c)
  p = integer.convert_layer_norm(w, b)
  a = np.round(x * 2**16)
  got = x64(integer.layer_norm, a, p) / 2**16
  want = np.asarray(layer_norm_2d(jnp.asarray(a / 2**16, jnp.float32), w, b), np.float64)
  assert np.abs(got - want).max() < 1e-3
  np.testing.assert_array_equal(got[0, 0, 0], np.round(b * 2**16) / 2**16)


def test_every_sum_is_bounded_by_construction():
  """The conversion's guarantee: for any input, every accumulated sum is an integer
  below 2**52 (checked on the default shipped model and the tiny one)."""
  for b in (load_bundle("default"), load_bundle(GOLDEN_BUNDLE)):
    ip = integer.convert(b.params, integer.lookup_tables())
    n = 0
    for path, leaf in jax.tree_util.tree_flatten_with_path(ip)[0]:
      keys = [k.key for k in path]
      parent = ip
      for k in keys[:-1]:
        parent = parent[k]
      if keys[-1] == "w":
        w = np.abs(parent["w"]).reshape(-1, parent["w"].shape[-1])
        bound = integer.ACT_LIMIT * w.sum(0) + np.abs(parent["b"])
        assert bound.max() <= integer.ACC_BOUND
        assert np.all(parent["w"] == np.round(parent["w"]))
        n += 1
      elif keys[-1] == "g":
        assert np.abs(parent["g"]).max() <= integer.LN_GAIN_LIMIT
      elif keys[-1] == "f":
        assert np.abs(parent["f"]).max() <= 2**integer.SCALAR_BITS
    assert n > 20


def test_integer_path_is_close_to_the_float_one(bundle):
  """Same weights, same inputs: means and scales within float noise of the float
  networks', and the same stream size within a fraction of a percent."""
  float_bundle = bundle.with_version(1)
  image = synthetic_image(128, 192)
  ei, ef = encode(bundle, image), encode(float_bundle, image)
  assert abs(len(ei.data) - len(ef.data)) <= 0.01 * len(ef.data) + 8
  assert np.abs(ei.y_hat - ef.y_hat).max() < 0.51  # a rare symbol may round otherwise
  assert np.mean(np.abs(ei.y_hat - ef.y_hat) < 1e-3) > 0.99
  lm_f, ls_f = float_bundle.programs.hyper_synthesis(float_bundle.entropy_params, ei.z_hat)
  lm_i, ls_i = bundle.programs.hyper_synthesis(bundle.entropy_params, ei.z_hat)
  assert np.abs(np.asarray(lm_f) - np.asarray(lm_i)).max() < 1e-3
  assert np.abs(np.asarray(ls_f) - np.asarray(ls_i)).max() < 1e-3


# Primitives whose result is exact for integer-valued float64 within the bounds the
# conversion guarantees (or that only move, compare or select values).
EXACT = {"add", "sub", "mul", "neg", "abs", "max", "min", "round", "floor", "clamp",
         "dot_general", "reduce_sum", "reduce_max", "pad", "slice", "concatenate",
         "reshape", "transpose", "broadcast_in_dim", "squeeze", "expand_dims", "split",
         "select_n", "ge", "gt", "le", "lt", "eq", "ne", "gather", "dynamic_slice",
         "convert_element_type", "bitcast_convert_type", "shift_left",
         "shift_right_arithmetic", "shift_right_logical", "and", "or", "pjit", "jit",
         "iota", "copy", "copy_p"}
if jax.default_backend() == "cpu":  # XLA:CPU's float64 convolution: sums of products
  EXACT.add("conv_general_dilated")
# Estimates, exact only after their correction: allowed inside these scopes only.
ESTIMATES = {"div": "exact_floor_div", "sqrt": "exact_isqrt"}


def _equations(jaxpr):
  for eqn in jaxpr.eqns:
    yield eqn
    for v in eqn.params.values():
      for sub in (v if isinstance(v, (list, tuple)) else [v]):
        if isinstance(sub, jax.extend.core.ClosedJaxpr):
          yield from _equations(sub.jaxpr)
        elif isinstance(sub, jax.extend.core.Jaxpr):
          yield from _equations(sub)


def test_compiled_functions_hold_only_exact_arithmetic(bundle):
  """The proof the format rests on: the traced hyper-synthesis, predict and refine use
  only exact primitives; every float result is float64 (float32 only as the exact
  conversion at the interface); division and square root only as corrected estimates."""
  ip = bundle.entropy_params
  model = bundle.model
  with jax.enable_x64(True):
    z = jnp.zeros((1, 2, 2, model.N), jnp.float32)
    lm = jnp.zeros((1, 8, 8, model.M), jnp.float32)
    fns = [jax.make_jaxpr(integer.hyper_synthesis)(ip, z)]
    ctx = []
    for i, s in enumerate(model.sizes):
      fns.append(jax.make_jaxpr(lambda p, a, b, c, i=i: integer.predict(p, i, a, b, c))(
          ip, lm, lm, tuple(ctx)))
      mu, _, support = integer.predict(ip, i, lm, lm, tuple(ctx))
      q = jnp.zeros(mu.shape, jnp.float32)
      fns.append(jax.make_jaxpr(lambda p, s_, q_, m, i=i: integer.refine(p, i, s_, q_, m))(
          ip, support, q, mu))
      ctx.append(q)
  seen = set()
  for closed in fns:
    for eqn in _equations(closed.jaxpr):
      name = eqn.primitive.name
      seen.add(name)
      if name in ESTIMATES:
        assert ESTIMATES[name] in str(eqn.source_info.name_stack), (name, eqn)
      else:
        assert name in EXACT, f"{name} is not an exact operation: {eqn}"
      for v in eqn.outvars:
        dt = v.aval.dtype
        if jnp.issubdtype(dt, jnp.floating) and dt != jnp.float64:
          assert name == "convert_element_type" and dt == jnp.float32, eqn
  assert {"dot_general", "div", "sqrt", "gather"} <= seen


def _run(args, env_extra, cpus=None):
  env = dict(os.environ, JAX_PLATFORMS="cpu", **env_extra)
  pre = [] if cpus is None else ["taskset", "-c", cpus]
  return subprocess.run(pre + [sys.executable, os.path.join(ROOT, "benchmarks",
                                                            "cross_backend.py")] + args,
                        env=env, capture_output=True, text=True, cwd=ROOT)


@pytest.mark.slow
def test_streams_cross_instruction_sets_and_thread_counts(bundle, tmp_path):
  """Encoded here (default ISA, 2 threads), decoded exactly and re-encoded to the same
  bytes under SSE4.2 only, and on one core with one thread."""
  from cca_jax.codec import save_bundle
  path = str(tmp_path / "lively.ccam")
  save_bundle(bundle, path)
  out = str(tmp_path / "streams")
  sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
  try:
    import cross_backend
    cross_backend.encode_all([path], "synthetic:96x160", out, 2)
  finally:
    sys.path.remove(os.path.join(ROOT, "benchmarks"))
  for flags, cpus in (("--xla_cpu_max_isa=SSE4_2", None),
                      ("--xla_cpu_multi_thread_eigen=false", "0")):
    r = _run(["decode", out], {"XLA_FLAGS": flags}, cpus)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2/2 streams decoded exactly and re-encoded to the same bytes" in r.stdout
