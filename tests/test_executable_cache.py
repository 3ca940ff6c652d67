"""The executable cache (cca_jax/utils/executable_cache.py): executables saved by one
"process" are loaded by the next without tracing, and give the same bits."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cca_jax.codec import decode, encode, load_bundle
from cca_jax.codec.programs import integer_programs_for, programs_for
from cca_jax.utils import executable_cache
from cca_jax.utils.executable_cache import CachedFunction
from tests.codec_helpers import synthetic_image
from tests.test_codec import GOLDEN_BUNDLE, GOLDEN_STREAM_V2


@pytest.fixture
def cache_dir(tmp_path):
  programs_for.cache_clear()           # program objects of earlier tests: not these
  integer_programs_for.cache_clear()
  executable_cache.enable(str(tmp_path))
  yield tmp_path
  executable_cache.disable()
  programs_for.cache_clear()
  integer_programs_for.cache_clear()


def _entries(folder):
  return sorted(n for n in os.listdir(folder) if n.endswith(".exe"))


def _cached(f) -> CachedFunction:
  return f if isinstance(f, CachedFunction) else f.__wrapped__


def _no_tracing(monkeypatch):
  """Tracing or lowering any cached program from here on fails the test."""
  def fail(self, *args):
    raise AssertionError(f"{self.name} was traced instead of loaded")
  monkeypatch.setattr(CachedFunction, "lower", fail)
  monkeypatch.setattr(jax.stages.Lowered, "compile", fail)


def test_codec_streams_from_loaded_executables(cache_dir, monkeypatch):
  """The golden stream, encoded with freshly built executables and again with ones
  loaded from disk (new program objects, as in a new process), decodes alike."""
  bundle = load_bundle(GOLDEN_BUNDLE).with_version(2)
  image = synthetic_image(96, 128)
  with open(GOLDEN_STREAM_V2, "rb") as f:
    golden = f.read()
  first = encode(bundle, image, reconstruct=True)
  assert first.data == golden
  # The built executables compute what the jit-compiled functions do, bit for bit.
  y = first.y_hat[None] if first.y_hat.ndim == 3 else first.y_hat
  for f, arg in ((bundle.programs.analysis, np.zeros((1, 128, 128, 3), np.float32)),
                 (bundle.programs.synthesis, (y,))):
    for a, b in zip(jax.tree.leaves(f(bundle.device_params, arg)),
                    jax.tree.leaves(f.__wrapped__(bundle.device_params, arg))):
      np.testing.assert_array_equal(a, b)
  names = _entries(cache_dir)
  programs = bundle.programs
  errors = {f.name: f.last_error for f in map(_cached, (
      programs.analysis, programs.synthesis, programs.hyper_synthesis,
      programs.predict, programs.refine))}
  assert {n.split("-")[0] for n in names} == {
      "analysis", "integer_hyper_synthesis", "integer_predict", "integer_refine",
      "synthesis"}, errors
  programs_for.cache_clear()
  integer_programs_for.cache_clear()
  bundle = load_bundle(GOLDEN_BUNDLE).with_version(2)
  _no_tracing(monkeypatch)
  again = encode(bundle, image, reconstruct=True)
  assert again.data == golden
  np.testing.assert_array_equal(again.image, first.image)
  dec = decode(bundle, golden)
  np.testing.assert_array_equal(dec.y_hat, first.y_hat)
  np.testing.assert_array_equal(dec.image, first.image)
  assert _entries(cache_dir) == names   # nothing rebuilt
  programs = bundle.programs
  for cached in map(_cached, (programs.analysis, programs.synthesis,
                              programs.hyper_synthesis, programs.predict,
                              programs.refine)):
    assert cached._loaded, f"{cached.name}: not run from a loaded executable"


def _toy(x, k):
  return jnp.tanh(x * k) + 1.0


def _program():
  return CachedFunction(jax.jit(_toy, static_argnums=1), "toy", (1,))


def test_keys_and_fallbacks(cache_dir, monkeypatch):
  x = jnp.linspace(-2.0, 2.0, 12, dtype=jnp.float32).reshape(3, 4)
  want = np.asarray(jax.jit(_toy, static_argnums=1)(x, 3))
  np.testing.assert_array_equal(_program()(x, 3), want)
  (entry,) = _entries(cache_dir)
  # Another static argument, shape or dtype is another executable.
  _program()(x, 2)
  _program()(x[:2], 3)
  _program()(x.astype(jnp.bfloat16), 3)
  assert len(_entries(cache_dir)) == 4
  # A damaged entry is a miss: rebuilt, same result.
  path = os.path.join(cache_dir, entry)
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) // 2)
  np.testing.assert_array_equal(_program()(x, 3), want)
  assert os.path.getsize(path) > 0 and executable_cache._read(path) is not None
  # Another CPU (instruction set) or XLA setting is another key.
  monkeypatch.setattr(executable_cache, "_cpu_identity", lambda: "flags : sse2")
  executable_cache.environment.cache_clear()
  _program()(x, 3)
  assert len(_entries(cache_dir)) == 5
  executable_cache.environment.cache_clear()


def test_not_serializable_falls_back_once(cache_dir, monkeypatch):
  """Where executables cannot be serialized, the jit-compiled function runs, and the
  build is not retried on every call."""
  from jax.experimental import serialize_executable
  calls = []

  def refuse(compiled):
    calls.append(1)
    raise ValueError("Compilation does not support serialization")
  monkeypatch.setattr(serialize_executable, "serialize", refuse)
  x = jnp.ones((2, 3), jnp.float32)
  f = _program()
  for _ in range(3):
    np.testing.assert_array_equal(f(x, 2), jax.jit(_toy, static_argnums=1)(x, 2))
  assert calls == [1] and not _entries(cache_dir)


def test_off_and_eviction(tmp_path):
  x = jnp.ones((2, 2), jnp.float32)
  executable_cache.disable()
  np.testing.assert_array_equal(_program()(x, 1), jax.jit(_toy, static_argnums=1)(x, 1))
  assert not list(tmp_path.iterdir())  # off: nothing written
  for i, size in enumerate((300, 200, 100)):
    p = tmp_path / f"e{i}.exe"
    p.write_bytes(b"x" * size)
    os.utime(p, (i, i))
  executable_cache._evict(str(tmp_path), max_bytes=350)
  assert _entries(tmp_path) == ["e1.exe", "e2.exe"]  # the oldest went first
