"""The shipped models (models/*.ccam): each loads (hash verified), is at most 10 MB,
and codes a small image with an exact round trip; together they are the qualities
of the CLI's default (issue: shipped models)."""

import os

import numpy as np
import pytest

from conftest import KODAK
from cca_jax.codec import decode, encode, load_bundle, registry

SHIPPED = registry.shipped_models()


def test_there_are_four_rate_points_of_one_architecture():
  assert len(SHIPPED) >= 4, f"{len(SHIPPED)} bundles in {registry.shipped_dir()}"
  configs = {tuple(sorted((k, str(v)) for k, v in e.manifest["model"].items()))
             for e in SHIPPED}
  assert len(configs) == 1
  lambdas = [e.lmbda for e in SHIPPED]
  assert all(lm is not None for lm in lambdas)
  assert lambdas == sorted(lambdas, reverse=True)  # quality 1 = largest lambda
  assert len({e.model_id for e in SHIPPED}) == len(SHIPPED)
  for e in SHIPPED:
    assert os.path.getsize(e.path) <= 10_000_000, e.path
    assert e.manifest["weights"] == "float16"
    # Portable streams: integer entropy parameters (bundle version 2).
    assert e.manifest["version"] == 2 and e.manifest["entropy_parameters"] == "integer"
  assert registry.by_quality(None).quality == len(SHIPPED) // 2 + 1


@pytest.mark.parametrize("entry", SHIPPED, ids=[e.name for e in SHIPPED])
def test_exact_round_trip(entry):
  from PIL import Image
  bundle = load_bundle(entry.path)
  x = np.asarray(Image.open(os.path.join(KODAK, "kodim23.png")).convert("RGB"))
  x = x[200:296, 300:428]  # 96x128
  enc = encode(bundle, x)
  dec = decode(bundle, enc.data)
  np.testing.assert_array_equal(dec.y_hat, enc.y_hat)
  np.testing.assert_array_equal(dec.z_hat, enc.z_hat)
  assert dec.image.shape == x.shape and dec.image.dtype == np.uint8
  # A trained model reconstructs the image (a random one would not).
  mse = np.mean((dec.image.astype(np.float64) - x.astype(np.float64)) ** 2)
  assert 10 * np.log10(255.0 ** 2 / mse) > 24.0


def test_retired_models_load():
  """models/retired/: replaced shipped models, kept for the streams they wrote."""
  retired = [e for e in registry.all_models() if e.source == "retired"]
  shipped_ids = {e.model_id for e in SHIPPED}
  for e in retired:
    bundle = load_bundle(e.path)  # the hash is verified
    assert bundle.model_id.hex() == e.model_id and e.model_id not in shipped_ids
    assert registry.by_id(e.model_id) == e.path
