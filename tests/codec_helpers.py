"""Shared helpers of the codec tests (tests/test_codec*.py, tests/test_export.py):
deterministic synthetic images and tiny-model bundles, built once per session."""

import numpy as np

_CACHE = {}


def synthetic_image(height: int, width: int, seed: int = 0) -> np.ndarray:
  """A deterministic uint8 RGB test image from integer arithmetic only (so that it is
  the same on every machine and numpy version): gradients, stripes and texture."""
  i = np.arange(height, dtype=np.int64)[:, None]
  j = np.arange(width, dtype=np.int64)[None, :]
  r = (i * 3 + j * 2 + seed * 17) % 256
  g = (i * j // 7 + (i * 37 + j * 91) % 53 + seed) % 256
  b = ((i // 8 + j // 8) % 2) * 160 + (i * 5 + j * 11 + seed * 3) % 96
  return np.stack(np.broadcast_arrays(r, g, b), axis=-1).astype(np.uint8)


def image_folder(path, count: int, shape, seed: int = 0):
  """A new folder of ``count`` synthetic PNGs ``im0.png`` .. (seeds ``seed`` ..)."""
  from PIL import Image
  path.mkdir()
  for i in range(count):
    Image.fromarray(synthetic_image(*shape, seed=seed + i)).save(path / f"im{i}.png")
  return path


def tiny_bundles(tiny_config, tiny_params) -> dict:
  """Bundles of the tiny config (cached for the session):

  * ``plain``: the seeded initialisation (``tiny_params``) as it is;
  * ``lively``: ``tests.lively_weights.lively_params`` (many symbols, scale levels, escapes);
  * ``calibrated``: lively latents with scales close to the residuals, so that the
    likelihood estimate is a meaningful reference for the real bits;
  * ``other``: ``plain`` with one weight changed (another model id).
  """
  if "bundles" not in _CACHE:
    from cca_jax.codec import make_bundle
    from tests.lively_weights import lively_params
    from cca_jax.model.cca import CCAModel
    from cca_jax.model.inference import inference_params
    cfg = tiny_config.model
    model = CCAModel.from_config(cfg, aux_model=False)
    params = inference_params(tiny_params)
    calib = synthetic_image(128, 128).astype(np.float32) / 255.0
    lively = lively_params(model, params, calib)
    calibrated = lively_params(model, params, calib, scale_std=0.5, scale_shift=4.0)
    other = {k: v for k, v in params.items()}
    other["h_a"] = {k: dict(v) for k, v in params["h_a"].items()}
    other["h_a"]["layers_4"]["bias"] = np.asarray(params["h_a"]["layers_4"]["bias"]) + 0.01
    _CACHE["bundles"] = {
        "plain": make_bundle(cfg, params, {"source": "test"}),
        "lively": make_bundle(cfg, lively, {"source": "test"}),
        "calibrated": make_bundle(cfg, calibrated, {"source": "test"}),
        "other": make_bundle(cfg, other, {"source": "test"}),
    }
  return _CACHE["bundles"]
