"""The input pipeline: deterministic, resumable random crops for training, centre
crops for validation (tf.data on the host CPU, numpy out).

**The order is a pure function of the step.** Global example ``g = step * B + row``
(``B`` = ``config.batch_size``, the global batch) is image ``perm_e[g % N]`` of epoch
``e = g // N`` (``N`` images), where ``perm_e`` is a stateless shuffle keyed by
``(seed, e)``; its ``patch_size`` crop offsets are stateless uniforms keyed by
``(seed, g)``. So the batch of step ``s`` depends only on ``(config.seed, s, the image
list)``: a run resumed with ``start_step=s`` sees exactly the batches an uninterrupted
run sees from step ``s`` on, and nothing is replayed to get there. Host ``p`` of ``P``
gets rows ``[p B/P, (p+1) B/P)`` of every global batch (it decodes only those), so the
hosts' shares concatenated in process order are the single-host batch, as
``jax.make_array_from_process_local_data`` expects. Random crops have no flips (as
the official ``RandomCrop(256)``). Keys come from ``tf.random.experimental
.stateless_fold_in`` of ``[0, seed]`` (different streams for the order and the crops);
the Philox stateless ops are deterministic on the CPU for a given TensorFlow version.

**Sources.** A local folder (``config.data.train_dir``, the default): every PNG/JPEG
under it, recursively, sorted by relative path; ``tf.io.gfile`` lists it, so a
``gs://`` path works where TensorFlow's GCS filesystem is installed. Or a named TFDS
dataset (``config.data.tfds_name``, prepared in ``tfds_data_dir``): an ``array_record``
dataset is read by random access (``builder.as_data_source``, raw records parsed and
decoded in the graph) with exactly the same order as a folder; a ``tfrecord`` dataset
(TFDS's default format) cannot be read at random, so it is read as a deterministic
stream in file order (``interleave_cycle_length=1``), shuffled within consecutive
windows of ``SHUFFLE_WINDOW`` records by a stateless shuffle keyed by ``(seed, epoch,
window)``; resuming skips the records before the start (read, not decoded) and every
host reads the whole stream but decodes only its rows. Still a pure function of the
step, with a weaker shuffle; ``tfds build NAME --file_format=array_record`` gives the
exact path. Why a tf.data file pipeline and not a custom TFDS builder for folders: no
preparation step or second copy of the images, the folder is the dataset, and random
access to files is what exact resumption needs.

**Images smaller than the patch** are zero-padded, centred, to at least the patch size
before cropping (the official ``RandomCrop`` would fail; torchvision's ``CenterCrop``
pads with zeros). Validation centre crops start at ``floor((H - size) / 2)``, as
``tf.image.resize_with_crop_or_pad`` and ``ops/padding.py`` (torchvision rounds half to
even, so images with an odd margin may differ by one pixel from the official crop).
Images are decoded as 8-bit RGB (grayscale expanded, alpha dropped) and returned as
float32 in [0, 1], NHWC.

TensorFlow is imported only when a pipeline is built, configured never to see GPUs or
TPUs (they belong to JAX) and quietly (``TF_CPP_MIN_LOG_LEVEL=3``, no oneDNN banner,
TensorFlow's Python logger at ERROR). A corrupt file surfaces as a TensorFlow error
when its batch is read.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Iterator

import numpy as np

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
SHUFFLE_WINDOW = 1024  # records shuffled together in the streamed TFDS (tfrecord) path
_ORDER, _CROP, _WINDOW = 1, 2, 3  # independent key streams
_INT64_MAX = np.iinfo(np.int64).max
_tf_module = None


class InputError(ValueError):
  """A data configuration that cannot be read (one-line message)."""


# ---------------------------------------------------------------------------------
# TensorFlow, quietly and on the CPU only.


def import_tensorflow():
  """Import TensorFlow once: quiet, and hiding accelerators from it."""
  global _tf_module
  if _tf_module is None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # its import-time banner
    import tensorflow as tf
    tf.get_logger().setLevel(logging.ERROR)
    for kind in ("GPU", "TPU"):
      try:
        tf.config.set_visible_devices([], kind)
      except (RuntimeError, ValueError):  # runtime already initialised / no such kind
        pass
    _tf_module = tf
  return _tf_module


@contextlib.contextmanager
def _quiet_absl():
  """Hide TFDS's absl INFO lines while it opens a dataset (restored afterwards)."""
  logger = logging.getLogger("absl")
  level = logger.level
  logger.setLevel(max(level, logging.WARNING))
  try:
    yield
  finally:
    logger.setLevel(level)


def _tfds():
  import_tensorflow()
  import tensorflow_datasets as tfds
  tfds.disable_progress_bar()
  return tfds


# ---------------------------------------------------------------------------------
# Sources: a sorted file list or a TFDS split, as "fetch(indices) -> encoded bytes".


def find_images_recursive(directory: str) -> list[str]:
  """Every PNG/JPEG under ``directory`` (recursively; local or ``gs://``), sorted by
  relative path. (``cca_jax.eval.dataset.list_images`` is the flat, local one.)"""
  tf = import_tensorflow()
  if not directory:
    raise InputError("no image folder given")
  if not tf.io.gfile.isdir(directory):
    raise InputError(f"image folder {os.path.abspath(directory)} does not exist")
  files = []
  for root, _, names in tf.io.gfile.walk(directory):
    files += [os.path.join(root, n) for n in names
              if n.lower().endswith(IMAGE_EXTENSIONS)]
  if not files:
    raise InputError(f"no PNG/JPEG images in {os.path.abspath(directory)}")
  return sorted(files, key=lambda f: os.path.relpath(f, directory))


class _Folder:
  """Images as files: random access by index."""

  random_access = True

  def __init__(self, directory: str):
    self.files = find_images_recursive(directory)
    self.size = len(self.files)

  def read(self, index):
    tf = import_tensorflow()
    return tf.io.read_file(tf.gather(tf.constant(self.files), index))


class _TFDSSplit:
  """A split of a prepared TFDS dataset; random access for array_record."""

  def __init__(self, data, split: str):
    tfds = _tfds()
    self.name, self.split, self.key = data.tfds_name, split, data.tfds_image_key
    data_dir = data.tfds_data_dir or None
    with _quiet_absl():
      try:
        self.builder = tfds.builder(self.name, data_dir=data_dir)
      except Exception as e:  # noqa: BLE001  (TFDS raises many kinds)
        raise InputError(f"TFDS dataset {self.name!r}: {str(e).strip().splitlines()[0]}"
                         ) from None
      info = self.builder.info
      if not info.splits:
        raise InputError(
            f"TFDS dataset {self.name!r} is not prepared in {self.builder.data_dir} "
            f"(run `tfds build {self.name} --data_dir=DIR --file_format=array_record`"
            " and set --config.data.tfds_data_dir=DIR)")
      if split not in info.splits:
        raise InputError(f"TFDS dataset {self.name!r} has no split {split!r} "
                         f"(it has {', '.join(sorted(info.splits))})")
      if self.key not in info.features:
        raise InputError(f"TFDS dataset {self.name!r} has no feature {self.key!r} "
                         f"(set --config.data.tfds_image_key to one of "
                         f"{', '.join(sorted(info.features))})")
      self.size = info.splits[split].num_examples
      if self.size == 0:
        raise InputError(f"TFDS dataset {self.name!r} split {split!r} is empty")
      formats = {str(getattr(f, "value", f)) for f in info.available_file_formats()}
      self.random_access = "array_record" in formats
      self._source = None
      if self.random_access:
        from tensorflow_datasets.core.decode import base as decode_base
        self._source = self.builder.as_data_source(
            split, deserialize_method=decode_base.DeserializeMethod.RAW_BYTES,
            file_format="array_record")

  def _image_bytes(self, serialized):
    """Encoded image bytes of a serialized example (graph mode)."""
    tfds = _tfds()
    example = self.builder.info.features.deserialize_example(
        serialized, decoders={self.key: tfds.decode.SkipDecoding()})
    return example[self.key]

  def read_batch(self, indices):
    """Encoded images at ``indices`` (a 1-D int64 tensor); array_record only."""
    tf = import_tensorflow()
    source = self._source

    def fetch(idx):
      records = source.__getitems__([int(i) for i in idx])
      return np.array([bytes(r) for r in records], dtype=object)

    raw = tf.numpy_function(fetch, [indices], tf.string, stateful=False)
    raw.set_shape(indices.shape)
    return tf.map_fn(self._image_bytes, raw, fn_output_signature=tf.string)

  def stream(self, split: str | None = None):
    """Encoded images in file order, as a ``tf.data.Dataset`` (any file format)."""
    tfds = _tfds()
    with _quiet_absl():
      ds = self.builder.as_dataset(
          split or self.split, shuffle_files=False,
          decoders={self.key: tfds.decode.SkipDecoding()},
          read_config=tfds.ReadConfig(interleave_cycle_length=1))
    return ds.map(lambda ex: ex[self.key])


def _train_source(config):
  data = config.data
  if data.tfds_name:
    return _TFDSSplit(data, data.tfds_train_split)
  return _Folder(data.train_dir)


# ---------------------------------------------------------------------------------
# Decoding and cropping (graph functions).


def _decode(encoded):
  tf = import_tensorflow()
  image = tf.io.decode_image(encoded, channels=3, dtype=tf.uint8,
                             expand_animations=False)
  image.set_shape([None, None, 3])
  return image


def _pad_to_at_least(image, size: int):
  """Zero-pad ``image`` (centred) so that both sides are at least ``size``."""
  tf = import_tensorflow()
  shape = tf.shape(image)
  h, w = tf.maximum(shape[0], size), tf.maximum(shape[1], size)
  return tf.image.pad_to_bounding_box(image, (h - shape[0]) // 2, (w - shape[1]) // 2,
                                      h, w)


def _key(seed: int, stream: int, *data):
  tf = import_tensorflow()
  key = tf.constant([0, int(seed)], tf.int64)
  for d in (stream,) + data:
    key = tf.random.experimental.stateless_fold_in(key, tf.cast(d, tf.int64),
                                                   alg="philox")
  return key


def random_crop(image, size: int, seed: int, example):
  """The training crop of global example ``example``: ``(size, size, 3)`` uint8."""
  tf = import_tensorflow()
  image = _pad_to_at_least(image, size)
  shape = tf.shape(image)
  key = _key(seed, _CROP, example)
  top = tf.random.stateless_uniform([], _key_fold(key, 0), 0, shape[0] - size + 1,
                                    dtype=tf.int32, alg="philox")
  left = tf.random.stateless_uniform([], _key_fold(key, 1), 0, shape[1] - size + 1,
                                     dtype=tf.int32, alg="philox")
  crop = image[top:top + size, left:left + size]
  crop.set_shape([size, size, 3])
  return crop


def _key_fold(key, d: int):
  tf = import_tensorflow()
  return tf.random.experimental.stateless_fold_in(key, tf.constant(d, tf.int64),
                                                  alg="philox")


def centre_crop(image, size: int):
  """Centre crop (zero-padded if smaller), offsets ``floor((H - size) / 2)``."""
  tf = import_tensorflow()
  crop = tf.image.resize_with_crop_or_pad(image, size, size)
  crop.set_shape([size, size, 3])
  return crop


def _to_float(batch):
  tf = import_tensorflow()
  return tf.cast(batch, tf.float32) * (1.0 / 255.0)


# ---------------------------------------------------------------------------------
# Training batches.


def _host_share(config, process_index, process_count):
  if process_index is None or process_count is None:
    import jax
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
  batch = int(config.batch_size)
  if batch < 1 or process_count < 1:
    raise InputError(f"batch_size ({batch}) and process_count ({process_count}) "
                     "must be positive")
  if batch % process_count:
    raise InputError(f"batch_size {batch} is not divisible by the {process_count} "
                     "processes (each host reads an equal share of the global batch)")
  if not 0 <= process_index < process_count:
    raise InputError(f"process_index {process_index} is not in [0, {process_count})")
  return process_index, process_count, batch, batch // process_count


def _permutation(seed: int, epoch, size: int):
  tf = import_tensorflow()
  return tf.random.experimental.stateless_shuffle(
      tf.range(size, dtype=tf.int64), seed=_key(seed, _ORDER, epoch), alg="philox")


def train_dataset(config, *, start_step: int = 0, process_index: int | None = None,
                  process_count: int | None = None):
  """The ``tf.data.Dataset`` behind ``train_batches`` (infinite, batched, float32;
  ``config.data.prefetch`` batches prefetched, 0 = autotuned)."""
  tf = import_tensorflow()
  p, _, batch, local = _host_share(config, process_index, process_count)
  size, seed = int(config.patch_size), int(config.seed)
  if size < 1:
    raise InputError(f"patch_size must be positive, got {size}")
  if start_step < 0:
    raise InputError(f"start_step must be >= 0, got {start_step}")
  source = _train_source(config)
  n = source.size
  first = start_step * batch  # first global example

  def mine(g):
    return ((g % batch) // local == p) & (g >= first)

  if source.random_access:
    def epoch_indices(e):
      g = e * n + tf.range(n, dtype=tf.int64)
      keep = mine(g)
      return tf.data.Dataset.from_tensor_slices(
          (tf.boolean_mask(_permutation(seed, e, n), keep), tf.boolean_mask(g, keep)))

    ds = tf.data.Dataset.range(first // n, _INT64_MAX).flat_map(epoch_indices)
    if isinstance(source, _Folder):
      ds = ds.map(lambda i, g: (source.read(i), g))
    else:  # one Python call per host batch fetches the records
      ds = ds.batch(local).map(lambda i, g: (source.read_batch(i), g)).unbatch()
  else:
    stream = source.stream()

    def epoch_records(e):
      skip = tf.where(e == first // n, tf.constant((first % n) // SHUFFLE_WINDOW,
                                                   tf.int64), tf.constant(0, tf.int64))
      windows = stream.skip(skip * SHUFFLE_WINDOW).batch(SHUFFLE_WINDOW).enumerate(skip)

      def shuffle(w, records):
        return tf.random.experimental.stateless_shuffle(
            records, seed=_key(seed, _WINDOW, e, w), alg="philox")

      records = windows.map(shuffle).unbatch()
      g = tf.data.Dataset.range(e * n + skip * SHUFFLE_WINDOW, (e + 1) * n)
      return tf.data.Dataset.zip(records, g).filter(lambda r, g: mine(g))

    ds = tf.data.Dataset.range(first // n, _INT64_MAX).flat_map(epoch_records)

  ds = ds.map(lambda encoded, g: random_crop(_decode(encoded), size, seed, g),
              num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  ds = ds.batch(local, drop_remainder=True).map(_to_float)
  options = tf.data.Options()
  options.deterministic = True
  ds = ds.with_options(options)
  return ds.prefetch(int(config.data.prefetch) or tf.data.AUTOTUNE)


def train_batches(config, *, start_step: int = 0, process_index: int | None = None,
                  process_count: int | None = None) -> Iterator[np.ndarray]:
  """This host's training batches from ``start_step`` on (infinite).

  Args:
    config: the training config (``batch_size`` global, ``patch_size``, ``seed``,
      ``data``).
    start_step: the step of the first batch (a resumed run passes its restored
      step); the batches equal those an uninterrupted run yields from that step.
    process_index, process_count: this host and the number of hosts (default:
      ``jax.process_index()``, ``jax.process_count()``).

  Yields:
    float32 ``(batch_size // process_count, patch_size, patch_size, 3)`` in [0, 1]:
    rows ``[p b / P, (p + 1) b / P)`` of the global batch.

  Raises:
    InputError: missing or empty data, an unprepared TFDS dataset, or a batch size
      not divisible by ``process_count``.
  """
  ds = train_dataset(config, start_step=start_step, process_index=process_index,
                     process_count=process_count)
  return ds.as_numpy_iterator()


# ---------------------------------------------------------------------------------
# Validation images and sizes.


def eval_images(config, *, process_index: int | None = None,
                process_count: int | None = None) -> np.ndarray:
  """Validation centre crops, float32 ``(n, S, S, 3)`` in [0, 1], in a fixed order.

  The first ``config.data.num_eval_images`` (0 = all) images of ``data.eval_dir``
  (sorted) or of the TFDS split ``data.tfds_eval_split``, centre-cropped to
  ``data.eval_patch_size``. By default every host gets all of them; with
  ``process_index`` and ``process_count`` a host gets its contiguous share
  (``np.array_split`` boundaries: the first ``n % P`` hosts get one more).
  """
  tf = import_tensorflow()
  data = config.data
  size, count = int(data.eval_patch_size), int(data.num_eval_images)
  if size < 1:
    raise InputError(f"eval_patch_size must be positive, got {size}")
  if count < 0:
    raise InputError(f"num_eval_images must be >= 0 (0 = all), got {count}")
  if data.tfds_name:
    source = _TFDSSplit(data, data.tfds_eval_split)
    count = min(count or source.size, source.size)
    if source.random_access:
      ds = tf.data.Dataset.range(count).batch(64).map(source.read_batch).unbatch()
    else:
      ds = source.stream().take(count)
  else:
    files = find_images_recursive(data.eval_dir)
    ds = tf.data.Dataset.from_tensor_slices(files[:count or None]).map(tf.io.read_file)
  ds = ds.map(lambda e: centre_crop(_decode(e), size),
              num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  images = [np.asarray(x) for x in ds.batch(64).as_numpy_iterator()]
  images = np.concatenate(images) if images else np.zeros((0, size, size, 3), np.uint8)
  if process_index is not None or process_count is not None:
    if process_index is None or process_count is None:
      raise InputError("give both process_index and process_count, or neither")
    if not 0 <= process_index < process_count:
      raise InputError(f"process_index {process_index} is not in [0, {process_count})")
    images = np.array_split(images, process_count)[process_index]
  return images.astype(np.float32) / np.float32(255.0)


def dataset_size(config) -> int:
  """Number of training images (files in ``train_dir`` or the TFDS split)."""
  return _train_source(config).size


def steps_per_epoch(config) -> float:
  """Steps per pass over the training images: ``dataset_size / batch_size``."""
  return dataset_size(config) / int(config.batch_size)
