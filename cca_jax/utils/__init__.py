"""Utilities of the tools, gathered in one place (as big_vision's utils): nothing here
knows the model.

  files.py              atomic file writes (temporary file + rename)
  image_io.py           reading images (with conversions and notes), PNG bytes, uint8
  cli.py                one-line errors and exit codes, the codec's XLA flags
  compilation_cache.py  JAX's persistent compilation cache for the tools
  executable_cache.py   compiled executables on disk: new processes skip tracing
  memory.py             glibc's malloc set to keep freed memory mapped (the entry points)

Imports nothing else of cca_jax.
"""
