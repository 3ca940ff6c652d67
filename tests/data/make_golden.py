"""Regenerate the golden-bitstream files of tests/test_codec.py::test_golden_*.

  .venv/bin/python tests/data/make_golden.py [--bundle]

Writes ``golden_tiny.cca`` (the committed bundle's stream of ``synthetic_image(96,
128)``, float entropy parameters: bundle version 1) and ``golden_tiny_v2.cca`` (the
same weights and tables as a version 2 bundle, integer entropy parameters).
``--bundle`` first rewrites ``golden_tiny.ccam`` (the tiny config with ``lively``
weights: many symbols, scale levels and escapes; a version 1 bundle). Only run it after
an intended change of the format, the coder, the tables or the entropy-model numerics,
and say so in the commit: the test exists to catch such changes. The files are
committed, so the test does not depend on how the machine that runs it initialises
weights.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)

from cca_jax.codec import compress, load_bundle, save_bundle  # noqa: E402
from tests.codec_helpers import synthetic_image, tiny_bundles  # noqa: E402
from tests.conftest import load_config  # noqa: E402

BUNDLE = os.path.join(HERE, "golden_tiny.ccam")
STREAM = os.path.join(HERE, "golden_tiny.cca")
STREAM_V2 = os.path.join(HERE, "golden_tiny_v2.cca")
IMAGE_SHAPE = (96, 128)


def main():
  if "--bundle" in sys.argv[1:]:
    from cca_jax.model.cca import CCAModel, init_params
    cfg = load_config("tiny")
    params = init_params(CCAModel.from_config(cfg.model), seed=0)
    save_bundle(tiny_bundles(cfg, params)["lively"].with_version(1), BUNDLE)
  bundle = load_bundle(BUNDLE)
  for b, path in ((bundle, STREAM), (bundle.with_version(2), STREAM_V2)):
    data = compress(b, synthetic_image(*IMAGE_SHAPE))
    with open(path, "wb") as f:
      f.write(data)
    print(f"wrote {path} ({len(data)} bytes, bundle version {b.version})")


if __name__ == "__main__":
  main()
