"""Where the codec finds its models: the shipped ones, the user's, and any named.

Four places, searched in this order when a stream's model is looked up by its id:

1. ``$CCA_JAX_MODEL``: bundle files or directories of ``*.ccam`` bundles, separated
   by ``:`` (``os.pathsep``);
2. the per-user model directory, ``$CCA_JAX_HOME/models`` (default
   ``$XDG_DATA_HOME/cca_jax/models``, i.e. ``~/.local/share/cca_jax/models``), where
   ``cca-jax export`` registers a copy of every bundle it writes;
3. the shipped models, ``models/*.ccam`` at the repository root (found next to the
   installed package; the README's setup installs it in editable mode);
4. retired models, ``models/retired/*.ccam``: earlier shipped models that newer ones
   replaced, kept so that the streams they wrote still decode (found by id only: they
   are not qualities and have no names).

The shipped models are one RD curve: ``quality`` 1 (smallest files) to N, in
decreasing order of their training lambda (the rate weight: the largest lambda makes
the smallest files); the default is the middle one (quality 4 of 7 or of 6, 3 of 4, 2 of 3). A model name
is one of ``default``, ``q1`` .. ``qN`` (also ``quality=N``), a shipped model's file
name without ``.ccam``, or a model id (16 hex digits, a bundle's first sha256 bytes).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil

from cca_jax.codec.errors import CodecError

MODEL_ENV = "CCA_JAX_MODEL"
HOME_ENV = "CCA_JAX_HOME"
SUFFIX = ".ccam"


@dataclasses.dataclass(frozen=True)
class ModelEntry:
  """One bundle found on disk, described by its manifest (weights not read)."""
  path: str
  source: str          # "env", "user" or "shipped"
  manifest: dict
  quality: int | None = None  # shipped models only

  @property
  def sha256(self) -> str:
    return str(self.manifest.get("sha256", ""))

  @property
  def model_id(self) -> str:
    return self.sha256[:16]

  @property
  def name(self) -> str:
    return os.path.basename(self.path)[:-len(SUFFIX)]

  @property
  def lmbda(self) -> float | None:
    value = self.manifest.get("meta", {}).get("lmbda")
    return float(value) if isinstance(value, (int, float)) else None


def shipped_dir() -> str:
  """``models/`` at the repository root (next to the ``cca_jax`` package)."""
  package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  return os.path.join(os.path.dirname(package), "models")


def retired_dir() -> str:
  """``models/retired/``: replaced shipped models, for the streams they wrote."""
  return os.path.join(shipped_dir(), "retired")


def user_dir() -> str:
  """The per-user model directory (``$CCA_JAX_HOME/models``, default
  ``$XDG_DATA_HOME/cca_jax/models`` or ``~/.local/share/cca_jax/models``)."""
  home = os.environ.get(HOME_ENV)
  if not home:
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share")
    home = os.path.join(data, "cca_jax")
  return os.path.join(home, "models")


def env_paths() -> list[str]:
  return [p for p in os.environ.get(MODEL_ENV, "").split(os.pathsep) if p]


def _bundles_in(path: str) -> list[str]:
  from cca_jax.codec.bundle import bundle_files
  if os.path.isdir(path):
    return bundle_files(path)
  return [path] if os.path.isfile(path) else []


def _entries(paths, source: str) -> list[ModelEntry]:
  from cca_jax.codec.bundle import read_manifest
  out = []
  for p in paths:
    try:
      out.append(ModelEntry(p, source, read_manifest(p)))
    except CodecError:
      continue  # not a bundle (or damaged): skipped in listings, refused when named
  return out


def shipped_models() -> list[ModelEntry]:
  """The shipped models with their quality (1 = smallest files): by decreasing
  lambda (the rate weight)."""
  entries = _entries(_bundles_in(shipped_dir()), "shipped")
  entries.sort(key=lambda e: (e.lmbda is None, -(e.lmbda or 0.0), e.name))
  return [dataclasses.replace(e, quality=i + 1) for i, e in enumerate(entries)]


def all_models() -> list[ModelEntry]:
  """Every bundle the codec can find: ``$CCA_JAX_MODEL``, user, shipped, retired."""
  env = _entries([b for p in env_paths() for b in _bundles_in(p)], "env")
  return (env + _entries(_bundles_in(user_dir()), "user") + shipped_models()
          + _entries(_bundles_in(retired_dir()), "retired"))


def default_quality(n: int) -> int:
  return n // 2 + 1


def by_quality(quality: int | None = None) -> ModelEntry:
  """The shipped model of this quality (None: the default, the middle one)."""
  shipped = shipped_models()
  if not shipped:
    raise CodecError(f"no shipped models in {shipped_dir()}; pass --model MODEL")
  q = default_quality(len(shipped)) if quality is None else quality
  if not 1 <= q <= len(shipped):
    raise CodecError(f"quality {q} does not exist: the shipped models are qualities "
                     f"1 to {len(shipped)}")
  return shipped[q - 1]


def by_id(model_id: bytes | str, extra: str | None = None) -> str:
  """The path of the bundle whose id is ``model_id``: in ``extra`` (a file or a
  directory) first, then ``$CCA_JAX_MODEL``, the user's, the shipped and the retired
  models."""
  hexid = model_id.hex() if isinstance(model_id, bytes) else str(model_id).lower()
  candidates = _entries(_bundles_in(extra), "arg") if extra else []
  candidates += all_models()
  for e in candidates:
    if e.sha256.startswith(hexid):
      return e.path
  where = f"{extra}, " if extra else ""
  raise CodecError(f"no model with id {hexid} (searched {where}${MODEL_ENV}, "
                   f"{user_dir()}, {shipped_dir()}); pass --model MODEL")


_QUALITY = re.compile(r"^(?:q|quality=)(\d+)$")
_HEXID = re.compile(r"^[0-9a-f]{16}$")


def resolve_name(name: str) -> str | None:
  """The bundle path that a model name stands for, or None if it is not a name."""
  if name == "default":
    return by_quality(None).path
  m = _QUALITY.match(name)
  if m:
    return by_quality(int(m.group(1))).path
  for e in shipped_models():
    if e.name == name:
      return e.path
  if _HEXID.match(name.lower()):
    return by_id(name)
  return None


def register(path: str) -> str:
  """Copy a bundle into the per-user model directory (named as ``path`` unless a
  different bundle holds that name; then by its id); returns the copy's path."""
  from cca_jax.codec.bundle import read_manifest
  doc = read_manifest(path)
  directory = user_dir()
  os.makedirs(directory, exist_ok=True)
  target = os.path.join(directory, os.path.basename(path))
  if os.path.exists(target):
    try:
      same = read_manifest(target).get("sha256") == doc.get("sha256")
    except CodecError:
      same = False
    if same:
      return target
    target = os.path.join(directory, f"{doc['sha256'][:16]}{SUFFIX}")
  tmp = f"{target}.tmp-{os.getpid()}"
  try:
    shutil.copyfile(path, tmp)
    os.replace(tmp, target)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return target
