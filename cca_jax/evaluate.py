"""``python -m cca_jax.evaluate``: rate-distortion evaluation of model bundles and
classical codecs (the implementation and its documentation: ``cca_jax/eval/evaluate.py``)."""

from __future__ import annotations

import sys

from cca_jax.utils.memory import retain_freed_memory

retain_freed_memory()  # first: before any other thread allocates (utils/memory.py)

from cca_jax.eval.evaluate import main  # noqa: E402

if __name__ == "__main__":
  sys.exit(main())
