"""Keep freed memory mapped: glibc's malloc set up for XLA:CPU's per-call buffers.

XLA:CPU allocates each executable's temporary buffer afresh for every call (the paper
config's training step: 6.4 GiB; the shipped codec's programs: tens of MiB) and frees
it when the call returns. glibc serves such large requests with a fresh ``mmap``
(always so in the worker threads' arenas, whatever ``M_MMAP_MAX`` says) and returns
them with ``munmap``, so every call faults every page in again, 4 KiB at a time: 2
million page faults per paper-config step, seconds of kernel and user time
(docs/benchmarks.md, "Freed memory kept mapped").

``retain_freed_memory()`` sets, with ``mallopt``: one arena for every thread
(``M_ARENA_MAX=1``), no ``mmap`` for large requests (``M_MMAP_MAX=0``) and no
trimming of the heap (``M_TRIM_THRESHOLD`` at its maximum). Freed buffers then stay
in the heap and the next call reuses pages that are already mapped. The process's
resident size stays at its peak (what it would touch anyway at the next call). The
cost: XLA's compiler threads share the one arena (the paper config's programs compiled
1.3-1.45x as long in docs/benchmarks.md's runs; the small models' did not change).

It must run before any other thread allocates (a thread keeps the arena it got at its
first allocation), so the entry points (``cca-jax``, ``python -m cca_jax.train``,
the ``python -m`` tools) call it first, before importing numpy or jax. A library user
who wants the same calls it as their program's first statement, or sets
``GLIBC_TUNABLES=glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=...``
before Python starts. ``CCA_JAX_MALLOC=default`` turns it off. Linux with glibc only;
elsewhere a no-op.
"""

from __future__ import annotations

import ctypes
import os
import sys

_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8
OFF_ENV = "CCA_JAX_MALLOC"
_applied = None


def retain_freed_memory() -> bool:
  """Set glibc's malloc to keep freed memory mapped (see the module docstring).
  Returns whether the settings were applied (False off glibc, or when
  ``$CCA_JAX_MALLOC`` is ``default``). Idempotent."""
  global _applied
  if _applied is not None:
    return _applied
  _applied = False
  if os.environ.get(OFF_ENV, "") == "default" or not sys.platform.startswith("linux"):
    return False
  try:
    libc = ctypes.CDLL(None)
    mallopt = libc.mallopt
    libc.gnu_get_libc_version  # noqa: B018 -- glibc only (musl has no such settings)
  except (OSError, AttributeError):
    return False
  mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
  # mallopt's value is an int; glibc converts -1 to the largest size_t: never trim.
  _applied = all(mallopt(p, v) == 1 for p, v in ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0),
                                                  (_M_TRIM_THRESHOLD, -1)))
  return _applied
