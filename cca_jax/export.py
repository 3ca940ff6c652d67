"""Export a trained model as one model bundle for the codec.

  .venv/bin/python -m cca_jax.export --workdir DIR --out MODEL.ccam [--weights float16]
      [--no-register]

``DIR`` is a training workdir (its latest complete checkpoint, via
``cca_jax.train.checkpointing.load_latest_params``; ``convert_torch`` writes one for
official checkpoints). The bundle holds the inference weights (the auxiliary entropy
model is dropped), the model config, the coding tables built from the weights
(``cca_jax.model.entropy.tables.build_tables``) and a content hash;
``cca_jax.codec.bundle`` documents the file. Exporting the same weights twice gives
byte-identical files when the provenance (``meta``) is the same. ``--weights float16``
stores the weights in float16 (half the file; the model becomes the rounded one, the
shipped models are made so; docs/benchmarks.md measures the rate cost). Every bundle
written is also registered (copied) in the per-user model directory
(``cca_jax.codec.registry``), so that ``cca-jax decompress`` finds it by the stream's
model id; ``--no-register`` skips that.

Exit codes: 0 success, 1 bad input (one-line ``error:`` message), 2 usage error.
"""

from __future__ import annotations

import json
import os
import sys


def load_source(workdir: str):
  """``(model_config, params, meta)`` of a training workdir's latest checkpoint."""
  if not os.path.isdir(workdir):
    raise ValueError(f"{workdir}: no such directory")
  try:
    from cca_jax.train.checkpointing import load_latest_params
  except ImportError:
    raise ValueError(f"{workdir}: reading training workdirs needs the training "
                     "dependencies (orbax-checkpoint)") from None
  model_cfg, params, step = load_latest_params(workdir)
  meta = {"source": "workdir", "path": workdir, "step": int(step)}
  try:
    with open(os.path.join(workdir, "config.json")) as f:
      train_cfg = json.load(f)
    meta.update({k: train_cfg[k] for k in ("lmbda", "metric") if k in train_cfg})
  except (OSError, ValueError):
    pass
  return model_cfg, params, meta


def write_bundle(model_cfg, params, meta: dict, out: str, weights_dtype: str,
                 register: bool = True) -> int:
  """The tools' bundle output (``export``, ``convert_torch``): write ``out``, say what
  it holds, register it unless told not to. Returns an exit code."""
  from cca_jax.codec.bundle import make_bundle, save_bundle
  from cca_jax.codec.errors import CodecError
  from cca_jax.utils.cli import fail
  if os.path.isdir(out):
    return fail(f"{out}: is a directory; --out names the bundle file")
  try:
    bundle = make_bundle(model_cfg, params, meta, weights_dtype=weights_dtype)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    save_bundle(bundle, out)
  except (CodecError, ValueError) as e:
    return fail(e)
  except OSError as e:
    return fail(f"cannot write {out}: {e.strerror or e}")
  import jax
  n = sum(int(a.size) for a in jax.tree.leaves(bundle.params))
  print(f"wrote {out}: {n:,} parameters, {bundle.tables.z.num_tables} z tables, "
        f"{bundle.tables.y.num_tables} y tables; model id {bundle.model_id.hex()} "
        f"(sha256 {bundle.sha256})")
  if register:
    from cca_jax.codec.registry import register as register_bundle
    try:
      print(f"registered as {register_bundle(out)} (cca-jax models lists it)")
    except (OSError, CodecError) as e:
      print(f"warning: not registered in the per-user model directory: {e}",
            file=sys.stderr)
  return 0


def main(argv=None) -> int:
  import argparse
  parser = argparse.ArgumentParser(
      prog="python -m cca_jax.export",
      description="Write a model bundle (inference weights, config, coding tables, "
                  "content hash) for cca-jax compress / decompress.")
  parser.add_argument("--workdir", required=True, help="training workdir")
  parser.add_argument("--out", required=True, help="output bundle, e.g. model.ccam")
  parser.add_argument("--weights", choices=("float32", "float16"), default="float32",
                      help="how the weights are stored (float16: half the file)")
  parser.add_argument("--no-register", action="store_true",
                      help="do not copy the bundle into the per-user model directory")
  args = parser.parse_args(argv)

  from cca_jax.utils.cli import fail
  try:
    model_cfg, params, meta = load_source(args.workdir)
  except ValueError as e:
    return fail(e)
  return write_bundle(model_cfg, params, meta, args.out, args.weights,
                      register=not args.no_register)


if __name__ == "__main__":
  sys.exit(main())
