"""cca_jax.compare (the README's main job): models and classical codecs on a folder,
round trips checked, the side-by-side table, report, RD plot and visual crop."""

import os

import pytest

from cca_jax.codec import registry, save_bundle
from cca_jax.eval import compare
from tests.codec_helpers import image_folder, tiny_bundles


pytestmark = pytest.mark.usefixtures("no_cli_cache")


@pytest.fixture(scope="module")
def setup(tiny_config, tiny_params, tmp_path_factory):
  d = tmp_path_factory.mktemp("compare")
  data = image_folder(d / "images", 2, (64, 96))
  models = d / "models"
  models.mkdir()
  b = tiny_bundles(tiny_config, tiny_params)
  save_bundle(b["lively"], str(models / "lively.ccam"))
  save_bundle(b["calibrated"], str(models / "calibrated.ccam"))
  return {"data": str(data), "models": str(models), "dir": d}


def test_compare_writes_table_report_plot_and_crop(setup, capsys, monkeypatch):
  monkeypatch.setattr(registry, "shipped_dir", lambda: setup["models"])
  out = setup["dir"] / "new" / "out"   # created with its parents
  rc = compare.main(["--data", setup["data"], "--out", str(out), "--codecs",
                     "jpeg420", "--quiet"])
  assert rc == 0, capsys.readouterr().err
  text = capsys.readouterr().out
  assert "every round trip exact" in text and "JPEG 4:2:0" in text
  rows = [line for line in text.splitlines() if line.startswith(("lively",
                                                                 "calibrated"))]
  assert len(rows) == 2                  # both shipped models, one row each
  assert "BD-rate" in text
  for f in ("results.json", "report.md", "report/rd_psnr.png", "report/visual.png"):
    assert os.path.isfile(out / f), f
  assert str(out / "report" / "rd_psnr.png") in text


def test_compare_errors(setup, tmp_path, capsys, monkeypatch):
  monkeypatch.setattr(registry, "shipped_dir", lambda: str(tmp_path / "none"))
  afile = tmp_path / "file"
  afile.write_text("x")
  cases = [(["--out", str(afile), "--model", setup["models"]], "is a file"),
           (["--out", str(tmp_path / "o")], "no shipped models"),
           (["--out", str(tmp_path / "o"), "--model", setup["models"], "--data",
             str(tmp_path / "missing")], "no such directory")]
  for args, msg in cases:
    assert compare.main(["--data", setup["data"], "--codecs", "", "--quiet"]
                        + args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and msg in err[0], err
