"""cca_jax.report on tiny hand-made results files: plots, BD-rate tables, points,
visual comparison, information distribution, merging, errors."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from cca_jax.eval import bdrate, report
from cca_jax.eval.curves import summarize
from cca_jax.eval.results import FORMAT, VERSION

QUALITIES = [28.0, 30.0, 32.0, 34.0]
ANCHOR_BPP = [0.2, 0.35, 0.6, 1.0]


def _point(setting, bpp, psnr, ms_ssim, extra=None):
  recs = []
  for name, f in (("img0.png", 0.9), ("img1.png", 1.1)):  # the means are the values
    r = {"image": name, "pixels": 64 * 64, "bytes": int(bpp * f * 512),
         "bpp": bpp * f, "psnr": psnr * f, "ms_ssim": ms_ssim,
         "ms_ssim_db": -10 * np.log10(1 - ms_ssim), "encode_s": 0.01 * f,
         "decode_s": 0.02 * f}
    r.update(extra(f) if extra else {})
    recs.append(r)
  return {"setting": setting, "summary": summarize(recs), "images": recs}


def _model_extra(f):
  return {"psnr_8bit": 0.0, "ms_ssim_8bit": 0.95, "ms_ssim_db_8bit": 13.0,
          "bpp_payload": 0.0, "bpp_est": 0.0, "slice_bits": [100.0 * f, 50.0, 25.0],
          "roundtrip_exact": True}


def _doc(tmp_path, name, curves, visual=None):
  doc = {"format": FORMAT, "version": VERSION,
         "dataset": {"path": "/data/kodak", "name": "kodak",
                     "images": ["img0.png", "img1.png"], "num_images": 2, "notes": []},
         "environment": {"date": "2026-01-01T00:00:00+00:00", "jax": "0", "backend": "cpu",
                         "platform": "test", "cpu_count": 2, "devices": ["cpu"]},
         "command": f"python -m cca_jax.evaluate --out {name}", "curves": curves}
  if visual:
    doc["visual"] = visual
  path = tmp_path / name
  path.write_text(json.dumps(doc))
  return str(path)


def _visual(tmp_path, curves):
  """Reconstructions of img0.png: constant images whose grey level names the point."""
  d = tmp_path / "r_visual"
  d.mkdir()
  Image.fromarray(np.full((64, 64, 3), 255, np.uint8)).save(d / "original.png")
  recon = {}
  for c in curves:
    recon[c["name"]] = []
    for i, _ in enumerate(c["points"]):
      fname = f"{c['name']}_{i:02d}.png"
      Image.fromarray(np.full((64, 64, 3), 10 * i, np.uint8)).save(d / fname)
      recon[c["name"]].append(f"r_visual/{fname}")
  return {"image": "img0.png", "original": "r_visual/original.png",
          "reconstructions": recon}


@pytest.fixture
def results(tmp_path):
  jpeg = {"name": "jpeg420", "label": "JPEG 4:2:0", "kind": "classical",
          "settings": {"library": "test"},
          "points": [_point({"quality": 10 * (i + 1)}, b, q, 0.9 + 0.02 * i)
                     for i, (b, q) in enumerate(zip(ANCHOR_BPP, QUALITIES))]}
  # 0.8x the anchor's rate at every quality: BD-rate -20 % exactly.
  model = {"name": "cca-jax", "label": "ours", "kind": "model", "settings": {},
           "points": [_point({"model": f"m{i}.ccam", "model_id": "ab" * 8,
                              "slice_sizes": [8, 16, 24], "meta": {"step": 100}},
                             0.8 * b, q, 0.91 + 0.02 * i, _model_extra)
                      for i, (b, q) in enumerate(zip(ANCHOR_BPP, QUALITIES))]}
  for p in model["points"]:  # 8-bit PSNR 0.1 dB under the float one
    p["summary"]["psnr_8bit"] = p["summary"]["psnr"] - 0.1
  first = _doc(tmp_path, "r.json", [model, jpeg], _visual(tmp_path, [model, jpeg]))
  single = {"name": "other", "label": "one model", "kind": "model", "settings": {},
            "points": [_point({"model": "x.ccam"}, 0.3, 30.0, 0.93)]}
  # A poor model below every anchor's quality range: compared at equal rate (0.6 bpp,
  # where the anchor reaches 32 dB).
  poor = {"name": "poor", "label": "poor model", "kind": "model", "settings": {},
          "points": [_point({"model": "p.ccam"}, 0.6, 20.0, 0.8)]}
  second = _doc(tmp_path, "r2.json", [single, poor])
  return first, second


def test_report_builds_everything(results, tmp_path):
  first, second = results
  out = tmp_path / "rep"
  out.mkdir()
  assert report.main([first, second, "--out", str(out), "--note", "a test note"]) == 0
  md = (out / "results.md").read_text()
  for f in ("rd_psnr.png", "rd_ms_ssim.png", "visual.png", "information.png"):
    with Image.open(out / "results" / f) as im:
      assert im.format == "PNG" and im.size[0] > 200
    assert f"results/{f}" in md
  bd = json.loads((out / "results" / "bdrate.json").read_text())
  cells = bd["tables"]["psnr"]["cells"]
  # The model against the classical anchor: exactly -20 %.
  assert cells["ours"]["JPEG 4:2:0"]["value"] == pytest.approx(-20.0, abs=1e-9)
  assert "| ours | -20.0 % |" in md
  assert "> a test note" in md
  # Its 8-bit row: the same rates at 0.1 dB less.
  ref = bdrate.bd_rate(ANCHOR_BPP, QUALITIES, [0.8 * b for b in ANCHOR_BPP],
                       [q - 0.1 for q in QUALITIES])
  assert cells["ours (8-bit output)"]["JPEG 4:2:0"]["value"] == pytest.approx(ref.value)
  # The one-point curve: its rate against the anchor's at 30 dB (0.35 bpp).
  one = cells["one model"]["JPEG 4:2:0"]
  assert one["kind"] == "point" and one["value"] == pytest.approx((0.3 / 0.35 - 1) * 100)
  assert f"{one['value']:+.1f} %†" in md
  poor = cells["poor model"]["JPEG 4:2:0"]
  assert poor["kind"] == "point_quality" and poor["quality_delta"] == pytest.approx(-12.0)
  assert "| poor model | -12.00 dB‡ |" in md
  # The paper's points are rows and columns (Kodak), VTM and BPG anchors too; the
  # paper against CompressAI's VTM is -13.7 % (our figure, test_eval_bdrate.py).
  assert cells["CCA (paper)"]["VTM (CompressAI)"]["value"] == pytest.approx(-13.73, abs=0.01)
  assert "CCA (paper)" in bd["tables"]["psnr"]["anchors"]
  # Tables of the operating points (means), times in ms.
  assert "| `m0.ccam` (abababab, step 100) | 0.1600 |" in md
  assert "| q=10 | 0.2000 |" in md
  assert "λ=0.3" in md
  # The visual comparison's target rate: the model's middle point (the lower of the
  # two middle ones) on img0.png: 0.8 * 0.35 * 0.9 = 0.252 bpp.
  assert "closest to 0.252 bpp" in md and "`img0.png`" in md
  # Commands of every results file and of the report.
  assert ".venv/bin/python -m cca_jax.evaluate --out r.json" in md
  assert ".venv/bin/python -m cca_jax.report" in md
  assert "slice  channels  share %" in md
  # The inputs are kept next to the report.
  raw = json.loads((out / "results" / "data" / "r2.json").read_text())
  assert raw["curves"][0]["label"] == "one model" and "_path" not in raw


def test_console_script_subcommand(results, tmp_path):
  from cca_jax import cli
  first, _ = results
  out = tmp_path / "rep"
  out.mkdir()
  assert cli.main(["report", first, "--out", str(out), "--markdown", "r.md",
                   "--reference", "none"]) == 0
  md = (out / "r.md").read_text()
  assert "r/rd_psnr.png" in md and "CCA (paper)" not in md
  assert os.path.isfile(out / "r" / "rd_psnr.png")


def test_visual_panels(results, tmp_path):
  first, _ = results
  out = tmp_path / "rep"
  out.mkdir()
  docs = [report.read_results(first)]
  vis = report.build_visual(docs, docs[0]["curves"], str(out / "v.png"), 0.55,
                            box=(0, 0, 32, 32))
  assert vis["box"] == [0, 0, 32, 32]
  by_curve = {p["curve"]: p for p in vis["panels"]}
  assert by_curve["cca-jax"]["setting"]["model"] == "m2.ccam"   # 0.8*0.6*0.9 = 0.432
  assert by_curve["jpeg420"]["setting"]["quality"] == 30        # 0.6*0.9 = 0.54


def test_replace_takes_a_later_files_curve(results, tmp_path):
  """Pooled by default; with --replace the later file's curve (and its
  reconstructions) stands alone: retrained models against an earlier run."""
  first, _ = results
  doc = json.loads(open(first).read())
  model = next(c for c in doc["curves"] if c["name"] == "cca-jax")
  newer = dict(model, points=[dict(p, setting=dict(p["setting"], model=f"n{i}.ccam"))
                              for i, p in enumerate(model["points"][1:])])
  (tmp_path / "n").mkdir()
  vis = _visual(tmp_path / "n", [newer])  # files in n/r_visual, paths from tmp_path
  vis = {"image": vis["image"], "original": "n/" + vis["original"],
         "reconstructions": {k: ["n/" + q for q in v]
                             for k, v in vis["reconstructions"].items()}}
  later = _doc(tmp_path, "later.json", [newer], vis)
  docs = [report.read_results(first), report.read_results(later)]
  pooled = {c["name"]: c for c in report.merge_curves([d["curves"] for d in docs])}
  assert len(pooled["cca-jax"]["points"]) == 7 and len(pooled) == 2
  replaced = {c["name"]: c for c in report.merge_curves([d["curves"] for d in docs],
                                                         replace=True)}
  assert [p["setting"]["model"] for p in replaced["cca-jax"]["points"]] == [
      "n0.ccam", "n1.ccam", "n2.ccam"]
  assert len(replaced["jpeg420"]["points"]) == 4
  v = report.build_visual(docs, list(replaced.values()), str(tmp_path / "v.png"), 0.3,
                          box=(0, 0, 32, 32), replace=True)
  assert {p["curve"]: p["setting"].get("model") for p in v["panels"]}["cca-jax"] in (
      "n0.ccam", "n1.ccam", "n2.ccam")
  out = tmp_path / "rep"
  assert report.main([first, later, "--out", str(out), "--replace"]) == 0
  md = (out / "results.md").read_text()
  assert "n2.ccam" in md and "m3.ccam" not in md


def test_missing_reconstructions_skip_the_visual(results, tmp_path, capsys):
  import shutil
  first, second = results
  shutil.rmtree(tmp_path / "r_visual")
  out = tmp_path / "rep"
  out.mkdir()
  assert report.main([first, second, "--out", str(out)]) == 0
  assert "reconstructions are gone" in capsys.readouterr().err
  assert not (out / "results" / "visual.png").exists()
  assert "Visual comparison" not in (out / "results.md").read_text()


def test_report_errors(results, tmp_path, capsys):
  first, _ = results
  out = tmp_path / "rep"
  out.mkdir()
  bad = tmp_path / "bad.json"
  bad.write_text('{"format": "something else"}')
  garbage = tmp_path / "garbage.json"
  garbage.write_bytes(b"\x00\x01 not json")
  cases = [([str(tmp_path / "missing.json")], "no such file"),
           ([str(bad)], "not a cca-jax evaluation results file"),
           ([str(garbage)], "not a JSON results file"),
           ([first, "--out", str(garbage)], "is a file")]
  for args, msg in cases:
    if "--out" not in args:
      args = args + ["--out", str(out)]
    capsys.readouterr()
    assert report.main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and msg in err[0], err
  assert not os.path.exists(out / "results.md")
  # A directory that does not exist yet is created (with its parents).
  assert report.main([first, "--out", str(tmp_path / "new" / "dir")]) == 0
  assert os.path.isfile(tmp_path / "new" / "dir" / "results.md")
  with pytest.raises(SystemExit) as e:
    report.main([first, "--out", str(out), "--markdown", "x.txt"])
  assert e.value.code == 2
