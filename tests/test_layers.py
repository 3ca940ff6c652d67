"""Layer parity with torch.nn.functional, and fast paths against plain XLA."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cca_jax.model import layers
from cca_jax.ops import activations, convolution


def _rand(shape, seed):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _to_nchw(x):
  return np.moveaxis(x, -1, 1)


def _from_nchw(t):
  return np.moveaxis(t.detach().numpy(), 1, -1)


FORMULATIONS = pytest.mark.parametrize("form", convolution.FORMULATIONS)


def _torch_grads(torch, fn, x, w, b, ct):
  """Value and gradients (input, weight, bias) of ``sum(fn(x, w, b) * ct)`` in torch."""
  xt = torch.from_numpy(_to_nchw(x).copy()).requires_grad_()
  wt = torch.from_numpy(w).requires_grad_()
  bt = torch.from_numpy(b).requires_grad_()
  y = fn(xt, wt, bt)
  (y * torch.from_numpy(_to_nchw(ct).copy())).sum().backward()
  return _from_nchw(y), _from_nchw(xt.grad), wt.grad.numpy(), bt.grad.numpy()


def _jax_grads(fn, x, kernel, b, ct, form):
  """Value and gradients (input, kernel, bias) of ``sum(fn(x, kernel, b) * ct)``,
  traced under formulation ``form``."""
  with convolution.use_formulation(form):
    y = jax.jit(fn)(x, kernel, b)
    grads = jax.jit(jax.grad(lambda *a: jnp.vdot(fn(*a), ct), argnums=(0, 1, 2)))(
        x, kernel, b)
  return (y, *grads)


@FORMULATIONS
@pytest.mark.parametrize("k,s,hw", [(5, 2, (16, 20)), (5, 2, (15, 17)), (3, 1, (9, 11)),
                                    (1, 1, (8, 8))])
def test_conv2d_matches_torch(torch_single_thread, form, k, s, hw):
  """Values and gradients, both formulations (strided: custom backward pass)."""
  torch = torch_single_thread
  x = _rand((2, *hw, 6), 0)
  w = _rand((7, 6, k, k), 1)  # torch layout (out, in, kh, kw)
  b = _rand((7,), 2)
  ct = _rand((2, -(-hw[0] // s), -(-hw[1] // s), 7), 3)
  ref = _torch_grads(torch, lambda x, w, b: torch.nn.functional.conv2d(
      x, w, b, stride=s, padding=k // 2), x, w, b, ct)
  ours = _jax_grads(lambda x, w, b: convolution.conv2d(x, w, b, s), jnp.asarray(x),
                    jnp.asarray(w.transpose(2, 3, 1, 0)), jnp.asarray(b), ct, form)
  for o, r in zip(ours, (ref[0], ref[1], ref[2].transpose(2, 3, 1, 0), ref[3])):
    np.testing.assert_allclose(o, r, rtol=1e-4, atol=1e-4)


@FORMULATIONS
@pytest.mark.parametrize("k,s,hw", [(5, 2, (4, 6)), (5, 2, (3, 5)), (3, 1, (5, 7))])
def test_conv_transpose2d_matches_torch(torch_single_thread, form, k, s, hw):
  """Values and gradients at odd and even sizes; 'cpu' is the sub-pixel form."""
  torch = torch_single_thread
  x = _rand((2, *hw, 6), 3)
  w = _rand((6, 5, k, k), 4)  # torch layout (in, out, kh, kw)
  b = _rand((5,), 5)
  ct = _rand((2, hw[0] * s, hw[1] * s, 5), 6)
  ref = _torch_grads(torch, lambda x, w, b: torch.nn.functional.conv_transpose2d(
      x, w, b, stride=s, padding=k // 2, output_padding=s - 1), x, w, b, ct)
  ours = _jax_grads(lambda x, w, b: convolution.conv_transpose2d(x, w, b, s), jnp.asarray(x),
                    jnp.asarray(w.transpose(2, 3, 0, 1)), jnp.asarray(b), ct, form)
  assert ours[0].shape == (2, hw[0] * s, hw[1] * s, 5)
  for o, r in zip(ours, (ref[0], ref[1], ref[2].transpose(2, 3, 0, 1), ref[3])):
    np.testing.assert_allclose(o, r, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("k,s,p,op,hw", [
    (5, 2, 2, 1, (4, 6)), (5, 2, 2, 0, (3, 4)), (4, 2, 1, 0, (3, 5)), (3, 2, 1, 1, (4, 3)),
    (5, 3, 1, 2, (3, 4)), (2, 2, 0, 0, (3, 3)), (3, 1, 0, 0, (4, 5)), (5, 2, 4, 1, (5, 4))])
def test_subpixel_transposed_conv_equals_xla_for_any_geometry(k, s, p, op, hw):
  """The sub-pixel decomposition is exact for every kernel/stride/padding, not just
  the model's 5x5 stride 2 (values and both gradients)."""
  x = jnp.asarray(_rand((2, *hw, 4), 7))
  w = jnp.asarray(_rand((k, k, 4, 3), 8))
  b = jnp.zeros((3,))
  with convolution.use_formulation("plain"):  # XLA's dilated-input convolution
    ref = convolution.conv_transpose2d(x, w, None, s, p, op)
  ct = _rand(ref.shape, 9)
  fn = lambda x, w, b: convolution.conv_transpose2d(x, w, b, s, p, op)
  fast = _jax_grads(fn, x, w, b, ct, "cpu")
  plain = _jax_grads(fn, x, w, b, ct, "plain")
  np.testing.assert_allclose(plain[0], ref, rtol=1e-6, atol=1e-6)
  for f, r in zip(fast, plain):
    np.testing.assert_allclose(f, r, rtol=1e-5, atol=1e-5)


@FORMULATIONS
def test_depthwise_matches_torch_and_grouped_conv(torch_single_thread, form):
  torch = torch_single_thread
  x = _rand((2, 9, 13, 8), 6)
  w = _rand((8, 1, 3, 3), 7)
  b = _rand((8,), 8)
  ct = _rand((2, 9, 13, 8), 9)
  ref = _torch_grads(torch, lambda x, w, b: torch.nn.functional.conv2d(
      x, w, b, padding=1, groups=8), x, w, b, ct)
  ours = _jax_grads(convolution.depthwise_conv2d, jnp.asarray(x),
                    jnp.asarray(w.transpose(2, 3, 1, 0)), jnp.asarray(b), ct, form)
  for o, r in zip(ours, (ref[0], ref[1], ref[2].transpose(2, 3, 1, 0), ref[3])):
    np.testing.assert_allclose(o, r, rtol=1e-4, atol=1e-4)


def test_formulation_policy_routes_each_layer():
  """'cpu' is the default on the CPU and rewrites the convolutions XLA is slow at;
  'plain' is one XLA convolution per layer (GPU/TPU default)."""
  assert jax.default_backend() != "cpu" or convolution.formulation() == "cpu"
  x = jnp.zeros((1, 8, 8, 4))

  def primitives(form, fn, *args):
    with convolution.use_formulation(form):
      assert convolution.formulation() == form
      jaxpr = jax.make_jaxpr(jax.grad(lambda *a: jnp.sum(fn(*a))))(*args)
    return str(jaxpr)

  deconv = lambda x, w: convolution.conv_transpose2d(x, w, None, 2)
  plain = primitives("plain", deconv, x, jnp.ones((5, 5, 4, 3)))
  fast = primitives("cpu", deconv, x, jnp.ones((5, 5, 4, 3)))
  assert "lhs_dilation=(2, 2)" in plain and "lhs_dilation=(2, 2)" not in fast
  dw = lambda x, w: convolution.depthwise_conv2d(x, w)
  assert "feature_group_count=4" in primitives("plain", dw, x, jnp.ones((3, 3, 1, 4)))
  assert "feature_group_count=4" not in primitives("cpu", dw, x, jnp.ones((3, 3, 1, 4)))
  strided = lambda x, w: convolution.conv2d(x, w, None, 2)
  # XLA's input gradient of a strided convolution is a dilated-input convolution.
  assert "lhs_dilation=(2, 2)" in primitives("plain", strided, x, jnp.ones((5, 5, 4, 3)))
  assert "lhs_dilation=(2, 2)" not in primitives("cpu", strided, x, jnp.ones((5, 5, 4, 3)))
  with pytest.raises(ValueError, match="unknown formulation"):
    with convolution.use_formulation("fast"):
      pass


def test_transforms_compute_the_same_function_in_both_formulations():
  """g_a then g_s (every layer kind of the main transforms, NAF branches switched on):
  output and all parameter gradients agree between 'cpu' and 'plain'."""
  from cca_jax.model.transforms import AnalysisTransform, SynthesisTransform
  ga = AnalysisTransform(12, (8, 8), (1, 1), 1)
  gs = SynthesisTransform((8, 8), (1, 1), 1)
  x = jnp.asarray(np.random.default_rng(15).uniform(size=(2, 16, 24, 3)), jnp.float32)
  # Initialised in one compiled program each with the rbg PRNG (eagerly, with the
  # default key, the initialisation takes longer than the test).
  key = lambda seed: jax.random.key(seed, impl="rbg")
  pa = jax.jit(ga.init)(key(0), x)["params"]
  ps = jax.jit(gs.init)(key(1), jax.jit(ga.apply)({"params": pa}, x))["params"]
  params = jax.tree_util.tree_map(lambda p: p + 0.1, {"a": pa, "s": ps})

  def loss(p):
    x_hat = gs.apply({"params": p["s"]}, ga.apply({"params": p["a"]}, x))
    return jnp.mean(jnp.square(x_hat - x))

  out = {}
  for form in convolution.FORMULATIONS:
    with convolution.use_formulation(form):
      out[form] = jax.jit(jax.value_and_grad(loss))(params)
  np.testing.assert_allclose(out["cpu"][0], out["plain"][0], rtol=1e-5)
  flat_cpu = jax.tree_util.tree_leaves_with_path(out["cpu"][1])
  for (path, g), g_plain in zip(flat_cpu, jax.tree_util.tree_leaves(out["plain"][1])):
    scale = float(np.max(np.abs(g_plain))) + 1e-12
    np.testing.assert_allclose(g / scale, g_plain / scale, atol=2e-5, err_msg=str(path))


def test_pointwise_fast_path_equals_xla_conv():
  x = jnp.asarray(_rand((2, 5, 6, 8), 9))
  k = jnp.asarray(_rand((1, 1, 8, 4), 10))
  with convolution.use_formulation("plain"):  # XLA's convolution
    ref = convolution.conv2d(x, k)
  with convolution.use_formulation("cpu"):
    fast = convolution.conv2d(x, k)
  np.testing.assert_allclose(fast, ref, rtol=1e-5, atol=1e-5)


def test_gelu_and_layer_norm_match_torch(torch_single_thread):
  torch = torch_single_thread
  x = _rand((2, 5, 6, 8), 11) * 3
  np.testing.assert_allclose(
      activations.gelu(jnp.asarray(x)), torch.nn.functional.gelu(torch.from_numpy(x)).numpy(),
      rtol=1e-5, atol=1e-6)
  w, b = _rand((8,), 12), _rand((8,), 13)
  # NAFNet's LayerNorm2d normalises over channels == F.layer_norm over the last axis.
  ref = torch.nn.functional.layer_norm(torch.from_numpy(x), (8,), torch.from_numpy(w),
                                       torch.from_numpy(b), eps=1e-6)
  np.testing.assert_allclose(activations.layer_norm_2d(jnp.asarray(x), jnp.asarray(w), jnp.asarray(b)),
                             ref.numpy(), rtol=1e-4, atol=1e-5)


def test_simple_gate():
  x = jnp.arange(8.0).reshape(1, 1, 2, 4)
  np.testing.assert_array_equal(activations.simple_gate(x), jnp.array([[[[0 * 2, 1 * 3], [4 * 6, 5 * 7]]]]))


def test_naf_block_is_identity_at_init_and_param_count():
  d = 12
  block = layers.NAFBlock()
  x = jnp.asarray(_rand((1, 7, 9, d), 14))
  v = block.init(jax.random.key(0), x)
  np.testing.assert_array_equal(block.apply(v, x), x)
  n = sum(a.size for a in jax.tree_util.tree_leaves(v))
  assert n == 7 * d * d + 33 * d


def test_init_follows_pytorch_defaults():
  """U(-1/sqrt(fan_in), 1/sqrt(fan_in)); a transposed conv's fan_in uses out channels."""
  conv = layers.Conv2d(64, 5, 2).init(jax.random.key(0), jnp.zeros((1, 8, 8, 32)))["params"]
  bound = 1 / np.sqrt(32 * 25)
  assert np.abs(conv["kernel"]).max() <= bound and np.abs(conv["kernel"]).max() > 0.9 * bound
  deconv = layers.ConvTranspose2d(16, 5, 2).init(jax.random.key(0), jnp.zeros((1, 4, 4, 64)))["params"]
  bound = 1 / np.sqrt(16 * 25)
  assert np.abs(deconv["kernel"]).max() <= bound and np.abs(deconv["kernel"]).max() > 0.9 * bound
