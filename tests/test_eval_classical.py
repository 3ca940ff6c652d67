"""cca_jax.eval.classical: every classical codec on two small images, real file sizes,
metrics of the decoded image, quality sweeps, codec names."""

import math

import numpy as np
import pytest

from cca_jax.eval import classical, metrics
from codec_helpers import synthetic_image

IMAGES = [("a.png", synthetic_image(176, 192, seed=3)),
          ("b.png", synthetic_image(192, 168, seed=4))]


@pytest.mark.parametrize("name", list(classical.CODECS))
def test_codec_on_two_images(name):
  codec = classical.CODECS[name]
  if not codec.available():
    pytest.skip(f"{name} is not available here")
  curve = classical.evaluate_codec(codec, IMAGES, qualities=(20, 90))
  assert curve["name"] == name and curve["kind"] == "classical"
  assert curve["settings"]["library"]  # versions recorded
  low, high = curve["points"]
  assert [p["setting"]["quality"] for p in curve["points"]] == [20, 90]
  for point in curve["points"]:
    assert [r["image"] for r in point["images"]] == ["a.png", "b.png"]
    for rec, (_, image) in zip(point["images"], IMAGES):
      # The rate is the real file: re-encoding gives the same bytes (deterministic
      # encoders), and bpp counts all of them.
      data = codec.encode(image, point["setting"]["quality"])
      assert rec["bytes"] == len(data) and rec["pixels"] == image.shape[0] * image.shape[1]
      assert rec["bpp"] == pytest.approx(8 * len(data) / rec["pixels"])
      decoded = codec.decode(data)
      assert decoded.shape == image.shape and decoded.dtype == np.uint8
      assert rec["psnr"] == pytest.approx(metrics.psnr(image, decoded))
      assert rec["ms_ssim"] == pytest.approx(metrics.ms_ssim(image, decoded), abs=1e-6)
      assert rec["ms_ssim_db"] == pytest.approx(metrics.db(rec["ms_ssim"]))
      assert rec["encode_s"] > 0 and rec["decode_s"] > 0
    s = point["summary"]
    assert s["num_images"] == 2
    assert s["bpp"] == pytest.approx(np.mean([r["bpp"] for r in point["images"]]))
    assert s["psnr"] == pytest.approx(np.mean([r["psnr"] for r in point["images"]]))
  # A higher quality setting costs more bits and gives a better image.
  assert high["summary"]["bpp"] > low["summary"]["bpp"]
  assert high["summary"]["psnr"] > low["summary"]["psnr"] + 1.0
  assert high["summary"]["ms_ssim"] > low["summary"]["ms_ssim"]
  assert math.isfinite(low["summary"]["psnr"])


def test_names_aliases_and_sweeps():
  names = [c.name for c in classical.resolve("jpeg,jpeg444, webp,avif,jxl")]
  assert names == ["jpeg420", "jpeg444", "webp", "avif444", "jxl"]
  assert [c.name for c in classical.resolve(["JPEG", "jpeg420"])] == ["jpeg420"]
  if classical.CODECS["heic420"].available():
    assert [c.name for c in classical.resolve("hevc")] == ["heic420"]
  assert set(classical.DEFAULT_CODECS) <= set(classical.CODECS)
  with pytest.raises(ValueError, match="unknown codec 'png'"):
    classical.resolve("jpeg,png")
  assert classical.parse_qualities(["jpeg=10,50", "webp=80"]) == {
      "jpeg420": (10, 50), "webp": (80,)}
  for bad in ("jpeg", "jpeg=", "jpeg=a,b", "jpeg=101", "nope=10"):
    with pytest.raises(ValueError, match="bad --qualities"):
      classical.parse_qualities([bad])
  # Every default sweep rises and stays within 0..100.
  for c in classical.CODECS.values():
    assert list(c.qualities) == sorted(set(c.qualities))
    assert 0 <= c.qualities[0] and c.qualities[-1] <= 100


def test_keep_receives_reconstructions():
  kept = []
  classical.evaluate_codec(classical.CODECS["jpeg420"], IMAGES, (50,),
                           keep=lambda n, i, d: kept.append((n, i, d.shape)))
  assert kept == [("a.png", 0, (176, 192, 3)), ("b.png", 0, (192, 168, 3))]
