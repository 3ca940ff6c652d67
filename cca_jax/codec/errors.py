"""The codec's one error type: bad input (corrupt stream, wrong model, bad image).

Its message is one line meant for the user; the CLI prints it as ``error: ...`` and
exits with status 1.
"""

from __future__ import annotations


class CodecError(ValueError):
  """Input the codec cannot use (one-line message)."""
