"""Import (and export) official CCA PyTorch checkpoints.

  .venv/bin/python -m cca_jax.convert_torch CHECKPOINT.pth.tar --config configs/paper.py \
      --out DIR [--image IMG]

Reads a checkpoint (a dict with ``"state_dict"`` or a bare state dict; ``module.``
prefixes stripped), converts every parameter to the Flax layout and writes a weights
directory (``cca_jax.weights``). Auxiliary-model tensors are converted when present
and skipped (inference model only) when not. With ``--image`` it runs the evaluation
forward on that image as the official eval.py does and prints
``bpp_est=<...> psnr=<...>``. Reading ``.pth`` files needs PyTorch (CPU) installed.

Name mapping (``torch_to_flax_path``): split the name at dots; the main entropy
model's top-level lists (``mean_NAF_transforms`` ...) live under ``entropy_model``; a
numeric index directly after the top-level module becomes ``layers_<i>``, any other
index joins the previous part with ``_``: ``g_a.blocks.0.3.dwconv.1.weight`` ->
``g_a/blocks_0_3/dwconv_1/kernel``, ``h_a.2.bias`` -> ``h_a/layers_2/bias``.
Layouts: ``Conv2d`` weights ``(out, in, kh, kw) -> (kh, kw, in, out)``;
``ConvTranspose2d`` weights (``g_s.up.*``, ``h_mean_s.*``, ``h_scale_s.*``)
``(in, out, kh, kw) -> (kh, kw, in, out)``; NAF ``beta``/``gamma`` ``(1, C, 1, 1) ->
(C,)``; entropy-bottleneck tensors unchanged.
"""

from __future__ import annotations

import re
import sys

import numpy as np

_MAIN_EM_LISTS = ("mean_NAF_transforms", "scale_NAF_transforms", "mean_cc_transforms",
                  "scale_cc_transforms", "lrp_transforms")
_TRANSPOSED = re.compile(r"^(g_s\.up|h_mean_s|h_scale_s)\.")
_BUFFERS = {"_offset", "_quantized_cdf", "_cdf_length", "target", "scale_table",
            "scale_bound", "bound"}


class ConversionError(ValueError):
  """A checkpoint that does not fit the model (names the offending tensor)."""


def torch_to_flax_path(name: str) -> tuple[str, ...]:
  segs = name.split(".")
  if segs[0] in _MAIN_EM_LISTS:
    segs = ["entropy_model"] + segs
  out = [segs[0]]
  for s in segs[1:]:
    if s.isdigit():
      if len(out) == 1:
        out.append(f"layers_{s}")
      else:
        out[-1] += f"_{s}"
    else:
      out.append(s)
  return tuple(out)


def flax_to_torch_name(path: tuple[str, ...]) -> str:
  parts = []
  for i, comp in enumerate(path):
    if i == 0 and comp == "entropy_model":
      continue
    m = re.match(r"^(.*?)((?:_\d+)+)$", comp)
    if m and i > 0:
      base, idx = m.group(1), m.group(2)[1:].replace("_", ".")
      parts.append(idx if base == "layers" else f"{base}.{idx}")
    else:
      parts.append(comp)
  if parts[-1] == "kernel":
    parts[-1] = "weight"
  return ".".join(parts)


def is_buffer(name: str) -> bool:
  return name.split(".")[-1] in _BUFFERS


def _to_flax_layout(name: str, value: np.ndarray) -> np.ndarray:
  leaf = name.split(".")[-1]
  if leaf == "weight" and value.ndim == 4:
    if _TRANSPOSED.match(name):
      return value.transpose(2, 3, 0, 1)
    return value.transpose(2, 3, 1, 0)
  if leaf in ("beta", "gamma") and value.ndim == 4:
    return value.reshape(-1)
  return value


def _to_torch_layout(name: str, value: np.ndarray) -> np.ndarray:
  leaf = name.split(".")[-1]
  if leaf == "weight" and value.ndim == 4:
    if _TRANSPOSED.match(name):
      return value.transpose(2, 3, 0, 1)
    return value.transpose(3, 2, 0, 1)
  if leaf in ("beta", "gamma"):
    return value.reshape(1, -1, 1, 1)
  return value


def _flatten(tree, prefix=()):
  if isinstance(tree, dict):
    for k, v in tree.items():
      yield from _flatten(v, prefix + (k,))
  else:
    yield prefix, tree


def _unflatten(flat: dict) -> dict:
  out: dict = {}
  for path, v in flat.items():
    d = out
    for p in path[:-1]:
      d = d.setdefault(p, {})
    d[path[-1]] = v
  return out


def strip_prefix(state_dict: dict) -> dict:
  return {(k[len("module."):] if k.startswith("module.") else k): v
          for k, v in state_dict.items()}


def torch_to_flax(state_dict: dict, expected_shapes) -> dict:
  """Convert a PyTorch state dict (name -> numpy array) to a Flax parameter tree.

  ``expected_shapes`` is the model's parameter tree of shapes (``param_shapes``):
  every parameter must be filled exactly once with the right shape. Tensors of the
  auxiliary model are skipped when the model has none; buffers are ignored.
  """
  expected = {p: tuple(v.shape) for p, v in _flatten(expected_shapes)}
  has_aux = any(p[0] == "aux_entropymodel" for p in expected)
  flat = {}
  for name, value in strip_prefix(state_dict).items():
    if is_buffer(name):
      continue
    if not has_aux and name.startswith("aux_entropymodel."):
      continue
    path = torch_to_flax_path(name)
    value = np.asarray(value)
    if path not in expected:
      path = path[:-1] + ("kernel",) if path[-1] == "weight" else path
    if path not in expected:
      raise ConversionError(f"tensor {name!r} {tuple(value.shape)} has no counterpart "
                            "in the model (wrong config or not a CCA checkpoint?)")
    arr = _to_flax_layout(name, value)
    if tuple(arr.shape) != expected[path]:
      raise ConversionError(
          f"tensor {name!r}: shape {tuple(value.shape)} does not fit the model's "
          f"{'/'.join(path)} {expected[path]} (wrong config?)")
    flat[path] = arr.astype(np.float32)
  missing = [p for p in expected if p not in flat]
  if missing:
    names = [flax_to_torch_name(p) for p in missing[:5]]
    raise ConversionError(f"checkpoint lacks {len(missing)} tensor(s) the model needs, "
                          f"e.g. {', '.join(repr(n) for n in names)}")
  return _unflatten(flat)


def flax_to_torch(params) -> dict:
  """The inverse: a Flax parameter tree to an official-layout state dict (numpy)."""
  out = {}
  for path, v in _flatten(params):
    v = np.asarray(v)
    name = flax_to_torch_name(path)
    out[name] = _to_torch_layout(name, v)
  return out


def load_torch_checkpoint(path: str) -> dict:
  """Read a ``.pth``/``.pth.tar`` into ``name -> numpy array`` (needs torch)."""
  try:
    import torch
  except ImportError:
    raise ConversionError("reading PyTorch checkpoints needs torch: "
                          "pip install torch (a CPU build is enough)") from None
  try:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
  except FileNotFoundError:
    raise ConversionError(f"{path}: no such file") from None
  except Exception as e:  # torch raises many types for non-checkpoints
    raise ConversionError(f"{path}: not a readable PyTorch checkpoint "
                          f"({e.__class__.__name__})") from None
  if isinstance(ckpt, dict) and "state_dict" in ckpt:
    ckpt = ckpt["state_dict"]
  if not isinstance(ckpt, dict) or not all(isinstance(k, str) for k in ckpt):
    raise ConversionError(f"{path}: no state dict inside")
  out = {}
  for k, v in ckpt.items():
    if not hasattr(v, "detach"):
      raise ConversionError(f"{path}: entry {k!r} is not a tensor")
    out[k] = v.detach().cpu().float().numpy() if v.is_floating_point() else v.numpy()
  return out


def convert(checkpoint: str, model_cfg):
  """Checkpoint path -> ``(model_cfg with aux_model set, params)``."""
  from cca_jax.model import CCAModel, param_shapes
  sd = strip_prefix(load_torch_checkpoint(checkpoint))
  has_aux = any(k.startswith("aux_entropymodel.") for k in sd)
  model_cfg = model_cfg.copy_and_resolve_references()
  model_cfg.aux_model = has_aux
  model = CCAModel.from_config(model_cfg)
  return model_cfg, torch_to_flax(sd, param_shapes(model))


def main(argv=None) -> int:
  import argparse
  parser = argparse.ArgumentParser(
      prog="python -m cca_jax.convert_torch",
      description="Convert an official CCA PyTorch checkpoint to cca-jax weights.")
  parser.add_argument("checkpoint", help="official .pth / .pth.tar checkpoint")
  parser.add_argument("--config", required=True, help="config file, e.g. configs/paper.py")
  parser.add_argument("--out", required=True, help="output weights directory")
  parser.add_argument("--image", help="also run the evaluation forward on this image")
  parser.add_argument("--pad", type=int, default=128, help="padding multiple (default 128)")
  args = parser.parse_args(argv)

  from cca_jax.cli_util import fail, load_config_file
  try:
    cfg = load_config_file(args.config)
    model_cfg, params = convert(args.checkpoint, cfg.model)
  except (ConversionError, ValueError) as e:
    return fail(e)
  from cca_jax.weights import save_weights
  try:
    save_weights(args.out, params, model_cfg, {"source": args.checkpoint})
  except OSError as e:
    return fail(f"cannot write {args.out}: {e.strerror or e}")
  n = sum(int(np.prod(v.shape)) for _, v in _flatten(params))
  print(f"wrote {n:,} parameters to {args.out} (aux model: {model_cfg.aux_model})")
  if args.image:
    from cca_jax.estimate import estimate_image
    from cca_jax.image_io import ImageError, read_image
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
