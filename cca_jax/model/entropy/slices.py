"""Uneven channel groups (official models/vae.py, ``prop_slices``).

``prop_slices = [1, 2^k, 3^k, ..., n^k]``; ``size_i = floor(M / sum(prop) * prop_i)``
and the last slice absorbs the remainder, exactly as the official code computes it.
For M = 320, k = 1.7, n = 5 this gives [8, 28, 56, 92, 136]; k = 0 gives the even
grouping [64] * 5.
"""

from __future__ import annotations

import math


def slice_sizes(M: int, k: float, num_slices: int) -> list[int]:
  props = [float(i + 1) ** k for i in range(num_slices)]
  total = sum(props)
  sizes = [int(math.floor(M / total * p)) for p in props]
  sizes[-1] += M - sum(sizes)
  if min(sizes) < 1:
    raise ValueError(f"slice sizes {sizes} for M={M}, k={k}, n={num_slices} "
                     "contain an empty slice")
  return sizes
