"""Helpers shared by the command-line entry points: config loading, clean errors."""

from __future__ import annotations

import importlib.util
import os
import sys


def fail(message, code: int = 1) -> int:
  """Print a one-line error to stderr and return the exit code."""
  text = str(message).strip().splitlines()[0] if str(message).strip() else "failed"
  print(f"error: {text}", file=sys.stderr)
  return code


def fail_with(e: BaseException) -> int:
  """The one-line error of an expected failure: bad input (``ValueError``,
  ``CodecError``, ``ImageError``: code 1), a file (``OSError``: its file name and
  reason, code 1) or Ctrl-C / SIGTERM (``KeyboardInterrupt``: code 130)."""
  if isinstance(e, KeyboardInterrupt):
    return fail("interrupted", 130)
  if isinstance(e, OSError) and e.filename and e.strerror:
    return fail(f"{e.filename}: {e.strerror}")
  return fail(e)


def load_config_file(spec: str):
  """Load ``path/to/config.py[:arg]`` and return its ``get_config(arg)``."""
  path, _, arg = spec.partition(":")
  if not os.path.isfile(path):
    raise ValueError(f"config file {path!r} not found")
  module_spec = importlib.util.spec_from_file_location("_cca_config", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  if not hasattr(module, "get_config"):
    raise ValueError(f"config file {path!r} has no get_config()")
  return module.get_config(arg or None)
