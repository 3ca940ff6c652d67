"""``python -m cca_jax.report``: plots, BD-rate tables and a markdown report.

  .venv/bin/python -m cca_jax.report RESULTS.json [RESULTS.json ...] --out DIR \\
      [--markdown results.md] [--reference auto|kodak|clic|tecnick|none] \\
      [--method pchip] [--note TEXT ...] [--visual-bpp 0.5] [--crop TOP,LEFT,H,W] \\
      [--replace]

Reads one or more results files of ``cca_jax.evaluate`` (curves of the same name are
merged, so classical codecs and each model family can be evaluated separately; with
``--replace`` a later file's curve replaces an earlier one of the same name instead,
e.g. retrained models against an earlier run's classical codecs), adds
the published reference points of the dataset (``reference.py``: the paper's points
and, for Kodak, CompressAI's VTM and BPG anchors) and writes into ``DIR``:

* ``<markdown>`` (default ``results.md``): provenance, the RD plots, BD-rate tables
  (every learned curve and the paper's points against every classical codec and
  reference, PSNR and MS-SSIM dB; ``bdrate.py``), every operating point, the visual
  comparison, the information distribution and the commands that made the results;
* ``<markdown stem>/``: ``rd_psnr.png``, ``rd_ms_ssim.png``, ``visual.png`` (when a
  results file kept reconstructions, ``--visual``), ``information.png`` (when a model
  curve has per-slice bits) and ``bdrate.json`` (the BD numbers, machine-readable).

A curve with a single point has no BD-rate; its cells give the rate difference at
that point's quality instead (``bdrate.rate_saving_at_quality``), marked with a dagger.
Exit codes: 0 success, 1 bad input (one-line ``error:``), 2 usage error.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import sys
from collections.abc import Sequence

import numpy as np

from cca_jax.eval import bdrate, plots
from cca_jax.eval.curves import curve_arrays, has_quality, merge_curves, point_value
from cca_jax.eval.reference import DATASETS, reference_curves
from cca_jax.eval.results import atomic_write_bytes, read_results, write_json

LOW_COVERAGE = 0.5  # flag cells where the anchor covers less of the row's quality range


# ---------------------------------------------------------------------------- BD tables

_QUALITY_NAMES = {"psnr": "PSNR", "ms_ssim_db": "MS-SSIM dB"}


def bd_cell(anchor: dict, test: dict, quality_key: str, method: str) -> dict:
  """BD-rate of ``test`` against ``anchor`` as a JSON-able dict with a ``text`` for
  the table. A one-point test curve gets the rate difference at its quality (†);
  where the quality ranges do not overlap, the quality difference at equal rate
  (BD-PSNR, or one point's difference) stands in (‡), when the rates overlap."""
  ra, qa = bdrate.rd_front(*curve_arrays(anchor, "bpp", quality_key))
  rt, qt = bdrate.rd_front(*curve_arrays(test, "bpp", quality_key))
  if not len(ra) or not len(rt):
    return {"value": None, "text": "", "reason": f"no {quality_key}"}
  if len(rt) == 1:
    r, q = float(rt[0]), float(qt[0])
    v = bdrate.rate_saving_at_quality(ra, qa, r, q)
    if not math.isnan(v):
      return {"value": v, "text": f"{v:+.1f} %†", "kind": "point", "quality": q}
    dq = bdrate.quality_gain_at_rate(ra, qa, r, q)
    if not math.isnan(dq):
      return {"value": None, "text": f"{dq:+.2f} dB‡", "kind": "point_quality",
              "quality_delta": dq}
    return {"value": None, "text": "n/a", "kind": "point",
            "reason": f"its point ({r:.3f} bpp, {q:.2f} dB) is outside the anchor's "
                      "rate and quality ranges"}
  res = bdrate.bd_rate(ra, qa, rt, qt, method)
  if not res.ok:
    if "overlap" in res.reason:
      p = bdrate.bd_psnr(ra, qa, rt, qt, method)
      if p.ok:
        return {"value": None, "text": f"{p.value:+.2f} dB‡", "kind": "bd_psnr",
                "quality_delta": p.value}
    return {"value": None, "text": "n/a", "reason": res.reason}
  text = f"{res.value:+.1f} %"
  if res.coverage < LOW_COVERAGE:
    text += f" ({100 * res.coverage:.0f} % covered)"
  return {"value": res.value, "text": text, "kind": "bd", "lo": res.lo, "hi": res.hi,
          "overlap": res.overlap, "coverage": res.coverage}


def bd_tables(curves: Sequence[dict], quality_key: str, method: str) -> dict:
  """``{"rows": [...], "anchors": [...], "cells": {row: {anchor: cell}}}``: rows are the
  learned curves (and their 8-bit variant for PSNR) and the paper's points; anchors
  are the classical and reference curves."""
  rows = []
  for c in curves:
    if c.get("kind") != "model":
      continue
    if has_quality(c, quality_key):
      rows.append((c["label"], c, quality_key))
    if quality_key == "psnr" and has_quality(c, "psnr_8bit"):
      rows.append((f"{c['label']} (8-bit output)", c, "psnr_8bit"))
  rows += [(c["label"], c, quality_key) for c in curves
           if c.get("name") == "cca-paper" and has_quality(c, quality_key)]
  anchors = [c for c in curves if c.get("kind") in ("classical", "reference")
             and has_quality(c, quality_key)]
  return _table(rows, anchors, quality_key, method)


def anchor_tables(curves: Sequence[dict], quality_key: str, method: str) -> dict:
  """The classical codecs measured here against the published anchors (VTM, BPG and
  the paper's points): a check of the measurements against the literature."""
  rows = [(c["label"], c, quality_key) for c in curves
          if c.get("kind") == "classical" and has_quality(c, quality_key)]
  anchors = [c for c in curves if c.get("kind") == "reference"
             and has_quality(c, quality_key)]
  return _table(rows, anchors, quality_key, method)


def _table(rows, anchors, quality_key: str, method: str) -> dict:
  cells = {}
  for label, test, qk in rows:
    cells[label] = {}
    for a in anchors:
      if a is test:
        cells[label][a["label"]] = {"value": None, "text": "-"}
        continue
      # A learned curve's 8-bit PSNR row is compared with the anchors' PSNR.
      cells[label][a["label"]] = _cell_with_keys(a, test, quality_key, qk, method)
  return {"rows": [r[0] for r in rows], "anchors": [a["label"] for a in anchors],
          "cells": cells, "quality": quality_key, "method": method}


def _cell_with_keys(anchor, test, anchor_key, test_key, method):
  if anchor_key == test_key:
    return bd_cell(anchor, test, anchor_key, method)
  # Re-key the test curve so both sides use one key.
  renamed = dict(test, points=[
      {"summary": {"bpp": point_value(p, "bpp"), anchor_key: point_value(p, test_key)}}
      for p in test["points"]])
  return bd_cell(anchor, renamed, anchor_key, method)


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
  out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  out += ["| " + " | ".join(r) + " |" for r in rows]
  return "\n".join(out)


def bd_markdown(table: dict) -> str:
  if not table["rows"] or not table["anchors"]:
    return "_No pair of curves to compare._"
  rows = [[r] + [table["cells"][r][a]["text"] or "" for a in table["anchors"]]
          for r in table["rows"]]
  return _md_table(["test \\ anchor"] + table["anchors"], rows)


# -------------------------------------------------------------------- points tables

_POINT_COLUMNS = (
    ("bpp", "bpp", "{:.4f}"), ("bpp_payload", "bpp no header", "{:.4f}"),
    ("bpp_est", "bpp est.", "{:.4f}"), ("psnr", "PSNR", "{:.2f}"),
    ("psnr_8bit", "PSNR 8-bit", "{:.2f}"), ("ms_ssim", "MS-SSIM", "{:.4f}"),
    ("ms_ssim_db", "MS-SSIM dB", "{:.2f}"), ("encode_s", "enc ms", "{:.1f}"),
    ("decode_s", "dec ms", "{:.1f}"),
)


def _setting_text(setting: dict) -> str:
  if "model" in setting:
    meta = setting.get("meta") or {}
    step = f", step {meta['step']}" if "step" in meta else ""
    lmbda = f", λ={setting['lmbda']:g}" if "lmbda" in setting else ""
    return f"`{setting['model']}` ({setting.get('model_id', '')[:8]}{step}{lmbda})"
  if "quality" in setting:
    return f"q={setting['quality']}"
  if "lmbda" in setting:
    return f"λ={setting['lmbda']}"
  return ", ".join(f"{k}={v}" for k, v in setting.items())


def points_markdown(curve: dict) -> str:
  cols = [c for c in _POINT_COLUMNS
          if any(c[0] in p.get("summary", {}) for p in curve["points"])]
  rows = []
  for p in sorted(curve["points"], key=lambda p: point_value(p, "bpp")):
    s = p.get("summary", {})
    row = [_setting_text(p.get("setting", {}))]
    for key, _, fmt in cols:
      v = s.get(key)
      if v is None or (isinstance(v, float) and math.isnan(v)):
        row.append("")
      else:
        row.append(fmt.format(1e3 * v if key.endswith("_s") else v))
    rows.append(row)
  return _md_table(["setting"] + [c[1] for c in cols], rows)


# ------------------------------------------------------------------ visual comparison


def _visual_sources(docs: Sequence[dict], replace: bool = False):
  """``(image name, original path, {curve name: [(path, point), ...]})`` from the
  first results file that kept reconstructions, plus the curves of later files that
  kept the same image (with ``replace``, a later file's curve drops the earlier
  reconstructions of its name, as in ``merge_curves``)."""
  image = original = None
  recon: dict[str, list] = {}
  for doc in docs:
    if replace:
      for c in doc["curves"]:
        recon.pop(c["name"], None)
    vis = doc.get("visual")
    if not vis or (image and vis["image"] != image):
      continue
    base = os.path.dirname(doc["_path"])
    if image is None:
      if not os.path.isfile(os.path.join(base, vis["original"])):
        print(f"note: {doc['_path']}: the kept reconstructions are gone; no visual "
              "comparison from it", file=sys.stderr)
        continue
      image, original = vis["image"], os.path.join(base, vis["original"])
    by_name = {c["name"]: c for c in doc["curves"]}
    for name, paths in vis.get("reconstructions", {}).items():
      c = by_name.get(name)
      if c is None:
        continue
      for p, point in zip(paths, c["points"]):
        if p and os.path.isfile(os.path.join(base, p)):
          recon.setdefault(name, []).append((os.path.join(base, p), point))
  return image, original, recon


def _image_record(point: dict, image: str) -> dict:
  for r in point.get("images", []):
    if r.get("image") == image:
      return r
  return {}


def build_visual(docs, curves, path: str, target_bpp: float | None = None,
                 box=None, replace: bool = False) -> dict | None:
  """Write the visual comparison PNG; returns what it shows (or None). The target
  rate defaults to the learned model's middle point (the lower of two) on the image."""
  from PIL import Image
  image, original, recon = _visual_sources(docs, replace)
  if not image or not recon:
    return None
  labels = {c["name"]: c.get("label", c["name"]) for c in curves}
  kinds = {c["name"]: c.get("kind") for c in curves}
  models = [n for n in recon if kinds.get(n) == "model"]
  if target_bpp is None:
    if models:
      rates = sorted(_image_record(pp[1], image).get("bpp", math.inf)
                     for pp in recon[models[0]])
      target_bpp = rates[(len(rates) - 1) // 2]
    else:
      target_bpp = 0.5
  panels = [("original", np.asarray(Image.open(original).convert("RGB")))]
  chosen = []
  for name in models + [n for n in recon if n not in models]:
    best = min(recon[name], key=lambda pp: abs(
        _image_record(pp[1], image).get("bpp", math.inf) - target_bpp))
    rec = _image_record(best[1], image)
    setting = _setting_text(best[1].get("setting", {})).replace("`", "")
    title = (f"{labels.get(name, name)}\n{setting}\n{rec.get('bpp', math.nan):.3f} bpp, "
             f"{rec.get('psnr_8bit', rec.get('psnr', math.nan)):.2f} dB")
    panels.append((title, np.asarray(Image.open(best[0]).convert("RGB"))))
    chosen.append({"curve": name, "setting": best[1].get("setting", {}),
                   "bpp": rec.get("bpp"),
                   "psnr_8bit": rec.get("psnr_8bit", rec.get("psnr"))})
  box = plots.visual_comparison(panels, path, box,
                                title=f"{image}, about {target_bpp:.2f} bpp")
  return {"image": image, "target_bpp": target_bpp, "box": list(box), "panels": chosen}


# -------------------------------------------------------------------------- report


def _dataset_name(docs, choice: str) -> str | None:
  if choice == "none":
    return None
  if choice != "auto":
    return choice
  names = {d.get("dataset", {}).get("name") for d in docs}
  names.discard(None)
  return names.pop() if len(names) == 1 else None


def build(docs: Sequence[dict], out_dir: str, markdown: str = "results.md",
          reference: str = "auto", method: str = "pchip", notes: Sequence[str] = (),
          visual_bpp: float | None = None, crop=None, command: str = "",
          replace: bool = False) -> dict:
  """Write the report; returns ``{"markdown": path, "assets": [...], "bd": {...}}``."""
  if os.path.exists(out_dir) and not os.path.isdir(out_dir):
    raise ValueError(f"{out_dir}: is a file; --out names the report's directory")
  os.makedirs(out_dir, exist_ok=True)  # created with its parents, as asked
  stem = os.path.splitext(markdown)[0]
  asset_dir = os.path.join(out_dir, stem)
  os.makedirs(asset_dir, exist_ok=True)
  curves = merge_curves([d["curves"] for d in docs], replace)
  dataset = _dataset_name(docs, reference)
  refs = reference_curves(dataset) if dataset else []
  all_curves = curves + refs
  image_sets = {tuple(d.get("dataset", {}).get("images", [])) for d in docs}

  assets = []
  rd = {}
  for key, fname, title in (("psnr", "rd_psnr.png", "PSNR"),
                            ("ms_ssim_db", "rd_ms_ssim.png", "MS-SSIM")):
    if any(has_quality(c, key) for c in all_curves):
      plots.rd_plot(all_curves, os.path.join(asset_dir, fname), key,
                    title=f"{(dataset or 'dataset').capitalize()}: rate vs {title}")
      rd[key] = f"{stem}/{fname}"
      assets.append(fname)
  bd = {k: bd_tables(all_curves, k, method) for k in ("psnr", "ms_ssim_db")}
  anchors = {k: anchor_tables(all_curves, k, method) for k in ("psnr", "ms_ssim_db")}
  visual = build_visual(docs, all_curves, os.path.join(asset_dir, "visual.png"),
                        visual_bpp, crop, replace)
  if visual:
    assets.append("visual.png")
  from cca_jax.eval.information import from_results
  info = from_results({"curves": curves})  # the merged model curves
  if info:
    plots.information_plot(info, os.path.join(asset_dir, "information.png"))
    assets.append("information.png")
  write_json(os.path.join(asset_dir, "bdrate.json"),
             {"method": method, "dataset": dataset, "tables": bd,
              "classical_vs_references": anchors})
  assets.append("bdrate.json")
  # The raw results next to the report (compact JSON), so its numbers stay checkable.
  os.makedirs(os.path.join(asset_dir, "data"), exist_ok=True)
  used = set()
  for i, d in enumerate(docs):
    name = os.path.basename(d["_path"])
    if name in used:
      name = f"{i}_{name}"
    used.add(name)
    raw = {k: v for k, v in d.items() if k != "_path"}
    atomic_write_bytes(os.path.join(asset_dir, "data", name),
                       (json.dumps(raw, separators=(",", ":")) + "\n").encode())
    assets.append(f"data/{name}")

  md = _markdown(docs, all_curves, dataset, bd, anchors, rd, visual, info, method,
                 notes, stem, image_sets, command)
  md_path = os.path.join(out_dir, markdown)
  atomic_write_bytes(md_path, md.encode())
  return {"markdown": md_path, "assets": [os.path.join(asset_dir, a) for a in assets],
          "bd": bd}


def _markdown(docs, curves, dataset, bd, anchors, rd, visual, info, method, notes,
              stem, image_sets, command) -> str:
  from cca_jax.eval.information import format_table
  n_images = sorted({d.get("dataset", {}).get("num_images", 0) for d in docs})
  out = [f"# Rate-distortion results{': ' + dataset.capitalize() if dataset else ''}",
         ""]
  for i, n in enumerate(notes):
    out += ([">"] if i else []) + [f"> {n}"]
  if notes:
    out.append("")
  out.append(f"Images: {', '.join(str(n) for n in n_images)} "
             f"({', '.join(sorted({d['dataset']['path'] for d in docs}))}).")
  if len(image_sets) > 1:
    out.append("**Warning:** the results files cover different image sets.")
  out += ["", "Metrics (per image, then averaged): rate = bits of the whole file "
          "(the learned codec's stream with its header; each classical codec's file "
          "with its container) per pixel; PSNR of a learned model on its clamped float "
          "output (the paper's protocol; the 8-bit PNG's PSNR is the `PSNR 8-bit` "
          "column), of a classical codec on its decoded 8-bit image; MS-SSIM dB = "
          "-10 log10(1 - MS-SSIM), averaged per image. Times are wall clock per image "
          "on the machine below (after one untimed warm-up per image size for the "
          "learned codec).", ""]
  for key, title in (("psnr", "PSNR"), ("ms_ssim_db", "MS-SSIM")):
    if key in rd:
      out.append(f"![RD {title}]({rd[key]})")
  out += ["", f"## BD-rate ({method.upper()})", "",
          "Average bit-rate difference of each row against each column at equal "
          "quality (negative: the row needs fewer bits), over the quality range both "
          "cover; flagged with the share of the row's quality range that the column "
          "covers when that is under half. † a one-point row (or a row whose points "
          "do not rise in quality with rate): the rate difference at that point's "
          "quality against the column's interpolated curve. ‡ the row's qualities "
          "are outside the column's range: the quality difference at equal rate "
          "instead (dB; BD-PSNR for a curve).", "", "### PSNR", "",
          bd_markdown(bd["psnr"]), "", "### MS-SSIM (dB)", "",
          bd_markdown(bd["ms_ssim_db"]), ""]
  if anchors["psnr"]["rows"] and anchors["psnr"]["anchors"]:
    out += ["### The classical codecs measured here against the published anchors", "",
            "A check of these measurements against the literature (CompressAI's VTM "
            "and BPG runs on the same images); PSNR, then MS-SSIM dB.", "",
            bd_markdown(anchors["psnr"]), ""]
    if anchors["ms_ssim_db"]["rows"] and anchors["ms_ssim_db"]["anchors"]:
      out += [bd_markdown(anchors["ms_ssim_db"]), ""]
  notes_out = sorted({f"- {r} vs {a} ({_QUALITY_NAMES[t['quality']]}): {cell['reason']}"
                      for t in bd.values() for r, row in t["cells"].items()
                      for a, cell in row.items() if cell.get("reason")
                      and cell.get("text") == "n/a"})
  if notes_out:
    out += ["Not computed:", ""] + notes_out + [""]
  out += ["## Operating points", ""]
  for c in curves:
    settings = c.get("settings", {})
    src = settings.get("library") or settings.get("source") or ""
    desc = ", ".join(f"{k}={v}" for k, v in settings.items()
                     if k not in ("library", "source", "note", "dataset"))
    out += [f"### {c.get('label', c['name'])} ({c.get('kind')})", ""]
    if src:
      out.append(f"Source: {src}.")
    if desc:
      out.append(f"Settings: {desc}.")
    if settings.get("note"):
      out.append(f"Note: {settings['note']}.")
    out += ["", points_markdown(c), ""]
  if visual:
    box = visual["box"]
    out += ["## Visual comparison", "",
            f"`{visual['image']}`, crop of {box[2]}x{box[3]} pixels at (top {box[0]}, "
            f"left {box[1]}); for each codec the quality whose rate on this image is "
            f"closest to {visual['target_bpp']:.3f} bpp; PSNR of the 8-bit output.", "",
            f"![visual comparison]({stem}/visual.png)", ""]
  if info:
    out += ["## Information distribution over the slices", "",
            "Share of the estimated y bits per channel slice (mean over the images), "
            "and the share per channel (normalised by each slice's channel count).", "",
            f"![information distribution]({stem}/information.png)", "", "```",
            format_table(info), "```", ""]
  out += ["## How these results were made", "", "```bash"]
  for d in docs:
    if d.get("command"):
      out.append(".venv/bin/" + d["command"])
  if command:
    out.append(".venv/bin/" + command)
  out += ["```", "", f"The results files (per-image records included) are copied to "
          f"`{stem}/data/`, the BD-rate tables to `{stem}/bdrate.json`.", "",
          "Environment of each results file:", ""]
  for d in docs:
    env = d.get("environment", {})
    codecs = "; ".join(f"{k[6:]}: {v}" for k, v in env.items() if k.startswith("codec_"))
    out.append(f"- `{os.path.basename(d['_path'])}`: {env.get('date', '?')}, "
               f"{env.get('platform', '?')}, {env.get('cpu_count', '?')} CPUs, jax "
               f"{env.get('jax', '?')} on {env.get('backend', '?')} "
               f"({', '.join(env.get('devices', []))})" + (f"; {codecs}" if codecs else ""))
  out.append("")
  return "\n".join(out) + "\n"


def _crop(text: str):
  import argparse
  try:
    vals = tuple(int(v) for v in text.split(","))
  except ValueError:
    raise argparse.ArgumentTypeError("expected TOP,LEFT,HEIGHT,WIDTH integers") from None
  if len(vals) != 4 or min(vals) < 0 or vals[2] == 0 or vals[3] == 0:
    raise argparse.ArgumentTypeError("expected TOP,LEFT,HEIGHT,WIDTH (non-negative)")
  return vals


def main(argv=None) -> int:
  import argparse
  from cca_jax.utils.cli import fail_with
  argv = list(sys.argv[1:] if argv is None else argv)
  p = argparse.ArgumentParser(
      prog="python -m cca_jax.report",
      description="RD plots, BD-rate tables and a markdown report from cca_jax.evaluate "
                  "results.")
  p.add_argument("results", nargs="+", help="results JSON files")
  p.add_argument("--out", required=True, help="output directory")
  p.add_argument("--markdown", default="results.md",
                 help="markdown file name in --out (its assets go to a folder of the "
                      "same stem)")
  p.add_argument("--reference", default="auto", choices=("auto", "none") + DATASETS,
                 help="published reference points to add (auto: from the dataset name)")
  p.add_argument("--method", default="pchip", choices=bdrate.METHODS,
                 help="BD-rate interpolation")
  p.add_argument("--note", action="append", default=[],
                 help="a line quoted at the top of the report (repeat)")
  p.add_argument("--visual-bpp", type=float,
                 help="target rate of the visual comparison (default: the middle "
                      "model point on that image)")
  p.add_argument("--crop", type=_crop, help="TOP,LEFT,HEIGHT,WIDTH of the visual crop "
                                            "(default: the most detailed square)")
  p.add_argument("--replace", action="store_true",
                 help="a curve of a later results file replaces the curve of the same "
                      "name from earlier files (default: their points are pooled)")
  args = p.parse_args(argv)
  if os.path.splitext(args.markdown)[1] != ".md" or os.sep in args.markdown:
    p.error("--markdown must be a file name ending in .md")
  try:
    docs = [read_results(r) for r in args.results]
    command = "python -m cca_jax.report " + " ".join(shlex.quote(a) for a in argv)
    res = build(docs, args.out, args.markdown, args.reference, args.method, args.note,
                args.visual_bpp, args.crop, command, args.replace)
  except (ValueError, OSError) as e:
    return fail_with(e)
  print(f"wrote {res['markdown']} and {len(res['assets'])} files in "
        f"{os.path.dirname(res['assets'][0])}", file=sys.stderr)
  return 0
