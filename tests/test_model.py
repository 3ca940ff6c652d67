"""The full model: shapes, modes, gradients (tiny config)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cca_jax.model.cca import CCAModel
from cca_jax.model.losses import rd_loss
from cca_jax.model.transforms import (AnalysisTransform, HyperAnalysisTransform,
                                HyperSynthesisTransform, SynthesisTransform)


@pytest.mark.parametrize("h,w", [(64, 64), (72, 100), (33, 47)])
def test_transform_shapes_any_size(h, w):
  # Shapes only: jax.eval_shape traces the init without computing (or compiling)
  # anything.
  def out_shape(module, x):
    return jax.eval_shape(lambda k, x: module.init_with_output(k, x)[0],
                          jax.random.key(0), x).shape

  x = jax.ShapeDtypeStruct((1, h, w, 3), jnp.float32)
  y = jax.ShapeDtypeStruct(out_shape(AnalysisTransform(40, (8, 8, 8), (1, 1, 1), 1), x),
                           jnp.float32)
  ceil = lambda n, s: -(-n // s)
  assert y.shape == (1, ceil(h, 16), ceil(w, 16), 40)
  z = jax.ShapeDtypeStruct(out_shape(HyperAnalysisTransform(12, 16), y), jnp.float32)
  assert z.shape == (1, ceil(y.shape[1], 4), ceil(y.shape[2], 4), 12)
  m = out_shape(HyperSynthesisTransform(40, 16), z)
  assert m == (1, 4 * z.shape[1], 4 * z.shape[2], 40)
  xh = out_shape(SynthesisTransform((8, 8, 8), (1, 1, 1), 1), y)
  assert xh == (1, 16 * y.shape[1], 16 * y.shape[2], 3)


def test_forward_shapes_and_modes(tiny_model, tiny_params):
  x = jax.random.uniform(jax.random.key(1), (2, 64, 128, 3))
  fwd = jax.jit(lambda p, x, k, training: tiny_model.apply(
      {"params": p}, x, training=training, rngs={"noise": k}), static_argnums=3)
  ev = fwd(tiny_params, x, jax.random.key(0), False)
  M, N = tiny_model.M, tiny_model.N
  assert ev["y"].shape == (2, 4, 8, M) and ev["z"].shape == (2, 1, 2, N)
  assert ev["x_hat"].shape == x.shape and ev["y_hat"].shape == ev["y"].shape
  assert [l.shape[-1] for l in ev["likelihoods"]["y"]] == tiny_model.sizes
  assert ev["likelihoods"]["y_aux"].shape == ev["y"].shape
  # Evaluation is deterministic; y_hat - mu is integer before LRP (checked via z_hat).
  ev2 = fwd(tiny_params, x, jax.random.key(5), False)
  np.testing.assert_array_equal(ev["likelihoods"]["z"], ev2["likelihoods"]["z"])
  med = tiny_params["z_entropy_bottleneck"]["quantiles"][:, 0, 1]
  np.testing.assert_allclose(ev["z_hat"] - med, np.round(ev["z"] - med), atol=1e-5)
  # Training draws fresh noise for the rates, the decoder path is unchanged.
  tr1 = fwd(tiny_params, x, jax.random.key(0), True)
  tr2 = fwd(tiny_params, x, jax.random.key(1), True)
  assert not np.allclose(tr1["likelihoods"]["z"], tr2["likelihoods"]["z"])
  np.testing.assert_allclose(tr1["x_hat"], ev["x_hat"], atol=1e-5)
  for l in jax.tree_util.tree_leaves(tr1["likelihoods"]):
    assert np.all((l >= 1e-9 * 0.999) & (l <= 1.0))


def test_rejects_unpadded_sizes(tiny_model, tiny_params):
  with pytest.raises(ValueError, match="multiple of 64"):
    tiny_model.apply({"params": tiny_params}, jnp.zeros((1, 64, 96, 3)), training=False)


def test_gradients_reach_everything_but_quantiles(tiny_model, tiny_params):
  x = jax.random.uniform(jax.random.key(2), (1, 64, 64, 3))

  def loss(p):
    out = tiny_model.apply({"params": p}, x, training=True, rngs={"noise": jax.random.key(3)})
    return rd_loss(out, x, lmbda=0.3)["loss"]

  g = jax.jit(jax.grad(loss))(tiny_params)
  assert float(jnp.abs(g["z_entropy_bottleneck"]["quantiles"]).sum()) == 0.0
  assert float(jnp.abs(g["aux_entropymodel"]["y_entropy_bottleneck"]["quantiles"]).sum()) == 0.0
  for name in ("g_a", "g_s", "h_a", "h_mean_s", "h_scale_s", "entropy_model",
               "aux_entropymodel"):
    total = sum(float(jnp.abs(v).sum()) for v in jax.tree_util.tree_leaves(g[name]))
    assert total > 0 and np.isfinite(total), name


def test_from_config_round_trip(tiny_config):
  m = CCAModel.from_config(tiny_config.model, aux_model=False)
  assert m.M == tiny_config.model.M and m.aux_model is False
  assert m.ae_dim == tuple(tiny_config.model.ae_dim)
