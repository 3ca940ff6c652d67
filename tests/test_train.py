"""Training: data parallelism, a short run whose loss goes down, kill-and-resume."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from flax import traverse_util

from conftest import ROOT, TRAIN_DATA, load_config
from cca_jax.model.cca import CCAModel, init_params
from cca_jax.train import checkpointing, input_pipeline, partitioning
from cca_jax.train.state import create_train_state
from cca_jax.train.step import make_eval_step, make_train_step
from cca_jax.train.trainer import train_and_evaluate, validate_config

NUM_STEPS = 60
# Batch 8: the 8-device test's single-device side is then the very program these
# runs compile (one compilation of the training step for the whole file). Checkpoints
# every 10 steps: the killed run is killed while a save is in flight (a save of the
# tiny state takes ~3 s, ten steps well under one).
OVERRIDES = [f"--config.num_steps={NUM_STEPS}", "--config.batch_size=8",
             "--config.checkpoint_every=10",
             "--config.log_every=20", "--config.eval_every=30",
             "--config.data.num_eval_images=2", "--config.data.eval_patch_size=64",
             "--config.milestone_step=40", f"--config.data.train_dir={TRAIN_DATA}"]


def run_config(*extra):
  c = load_config("tiny")
  for o in (*OVERRIDES, *extra):
    key, value = o[len("--config."):].split("=", 1)
    target = c
    *parents, leaf = key.split(".")
    for p in parents:
      target = target[p]
    target[leaf] = type(target[leaf])(value)
  return c


def _env():
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
  env.pop("XLA_FLAGS", None)
  return env


@pytest.mark.slow
def test_one_step_on_8_devices_equals_one_device(tmp_path):
  config = run_config()
  model = CCAModel.from_config(config.model)
  params = jax.device_get(init_params(model, seed=config.seed))
  x = np.random.RandomState(0).rand(config.batch_size, 64, 64, 3).astype(np.float32)
  inp, outp = str(tmp_path / "in.npz"), str(tmp_path / "out.npz")
  np.savez(inp, x=x, **traverse_util.flatten_dict(params, sep="/"))
  # 8 devices in another process (the device count is fixed at start-up), while this
  # one runs the step on its single device: the two compilations overlap.
  proc = subprocess.Popen(
      [sys.executable, os.path.join(ROOT, "tests", "scripts", "data_parallel_step.py"),
       inp, outp, *OVERRIDES], env=_env(), stdout=subprocess.DEVNULL,
      stderr=subprocess.PIPE, text=True)
  try:
    mesh = partitioning.make_mesh(jax.devices()[:1])
    step = partitioning.jit_train_step(make_train_step(config, model), mesh)
    state, metrics = step(
        partitioning.replicate(jax.device_get(create_train_state(config, params=params)),
                               mesh), partitioning.global_batch(x, mesh))
    one = traverse_util.flatten_dict(jax.device_get(state.params), sep="/")
    loss_1 = float(metrics["loss"])
    _, err = proc.communicate(timeout=900)
  finally:
    proc.kill()
  assert proc.returncode == 0, err[-2000:]
  with np.load(outp) as f:
    eight = dict(f)
  assert int(eight.pop("num_devices")) == 8 and int(eight.pop("param_devices")) == 8
  loss_8 = float(eight.pop("loss"))
  assert eight.keys() == one.keys()
  start = traverse_util.flatten_dict(params, sep="/")
  max_update = max(float(np.max(np.abs(one[k] - start[k]))) for k in one)
  max_diff = max(float(np.max(np.abs(one[k] - eight[k]))) for k in one)
  assert max_update > 1e-4  # the step did move the parameters
  assert max_diff < 1e-6 * max(1.0, max_update * 1e3)
  assert loss_8 == pytest.approx(loss_1, rel=1e-5)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("uninterrupted"))
  # One checkpoint, at the end: the killed run, which saves every 10 steps, must
  # reach the same parameters.
  state = train_and_evaluate(run_config(f"--config.checkpoint_every={NUM_STEPS}"),
                             workdir)
  return workdir, jax.device_get(state)


@pytest.mark.slow
def test_training_reduces_the_loss(uninterrupted, capsys):
  workdir, final = uninterrupted
  config = run_config()
  model = CCAModel.from_config(config.model)
  initial = create_train_state(config, model)
  batches = input_pipeline.train_batches(config)
  x = next(batches)
  eval_step = jax.jit(make_eval_step(config, model))
  before = float(np.mean(eval_step(initial.params, x, NUM_STEPS)["loss"]))
  after = float(np.mean(eval_step(final.params, x, NUM_STEPS)["loss"]))
  assert after < 0.7 * before, (before, after)
  assert int(final.step) == NUM_STEPS
  # What the run leaves behind.
  assert os.listdir(os.path.join(workdir, "tensorboard"))
  with open(os.path.join(workdir, "config.json")) as f:
    assert json.load(f)["num_steps"] == NUM_STEPS
  model_config, params, step = checkpointing.load_latest_params(workdir)
  assert step == NUM_STEPS and model_config["M"] == config.model.M
  np.testing.assert_array_equal(params["g_a"]["down_0"]["kernel"],
                                final.params["g_a"]["down_0"]["kernel"])


@pytest.mark.slow
def test_kill_and_resume_equals_uninterrupted(uninterrupted, tmp_path, capsys):
  _, reference = uninterrupted
  workdir = str(tmp_path / "killed")
  cmd = [sys.executable, "-m", "cca_jax.train",
         f"--config={os.path.join(ROOT, 'configs', 'tiny.py')}", f"--workdir={workdir}",
         *OVERRIDES]
  proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
  ckpt = os.path.join(workdir, "checkpoints")
  deadline = time.time() + 600
  try:
    while time.time() < deadline and proc.poll() is None:
      done = [int(d) for d in os.listdir(ckpt) if d.isdigit()] if os.path.isdir(
          ckpt) else []
      if done and max(done) >= 10:
        break
      time.sleep(0.02)
    assert proc.poll() is None, f"run ended before it could be killed: {proc.stderr.read()[-2000:]}"
    proc.send_signal(signal.SIGKILL)  # at any moment, possibly during a save
  finally:
    proc.wait()
  assert proc.returncode == -signal.SIGKILL

  # Resumed with a checkpoint at the end only (the cadence is no part of the run).
  state = train_and_evaluate(run_config(f"--config.checkpoint_every={NUM_STEPS}"),
                             workdir)
  out = capsys.readouterr().out
  restored = int(out.split("restored step ")[1].split()[0])
  assert 10 <= restored < NUM_STEPS
  assert int(state.step) == NUM_STEPS
  diffs = jax.tree.map(lambda a, b: float(np.max(np.abs(np.asarray(a) - b))),
                       state.params, reference.params)
  assert max(jax.tree.leaves(diffs)) < 1e-5


@pytest.mark.slow
def test_init_from_starts_from_another_workdir(uninterrupted, tmp_path):
  """Fine-tuning: the parameters of the source's latest checkpoint, step 0, fresh
  optimizers; a source of another model config is refused."""
  from cca_jax.train.trainer import _init_params_from
  source, final = uninterrupted
  config = run_config()
  config.init_from = source
  params = _init_params_from(config)
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(params), final.params)
  # The source's config but for the length: its training step, compiled already.
  config.num_steps, config.eval_every = 2, 1000
  state = train_and_evaluate(config, str(tmp_path / "ft"))
  assert int(state.step) == 2
  other = run_config()
  other.init_from = source
  other.model.M = other.model.M + 8
  with pytest.raises(ValueError, match="another model config"):
    _init_params_from(other)


def test_validate_config_errors():
  c = load_config("tiny")
  c.batch_size = 3
  with pytest.raises(ValueError, match="multiple of the 2 devices"):
    validate_config(c, 2)
  c = load_config("tiny")
  c.patch_size = 100
  with pytest.raises(ValueError, match="multiple of 64"):
    validate_config(c, 1)


def test_cli_reports_bad_config_in_one_line(tmp_path):
  """Through the console script's ``train`` command (``python -m cca_jax.train`` is
  the kill-and-resume test's)."""
  out = subprocess.run(
      [sys.executable, "-m", "cca_jax.cli", "train",
       f"--config={os.path.join(ROOT, 'configs', 'tiny.py')}",
       f"--workdir={tmp_path}", "--config.data.train_dir=/nonexistent"],
      cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
  assert out.returncode == 1
  assert out.stderr.strip().splitlines()[-1].startswith("error: ")
  assert "Traceback" not in out.stderr
