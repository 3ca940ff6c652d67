"""``python -m cca_jax.evaluate``: rate-distortion evaluation of model bundles and
classical codecs (the implementation and its documentation: ``cca_jax/eval/evaluate.py``)."""

from __future__ import annotations

import sys

from cca_jax.eval.evaluate import main

if __name__ == "__main__":
  sys.exit(main())
