"""``python -m cca_jax.compare``: the shipped models against JPEG, WebP and AVIF on a
folder of images, the README's main job (``cca_jax/eval/compare.py``)."""

from __future__ import annotations

import sys

from cca_jax.utils.memory import retain_freed_memory

retain_freed_memory()  # first: before any other thread allocates (utils/memory.py)

from cca_jax.eval.compare import main  # noqa: E402

if __name__ == "__main__":
  sys.exit(main())
