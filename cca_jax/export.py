"""Export a trained model as one model bundle for the codec.

  .venv/bin/python -m cca_jax.export --workdir DIR --out MODEL.ccam

``DIR`` is either a weights directory (``params.msgpack`` + ``model.json``, written by
``cca_jax.weights``, e.g. by ``convert_torch`` from the official checkpoints) or a
training workdir (its latest complete checkpoint, via
``cca_jax.train.checkpointing.load_latest_params``). The bundle holds the inference
weights (the auxiliary entropy model is dropped), the model config, the coding tables
built from the weights (``cca_jax.entropy.tables.build_tables``) and a content hash;
``cca_jax.codec.bundle`` documents the file. Exporting the same weights twice gives
byte-identical files when the provenance (``meta``) is the same.

Exit codes: 0 success, 1 bad input (one-line ``error:`` message), 2 usage error.
"""

from __future__ import annotations

import os
import sys

from cca_jax.weights import MODEL_FILE, PARAMS_FILE


def load_source(workdir: str):
  """``(model_config, params, meta)`` from a weights directory or a training workdir."""
  if not os.path.isdir(workdir):
    raise ValueError(f"{workdir}: no such directory")
  if (os.path.isfile(os.path.join(workdir, MODEL_FILE))
      and os.path.isfile(os.path.join(workdir, PARAMS_FILE))):
    from cca_jax.weights import load_weights
    model_cfg, params = load_weights(workdir)
    return model_cfg, params, {"source": "weights", "path": workdir}
  try:
    from cca_jax.train.checkpointing import load_latest_params
  except ImportError:
    raise ValueError(f"{workdir}: not a weights directory (no {MODEL_FILE} and "
                     f"{PARAMS_FILE}), and training support is not installed") from None
  model_cfg, params, step = load_latest_params(workdir)
  return model_cfg, params, {"source": "workdir", "path": workdir, "step": int(step)}


def export(workdir: str, out: str):
  """Build the bundle of ``workdir`` and write it to ``out``; returns the bundle."""
  from cca_jax.codec.bundle import make_bundle, save_bundle
  model_cfg, params, meta = load_source(workdir)
  bundle = make_bundle(model_cfg, params, meta)
  save_bundle(bundle, out)
  return bundle


def main(argv=None) -> int:
  import argparse
  parser = argparse.ArgumentParser(
      prog="python -m cca_jax.export",
      description="Write a model bundle (inference weights, config, coding tables, "
                  "content hash) for cca-jax compress / decompress.")
  parser.add_argument("--workdir", required=True,
                      help="weights directory (params.msgpack + model.json) or "
                           "training workdir")
  parser.add_argument("--out", required=True, help="output bundle, e.g. model.ccam")
  args = parser.parse_args(argv)

  from cca_jax.cli_util import fail
  from cca_jax.codec.errors import CodecError
  if os.path.isdir(args.out):
    return fail(f"{args.out}: is a directory; --out names the bundle file")
  try:
    bundle = export(args.workdir, args.out)
  except (CodecError, ValueError) as e:
    return fail(e)
  except OSError as e:
    return fail(f"cannot write {args.out}: {e.strerror or e}")
  n = sum(int(a.size) for a in _leaves(bundle.params))
  print(f"wrote {args.out}: {n:,} parameters, {bundle.tables.z.num_tables} z tables, "
        f"{bundle.tables.y.num_tables} y tables; model id {bundle.model_id.hex()} "
        f"(sha256 {bundle.sha256})")
  return 0


def _leaves(tree):
  if isinstance(tree, dict):
    for v in tree.values():
      yield from _leaves(v)
  else:
    yield tree


if __name__ == "__main__":
  sys.exit(main())
