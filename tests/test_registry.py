"""Model lookup (cca_jax.codec.registry): shipped qualities, the per-user directory
that export registers into, $CCA_JAX_MODEL, model names in load_bundle and the CLI,
and float16 bundles."""

import json
import os

import jax
import numpy as np
import pytest

from cca_jax import cli, export
from cca_jax.codec import (CodecError, compress, decompress, load_bundle, make_bundle,
                           read_manifest, registry, save_bundle)
from tests.codec_helpers import synthetic_image, tiny_bundles


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
  """A fresh user directory and no compilation cache for in-process commands."""
  monkeypatch.setenv(registry.HOME_ENV, str(tmp_path / "home"))
  monkeypatch.delenv(registry.MODEL_ENV, raising=False)
  monkeypatch.setenv(cli.CACHE_ENV, "")


@pytest.fixture(scope="module")
def shipped(tiny_config, tiny_params, tmp_path_factory):
  """Three bundles as a shipped directory, lambdas 0.5 / 2 / 8 (quality 3 / 2 / 1)."""
  d = tmp_path_factory.mktemp("shipped")
  b = tiny_bundles(tiny_config, tiny_params)
  for name, key, lmbda in (("a_hi", "lively", 0.5), ("b_mid", "plain", 2.0),
                           ("c_lo", "other", 8.0)):
    bundle = make_bundle(b[key].config, b[key].params, {"lmbda": lmbda})
    save_bundle(bundle, str(d / f"{name}.ccam"))
  return str(d)


def _ids(entries):
  return [(e.quality, e.name) for e in entries]


def test_shipped_qualities_and_names(shipped, monkeypatch):
  monkeypatch.setattr(registry, "shipped_dir", lambda: shipped)
  assert _ids(registry.shipped_models()) == [(1, "c_lo"), (2, "b_mid"), (3, "a_hi")]
  assert registry.by_quality(None).name == "b_mid"          # the middle one
  assert os.path.basename(registry.resolve_name("q3")) == "a_hi.ccam"
  assert os.path.basename(registry.resolve_name("quality=1")) == "c_lo.ccam"
  assert registry.resolve_name("c_lo") == os.path.join(shipped, "c_lo.ccam")
  assert registry.resolve_name("no-such-name") is None
  with pytest.raises(CodecError, match="qualities 1 to 3"):
    registry.by_quality(4)
  # load_bundle takes names: "default", qualities, a model id.
  mid = load_bundle("default")
  assert mid.path.endswith("b_mid.ccam") and mid.meta["lmbda"] == 2.0
  assert load_bundle(mid.model_id.hex()).sha256 == mid.sha256
  with pytest.raises(CodecError, match="no such model"):
    load_bundle("no-such-name")


def test_retired_models_decode_their_streams(shipped, tmp_path, monkeypatch, capsys):
  """A replaced shipped model moves to models/retired/: not a quality any more, but a
  stream it wrote still decodes without --model, and `models` lists it."""
  import shutil
  d = tmp_path / "models"
  shutil.copytree(shipped, d)
  monkeypatch.setattr(registry, "shipped_dir", lambda: str(d))
  old = load_bundle("default")
  x = synthetic_image(64, 80)
  data = compress(old, x)
  (d / "retired").mkdir()
  os.replace(d / "b_mid.ccam", d / "retired" / "b_mid-r1.ccam")
  assert _ids(registry.shipped_models()) == [(1, "c_lo"), (2, "a_hi")]
  assert registry.by_id(old.model_id) == str(d / "retired" / "b_mid-r1.ccam")
  img, png = tmp_path / "s.cca", tmp_path / "s.png"
  img.write_bytes(data)
  assert cli.main(["decompress", str(img), str(png), "--quiet"]) == 0
  from PIL import Image
  np.testing.assert_array_equal(np.asarray(Image.open(png)), decompress(old, data))
  capsys.readouterr()
  assert cli.main(["models", "--json"]) == 0
  rows = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
  assert [(r["source"], r["quality"], r["name"]) for r in rows] == [
      ("shipped", 1, "c_lo"), ("shipped", 2, "a_hi"), ("retired", None, "b_mid-r1")]
  assert registry.resolve_name("b_mid-r1") is None  # not a name: found by id only


def test_no_shipped_models(tmp_path, monkeypatch):
  monkeypatch.setattr(registry, "shipped_dir", lambda: str(tmp_path / "none"))
  with pytest.raises(CodecError, match="no shipped models"):
    load_bundle("default")


def test_export_registers_and_decompress_finds_by_id(
    tiny_config, tiny_params, tiny_workdir, tmp_path, capsys, monkeypatch):
  monkeypatch.setattr(registry, "shipped_dir", lambda: str(tmp_path / "none"))
  weights = tiny_workdir
  out = tmp_path / "exported" / "mine.ccam"
  out.parent.mkdir()
  assert export.main(["--workdir", str(weights), "--out", str(out)]) == 0
  assert "registered as" in capsys.readouterr().out
  copy = os.path.join(registry.user_dir(), "mine.ccam")
  assert open(copy, "rb").read() == out.read_bytes()
  entries = registry.all_models()
  assert [(e.source, e.name) for e in entries] == [("user", "mine")]
  # compress with the file, decompress with no --model: found by the stream's id.
  img = tmp_path / "img.png"
  from PIL import Image
  Image.fromarray(synthetic_image(64, 80)).save(img)
  cca, png = tmp_path / "a.cca", tmp_path / "a.png"
  assert cli.main(["compress", str(img), str(cca), "--model", str(out), "--quiet"]) == 0
  os.remove(out)  # only the registered copy is left
  assert cli.main(["decompress", str(cca), str(png), "--quiet"]) == 0
  bundle = load_bundle(copy)
  np.testing.assert_array_equal(np.asarray(Image.open(png)),
                                decompress(bundle, cca.read_bytes()))
  # A bundle of another name with the same file name: registered under its id.
  other = make_bundle(tiny_config.model, tiny_params, {"source": "other"},
                      weights_dtype="float16")
  save_bundle(other, str(out))
  second = registry.register(str(out))
  assert os.path.basename(second) == f"{other.model_id.hex()}.ccam"
  assert registry.register(str(out)) == second  # idempotent
  # --no-register leaves the user directory alone.
  before = sorted(os.listdir(registry.user_dir()))
  assert export.main(["--workdir", str(weights), "--out", str(tmp_path / "n.ccam"),
                      "--no-register"]) == 0
  assert sorted(os.listdir(registry.user_dir())) == before
  # Unknown id: one line naming where it looked.
  capsys.readouterr()
  data = bytearray(cca.read_bytes())
  for p in registry.all_models():
    os.remove(p.path)
  assert cli.main(["decompress", str(cca), str(png)]) == 1
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and "no model with id" in err[0], err


def test_cli_quality_default_env_and_listing(shipped, tmp_path, capsys, monkeypatch,
                                             tiny_config, tiny_params):
  monkeypatch.setattr(registry, "shipped_dir", lambda: shipped)
  b = tiny_bundles(tiny_config, tiny_params)
  from PIL import Image
  img = tmp_path / "img.png"
  Image.fromarray(synthetic_image(64, 80)).save(img)

  def model_of(args):
    cca = tmp_path / "x.cca"
    assert cli.main(["compress", str(img), str(cca), "--quiet"] + args) == 0
    assert cli.main(["decompress", str(cca), str(tmp_path / "x.png"), "--quiet"]) == 0
    rc = cli.main(["info", str(cca), "--json"])
    assert rc == 0
    return json.loads(capsys.readouterr().out)["model_id"]

  ids = {e.name: e.model_id for e in registry.shipped_models()}
  assert model_of([]) == ids["b_mid"]
  assert model_of(["--quality", "1"]) == ids["c_lo"]
  assert model_of(["--model", "q3"]) == ids["a_hi"]
  # $CCA_JAX_MODEL naming one bundle is the default of compress (not with --quality).
  env_model = tmp_path / "env.ccam"
  save_bundle(b["calibrated"], str(env_model))
  monkeypatch.setenv(registry.MODEL_ENV, str(env_model))
  assert model_of([]) == b["calibrated"].model_id.hex()
  assert model_of(["--quality", "2"]) == ids["b_mid"]
  # Errors: a quality that does not exist, a name that is nothing: one line, exit 1.
  for args, text in ((["--quality", "9"], "qualities 1 to 3"),
                     (["--model", "nothing"], "no such model")):
    assert cli.main(["compress", str(img), str(tmp_path / "y.cca")] + args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and text in err[0], err
    assert not (tmp_path / "y.cca").exists()
  assert cli.main(["compress", str(img), str(tmp_path / "y.cca"), "--quality", "0"]) == 2
  # cca-jax models: env, then shipped with qualities, the default marked.
  capsys.readouterr()
  assert cli.main(["models"]) == 0
  out = capsys.readouterr().out
  assert "env.ccam" in out and "2*" in out and ids["a_hi"] in out
  assert cli.main(["models", "--json"]) == 0
  rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
  assert [(r["source"], r["quality"], r["default"]) for r in rows] == [
      ("env", None, False), ("shipped", 1, False), ("shipped", 2, True),
      ("shipped", 3, False)]
  assert {r["streams"] for r in rows} == {"portable"}  # version 2 bundles


def test_float16_bundle(tiny_config, tiny_params, tmp_path):
  b = tiny_bundles(tiny_config, tiny_params)["lively"]
  half = make_bundle(b.config, b.params, weights_dtype="float16")
  path = tmp_path / "h.ccam"
  save_bundle(half, str(path))
  assert read_manifest(str(path))["weights"] == "float16"
  full = tmp_path / "f.ccam"
  save_bundle(b, str(full))
  assert os.path.getsize(path) < 0.75 * os.path.getsize(full)
  loaded = load_bundle(str(path))
  assert loaded.sha256 == half.sha256 != b.sha256 and loaded.weights_dtype == "float16"
  leaf = loaded.params["h_a"]["layers_4"]["bias"]
  assert leaf.dtype == np.float32
  np.testing.assert_array_equal(leaf, np.asarray(b.params["h_a"]["layers_4"]["bias"],
                                                 np.float16).astype(np.float32))
  # Exact round trip with the loaded file, the same stream as the in-memory bundle.
  x = synthetic_image(64, 64)
  data = compress(loaded, x)
  assert data == compress(half, x)
  np.testing.assert_array_equal(decompress(loaded, data), decompress(half, data))
  with pytest.raises(CodecError, match="weights dtype"):
    make_bundle(b.config, b.params, weights_dtype="int8")
  big = {k: v for k, v in b.params.items()}
  big["h_a"] = {k: dict(v) for k, v in b.params["h_a"].items()}
  big["h_a"]["layers_4"]["bias"] = np.full_like(b.params["h_a"]["layers_4"]["bias"], 1e6)
  with pytest.raises(CodecError, match="overflows float16"):
    make_bundle(b.config, big, weights_dtype="float16")


def test_fine_tuning_from_a_bundle(tiny_config, tiny_params, tmp_path, shipped,
                                   monkeypatch, tiny_workdir):
  """``init_from`` naming a bundle (file or model name): its weights, the auxiliary
  model fresh from the seed; a workdir or an unknown name is left to the trainer;
  another model config is refused."""
  from cca_jax.codec.bundle import fine_tuning_params
  from cca_jax.model.cca import CCAModel
  from cca_jax.train.trainer import complete_params
  monkeypatch.setattr(registry, "shipped_dir", lambda: shipped)
  b = make_bundle(tiny_config.model, tiny_params, weights_dtype="float16")
  path = str(tmp_path / "b.ccam")
  save_bundle(b, path)
  params = fine_tuning_params(path, tiny_config.model)
  assert "aux_entropymodel" not in params and "aux_entropymodel" in tiny_params
  config = tiny_config.copy_and_resolve_references()
  config.seed = 0  # tiny_params' seed
  full = complete_params(config, CCAModel.from_config(config.model), params)
  np.testing.assert_array_equal(full["h_a"]["layers_0"]["kernel"],
                                b.params["h_a"]["layers_0"]["kernel"])
  assert not np.array_equal(full["h_a"]["layers_0"]["kernel"],
                            tiny_params["h_a"]["layers_0"]["kernel"])  # float16-rounded
  np.testing.assert_array_equal(  # the aux model: the seeded initialisation
      jax.tree.leaves(full["aux_entropymodel"])[0],
      jax.tree.leaves(tiny_params["aux_entropymodel"])[0])
  assert fine_tuning_params("q1", tiny_config.model) is not None  # a model name
  assert fine_tuning_params(tiny_workdir, tiny_config.model) is None
  assert fine_tuning_params("no/such/thing", tiny_config.model) is None
  assert fine_tuning_params("", tiny_config.model) is None
  other = tiny_config.model.copy_and_resolve_references()
  other.M = other.M + 8
  with pytest.raises(CodecError, match="another model config"):
    fine_tuning_params(path, other)
  wrong = dict(params, h_a={"layers_0": {"kernel": np.zeros((1, 1, 1, 1))}})
  with pytest.raises(ValueError, match="do not fit"):
    complete_params(tiny_config, CCAModel.from_config(tiny_config.model), wrong)


def test_init_fresh_restarts_named_parameter_groups(tiny_config, tiny_params):
  """``config.init_fresh`` initialises the named groups from the seed and keeps the
  others from the initial parameters; an unknown group name is refused."""
  from cca_jax.model.cca import CCAModel
  from cca_jax.train.trainer import complete_params
  config = tiny_config.copy_and_resolve_references()
  config.seed = 1  # not tiny_params' seed: the fresh groups differ from them
  config.init_fresh = "h_a, z_entropy_bottleneck"
  model = CCAModel.from_config(config.model)
  full = complete_params(config, model, tiny_params)
  for name in ("h_a", "z_entropy_bottleneck"):
    assert not np.array_equal(jax.tree.leaves(full[name])[0],
                              jax.tree.leaves(tiny_params[name])[0])
  for name in ("g_a", "h_mean_s", "entropy_model"):
    jax.tree.map(np.testing.assert_array_equal, full[name], tiny_params[name])
  config.init_fresh = "h_a,hyper"
  with pytest.raises(ValueError, match="init_fresh names hyper"):
    complete_params(config, model, tiny_params)
