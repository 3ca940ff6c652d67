"""Deepening a trained model: more NAF blocks per transform stage, same function.

A NAF block is the identity at initialisation (NAFNet's ``beta = gamma = 0``,
``layers.NAFBlock``), so a model with more NAF blocks per stage of g_a / g_s
(``ae_layers``) than a trained one computes exactly the trained model's function when
it takes the trained parameters and starts its added blocks fresh. Training on from
there adds transform capacity without starting over (tried on the shipped top rate,
whose transforms are its ceiling: two blocks per stage instead of one gained 0.01 dB
over the same training of the original, docs/benchmarks.md). Only ``ae_layers`` may differ;
each stage keeps its blocks in order and gains the new ones after its existing NAF
blocks (g_a: after the RBBs and NAF blocks; g_s: between its NAF blocks and RBBs).
"""

from __future__ import annotations


def deepening_error(src: dict, dst: dict) -> str | None:
  """Why a model of config ``src`` cannot be deepened into ``dst`` (plain-JSON model
  configs, ``config.model_config_dict``); None if it can."""
  other = sorted(k for k in set(src) | set(dst)
                 if k not in ("ae_layers", "aux_model") and src.get(k) != dst.get(k))
  if other:
    return f"the model configs differ in {', '.join(other)}, not only in ae_layers"
  a, b = list(src["ae_layers"]), list(dst["ae_layers"])
  if len(a) != len(b) or any(x > y for x, y in zip(a, b)):
    return f"ae_layers {b} does not extend {a} stage by stage"
  return None


def deepen_params(params: dict, src: dict, dst: dict) -> dict:
  """``params`` of a model of config ``src`` renamed for the deeper config ``dst``;
  the added NAF blocks are absent (the caller initialises them: the identity).
  Raises ValueError if ``dst`` is not ``src`` deepened."""
  why = deepening_error(src, dst)
  if why:
    raise ValueError(f"cannot deepen the model: {why}")
  out = dict(params)
  g_s = dict(params["g_s"])
  num_rbb = int(src["num_rbb"])
  # g_s runs the stages in reverse; stage s holds NAF blocks 0..n-1, then the RBBs.
  for s, (n_src, n_dst) in enumerate(zip(src["ae_layers"][::-1],
                                         dst["ae_layers"][::-1])):
    moved = {f"blocks_{s}_{n_dst + j}": g_s.pop(f"blocks_{s}_{n_src + j}")
             for j in range(num_rbb)}
    g_s.update(moved)
  out["g_s"] = g_s
  return out  # g_a: the added blocks come last in each stage, names unchanged
