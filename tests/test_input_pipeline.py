"""Input pipeline: crops are true crops, order is a pure function of the step
(determinism, resumption, per-host shares), centre crops, errors, and the TFDS paths
(array_record random access and tfrecord streaming) on a tiny dataset built offline."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from cca_jax.config import base_config
from cca_jax.train import input_pipeline as ip

PATCH = 16
SIZES = [(24, 30), (28, 20), (18, 26), (20, 20), (32, 17), (17, 24), (22, 22)]


def _images(seed, sizes):
  rng = np.random.default_rng(seed)
  return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]


def _write_folder(directory, images):
  """Images as PNG files whose sorted relative paths follow the list order, half of
  them in a subfolder, and a file that is not an image."""
  os.makedirs(os.path.join(directory, "sub"), exist_ok=True)
  for i, img in enumerate(images):
    sub = "sub" if i >= len(images) // 2 else ""  # recursion, sorted by relative path
    Image.fromarray(img).save(os.path.join(directory, sub, f"img_{i:03d}.png"))
  with open(os.path.join(directory, "notes.txt"), "w") as f:
    f.write("not an image")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
  images = _images(0, SIZES)
  d = str(tmp_path_factory.mktemp("train"))
  _write_folder(d, images)
  return d, images


def _config(train_dir, batch=4, seed=7, patch=PATCH, **data):
  c = base_config()
  c.batch_size, c.patch_size, c.seed = batch, patch, seed
  c.data.train_dir = c.data.eval_dir = train_dir
  c.data.update(data)
  return c


def _take(config, n, **kw):
  it = ip.train_batches(config, process_index=kw.pop("p", 0),
                        process_count=kw.pop("P", 1), **kw)
  return np.stack([next(it) for _ in range(n)])


def _source_of(crop, images):
  """Index of the image that ``crop`` (uint8) is an unflipped window of, else None."""
  s = crop.shape[0]
  for k, img in enumerate(images):
    h, w = img.shape[:2]
    for y in range(h - s + 1):
      for x in range(w - s + 1):
        if np.array_equal(img[y:y + s, x:x + s], crop):
          return k
  return None


def _u8(x):
  u = np.round(x * 255.0)
  assert np.allclose(u, x * 255.0, atol=1e-3)  # exactly k/255
  return u.astype(np.uint8)


def test_crops_are_windows_and_an_epoch_covers_every_image(folder):
  d, images = folder
  n = len(images)
  b = _take(_config(d, batch=n), 2)  # batch = N: step 0 is exactly epoch 0
  assert b.shape == (2, n, PATCH, PATCH, 3) and b.dtype == np.float32
  assert b.min() >= 0.0 and b.max() <= 1.0
  sources = [_source_of(c, images) for c in _u8(b[0])]
  assert sorted(sources) == list(range(n))  # each image once, as an unflipped window
  again = [_source_of(c, images) for c in _u8(b[1])]
  assert sorted(again) == list(range(n))
  first = {k: c for k, c in zip(sources, b[0])}
  moved = [not np.array_equal(first[k], c) for k, c in zip(again, b[1])]
  assert sum(moved) >= n - 1  # fresh offsets each epoch (the same by chance: rare)


def test_deterministic_and_seeded(folder):
  d, _ = folder
  a = _take(_config(d, seed=1), 3)
  np.testing.assert_array_equal(a, _take(_config(d, seed=1), 3))
  assert not np.array_equal(a, _take(_config(d, seed=2), 3))


def test_resume_equals_uninterrupted(folder):
  d, _ = folder
  c = _config(d, batch=3)  # 7 images, batch 3: steps straddle epoch boundaries
  full = _take(c, 8)
  for k in (1, 2, 5):
    np.testing.assert_array_equal(_take(c, 8 - k, start_step=k), full[k:])


@pytest.mark.parametrize("hosts", [2, 4])
def test_host_shares_concatenate_to_the_global_batch(folder, hosts):
  d, _ = folder
  c = _config(d, batch=4)
  whole = _take(c, 4, start_step=1)
  shares = [_take(c, 4, start_step=1, p=p, P=hosts) for p in range(hosts)]
  assert shares[0].shape == (4, 4 // hosts, PATCH, PATCH, 3)
  np.testing.assert_array_equal(np.concatenate(shares, axis=1), whole)


def test_small_image_is_zero_padded_centred(tmp_path):
  img = _images(3, [(10, 13)])[0]
  Image.fromarray(img).save(tmp_path / "small.png")
  crop = _u8(_take(_config(str(tmp_path), batch=1), 1)[0, 0])
  want = np.zeros((PATCH, PATCH, 3), np.uint8)
  want[3:13, 1:14] = img  # top (16-10)//2, left (16-13)//2
  np.testing.assert_array_equal(crop, want)


def test_eval_centre_crops(folder):
  d, images = folder
  c = _config(d, eval_patch_size=16, num_eval_images=5)
  got = ip.eval_images(c)
  assert got.shape == (5, 16, 16, 3) and got.dtype == np.float32
  for img, crop in zip(images, got):  # sorted order = list order
    h, w = img.shape[:2]
    t, l = (h - 16) // 2, (w - 16) // 2
    np.testing.assert_array_equal(_u8(crop), img[t:t + 16, l:l + 16])
  c.data.num_eval_images = 0
  every = ip.eval_images(c)
  assert len(every) == len(images)
  shares = [ip.eval_images(c, process_index=p, process_count=3) for p in range(3)]
  assert [len(s) for s in shares] == [3, 2, 2]
  np.testing.assert_array_equal(np.concatenate(shares), every)


def test_jpeg_and_grayscale(tmp_path):
  rgb, gray = _images(4, [(40, 36), (20, 20)])
  Image.fromarray(rgb).save(tmp_path / "a.jpg", quality=90)
  Image.fromarray(gray[..., 0]).save(tmp_path / "b.png")
  got = ip.eval_images(_config(str(tmp_path), eval_patch_size=16, num_eval_images=0))
  with Image.open(tmp_path / "a.jpg") as im:
    pil = np.asarray(im.convert("RGB")).astype(int)
  err = np.abs(_u8(got[0]) - pil[12:28, 10:26]).mean()  # decoders differ (chroma)
  assert err < 2.0 and np.abs(_u8(got[0]) - pil[13:29, 10:26]).mean() > 20 * err
  np.testing.assert_array_equal(_u8(got[1]), np.repeat(gray[2:18, 2:18, :1], 3, -1))


def test_steps_per_epoch(folder):
  d, images = folder
  assert ip.steps_per_epoch(_config(d, batch=4)) == len(images) / 4


def test_errors(tmp_path, folder):
  with pytest.raises(ip.InputError, match="no PNG/JPEG images"):
    ip.train_batches(_config(str(tmp_path)), process_index=0, process_count=1)
  with pytest.raises(ip.InputError, match="does not exist"):
    ip.train_batches(_config(str(tmp_path / "missing")), process_index=0,
                     process_count=1)
  with pytest.raises(ip.InputError, match="not divisible by the 3 processes"):
    ip.train_batches(_config(folder[0], batch=4), process_index=0, process_count=3)
  with pytest.raises(ip.InputError, match="process_index 2"):
    ip.train_batches(_config(folder[0], batch=4), process_index=2, process_count=2)


# ---------------------------------------------------------------------------------
# TFDS: a tiny dataset prepared offline in both file formats.

TFDS_TRAIN = _images(10, SIZES + [(21, 19), (19, 23), (26, 18)])  # 10 images
TFDS_EVAL = _images(11, [(20, 22), (30, 18), (17, 17)])


@pytest.fixture(scope="module")
def tfds_dirs(tmp_path_factory):
  ip.import_tensorflow()
  tfds = pytest.importorskip("tensorflow_datasets")

  class CcaTinyImages(tfds.core.GeneratorBasedBuilder):
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
      return self.dataset_info_from_configs(features=tfds.features.FeaturesDict({
          "image": tfds.features.Image(shape=(None, None, 3), encoding_format="png"),
          "index": np.int64}))

    def _split_generators(self, dl_manager):
      return {"train": self._generate_examples(TFDS_TRAIN),
              "validation": self._generate_examples(TFDS_EVAL)}

    def _generate_examples(self, images):
      for i, img in enumerate(images):
        yield f"k{i}", {"image": img, "index": i}

  dirs = {}
  for fmt in ("array_record", "tfrecord"):
    dirs[fmt] = str(tmp_path_factory.mktemp(fmt))
    with ip._quiet_absl():
      CcaTinyImages(data_dir=dirs[fmt], file_format=fmt).download_and_prepare()
  # TFDS stores examples in an order of its own (hashed keys): read it back.
  order = {}
  with ip._quiet_absl():
    b = tfds.builder("cca_tiny_images", data_dir=dirs["array_record"])
    for split in ("train", "validation"):
      src = b.as_data_source(split)
      order[split] = [int(src[i]["index"]) for i in range(len(src))]
  return dirs, order


def _tfds_config(data_dir, **kw):
  c = _config("", **kw)
  c.data.tfds_name, c.data.tfds_data_dir = "cca_tiny_images", data_dir
  return c


def test_tfds_array_record_equals_the_same_folder(tfds_dirs, tmp_path):
  dirs, order = tfds_dirs
  stored = [TFDS_TRAIN[i] for i in order["train"]]
  for i, img in enumerate(stored):
    Image.fromarray(img).save(tmp_path / f"{i:03d}.png")
  c = _tfds_config(dirs["array_record"], batch=4)
  assert ip.steps_per_epoch(c) == 10 / 4
  want = _take(_config(str(tmp_path), batch=4), 4)
  np.testing.assert_array_equal(_take(c, 4), want)
  np.testing.assert_array_equal(_take(c, 2, start_step=2), want[2:])
  np.testing.assert_array_equal(_take(c, 4, p=1, P=2), want[:, 2:])
  ev = ip.eval_images(_tfds_config(dirs["array_record"], eval_patch_size=16,
                                   num_eval_images=2))
  for k, crop in zip(order["validation"], ev):
    img = TFDS_EVAL[k]
    t, l = (img.shape[0] - 16) // 2, (img.shape[1] - 16) // 2
    np.testing.assert_array_equal(_u8(crop), img[t:t + 16, l:l + 16])


def test_tfds_tfrecord_stream(tfds_dirs, monkeypatch):
  dirs, order = tfds_dirs
  monkeypatch.setattr(ip, "SHUFFLE_WINDOW", 4)  # 10 records: windows 4, 4, 2
  c = _tfds_config(dirs["tfrecord"], batch=5)
  full = _take(c, 6)
  sources = [_source_of(x, TFDS_TRAIN) for x in _u8(full[:2].reshape(10, PATCH, PATCH, 3))]
  assert sorted(sources) == list(range(10))  # epoch 0 = every image once
  np.testing.assert_array_equal(_take(c, 6), full)
  np.testing.assert_array_equal(_take(c, 3, start_step=3), full[3:])  # mid-window
  np.testing.assert_array_equal(
      np.concatenate([_take(c, 6, p=p, P=5) for p in range(5)], axis=1), full)
  ev = ip.eval_images(_tfds_config(dirs["tfrecord"], eval_patch_size=16,
                                   num_eval_images=0))
  assert len(ev) == 3
  for k, crop in zip(order["validation"], ev):  # same stored order as array_record
    img = TFDS_EVAL[k]
    t, l = (img.shape[0] - 16) // 2, (img.shape[1] - 16) // 2
    np.testing.assert_array_equal(_u8(crop), img[t:t + 16, l:l + 16])


def test_tfds_errors(tfds_dirs, tmp_path):
  dirs, _ = tfds_dirs
  c = _tfds_config(dirs["array_record"])
  c.data.tfds_train_split = "nope"
  with pytest.raises(ip.InputError, match="no split 'nope'"):
    ip.train_batches(c, process_index=0, process_count=1)
  c = _tfds_config(dirs["array_record"], tfds_image_key="picture")
  with pytest.raises(ip.InputError, match="no feature 'picture'"):
    ip.train_batches(c, process_index=0, process_count=1)
  c = _tfds_config(str(tmp_path))  # registered but not prepared here
  with pytest.raises(ip.InputError, match="not prepared"):
    ip.train_batches(c, process_index=0, process_count=1)
