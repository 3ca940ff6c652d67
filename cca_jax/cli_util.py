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
