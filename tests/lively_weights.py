"""Random weights that exercise the coder (tests and benchmarks).

A freshly initialised model has latents near zero and negative raw scales: every y
symbol is 0 and every scale falls on the first table level, so a round trip would test
little. ``lively_params`` rescales the last layer of four networks of such a model so
that, on a calibration image, y has standard deviation ``y_std``, z has ``z_std`` and
each slice's raw scale is spread (std ``scale_std``, mean shifted by ``scale_shift``):
many distinct symbols, most of the 64 scale levels and some escapes. Nothing else
changes, and it is still an untrained model: its rates say nothing about compression.
"""

from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
import numpy as np

from cca_jax.codec.programs import analysis as _analysis


def _scale_layer(layer: dict, gain: float, shift: float = 0.0) -> None:
  layer["kernel"] = np.asarray(layer["kernel"], np.float32) * np.float32(gain)
  layer["bias"] = np.asarray(layer["bias"], np.float32) * np.float32(gain) + np.float32(shift)


def lively_params(model, params: dict, image: np.ndarray, y_std: float = 4.0,
                  z_std: float = 3.0, scale_std: float = 4.0,
                  scale_shift: float = 1.0) -> dict:
  """Rescaled copy of ``params`` (see the module docstring).

  Args:
    model: the ``CCAModel`` (``aux_model=False``) of ``params``.
    params: inference parameters.
    image: calibration image ``(H, W, 3)`` in [0, 1], sides multiples of 64.
  """
  p = copy.deepcopy(jax_to_numpy(params))
  x = jnp.asarray(image, jnp.float32)[None]
  last_down = f"down_{len(model.ae_dim)}"

  analysis = jax.jit(lambda p, x: model.apply({"params": p}, x,
                                               method=_analysis))
  y, _ = analysis(p, x)
  _scale_layer(p["g_a"][last_down], y_std / max(float(np.std(y)), 1e-12))
  _, z = analysis(p, x)
  _scale_layer(p["h_a"]["layers_4"], z_std / max(float(np.std(z)), 1e-12))
  scales = jax.jit(lambda p, x: model.apply({"params": p}, x, training=False)["scales"])
  for i, s in enumerate(scales(p, x)):
    s = np.asarray(s)
    layer = p["entropy_model"][f"scale_cc_transforms_{i}_4"]
    _scale_layer(layer, scale_std / max(float(s.std()), 1e-12),
                 scale_shift - float(s.mean()) * scale_std / max(float(s.std()), 1e-12))
  return p


def jax_to_numpy(tree):
  if isinstance(tree, dict):
    return {k: jax_to_numpy(v) for k, v in tree.items()}
  return np.asarray(tree)


def calibrated_bundle(cfg, image: np.ndarray, seed: int = 0):
  """A model bundle of config ``cfg`` with seeded random weights, its latents and
  scales calibrated on the top-left 128x128 of ``image`` (float, ``[0, 1]``):
  ``lively_params(scale_std=0.5, scale_shift=4)``, the benchmarks' stand-in for a
  trained model of a config (most symbols near zero, the scale levels of a trained
  model's range)."""
  from cca_jax.codec import make_bundle
  from cca_jax.model.cca import CCAModel, init_params
  from cca_jax.model.inference import inference_params
  params = inference_params(init_params(CCAModel.from_config(cfg), seed=seed))
  calib = np.asarray(image, np.float32)[:128, :128]
  params = lively_params(CCAModel.from_config(cfg, aux_model=False), params, calib,
                         scale_std=0.5, scale_shift=4.0)
  return make_bundle(cfg, params, {"source": "benchmark"})
