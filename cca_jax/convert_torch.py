"""Convert an official CCA PyTorch checkpoint to a model bundle or a training workdir.

  .venv/bin/python -m cca_jax.convert_torch CHECKPOINT.pth.tar --config configs/paper.py \
      --out MODEL.ccam [--weights float16] [--no-register] [--image IMG]
  .venv/bin/python -m cca_jax.convert_torch CHECKPOINT.pth.tar --config configs/paper.py \
      --out WORKDIR

``--out`` ending in ``.ccam`` writes a model bundle for ``cca-jax compress`` (the
inference model, as ``python -m cca_jax.export`` writes it, registered in the per-user
model directory unless ``--no-register``); any other ``--out`` is a new training
workdir at step 0 holding every converted parameter (the auxiliary model's too, when
the checkpoint has it) with fresh optimizers: training continues from it (a
fine-tune), ``init_from`` and ``export`` read it. The names and layouts are
``cca_jax.model.torch_checkpoint``'s. With ``--image`` it runs the evaluation forward
on that image as the official eval.py does and prints ``bpp_est=<...> psnr=<...>``.
Reading ``.pth`` files needs PyTorch (CPU) installed.

Exit codes: 0 success, 1 bad input (one-line ``error:`` message), 2 usage error.
"""

from __future__ import annotations

import sys

from cca_jax.model.torch_checkpoint import ConversionError, convert


def main(argv=None) -> int:
  import argparse
  parser = argparse.ArgumentParser(
      prog="python -m cca_jax.convert_torch",
      description="Convert an official CCA PyTorch checkpoint to a model bundle "
                  "(--out NAME.ccam) or a training workdir (--out DIR).")
  parser.add_argument("checkpoint", help="official .pth / .pth.tar checkpoint")
  parser.add_argument("--config", required=True, help="config file, e.g. configs/paper.py")
  parser.add_argument("--out", required=True,
                      help="model bundle (NAME.ccam) or new training workdir")
  parser.add_argument("--weights", choices=("float32", "float16"), default="float32",
                      help="how a bundle stores the weights (float16: half the file)")
  parser.add_argument("--no-register", action="store_true",
                      help="do not copy a bundle into the per-user model directory")
  parser.add_argument("--image", help="also run the evaluation forward on this image")
  parser.add_argument("--pad", type=int, default=128, help="padding multiple (default 128)")
  args = parser.parse_args(argv)

  import os

  from cca_jax.codec.bundle import SUFFIX
  from cca_jax.config import load_config_file
  from cca_jax.utils.cli import fail
  bundle_out = args.out.endswith(SUFFIX)
  if not bundle_out and os.path.exists(args.out) and (
      not os.path.isdir(args.out) or os.listdir(args.out)):
    return fail(f"{args.out}: exists and is not an empty folder; --out names a new "
                f"workdir or a {SUFFIX} bundle")
  try:
    cfg = load_config_file(args.config)
    model_cfg, params = convert(args.checkpoint, cfg.model)
  except (ConversionError, ValueError) as e:
    return fail(e)
  if bundle_out:
    from cca_jax.export import write_bundle
    rc = write_bundle(model_cfg, params, {"source": args.checkpoint}, args.out,
                      args.weights, register=not args.no_register)
    if rc:
      return rc
  else:
    from cca_jax.train.checkpointing import start_workdir
    cfg.model = model_cfg
    try:
      start_workdir(args.out, cfg, params)
    except ValueError as e:
      return fail(e)
    except OSError as e:
      return fail(f"cannot write {args.out}: {e.strerror or e}")
    import jax
    n = sum(int(a.size) for a in jax.tree.leaves(params))
    print(f"wrote a training workdir at step 0 with {n:,} parameters to {args.out} "
          f"(aux model: {model_cfg.aux_model})")
  if args.image:
    from cca_jax.model.inference import estimate_image
    from cca_jax.utils.image_io import ImageError, read_image
    try:
      x, notes = read_image(args.image)
    except ImageError as e:
      return fail(e)
    for note in notes:
      print(f"note: {note}", file=sys.stderr)
    r = estimate_image(model_cfg, params, x, multiple=args.pad)
    print(f"bpp_est={r['bpp_est']:.6f} psnr={r['psnr']:.4f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
