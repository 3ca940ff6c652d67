"""Parameter counts per module of ``CCAModel`` and its channel groups, traced with
``jax.eval_shape`` (nothing is allocated). For the paper config: 64,988,067 (inference
model, quantiles included) and 94,253,423 (with the auxiliary entropy model), groups
[8, 28, 56, 92, 136], as the official PyTorch model has them.
"""

from __future__ import annotations

import math
import re

# (row label, top-level module, regex on the flattened parameter path below it)
_ROWS = (
    ("g_a (analysis)", "g_a", ""),
    ("g_s (synthesis)", "g_s", ""),
    ("h_a (hyper-analysis)", "h_a", ""),
    ("h_mean_s (hyper-synthesis, means)", "h_mean_s", ""),
    ("h_scale_s (hyper-synthesis, scales)", "h_scale_s", ""),
    ("EM NAF transforms (mean+scale)", "entropy_model", r"_NAF_transforms_"),
    ("EM cc heads (mean+scale)", "entropy_model", r"_cc_transforms_"),
    ("EM latent residual prediction", "entropy_model", r"^lrp_transforms_"),
    ("z entropy bottleneck: density", "z_entropy_bottleneck", r"^(matrices|biases|factors)_"),
    ("z entropy bottleneck: quantiles", "z_entropy_bottleneck", r"^quantiles$"),
    ("aux EM NAF transforms", "aux_entropymodel", r"_NAF_transforms_"),
    ("aux EM cc heads", "aux_entropymodel", r"_cc_transforms_"),
    ("aux EM LRP", "aux_entropymodel", r"^lrp_transforms_"),
    ("aux EM y bottleneck: density", "aux_entropymodel",
     r"^y_entropy_bottleneck/(matrices|biases|factors)_"),
    ("aux EM y bottleneck: quantiles", "aux_entropymodel",
     r"^y_entropy_bottleneck/quantiles$"),
)


def count_params(tree) -> dict[str, int]:
  """Flattened ``'a/b/c' -> size`` of a parameter (or shape) tree."""
  import jax
  out = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    name = "/".join(str(getattr(p, "key", p)) for p in path)
    out[name] = int(math.prod(leaf.shape))
  return out


def summarize(model_cfg) -> dict:
  """Counts per row, the inference and training totals, and the slice sizes."""
  from cca_jax.model.cca import CCAModel, param_shapes
  model = CCAModel.from_config(model_cfg, aux_model=True)
  counts = count_params(param_shapes(model))
  rows = []
  for label, top, pattern in _ROWS:
    n = sum(v for k, v in counts.items()
            if k.split("/")[0] == top and re.search(pattern, k.split("/", 1)[1]))
    rows.append((label, n))
  total = sum(counts.values())
  aux = sum(v for k, v in counts.items() if k.startswith("aux_entropymodel/"))
  covered = sum(n for _, n in rows)
  if covered != total:  # every parameter must be in exactly one row
    raise AssertionError(f"summary rows cover {covered} of {total} parameters")
  return {"rows": rows, "inference": total - aux, "aux": aux, "training": total,
          "sizes": model.sizes}


def format_summary(s: dict) -> str:
  lines = [f"{'module':<40} {'params':>12}"]
  lines += [f"{label:<40} {n:>12,}" for label, n in s["rows"]]
  lines += [
      "-" * 53,
      f"{'inference model (quantiles included)':<40} {s['inference']:>12,}",
      f"{'auxiliary entropy model':<40} {s['aux']:>12,}",
      f"{'training total (main + aux)':<40} {s['training']:>12,}",
      f"channel groups: {s['sizes']}",
  ]
  return "\n".join(lines)
