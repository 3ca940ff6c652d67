"""The codec API: exact round trips, padding, inputs, escapes, model ids, real bits
against the likelihood estimate, and a golden bitstream."""

import hashlib
import os

import jax.numpy as jnp
import numpy as np
import pytest

from cca_jax.codec import (CodecError, compress, decode, decompress, encode, load_bundle,
                           make_bundle)
from cca_jax.codec import format as fmt
from cca_jax.codec.coder import SYMBOL_LIMIT
from cca_jax.codec.image_codec import MAX_PIXELS, check_multiple
from tests.fuzz_streams import reseal
from cca_jax.ops.padding import padding_for
from tests.codec_helpers import synthetic_image, tiny_bundles
from tests.conftest import KODAK

# The golden files (tests/data/make_golden.py): a committed tiny-model bundle and its
# stream of synthetic_image(96, 128). The bundle is a file, not a seeded
# initialisation, so the test holds on every machine; it fails on any change of the
# format, the coder or the entropy-model numerics (and test_golden_tables on any
# change of how tables are built from the weights).
GOLDEN_BUNDLE = os.path.join(os.path.dirname(__file__), "data", "golden_tiny.ccam")
GOLDEN_STREAM = os.path.join(os.path.dirname(__file__), "data", "golden_tiny.cca")
# The same weights and tables as a version 2 bundle: integer entropy parameters.
GOLDEN_STREAM_V2 = os.path.join(os.path.dirname(__file__), "data", "golden_tiny_v2.cca")


@pytest.fixture(scope="module")
def bundles(tiny_config, tiny_params):
  return tiny_bundles(tiny_config, tiny_params)


def _assert_same_decode(bundle, enc):
  dec = decode(bundle, enc.data)
  np.testing.assert_array_equal(dec.z_hat, enc.z_hat)
  np.testing.assert_array_equal(dec.y_hat, enc.y_hat)
  np.testing.assert_array_equal(dec.image, enc.image)
  return dec


def test_round_trip_is_bit_exact(bundles):
  b = bundles["lively"]
  x = synthetic_image(100, 120)
  enc = encode(b, x, reconstruct=True)
  dec = _assert_same_decode(b, enc)
  assert dec.image.shape == (100, 120, 3) and dec.image.dtype == np.uint8
  h = dec.header
  assert (h.height, h.width) == (100, 120)
  assert h.padding == padding_for(100, 120, 128) == ((14, 14), (4, 4))
  assert h.model_id == b.model_id
  assert len(enc.data) == fmt.header_size(5) + h.z_length + h.y_length == 45 + h.z_length + h.y_length
  # The y symbols are not trivial: many distinct values went through the coder.
  mu_free = enc.y_hat - np.round(enc.y_hat)
  assert len(np.unique(np.round(enc.y_hat))) >= 15 and np.abs(mu_free).max() > 0
  np.testing.assert_array_equal(decompress(b, compress(b, x)), dec.image)


def test_codec_computes_the_models_function(bundles):
  """The codec's steps are the model's own functions: its latents and pixels agree
  with the evaluation forward (another XLA graph, so only up to float rounding and
  rare rounding-boundary flips)."""
  b = bundles["lively"]
  x = synthetic_image(128, 128).astype(np.float32) / 255.0
  enc = encode(b, x, reconstruct=True)
  out = b.model.apply({"params": b.params}, jnp.asarray(x)[None], training=False)
  y_hat = np.asarray(out["y_hat"])
  close = np.isclose(enc.y_hat, y_hat, rtol=1e-4, atol=1e-4)
  assert close.mean() > 0.999
  x_hat = np.round(np.clip(np.asarray(out["x_hat"])[0], 0, 1) * 255)
  assert np.mean(np.abs(x_hat - enc.image) <= 1) > 0.99


def test_padding_multiples(bundles):
  b = bundles["lively"]
  x = synthetic_image(200, 250)
  for multiple in (64, 256):
    enc = encode(b, x, multiple, reconstruct=True)
    assert enc.header.padding == padding_for(200, 250, multiple)
    assert enc.header.padded_height % multiple == 0
    _assert_same_decode(b, enc)
  for bad in (0, 32, 100, 512, -64):
    with pytest.raises(CodecError, match="multiple"):
      check_multiple(bad)


def test_inputs(bundles):
  b = bundles["plain"]
  x = synthetic_image(64, 100)
  assert compress(b, x) == compress(b, x.astype(np.float32) / 255.0)
  for bad in (x[..., 0], x[..., :2], np.zeros((0, 5, 3), np.uint8), x.astype(np.int16),
              np.full((8, 8, 3), np.nan, np.float32), np.full((8, 8, 3), 1.5)):
    with pytest.raises(CodecError):
      compress(b, bad)
  with pytest.raises(CodecError, match="exceeds"):
    encode(b, x, max_pixels=100)


def test_far_out_of_range_latents_round_trip(tiny_config, bundles):
  """A latent far outside every table escapes; one beyond the symbol limit is
  clipped; either way the decoder reproduces the encoder exactly."""
  b = bundles["lively"]
  params = {k: v for k, v in b.params.items()}
  params["g_a"] = dict(params["g_a"])
  last = f"down_{len(b.model.ae_dim)}"
  layer = dict(params["g_a"][last])
  bias = np.array(layer["bias"])
  bias[0] += 1e4    # slice 0: beyond the widest table (+-1564)
  bias[20] -= 1e9   # slice 3 or so: beyond SYMBOL_LIMIT
  layer["bias"] = bias
  params["g_a"][last] = layer
  far = make_bundle(tiny_config.model, params)
  enc = encode(far, synthetic_image(100, 120), reconstruct=True)
  _assert_same_decode(far, enc)
  y = np.asarray(far.programs.analysis(far.device_params, jnp.asarray(
      np.pad(synthetic_image(100, 120).astype(np.float32) / 255, ((14, 14), (4, 4), (0, 0)))
      [None]))[0])
  assert np.abs(enc.y_hat[..., 0] - y[..., 0]).max() <= 1.0 + 1e-3  # coded, not lost
  assert np.abs(enc.y_hat[..., 20]).min() > SYMBOL_LIMIT / 2           # clipped


def test_another_models_stream_is_refused(bundles):
  data = compress(bundles["lively"], synthetic_image(100, 120))
  with pytest.raises(CodecError, match="written with model"):
    decode(bundles["other"], data)


def test_a_decoder_with_other_entropy_parameters_is_refused(bundles):
  """Same model id, slightly different scales (as another XLA build or thread count
  could give): the index checks stop the decoder before it decodes garbage."""
  import dataclasses
  b = bundles["lively"]
  data = compress(b, synthetic_image(100, 120))
  params = {k: v for k, v in b.params.items()}
  em = dict(params["entropy_model"])
  layer = dict(em["scale_cc_transforms_0_4"])
  layer["bias"] = np.asarray(layer["bias"]) + np.float32(0.05)
  em["scale_cc_transforms_0_4"] = layer
  params["entropy_model"] = em
  drifted = dataclasses.replace(b, params=params)
  assert drifted.model_id == b.model_id
  with pytest.raises(CodecError, match="cannot decode exactly here.*slice 0"):
    decode(drifted, data)


def test_huge_declared_size_is_refused_before_any_work(bundles):
  data = bytearray(compress(bundles["plain"], synthetic_image(100, 120)))
  data[14:22] = (65535).to_bytes(2, "big") * 2 + bytes([0, 1, 0, 1])
  with pytest.raises(CodecError, match=f"{MAX_PIXELS:,}"):
    decode(bundles["plain"], reseal(bytes(data)))


def test_weights_that_do_not_fit_are_refused(tiny_config, bundles):
  params = dict(bundles["plain"].params)
  params["h_a"] = {k: dict(v) for k, v in params["h_a"].items()}
  params["h_a"]["layers_4"]["bias"] = np.full_like(params["h_a"]["layers_4"]["bias"], np.nan)
  with pytest.raises(CodecError, match="not finite"):
    make_bundle(tiny_config.model, params)
  params["h_a"]["layers_4"]["bias"] = np.zeros(3, np.float32)
  with pytest.raises(CodecError, match="shape"):
    make_bundle(tiny_config.model, params)
  del params["h_a"]
  with pytest.raises(CodecError, match="missing"):
    make_bundle(tiny_config.model, params)


@pytest.mark.skipif(not os.path.isdir(KODAK), reason="Kodak images not available")
def test_real_bits_match_the_estimate_on_a_kodak_image(tiny_config, bundles):
  """With scales that match the residuals (the ``calibrated`` random model), the
  coded size of a 768x512 image is within 1% of the likelihood estimate."""
  from cca_jax.model.inference import estimate_image
  from cca_jax.utils.image_io import read_image
  b = bundles["calibrated"]
  x, _ = read_image(os.path.join(KODAK, "kodim01.png"))
  enc = encode(b, x)
  est = estimate_image(tiny_config.model, b.params, x)
  npix = x.shape[0] * x.shape[1]
  payload = 8 * (enc.header.z_length + enc.header.y_length) / npix
  total = 8 * len(enc.data) / npix
  print(f"bpp_est={est['bpp_est']:.5f} payload={payload:.5f} file={total:.5f} "
        f"ratio={payload / est['bpp_est']:.5f}")
  assert est["bpp_est"] > 0.3       # a non-trivial rate
  assert payload == pytest.approx(est["bpp_est"], rel=0.01)
  assert total == pytest.approx(est["bpp_est"], rel=0.01)


@pytest.mark.parametrize("version", [1, 2])
def test_golden_bitstream(version):
  bundle = load_bundle(GOLDEN_BUNDLE)
  assert bundle.version == 1
  bundle = bundle.with_version(version)
  with open(GOLDEN_STREAM if version == 1 else GOLDEN_STREAM_V2, "rb") as f:
    golden = f.read()
  image = synthetic_image(96, 128)
  enc = encode(bundle, image, reconstruct=True)
  assert enc.data == golden, (
      f"bitstream changed: sha256 {hashlib.sha256(enc.data).hexdigest()} "
      f"({len(enc.data)} bytes, golden {len(golden)}). A format or coder change must "
      "bump the format version; an intended numerics change regenerates the golden "
      "files (tests/data/make_golden.py) after the round-trip tests pass.")
  # The committed stream decodes to the encoder's latents.
  dec = decode(bundle, golden)
  np.testing.assert_array_equal(dec.y_hat, enc.y_hat)
  np.testing.assert_array_equal(dec.z_hat, enc.z_hat)
  assert dec.image.shape == image.shape


def test_golden_tables():
  """Tables are a pure function of the weights: rebuilt from the committed bundle's
  weights they are the committed ones."""
  bundle = load_bundle(GOLDEN_BUNDLE)
  rebuilt = make_bundle(bundle.config, bundle.params, version=bundle.version)
  for part in ("z", "y"):
    want, got = getattr(bundle.tables, part), getattr(rebuilt.tables, part)
    for name in ("cdf", "cdf_length", "offset"):
      np.testing.assert_array_equal(getattr(got, name), getattr(want, name),
                                    err_msg=f"{part} tables: {name}")
  assert rebuilt.sha256 == bundle.sha256
