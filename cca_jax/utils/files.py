"""Atomic file writes: a temp file in the same folder, then a rename, so a failure or
a kill never leaves a partial output file."""

from __future__ import annotations

import os


def atomic_write_bytes(path: str, data: bytes) -> None:
  """Write ``data`` to ``path`` through a temp file in the same folder + rename.
  Raises ``OSError`` naming ``path`` (is a directory, no such directory, permission
  denied)."""
  directory = os.path.dirname(os.path.abspath(path))
  if os.path.isdir(path):
    raise OSError(21, "is a directory", path)
  if not os.path.isdir(directory):
    raise OSError(2, f"no such directory {directory}", path)
  tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp-{os.getpid()}")
  try:
    with open(tmp, "wb") as f:
      f.write(data)
    os.replace(tmp, path)
  except PermissionError:
    raise OSError(13, "permission denied", path) from None
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
