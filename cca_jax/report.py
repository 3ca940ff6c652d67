"""``python -m cca_jax.report RESULTS.json [...] --out DIR``: RD plots, BD-rate tables
and a markdown report from evaluation results (``cca_jax/eval/report.py``)."""

from __future__ import annotations

import sys

from cca_jax.eval.report import main

if __name__ == "__main__":
  sys.exit(main())
