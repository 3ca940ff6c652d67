"""The learned codec measured on real bitstreams (``cca_jax.codec``), per image:

* ``encode`` then ``decode`` the stream (each timed, wall clock, device work waited
  for); the rate is ``8 * len(stream) / (H * W)`` (``bpp``: every byte, header
  included), ``bpp_payload`` without the header (the official ``--real`` count: the
  entropy-coded z and y parts only), and ``bpp_z`` / ``bpp_y`` per part;
* quality of the decoder's output: clamped float (the paper's protocol, ``psnr``,
  ``ms_ssim``) and the 8-bit PNG a user gets (``*_8bit``); the float output is the
  decoder's own synthesis of its ``y_hat`` (the compiled ``synthesis`` step again);
* the estimated rate of the evaluation forward (``estimate.estimate_image``, the
  official default protocol): ``bpp_est`` (y + z), ``bpp_est_y``, ``bpp_est_z``, the
  y bits of every slice (``slice_bits``, for ``information.py``) and the forward's PSNR
  (``psnr_forward``).

The first image of each padded size is coded once untimed before it is measured
(compilation, caches), so times are steady-state; ``roundtrip_exact`` checks that the
decoder rebuilt exactly the encoder's latents.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence

import numpy as np

from cca_jax.eval import metrics
from cca_jax.eval.curves import summarize
from cca_jax.ops.padding import DEFAULT_MULTIPLE, crop


def float_output(bundle, decoded) -> np.ndarray:
  """The decoder's reconstruction as float in [0, 1] (clamped, cropped, not rounded):
  the same compiled synthesis as ``decode`` on its ``y_hat``."""
  from cca_jax.model.entropy.context import split_slices
  y_hat = tuple(split_slices(decoded.y_hat, bundle.model.sizes))
  x_hat = np.asarray(bundle.programs.synthesis(bundle.device_params, y_hat))
  return np.clip(crop(x_hat, decoded.header.padding)[0], 0.0, 1.0)


def code_image(bundle, image: np.ndarray, multiple: int = DEFAULT_MULTIPLE,
               estimate: bool = True, optimize: int = 0):
  """Code one ``(H, W, 3)`` uint8 image: ``(record, decoded uint8 image)``.
  ``optimize``: the encoder's latent optimisation steps (``codec.encode``)."""
  from cca_jax.codec import decode, encode
  t = time.perf_counter()
  enc = encode(bundle, image, multiple, optimize=optimize)
  t_enc = time.perf_counter() - t
  t = time.perf_counter()
  dec = decode(bundle, enc.data)
  t_dec = time.perf_counter() - t
  h = dec.header
  npix = image.shape[0] * image.shape[1]
  rec = {
      "pixels": npix, "bytes": len(enc.data), "header_bytes": h.header_size,
      "z_bytes": h.z_length, "y_bytes": h.y_length,
      "bpp": 8.0 * len(enc.data) / npix,
      "bpp_payload": 8.0 * (h.z_length + h.y_length) / npix,
      "bpp_z": 8.0 * h.z_length / npix, "bpp_y": 8.0 * h.y_length / npix,
  }
  x_hat = float_output(bundle, dec)
  rec.update(metrics.model_quality(image, x_hat))
  if estimate:
    from cca_jax.model.inference import estimate_image
    est = estimate_image(bundle.config, bundle.params, metrics.as_float(image), multiple)
    rec.update({"bpp_est": est["bpp_est"], "bpp_est_y": est["bpp_y"],
                "bpp_est_z": est["bpp_z"], "psnr_forward": est["psnr"],
                "slice_bits": [float(b) for b in est["slice_bits"]]})
  rec.update({"encode_s": t_enc, "decode_s": t_dec,
              "roundtrip_exact": bool(np.array_equal(enc.y_hat, dec.y_hat)
                                      and np.array_equal(enc.z_hat, dec.z_hat))})
  return rec, dec.image


def model_setting(bundle, path: str | None) -> dict:
  """How a point names its model: file, id, provenance, slice sizes, and the training
  lambda when the bundle was exported from a training workdir that is still there."""
  setting = {"model": os.path.basename(path) if path else bundle.describe(),
             "path": path, "model_id": bundle.model_id.hex(), "meta": dict(bundle.meta),
             "M": int(bundle.model.M),
             "slice_sizes": [int(s) for s in bundle.model.sizes]}
  lmbda = _workdir_lambda(bundle.meta)
  if lmbda is not None:
    setting["lmbda"] = lmbda
  return setting


def _workdir_lambda(meta: dict) -> float | None:
  if isinstance(meta.get("lmbda"), (int, float)):  # exported with it (cca_jax.export)
    return float(meta["lmbda"])
  if meta.get("source") != "workdir" or not meta.get("path"):
    return None
  try:
    with open(os.path.join(meta["path"], "config.json")) as f:
      return float(json.load(f)["lmbda"])
  except (OSError, ValueError, KeyError, TypeError):
    return None


def expand_models(specs) -> list[str]:
  """Model arguments to bundle files: a directory stands for its ``*.ccam`` files."""
  from cca_jax.codec.bundle import bundle_files
  out = []
  for spec in specs:
    if os.path.isdir(spec):
      found = bundle_files(spec)
      if not found:
        raise ValueError(f"{spec}: no model bundles (*.ccam) in this directory")
      out += found
    else:
      out.append(spec)
  return out


def evaluate_model(bundle, images: Sequence[tuple[str, np.ndarray]],
                   path: str | None = None, multiple: int = DEFAULT_MULTIPLE,
                   estimate: bool = True, warmup: bool = True, progress=None,
                   keep: Callable[[str, np.ndarray], None] | None = None,
                   optimize: int = 0) -> dict:
  """One RD point: ``bundle`` over ``images`` (``(name, uint8)`` pairs)."""
  from cca_jax.ops.padding import padding_for
  seen = set()
  recs = []
  for name, image in images:
    (t, b), (l, r) = padding_for(image.shape[0], image.shape[1], multiple)
    shape = (image.shape[0] + t + b, image.shape[1] + l + r)
    if warmup and shape not in seen:
      code_image(bundle, image, multiple, estimate, optimize)
    seen.add(shape)
    rec, decoded = code_image(bundle, image, multiple, estimate, optimize)
    recs.append({"image": name, **rec})
    if keep is not None:
      keep(name, decoded)
    if progress is not None:
      progress.update(1)
  summary = summarize(recs)
  summary["roundtrip_exact"] = all(r["roundtrip_exact"] for r in recs)
  setting = model_setting(bundle, path)
  setting["multiple"] = int(multiple)
  setting["optimize"] = int(optimize)
  return {"setting": setting, "summary": summary, "images": recs}
