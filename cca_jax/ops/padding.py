"""Centred zero padding to a multiple of the model's stride, and cropping back.

The official evaluation pads each side to a multiple of 128 with zeros, split
``left = floor(delta / 2)``, ``right = delta - left`` (official eval.py).
"""

from __future__ import annotations

import numpy as np

DEFAULT_MULTIPLE = 128


def padding_for(height: int, width: int, multiple: int = DEFAULT_MULTIPLE):
  """``((top, bottom), (left, right))`` to pad an image to a multiple of ``multiple``."""
  if multiple < 1:
    raise ValueError(f"padding multiple must be positive, got {multiple}")
  dh = -height % multiple
  dw = -width % multiple
  return (dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2)


def pad_centered(x, multiple: int = DEFAULT_MULTIPLE):
  """Pad an ``(..., H, W, C)`` array with zeros; returns ``(padded, padding)``."""
  (t, b), (l, r) = padding_for(x.shape[-3], x.shape[-2], multiple)
  widths = [(0, 0)] * (x.ndim - 3) + [(t, b), (l, r), (0, 0)]
  return np.pad(np.asarray(x), widths), ((t, b), (l, r))


def crop(x, padding):
  """Undo ``pad_centered`` on an ``(..., H, W, C)`` array."""
  (t, b), (l, r) = padding
  h, w = x.shape[-3], x.shape[-2]
  return x[..., t:h - b, l:w - r, :]
