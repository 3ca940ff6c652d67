"""Integer entropy parameters: the networks that turn ``z_hat`` and the decoded slices
into the coder's inputs (table index, mean, refined slice) in exact fixed-point
arithmetic, so that a decoder rebuilds them bit for bit on any machine, backend,
thread count or XLA version (Balle, Johnston, Minnen, "Integer networks for data
compression with latent-variable models", ICLR 2019). docs/format.md states the
rules as part of the bundle format (version 2).

The float networks (``transforms.HyperSynthesisTransform``, ``context.ChannelContext``)
give different low bits on different machines (summation order, FMA contraction,
library kernels for ``erf``/``tanh``, GPU convolution algorithms), and one differing
bit of a scale can move an element to another coding table: the stream is then
undecodable. Here every operation's result is defined exactly:

* Values are integers held in float64 (*integer-valued float64*): an activation ``a``
  stands for ``a * 2**-FRAC_BITS`` and is clipped to ``|a| <= ACT_LIMIT`` (real values
  within +-256). Sums and products of integers below ``2**53`` are exact in float64,
  whatever the order, the thread count or whether a multiply-add is fused, so XLA's
  fast float kernels (matrix products, reductions) compute exact integer results.
* Convolutions are sums of products (matrix products per tap, ``dot_general``; XLA's
  convolution only on the CPU, whose XLA backend computes float64 convolutions as
  plain sums of products, never the transform-based algorithms GPU libraries may
  pick), with integer weights
  ``round(w * 2**e)`` and a power-of-two exponent ``e`` per output channel chosen at
  conversion so that ``ACT_LIMIT * sum |w_int| + |b_int| <= 2**52``: no sum can leave
  the exact range, for any input. Requantisation multiplies by ``2**-e`` (exact) and
  rounds half to even.
* GELU and ``0.5 * tanh`` are tables (stored in the bundle) with exact linear
  interpolation; products of two activations (SimpleGate, the channel attention, the
  NAF blocks' ``beta``/``gamma``) are exact products rounded back by a power of two.
* The LayerNorm's reciprocal square root and the channel attention's mean use exact
  integer square root and floor division: a float64 estimate (``sqrt``, ``/``), then
  corrected with exact products, so how a backend rounds ``sqrt`` or ``/`` cannot
  change the result. A power-of-two normalisation (exponent bits of the largest
  deviation) keeps the variance sum exact.

The conversion (``convert``) uses only exact operations too (power-of-two scaling,
``rint``, int64 sums), so the integer network is a pure function of the bundle's
weights and tables. The synthesis transform stays float: the image may differ by
float noise across machines, never the symbols.

Interface: ``hyper_synthesis``, ``predict`` and ``refine`` take and return float32
arrays as the float path does (``codec.programs``); every value crossing it is a dyadic
number with at most 24 significant bits (exact in float32) or is clipped the same way
on both sides, so the conversion at the boundary is exact too.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from cca_jax.ops.convolution import depth_to_space, subpixel_kernel

FRAC_BITS = 16                  # activation a stands for a * 2**-16
ACT_LIMIT = float(2**24 - 1)    # |a| <= 2**24 - 1: real values within +-256
ACC_BOUND = float(2**52)        # every accumulated sum stays below this
SCALAR_BITS = 28                # per-channel factors (beta, gamma): |int| <= 2**28
LUT_STEP_BITS = 8               # tables sample their function every 2**-8
LUT_RANGE = 8                   # over [-8, 8]
LUT_SIZE = 2 * LUT_RANGE * 2**LUT_STEP_BITS + 1
LN_EPS = 1e-6                   # NAFNet's LayerNorm2d
LN_BITS = 21                    # LayerNorm deviations normalised to |d| <= 2**21
LN_GAIN_LIMIT = float(2**30)
# The hyper-synthesis (transforms.HyperSynthesisTransform): name, kernel, stride.
HYPER_LAYERS = (("layers_0", 5, 2), ("layers_2", 5, 2), ("layers_4", 3, 1))

F64 = jnp.float64


# -- exact operations on integer-valued float64 --------------------------------------

def pow2(e):
  """``2.0**e`` for integer-valued ``e`` (float64 array), built from the exponent bits:
  exact, whatever the backend's ``exp2``. ``-1022 <= e <= 1023``."""
  e = jnp.clip(jnp.asarray(e, F64), -1022, 1023).astype(jnp.int64)
  return lax.bitcast_convert_type((e + 1023) << 52, F64)


def ilog2(m):
  """``floor(log2(m))`` of positive normal float64 values, from the exponent bits."""
  bits = lax.bitcast_convert_type(jnp.asarray(m, F64), jnp.int64)
  return (((bits >> 52) & 0x7FF) - 1023).astype(F64)


def floor_div(a, b):
  """``floor(a / b)`` exactly for integer-valued ``|a| < 2**52``, ``0 < b < 2**52``:
  a float64 estimate corrected twice by the exact remainder."""
  with jax.named_scope("exact_floor_div"):
    q = jnp.floor(a / b)
    for _ in range(2):
      r = a - q * b
      q = q + (r >= b).astype(F64) - (r < 0).astype(F64)
  return q


def round_div(a, b):
  """``a / b`` rounded half up, exactly (``floor((2a + b) / 2b)``)."""
  return floor_div(2 * a + b, 2 * b)


def isqrt(v):
  """``floor(sqrt(v))`` exactly for integer-valued ``0 <= v < 1.5 * 2**52``: a float64
  estimate corrected twice by exact squares."""
  with jax.named_scope("exact_isqrt"):
    s = jnp.floor(jnp.sqrt(v))
    for _ in range(2):
      s = s - (s * s > v).astype(F64)
      s = s + ((s + 1) * (s + 1) <= v).astype(F64)
  return s


def clip(a):
  return jnp.clip(a, -ACT_LIMIT, ACT_LIMIT)


def to_int(x):
  """Real float32 values -> activations (``round(x * 2**16)``, clipped)."""
  return clip(jnp.round(jnp.asarray(x, F64) * 2.0**FRAC_BITS))


def to_real(a):
  """Activations (or any integer-valued float64) -> float32 real values."""
  return (a * 2.0**-FRAC_BITS).astype(jnp.float32)


def mul(a, b):
  """Product of two activations (``|a|, |b| <= 2**24``: exact), rounded back."""
  return clip(jnp.round(a * b * 2.0**-FRAC_BITS))


# -- layers -----------------------------------------------------------------------

def conv(x, p):
  """Stride-1 convolution with "same" padding of an odd ``(kh, kw)`` integer kernel,
  bias, requantisation by ``p["down"]`` (``2**-e`` per output channel).

  The sum of products is a matrix product per tap (``dot_general``) on every backend
  but the CPU, where XLA's float64 convolution computes the same sums directly
  (XLA:CPU has no transform-based convolution algorithm; 1.5x faster here than the
  per-tap products, docs/benchmarks.md). Both are exact, so they agree bit for bit.
  """
  w = p["w"]
  kh, kw = w.shape[:2]
  dims = (((3,), (0,)), ((), ()))
  if kh == kw == 1:
    acc = p["b"] + lax.dot_general(x, w[0, 0], dims, precision=lax.Precision.HIGHEST)
  elif jax.default_backend() == "cpu":
    acc = p["b"] + lax.conv_general_dilated(
        x, w, (1, 1), [(kh // 2, kh // 2), (kw // 2, kw // 2)],
        dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=lax.Precision.HIGHEST)
  else:
    h, wd = x.shape[1], x.shape[2]
    xp = jnp.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    acc = p["b"]
    for i in range(kh):
      for j in range(kw):
        acc = acc + lax.dot_general(xp[:, i:i + h, j:j + wd, :], w[i, j], dims,
                                    precision=lax.Precision.HIGHEST)
  return clip(jnp.round(acc * p["down"]))


def depthwise(x, p):
  """Depthwise 3x3 convolution (kernel ``(3, 3, 1, C)``), exact multiply-adds."""
  w = p["w"]
  kh, kw = w.shape[:2]
  h, wd = x.shape[1], x.shape[2]
  xp = jnp.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
  acc = p["b"]
  for i in range(kh):
    for j in range(kw):
      acc = acc + xp[:, i:i + h, j:j + wd, :] * w[i, j, 0]
  return clip(jnp.round(acc * p["down"]))


def scalar(x, p):
  """Per-channel factor (``beta``, ``gamma``): ``round(x * f_int * 2**-e)``."""
  return clip(jnp.round(x * p["f"] * p["down"]))


def table(x, t, above):
  """Interpolate ``t`` (the function at ``-8 + j * 2**-8``, as activations) at ``x``.
  Outside ``[-8, 8)``: ``t[0]`` below; above, ``x`` itself (``above="x"``, GELU) or
  the last entry (``"last"``, tanh)."""
  shift = FRAC_BITS - LUT_STEP_BITS
  lo = -LUT_RANGE * 2**LUT_STEP_BITS
  n = t.shape[0]
  idx = jnp.clip(jnp.floor(x * 2.0**-shift) - lo, 0, n - 2)
  frac = x - (idx + lo) * 2.0**shift
  j = idx.astype(jnp.int32)
  t0, t1 = t[j], t[j + 1]
  y = t0 + jnp.round((t1 - t0) * frac * 2.0**-shift)
  top = x if above == "x" else t[n - 1]
  y = jnp.where(x >= LUT_RANGE * 2.0**FRAC_BITS, top, y)
  return jnp.where(x < -LUT_RANGE * 2.0**FRAC_BITS, t[0], y)


def layer_norm(x, p):
  """NAFNet's LayerNorm2d over channels, exactly: deviations ``d = C x - sum x``,
  normalised by a power of two to ``|d'| <= 2**21`` (so ``sum d'^2 < 2**52``), then
  ``d' * g / isqrt(sum d'^2 + eps')`` with ``g = round(sqrt(C) * weight * 2**16)``."""
  c = x.shape[-1]
  d = c * x - jnp.sum(x, axis=-1, keepdims=True)
  m = jnp.maximum(jnp.max(jnp.abs(d), axis=-1, keepdims=True), 1.0)
  k = ilog2(m) - (LN_BITS - 1)
  dn = jnp.round(d * pow2(-k))
  v = jnp.sum(dn * dn, axis=-1, keepdims=True)
  eps = jnp.minimum(jnp.round(p["eps"] * pow2(-2 * k)), 2.0**51)
  s = jnp.maximum(isqrt(v + eps), 1.0)
  return clip(round_div(dn * p["g"], s) + p["b"])


def gelu(x, luts):
  return table(x, luts["gelu"], "x")


# -- the networks -------------------------------------------------------------------

def _transposed(x, p, stride):
  """A transposed convolution converted to its sub-pixel phases (``convert``)."""
  y = conv(x, p)
  return depth_to_space(y, stride, stride, y.shape[-1] // stride**2)


def _hyper(p, z, luts):
  x = z
  for j, (name, _, stride) in enumerate(HYPER_LAYERS):
    x = _transposed(x, p[name], stride)
    if j < len(HYPER_LAYERS) - 1:
      x = gelu(x, luts)
  return x


def _naf_block(p, x):
  t = layer_norm(x, p["norm1"])
  t = conv(t, p["dwconv_0"])
  t = depthwise(t, p["dwconv_1"])
  a, b = jnp.split(t, 2, axis=-1)
  t = mul(a, b)
  pooled = round_div(jnp.sum(t, axis=(1, 2), keepdims=True),
                     float(t.shape[1] * t.shape[2]))
  t = mul(t, conv(pooled, p["sca_1"]))
  t = conv(t, p["conv1"])
  x = clip(x + scalar(t, p["beta"]))
  t = layer_norm(x, p["norm2"])
  t = conv(t, p["FFN_0"])
  a, b = jnp.split(t, 2, axis=-1)
  t = conv(mul(a, b), p["FFN_2"])
  return clip(x + scalar(t, p["gamma"]))


def _naf_stack(p, x):
  h = conv(x, p["in_conv"])
  t = h
  for j in range(sum(k.startswith("blocks_") for k in p)):
    t = _naf_block(p[f"blocks_{j}"], t)
  return conv(clip(h + t), p["out_conv"])


def _head(em, prefix, x, luts):
  """``conv3x3 -> GELU -> conv3x3 -> GELU -> conv3x3`` (``context._head``)."""
  names = sorted((k for k in em if k.startswith(prefix + "_")
                  and k[len(prefix) + 1:].isdigit()), key=lambda k: int(k.split("_")[-1]))
  for j, name in enumerate(names):
    if j:
      x = gelu(x, luts)
    x = conv(x, em[name])
  return x


def hyper_synthesis(ip, z_hat):
  """``z_hat`` (float32) -> ``(latent_means, latent_scales)`` (float32)."""
  z = to_int(z_hat)
  return tuple(to_real(_hyper(ip[name], z, ip["luts"]))
               for name in ("h_mean_s", "h_scale_s"))


def predict(ip, i, latent_means, latent_scales, context):
  """Slice ``i``'s ``(mu, scale, mean_support)``: ``mu`` and ``scale`` real float32,
  ``mean_support`` activations (float64), for ``refine``."""
  em, luts = ip["entropy_model"], ip["luts"]
  ctx = [to_int(c) for c in context]
  support = _naf_stack(em[f"mean_NAF_transforms_{i}"],
                       jnp.concatenate([to_int(latent_means)] + ctx, -1))
  mu = _head(em, f"mean_cc_transforms_{i}", support, luts)
  scale_support = _naf_stack(em[f"scale_NAF_transforms_{i}"],
                             jnp.concatenate([to_int(latent_scales)] + ctx, -1))
  scale = _head(em, f"scale_cc_transforms_{i}", scale_support, luts)
  return to_real(mu), to_real(scale), support


def refine(ip, i, mean_support, q, mu):
  """Latent residual prediction: ``y_hat_i = q + mu + 0.5 tanh(lrp_i(support, q + mu))``
  (float32 in and out; ``q`` integer symbols, ``mu`` from ``predict``)."""
  yq = (jnp.asarray(q, F64) * 2.0**FRAC_BITS
        + jnp.round(jnp.asarray(mu, F64) * 2.0**FRAC_BITS))
  lrp = _head(ip["entropy_model"], f"lrp_transforms_{i}",
              jnp.concatenate([mean_support, clip(yq)], -1), ip["luts"])
  return to_real(yq + table(lrp, ip["luts"]["half_tanh"], "last"))


# -- conversion (host, NumPy, exact operations only) ---------------------------------

def lookup_tables() -> dict:
  """GELU and ``0.5 tanh`` sampled every ``2**-8`` on ``[-8, 8]``, as activations
  (int32). Computed once in float64 at export and stored in the bundle, so no
  machine's ``erf`` or ``tanh`` enters the codec."""
  x = np.arange(-LUT_RANGE * 2**LUT_STEP_BITS, LUT_RANGE * 2**LUT_STEP_BITS + 1,
                dtype=np.float64) * 2.0**-LUT_STEP_BITS
  from scipy import special  # here, not at import: the codec commands never need it
  gelu_ = 0.5 * x * (1.0 + special.erf(x / math.sqrt(2.0)))
  return {"gelu": np.rint(gelu_ * 2.0**FRAC_BITS).astype(np.int32),
          "half_tanh": np.rint(0.5 * np.tanh(x) * 2.0**FRAC_BITS).astype(np.int32)}


def _exponent(amax: np.ndarray, bits: int) -> np.ndarray:
  """Largest ``e`` with ``amax * 2**e < 2**bits`` (``frexp``: exact)."""
  _, ex = np.frexp(amax)
  return np.where(amax > 0, bits - ex, 0).astype(np.int64)


def convert_conv(kernel, bias) -> dict:
  """Integer kernel ``(kh, kw, cin, cout)`` and bias: per output channel the largest
  exponent ``e`` with ``max|w| * 2**e < 2**15`` and
  ``ACT_LIMIT * sum|round(w 2**e)| + |round(b 2**(16 + e))| <= 2**52``."""
  w = np.asarray(kernel, np.float64)
  b = np.asarray(bias, np.float64)
  flat = np.abs(w.reshape(-1, w.shape[-1]))
  e = _exponent(flat.max(axis=0), 15)
  while True:
    wq = np.rint(w * np.ldexp(1.0, e))
    bq = np.rint(b * np.ldexp(1.0, e + FRAC_BITS))
    bound = ACT_LIMIT * np.abs(wq.reshape(-1, w.shape[-1])).sum(axis=0) + np.abs(bq)
    over = bound > ACC_BOUND
    if not over.any():
      break
    e = e - over
  return {"w": wq, "b": bq, "down": np.ldexp(1.0, -e)}


def _convert_transposed(kernel, bias, k, stride) -> dict:
  """A ``ConvTranspose2d`` (``padding=k // 2``, ``output_padding=stride - 1``) as a
  "same" stride-1 convolution to its ``stride**2`` phases."""
  w, d0 = subpixel_kernel(np.asarray(kernel, np.float64), (stride, stride),
                          (k // 2, k // 2))
  if w.shape[0] % 2 == 0 or d0 != (-(w.shape[0] // 2),) * 2:
    raise ValueError(f"unsupported transposed convolution {k}x{k} stride {stride}")
  return convert_conv(w, np.tile(np.asarray(bias, np.float64), stride * stride))


def convert_layer_norm(weight, bias) -> dict:
  c = int(np.shape(weight)[0])
  if c > 1024:
    raise ValueError(f"LayerNorm over {c} channels: at most 1024 supported")
  g = np.rint(np.sqrt(np.float64(c)) * np.asarray(weight, np.float64) * 2.0**FRAC_BITS)
  if np.abs(g).max() > LN_GAIN_LIMIT:
    raise ValueError("LayerNorm weight too large for the integer path")
  return {"g": g, "b": np.rint(np.asarray(bias, np.float64) * 2.0**FRAC_BITS),
          "eps": np.float64(LN_EPS * c**3 * 2.0**(2 * FRAC_BITS))}


def convert_scalar(f) -> dict:
  f = np.asarray(f, np.float64)
  e = _exponent(np.abs(f).max(keepdims=True), SCALAR_BITS)
  return {"f": np.rint(f * np.ldexp(1.0, e)), "down": np.ldexp(1.0, -e)}


def _convert_naf(p) -> dict:
  out = {}
  for name, q in p.items():
    if name.startswith("blocks_"):
      out[name] = {
          n: (convert_layer_norm(v["weight"], v["bias"]) if n.startswith("norm")
              else convert_scalar(v) if n in ("beta", "gamma")
              else convert_conv(v["kernel"], v["bias"]))
          for n, v in q.items()}
    else:
      out[name] = convert_conv(q["kernel"], q["bias"])
  return out


def convert(params: dict, luts: dict) -> dict:
  """The integer networks of a model's float parameters (NumPy float64 trees):
  ``h_mean_s``, ``h_scale_s``, ``entropy_model`` and the lookup tables."""
  out = {}
  for name in ("h_mean_s", "h_scale_s"):
    out[name] = {n: _convert_transposed(params[name][n]["kernel"],
                                        params[name][n]["bias"], k, s)
                 for n, k, s in HYPER_LAYERS}
  em = {}
  for name, p in params["entropy_model"].items():
    em[name] = (_convert_naf(p) if "NAF" in name
                else convert_conv(p["kernel"], p["bias"]))
  out["entropy_model"] = em
  out["luts"] = {k: np.asarray(v, np.float64) for k, v in luts.items()}
  return out
