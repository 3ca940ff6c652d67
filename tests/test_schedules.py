"""Schedules and optimizers of the training recipe; config overrides from flags."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import ROOT, load_config
from cca_jax.config import load_config_file
from cca_jax.train.optimizers import main_optimizer, param_labels, quantile_optimizer
from cca_jax.train.schedules import learning_rate, lmbda_at, stage1_lmbda


@pytest.mark.parametrize("target, stage1", [(0.3, 0.3), (0.85, 0.3), (3.5, 0.3),
                                            (7.0, 2.0), (15.0, 2.0)])
def test_two_stage_lambda_switches_at_milestone(target, stage1):
  c = load_config("tiny")
  c.lmbda, c.milestone_step = target, 100
  assert stage1_lmbda(c) == stage1
  got = [float(lmbda_at(c, s)) for s in (0, 99, 100, 101, 10_000)]
  assert got == pytest.approx([stage1, stage1, target, target, target])
  # Traced steps (inside jit) give the same values.
  traced = jax.jit(lambda s: lmbda_at(c, s))(jnp.arange(98, 102))
  np.testing.assert_allclose(traced, [stage1, stage1, target, target], rtol=1e-6)


def test_lambda_schedule_options():
  c = load_config("tiny")
  c.lmbda, c.milestone_step = 1.8, 10
  c.stage1_lmbda = 0.5
  assert float(lmbda_at(c, 9)) == pytest.approx(0.5)
  c.two_stage_lambda = False
  assert float(lmbda_at(c, 0)) == pytest.approx(1.8)


def test_learning_rate_drops_at_milestone():
  c = load_config("tiny")
  c.milestone_step, c.learning_rate, c.lr_decay = 50, 1e-4, 0.1
  lr = learning_rate(c)
  np.testing.assert_allclose([lr(0), lr(49), lr(50), lr(1000)],
                             [1e-4, 1e-4, 1e-5, 1e-5], rtol=1e-6)


def test_cosine_learning_rate_with_warmup():
  c = load_config("tiny")
  c.lr_schedule, c.learning_rate, c.num_steps = "cosine", 1e-3, 1000
  c.warmup_steps, c.lr_end_factor = 100, 0.02
  lr = learning_rate(c)
  # Linear warm-up from 0, the peak at the end of the warm-up, half-way down the
  # cosine in the middle of the decay, the end value at num_steps and after.
  np.testing.assert_allclose(
      [lr(0), lr(50), lr(100), lr(550), lr(1000), lr(5000)],
      [0.0, 5e-4, 1e-3, 0.5 * (1e-3 + 2e-5), 2e-5, 2e-5], rtol=1e-5, atol=1e-12)
  assert all(float(lr(s)) >= float(lr(s + 1)) for s in range(100, 1000, 37))
  c.warmup_steps = 0   # fine-tuning: start at the peak
  np.testing.assert_allclose(learning_rate(c)(0), 1e-3, rtol=1e-6)
  c.lr_schedule = "linear"
  with pytest.raises(ValueError, match="lr_schedule"):
    learning_rate(c)


def test_optimizers_split_quantiles_from_the_rest():
  c = load_config("tiny")
  params = {"eb": {"quantiles": jnp.ones((3, 1, 3)), "matrices_0": jnp.ones((3, 3, 1))},
            "conv": {"kernel": jnp.ones((2, 2))}}
  labels = param_labels(params)
  assert labels == {"eb": {"quantiles": "quantiles", "matrices_0": "main"},
                    "conv": {"kernel": "main"}}
  grads = jax.tree.map(jnp.ones_like, params)
  for tx, moved in ((main_optimizer(c), "main"), (quantile_optimizer(c), "quantiles")):
    updates, _ = tx.update(grads, tx.init(params), params)
    for (path, u), label in zip(jax.tree_util.tree_leaves_with_path(updates),
                                jax.tree.leaves(labels)):
      assert bool(jnp.any(u != 0)) == (label == moved), (path, label)


def test_main_optimizer_clips_global_norm():
  c = load_config("tiny")
  c.grad_clip_norm, c.learning_rate = 1.0, 1.0
  params = {"w": jnp.zeros(4), "quantiles": jnp.zeros(1)}
  tx = main_optimizer(c)
  state = tx.init(params)
  # Adam's first update is lr * sign(g) whatever the scale; check the clipped
  # gradient through the second moment: feed 100x gradients, the state holds them
  # scaled to norm 1.
  updates, state = tx.update({"w": jnp.full(4, 100.0), "quantiles": jnp.ones(1)},
                             state, params)
  mu = jax.tree.leaves(state)[1]  # first moment of 'w' after clipping
  np.testing.assert_allclose(np.linalg.norm(np.asarray(mu) / 0.1), 1.0, rtol=1e-5)


def test_config_overrides_from_flags():
  """``load_config_file`` parses as the tools' ``--config`` flag (config_flags)."""
  cpu = os.path.join(ROOT, "configs", "cpu.py")
  c = load_config_file(f"{cpu}:0.85", ["--config.batch_size=16",
                                       "--config.data.tfds_name=clic",
                                       "--config.metric=ms-ssim", "--config.num_steps=7"])
  assert (c.lmbda, c.batch_size, c.data.tfds_name, c.metric, c.num_steps) == (
      0.85, 16, "clic", "ms-ssim", 7)
  assert c.model.M == 96  # the rest comes from the file
  with pytest.raises(ValueError, match="no_such_field"):
    load_config_file(cpu, ["--config.no_such_field=1"])
  with pytest.raises(ValueError, match="not found"):
    load_config_file(os.path.join(ROOT, "configs", "missing.py"))
