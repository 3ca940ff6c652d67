"""Reading and writing 8-bit RGB images (Pillow), with clear errors."""

from __future__ import annotations

import numpy as np


class ImageError(ValueError):
  """An input that is not a usable image (one-line message)."""


def read_image(path: str) -> tuple[np.ndarray, list[str]]:
  """Read an image as float32 RGB in [0, 1], ``(H, W, 3)``.

  Grayscale, palette, RGBA (alpha dropped) and 16-bit images are converted; the
  returned notes say what was converted so that a CLI can tell the user.
  """
  from PIL import Image, UnidentifiedImageError
  notes = []
  try:
    with Image.open(path) as im:
      im.load()
      mode = im.mode
      if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float64)
        hi = 65535.0 if arr.max(initial=0) > 255 or mode.startswith("I;16") else 255.0
        notes.append(f"converted {mode} (16-bit grayscale) to 8-bit RGB")
        arr = np.round(np.clip(arr / hi, 0, 1) * 255.0)
        arr = np.repeat(arr[..., None], 3, axis=-1)
        return (arr / 255.0).astype(np.float32), notes
      if mode != "RGB":
        if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
          notes.append(f"dropped the alpha channel of a {mode} image")
        else:
          notes.append(f"converted {mode} to RGB")
        im = im.convert("RGB")
      arr = np.asarray(im, dtype=np.uint8)
  except FileNotFoundError:
    raise ImageError(f"{path}: no such file") from None
  except IsADirectoryError:
    raise ImageError(f"{path}: is a directory") from None
  except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
    raise ImageError(f"{path}: not a readable image ({e.__class__.__name__})") from None
  if arr.ndim != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
    raise ImageError(f"{path}: empty image")
  return arr.astype(np.float32) / 255.0, notes


def to_uint8(x: np.ndarray) -> np.ndarray:
  """[0, 1] floats to 8-bit, rounding to nearest."""
  return np.round(np.clip(np.asarray(x, np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)


def png_bytes(image: np.ndarray) -> bytes:
  """An ``(H, W, 3)`` image (uint8, or floats in [0, 1]) as PNG file bytes."""
  import io
  from PIL import Image
  a = np.asarray(image)
  buf = io.BytesIO()
  Image.fromarray(a if a.dtype == np.uint8 else to_uint8(a)).save(buf, format="PNG")
  return buf.getvalue()
