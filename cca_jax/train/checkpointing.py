"""Checkpoints: a thin layer over orbax's ``CheckpointManager``.

Layout of a training workdir::

    WORKDIR/config.json          the full config of the run (written at start)
    WORKDIR/checkpoints/<step>/  orbax checkpoints: items 'state' (TrainState) and
                                 'meta' (JSON: step, config hash)
    WORKDIR/tensorboard/         TensorBoard summaries

Workdirs may be local paths or cloud storage (``gs://bucket/run``: orbax, TensorFlow
and ``etils.epath`` read and write both).

Saving is asynchronous where the platform allows (``async_checkpointing``); orbax
writes each checkpoint to a temporary directory and renames it when complete, so a
process killed at any moment (also during a save) leaves the last *complete*
checkpoint as the latest, and a restart resumes from it. The last
``keep_checkpoints`` are kept.
"""

from __future__ import annotations

import json
import os

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from cca_jax.model.cca import CCAModel, param_shapes
from cca_jax.utils.cli import one_line

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"


def workdir_path(workdir: str) -> epath.Path:
  """``workdir`` as a path; local paths made absolute, ``gs://...`` kept."""
  if "://" in str(workdir):
    return epath.Path(workdir)
  return epath.Path(os.path.abspath(workdir))


def checkpoint_dir(workdir: str) -> epath.Path:
  return workdir_path(workdir) / CHECKPOINT_DIR


def make_manager(workdir: str, config) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(
      max_to_keep=config.keep_checkpoints,
      enable_async_checkpointing=bool(config.async_checkpointing),
      create=True)
  return ocp.CheckpointManager(checkpoint_dir(workdir), options=options,
                               item_names=("state", "meta"))


def save(manager: ocp.CheckpointManager, state, step: int) -> bool:
  return manager.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state),
      meta=ocp.args.JsonSave({"step": int(step)})), force=True)


def restore_latest(manager: ocp.CheckpointManager, abstract_state, sharding):
  """Restore the latest checkpoint into the structure of ``abstract_state`` (e.g.
  ``jax.eval_shape`` of a fresh state), placed with ``sharding``. Returns
  ``(state, step)``, or ``(None, None)`` when there is no checkpoint."""
  step = manager.latest_step()
  if step is None:
    return None, None
  abstract = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
      abstract_state)
  restored = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract)))
  return restored["state"], step


def write_config(workdir: str, config) -> None:
  """Save the config next to the checkpoints (refuse a different model config)."""
  path = workdir_path(workdir) / CONFIG_FILE
  if path.exists():
    old = json.loads(path.read_text())
    if not same_model_config(old.get("model"), config.model):
      raise ValueError(f"{workdir} holds a run of another model config "
                       f"({path}); use a new --workdir")
  if jax.process_index() == 0:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / (CONFIG_FILE + ".tmp")
    tmp.write_text(config.to_json_best_effort(indent=2, sort_keys=True))
    tmp.replace(path)


def same_model_config(a, b) -> bool:
  """Whether two model configs (dicts or ``ConfigDict``s) are the same, compared as
  JSON (tuples and lists alike)."""
  def norm(c):
    if hasattr(c, "to_json_best_effort"):
      return json.loads(c.to_json_best_effort(sort_keys=True))
    return json.loads(json.dumps(c, sort_keys=True))
  return norm(a) == norm(b)


def load_latest_params(workdir: str):
  """Inference-side access to a training workdir: ``(model_config, params, step)``
  of its latest complete checkpoint (``model_config`` a plain dict)."""
  path = workdir_path(workdir) / CONFIG_FILE
  if not path.exists():
    raise ValueError(f"{workdir} is not a training workdir (no {CONFIG_FILE})")
  model_config = json.loads(path.read_text())["model"]
  manager = ocp.CheckpointManager(
      checkpoint_dir(workdir), item_names=("state", "meta"),
      options=ocp.CheckpointManagerOptions(create=False))
  step = manager.latest_step()
  if step is None:
    manager.close()
    raise ValueError(f"{workdir} has no complete checkpoint")
  # Only the parameters (a partial restore: the optimizer states, twice their size,
  # stay on disk; measured 0.6-1.1 s instead of 5-6 s for the tiny config), into
  # the shapes of config.json's model.
  shapes = param_shapes(CCAModel.from_config(model_config))
  item = {"params": jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)}
  misfit = (f"{workdir}: the checkpoint's parameters do not fit the model config of "
            f"its {CONFIG_FILE}")
  try:
    restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
        item=item, restore_args=ocp.checkpoint_utils.construct_restore_args(item),
        partial_restore=True)))
    params = jax.device_get(restored["state"]["params"])
    # orbax restores the stored shapes whatever the item says: compare them.
    fits = all(jax.tree.leaves(jax.tree.map(lambda s, a: s.shape == a.shape, shapes,
                                            params)))
  except (ValueError, KeyError) as e:  # another tree structure, a missing tensor
    raise ValueError(f"{misfit} ({one_line(e)})") from None
  finally:
    manager.close()
  if not fits:
    raise ValueError(misfit)
  return model_config, params, int(step)


def start_workdir(workdir: str, config, params) -> None:
  """A training workdir at step 0 holding ``params`` with fresh optimizer states (what
  ``python -m cca_jax.convert_torch`` writes for official weights): training with
  ``--workdir`` continues from it, ``init_from`` and ``export`` read it. Refuses a
  workdir that already has checkpoints."""
  from cca_jax.train.state import create_train_state
  manager = make_manager(workdir, config)
  if manager.latest_step() is not None:
    manager.close()
    raise ValueError(f"{workdir} already holds checkpoints; use a new directory")
  write_config(workdir, config)
  save(manager, create_train_state(config, params=params), 0)
  manager.wait_until_finished()
  manager.close()
