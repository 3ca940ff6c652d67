"""The evaluation results file, and atomic writes of every output.

A results file (``cca_jax.evaluate --out``) is one JSON object::

  {"format": "cca-jax-eval", "version": 1,
   "dataset": {"path": ..., "name": "kodak", "images": [...], "num_images": 24},
   "environment": {...versions, device, date...}, "command": "...",
   "curves": [curve, ...],                     # curves.py
   "visual": {"image": "kodim20.png", "original": "DIR/original.png",
              "reconstructions": {curve name: [path per point, ...]}}   # optional

Paths inside ``visual`` are relative to the results file. NaN / inf are written as
JSON's non-standard ``NaN`` / ``Infinity`` (Python's json reads them back).
"""

from __future__ import annotations

import json
import os

from cca_jax.utils.files import atomic_write_bytes

FORMAT = "cca-jax-eval"
VERSION = 1


def write_json(path: str, doc: dict) -> None:
  atomic_write_bytes(path, (json.dumps(doc, indent=1) + "\n").encode())


def read_results(path: str) -> dict:
  """Read and check a results file; raises ``ValueError`` with a one-line message."""
  try:
    with open(path) as f:
      doc = json.load(f)
  except FileNotFoundError:
    raise ValueError(f"{path}: no such file") from None
  except IsADirectoryError:
    raise ValueError(f"{path}: is a directory") from None
  except (json.JSONDecodeError, UnicodeDecodeError):
    raise ValueError(f"{path}: not a JSON results file") from None
  if not isinstance(doc, dict) or doc.get("format") != FORMAT:
    raise ValueError(f"{path}: not a cca-jax evaluation results file")
  if doc.get("version") != VERSION:
    raise ValueError(f"{path}: results version {doc.get('version')} is not supported")
  curves = doc.get("curves")
  if not isinstance(curves, list) or any(
      not isinstance(c, dict) or "name" not in c or not isinstance(c.get("points"), list)
      for c in curves):
    raise ValueError(f"{path}: malformed results (curves)")
  doc["_path"] = os.path.abspath(path)
  return doc


def save_png(path: str, image) -> None:
  """An 8-bit RGB array as a PNG, atomically."""
  from cca_jax.utils.image_io import png_bytes
  atomic_write_bytes(path, png_bytes(image))
