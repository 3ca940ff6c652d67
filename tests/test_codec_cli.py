"""The compress / decompress / info commands: files, stdin/stdout, model lookup,
image conversions, exit codes, one-line errors and no partial outputs."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cca_jax import cli
from cca_jax.codec import compress, decompress, save_bundle
from tests.codec_helpers import synthetic_image, tiny_bundles

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


pytestmark = pytest.mark.usefixtures("no_cli_cache")


@pytest.fixture(scope="module")
def env(tiny_config, tiny_params, tmp_path_factory):
  d = tmp_path_factory.mktemp("cli")
  b = tiny_bundles(tiny_config, tiny_params)
  models = d / "models"
  models.mkdir()
  save_bundle(b["lively"], str(models / "lively.ccam"))
  save_bundle(b["other"], str(models / "other.ccam"))
  img = d / "img.png"
  Image.fromarray(synthetic_image(100, 120)).save(img)
  return {"dir": d, "bundles": b, "model": str(models / "lively.ccam"),
          "models": str(models), "image": str(img)}


def _run(argv, capsys, stdin: bytes | None = None, monkeypatch=None):
  out = io.BytesIO()
  if monkeypatch is not None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin or b"")))
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(out))
  wrapper = sys.stdout
  rc = cli.main(argv)
  value = b""
  if monkeypatch is not None:
    wrapper.flush()
    value = out.getvalue()
    monkeypatch.undo()
  captured = capsys.readouterr()
  return rc, value or captured.out.encode(), captured.err


def _one_line_error(err):
  lines = err.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: "), err
  return lines[0]


def test_files_round_trip_and_info(env, capsys, tmp_path):
  cca, png = tmp_path / "a.cca", tmp_path / "a.png"
  rc, _, err = _run(["compress", env["image"], str(cca), "--model", env["model"]], capsys)
  assert rc == 0 and "bpp" in err and cca.exists()
  rc, _, err = _run(["decompress", str(cca), str(png), "--model", env["model"]], capsys)
  assert rc == 0
  got = np.asarray(Image.open(png))
  np.testing.assert_array_equal(got, decompress(env["bundles"]["lively"], cca.read_bytes()))
  assert got.shape == (100, 120, 3)
  rc, out, _ = _run(["info", str(cca)], capsys)
  assert rc == 0
  rc, out, _ = _run(["info", str(cca), "--json"], capsys)
  doc = json.loads(out)
  assert doc["width"] == 120 and doc["height"] == 100 and doc["padded_height"] == 128
  assert doc["model_id"] == env["bundles"]["lively"].model_id.hex()
  assert doc["bytes"]["total"] == len(cca.read_bytes()) and doc["checksum"] == "ok"


def test_stdin_and_stdout(env, capsys, monkeypatch):
  img = open(env["image"], "rb").read()
  rc, data, _ = _run(["compress", "-", "-", "--model", env["model"], "--quiet"], capsys,
                     stdin=img, monkeypatch=monkeypatch)
  assert rc == 0 and data[:4] == b"\x89CCA"
  rc, png, err = _run(["decompress", "-", "-", "--model", env["models"], "--quiet"],
                      capsys, stdin=data, monkeypatch=monkeypatch)
  assert rc == 0 and err == ""
  np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png))),
                                decompress(env["bundles"]["lively"], data))
  rc, _, err = _run(["compress", "-", "-", "--model", env["model"]], capsys,
                    stdin=b"not an image", monkeypatch=monkeypatch)
  assert rc == 1 and "<stdin>: not a readable image" in _one_line_error(err)


def test_model_lookup(env, capsys, tmp_path, monkeypatch):
  cca = tmp_path / "a.cca"
  # Without --model: CCA_JAX_MODEL, else the shipped models (none here: an error).
  from cca_jax.codec import registry
  monkeypatch.setattr(registry, "shipped_dir", lambda: str(tmp_path / "none"))
  monkeypatch.delenv(cli.MODEL_ENV, raising=False)
  rc, _, err = _run(["compress", env["image"], str(cca)], capsys)
  assert rc == 1 and "--model" in _one_line_error(err) and not cca.exists()
  monkeypatch.setenv(cli.MODEL_ENV, env["model"])
  rc, _, _ = _run(["compress", env["image"], str(cca), "--quiet"], capsys)
  assert rc == 0
  # A directory of two bundles: decompress picks the stream's model ...
  monkeypatch.setenv(cli.MODEL_ENV, env["models"])
  rc, _, _ = _run(["decompress", str(cca), str(tmp_path / "a.png"), "--quiet"], capsys)
  assert rc == 0
  # ... compress cannot choose.
  rc, _, err = _run(["compress", env["image"], str(tmp_path / "b.cca")], capsys)
  assert rc == 1 and "holds 2 model bundles" in _one_line_error(err)
  # The other model's file: refused, no output.
  out = tmp_path / "x.png"
  rc, _, err = _run(["decompress", str(cca), str(out), "--model",
                     os.path.join(env["models"], "other.ccam")], capsys)
  assert rc == 1 and "written with model" in _one_line_error(err) and not out.exists()


@pytest.mark.parametrize("mode,note", [
    ("L", "converted L"), ("RGBA", "alpha"), ("P", "converted P"), ("I;16", "16-bit")])
def test_image_conversions(env, capsys, tmp_path, mode, note):
  rgb = synthetic_image(64, 80)
  if mode == "I;16":
    im = Image.fromarray(rgb[..., 0].astype(np.uint16) * 257)
  elif mode == "RGBA":
    im = Image.fromarray(np.concatenate([rgb, rgb[..., :1]], -1), "RGBA")
  else:
    im = Image.fromarray(rgb).convert(mode)
  src = tmp_path / f"in_{mode.replace(';', '')}.png"
  im.save(src)
  rc, _, err = _run(["compress", str(src), str(tmp_path / "o.cca"), "--model",
                     env["model"], "--quiet"], capsys)
  assert rc == 0 and "note: " in err and note in err


def test_bad_inputs_and_usage(env, capsys, tmp_path):
  out = tmp_path / "out.cca"
  text = tmp_path / "t.txt"
  text.write_text("hello")
  cases = [
      (["compress", str(text), str(out), "--model", env["model"]], 1, "not a readable image"),
      (["compress", str(tmp_path / "missing.png"), str(out), "--model", env["model"]], 1,
       "no such file"),
      (["compress", env["image"], str(tmp_path / "no" / "dir.cca"), "--model",
        env["model"]], 1, "no such directory"),
      (["compress", env["image"], str(out), "--model", str(text)], 1,
       "not a cca-jax model bundle"),
      (["compress", env["image"], str(out), "--model", str(tmp_path / "nope.ccam")], 1,
       "no such model"),
      (["decompress", env["image"], str(out), "--model", env["model"]], 1, "bad magic"),
      (["decompress", str(tmp_path / "empty.cca"), str(out), "--model", env["model"]], 1,
       "empty input"),
      (["compress", env["image"], str(out), "--model", env["model"], "--optimize", "2"], 1,
       "records no training lambda"),
      (["info", str(text)], 1, "bad magic"),
      (["info", str(tmp_path)], 1, "is a directory"),
  ]
  (tmp_path / "empty.cca").write_bytes(b"")
  for argv, code, message in cases:
    rc, _, err = _run(argv, capsys)
    assert rc == code, (argv, err)
    assert message in _one_line_error(err), (argv, err)
    assert not out.exists()
  # Usage errors: exit status 2; --help: 0.
  for argv in (["compress"], ["compress", "a", "b", "--pad-multiple", "100"],
               ["compress", "a", "b", "--optimize", "-1"],
               ["decompress", "a"], ["info"], ["bogus"]):
    rc, _, err = _run(argv, capsys)
    assert rc == 2 and "usage" in err.lower(), argv
  for cmd in ("compress", "decompress", "info"):
    rc, out_text, err = _run([cmd, "--help"], capsys)
    assert rc == 0


def test_damaged_model_bundle(env, capsys, tmp_path):
  data = bytearray(open(env["model"], "rb").read())
  data[len(data) // 2] ^= 0xFF
  bad = tmp_path / "bad.ccam"
  bad.write_bytes(bytes(data))
  rc, _, err = _run(["compress", env["image"], str(tmp_path / "o.cca"), "--model",
                     str(bad)], capsys)
  assert rc == 1 and "damaged model bundle" in _one_line_error(err)


def test_console_script_exit_codes(env, tmp_path):
  """The installed entry point (a real process): exit codes and stderr."""
  exe = os.path.join(ROOT, ".venv", "bin", "cca-jax")
  if not os.path.exists(exe):
    pytest.skip("console script not installed")
  junk = tmp_path / "junk.cca"
  junk.write_bytes(b"\x89CCA\x01" + bytes(100))
  e = dict(os.environ, JAX_PLATFORMS="cpu")
  r = subprocess.run([exe, "info", str(junk)], capture_output=True, text=True, env=e)
  assert r.returncode == 1 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr
  r = subprocess.run([exe, "info", "--help"], capture_output=True, text=True, env=e)
  assert r.returncode == 0 and "usage" in r.stdout
  # A real compress fills the compilation cache and leaves no temp files.
  cache = tmp_path / "cache"
  out = tmp_path / "o.cca"
  e[cli.CACHE_ENV] = str(cache)
  r = subprocess.run([exe, "compress", env["image"], str(out), "--model", env["model"]],
                     capture_output=True, text=True, env=e)
  assert r.returncode == 0, r.stderr
  assert out.read_bytes() == compress(env["bundles"]["lively"], synthetic_image(100, 120))
  assert os.listdir(cache) and not [p for p in os.listdir(tmp_path) if ".tmp-" in p]
