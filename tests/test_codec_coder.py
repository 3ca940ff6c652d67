"""The entropy coder (grouped categorical ANS coding with escapes) and the container
format, without a model."""

import hashlib
import struct

import numpy as np
import pytest

from cca_jax.codec import format as fmt
from cca_jax.codec.coder import (SYMBOL_LIMIT, TableModels, coder_from_bytes,
                                 coder_to_bytes, new_coder, pop_symbols, push_symbols)
from cca_jax.codec.errors import CodecError
from cca_jax.model.entropy.gaussian import gaussian_likelihood
from cca_jax.model.entropy.tables import (CodingTables, coding_scale_table, gaussian_tables,
                                    quantize_cdf)


@pytest.fixture(scope="module")
def y_models():
  return TableModels(gaussian_tables(coding_scale_table()))


def _round_trip(models, symbols, index):
  c = new_coder()
  push_symbols(c, symbols, index, models)
  data = coder_to_bytes(c)
  d = coder_from_bytes(data, "test")
  out = pop_symbols(d, index, models)
  assert d.is_empty()
  return out, data


def test_round_trip_with_escapes_and_extremes(y_models):
  rng = np.random.default_rng(0)
  st = coding_scale_table()
  index = rng.integers(0, 64, (3, 50, 7)).astype(np.int32)
  sym = np.round(rng.normal(0, st[index])).astype(np.int32)
  flat = sym.reshape(-1)
  flat[:40] = rng.integers(-SYMBOL_LIMIT, SYMBOL_LIMIT + 1, 40)  # escapes of all sizes
  flat[40:46] = [SYMBOL_LIMIT, -SYMBOL_LIMIT, 2, -2, 1565, -1565]
  out, _ = _round_trip(y_models, sym, index)
  assert out.shape == sym.shape and out.dtype == np.int32
  np.testing.assert_array_equal(out, sym)
  with pytest.raises(ValueError):
    push_symbols(new_coder(), np.array([SYMBOL_LIMIT + 1]), np.array([0]), y_models)
  with pytest.raises(ValueError):
    push_symbols(new_coder(), np.array([0]), np.array([64]), y_models)


def test_empty_and_single_symbols(y_models):
  out, data = _round_trip(y_models, np.zeros((0,), np.int32), np.zeros((0,), np.int32))
  assert out.size == 0 and data == b""
  out, _ = _round_trip(y_models, np.array([7]), np.array([5]))
  assert out.tolist() == [7]


def test_several_arrays_on_one_stack(y_models):
  """Arrays pushed in reverse come back in order (how slices share one stream)."""
  rng = np.random.default_rng(1)
  arrays = [(rng.integers(-30, 30, n), rng.integers(0, 64, n)) for n in (5, 300, 17)]
  c = new_coder()
  for s, i in arrays[::-1]:
    push_symbols(c, s, i, y_models)
  d = coder_from_bytes(coder_to_bytes(c), "test")
  for s, i in arrays:
    np.testing.assert_array_equal(pop_symbols(d, i, y_models), s)
  assert d.is_empty()


def test_real_bits_within_one_percent_of_the_likelihood(y_models):
  """Gaussian symbols with scales spread over the table: the coded size is within
  1% of sum(-log2 p) under the exact scales (the 64-level table and the 16-bit
  frequencies cost a few tenths of a percent), and within 0.1% of the table's own
  ideal size (the ANS coder's overhead)."""
  rng = np.random.default_rng(2)
  st = coding_scale_table()
  n = 200_000
  scales = np.exp(rng.uniform(np.log(0.3), np.log(40.0), n)).astype(np.float32)
  sym = np.round(rng.normal(0.0, scales)).astype(np.int32)
  index = np.searchsorted(st[:-1], scales).astype(np.int32)
  _, data = _round_trip(y_models, sym, index)
  real = 8 * len(data)
  exact = -np.log2(np.asarray(gaussian_likelihood(sym.astype(np.float32), scales),
                              np.float64)).sum()
  t = y_models.tables
  f = t.cdf[index, sym - t.offset[index] + 1].astype(np.float64) - \
      t.cdf[index, sym - t.offset[index]]
  table_ideal = -np.log2(f / 65536.0).sum()
  print(f"real {real} bits, table ideal {table_ideal:.0f}, exact scales {exact:.0f}")
  assert real == pytest.approx(exact, rel=0.01)
  assert real == pytest.approx(table_ideal, rel=0.001)


def test_corrupt_parts_are_refused():
  with pytest.raises(CodecError, match="whole number"):
    coder_from_bytes(b"abc", "y")
  with pytest.raises(CodecError, match="invalid"):
    coder_from_bytes(b"\x01\x00\x00\x00" + b"\x00" * 4, "y")


def test_coder_golden_bytes():
  """Tables and symbols from integer arithmetic only: the bytes depend on nothing
  but the coder, the table quantization and constriction (no XLA numerics)."""
  k = np.array([3, 11, 40])
  pmf = 1.0 / (1.0 + np.abs(np.arange(40)[None, :] - k[:, None] // 2)) ** 2
  cdf, length = quantize_cdf(pmf, np.array([1e-3, 1e-4, 1e-5]), k)
  models = TableModels(CodingTables(cdf, length, (-(k // 2)).astype(np.int32)))
  i = np.arange(5000)
  index = (i * 7) % 3
  sym = (i * 7919) % 23 - 11
  sym[::97] = (i[::97] * 104729) % 100000 - 50000  # escapes
  out, data = _round_trip(models, sym, index)
  np.testing.assert_array_equal(out, sym)
  assert hashlib.sha256(data).hexdigest() == CODER_GOLDEN, hashlib.sha256(data).hexdigest()


CODER_GOLDEN = "3bf39795eaf899d9e8327a9846d5f082bd33681afc9111bb7e004f0c684f71a6"


def _stream(z=b"\x01\x00\x00\x00", y=b"\x02\x00\x00\x00" * 2, checks=(7, 0xBEEF)):
  return fmt.pack(b"12345678", 100, 120, ((14, 14), (4, 4)), checks, z, y)


def test_header_layout_and_parse():
  data = _stream()
  assert fmt.header_size(2) == 39 and fmt.header_size(5) == 45
  assert len(data) == 39 + 12
  assert data[:4] == b"\x89CCA" and data[4] == 1 and data[5] == 0
  assert data[6:14] == b"12345678"
  assert struct.unpack(">HHBBBBBHHII", data[14:35]) == (
      100, 120, 14, 14, 4, 4, 2, 7, 0xBEEF, 4, 8)
  h, z, y = fmt.parse(data)
  assert (h.height, h.width, h.padded_height, h.padded_width) == (100, 120, 128, 128)
  assert h.index_checks == (7, 0xBEEF) and h.num_slices == 2
  assert (z, y) == (b"\x01\x00\x00\x00", b"\x02\x00\x00\x00" * 2)
  assert fmt.index_check(np.array([1, 2, 3])) == (__import__("zlib").crc32(b"\x01\x02\x03")
                                                  & 0xFFFF)


@pytest.mark.parametrize("mutate,message", [
    (lambda d: b"", "empty"),
    (lambda d: b"PNG" + d[3:], "magic"),
    (lambda d: d[:4] + b"\x02" + d[5:], "version 2"),
    (lambda d: d[:5] + b"\x01" + d[6:], "flags"),
    (lambda d: d[:20], "shorter than the header"),
    (lambda d: d[:30], "header alone"),
    (lambda d: d[:22] + b"\x00" + d[23:], "no y slices"),
    (lambda d: d[:-1], "truncated"),
    (lambda d: d + b"\x00", "unexpected bytes"),
    (lambda d: d[:40] + bytes([d[40] ^ 4]) + d[41:], "checksum"),
    (lambda d: d[:15] + bytes([d[15] ^ 1]) + d[16:], "checksum"),
])
def test_header_errors(mutate, message):
  with pytest.raises(CodecError, match=message):
    fmt.parse(mutate(_stream()))


def test_header_semantic_checks():
  from tests.fuzz_streams import reseal
  bad_pad = bytearray(_stream())
  bad_pad[18] = 13
  with pytest.raises(CodecError, match="multiple of 64"):
    fmt.parse(reseal(bytes(bad_pad)))
  with pytest.raises(CodecError, match="multiples of 4"):
    fmt.parse(_stream(z=b"\x01\x00\x00"))
  with pytest.raises(CodecError, match="outside"):
    fmt.pack(b"12345678", 70000, 10, ((0, 0), (0, 0)), [0], b"", b"")
