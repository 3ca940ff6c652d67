"""Classical image codecs through maintained libraries, measured like the learned one.

Each codec encodes the 8-bit RGB image in memory at one quality setting; the *real
file* (every byte the library writes: container, headers, metadata boxes) gives the
rate, ``8 * len(file) / (H * W)``; the library's own decoder gives the 8-bit image the
metrics are computed on (``metrics.quality``). Encode and decode are timed separately
(wall clock, one call each, the library's default threading).

=========  ===============================================================  ==========
name       library and settings                                             qualities
=========  ===============================================================  ==========
jpeg420    libjpeg-turbo (imagecodecs), YCbCr 4:2:0, optimised Huffman      5..85
jpeg444    libjpeg-turbo (imagecodecs), YCbCr 4:4:4, optimised Huffman      5..85
webp       libwebp (imagecodecs), lossy, ``method=6`` (slowest, best)       5..85
avif444    libavif + its default AV1 encoder (imagecodecs), YUV 4:4:4,      10..75
           ``speed=6`` (libavif's default speed)
avif420    the same, YUV 4:2:0
jxl        libjxl (imagecodecs), VarDCT, quality -> distance, effort 7       5..85
heic420    libheif + x265 (pillow-heif), HEVC intra (the closest to BPG),   5..50
           4:2:0 (x265's default), libheif's default preset
heic444    the same, 4:4:4
=========  ===============================================================  ==========

``jpeg`` means jpeg420, ``avif`` avif444, ``heic`` / ``heif`` / ``hevc`` heic420.
A codec whose library is missing (``available()`` false) is reported, not silently
skipped. Qualities are each library's own 0-100 scale (higher is better); the default
sweeps (7 or 8 settings) span roughly 0.1 to 2.5 bpp on Kodak, beyond the paper's
0.17-0.74 bpp; ``--qualities`` sets others.
"""

from __future__ import annotations

import dataclasses
import io
import time
from collections.abc import Callable, Sequence

import numpy as np

from cca_jax.eval import metrics
from cca_jax.eval.curves import summarize


@dataclasses.dataclass(frozen=True)
class ClassicalCodec:
  """One codec configuration: ``encode(image_uint8, quality) -> bytes`` and
  ``decode(bytes) -> image_uint8``, its default quality sweep and provenance."""
  name: str
  label: str
  encode: Callable[[np.ndarray, int], bytes]
  decode: Callable[[bytes], np.ndarray]
  qualities: tuple[int, ...]
  settings: dict
  version: Callable[[], str]
  available: Callable[[], bool]


def _imagecodecs():
  import imagecodecs
  return imagecodecs


def _ic_available(attr: str) -> Callable[[], bool]:
  def check() -> bool:
    try:
      return bool(getattr(_imagecodecs(), attr).available)
    except (ImportError, AttributeError):
      return False
  return check


def _ic_version(fn: str) -> Callable[[], str]:
  def version() -> str:
    ic = _imagecodecs()
    return f"imagecodecs {ic.__version__}, {getattr(ic, fn)()}"
  return version


def _jpeg(subsampling: str) -> tuple[Callable, Callable]:
  def enc(x, q):
    return bytes(_imagecodecs().jpeg8_encode(x, level=int(q), subsampling=subsampling,
                                             optimize=True))
  return enc, lambda d: _imagecodecs().jpeg8_decode(d)


def _webp_encode(x, q):
  return bytes(_imagecodecs().webp_encode(x, level=int(q), lossless=False, method=6))


def _avif(pixelformat: str) -> tuple[Callable, Callable]:
  def enc(x, q):
    return bytes(_imagecodecs().avif_encode(x, level=int(q), speed=6,
                                            pixelformat=pixelformat))
  return enc, lambda d: _imagecodecs().avif_decode(d)


def _jxl_encode(x, q):
  return bytes(_imagecodecs().jpegxl_encode(x, level=int(q), effort=7, lossless=False))


def _heif_available() -> bool:
  try:
    import pillow_heif
  except ImportError:
    return False
  return "x265" in str(pillow_heif.libheif_info().get("encoders", {}))


def _heif_version() -> str:
  import pillow_heif
  info = pillow_heif.libheif_info()
  return (f"pillow-heif {pillow_heif.__version__}, libheif {info.get('libheif')}, "
          f"{info.get('HEIF')}")


def _heif(chroma: int) -> tuple[Callable, Callable]:
  def enc(x, q):
    import pillow_heif
    x = np.ascontiguousarray(x)
    heif = pillow_heif.from_bytes("RGB", (x.shape[1], x.shape[0]), x.tobytes())
    buf = io.BytesIO()
    heif.save(buf, quality=int(q), chroma=chroma)
    return buf.getvalue()

  def dec(data):
    import pillow_heif
    heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
    return np.asarray(heif)[..., :3]
  return enc, dec


def _registry() -> dict[str, ClassicalCodec]:
  q_wide = (5, 10, 20, 35, 50, 70, 85)
  codecs = []
  for sub in ("420", "444"):
    enc, dec = _jpeg(sub)
    codecs.append(ClassicalCodec(
        f"jpeg{sub}", f"JPEG {sub[0]}:{sub[1]}:{sub[2]}", enc, dec, q_wide,
        {"subsampling": sub, "optimize": True}, _ic_version("jpeg8_version"),
        _ic_available("JPEG8")))
  codecs.append(ClassicalCodec(
      "webp", "WebP", _webp_encode, lambda d: _imagecodecs().webp_decode(d), q_wide,
      {"lossless": False, "method": 6}, _ic_version("webp_version"),
      _ic_available("WEBP")))
  for fmt in ("444", "420"):
    enc, dec = _avif(f"yuv{fmt}")
    codecs.append(ClassicalCodec(
        f"avif{fmt}", f"AVIF {fmt[0]}:{fmt[1]}:{fmt[2]}", enc, dec,
        (10, 20, 30, 40, 50, 60, 75), {"pixelformat": f"yuv{fmt}", "speed": 6},
        _ic_version("avif_version"), _ic_available("AVIF")))
  codecs.append(ClassicalCodec(
      "jxl", "JPEG XL", _jxl_encode, lambda d: _imagecodecs().jpegxl_decode(d), q_wide,
      {"effort": 7, "lossless": False}, _ic_version("jpegxl_version"),
      _ic_available("JPEGXL")))
  for chroma in (420, 444):
    enc, dec = _heif(chroma)
    c = str(chroma)
    codecs.append(ClassicalCodec(
        f"heic{c}", f"HEIF/HEVC {c[0]}:{c[1]}:{c[2]}", enc, dec,
        (5, 10, 15, 20, 25, 30, 40, 50), {"chroma": chroma, "encoder": "x265"},
        _heif_version, _heif_available))
  return {c.name: c for c in codecs}


CODECS = _registry()
ALIASES = {"jpeg": "jpeg420", "avif": "avif444", "heic": "heic420", "heif": "heic420",
           "hevc": "heic420", "bpg": "heic420"}
DEFAULT_CODECS = ("jpeg420", "jpeg444", "webp", "avif444", "jxl", "heic420")


def resolve(names: str | Sequence[str]) -> list[ClassicalCodec]:
  """Codecs from a comma-separated list (or sequence) of names or aliases; ``all``
  means every codec; raises ``ValueError`` for an unknown or unavailable one."""
  if isinstance(names, str):
    names = [n.strip() for n in names.split(",") if n.strip()]
  out: list[ClassicalCodec] = []
  for n in names:
    key = n.lower()
    group = list(CODECS) if key == "all" else [ALIASES.get(key, key)]
    for k in group:
      if k not in CODECS:
        raise ValueError(f"unknown codec {n!r} (known: {', '.join(CODECS)}; aliases "
                         f"{', '.join(ALIASES)})")
      codec = CODECS[k]
      if not codec.available():
        raise ValueError(f"codec {k} is not available here (install imagecodecs / "
                         "pillow-heif with an x265 encoder)")
      if codec not in out:
        out.append(codec)
  return out


def parse_qualities(specs: Sequence[str]) -> dict[str, tuple[int, ...]]:
  """``["jpeg420=10,50,90", ...]`` -> ``{"jpeg420": (10, 50, 90)}`` (aliases allowed)."""
  out = {}
  for spec in specs:
    name, sep, values = spec.partition("=")
    name = ALIASES.get(name.strip().lower(), name.strip().lower())
    if not sep or name not in CODECS:
      raise ValueError(f"bad --qualities {spec!r}: expected CODEC=Q1,Q2,... with a "
                       f"known codec")
    try:
      qs = tuple(int(v) for v in values.split(",") if v.strip())
    except ValueError:
      raise ValueError(f"bad --qualities {spec!r}: qualities must be integers") from None
    if not qs or any(not 0 <= q <= 100 for q in qs):
      raise ValueError(f"bad --qualities {spec!r}: qualities must be within 0..100")
    out[name] = qs
  return out


def code_image(codec: ClassicalCodec, image: np.ndarray, quality: int):
  """Encode and decode one ``(H, W, 3)`` uint8 image: ``(record, decoded)`` with the
  record's ``bytes``, ``bpp``, metrics and ``encode_s`` / ``decode_s``."""
  t = time.perf_counter()
  data = codec.encode(image, quality)
  t_enc = time.perf_counter() - t
  t = time.perf_counter()
  decoded = np.asarray(codec.decode(data))
  t_dec = time.perf_counter() - t
  if decoded.shape != image.shape or decoded.dtype != np.uint8:
    raise RuntimeError(f"{codec.name} decoded a {decoded.dtype} image of shape "
                       f"{decoded.shape}, expected uint8 {image.shape}")
  npix = image.shape[0] * image.shape[1]
  rec = {"pixels": npix, "bytes": len(data), "bpp": 8.0 * len(data) / npix}
  rec.update(metrics.quality(image, decoded))
  rec.update({"encode_s": t_enc, "decode_s": t_dec})
  return rec, decoded


def evaluate_codec(codec: ClassicalCodec, images: Sequence[tuple[str, np.ndarray]],
                   qualities: Sequence[int] | None = None, progress=None,
                   keep: Callable[[str, int, np.ndarray], None] | None = None) -> dict:
  """The RD curve of ``codec`` over ``images`` (``(name, uint8 image)`` pairs), one
  point per quality. ``progress.update(1)`` is called per coded image; ``keep(name,
  point_index, decoded)`` may store reconstructions (visual comparisons)."""
  qualities = tuple(qualities or codec.qualities)
  points = []
  for pi, q in enumerate(qualities):
    recs = []
    for name, image in images:
      rec, decoded = code_image(codec, image, q)
      recs.append({"image": name, **rec})
      if keep is not None:
        keep(name, pi, decoded)
      if progress is not None:
        progress.update(1)
    points.append({"setting": {"quality": int(q)}, "summary": summarize(recs),
                   "images": recs})
  return {"name": codec.name, "label": codec.label, "kind": "classical",
          "settings": dict(codec.settings, library=codec.version()), "points": points}
