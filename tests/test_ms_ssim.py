"""Tests for cca_jax.ops.ms_ssim against the reference pytorch_msssim.

Tolerances: 1e-5 absolute on the per-image values, both in float64 (JAX with
x64 enabled locally, torch in float64; measured max 2.6e-7 for MS-SSIM and
1.4e-6 for SSIM, all of it from pytorch_msssim building its Gaussian window in
float32: ~1e-15 with the identical window) and in float32 (measured max
6.6e-7 against torch float32, 2.0e-6 against torch float64, from the
E[x^2]-E[x]^2 cancellation in float32).
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytorch_msssim = pytest.importorskip("pytorch_msssim")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from cca_jax.ops import ms_ssim as M  # noqa: E402

TOL = 1e-5

_ms_ssim_jit = jax.jit(M.ms_ssim)  # (x, y, data_range) traced
_ssim_jit = jax.jit(M.ssim)
LMBDA = 3.0


def _loss(a, b):
  """The training-loss form: lmbda * (1 - MS-SSIM), batch mean."""
  return LMBDA * jnp.mean(1.0 - M.ms_ssim(a, b))


_loss_grad_jit = jax.jit(jax.grad(_loss))


@pytest.fixture(scope="module", autouse=True)
def _torch_single_thread():
  """Keep torch's OpenMP workers from spinning against XLA's thread pool on
  small shared CPUs (restored after this module)."""
  n = torch.get_num_threads()
  torch.set_num_threads(1)
  yield
  torch.set_num_threads(n)


@pytest.fixture
def x64():
  with jax.enable_x64(True):
    yield


def _nchw(a, dtype):
  return torch.from_numpy(np.ascontiguousarray(np.transpose(a, (0, 3, 1, 2)).astype(dtype)))


def _ref(fn, x, y, dtype, data_range=1.0):
  return fn(_nchw(x, dtype), _nchw(y, dtype), data_range=data_range,
       size_average=False).double().numpy()


def _box_blur(a, k=5):
  """Separable k x k box blur (edge-padded) over H and W of NHWC arrays."""
  p = k // 2
  out = np.pad(a, ((0, 0), (p, p), (0, 0), (0, 0)), mode="edge")
  out = sum(out[:, i:i + a.shape[1]] for i in range(k)) / k
  out = np.pad(out, ((0, 0), (0, 0), (p, p), (0, 0)), mode="edge")
  return sum(out[:, :, i:i + a.shape[2]] for i in range(k)) / k


def _random_pair(shape, rng):
  x = rng.random(shape)
  y = np.clip(x + 0.1 * rng.standard_normal(shape), 0.0, 1.0)
  return x, y


def _structured_pair(shape, rng):
  n, h, w, c = shape
  ii, jj = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
  chans = []
  for k in range(c):
    img = (0.3 + 0.2 * ii / h + 0.1 * jj / w
        + 0.15 * np.sin(2 * np.pi * (ii * (k + 1) / 23.0 + jj / 37.0))
        + 0.2 * (((ii // 16) + (jj // 16)) % 2)
        + 0.1 * ((ii - h / 2) ** 2 + (jj - w / 2) ** 2 < (h / 4) ** 2))
    chans.append(img)
  x = np.stack(chans, axis=-1)[None].repeat(n, axis=0)
  x = np.clip(x + 0.03 * rng.standard_normal(x.shape), 0.0, 1.0)
  y = np.clip(_box_blur(x, 5) + 0.05 * rng.standard_normal(x.shape), 0.0, 1.0)
  return x, y


SHAPES = [(2, 192, 200, 3), (1, 177, 161, 3)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matches_pytorch_msssim(shape, dtype):
  rng = np.random.default_rng(sum(shape))
  pairs = [_random_pair(shape, rng), _structured_pair(shape, rng)]
  with jax.enable_x64(dtype == np.float64):
    for x, y in pairs:
      xj, yj = jnp.asarray(x.astype(dtype)), jnp.asarray(y.astype(dtype))
      assert xj.dtype == dtype
      ms = np.asarray(_ms_ssim_jit(xj, yj, 1.0), np.float64)
      ss = np.asarray(_ssim_jit(xj, yj, 1.0), np.float64)
      assert ms.shape == ss.shape == (shape[0],)
      ms_ref = _ref(pytorch_msssim.ms_ssim, x, y, dtype)
      ss_ref = _ref(pytorch_msssim.ssim, x, y, dtype)
      np.testing.assert_allclose(ms, ms_ref, rtol=0, atol=TOL)
      np.testing.assert_allclose(ss, ss_ref, rtol=0, atol=TOL)
      # Also against the float64 reference (the definition itself).
      np.testing.assert_allclose(
        ms, _ref(pytorch_msssim.ms_ssim, x, y, np.float64), rtol=0, atol=TOL)
    # the structured/blurred pair is far from 1 (not a trivial match)
    assert ms.max() < 0.95 and ss.max() < 0.8


def test_identical_window_agrees_to_roundoff(x64, monkeypatch):
  """With pytorch_msssim's own (float32-built) window the float64 results
  agree to round-off: the remaining deviation above is the window alone."""
  from pytorch_msssim.ssim import _fspecial_gauss_1d

  g = _fspecial_gauss_1d(11, 1.5).flatten().double().numpy()
  monkeypatch.setattr(M, "_gaussian_window_np", lambda size, sigma: g)
  rng = np.random.default_rng(1)
  x, y = _structured_pair((1, 177, 161, 3), rng)
  fresh = jax.jit(lambda a, b: M.ms_ssim(a, b))  # new trace: sees the patch
  np.testing.assert_allclose(np.asarray(fresh(x, y)),
                _ref(pytorch_msssim.ms_ssim, x, y, np.float64),
                rtol=0, atol=1e-12)


def test_data_range_255(x64):
  rng = np.random.default_rng(2)
  x, y = _random_pair((2, 192, 200, 3), rng)
  x, y = 255.0 * x, 255.0 * y
  ms = np.asarray(_ms_ssim_jit(jnp.asarray(x), jnp.asarray(y), 255.0))
  ref = _ref(pytorch_msssim.ms_ssim, x, y, np.float64, data_range=255.0)
  np.testing.assert_allclose(ms, ref, rtol=0, atol=TOL)


def test_anticorrelated_clipped_to_zero_with_finite_grad(x64):
  """cs < 0 at every level: relu makes MS-SSIM 0 (as pytorch_msssim), and the
  gradient stays finite (pytorch_msssim's would be NaN here)."""
  rng = np.random.default_rng(3)
  x, _ = _random_pair((2, 192, 200, 3), rng)
  y = 1.0 - x
  ms = np.asarray(_ms_ssim_jit(jnp.asarray(x), jnp.asarray(y), 1.0))
  np.testing.assert_allclose(ms, _ref(pytorch_msssim.ms_ssim, x, y, np.float64),
                rtol=0, atol=TOL)
  assert np.all(ms == 0.0)
  g = np.asarray(_loss_grad_jit(jnp.asarray(x), jnp.asarray(y)))
  assert np.all(np.isfinite(g))


def test_identical_images_exactly_one():
  rng = np.random.default_rng(4)
  x, _ = _structured_pair((2, 192, 200, 3), rng)
  xj = jnp.asarray(x, jnp.float32)
  ms = np.asarray(_ms_ssim_jit(xj, xj, 1.0))
  ss = np.asarray(_ssim_jit(xj, xj, 1.0))
  assert ms.dtype == np.float32
  assert np.all(ms == 1.0), ms
  assert np.all(ss == 1.0), ss


@pytest.mark.parametrize("shape", [(1, 160, 300, 3), (1, 300, 160, 3), (2, 64, 64, 1)])
def test_too_small_raises(shape):
  x = np.zeros(shape, np.float32)
  with pytest.raises(ValueError, match="larger than 160"):
    M.ms_ssim(x, x)
  # same threshold as the reference (which asserts)
  with pytest.raises(AssertionError):
    pytorch_msssim.ms_ssim(_nchw(x, np.float32), _nchw(x, np.float32), data_range=1.0)


def test_bad_inputs_raise():
  x = np.zeros((1, 200, 200, 3), np.float32)
  with pytest.raises(ValueError, match="same shape"):
    M.ms_ssim(x, x[:, :199])
  with pytest.raises(ValueError, match="4-d"):
    M.ssim(x[0], x[0])
  with pytest.raises(ValueError, match="odd"):
    M.ssim(x, x, win_size=10)


def test_ssim_small_axis_unfiltered_like_reference(x64):
  """An axis shorter than the window is left unfiltered (reference warns)."""
  rng = np.random.default_rng(5)
  x, y = _random_pair((2, 8, 30, 2), rng)
  with pytest.warns(UserWarning, match="Skipping Gaussian Smoothing"):
    ref = _ref(pytorch_msssim.ssim, x, y, np.float64)
  np.testing.assert_allclose(np.asarray(M.ssim(x, y)), ref, rtol=0, atol=TOL)


def test_gradient_finite_and_matches_torch(x64):
  rng = np.random.default_rng(6)
  x, y = _structured_pair((2, 192, 200, 3), rng)
  g = np.asarray(_loss_grad_jit(jnp.asarray(x), jnp.asarray(y)))
  assert np.all(np.isfinite(g)) and np.abs(g).max() > 0

  xt, yt = _nchw(x, np.float64).requires_grad_(True), _nchw(y, np.float64)
  (LMBDA * (1 - pytorch_msssim.ms_ssim(xt, yt, data_range=1.0, size_average=False))
   .mean()).backward()
  g_ref = np.transpose(xt.grad.numpy(), (0, 2, 3, 1))
  np.testing.assert_allclose(g, g_ref, rtol=0, atol=1e-4 * np.abs(g_ref).max())


def test_gaussian_window():
  g = np.asarray(M.gaussian_window(11, 1.5), np.float64)
  assert g.shape == (11,)
  np.testing.assert_allclose(g.sum(), 1.0, rtol=1e-6)
  np.testing.assert_allclose(g, g[::-1])
  assert np.argmax(g) == 5
  from pytorch_msssim.ssim import _fspecial_gauss_1d
  np.testing.assert_allclose(g, _fspecial_gauss_1d(11, 1.5).flatten().numpy(), atol=1e-7)


def test_ms_ssim_db():
  np.testing.assert_allclose(float(M.ms_ssim_db(0.99)), 20.0, rtol=1e-6)
  np.testing.assert_allclose(float(M.ms_ssim_db(0.9)), 10.0, rtol=1e-6)
  np.testing.assert_allclose(np.asarray(M.ms_ssim_db(jnp.array([0.999, 0.0]))),
                [30.0, 0.0], rtol=1e-5, atol=1e-6)
  assert np.isinf(float(M.ms_ssim_db(1.0)))


def test_gradient_float32_finite():
  rng = np.random.default_rng(7)
  x, y = _random_pair((2, 192, 200, 3), rng)
  g = _loss_grad_jit(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32))
  assert g.dtype == jnp.float32
  g = np.asarray(g)
  assert np.all(np.isfinite(g)) and np.abs(g).max() > 0
