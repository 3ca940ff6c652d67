"""Compiled executables kept on disk, so that a new process skips tracing and lowering.

JAX's persistent compilation cache (``compilation_cache.py``) saves XLA's compilation,
but every new process still traces each jit-compiled function and lowers it to
StableHLO to compute the cache key: for the codec's 13 programs that is about 2 s of
the ~3 s a ``cca-jax compress`` of a Kodak image took with the cache warm, against
0.25 s of coding (docs/benchmarks.md, "Start-up of the codec commands"). Here a
program's compiled executable is serialized (``jax.experimental.serialize_executable``)
under a key of everything that decides it, and a later process with the same key
loads it and calls it directly:

* the call signature: the program's name, its static arguments, the pytree structure,
  shapes, dtypes and weak types of its array arguments, whether 64-bit types are on,
  and a context the caller gives (``codec.programs``: the model and the convolution
  formulation);
* the machine and software: JAX and jaxlib versions, the backend, its platform version
  and device kind, ``XLA_FLAGS``, and the CPU's model and feature flags (XLA:CPU
  compiles for the host's instruction set: an executable of an AVX-512 machine must
  never run on an AVX2 one);
* the code: a hash of every ``.py`` file of the ``cca_jax`` package, so an edit that
  changes what a program computes can never load the old executable.

A loaded executable is the same machine code a fresh compilation of the same program
produces, so results do not change (``tests/test_executable_cache.py`` compares the
streams bit for bit). Files are written atomically with a SHA-256 of their contents,
checked on load: an unreadable, truncated or foreign file is a miss and is rebuilt.
Each new entry is built by a fresh compilation, bypassing JAX's persistent and
in-memory caches (an executable that JAX loaded from its own disk cache does not
serialize completely in this JAX version), then reloaded and run once in the process
before it is written; if any of that fails, the jit-compiled function runs instead,
for that signature from then on, and nothing is kept.
The directory keeps the most recently used entries up to ``MAX_BYTES``.

Off unless ``enable`` is called (the codec commands do, with JAX's cache:
``$CCA_JAX_CACHE_DIR/executables``, by default ``~/.cache/cca_jax/jax/executables``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import logging
import os
import pickle
import platform
import tempfile

import jax
import numpy as np

MAGIC = b"CCAJAX-EXECUTABLE-1\n"
MAX_BYTES = 512 << 20
_FRESH = {"xla_embed_ir_in_executable": False}

_directory: str | None = None


def enable(path: str) -> str | None:
  """Keep executables in ``path`` (created if needed); returns it, or ``None`` when it
  cannot be created (then nothing is cached)."""
  global _directory
  try:
    os.makedirs(path, exist_ok=True)
  except OSError:
    return None
  _directory = path
  return path


def disable() -> None:
  global _directory
  _directory = None


def _cpu_identity() -> str:
  """The CPU's model and instruction-set flags (Linux), else what ``platform`` says."""
  try:
    with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
      lines = f.read().split("\n\n")[0].splitlines()
    keep = ("vendor_id", "model name", "flags", "Features", "CPU implementer",
            "CPU part")
    return "\n".join(line for line in lines if line.split(":")[0].strip() in keep)
  except OSError:
    return f"{platform.machine()} {platform.processor()}"


@functools.lru_cache(maxsize=1)
def _source_hash() -> str:
  package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  h = hashlib.sha256()
  for root, dirs, files in os.walk(package):
    dirs.sort()
    for name in sorted(files):
      if name.endswith(".py"):
        path = os.path.join(root, name)
        h.update(os.path.relpath(path, package).encode() + b"\0")
        with open(path, "rb") as f:
          h.update(f.read())
  return h.hexdigest()


@functools.lru_cache(maxsize=1)
def environment() -> str:
  """Everything outside the call that decides the compiled code (see the module
  docstring), as one string."""
  device = jax.devices()[0]
  try:
    jaxlib = importlib.metadata.version("jaxlib")
  except importlib.metadata.PackageNotFoundError:
    jaxlib = "?"
  return "\n".join([
      f"jax {jax.__version__} jaxlib {jaxlib}",
      f"backend {device.platform} {device.client.platform_version}",
      f"devices {device.device_kind} x{jax.device_count()}",
      f"XLA_FLAGS {os.environ.get('XLA_FLAGS', '')}",
      _cpu_identity(),
      f"source {_source_hash()}",
  ])


def _leaf_signatures(leaves) -> tuple:
  """Shape, dtype and weak type of each argument leaf. It runs on every call (~500
  parameter arrays per program), so arrays take the inlined path (0.1 ms)."""
  try:
    return tuple([(x.shape, x.dtype, getattr(x, "weak_type", False)) for x in leaves])
  except AttributeError:  # Python scalars among the leaves
    return tuple((np.shape(x), np.result_type(x), False) if not hasattr(x, "dtype")
                 else (x.shape, x.dtype, getattr(x, "weak_type", False)) for x in leaves)


@contextlib.contextmanager
def _without_jax_cache():
  """JAX's persistent cache off for a compilation in this block."""
  from jax.experimental.compilation_cache import compilation_cache as jcc
  before = jax.config.jax_enable_compilation_cache
  jax.config.update("jax_enable_compilation_cache", False)
  jcc.reset_cache()
  try:
    yield
  finally:
    jax.config.update("jax_enable_compilation_cache", before)
    jcc.reset_cache()


class CachedFunction:
  """A ``jax.jit`` function whose executables persist in the cache directory.

  Called like the jit-compiled function (static arguments at ``static_argnums``,
  positional only). With the cache off it *is* that function; ``lower`` and
  ``__wrapped__`` give the jit-compiled function's own.
  """

  def __init__(self, jitted, name: str, static_argnums: tuple[int, ...] = (),
               context=""):
    self.__wrapped__ = jitted
    self.name = name
    # What else the traced function depends on (its model, a formulation choice): a
    # string, or a function returning one when an executable is looked up on disk.
    self.context = context
    self.static_argnums = tuple(static_argnums)
    self._loaded: dict = {}
    self.last_error: str | None = None  # why the last build was not kept (diagnostics)

  def lower(self, *args):
    return self.__wrapped__.lower(*args)

  def __call__(self, *args):
    if _directory is None:
      return self.__wrapped__(*args)
    static = tuple(args[i] for i in self.static_argnums)
    dynamic = [a for i, a in enumerate(args) if i not in self.static_argnums]
    leaves, tree = jax.tree_util.tree_flatten(dynamic)
    signature = (self.name, static, tree, _leaf_signatures(leaves),
                 bool(jax.config.jax_enable_x64))
    if signature in self._loaded:
      executable = self._loaded[signature]
      return self.__wrapped__(*args) if executable is None else executable(*dynamic)
    executable, out = self._load_or_build(signature, args, dynamic)
    # None: could not be cached (the jit-compiled function from now on, not retried).
    self._loaded[signature] = executable
    if executable is None:
      return self.__wrapped__(*args)
    return executable(*dynamic) if out is None else out

  def _path(self, signature) -> str:
    context = self.context() if callable(self.context) else self.context
    key = hashlib.sha256(repr((signature, context, environment())).encode()).hexdigest()
    return os.path.join(_directory, f"{self.name}-{key[:40]}.exe")

  def _load_or_build(self, signature, args, dynamic):
    """``(executable, None)`` loaded from disk, ``(executable, output of this call)``
    newly built and kept, or ``(None, None)`` when it cannot be cached."""
    from jax.experimental import serialize_executable
    path = self._path(signature)
    blob = _read(path)
    if blob is not None:
      try:
        executable = serialize_executable.deserialize_and_load(*pickle.loads(blob))
        with contextlib.suppress(OSError):
          os.utime(path)                 # recently used: kept longest
        return executable, None
      except Exception:  # noqa: BLE001 -- a stale or foreign entry: rebuild it
        pass
    try:
      lowered = self.lower(*args)
      with _without_jax_cache():
        # An option at its default value: the same code, but another key for JAX's
        # in-memory cache, which may hold this program loaded from the disk cache.
        compiled = lowered.compile(compiler_options=_FRESH)
      blob = pickle.dumps(serialize_executable.serialize(compiled))
      executable = serialize_executable.deserialize_and_load(*pickle.loads(blob))
      out = jax.block_until_ready(executable(*dynamic))  # it runs before it is kept
    except Exception as e:  # noqa: BLE001 -- not serializable here: no cache, same results
      self.last_error = f"{type(e).__name__}: {e}"
      logging.getLogger(__name__).debug("%s: not cached: %s", self.name, self.last_error)
      return None, None
    _write(path, blob)
    return executable, out


def _read(path: str) -> bytes | None:
  try:
    with open(path, "rb") as f:
      data = f.read()
  except OSError:
    return None
  head = len(MAGIC) + 32
  if len(data) < head or not data.startswith(MAGIC):
    return None
  blob = data[head:]
  if hashlib.sha256(blob).digest() != data[len(MAGIC):head]:
    return None
  return blob


def _write(path: str, blob: bytes) -> None:
  folder = os.path.dirname(path)
  try:
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
  except OSError:
    return
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(MAGIC + hashlib.sha256(blob).digest() + blob)
    os.replace(tmp, path)
  except OSError:
    with contextlib.suppress(OSError):
      os.remove(tmp)
    return
  _evict(folder)


def _evict(folder: str, max_bytes: int = MAX_BYTES) -> None:
  """Remove the least recently used entries beyond ``max_bytes``."""
  entries = []
  with contextlib.suppress(OSError):
    for entry in os.scandir(folder):
      if entry.name.endswith(".exe"):
        st = entry.stat()
        entries.append((st.st_mtime, st.st_size, entry.path))
  total = sum(size for _, size, _ in entries)
  for _, size, path in sorted(entries):
    if total <= max_bytes:
      break
    with contextlib.suppress(OSError):
      os.remove(path)
      total -= size
