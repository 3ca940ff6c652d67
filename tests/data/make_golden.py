"""Regenerate the golden-bitstream files of tests/test_codec.py::test_golden_*.

  .venv/bin/python tests/data/make_golden.py

Writes ``golden_tiny.ccam`` (the tiny config with ``lively`` weights: many symbols,
scale levels and escapes) and ``golden_tiny.cca`` (that bundle's stream of
``synthetic_image(96, 128)``). Only run it after an intended change of the format, the
coder, the tables or the entropy-model numerics, and say so in the commit: the test
exists to catch such changes. The files are committed, so the test does not depend on
how the machine that runs it initialises weights.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)

from cca_jax.codec import compress, save_bundle  # noqa: E402
from tests.codec_helpers import synthetic_image, tiny_bundles  # noqa: E402
from tests.conftest import load_config  # noqa: E402

BUNDLE = os.path.join(HERE, "golden_tiny.ccam")
STREAM = os.path.join(HERE, "golden_tiny.cca")
IMAGE_SHAPE = (96, 128)


def main():
  from cca_jax.model import CCAModel, init_params
  cfg = load_config("tiny")
  params = init_params(CCAModel.from_config(cfg.model), seed=0)
  bundle = tiny_bundles(cfg, params)["lively"]
  save_bundle(bundle, BUNDLE)
  data = compress(bundle, synthetic_image(*IMAGE_SHAPE))
  with open(STREAM, "wb") as f:
    f.write(data)
  print(f"wrote {BUNDLE} ({os.path.getsize(BUNDLE)} bytes) and {STREAM} "
        f"({len(data)} bytes)")


if __name__ == "__main__":
  main()
