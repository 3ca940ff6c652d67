"""Print a model's parameter counts per module and its channel groups.

  .venv/bin/python -m cca_jax.summary --config configs/paper.py

The counting lives in ``cca_jax.model.parameter_counts``; for the paper config the
totals are 64,988,067 (inference model) and 94,253,423 (with the auxiliary entropy
model).
"""

from __future__ import annotations

import sys

from absl import app
from ml_collections import config_flags

from cca_jax.model.parameter_counts import format_summary, summarize

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file.",
                                          lock_config=False)


def main(argv):
  del argv
  from absl import logging
  logging.set_verbosity(logging.WARNING)  # jax's backend-probing INFO lines
  if _CONFIG.value is None:
    print("error: --config is required (e.g. --config configs/paper.py)", file=sys.stderr)
    return 2
  print(format_summary(summarize(_CONFIG.value.model)))
  return 0


if __name__ == "__main__":
  app.run(main)
