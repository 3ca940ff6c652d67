"""Encode on one machine or backend, decode on another: do the streams decode exactly?

  # on machine / backend A (e.g. JAX_PLATFORMS=cuda): streams and the latents' hashes
  .venv/bin/python benchmarks/cross_backend.py encode --out DIR \\
      [--model default --model q1 ...] [--images ../shared/data/kodak] [--limit N]
  # on machine / backend B (e.g. JAX_PLATFORMS=cpu, or another XLA_FLAGS):
  .venv/bin/python benchmarks/cross_backend.py decode DIR

``encode`` writes ``DIR/<model>/<image>.cca`` and ``DIR/manifest.json`` (backend,
device, XLA_FLAGS, the model files, per stream the sha256 of the stream and of the
encoder's ``z_hat`` / ``y_hat``). ``decode`` decodes every stream with the same model
files, checks its latents against the encoder's and re-encodes the image to check
that this machine writes the same bytes; one line per stream and a summary, exit 1 if
any stream fails. Version 2 bundles (integer entropy parameters) must pass on every
pair of machines; version 1 bundles (float) only where the float networks happen to
give the same bits. ``--images synthetic:HxW`` uses ``synthetic_image`` of
tests/codec_helpers.py instead of files (tests/test_integer.py runs it under other
``XLA_FLAGS`` and thread counts).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT]

import numpy as np  # noqa: E402


def _sha(a) -> str:
  a = np.ascontiguousarray(a)
  return hashlib.sha256(a.tobytes()).hexdigest()


def _images(spec: str, limit: int | None):
  """``[(name, uint8 image)]``: a folder's images, or ``synthetic:HxW``."""
  if spec.startswith("synthetic:"):
    from tests.codec_helpers import synthetic_image
    h, w = (int(v) for v in spec.split(":", 1)[1].split("x"))
    return [(f"synthetic{s}", synthetic_image(h, w, seed=s)) for s in range(limit or 1)]
  from cca_jax.eval.dataset import load_images
  return [(os.path.splitext(name)[0], x) for name, x in load_images(spec, limit)[0]]


def _machine() -> dict:
  import jax
  return {"backend": jax.default_backend(), "device": str(jax.devices()[0]),
          "jax": jax.__version__, "cpu": platform.processor() or platform.machine(),
          "xla_flags": os.environ.get("XLA_FLAGS", "")}


def encode_all(models: list[str], images: str, out: str, limit: int | None) -> dict:
  from cca_jax.codec import encode, load_bundle
  os.makedirs(out, exist_ok=True)
  doc = {"machine": _machine(), "images": images, "limit": limit, "streams": []}
  items = _images(images, limit)
  for spec in models:
    bundle = load_bundle(spec)
    name = os.path.splitext(os.path.basename(bundle.path or spec))[0]
    os.makedirs(os.path.join(out, name), exist_ok=True)
    for image_name, image in items:
      enc = encode(bundle, image)
      rel = os.path.join(name, image_name + ".cca")
      with open(os.path.join(out, rel), "wb") as f:
        f.write(enc.data)
      doc["streams"].append({
          "model": os.path.abspath(bundle.path), "version": bundle.version,
          "image": image_name, "stream": rel, "sha256": _sha(np.frombuffer(enc.data,
                                                                           np.uint8)),
          "z_hat": _sha(enc.z_hat), "y_hat": _sha(enc.y_hat)})
      print(f"encoded {rel} ({len(enc.data)} bytes, bundle version {bundle.version})",
            flush=True)
  with open(os.path.join(out, "manifest.json"), "w") as f:
    json.dump(doc, f, indent=1)
  return doc


def decode_all(directory: str) -> list[dict]:
  from cca_jax.codec import CodecError, decode, encode, load_bundle
  with open(os.path.join(directory, "manifest.json")) as f:
    doc = json.load(f)
  images = dict(_images(doc["images"], doc["limit"]))
  bundles, results = {}, []
  for s in doc["streams"]:
    bundle = bundles.setdefault(s["model"], load_bundle(s["model"]))
    with open(os.path.join(directory, s["stream"]), "rb") as f:
      data = f.read()
    r = {"stream": s["stream"], "version": s["version"]}
    try:
      dec = decode(bundle, data)
      r["latents_exact"] = (_sha(dec.z_hat) == s["z_hat"] and _sha(dec.y_hat) == s["y_hat"])
      r["error"] = None
    except CodecError as e:
      r["latents_exact"], r["error"] = False, str(e)
    again = encode(bundle, images[s["image"]]).data
    r["same_bytes"] = _sha(np.frombuffer(again, np.uint8)) == s["sha256"]
    results.append(r)
    print(f"{s['stream']}: version {s['version']}, decode "
          f"{'exact' if r['latents_exact'] else 'FAILED: ' + (r['error'] or 'latents differ')}"
          f", re-encode {'same bytes' if r['same_bytes'] else 'OTHER BYTES'}", flush=True)
  return results


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  sub = p.add_subparsers(dest="command", required=True)
  e = sub.add_parser("encode")
  e.add_argument("--out", required=True)
  e.add_argument("--model", action="append", help="bundle file or name (default: all "
                 "shipped qualities)")
  e.add_argument("--images", default=os.path.join(ROOT, "..", "shared", "data", "kodak"))
  e.add_argument("--limit", type=int, default=None)
  d = sub.add_parser("decode")
  d.add_argument("dir")
  args = p.parse_args(argv)
  if args.command == "encode":
    from cca_jax.codec import registry
    models = args.model or [e.path for e in registry.shipped_models()]
    encode_all(models, args.images, args.out, args.limit)
    print(f"machine: {_machine()}")
    return 0
  results = decode_all(args.dir)
  with open(os.path.join(args.dir, "manifest.json")) as f:
    enc_machine = json.load(f)["machine"]
  ok = sum(r["latents_exact"] and r["same_bytes"] for r in results)
  print(f"encoded on {enc_machine}\ndecoded on {_machine()}\n"
        f"{ok}/{len(results)} streams decoded exactly and re-encoded to the same bytes")
  return 0 if ok == len(results) else 1


if __name__ == "__main__":
  sys.exit(main())
