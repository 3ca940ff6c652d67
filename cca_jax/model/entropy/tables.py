"""Coding tables: the integer probability tables the entropy coder uses, as pure
functions of the weights (what ``update()`` of CompressAI's entropy models computes).

A table set holds ``T`` tables. Table ``j`` covers the ``K_j`` consecutive integer
symbols ``offset_j .. offset_j + K_j - 1`` and has one more entry, the *escape*, that
stands for every symbol outside that range (the coder then codes the overflow
separately, ``cca_jax.codec.coder``). Tables are stored as quantized CDFs in
CompressAI's layout: ``cdf[j, :cdf_length[j]]`` rises from 0 to ``2**precision`` over
``cdf_length[j] = K_j + 2`` entries (0, the K_j symbols, the escape); rows are padded
with ``2**precision``. Every entry has a frequency of at least 1, so every symbol can be
coded.

* ``factorized_tables``: z, one table per channel of the factorized density, over
  ``[median - ceil(median - q_low), median + ceil(q_high - median)]``
  (``EntropyBottleneck.update``); symbols are ``round(z - median)``, so the pmf is
  evaluated at ``median + integer``. The escape gets the density's two tail masses
  (CompressAI takes the upper tail at the longest table's end for every channel; here
  it is taken at each channel's own end).
* ``gaussian_tables``: y, one table per level of the scale table (0.11 .. 256, 64
  levels), symbols ``-c .. c`` with ``c = ceil(scale * Phi^-1(1 - tail_mass / 2))``
  (``GaussianConditional.update``); the escape gets both tails.
* ``scale_indexes``: CompressAI's ``build_indexes``: the first table level that is
  >= the (0.11-lower-bounded) scale, the last level for larger scales.
* ``quantize_cdf``: probabilities -> integer frequencies summing to ``2**precision``,
  each at least 1 (vectorised; largest-remainder rounding, deterministic).

The factorized densities are evaluated with the model's own float32 function
(``bottleneck.logits_cumulative``), the Gaussian ones in float64 on the host; the result
is integers, stored in the exported model bundle, so encoder and decoder use the same
tables on every machine.
"""

from __future__ import annotations

import dataclasses
from statistics import NormalDist

import jax
import jax.numpy as jnp
import numpy as np

from cca_jax.model.entropy.bottleneck import logits_cumulative
from cca_jax.model.entropy.gaussian import SCALE_BOUND, scale_table as default_scale_table

PRECISION = 16
TAIL_MASS = 1e-9
# Longest table accepted (symbols + escape must each get a frequency >= 1).
MAX_TABLE_SYMBOLS = 1 << 15


@dataclasses.dataclass(frozen=True)
class CodingTables:
  """``T`` quantized CDFs (see the module docstring for the layout)."""
  cdf: np.ndarray         # (T, L) uint32
  cdf_length: np.ndarray  # (T,) int32: K_j + 2
  offset: np.ndarray      # (T,) int32: the symbol at table position 0
  precision: int = PRECISION

  @property
  def num_tables(self) -> int:
    return int(self.cdf.shape[0])

  @property
  def num_symbols(self) -> np.ndarray:
    """``K_j``: in-range symbols per table (the escape is position ``K_j``)."""
    return self.cdf_length.astype(np.int64) - 2

  def frequencies(self, j: int) -> np.ndarray:
    """Integer frequencies of table ``j``: ``K_j`` symbols then the escape."""
    return np.diff(self.cdf[j, :self.cdf_length[j]].astype(np.int64))

  def to_dict(self) -> dict:
    return {"cdf": self.cdf, "cdf_length": self.cdf_length, "offset": self.offset,
            "precision": np.asarray(self.precision, np.int32)}

  @classmethod
  def from_dict(cls, d: dict) -> "CodingTables":
    return cls(np.asarray(d["cdf"], np.uint32), np.asarray(d["cdf_length"], np.int32),
               np.asarray(d["offset"], np.int32), int(np.asarray(d["precision"])))

  def validate(self) -> None:
    """Raise ``ValueError`` unless every row is a proper quantized CDF."""
    total = 1 << self.precision
    t = self.num_tables
    if (self.cdf.ndim != 2 or self.cdf_length.shape != (t,) or self.offset.shape != (t,)
        or t == 0):
      raise ValueError("coding tables: inconsistent shapes")
    if np.any(self.cdf_length < 3) or np.any(self.cdf_length > self.cdf.shape[1]):
      raise ValueError("coding tables: bad cdf lengths")
    cols = np.arange(self.cdf.shape[1])
    valid = cols[None, :] < self.cdf_length[:, None]
    c = self.cdf.astype(np.int64)
    if np.any(c[:, 0] != 0) or np.any(c[np.arange(t), self.cdf_length - 1] != total):
      raise ValueError("coding tables: rows must run from 0 to 2**precision")
    steps = np.diff(c, axis=1)
    if np.any((steps < 1) & valid[:, 1:]):
      raise ValueError("coding tables: every symbol needs a frequency >= 1")


def quantize_cdf(pmf: np.ndarray, tail_mass: np.ndarray, num_symbols: np.ndarray,
                 precision: int = PRECISION):
  """Quantize ``T`` probability rows into CDFs with integer frequencies.

  Args:
    pmf: ``(T, L)`` probabilities; row ``j`` uses its first ``num_symbols[j]`` entries.
    tail_mass: ``(T,)`` probability of the escape (everything outside the range).
    num_symbols: ``(T,)`` in-range symbols per row (``K_j``).
    precision: frequencies sum to ``2**precision``.

  Returns ``(cdf, cdf_length)``: ``cdf`` ``(T, max K + 2)`` uint32 and
  ``cdf_length = K + 2``. Each of the ``K_j + 1`` entries gets ``1 +
  floor(p * (2**precision - K_j - 1))`` and the remainder goes, one each, to the
  entries with the largest fractional parts (ties: lower index first).
  """
  pmf = np.asarray(pmf, np.float64)
  tail_mass = np.asarray(tail_mass, np.float64)
  k = np.asarray(num_symbols, np.int64)
  t = pmf.shape[0]
  total = 1 << precision
  if np.any(k < 1) or np.any(k + 1 > total // 2):
    raise ValueError(f"table sizes must be in [1, {total // 2 - 1}], got "
                     f"{int(k.min())}..{int(k.max())}")
  width = int(k.max()) + 1                           # symbols + escape
  cols = np.arange(width)
  p = np.zeros((t, width))
  p[:, :width - 1] = np.where(cols[None, :width - 1] < k[:, None], pmf[:, :width - 1], 0.0)
  p[np.arange(t), k] = tail_mass
  valid = cols[None, :] <= k[:, None]
  if not np.all(np.isfinite(p)) or np.any(p < 0):
    raise ValueError("probabilities must be finite and non-negative")
  sums = p.sum(axis=1, keepdims=True)
  p = np.where(sums > 0, p / np.where(sums > 0, sums, 1.0), valid / (k[:, None] + 1.0))
  free = (total - (k + 1)).astype(np.float64)[:, None]
  scaled = p * free
  base = np.floor(scaled)
  freq = np.where(valid, 1 + base, 0).astype(np.int64)
  remainder = total - freq.sum(axis=1)               # in [0, K_j + 1)
  frac = np.where(valid, scaled - base, -1.0)
  order = np.argsort(-frac, axis=1, kind="stable")
  rank = np.empty_like(order)
  np.put_along_axis(rank, order, np.broadcast_to(cols, order.shape), axis=1)
  freq += (valid & (rank < remainder[:, None])).astype(np.int64)
  cdf = np.zeros((t, width + 1), np.int64)
  cdf[:, 1:] = np.cumsum(freq, axis=1)
  assert np.all(cdf[:, -1] == total)
  return cdf.astype(np.uint32), (k + 2).astype(np.int32)


def _num_layers(params: dict) -> int:
  return sum(1 for n in params if n.startswith("matrices_"))


def factorized_tables(bottleneck_params: dict, precision: int = PRECISION) -> CodingTables:
  """Per-channel tables of a factorized ``EntropyBottleneck`` (its parameter dict)."""
  q = np.asarray(bottleneck_params["quantiles"], np.float32)[:, 0, :]
  if not np.all(np.isfinite(q)):
    raise ValueError("entropy bottleneck quantiles are not finite")
  medians = q[:, 1]
  minima = np.maximum(np.ceil(medians - q[:, 0]), 0).astype(np.int64)
  maxima = np.maximum(np.ceil(q[:, 2] - medians), 0).astype(np.int64)
  k = minima + maxima + 1
  if k.max() > MAX_TABLE_SYMBOLS:
    raise ValueError(f"entropy bottleneck quantiles span {int(k.max())} symbols "
                     f"(at most {MAX_TABLE_SYMBOLS}): the quantiles are not trained")
  start = (medians - minima.astype(np.float32)).astype(np.float32)
  samples = np.arange(int(k.max()), dtype=np.float32)[:, None] + start[None, :]  # (L, C)
  dens = {n: jnp.asarray(v) for n, v in bottleneck_params.items() if n != "quantiles"}
  layers = _num_layers(dens)
  lower = np.asarray(logits_cumulative(dens, jnp.asarray(samples - 0.5), layers)).T
  upper = np.asarray(logits_cumulative(dens, jnp.asarray(samples + 0.5), layers)).T
  sign = -np.sign(lower + upper)
  sig = lambda v: np.asarray(jax.nn.sigmoid(jnp.asarray(v)), np.float64)
  pmf = np.abs(sig(sign * upper) - sig(sign * lower))
  rows = np.arange(len(k))
  tail = sig(lower[:, 0]) + sig(-upper[rows, k - 1])
  cdf, length = quantize_cdf(pmf, tail, k, precision)
  return CodingTables(cdf, length, (-minima).astype(np.int32), precision)


def gaussian_tables(scales: np.ndarray, tail_mass: float = TAIL_MASS,
                    precision: int = PRECISION) -> CodingTables:
  """One table per scale of the zero-mean discretised Gaussian (symbols ``-c .. c``)."""
  scales = np.asarray(scales, np.float32)
  multiplier = -NormalDist().inv_cdf(tail_mass / 2)
  centre = np.ceil(scales.astype(np.float64) * multiplier).astype(np.int64)
  k = 2 * centre + 1
  samples = np.abs(np.arange(int(k.max()), dtype=np.float64)[None, :]
                   - centre[:, None].astype(np.float64))
  # float64 host arithmetic (scipy's erfc), not XLA's float32 erfc: the tables are then
  # the same on every machine (XLA's erfc differs in the last bits between instruction
  # sets) and match the float32 definition to ~1e-7.
  from scipy import special  # here, not at import: the codec commands never need it
  s = scales.astype(np.float64)[:, None]
  upper = 0.5 * special.erfc(-(2.0 ** -0.5) * (0.5 - samples) / s)
  lower = 0.5 * special.erfc(-(2.0 ** -0.5) * (-0.5 - samples) / s)
  pmf = upper - lower
  tail = 2.0 * lower[:, 0]
  cdf, length = quantize_cdf(pmf, tail, k, precision)
  return CodingTables(cdf, length, (-centre).astype(np.int32), precision)


def coding_scale_table() -> np.ndarray:
  """The 64 coder scales 0.11 .. 256 as float32 (what the indexes compare against)."""
  return default_scale_table().astype(np.float32)


def scale_indexes(scales: np.ndarray, table: np.ndarray) -> np.ndarray:
  """CompressAI's ``build_indexes``: for each scale (lower-bounded at 0.11), the index
  of the first table level ``>= scale``; ``len(table) - 1`` for larger scales."""
  s = np.maximum(np.asarray(scales, np.float32), np.float32(SCALE_BOUND))
  table = np.asarray(table, np.float32)
  return np.searchsorted(table[:-1], s, side="left").astype(np.int32)


@dataclasses.dataclass(frozen=True)
class ModelTables:
  """Everything the coder needs besides the networks: z and y tables, scale table."""
  z: CodingTables
  y: CodingTables
  scale_table: np.ndarray  # (levels,) float32

  def to_dict(self) -> dict:
    return {"z": self.z.to_dict(), "y": self.y.to_dict(), "scale_table": self.scale_table}

  @classmethod
  def from_dict(cls, d: dict) -> "ModelTables":
    return cls(CodingTables.from_dict(d["z"]), CodingTables.from_dict(d["y"]),
               np.asarray(d["scale_table"], np.float32))


def build_tables(params: dict, precision: int = PRECISION,
                 tail_mass: float = TAIL_MASS) -> ModelTables:
  """The coding tables of a model, from its (inference) parameters."""
  st = coding_scale_table()
  return ModelTables(factorized_tables(params["z_entropy_bottleneck"], precision),
                     gaussian_tables(st, tail_mass, precision), st)

