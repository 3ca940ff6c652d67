"""The evaluation images: every PNG / JPEG / ... file of a folder, sorted by name,
read as 8-bit RGB (``image_io.read_image``: grayscale, palette, alpha and 16-bit
inputs are converted, with notes)."""

from __future__ import annotations

import os

import numpy as np

from cca_jax.utils.image_io import ImageError, read_image

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


def list_images(folder: str) -> list[str]:
  """Image files directly in ``folder`` (sorted); raises ``ImageError`` if none."""
  if not os.path.isdir(folder):
    raise ImageError(f"{folder}: no such directory")
  paths = sorted(os.path.join(folder, n) for n in os.listdir(folder)
                 if n.lower().endswith(EXTENSIONS)
                 and os.path.isfile(os.path.join(folder, n)))
  if not paths:
    raise ImageError(f"{folder}: no images ({', '.join(EXTENSIONS)})")
  return paths


def load_images(folder: str, limit: int | None = None,
                names: list[str] | None = None) -> tuple[list[tuple[str, np.ndarray]],
                                                         list[str]]:
  """``([(file name, uint8 (H, W, 3)), ...], notes)``: the first ``limit`` images of
  ``folder``, or only those in ``names``."""
  paths = list_images(folder)
  if names:
    wanted = set(names)
    missing = wanted - {os.path.basename(p) for p in paths}
    if missing:
      raise ImageError(f"{folder}: no image named {sorted(missing)[0]}")
    paths = [p for p in paths if os.path.basename(p) in wanted]
  if limit:
    paths = paths[:limit]
  images, notes = [], []
  for p in paths:
    x, n = read_image(p)
    images.append((os.path.basename(p),
                   np.round(x * np.float32(255.0)).astype(np.uint8)))
    notes += [f"{os.path.basename(p)}: {m}" for m in n]
  return images, notes
