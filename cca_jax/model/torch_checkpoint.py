"""Official CCA PyTorch checkpoints (official models/vae.py, models/aux_em.py state
dicts) to Flax parameters and back.

``load_torch_checkpoint`` reads a checkpoint (a dict with ``"state_dict"`` or a bare
state dict; ``module.`` prefixes stripped; needs PyTorch, a CPU build is enough);
``torch_to_flax`` converts every parameter to the Flax layout, the auxiliary model's
tensors when the model has one; ``flax_to_torch`` is the inverse. The tool is
``python -m cca_jax.convert_torch``.

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

import numpy as np
from flax import traverse_util

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


def strip_prefix(state_dict: dict) -> dict:
  return {(k[len("module."):] if k.startswith("module.") else k): v
          for k, v in state_dict.items()}


def torch_to_flax(state_dict: dict, expected_shapes) -> dict:
  """Convert a PyTorch state dict (name -> numpy array) to a Flax parameter tree.

  ``expected_shapes`` is the model's parameter tree of shapes (``param_shapes``):
  every parameter must be filled exactly once with the right shape. Tensors of the
  auxiliary model are skipped when the model has none; buffers are ignored.
  """
  expected = {p: tuple(v.shape)
              for p, v in traverse_util.flatten_dict(expected_shapes).items()}
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
  return traverse_util.unflatten_dict(flat)


def flax_to_torch(params) -> dict:
  """The inverse: a Flax parameter tree to an official-layout state dict (numpy)."""
  out = {}
  for path, v in traverse_util.flatten_dict(params).items():
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
  from cca_jax.model.cca import CCAModel, param_shapes
  sd = strip_prefix(load_torch_checkpoint(checkpoint))
  has_aux = any(k.startswith("aux_entropymodel.") for k in sd)
  model_cfg = model_cfg.copy_and_resolve_references()
  model_cfg.aux_model = has_aux
  model = CCAModel.from_config(model_cfg)
  return model_cfg, torch_to_flax(sd, param_shapes(model))
