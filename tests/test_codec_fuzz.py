"""Fuzzing the decoder: a few hundred mutated streams through the API and a set
through the CLI. Every refusal is a one-line CodecError (exit status 1), nothing
else is ever raised, and a failed command leaves no output file.
(benchmarks/fuzz_codec.py runs 10,000.)"""

import collections
import os

import pytest

from cca_jax import cli
from cca_jax.codec import CodecError, decode, save_bundle
from tests.fuzz_streams import KINDS, MUST_FAIL, mutations
from tests.codec_helpers import synthetic_image, tiny_bundles


@pytest.fixture(scope="module")
def streams(tiny_config, tiny_params):
  b = tiny_bundles(tiny_config, tiny_params)
  x = synthetic_image(100, 120)
  from cca_jax.codec import compress
  return b, compress(b["lively"], x), compress(b["other"], x)


def test_api_fuzz(streams):
  bundles, stream, other = streams
  bundle = bundles["lively"]
  outcomes = collections.Counter()
  for kind, data, must_fail in mutations(stream, other, 420, seed=1):
    try:
      dec = decode(bundle, data, max_pixels=4 * 128 * 128)
    except CodecError as e:
      msg = str(e)
      assert msg and "\n" not in msg, (kind, msg)
      outcomes[kind, "refused"] += 1
      continue
    assert not must_fail, f"{kind}: a damaged stream was decoded"
    assert dec.image.ndim == 3 and dec.image.shape[-1] == 3
    outcomes[kind, "decoded"] += 1
  assert sum(v for (k, r), v in outcomes.items() if r == "refused") >= 360
  for kind in MUST_FAIL:
    assert outcomes[kind, "refused"] >= 20, kind
  print(dict(outcomes))


def test_cli_fuzz(streams, tmp_path, capsys, monkeypatch):
  monkeypatch.setenv(cli.CACHE_ENV, "")
  bundles, stream, other = streams
  model = str(tmp_path / "m.ccam")
  save_bundle(bundles["lively"], model)
  kinds = [k for k in KINDS if k != "resealed_header"]  # keeps the decode size fixed
  n = 0
  for kind, data, must_fail in mutations(stream, other, 4 * len(KINDS), seed=2):
    if kind not in kinds:
      continue
    src, out = tmp_path / f"in{n}.cca", tmp_path / f"out{n}.png"
    src.write_bytes(data)
    rc = cli.main(["decompress", str(src), str(out), "--model", model, "--quiet"])
    err = capsys.readouterr().err
    if rc == 0:
      assert not must_fail and out.exists()
    else:
      assert rc == 1, (kind, err)
      lines = err.strip().splitlines()
      assert len(lines) == 1 and lines[0].startswith("error: "), (kind, err)
      assert "internal error" not in err, (kind, err)
      assert not out.exists()
      assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]
    n += 1
  assert n >= 40
