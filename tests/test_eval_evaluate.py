"""``python -m cca_jax.evaluate`` end to end: tiny model bundles (random weights) and a
classical codec on two small images; the results file, the reconstructions kept for
the visual comparison, the information tool, and clean failures."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from cca_jax.codec import save_bundle
from cca_jax.eval import evaluate, information, metrics
from codec_helpers import image_folder, synthetic_image, tiny_bundles


@pytest.fixture(scope="module")
def setup(tiny_config, tiny_params, tmp_path_factory):
  d = tmp_path_factory.mktemp("eval")
  data = image_folder(d / "images", 2, (192, 192), seed=10)
  (data / "notes.txt").write_text("not an image")  # ignored
  bundles = tiny_bundles(tiny_config, tiny_params)
  models = []
  for name in ("plain", "calibrated"):
    path = d / f"{name}.ccam"
    save_bundle(bundles[name], str(path))
    models.append(str(path))
  out = d / "results.json"
  args = ["--data", str(data), "--out", str(out), "--pad-multiple", "64",
          "--codecs", "jpeg", "--qualities", "jpeg=20,80", "--visual", "im1.png",
          "--name", "tiny", "--label", "tiny models", "--quiet", "--no-warmup"]
  for m in models:
    args += ["--model", m]
  assert evaluate.main(args) == 0
  return {"dir": d, "data": str(data), "models": models, "out": str(out),
          "bundles": bundles}


def test_results_file(setup):
  doc = json.loads(open(setup["out"]).read())
  assert doc["format"] == "cca-jax-eval" and doc["version"] == 1
  assert doc["dataset"]["images"] == ["im0.png", "im1.png"]
  assert doc["environment"]["jax"] and "codec_jpeg420" in doc["environment"]
  assert doc["command"].startswith("python -m cca_jax.evaluate --data ")
  model, jpeg = doc["curves"]
  assert (model["name"], model["label"], model["kind"]) == ("tiny", "tiny models", "model")
  assert jpeg["name"] == "jpeg420" and len(jpeg["points"]) == 2
  # Points sorted by rate: the plain initialisation codes almost nothing.
  assert [p["setting"]["model"] for p in model["points"]] == ["plain.ccam",
                                                             "calibrated.ccam"]
  for p, name in zip(model["points"], ("plain", "calibrated")):
    b = setup["bundles"][name]
    assert p["setting"]["model_id"] == b.model_id.hex()
    assert p["setting"]["slice_sizes"] == list(b.model.sizes)
    assert p["setting"]["optimize"] == 0 and model["settings"]["optimize"] == 0
    assert p["summary"]["roundtrip_exact"] is True
    for rec in p["images"]:
      npix = 192 * 192
      assert rec["pixels"] == npix
      assert rec["bytes"] == rec["header_bytes"] + rec["z_bytes"] + rec["y_bytes"]
      assert rec["bpp"] == pytest.approx(8 * rec["bytes"] / npix)
      assert rec["bpp_payload"] == pytest.approx(8 * (rec["z_bytes"] + rec["y_bytes"]) / npix)
      assert rec["bpp_payload"] < rec["bpp"]
      # The estimate: its per-slice bits add up to its y rate.
      assert sum(rec["slice_bits"]) / npix == pytest.approx(rec["bpp_est_y"], rel=1e-6)
      assert rec["bpp_est"] == pytest.approx(rec["bpp_est_y"] + rec["bpp_est_z"])
      # The decoder's float output and the codec-free forward agree; 8-bit rounding of
      # an image with PSNR ~10 dB changes almost nothing.
      assert rec["psnr"] == pytest.approx(rec["psnr_forward"], abs=1e-3)
      assert rec["psnr_8bit"] == pytest.approx(rec["psnr"], abs=0.05)
      assert 0 < rec["ms_ssim"] < 1 and rec["ms_ssim_db"] == pytest.approx(
          metrics.db(rec["ms_ssim"]))
      assert rec["encode_s"] > 0 and rec["decode_s"] > 0
    s = p["summary"]
    assert s["num_images"] == 2
    assert s["bpp"] == pytest.approx(np.mean([r["bpp"] for r in p["images"]]))
  calibrated = model["points"][1]["summary"]
  # Calibrated latents: the real payload is close to the estimate (as in the codec
  # tests) and well above the plain model's.
  assert calibrated["bpp_payload"] == pytest.approx(calibrated["bpp_est"], rel=0.05)
  assert calibrated["bpp"] > 5 * model["points"][0]["summary"]["bpp"]


def test_visual_reconstructions(setup):
  doc = json.loads(open(setup["out"]).read())
  vis = doc["visual"]
  assert vis["image"] == "im1.png"
  base = os.path.dirname(setup["out"])
  with Image.open(os.path.join(base, vis["original"])) as im:
    np.testing.assert_array_equal(np.asarray(im), synthetic_image(192, 192, seed=11))
  recon = vis["reconstructions"]
  assert set(recon) == {"tiny", "jpeg420"} and len(recon["jpeg420"]) == 2
  # Each kept PNG is the decoded image its point measured.
  for curve in doc["curves"]:
    for path, point in zip(recon[curve["name"]], curve["points"]):
      with Image.open(os.path.join(base, path)) as im:
        decoded = np.asarray(im)
      rec = point["images"][1]
      key = "psnr_8bit" if "psnr_8bit" in rec else "psnr"
      assert metrics.psnr(synthetic_image(192, 192, seed=11), decoded) == \
          pytest.approx(rec[key], abs=1e-9)
  assert not [n for n in os.listdir(base) if ".tmp-" in n]


def test_information_tool(setup, tmp_path, capsys):
  doc = json.loads(open(setup["out"]).read())
  items = information.from_results(doc)
  assert [label for label, _ in items] == ["tiny: plain.ccam", "tiny: calibrated.ccam"]
  d = items[1][1]
  assert sum(d["share"]) == pytest.approx(1.0) and sum(d["channel_share"]) == pytest.approx(1.0)
  assert d["slice_sizes"] == list(setup["bundles"]["calibrated"].model.sizes)
  rec = doc["curves"][0]["points"][1]["images"]
  assert d["bpp_y"] == pytest.approx(np.mean([r["bpp_est_y"] for r in rec]), rel=1e-6)
  out = tmp_path / "info.json"
  assert information.main(["--results", setup["out"], "--out", str(out)]) == 0
  assert "channel share" in capsys.readouterr().out
  saved = json.loads(out.read_text())["models"]
  assert saved[1]["share"] == pytest.approx(d["share"])
  # Measured directly from a bundle: the same numbers as the evaluation's estimate.
  assert information.main(["--model", setup["models"][1], "--data", setup["data"],
                           "--pad-multiple", "64", "--out", str(out)]) == 0
  direct = json.loads(out.read_text())["models"][0]
  assert direct["share"] == pytest.approx(d["share"], rel=1e-5)


def test_failures_are_one_line(setup, tmp_path, capsys):
  out = tmp_path / "r.json"
  base = ["--data", setup["data"], "--out", str(out), "--quiet"]
  junk = tmp_path / "junk.ccam"
  junk.write_bytes(b"not a bundle")
  cases = [
      (["--model", str(tmp_path / "missing.ccam")], "no such model file"),
      (["--model", str(junk)], "not a cca-jax model bundle"),
      (["--codecs", "png"], "unknown codec 'png'"),
      (["--codecs", "jpeg", "--qualities", "webp=10"], "not in --codecs"),
      (["--codecs", "jpeg", "--visual", "nope.png"], "not among the evaluated images"),
      (["--codecs", "jpeg", "--images", "nope.png"], "no image named nope.png"),
      (["--model", setup["models"][1], "--optimize", "2"], "records no training lambda"),
  ]
  for args, msg in cases:
    capsys.readouterr()
    assert evaluate.main(base + args) == 1, args
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and msg in err[0], err
    assert not out.exists()
  empty = tmp_path / "empty"
  empty.mkdir()
  assert evaluate.main(["--data", str(empty), "--out", str(out), "--codecs", "jpeg"]) == 1
  assert "no images" in capsys.readouterr().err
  for args in (base, base + ["--limit", "0", "--codecs", "jpeg"],
               base + ["--optimize", "-1", "--codecs", "jpeg"]):
    with pytest.raises(SystemExit) as e:
      evaluate.main(args)
    assert e.value.code == 2
  assert not out.exists()


def test_model_directories_and_workdir_lambda(setup, tmp_path):
  from cca_jax.eval import learned
  assert learned.expand_models([str(setup["dir"])]) == sorted(setup["models"])
  with pytest.raises(ValueError, match="no model bundles"):
    learned.expand_models([str(tmp_path)])
  (tmp_path / "config.json").write_text(json.dumps({"lmbda": 0.85}))
  b = setup["bundles"]["plain"]
  b_meta = dict(b.meta)
  try:
    b.meta = {"source": "workdir", "path": str(tmp_path), "step": 5}
    assert learned.model_setting(b, "x.ccam")["lmbda"] == 0.85
    b.meta = {"source": "workdir", "path": str(tmp_path / "gone")}
    assert "lmbda" not in learned.model_setting(b, "x.ccam")
  finally:
    b.meta = b_meta


def test_sigterm_leaves_nothing_behind(setup, tmp_path):
  """A terminated run exits 130 with one line and no results or temporary files."""
  import signal
  import subprocess
  import sys
  import time
  out = tmp_path / "r.json"
  qualities = ",".join(str(q) for q in range(1, 101))
  proc = subprocess.Popen(
      [sys.executable, "-m", "cca_jax.evaluate", "--data", setup["data"], "--out",
       str(out), "--codecs", "jpeg", "--qualities", f"jpeg={qualities}", "--visual",
       "im0.png", "--quiet"], stderr=subprocess.PIPE, text=True,
      env=dict(os.environ, JAX_PLATFORMS="cpu"))
  deadline = time.time() + 120
  while time.time() < deadline and not any(".tmp-" in n for n in os.listdir(tmp_path)):
    time.sleep(0.2)
  assert proc.poll() is None, proc.stderr.read()
  time.sleep(0.5)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=60)
  assert proc.returncode == 130
  assert err.strip().splitlines()[-1] == "error: interrupted"
  assert os.listdir(tmp_path) == []
