"""Layer parity with torch.nn.functional, and fast paths against plain XLA."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cca_jax import layers as L


def _rand(shape, seed):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _to_nchw(x):
  return np.moveaxis(x, -1, 1)


def _from_nchw(t):
  return np.moveaxis(t.detach().numpy(), 1, -1)


@pytest.mark.parametrize("k,s,hw", [(5, 2, (16, 20)), (5, 2, (15, 17)), (3, 1, (9, 11)),
                                    (1, 1, (8, 8))])
def test_conv2d_matches_torch(torch_single_thread, k, s, hw):
  torch = torch_single_thread
  x = _rand((2, *hw, 6), 0)
  w = _rand((7, 6, k, k), 1)  # torch layout (out, in, kh, kw)
  b = _rand((7,), 2)
  ref = torch.nn.functional.conv2d(torch.from_numpy(_to_nchw(x).copy()), torch.from_numpy(w),
                                   torch.from_numpy(b), stride=s, padding=k // 2)
  ours = L.conv2d(jnp.asarray(x), jnp.asarray(w.transpose(2, 3, 1, 0)), jnp.asarray(b), s)
  np.testing.assert_allclose(ours, _from_nchw(ref), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("k,s,hw", [(5, 2, (4, 6)), (5, 2, (3, 5)), (3, 1, (5, 7))])
def test_conv_transpose2d_matches_torch(torch_single_thread, k, s, hw):
  torch = torch_single_thread
  x = _rand((2, *hw, 6), 3)
  w = _rand((6, 5, k, k), 4)  # torch layout (in, out, kh, kw)
  b = _rand((5,), 5)
  ref = torch.nn.functional.conv_transpose2d(
      torch.from_numpy(_to_nchw(x).copy()), torch.from_numpy(w), torch.from_numpy(b),
      stride=s, padding=k // 2, output_padding=s - 1)
  ours = L.conv_transpose2d(jnp.asarray(x), jnp.asarray(w.transpose(2, 3, 0, 1)),
                            jnp.asarray(b), s)
  assert ours.shape == (2, hw[0] * s, hw[1] * s, 5)
  np.testing.assert_allclose(ours, _from_nchw(ref), rtol=1e-4, atol=1e-4)


def test_depthwise_matches_torch_and_grouped_conv(torch_single_thread):
  torch = torch_single_thread
  x = _rand((2, 9, 13, 8), 6)
  w = _rand((8, 1, 3, 3), 7)
  b = _rand((8,), 8)
  ref = torch.nn.functional.conv2d(torch.from_numpy(_to_nchw(x).copy()), torch.from_numpy(w),
                                   torch.from_numpy(b), padding=1, groups=8)
  kernel = jnp.asarray(w.transpose(2, 3, 1, 0))
  fast = L.depthwise_conv2d(jnp.asarray(x), kernel, jnp.asarray(b))
  plain = L.depthwise_conv2d_reference(jnp.asarray(x), kernel, jnp.asarray(b))
  np.testing.assert_allclose(fast, _from_nchw(ref), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(fast, plain, rtol=1e-5, atol=1e-5)
  # Same gradients too.
  g1 = jax.grad(lambda k: jnp.sum(jnp.sin(L.depthwise_conv2d(jnp.asarray(x), k))))(kernel)
  g2 = jax.grad(lambda k: jnp.sum(jnp.sin(L.depthwise_conv2d_reference(jnp.asarray(x), k))))(kernel)
  np.testing.assert_allclose(g1, g2, rtol=1e-4, atol=1e-4)


def test_pointwise_fast_path_equals_xla_conv():
  x = jnp.asarray(_rand((2, 5, 6, 8), 9))
  k = jnp.asarray(_rand((1, 1, 8, 4), 10))
  np.testing.assert_allclose(L.conv2d(x, k), L.conv2d_reference(x, k), rtol=1e-5, atol=1e-5)


def test_gelu_and_layer_norm_match_torch(torch_single_thread):
  torch = torch_single_thread
  x = _rand((2, 5, 6, 8), 11) * 3
  np.testing.assert_allclose(
      L.gelu(jnp.asarray(x)), torch.nn.functional.gelu(torch.from_numpy(x)).numpy(),
      rtol=1e-5, atol=1e-6)
  w, b = _rand((8,), 12), _rand((8,), 13)
  # NAFNet's LayerNorm2d normalises over channels == F.layer_norm over the last axis.
  ref = torch.nn.functional.layer_norm(torch.from_numpy(x), (8,), torch.from_numpy(w),
                                       torch.from_numpy(b), eps=1e-6)
  np.testing.assert_allclose(L.layer_norm_2d(jnp.asarray(x), jnp.asarray(w), jnp.asarray(b)),
                             ref.numpy(), rtol=1e-4, atol=1e-5)


def test_simple_gate():
  x = jnp.arange(8.0).reshape(1, 1, 2, 4)
  np.testing.assert_array_equal(L.simple_gate(x), jnp.array([[[[0 * 2, 1 * 3], [4 * 6, 5 * 7]]]]))


def test_naf_block_is_identity_at_init_and_param_count():
  d = 12
  block = L.NAFBlock()
  x = jnp.asarray(_rand((1, 7, 9, d), 14))
  v = block.init(jax.random.key(0), x)
  np.testing.assert_array_equal(block.apply(v, x), x)
  n = sum(a.size for a in jax.tree_util.tree_leaves(v))
  assert n == 7 * d * d + 33 * d


def test_init_follows_pytorch_defaults():
  """U(-1/sqrt(fan_in), 1/sqrt(fan_in)); a transposed conv's fan_in uses out channels."""
  conv = L.Conv2d(64, 5, 2).init(jax.random.key(0), jnp.zeros((1, 8, 8, 32)))["params"]
  bound = 1 / np.sqrt(32 * 25)
  assert np.abs(conv["kernel"]).max() <= bound and np.abs(conv["kernel"]).max() > 0.9 * bound
  deconv = L.ConvTranspose2d(16, 5, 2).init(jax.random.key(0), jnp.zeros((1, 4, 4, 64)))["params"]
  bound = 1 / np.sqrt(16 * 25)
  assert np.abs(deconv["kernel"]).max() <= bound and np.abs(deconv["kernel"]).max() > 0.9 * bound
