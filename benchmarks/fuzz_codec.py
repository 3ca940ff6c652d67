"""Fuzz the decoder with 10,000 mutated streams (results in docs/benchmarks.md).

  .venv/bin/python benchmarks/fuzz_codec.py [--count 10000] [--seed 0]

A stream of the tiny config (random weights with spread latents,
``tests.lively_weights.lively_params``) for a 100x120 image, mutated by
``tests.fuzz_streams.mutations`` (random bytes, empty input, wrong magic, other
version, flags, truncation, bit flips, overwritten and appended bytes, another
model's stream, absurd declared sizes, and mutations with the checksum recomputed).
Every decode must either succeed (only possible for resealed mutations) or raise a
one-line ``CodecError``; anything else is a bug and makes the script exit 1. The
streams are decoded through the API with ``max_pixels`` at 4x the original padded
size (so a resealed header cannot ask for hours of work); the CLI path is covered
by tests/test_codec_fuzz.py.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--count", type=int, default=10_000)
  p.add_argument("--seed", type=int, default=0)
  args = p.parse_args(argv)

  from tqdm import tqdm
  from cca_jax.codec import CodecError, compress, decode
  from tests.fuzz_streams import KINDS, mutations
  from tests.codec_helpers import synthetic_image, tiny_bundles
  from tests.conftest import load_config
  from cca_jax.model.cca import CCAModel, init_params

  cfg = load_config("tiny")
  bundles = tiny_bundles(cfg, init_params(CCAModel.from_config(cfg.model), seed=0))
  x = synthetic_image(100, 120)
  stream = compress(bundles["lively"], x)
  other = compress(bundles["other"], x)
  print(f"stream: {len(stream)} bytes; {args.count} mutations, seed {args.seed}")

  outcomes = collections.Counter()
  examples = {}
  bugs = []
  t0 = time.perf_counter()
  for kind, data, must_fail in tqdm(mutations(stream, other, args.count, args.seed),
                                    total=args.count, desc="fuzz"):
    try:
      decode(bundles["lively"], data, max_pixels=4 * 128 * 128)
      outcomes[kind, "decoded"] += 1
      if must_fail:
        bugs.append((kind, "a damaged stream was decoded"))
    except CodecError as e:
      msg = str(e)
      if not msg or "\n" in msg:
        bugs.append((kind, f"not a one-line message: {msg!r}"))
      outcomes[kind, "refused"] += 1
      examples.setdefault(kind, collections.Counter())[msg.split(":")[0]] += 1
    except Exception:  # noqa: BLE001  (a bug: record it)
      bugs.append((kind, traceback.format_exc().strip().splitlines()[-1]))
      outcomes[kind, "BUG"] += 1
  elapsed = time.perf_counter() - t0

  print(f"\n{'mutation':18} {'refused':>8} {'decoded':>8} {'bug':>5}  most common message")
  for kind in KINDS:
    common = examples.get(kind, collections.Counter()).most_common(1)
    print(f"{kind:18} {outcomes[kind, 'refused']:8} {outcomes[kind, 'decoded']:8} "
          f"{outcomes[kind, 'BUG']:5}  {common[0][0] if common else ''}")
  total_refused = sum(v for (k, r), v in outcomes.items() if r == "refused")
  total_decoded = sum(v for (k, r), v in outcomes.items() if r == "decoded")
  print(f"\n{args.count} mutations in {elapsed:.1f} s: {total_refused} refused with a "
        f"one-line error, {total_decoded} decoded (resealed only), {len(bugs)} bugs")
  for kind, what in bugs[:10]:
    print(f"BUG {kind}: {what}")
  return 1 if bugs else 0


if __name__ == "__main__":
  sys.exit(main())
