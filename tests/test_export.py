"""cca_jax.export and the model bundle: inference weights only, config, coding tables,
content hash; reproducible bytes; verification on load; workdir sources."""

import io
import json
import zipfile

import numpy as np
import pytest

from cca_jax import export
from cca_jax.codec import (CodecError, find_bundle, load_bundle, make_bundle,
                           read_manifest)
from cca_jax.codec.bundle import MANIFEST, bundle_bytes
from cca_jax.model.entropy.tables import build_tables
from cca_jax.model.inference import inference_params


def test_export_a_training_workdir(tiny_workdir, tiny_config, tiny_params, tmp_path,
                                   capsys):
  out = tmp_path / "m.ccam"
  assert export.main(["--workdir", tiny_workdir, "--out", str(out)]) == 0
  b = load_bundle(str(out))
  assert "aux_entropymodel" in tiny_params and "aux_entropymodel" not in b.params
  assert b.config["aux_model"] is False and b.config["M"] == tiny_config.model.M
  expected = build_tables(inference_params(tiny_params))
  np.testing.assert_array_equal(b.tables.z.cdf, expected.z.cdf)
  np.testing.assert_array_equal(b.tables.y.cdf, expected.y.cdf)
  assert b.sha256 == make_bundle(tiny_config.model, tiny_params).sha256
  assert b.meta == {"source": "workdir", "path": tiny_workdir, "step": 0,
                    "lmbda": tiny_config.lmbda, "metric": tiny_config.metric}
  msg = capsys.readouterr().out
  assert b.model_id.hex() in msg and b.sha256 in msg
  manifest = read_manifest(str(out))
  assert manifest["sha256"] == b.sha256 and manifest["tables"]["scale_table"]["levels"] == 64
  # Reproducible: the same weights give the same bytes.
  out2 = tmp_path / "m2.ccam"
  assert export.main(["--workdir", tiny_workdir, "--out", str(out2)]) == 0
  assert out.read_bytes() == out2.read_bytes()
  # The same through the console script's sub-command.
  from cca_jax import cli
  out3 = tmp_path / "m3.ccam"
  assert cli.main(["export", "--workdir", tiny_workdir, "--out", str(out3)]) == 0
  assert out3.read_bytes() == out.read_bytes()
  # Members and their names.
  with zipfile.ZipFile(out) as zf:
    assert sorted(zf.namelist()) == ["integer.msgpack", "manifest.json", "params.msgpack",
                                     "tables.msgpack"]
  assert manifest["version"] == 2 and manifest["entropy_parameters"] == "integer"


def test_export_errors(tiny_workdir, tmp_path, capsys):
  cases = [
      (["--workdir", str(tmp_path / "missing"), "--out", str(tmp_path / "a")], "no such"),
      (["--workdir", str(tmp_path), "--out", str(tmp_path / "a")], "not a training"),
      (["--workdir", tiny_workdir, "--out", str(tmp_path)], "is a directory"),
  ]
  for argv, message in cases:
    assert export.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
  with pytest.raises(SystemExit) as e:
    export.main(["--out", "x"])
  assert e.value.code == 2


def test_weights_of_another_config_are_refused(tiny_params, tmp_path, capsys):
  from cca_jax.train.checkpointing import start_workdir
  from tests.conftest import load_config
  d = tmp_path / "w"
  start_workdir(str(d), load_config("cpu"), tiny_params)
  assert export.main(["--workdir", str(d), "--out", str(tmp_path / "o.ccam")]) == 1
  assert "do not fit" in capsys.readouterr().err


def _rewrite(path, out, member, fn):
  with zipfile.ZipFile(path) as zf:
    members = {n: zf.read(n) for n in zf.namelist()}
  members[member] = fn(members[member])
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, "w") as zf:
    for n, data in members.items():
      zf.writestr(n, data)
  out.write_bytes(buf.getvalue())


def _bump_lut(data):
  from flax import serialization
  luts = serialization.msgpack_restore(data)
  luts["gelu"] = np.array(luts["gelu"]).copy()
  luts["gelu"][100] += 1
  return serialization.msgpack_serialize(luts)


def test_bundles_are_verified_on_load(tiny_config, tiny_params, tmp_path):
  b = make_bundle(tiny_config.model, tiny_params)
  good = tmp_path / "good.ccam"
  good.write_bytes(bundle_bytes(b))
  assert load_bundle(str(good)).sha256 == b.sha256

  def manifest(fn):
    return lambda data: json.dumps(fn(json.loads(data))).encode()

  cases = {
      "hash": (MANIFEST, manifest(lambda d: {**d, "sha256": "0" * 64}), "hash mismatch"),
      "version": (MANIFEST, manifest(lambda d: {**d, "version": 3}), "version 3"),
      # The hash covers the version: a version 2 bundle cannot pass for a float one.
      "old version": (MANIFEST, manifest(lambda d: {**d, "version": 1}), "hash mismatch"),
      "lookup tables": ("integer.msgpack", _bump_lut, "hash mismatch"),
      "format": (MANIFEST, manifest(lambda d: {**d, "format": "x"}), "not a cca-jax"),
      "config": (MANIFEST, manifest(lambda d: {**d, "model": {**d["model"], "k": 1.5}}),
                 "hash mismatch"),
      "params": ("params.msgpack", lambda data: data[:-10], "damaged"),
  }
  for name, (member, fn, message) in cases.items():
    bad = tmp_path / f"{name}.ccam"
    _rewrite(good, bad, member, fn)
    with pytest.raises(CodecError, match=message):
      load_bundle(str(bad))
  (tmp_path / "junk.ccam").write_bytes(b"junk")
  with pytest.raises(CodecError, match="not a cca-jax model bundle"):
    load_bundle(str(tmp_path / "junk.ccam"))


def test_find_bundle(tiny_config, tiny_params, tmp_path):
  b = make_bundle(tiny_config.model, tiny_params)
  (tmp_path / "a.ccam").write_bytes(bundle_bytes(b))
  (tmp_path / "notes.txt").write_text("not a bundle")
  assert find_bundle(str(tmp_path)) == str(tmp_path / "a.ccam")
  assert find_bundle(str(tmp_path), b.model_id) == str(tmp_path / "a.ccam")
  with pytest.raises(CodecError, match="no model with id"):
    find_bundle(str(tmp_path), b"\x00" * 8)
  with pytest.raises(CodecError, match="no such"):
    find_bundle(str(tmp_path / "nothing"))
