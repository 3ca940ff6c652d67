"""The exported model bundle: one self-describing file that a codec needs, and nothing
else (written by ``cca_jax.export``; docs/format.md describes it).

A bundle is a zip archive (stored, not deflated; fixed timestamps, so the same
contents give the same bytes) with three members:

* ``manifest.json``: ``format`` ("cca-jax-model"), ``version`` (1), ``sha256`` (the
  content hash), ``model`` (the ``CCAModel`` fields, ``aux_model`` false), ``tables``
  (how they were built) and ``meta`` (provenance: source, step; not hashed);
* ``params.msgpack``: the inference parameters (``flax.serialization`` msgpack; the
  auxiliary entropy model is dropped, ``estimate.inference_params``), float32, or
  float16 when exported with ``weights_dtype="float16"`` (manifest ``weights``;
  halves the file; the model *is* the float16-rounded one: tables, hash and codec
  all use those values, widened to float32 on load);
* ``tables.msgpack``: the coding tables (``cca_jax.model.entropy.tables.build_tables``);
* version 2 only: ``integer.msgpack``, the lookup tables of the integer entropy
  parameters (``cca_jax.model.entropy.integer.lookup_tables``).

Version 2 (the default of ``make_bundle`` and ``export``) computes the entropy
parameters with the exact integer networks of ``cca_jax.model.entropy.integer`` (manifest
``entropy_parameters``: ``"integer"``): its streams decode exactly on any machine.
Version 1 bundles (``"float"``: the float networks) are still read; their streams
decode exactly only with the jax/XLA build, backend and CPU kind that wrote them.

The content hash is the sha256 of the format version, a canonical serialisation of the
model config (sorted-key JSON) and of every parameter and table array (sorted by path; dtype, shape
and little-endian bytes). A stream's header carries its first 8 bytes (the *model
id*), so a stream is only ever decoded with the model that wrote it. Loading verifies
the hash, so a damaged bundle is refused.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import os
import zipfile

import numpy as np
from flax import traverse_util

from cca_jax.codec.errors import CodecError
from cca_jax.model.entropy.tables import ModelTables, build_tables
from cca_jax.utils.files import atomic_write_bytes

FORMAT = "cca-jax-model"
VERSION = 2
VERSIONS = (1, 2)
ARITHMETIC = {1: "float", 2: "integer"}  # how each version computes entropy parameters
SUFFIX = ".ccam"
MANIFEST = "manifest.json"
PARAMS = "params.msgpack"
TABLES = "tables.msgpack"
INTEGER = "integer.msgpack"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def _flatten(tree) -> list:
  """``[("a/b/c", leaf), ...]`` sorted by path (the order the content hash uses)."""
  return sorted(traverse_util.flatten_dict(tree, sep="/").items())


def canonical_config(model_cfg) -> dict:
  """The model fields as plain JSON types, ``aux_model`` false (inference bundle)."""
  from cca_jax.config import model_config_dict
  return dict(model_config_dict(model_cfg), aux_model=False)


def content_hash(config: dict, params: dict, tables: dict, luts: dict | None = None,
                 version: int = VERSION) -> str:
  """sha256 (hex) of the canonical contents: version, config, parameters, tables (and
  the integer path's lookup tables, version 2)."""
  h = hashlib.sha256()
  h.update(f"{FORMAT}/{version}\n".encode())
  h.update(json.dumps(config, sort_keys=True, separators=(",", ":")).encode())
  trees = [("params", params), ("tables", tables)]
  if version >= 2:
    trees.append(("integer", luts))
  for name, tree in trees:
    for path, a in _flatten(tree):
      a = np.ascontiguousarray(a)
      a = a.astype(a.dtype.newbyteorder("<"), copy=False)
      h.update(f"\n{name}/{path}:{a.dtype.str}:{list(a.shape)}\n".encode())
      h.update(a.tobytes())
  return h.hexdigest()


@dataclasses.dataclass(eq=False)
class ModelBundle:
  """A loaded (or freshly built) model bundle: what ``compress`` / ``decompress`` take."""
  config: dict
  params: dict
  tables: ModelTables
  sha256: str
  meta: dict = dataclasses.field(default_factory=dict)
  path: str | None = None
  weights_dtype: str = "float32"  # how params.msgpack stores them (params are float32)
  version: int = VERSION
  luts: dict | None = None  # version 2: the integer path's lookup tables

  @property
  def arithmetic(self) -> str:
    """How the entropy parameters are computed: ``"integer"`` or ``"float"``."""
    return ARITHMETIC[self.version]

  @property
  def model_id(self) -> bytes:
    """The 8 bytes a stream's header carries."""
    return bytes.fromhex(self.sha256)[:8]

  @functools.cached_property
  def model(self):
    from cca_jax.model.cca import CCAModel
    return CCAModel.from_config(self.config, aux_model=False)

  @functools.cached_property
  def programs(self):
    from cca_jax.codec.programs import integer_programs_for, programs_for
    if self.arithmetic == "integer":
      return integer_programs_for(self.model)
    return programs_for(self.model)

  @functools.cached_property
  def device_params(self):
    import jax
    return jax.device_put(self.params)

  @functools.cached_property
  def entropy_params(self):
    """What ``programs.hyper_synthesis`` / ``predict`` / ``refine`` take: the float
    parameters (version 1) or the integer networks (``entropy.integer.convert``)."""
    if self.arithmetic == "float":
      return self.device_params
    import jax
    from cca_jax.model.entropy import integer
    with jax.enable_x64(True):
      return jax.device_put(integer.convert(self.params, self.luts))

  @functools.cached_property
  def z_models(self):
    from cca_jax.codec.coder import TableModels
    return TableModels(self.tables.z)

  @functools.cached_property
  def y_models(self):
    from cca_jax.codec.coder import TableModels
    return TableModels(self.tables.y)

  @property
  def medians(self) -> np.ndarray:
    """Per-channel medians of z (float32): z symbols are ``round(z - medians)``."""
    return np.asarray(self.params["z_entropy_bottleneck"]["quantiles"],
                      np.float32)[:, 0, 1]

  def with_version(self, version: int) -> "ModelBundle":
    """The same weights and coding tables as a bundle of another format version
    (``1``: float entropy parameters, ``2``: integer); a new content hash and id."""
    if version not in VERSIONS:
      raise CodecError(f"bundle version {version}: use one of {VERSIONS}")
    luts = None
    if version >= 2:
      from cca_jax.model.entropy import integer
      luts = self.luts if self.luts is not None else integer.lookup_tables()
    stored = _stored(self.params, self.weights_dtype)
    digest = content_hash(self.config, stored, self.tables.to_dict(), luts, version)
    return dataclasses.replace(self, sha256=digest, path=None, version=version,
                               luts=luts)

  def describe(self) -> str:
    """``model <id>`` (``PATH (model <id>)`` when loaded from a file)."""
    ident = f"model {self.model_id.hex()}"
    return f"{self.path} ({ident})" if self.path else ident


WEIGHTS_DTYPES = ("float32", "float16")


def _stored(params, weights_dtype: str):
  """The parameters as ``params.msgpack`` stores them."""
  import jax
  with np.errstate(over="ignore"):  # overflow is checked (and refused) by the caller
    return jax.tree.map(lambda a: np.asarray(a, weights_dtype), params)


def make_bundle(model_cfg, params, meta: dict | None = None,
                weights_dtype: str = "float32", version: int = VERSION) -> ModelBundle:
  """Build a bundle from a model config and parameters: drops the auxiliary model,
  checks the parameter tree against the config, builds the coding tables.
  ``weights_dtype="float16"`` rounds the weights to float16 first (half the file;
  the tables are built from the rounded weights, so the codec stays exact).
  ``version`` 2 (default): integer entropy parameters; 1: the float networks."""
  if weights_dtype not in WEIGHTS_DTYPES:
    raise CodecError(f"weights dtype {weights_dtype!r}: use one of {WEIGHTS_DTYPES}")
  if version not in VERSIONS:
    raise CodecError(f"bundle version {version}: use one of {VERSIONS}")
  import jax
  from cca_jax.model.cca import CCAModel, param_shapes
  from cca_jax.model.inference import inference_params
  config = canonical_config(model_cfg)
  params = jax.tree.map(np.asarray, inference_params(dict(params)))
  shapes = param_shapes(CCAModel.from_config(config))
  expected = {p: tuple(s.shape) for p, s in _flatten(shapes)}
  got = {p: tuple(a.shape) for p, a in _flatten(params)}
  missing = sorted(set(expected) - set(got))
  extra = sorted(set(got) - set(expected))
  if missing or extra:
    what = f"missing {missing[0]}" if missing else f"unexpected {extra[0]}"
    raise CodecError(f"parameters do not fit the model config ({what}; "
                     f"{len(missing)} missing, {len(extra)} unexpected)")
  for p in expected:
    if expected[p] != got[p]:
      raise CodecError(f"parameter {p} has shape {got[p]}, the config needs {expected[p]}")
  for p, a in _flatten(params):
    if not np.all(np.isfinite(a)):
      raise CodecError(f"parameter {p} is not finite")
  stored = _stored(params, weights_dtype)
  for p, a in _flatten(stored):
    if not np.all(np.isfinite(a)):
      raise CodecError(f"parameter {p} overflows {weights_dtype}")
  params = jax.tree.map(lambda a: np.asarray(a, np.float32), stored)
  bundle = ModelBundle(config, params, build_tables(params), "", dict(meta or {}),
                       weights_dtype=weights_dtype).with_version(version)
  if version >= 2:
    from cca_jax.model.entropy import integer
    try:
      integer.convert(params, bundle.luts)
    except ValueError as e:
      raise CodecError(f"cannot convert to the integer path: {e}") from None
  return bundle


def _zip_member(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
  info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
  info.compress_type = zipfile.ZIP_STORED
  info.external_attr = 0o644 << 16
  zf.writestr(info, data)


def bundle_bytes(bundle: ModelBundle) -> bytes:
  from flax import serialization
  manifest = {
      "format": FORMAT, "version": bundle.version, "sha256": bundle.sha256,
      "entropy_parameters": bundle.arithmetic,
      "model": bundle.config,
      "weights": bundle.weights_dtype,
      "tables": {"precision": bundle.tables.y.precision,
                 "scale_table": {"min": float(bundle.tables.scale_table[0]),
                                 "max": float(bundle.tables.scale_table[-1]),
                                 "levels": int(len(bundle.tables.scale_table))},
                 "z_tables": bundle.tables.z.num_tables,
                 "y_tables": bundle.tables.y.num_tables},
      "meta": bundle.meta,
  }
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, "w") as zf:
    _zip_member(zf, MANIFEST, (json.dumps(manifest, indent=2, sort_keys=True) + "\n")
                .encode())
    _zip_member(zf, PARAMS, serialization.msgpack_serialize(
        _stored(bundle.params, bundle.weights_dtype)))
    _zip_member(zf, TABLES, serialization.msgpack_serialize(bundle.tables.to_dict()))
    if bundle.version >= 2:
      _zip_member(zf, INTEGER, serialization.msgpack_serialize(bundle.luts))
  return buf.getvalue()


def save_bundle(bundle: ModelBundle, path: str) -> None:
  """Write atomically (temp file + rename)."""
  atomic_write_bytes(path, bundle_bytes(bundle))


def _open(path: str) -> zipfile.ZipFile:
  if os.path.isdir(path):
    raise CodecError(f"{path}: is a directory, not a model bundle")
  try:
    return zipfile.ZipFile(path)
  except FileNotFoundError:
    raise CodecError(f"{path}: no such model file") from None
  except (zipfile.BadZipFile, OSError, ValueError):
    raise CodecError(f"{path}: not a cca-jax model bundle") from None


def _manifest(zf: zipfile.ZipFile, path: str) -> dict:
  try:
    doc = json.loads(zf.read(MANIFEST))
  except (KeyError, ValueError, zipfile.BadZipFile, OSError):
    raise CodecError(f"{path}: not a cca-jax model bundle (no manifest)") from None
  if not isinstance(doc, dict) or doc.get("format") != FORMAT:
    raise CodecError(f"{path}: not a cca-jax model bundle")
  if doc.get("version") not in VERSIONS:
    raise CodecError(f"{path}: model bundle version {doc.get('version')} is not "
                     f"supported (this build reads versions "
                     f"{', '.join(map(str, VERSIONS))})")
  return doc


def read_manifest(path: str) -> dict:
  """The manifest only (fast: the weights are not read)."""
  with _open(path) as zf:
    return _manifest(zf, path)


def load_bundle(path: str) -> ModelBundle:
  """Load and verify a bundle; raises ``CodecError`` with a one-line message.

  ``path`` is a bundle file or a model name (``cca_jax.codec.registry``):
  ``load_bundle("default")`` is the default shipped model, ``"q1"`` .. ``"qN"`` the
  shipped qualities, a 16-hex-digit model id any bundle the registry finds."""
  import jax
  from flax import serialization
  if not os.path.exists(path):
    from cca_jax.codec import registry
    path = registry.resolve_name(path) or path
  with _open(path) as zf:
    doc = _manifest(zf, path)
    try:
      params = serialization.msgpack_restore(zf.read(PARAMS))
      tables = ModelTables.from_dict(serialization.msgpack_restore(zf.read(TABLES)))
      version = doc["version"]
      luts = None
      if version >= 2:
        luts = {k: np.asarray(v) for k, v in
                serialization.msgpack_restore(zf.read(INTEGER)).items()}
        from cca_jax.model.entropy.integer import LUT_SIZE
        if sorted(luts) != ["gelu", "half_tanh"] or any(
            v.dtype != np.int32 or v.shape != (LUT_SIZE,) for v in luts.values()):
          raise CodecError(f"{path}: damaged model bundle (lookup tables)")
      config = doc["model"]
      digest = content_hash(config, params, tables.to_dict(), luts, version)
    except CodecError:
      raise
    except Exception as e:  # a damaged member: msgpack, zip CRC, missing keys
      raise CodecError(f"{path}: damaged model bundle ({e.__class__.__name__})") from None
  if digest != doc.get("sha256"):
    raise CodecError(f"{path}: damaged model bundle (content hash mismatch)")
  try:
    tables.z.validate()
    tables.y.validate()
  except ValueError as e:
    raise CodecError(f"{path}: {e}") from None
  weights_dtype = doc.get("weights", "float32")
  if weights_dtype not in WEIGHTS_DTYPES:
    raise CodecError(f"{path}: unknown weights dtype {weights_dtype!r}")
  params = jax.tree.map(lambda a: np.asarray(a, np.float32), params)
  return ModelBundle(config, params, tables, digest, doc.get("meta", {}), path,
                     weights_dtype, version, luts)


def fine_tuning_params(spec: str, model_cfg, deepen: bool = False) -> dict | None:
  """The weights of the bundle that ``spec`` names (a file or a model name such as
  ``q6``), for fine-tuning a model of config ``model_cfg``; None if ``spec`` names
  no bundle (a training workdir, say). Raises ``CodecError`` for a bundle of another
  model config; with ``deepen``, a bundle with fewer NAF blocks per stage is taken,
  renamed for ``model_cfg`` (``model.growth``; its added blocks are left out)."""
  from cca_jax.codec import registry
  from cca_jax.model import growth
  if not spec or os.path.isdir(spec):
    return None
  if not os.path.isfile(spec) and registry.resolve_name(spec) is None:
    return None
  bundle = load_bundle(spec)
  target = canonical_config(model_cfg)
  if bundle.config == target:
    return bundle.params
  why = growth.deepening_error(bundle.config, target) if deepen else None
  if not deepen or why:
    raise CodecError(f"{spec} holds another model config" + (f" ({why})" if why else ""))
  return growth.deepen_params(bundle.params, bundle.config, target)


def bundle_files(directory: str) -> list[str]:
  """The ``*.ccam`` files directly in ``directory``, sorted."""
  return [os.path.join(directory, n) for n in sorted(os.listdir(directory))
          if n.endswith(SUFFIX) and os.path.isfile(os.path.join(directory, n))]


def find_bundle(spec: str, model_id: bytes | None = None) -> str:
  """Resolve ``spec`` (a bundle file, or a directory of ``*.ccam`` bundles) to a
  bundle path; in a directory, the one whose hash starts with ``model_id`` (or the
  only one when ``model_id`` is None)."""
  if not os.path.isdir(spec):
    if not os.path.exists(spec):
      raise CodecError(f"{spec}: no such model file or directory")
    return spec
  candidates = []
  for p in bundle_files(spec):
    try:
      candidates.append((p, read_manifest(p)))
    except CodecError:
      continue
  if model_id is not None:
    hexid = model_id.hex()
    for p, doc in candidates:
      if str(doc.get("sha256", "")).startswith(hexid):
        return p
    raise CodecError(f"no model with id {hexid} in {spec} ({len(candidates)} bundles)")
  if len(candidates) != 1:
    raise CodecError(f"{spec} holds {len(candidates)} model bundles; pass one file")
  return candidates[0][0]
