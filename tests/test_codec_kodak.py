"""Exact round trips on every Kodak image (full size, 768x512 and 512x768) with the
tiny model: decompress reproduces the encoder's latents and pixels bit for bit."""

import glob
import os
import time

import numpy as np
import pytest

from cca_jax.codec import decode, encode
from tests.codec_helpers import tiny_bundles
from tests.conftest import KODAK

IMAGES = sorted(glob.glob(os.path.join(KODAK, "kodim*.png")))


@pytest.mark.skipif(len(IMAGES) != 24, reason="the 24 Kodak images are not available")
@pytest.mark.slow
def test_every_kodak_image_round_trips_exactly(tiny_config, tiny_params):
  from cca_jax.utils.image_io import read_image
  bundle = tiny_bundles(tiny_config, tiny_params)["lively"]
  t0 = time.perf_counter()
  sizes = []
  for path in IMAGES:
    x, notes = read_image(path)
    assert not notes and x.shape[:2] in ((512, 768), (768, 512))
    enc = encode(bundle, x, reconstruct=True)
    dec = decode(bundle, enc.data)
    name = os.path.basename(path)
    assert np.array_equal(dec.z_hat, enc.z_hat), name
    assert np.array_equal(dec.y_hat, enc.y_hat), name
    assert np.array_equal(dec.image, enc.image), name
    assert dec.image.shape == x.shape
    sizes.append(len(enc.data))
  print(f"24 Kodak round trips in {time.perf_counter() - t0:.1f} s "
        f"(incl. compiling 2 shapes); {np.mean(sizes) * 8 / (768 * 512):.3f} bpp mean")
