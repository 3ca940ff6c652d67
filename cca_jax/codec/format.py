"""The ``.cca`` bitstream container (version 1; docs/format.md is the reference).

A header, then the z part, then the y part (``n`` = number of y slices, 5 for the
paper model; the header is ``35 + 2n`` bytes)::

  offset  size field
       0     4 magic            b"\x89CCA"
       4     1 version          1
       5     1 flags            0 (reserved; other values are refused)
       6     8 model id         first 8 bytes of the model bundle's sha256
      14     2 height           original image height, 1 .. 65535
      16     2 width            original image width, 1 .. 65535
      18     1 pad top          zero rows added above (centred padding)
      19     1 pad bottom
      20     1 pad left
      21     1 pad right
      22     1 n                number of y slices (must match the model)
      23    2n index checks     per slice: crc32 of its scale indexes (uint8), low 16 bits
  23+2n      4 z length         bytes of the z part (a multiple of 4)
  27+2n      4 y length         bytes of the y part (a multiple of 4)
  31+2n      4 crc32            zlib.crc32 of all header bytes before it and both parts
  35+2n        z part           constriction ANS words, little-endian uint32
                 y part           ditto

Integers are big-endian. The file is exactly ``35 + 2n + z length + y length`` bytes.
The padded size ``(height + top + bottom, width + left + right)`` must be a multiple
of the model's down-sampling (64); the decoder derives every latent shape from it and
the model. The index checks let the decoder detect, before decoding a slice, that its
entropy parameters differ from the encoder's (another XLA build, backend or CPU thread
count), instead of decoding garbage. ``parse`` checks, in this order: length, magic,
version, flags, declared lengths, checksum, sizes; each failure is a ``CodecError``
with a one-line message.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib

from cca_jax.codec.errors import CodecError

MAGIC = b"\x89CCA"
VERSION = 1
MODEL_ID_BYTES = 8
MAX_SIDE = 65535
_FIXED = struct.Struct(">4sBB8sHHBBBBB")   # up to and including n (23 bytes)
_LENGTHS = struct.Struct(">II")
_CRC = struct.Struct(">I")
MAX_SLICES = 255


def header_size(num_slices: int) -> int:
  """``35 + 2 n`` bytes."""
  return _FIXED.size + 2 * num_slices + _LENGTHS.size + _CRC.size


def index_check(indexes) -> int:
  """The 16-bit check of one slice's scale indexes (crc32 of them as uint8)."""
  import numpy as np
  return zlib.crc32(np.ascontiguousarray(indexes, np.uint8).tobytes()) & 0xFFFF


@dataclasses.dataclass(frozen=True)
class Header:
  """The decoded header of a version-1 stream."""
  model_id: bytes
  height: int
  width: int
  padding: tuple  # ((top, bottom), (left, right))
  index_checks: tuple  # one 16-bit check per y slice
  z_length: int
  y_length: int
  version: int = VERSION

  @property
  def num_slices(self) -> int:
    return len(self.index_checks)

  @property
  def header_size(self) -> int:
    return header_size(self.num_slices)

  @property
  def padded_height(self) -> int:
    return self.height + sum(self.padding[0])

  @property
  def padded_width(self) -> int:
    return self.width + sum(self.padding[1])

  @property
  def total_length(self) -> int:
    return self.header_size + self.z_length + self.y_length


def pack(model_id: bytes, height: int, width: int, padding, index_checks,
         z_part: bytes, y_part: bytes) -> bytes:
  """Assemble a stream. ``padding`` is ``((top, bottom), (left, right))``,
  ``index_checks`` one ``index_check`` per y slice."""
  (t, b), (l, r) = padding
  checks = [int(c) for c in index_checks]
  if len(model_id) != MODEL_ID_BYTES:
    raise ValueError(f"model id must be {MODEL_ID_BYTES} bytes")
  if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
    raise CodecError(f"image size {height}x{width} is outside 1..{MAX_SIDE} per side")
  if max(t, b, l, r) > 255 or min(t, b, l, r) < 0:
    raise ValueError(f"padding {padding} does not fit the header (0..255 per side)")
  if not 1 <= len(checks) <= MAX_SLICES or not all(0 <= c <= 0xFFFF for c in checks):
    raise ValueError("index checks: 1..255 values of 16 bits")
  head = b"".join([
      _FIXED.pack(MAGIC, VERSION, 0, model_id, height, width, t, b, l, r, len(checks)),
      struct.pack(f">{len(checks)}H", *checks),
      _LENGTHS.pack(len(z_part), len(y_part))])
  crc = zlib.crc32(y_part, zlib.crc32(z_part, zlib.crc32(head)))
  return b"".join([head, _CRC.pack(crc), z_part, y_part])


def parse_header(data: bytes) -> Header:
  """Check the header (not the checksum or the parts); raises ``CodecError``."""
  if len(data) == 0:
    raise CodecError("empty input: not a cca-jax stream")
  if len(data) < len(MAGIC) or data[:len(MAGIC)] != MAGIC:
    raise CodecError("not a cca-jax stream (bad magic)")
  if len(data) < 5:
    raise CodecError("truncated stream: no header")
  if data[4] != VERSION:
    raise CodecError(f"unsupported format version {data[4]} (this build reads "
                     f"version {VERSION})")
  if len(data) < _FIXED.size:
    raise CodecError(f"truncated stream: {len(data)} bytes, shorter than the header")
  (_, version, flags, model_id, h, w, t, b, l, r, n) = _FIXED.unpack_from(data)
  if flags != 0:
    raise CodecError(f"unsupported stream flags 0x{flags:02x}")
  if n == 0:
    raise CodecError("corrupt stream: no y slices")
  size = header_size(n)
  if len(data) < size:
    raise CodecError(f"truncated stream: {len(data)} bytes, the header alone is {size}")
  checks = struct.unpack_from(f">{n}H", data, _FIXED.size)
  zl, yl = _LENGTHS.unpack_from(data, _FIXED.size + 2 * n)
  return Header(model_id, h, w, ((t, b), (l, r)), tuple(checks), zl, yl, version)


def parse(data: bytes, multiple: int = 64) -> tuple[Header, bytes, bytes]:
  """Split and verify a stream: returns ``(header, z_part, y_part)``.

  ``multiple`` is the model's down-sampling factor the padded size must divide by.
  """
  header = parse_header(data)
  if len(data) < header.total_length:
    raise CodecError(f"truncated stream: {len(data)} bytes, the header declares "
                     f"{header.total_length}")
  if len(data) > header.total_length:
    raise CodecError(f"{len(data) - header.total_length} unexpected bytes after the end "
                     "of the stream")
  at = header.header_size - _CRC.size
  crc = zlib.crc32(data[header.header_size:], zlib.crc32(data[:at]))
  if crc != _CRC.unpack_from(data, at)[0]:
    raise CodecError("corrupt stream: checksum mismatch")
  if header.height == 0 or header.width == 0:
    raise CodecError("corrupt stream: empty image size")
  if header.padded_height % multiple or header.padded_width % multiple:
    raise CodecError(f"corrupt stream: padded size {header.padded_height}x"
                     f"{header.padded_width} is not a multiple of {multiple}")
  if header.z_length % 4 or header.y_length % 4:
    raise CodecError("corrupt stream: part lengths must be multiples of 4")
  z_part = data[header.header_size:header.header_size + header.z_length]
  y_part = data[header.header_size + header.z_length:]
  return header, z_part, y_part
