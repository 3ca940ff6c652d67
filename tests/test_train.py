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

from conftest import ROOT, TRAIN_DATA, load_config
from cca_jax.model.cca import CCAModel
from cca_jax.train import checkpointing, input_pipeline
from cca_jax.train.state import create_train_state
from cca_jax.train.step import make_eval_step
from cca_jax.train.trainer import train_and_evaluate, validate_config

NUM_STEPS = 60
OVERRIDES = [f"--config.num_steps={NUM_STEPS}", "--config.checkpoint_every=5",
             "--config.log_every=20", "--config.eval_every=30",
             "--config.data.num_eval_images=2", "--config.data.eval_patch_size=64",
             "--config.milestone_step=40", f"--config.data.train_dir={TRAIN_DATA}"]


def run_config():
  c = load_config("tiny")
  for o in OVERRIDES:
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
def test_one_step_on_8_devices_equals_one_device():
  out = subprocess.run(
      [sys.executable, os.path.join(ROOT, "tests", "scripts", "data_parallel_step.py")],
      capture_output=True, text=True, env=_env(), timeout=900)
  assert out.returncode == 0, out.stderr[-2000:]
  r = json.loads(out.stdout.strip().splitlines()[-1])
  assert r["num_devices"] == 8 and r["param_devices_8"] == 8
  assert r["max_param_update"] > 1e-4  # the step did move the parameters
  assert r["max_param_diff"] < 1e-6 * max(1.0, r["max_param_update"] * 1e3)
  assert r["loss_8"] == pytest.approx(r["loss_1"], rel=1e-5)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("uninterrupted"))
  state = train_and_evaluate(run_config(), workdir)
  return workdir, jax.device_get(state)


@pytest.mark.slow
def test_training_reduces_the_loss(uninterrupted, capsys):
  workdir, final = uninterrupted
  config = run_config()
  model = CCAModel.from_config(config.model)
  initial = create_train_state(config, model)
  batches = input_pipeline.train_batches(config)
  x = np.concatenate([next(batches) for _ in range(4)])
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

  state = train_and_evaluate(run_config(), workdir)
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
  config.num_steps, config.eval_every, config.lmbda = 2, 1000, 6.0
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
