"""Helpers shared by the command-line entry points: one-line errors and exit codes, the
codec's XLA flags."""

from __future__ import annotations

import os
import sys


def one_line(message) -> str:
  """The line of an error message that says what went wrong: its first line, or
  its last when the first only introduces a trace (TensorFlow's "in user code:")."""
  lines = [line.strip() for line in str(message).strip().splitlines() if line.strip()]
  if not lines:
    return "failed"
  return lines[-1] if lines[0].endswith(":") and len(lines) > 1 else lines[0]


def fail(message, code: int = 1) -> int:
  """Print a one-line error to stderr and return the exit code."""
  print(f"error: {one_line(message)}", file=sys.stderr)
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


# The codec's XLA:CPU setting: YNNPACK for convolutions as well as for matrix products
# (XLA's default is matrix products only). Measured side by side
# (benchmarks/xla_flags.py, docs/benchmarks.md): codec time 0.93x for the shipped
# models, 0.86x for the paper config; the integer entropy parameters, and so the
# streams, are the same bytes either way.
CODEC_XLA_FLAGS = ("--xla_cpu_experimental_ynn_fusion_type="
                   "individual_dot,individual_convolution")


def use_codec_xla_flags() -> None:
  """Add ``CODEC_XLA_FLAGS`` to ``XLA_FLAGS`` for this process, before JAX starts
  its backend (the codec commands, ``compare``, ``evaluate``). A user's own
  ``--xla_cpu_experimental_ynn_fusion_type`` wins; once a backend is running, nothing
  changes."""
  flags = os.environ.get("XLA_FLAGS", "")
  if "xla_cpu_experimental_ynn_fusion_type" in flags:
    return
  try:
    from jax._src import xla_bridge
    if xla_bridge.backends_are_initialized():
      return
  except (ImportError, AttributeError):
    return
  os.environ["XLA_FLAGS"] = f"{flags} {CODEC_XLA_FLAGS}".strip()
