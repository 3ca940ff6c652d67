"""JAX's persistent compilation cache, on by default for the command-line tools.

Compiling the training step or the codec's per-shape functions takes tens of seconds
on a CPU (minutes for the paper config); the cache makes every later start of the same
program (a resumed run, a second image of the same size) load it instead. Measured on
the 2-core CPU for configs/tiny.py: initialisation 27 s -> 5 s, training-step
compilation 59 s -> 16 s.

The directory is ``$CCA_JAX_CACHE_DIR``, else ``$XDG_CACHE_HOME/cca_jax/jax`` (by
default ``~/.cache/cca_jax/jax``); ``JAX_COMPILATION_CACHE_DIR``, if set, wins, and an
empty ``CCA_JAX_CACHE_DIR=""`` turns it off. Entries are keyed by the program, the
JAX version and the backend, so a stale entry is never used. ``executables=True`` (the
codec commands) also keeps the codec's compiled executables in its ``executables``
subdirectory (``executable_cache.py``: a new process skips tracing as well);
``CCA_JAX_EXECUTABLE_CACHE=0`` turns that part off.
"""

from __future__ import annotations

import os

import jax


def default_dir() -> str:
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
      os.path.expanduser("~"), ".cache")
  return os.path.join(base, "cca_jax", "jax")


def enable(path: str | None = None, executables: bool = False) -> str | None:
  """Turn the persistent cache on (``path`` or the default); returns the directory
  used, or ``None`` when it is turned off or cannot be created. ``executables``: the
  executable cache too, in ``<directory>/executables``."""
  path = _enable_jax_cache(path)
  if path and executables and os.environ.get("CCA_JAX_EXECUTABLE_CACHE", "1") != "0":
    from cca_jax.utils import executable_cache
    executable_cache.enable(os.path.join(path, "executables"))
  return path


def _enable_jax_cache(path: str | None) -> str | None:
  if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    return os.environ["JAX_COMPILATION_CACHE_DIR"]  # JAX reads it itself
  if path is None:
    path = os.environ.get("CCA_JAX_CACHE_DIR", default_dir())
  if not path:
    return None
  try:
    os.makedirs(path, exist_ok=True)
  except OSError:
    return None
  jax.config.update("jax_compilation_cache_dir", path)
  # Cache every compilation: the eager initialisation compiles hundreds of small
  # programs that together take longer than the training step.
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  return path
