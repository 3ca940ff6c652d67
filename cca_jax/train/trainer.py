"""``train_and_evaluate(config, workdir)``: the training loop (Flax-examples style).

Start (or resume) -> for each step: next global batch, jitted data-parallel step,
console/TensorBoard every ``log_every``, validation every ``eval_every``, an orbax
checkpoint every ``checkpoint_every`` and at the end. The step count, the schedules,
the noise and the data order are all functions of the step, so a run resumed from a
checkpoint continues exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import time

import jax
import numpy as np

from cca_jax.model.cca import CCAModel
from cca_jax.train import checkpointing, partitioning
from cca_jax.train.state import TrainState, create_train_state
from cca_jax.train.step import make_eval_step, make_train_step
from cca_jax.train.metric_writer import (MetricWriter, Throughput, format_eval_line,
                                     format_train_line)


def validate_config(config, num_devices: int) -> None:
  """Clear errors for configs that cannot run (before any compilation)."""
  for name in ("num_steps", "batch_size", "checkpoint_every", "log_every"):
    if int(config[name]) <= 0:
      raise ValueError(f"config.{name} must be positive, got {config[name]}")
  if config.batch_size % num_devices:
    raise ValueError(f"config.batch_size={config.batch_size} is not a multiple of the "
                     f"{num_devices} devices")
  if config.patch_size % 64:
    raise ValueError(f"config.patch_size={config.patch_size} is not a multiple of 64")
  if config.metric not in ("mse", "ms-ssim"):
    raise ValueError(f"config.metric={config.metric!r}: expected mse or ms-ssim")
  if config.metric == "ms-ssim" and config.patch_size <= 160:
    raise ValueError("MS-SSIM needs patches larger than 160 pixels "
                     f"(config.patch_size={config.patch_size})")


def _mean_metrics(history: list[dict]) -> dict:
  host = jax.device_get(history)
  return {k: np.mean([np.asarray(h[k]) for h in host], axis=0) for k in host[0]}


def evaluate(eval_step, params, images: np.ndarray, step: int, mesh,
             batch_size: int) -> dict:
  """Mean per-image validation metrics over ``images`` (all hosts hold all of them)."""
  n_dev = mesh.devices.size
  batch_size = max(n_dev, -(-batch_size // n_dev) * n_dev)
  sharding = partitioning.data_sharded(mesh)
  per_image = []
  for start in range(0, len(images), batch_size):
    chunk = images[start:start + batch_size]
    n = len(chunk)
    if n < batch_size:  # pad with copies of the last image, dropped below
      chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch_size - n, 0)])
    x = jax.make_array_from_callback(chunk.shape, sharding, lambda idx: chunk[idx])
    out = jax.device_get(eval_step(params, x, step))
    per_image.append({k: np.asarray(v)[:n] for k, v in out.items()})
  metrics = {k: float(np.mean(np.concatenate([p[k] for p in per_image])))
             for k in per_image[0]}
  metrics["num_images"] = len(images)
  return metrics


def _init_params_from(config):
  """The parameters of ``config.init_from``'s latest checkpoint (same model config,
  or with ``config.init_deepen`` one with fewer NAF blocks per stage, renamed for
  ``config.model`` with the added blocks left out)."""
  from cca_jax.config import model_config_dict
  from cca_jax.model import growth
  model_config, params, step = checkpointing.load_latest_params(config.init_from)
  del step
  if checkpointing.same_model_config(model_config, config.model):
    return params
  src, dst = model_config_dict(model_config), model_config_dict(config.model)
  why = growth.deepening_error(src, dst) if config.get("init_deepen") else None
  if not config.get("init_deepen") or why:
    raise ValueError(f"config.init_from={config.init_from} holds another model config"
                     + (f" ({why})" if why else ""))
  return growth.deepen_params(params, src, dst)


def _fresh_note(config) -> str:
  note = f"; initialised fresh: {config.init_fresh}" if config.get("init_fresh") else ""
  if config.get("init_deepen"):
    note += (f"; deepened to ae_layers {tuple(config.model.ae_layers)} (added NAF "
             "blocks start as the identity)")
  return note


def complete_params(config, model: CCAModel, params: dict) -> dict:
  """``params`` with the parts it lacks, and the groups named in
  ``config.init_fresh``, initialised from ``config.seed`` (a model bundle holds no
  auxiliary entropy model: fine-tuning from one trains a fresh one). Refuses
  parameters of another shape than ``config.model``'s."""
  from cca_jax.model.cca import init_params
  fresh = init_params(model, seed=config.seed)
  out = dict(fresh)
  reset = [n.strip() for n in config.get("init_fresh", "").split(",") if n.strip()]
  unknown = sorted(set(reset) - set(fresh))
  if unknown:
    raise ValueError(f"config.init_fresh names {', '.join(unknown)}: the model's "
                     f"parameter groups are {', '.join(sorted(fresh))}")
  for name, tree in params.items():
    if name not in fresh:
      raise ValueError(f"the initial parameters hold {name!r}, which the model config "
                       "does not have")
    if name in reset:
      continue
    if config.get("init_deepen") and name in ("g_a", "g_s"):
      tree = {**fresh[name], **tree}  # the added NAF blocks: identity at init
    if jax.tree.structure(tree) != jax.tree.structure(fresh[name]) or any(
        np.shape(a) != np.shape(b) for a, b in zip(jax.tree.leaves(tree),
                                                  jax.tree.leaves(fresh[name]))):
      raise ValueError(f"the initial parameters of {name!r} do not fit the model config")
    out[name] = jax.tree.map(lambda a: np.asarray(a, np.float32), tree)
  return out


def train_and_evaluate(config, workdir: str, init_params: dict | None = None
                       ) -> TrainState:
  """Train ``config`` in ``workdir`` (resuming the latest checkpoint there); returns
  the final state (replicated on the mesh). A fresh run starts from ``init_params``
  when given (parts it lacks, such as the auxiliary model that model bundles drop,
  are initialised), else from ``config.init_from``'s latest checkpoint, else from
  ``config.seed``."""
  from cca_jax.train import input_pipeline  # TensorFlow only where data is read

  mesh = partitioning.make_mesh()
  validate_config(config, mesh.devices.size)
  num_images = input_pipeline.dataset_size(config)  # fails early on a bad data path
  workdir = checkpointing.workdir_path(workdir)
  checkpointing.write_config(workdir, config)
  writer = MetricWriter(str(workdir / "tensorboard"))
  writer.print(f"cca-jax training: {jax.process_count()} process(es), "
               f"{mesh.devices.size} {jax.default_backend()} device(s), "
               f"global batch {config.batch_size}x{config.patch_size}x"
               f"{config.patch_size}, {num_images} training images "
               f"({num_images / config.batch_size:.1f} steps per epoch), "
               f"workdir {workdir}")

  model = CCAModel.from_config(config.model)
  manager = checkpointing.make_manager(workdir, config)
  t0 = time.perf_counter()
  if manager.latest_step() is not None:  # resume: no need to initialise
    abstract = jax.eval_shape(lambda: create_train_state(config, model))
    state, restored = checkpointing.restore_latest(
        manager, abstract, partitioning.replicated(mesh))
    writer.print(f"restored step {restored} from "
                 f"{checkpointing.checkpoint_dir(workdir)}")
  elif init_params is not None:
    state = partitioning.replicate(create_train_state(
        config, model, complete_params(config, model, init_params)), mesh)
    writer.print(f"fine-tuning from {config.init_from or 'the given parameters'}"
                 + ("" if "aux_entropymodel" in init_params else
                    " (a fresh auxiliary entropy model)") + _fresh_note(config))
  elif config.get("init_from"):
    params = _init_params_from(config)
    if config.get("init_fresh") or config.get("init_deepen"):
      params = complete_params(config, model, params)
    state = partitioning.replicate(create_train_state(config, model, params), mesh)
    writer.print(f"fine-tuning from the latest checkpoint of {config.init_from}"
                 + _fresh_note(config))
  else:
    state = partitioning.replicate(create_train_state(config, model), mesh)
    writer.print(f"initialised {sum(x.size for x in jax.tree.leaves(state.params)):,} "
                 f"parameters in {time.perf_counter() - t0:.1f} s")
  start = int(jax.device_get(state.step))

  train_step = partitioning.jit_train_step(make_train_step(config, model), mesh)
  eval_step = partitioning.jit_eval_step(make_eval_step(config, model), mesh)
  batches = input_pipeline.train_batches(config, start_step=start)
  # Validation images are read now: a bad eval_dir fails before any step, and every
  # tf.data function is traced at start-up (AutoGraph reads the source files when it
  # traces, so a file edited during a long run could break a late trace).
  eval_images = (input_pipeline.eval_images(config)
                 if config.eval_every and start < config.num_steps else None)

  history, throughput = [], None
  step = start
  for step in range(start + 1, config.num_steps + 1):
    x = partitioning.global_batch(next(batches), mesh)
    if throughput is None:
      t0 = time.perf_counter()
      train_step = train_step.lower(state, x).compile()
      writer.print(f"compiled the training step in {time.perf_counter() - t0:.1f} s")
      throughput = Throughput(step - 1)
    state, metrics = train_step(state, x)
    history.append(metrics)

    if step % config.log_every == 0 or step == config.num_steps:
      m = _mean_metrics(history)
      history = []
      steps_s, images_s = throughput.update(step, config.batch_size)
      writer.print(format_train_line(step, config.num_steps, steps_s, images_s, m))
      writer.scalars(step, "train", dict(m, steps_per_s=steps_s))

    # Checkpoint before validating: a failure in validation loses no training.
    preempted = manager.reached_preemption(step)
    if step % config.checkpoint_every == 0 or step == config.num_steps or preempted:
      checkpointing.save(manager, state, step)
      if preempted:
        writer.print(f"preemption signal: saved step {step}, stopping")
        break

    if config.eval_every and (step % config.eval_every == 0
                              or step == config.num_steps):
      em = evaluate(eval_step, state.params, eval_images, step, mesh,
                    config.eval_batch_size)
      writer.print(format_eval_line(step, em))
      writer.scalars(step, "eval", em)
      throughput.update(step, config.batch_size)  # exclude validation time

  manager.wait_until_finished()
  manager.close()
  writer.close()
  writer.print(f"done at step {step}: checkpoints in "
               f"{checkpointing.checkpoint_dir(workdir)}, TensorBoard logs in "
               f"{workdir / 'tensorboard'} (tensorboard --logdir "
               f"{workdir / 'tensorboard'})")
  return state
