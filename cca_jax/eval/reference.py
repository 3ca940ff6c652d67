"""Published rate-distortion points shipped as reference data (``data/reference_rd.json``).

* ``cca-paper``: the paper's points released with the official code (RD_data.json,
  commit c7088d2) for Kodak, CLIC and Tecnick, one per lambda (mapping presumed).
* ``vtm`` and ``bpg444`` (Kodak): CompressAI's published anchor measurements (mean bpp,
  PSNR and MS-SSIM over the 24 images), the usual anchors of learned image compression
  papers. With them, ``bd_rate`` of the paper's points against VTM is -13.73 % (PCHIP;
  our computation, not a figure of the paper).

``reference_curves(dataset)`` returns them as curves (``curves.py``, kind
``"reference"``); ``guess_dataset`` maps an image folder to a dataset name.
"""

from __future__ import annotations

import functools
import json
import os

from cca_jax.ops.metrics import db

DATA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data",
                         "reference_rd.json")
DATASETS = ("kodak", "clic", "tecnick")


@functools.lru_cache(maxsize=1)
def load() -> dict:
  with open(DATA_FILE) as f:
    doc = json.load(f)
  if doc.get("format") != "cca-jax-reference-rd":
    raise ValueError(f"{DATA_FILE}: not a reference RD file")
  return doc


def reference_curves(dataset: str, names=None) -> list[dict]:
  """The reference curves of ``dataset`` (``kodak``, ``clic``, ``tecnick``), optionally
  only ``names`` (e.g. ``["cca-paper"]``); an unknown dataset has none."""
  entries = load()["datasets"].get(dataset, {})
  out = []
  for name, e in entries.items():
    if names is not None and name not in names:
      continue
    points = []
    for i, bpp in enumerate(e["bpp"]):
      s = {"bpp": float(bpp), "psnr": float(e["psnr"][i])}
      if "ms_ssim" in e:
        s["ms_ssim"] = float(e["ms_ssim"][i])
        s["ms_ssim_db"] = db(s["ms_ssim"])
      setting = {"lmbda": e["lmbda"][i]} if "lmbda" in e else {"index": i}
      points.append({"setting": setting, "summary": s})
    out.append({"name": name, "label": e["label"], "kind": "reference",
                "settings": {"source": e["source"], "note": e.get("note", ""),
                             "dataset": dataset},
                "points": points})
  return out


def guess_dataset(path_or_name: str) -> str | None:
  """``kodak`` / ``clic`` / ``tecnick`` when the folder name says so, else None."""
  name = os.path.basename(os.path.normpath(str(path_or_name))).lower()
  for d in DATASETS:
    if d in name:
      return d
  return None
