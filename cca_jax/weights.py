"""Model weights on disk: one directory with ``params.msgpack`` and ``model.json``.

``params.msgpack`` is ``flax.serialization.to_bytes`` of the Flax parameter tree;
``model.json`` holds the model config (``CCAModel`` fields) and provenance. Written by
``cca_jax.convert_torch`` (official checkpoints) and read by everything that needs a
trained model (``load_weights``). Files are written atomically.
"""

from __future__ import annotations

import json
import os

import ml_collections
import numpy as np

from cca_jax.atomic import atomic_write_bytes

PARAMS_FILE = "params.msgpack"
MODEL_FILE = "model.json"


def save_weights(directory: str, params, model_cfg, meta: dict | None = None) -> None:
  from flax import serialization
  os.makedirs(directory, exist_ok=True)
  import jax
  from cca_jax.config import model_config_dict
  params = jax.tree.map(np.asarray, params)
  cfg = model_config_dict(model_cfg)
  atomic_write_bytes(os.path.join(directory, PARAMS_FILE),
                     serialization.msgpack_serialize(params))
  doc = {"format": "cca-jax-weights", "version": 1, "model": cfg, "meta": meta or {}}
  atomic_write_bytes(os.path.join(directory, MODEL_FILE),
                (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())


def load_weights(directory: str):
  """Returns ``(model_config, params)``; raises ``ValueError`` with a clear message."""
  from flax import serialization
  mpath = os.path.join(directory, MODEL_FILE)
  ppath = os.path.join(directory, PARAMS_FILE)
  for p in (mpath, ppath):
    if not os.path.isfile(p):
      raise ValueError(f"{directory}: not a cca-jax weights directory (missing {os.path.basename(p)})")
  with open(mpath) as f:
    doc = json.load(f)
  if doc.get("format") != "cca-jax-weights":
    raise ValueError(f"{mpath}: not a cca-jax weights file")
  with open(ppath, "rb") as f:
    params = serialization.msgpack_restore(f.read())
  return ml_collections.ConfigDict(doc["model"]), params
