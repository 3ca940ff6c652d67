"""Mutations of valid streams, to fuzz the decoder (tests/test_codec_fuzz.py and
benchmarks/fuzz_codec.py).

``mutations(stream, other_model_stream, count, seed)`` yields ``(kind, data,
must_fail)``. Plain mutations (random bytes, empty input, wrong magic, other version,
flags, truncation, bit flips, overwritten or appended bytes, a stream of another
model, an absurdly large declared size) must be refused with a ``CodecError``.
*Resealed* mutations recompute the checksum after changing the header or the
payload, to reach the checks behind it; such a stream may be a valid stream of
another image (``must_fail`` false), but the decoder must still either decode it or
refuse it with a ``CodecError``, never fail otherwise.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from cca_jax.codec import format as fmt



def _header_size(data: bytes) -> int:
  return fmt.header_size(data[22]) if len(data) > 22 else len(data) + 1


def reseal(data: bytes) -> bytes:
  """Recompute the checksum of a (possibly mutated) stream."""
  size = _header_size(data)
  if len(data) < size:
    return data
  at = size - 4
  crc = zlib.crc32(data[size:], zlib.crc32(data[:at]))
  return data[:at] + struct.pack(">I", crc) + data[size:]


def _set(data: bytes, offset: int, value: bytes) -> bytes:
  return data[:offset] + value + data[offset + len(value):]


def _bit_flips(data, rng, n):
  b = bytearray(data)
  for pos in rng.integers(0, 8 * len(b), n):
    b[pos // 8] ^= 1 << (pos % 8)
  return bytes(b)


def _mutate(kind: str, data: bytes, other: bytes, rng: np.random.Generator) -> bytes:
  n = len(data)
  if kind == "empty":
    return b""
  if kind == "random_bytes":
    return rng.bytes(int(rng.integers(1, 2 * n)))
  if kind == "magic_then_random":
    return fmt.MAGIC + rng.bytes(int(rng.integers(0, 2 * n)))
  if kind == "wrong_magic":
    return _bit_flips(data[:4], rng, 1) + data[4:]
  if kind == "other_version":
    return _set(data, 4, bytes([int(rng.choice([0, 2, 3, 255]))]))
  if kind == "flags":
    return _set(data, 5, bytes([int(rng.integers(1, 256))]))
  if kind == "truncate":
    return data[:int(rng.integers(0, n))]
  if kind == "bit_flip":
    return _bit_flips(data, rng, int(rng.integers(1, 9)))
  if kind == "overwrite":
    start = int(rng.integers(0, n))
    chunk = rng.bytes(int(rng.integers(1, 17)))
    out = _set(data, start, chunk)[:n]
    return out if out != data else _bit_flips(data, rng, 1)
  if kind == "append":
    return data + rng.bytes(int(rng.integers(1, 65)))
  if kind == "other_model":
    return other
  if kind == "huge_size":
    side = int(rng.choice([65535, 40000, 20000]))
    pad = -side % 64
    fields = struct.pack(">HHBBBB", side, side, 0, pad, 0, pad)
    return reseal(_set(data, 14, fields))
  if kind == "resealed_header":
    b = bytearray(data)
    for pos in rng.integers(14, _header_size(data) - 4, int(rng.integers(1, 4))):
      b[pos] = int(rng.integers(0, 256))
    return reseal(bytes(b))
  if kind == "resealed_payload":
    size = _header_size(data)
    if n <= size:
      return reseal(data)
    b = bytearray(data)
    for pos in rng.integers(size, n, int(rng.integers(1, 9))):
      b[pos] = int(rng.integers(0, 256))
    return reseal(bytes(b))
  raise ValueError(f"unknown mutation {kind!r}")


MUST_FAIL = ("empty", "random_bytes", "magic_then_random", "wrong_magic",
             "other_version", "flags", "truncate", "bit_flip", "overwrite", "append",
             "other_model", "huge_size")
MAY_SUCCEED = ("resealed_header", "resealed_payload")
KINDS = MUST_FAIL + MAY_SUCCEED


def mutations(stream: bytes, other: bytes, count: int, seed: int = 0):
  """Yield ``(kind, data, must_fail)``, cycling through ``KINDS``."""
  rng = np.random.default_rng(seed)
  for k in range(count):
    kind = KINDS[k % len(KINDS)]
    yield kind, _mutate(kind, stream, other, rng), kind in MUST_FAIL
