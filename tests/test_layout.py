"""The house rules of the package (WORKSPACE.md, "The house"): imports flow one way,
ops -> model -> codec / train -> eval -> tools, and the top level holds only the
tools (``python -m cca_jax.<tool>``), the config schema and the packages."""

import ast
import os

from conftest import ROOT

PACKAGE = os.path.join(ROOT, "cca_jax")
# What each part may import of cca_jax (besides itself). The tools may import all.
ALLOWED = {
    "config": set(),
    "utils": set(),
    "ops": set(),
    "model": {"ops", "config"},
    "codec": {"model", "ops", "utils", "config"},
    "train": {"model", "ops", "utils", "config"},
    "eval": {"codec", "model", "ops", "utils", "config"},
}
TOOLS = {"cli", "compare", "evaluate", "report", "export", "convert_torch", "summary"}


def _modules():
  for dirpath, _, files in os.walk(PACKAGE):
    for f in sorted(files):
      if f.endswith(".py"):
        path = os.path.join(dirpath, f)
        yield os.path.relpath(path, PACKAGE)[:-3].replace(os.sep, "."), path


def _imports(path):
  """Every ``cca_jax.<part>`` a module imports, at any depth (lazy imports too)."""
  tree = ast.parse(open(path).read())
  for node in ast.walk(tree):
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    elif isinstance(node, ast.Import):
      names = [a.name for a in node.names]
    else:
      continue
    for name in names:
      parts = name.split(".")
      if parts[0] == "cca_jax" and len(parts) > 1:
        yield parts[1]


def test_imports_flow_one_way():
  checked, bad = 0, []
  for name, path in _modules():
    part = name.split(".")[0]
    if part in TOOLS or name in ("__init__", "train.__main__"):
      continue  # entry points: may import anything
    assert part in ALLOWED, f"cca_jax/{part}: not a known part of the house"
    checked += 1
    bad += [f"{name} imports cca_jax.{p}" for p in sorted(set(_imports(path)))
            if p != part and p not in ALLOWED[part]]
  assert checked > 50 and not bad, bad


def test_top_level_holds_tools_config_and_packages():
  entries = {e[:-3] if e.endswith(".py") else e for e in os.listdir(PACKAGE)
             if not e.startswith("__pycache__")}
  assert entries == TOOLS | set(ALLOWED) | {"__init__"}, sorted(entries)
