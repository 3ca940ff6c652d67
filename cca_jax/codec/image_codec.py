"""``compress(model, image) -> bytes`` and ``decompress(model, data) -> image``.

Encoding (decoding mirrors it; both walk ``slice_loop``, the one slice loop of the
codec, with the same compiled programs from ``programs.py``):

1. pad the image with zeros, centred, to a multiple of ``multiple`` (128 as the
   official evaluation; any multiple of 64 up to 256), ``analysis -> y, z``;
2. z symbols ``round(z - medians)``, one coding table per channel;
   ``z_hat = symbols + medians``;
3. ``hyper_synthesis(z_hat)``, then for each slice ``i``: ``predict`` gives ``mu_i``
   and ``scale_i``; the table of each element is ``scale_indexes(scale_i)``; symbols
   ``round(y_i - mu_i)`` (the decoder pops them instead); ``refine`` gives
   ``y_hat_i = LRP(symbols + mu_i)``, the context of the next slices;
4. the symbols go into two ANS streams (z, y; ``coder.py``) and the container
   (``format.py``). The decoder ends with ``synthesis`` and crops.

Symbols are clipped to +-2**24 (``coder.SYMBOL_LIMIT``; far beyond any real latent):
what the decoder reconstructs is always exactly what the encoder computed. Images up
to 65535 pixels per side and ``MAX_PIXELS`` padded pixels are accepted.
"""

from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np

from cca_jax.codec import format as fmt
from cca_jax.codec.coder import (SYMBOL_LIMIT, coder_from_bytes, coder_to_bytes,
                                 new_coder, pop_symbols, push_symbols)
from cca_jax.codec.errors import CodecError
from cca_jax.codec.latent_optimization import DEFAULT_LEARNING_RATE, optimize_latents
from cca_jax.model.cca import DOWNSAMPLING
from cca_jax.model.entropy.tables import scale_indexes
from cca_jax.ops.padding import DEFAULT_MULTIPLE, crop, pad_centered
from cca_jax.utils.image_io import to_uint8

MAX_PIXELS = 1 << 26  # padded pixels (a 8192 x 8192 image)
MAX_MULTIPLE = 256    # the header stores each side's padding in one byte


@dataclasses.dataclass
class Encoded:
  """What the encoder computed: the stream and the latents the decoder will rebuild."""
  data: bytes
  header: fmt.Header
  z_hat: np.ndarray
  y_hat: np.ndarray
  image: np.ndarray | None  # uint8 reconstruction (``reconstruct=True``)
  timings: dict


@dataclasses.dataclass
class Decoded:
  image: np.ndarray  # uint8 (H, W, 3)
  header: fmt.Header
  z_hat: np.ndarray
  y_hat: np.ndarray
  timings: dict


class _Timer:
  """Wall time per stage; device outputs are waited for so each stage is its own."""

  def __init__(self):
    self.times: dict[str, float] = {}

  def __call__(self, name, fn, *args):
    t = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - t
    return out


def check_multiple(multiple: int) -> int:
  if (not isinstance(multiple, (int, np.integer)) or multiple < DOWNSAMPLING
      or multiple % DOWNSAMPLING or multiple > MAX_MULTIPLE):
    raise CodecError(f"padding multiple must be a multiple of {DOWNSAMPLING} between "
                     f"{DOWNSAMPLING} and {MAX_MULTIPLE}, got {multiple}")
  return int(multiple)


def _as_image(image) -> np.ndarray:
  a = np.asarray(image)
  if a.ndim != 3 or a.shape[-1] != 3 or a.shape[0] == 0 or a.shape[1] == 0:
    raise CodecError(f"expected an RGB image of shape (H, W, 3), got {a.shape}")
  if a.dtype == np.uint8:
    return a.astype(np.float32) / np.float32(255.0)
  if not np.issubdtype(a.dtype, np.floating):
    raise CodecError(f"expected uint8 or float pixels, got {a.dtype}")
  a = a.astype(np.float32)
  if not np.all(np.isfinite(a)) or a.min() < 0.0 or a.max() > 1.0:
    raise CodecError("float pixels must be finite and within [0, 1]")
  return a


def _check_size(height: int, width: int, padding, max_pixels: int = MAX_PIXELS) -> None:
  if height > fmt.MAX_SIDE or width > fmt.MAX_SIDE:
    raise CodecError(f"image size {height}x{width} exceeds {fmt.MAX_SIDE} per side")
  ph = height + sum(padding[0])
  pw = width + sum(padding[1])
  if ph * pw > max_pixels:
    raise CodecError(f"image size {height}x{width} (padded {ph}x{pw}) exceeds the "
                     f"limit of {max_pixels:,} pixels")


def quantize_symbols(values: np.ndarray, means: np.ndarray) -> np.ndarray:
  """``round(values - means)`` (half to even, as jnp/torch), clipped to the coder's
  symbol range, int32."""
  d = np.asarray(values, np.float32) - np.asarray(means, np.float32)
  return np.clip(np.rint(d), -SYMBOL_LIMIT, SYMBOL_LIMIT).astype(np.int32)


def dequantize_z(symbols: np.ndarray, medians: np.ndarray) -> np.ndarray:
  return symbols.astype(np.float32) + medians.astype(np.float32)


def _z_indexes(shape) -> np.ndarray:
  return np.broadcast_to(np.arange(shape[-1], dtype=np.int32), shape)


def _coding_time(timer: _Timer, t0: float) -> None:
  timer.times["coding"] = timer.times.get("coding", 0.0) + time.perf_counter() - t0


def slice_loop(bundle, z_hat: np.ndarray, symbols_fn, timer: _Timer):
  """The codec's slice loop, shared by encoder and decoder.

  ``symbols_fn(i, mu_i, table_index_i) -> symbols_i`` (int32 array of the slice's
  shape) supplies the symbols: rounded on the encoder, popped from the stream on the
  decoder. Returns the refined slices ``y_hat_i`` (device arrays).
  """
  params, programs = bundle.entropy_params, bundle.programs
  lm, ls = timer("hyper_synthesis", programs.hyper_synthesis, params, z_hat)
  y_hat = []
  for i in range(len(bundle.model.sizes)):
    mu, scale, support = timer("predict", programs.predict, params, i, lm, ls, tuple(y_hat))
    t0 = time.perf_counter()
    index = scale_indexes(np.asarray(scale), bundle.tables.scale_table)
    q = symbols_fn(i, np.asarray(mu), index).astype(np.float32)
    _coding_time(timer, t0)
    y_hat.append(timer("refine", programs.refine, params, i, support, q, mu))
  return y_hat


def encode(bundle, image, multiple: int = DEFAULT_MULTIPLE, reconstruct: bool = False,
           max_pixels: int = MAX_PIXELS, optimize: int = 0,
           optimize_lr: float = DEFAULT_LEARNING_RATE) -> Encoded:
  """Encode an image (``(H, W, 3)`` uint8, or float in [0, 1]).

  ``reconstruct`` also runs the synthesis (``Encoded.image``: the pixels the decoder
  will produce); ``max_pixels`` limits the padded size; ``optimize`` > 0 searches a
  better ``y`` for this image in that many gradient steps (Adam, ``optimize_lr``)
  before coding (``latent_optimization``: slower encoding, the same decoder).
  """
  multiple = check_multiple(multiple)
  if not isinstance(optimize, (int, np.integer)) or optimize < 0:
    raise CodecError("optimisation steps must be a non-negative integer, "
                     f"got {optimize!r}")
  x = _as_image(image)
  height, width = x.shape[:2]
  xp, padding = pad_centered(x[None], multiple)
  _check_size(height, width, padding, max_pixels)
  timer = _Timer()
  y, z = timer("analysis", bundle.programs.analysis, bundle.device_params, xp)
  t0 = time.perf_counter()
  y, z = np.asarray(y), np.asarray(z)
  if not (np.all(np.isfinite(y)) and np.all(np.isfinite(z))):
    raise CodecError("the model produced non-finite latents (broken weights?)")
  medians = bundle.medians
  z_sym = quantize_symbols(z, medians)
  z_hat = dequantize_z(z_sym, medians)
  _coding_time(timer, t0)
  if optimize:
    y = timer("optimize", lambda *a: optimize_latents(*a, learning_rate=optimize_lr)[0],
              bundle, xp, padding, y, z_hat, optimize)
  t0 = time.perf_counter()
  y_slices = np.split(y, np.cumsum(bundle.model.sizes)[:-1], axis=-1)
  y_symbols, y_indexes, checks = [], [], []

  def symbols_fn(i, mu, index):
    if not np.all(np.isfinite(mu)):
      raise CodecError("the model produced non-finite means (broken weights?)")
    s = quantize_symbols(y_slices[i], mu)
    y_symbols.append(s)
    y_indexes.append(index)
    checks.append(fmt.index_check(index))
    return s

  _coding_time(timer, t0)
  y_hat = slice_loop(bundle, z_hat, symbols_fn, timer)
  t0 = time.perf_counter()
  ans = new_coder()
  for s, idx in zip(y_symbols[::-1], y_indexes[::-1]):
    push_symbols(ans, s, idx, bundle.y_models)
  y_part = coder_to_bytes(ans)
  ans = new_coder()
  push_symbols(ans, z_sym, _z_indexes(z_sym.shape), bundle.z_models)
  z_part = coder_to_bytes(ans)
  data = fmt.pack(bundle.model_id, height, width, padding, checks, z_part, y_part)
  _coding_time(timer, t0)
  image_out = None
  if reconstruct:
    image_out = _reconstruct(bundle, y_hat, padding, timer)
  header = fmt.parse_header(data)
  return Encoded(data, header, z_hat, np.concatenate([np.asarray(s) for s in y_hat], -1),
                 image_out, timer.times)


def _reconstruct(bundle, y_hat, padding, timer: _Timer) -> np.ndarray:
  x_hat = timer("synthesis", bundle.programs.synthesis, bundle.device_params, tuple(y_hat))
  t0 = time.perf_counter()
  out = to_uint8(crop(np.asarray(x_hat), padding)[0])
  timer.times["output"] = time.perf_counter() - t0
  return out


def decode(bundle, data: bytes, max_pixels: int = MAX_PIXELS) -> Decoded:
  """Decode a stream; raises ``CodecError`` for anything that is not a valid stream
  of this model. Streams declaring more than ``max_pixels`` padded pixels are refused
  before any work is done."""
  timer = _Timer()
  t0 = time.perf_counter()
  header, z_part, y_part = fmt.parse(bytes(data), DOWNSAMPLING)
  if header.model_id != bundle.model_id:
    raise CodecError(f"the stream was written with model {header.model_id.hex()}, not "
                     f"with {bundle.describe()}")
  if header.num_slices != len(bundle.model.sizes):
    raise CodecError(f"corrupt stream: {header.num_slices} slices, the model has "
                     f"{len(bundle.model.sizes)}")
  _check_size(header.height, header.width, header.padding, max_pixels)
  hz = header.padded_height // DOWNSAMPLING
  wz = header.padded_width // DOWNSAMPLING
  n = int(bundle.model.N)
  ans = coder_from_bytes(z_part, "z")
  z_sym = pop_symbols(ans, _z_indexes((1, hz, wz, n)), bundle.z_models)
  if not ans.is_empty():
    raise CodecError("corrupt stream: data left over in the z part")
  z_hat = dequantize_z(z_sym, bundle.medians)
  ans = coder_from_bytes(y_part, "y")
  _coding_time(timer, t0)

  def symbols_fn(i, mu, index):
    if fmt.index_check(index) != header.index_checks[i]:
      raise CodecError(
          f"cannot decode exactly here: the entropy parameters of slice {i} differ from "
          "the encoder's (a version 1 bundle computes them in float: decode with the "
          "jax/XLA version, backend and CPU thread count the stream was encoded "
          "with; version 2 bundles are portable)")
    return pop_symbols(ans, index, bundle.y_models)

  y_hat = slice_loop(bundle, z_hat, symbols_fn, timer)
  if not ans.is_empty():
    raise CodecError("corrupt stream: data left over in the y part")
  image = _reconstruct(bundle, y_hat, header.padding, timer)
  return Decoded(image, header, z_hat, np.concatenate([np.asarray(s) for s in y_hat], -1),
                 timer.times)


def compress(model, image, multiple: int = DEFAULT_MULTIPLE) -> bytes:
  """Compress an ``(H, W, 3)`` image (uint8, or float in [0, 1]) with a model bundle."""
  return encode(model, image, multiple).data


def decompress(model, data: bytes) -> np.ndarray:
  """Decompress a stream with the model bundle that wrote it: uint8 ``(H, W, 3)``."""
  return decode(model, data).image
