"""Growing a trained model: deeper transforms (cca_jax/model/growth.py,
``config.init_deepen``) and more latents (benchmarks/widen_latents.py)."""

import os
import sys

import jax
import numpy as np
import pytest

from conftest import ROOT
from cca_jax.config import model_config_dict
from cca_jax.model import growth


def _deeper(config, layers):
  c = config.copy_and_resolve_references()
  c.model.ae_layers = layers
  c.init_deepen = True
  return c


def test_deepened_model_computes_the_same_function(tiny_config, tiny_model,
                                                   tiny_params):
  """More NAF blocks per stage (unevenly, so that g_s's renaming is exercised): the
  source's parameters, the added blocks fresh, the same latents and reconstruction as
  the source model; other config changes and fewer blocks are refused."""
  from cca_jax.model.cca import CCAModel
  from cca_jax.train.trainer import complete_params
  config = _deeper(tiny_config, (2, 1, 3))
  src, dst = model_config_dict(tiny_config.model), model_config_dict(config.model)
  params = growth.deepen_params(tiny_params, src, dst)
  model = CCAModel.from_config(config.model)
  full = complete_params(config, model, params)
  assert sorted(full["g_a"]) == sorted(f"blocks_{s}_{j}" for s, n in enumerate((2, 1, 3))
                                       for j in range(1 + n)) + [f"down_{i}" for i in range(4)]
  # g_s runs the stages in reverse: its stage 0 has 3 NAF blocks, then the RBB.
  jax.tree.map(np.testing.assert_array_equal, full["g_s"]["blocks_0_3"],
               tiny_params["g_s"]["blocks_0_1"])
  x = np.random.default_rng(0).uniform(size=(1, 64, 64, 3)).astype(np.float32)
  a = tiny_model.apply({"params": tiny_params}, x, training=False)
  b = model.apply({"params": full}, x, training=False)
  np.testing.assert_allclose(b["y"], a["y"], rtol=0, atol=1e-6)
  np.testing.assert_allclose(b["x_hat"], a["x_hat"], rtol=0, atol=1e-6)
  assert not np.array_equal(  # the added block has its own (fresh) convolutions
      full["g_a"]["blocks_0_2"]["conv1"]["kernel"],
      full["g_a"]["blocks_0_1"]["conv1"]["kernel"])

  with pytest.raises(ValueError, match="do not fit"):  # not asked for: refused
    complete_params(tiny_config, model, params)
  shallower = dict(dst, ae_layers=[1, 1, 0])
  assert "does not extend" in growth.deepening_error(src, shallower)
  wider = dict(dst, M=dst["M"] + 8)
  with pytest.raises(ValueError, match="differ in M"):
    growth.deepen_params(tiny_params, src, wider)


def test_deepening_from_a_bundle(tiny_config, tiny_params, tmp_path):
  """``init_from`` naming a bundle of the shallower model: taken with ``init_deepen``,
  refused without it."""
  from cca_jax.codec.bundle import fine_tuning_params, make_bundle, save_bundle
  from cca_jax.codec.errors import CodecError
  path = str(tmp_path / "b.ccam")
  save_bundle(make_bundle(tiny_config.model, tiny_params), path)
  config = _deeper(tiny_config, (1, 2, 1))
  params = fine_tuning_params(path, config.model, deepen=True)
  assert "blocks_1_2" not in params["g_a"] and "blocks_1_2" in params["g_s"]
  with pytest.raises(CodecError, match="another model config"):
    fine_tuning_params(path, config.model)
  other = _deeper(tiny_config, (1, 1, 1))
  other.model.em_dim = 8
  with pytest.raises(CodecError, match="differ in em_dim"):
    fine_tuning_params(path, other.model, deepen=True)


def test_deepening_from_a_workdir(tiny_config, tiny_params, tiny_workdir):
  """``init_from`` naming a training workdir of the shallower model."""
  from cca_jax.train.trainer import _init_params_from
  config = _deeper(tiny_config, (1, 1, 2))
  config.init_from = tiny_workdir
  params = _init_params_from(config)  # g_s stage 0: 2 NAF blocks, then the RBB
  jax.tree.map(np.testing.assert_array_equal, params["g_s"]["blocks_0_2"],
               tiny_params["g_s"]["blocks_0_1"])
  config.init_deepen = False
  with pytest.raises(ValueError, match="another model config"):
    _init_params_from(config)


def test_widened_latents_keep_the_transforms(tiny_config, tiny_model, tiny_params):
  """benchmarks/widen_latents.py: a larger M from a trained model; g_s(g_a(x)) and
  z are the trained model's at step 0, the added latents are not constant."""
  sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
  from widen_latents import widen
  from cca_jax.model.cca import CCAModel, init_params
  config = tiny_config.copy_and_resolve_references()
  config.model.M = tiny_config.model.M + 8
  model = CCAModel.from_config(config.model)
  params = widen(tiny_params, init_params(model, seed=1))
  x = np.random.default_rng(0).uniform(size=(1, 64, 64, 3)).astype(np.float32)

  def transforms(m, x):
    y = m.g_a(x)
    return y, m.g_s(y), m.h_a(y)
  y0, x0, z0 = tiny_model.apply({"params": tiny_params}, x, method=transforms)
  y1, x1, z1 = model.apply({"params": params}, x, method=transforms)
  np.testing.assert_allclose(y1[..., :y0.shape[-1]], y0, rtol=0, atol=1e-6)
  np.testing.assert_allclose(x1, x0, rtol=0, atol=1e-6)
  np.testing.assert_allclose(z1, z0, rtol=0, atol=1e-6)
  assert float(np.std(y1[..., y0.shape[-1]:])) > 0
