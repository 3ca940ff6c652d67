"""Parameter counts and groups of the paper config (those of the official model)."""

import os
import subprocess
import sys

from conftest import ROOT, load_config
from cca_jax.summary import summarize


def test_paper_counts():
  s = summarize(load_config("paper").model)
  assert s["inference"] == 64_988_067
  assert s["training"] == 94_253_423
  assert s["aux"] == 29_265_356
  assert s["sizes"] == [8, 28, 56, 92, 136]
  rows = dict(s["rows"])
  assert rows["g_a (analysis)"] == 10_424_672
  assert rows["g_s (synthesis)"] == 10_424_355
  assert rows["EM NAF transforms (mean+scale)"] == 16_071_360
  assert rows["EM cc heads (mean+scale)"] == 11_063_360
  assert rows["EM latent residual prediction"] == 6_176_800
  assert rows["z entropy bottleneck: quantiles"] == 576


def test_even_grouping_ablation_count():
  cfg = load_config("paper").model
  cfg.k = 0.0
  s = summarize(cfg)
  assert s["sizes"] == [64] * 5
  assert s["inference"] == 67_210_787


def test_cli_prints_totals():
  out = subprocess.run([sys.executable, "-m", "cca_jax.summary", "--config",
                        os.path.join(ROOT, "configs", "paper.py")], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr
  assert "64,988,067" in out.stdout and "94,253,423" in out.stdout
  assert "[8, 28, 56, 92, 136]" in out.stdout
