"""The ``cca-jax`` command: one entry point, one sub-command per tool.

  cca-jax compress IN OUT.cca [--quality N | --model MODEL] [--pad-multiple 128]
                   [--optimize STEPS]
  cca-jax decompress IN.cca OUT.png [--model MODEL] [--quiet]
  cca-jax info IN.cca [--json]
  cca-jax models [--json]
  cca-jax export --workdir DIR --out MODEL.ccam [--weights float16] [--no-register]
  cca-jax summary --config configs/paper.py
  cca-jax convert-torch CKPT.pth.tar --config configs/paper.py --out DIR [--image IMG]
  cca-jax evaluate --model MODEL [...] --data DIR --out RESULTS.json [--codecs ...]
  cca-jax report RESULTS.json [...] --out DIR
  cca-jax compare [--data DIR] [--out DIR] [--model M ...] [--limit N]

``-`` reads stdin / writes stdout. compress and decompress keep jax's persistent
compilation cache in ``$CCA_JAX_CACHE_DIR`` (default ``~/.cache/cca_jax/jax``;
``CCA_JAX_CACHE_DIR=""`` turns it off), so only the first call per image size
compiles. ``MODEL`` is a model bundle written by ``export``, a directory of ``*.ccam``
bundles, or a model name (``default``, ``q1`` .. ``qN``, a shipped model's name, a
model id; ``cca_jax.codec.registry``). ``compress`` without ``--model`` uses the
shipped models (``--quality N``, 1 = smallest files; default the middle one), or
``$CCA_JAX_MODEL`` when that names exactly one bundle. ``decompress`` finds the model
by the id in the stream: in ``--model`` if given, then ``$CCA_JAX_MODEL``, the
per-user model directory (where ``export`` registers its bundles) and the shipped
models. ``models`` lists every model found. Output files are written atomically
(temp file + rename): a failed command leaves no output behind. Images that are not
8-bit RGB (grayscale, palette, RGBA, 16-bit) are converted with a ``note:`` on stderr;
decompress always writes PNG.

Exit codes: 0 success; 1 bad input (unreadable or non-image input, corrupt or
truncated stream, a stream of another model, unusable model file) with a one-line
``error:`` message on stderr; 2 usage error (bad or missing arguments).
"""

from __future__ import annotations

import io
import os
import sys

MODEL_ENV = "CCA_JAX_MODEL"  # = codec.registry.MODEL_ENV (not imported: fast --help)
CACHE_ENV = "CCA_JAX_CACHE_DIR"

_COMMANDS = {
    "compress": "compress an image into a .cca stream",
    "decompress": "decompress a .cca stream into a PNG",
    "info": "describe a .cca stream (no model needed)",
    "models": "list the models the codec finds (shipped, retired, user, $CCA_JAX_MODEL)",
    "train": "train a model (python -m cca_jax.train): --config F.py --workdir W",
    "export": "write a model bundle from a training workdir",
    "summary": "parameter counts and channel groups of a config",
    "convert-torch": "import an official PyTorch checkpoint (bundle or workdir)",
    "evaluate": "RD evaluation of models and classical codecs (results JSON)",
    "report": "RD plots, BD-rate tables and a markdown report from results",
    "compare": "the shipped models against JPEG/WebP/AVIF on Kodak: table, plot, crop",
}


def _usage() -> str:
  lines = ["usage: cca-jax COMMAND [ARGS]  (cca-jax COMMAND --help for details)", ""]
  lines += [f"  {name:<15} {text}" for name, text in _COMMANDS.items()]
  return "\n".join(lines)


class _StdinBytes(io.BytesIO):
  """Bytes read from stdin, named ``<stdin>`` in error messages."""

  def __str__(self):
    return "<stdin>"


def _read_bytes(path: str) -> bytes:
  if path == "-":
    return sys.stdin.buffer.read()
  if os.path.isdir(path):
    raise OSError(f"{path}: is a directory")
  try:
    with open(path, "rb") as f:
      return f.read()
  except FileNotFoundError:
    raise OSError(f"{path}: no such file") from None
  except PermissionError:
    raise OSError(f"{path}: permission denied") from None


def _write_bytes(path: str, data: bytes) -> None:
  """Atomic write (temp file in the same directory + rename), or stdout for ``-``."""
  if path == "-":
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
    return
  from cca_jax.utils.files import atomic_write_bytes
  atomic_write_bytes(path, data)


def _encoder_model(model: str | None, quality: int | None) -> str:
  """The bundle path ``compress`` uses: ``--model`` (a file, a directory holding one
  bundle, or a name), else ``$CCA_JAX_MODEL`` if it names exactly one bundle and no
  ``--quality`` is given, else the shipped model of ``--quality`` (default middle)."""
  from cca_jax.codec import find_bundle, registry
  if model is not None:
    if os.path.exists(model):
      return find_bundle(model)
    path = registry.resolve_name(model)
    if path is None:
      raise OSError(f"{model}: no such model file, directory or model name "
                    f"(cca-jax models lists them)")
    return path
  env = registry.env_paths()
  if quality is None and len(env) == 1 and os.path.exists(env[0]):
    return find_bundle(env[0])
  return registry.by_quality(quality).path


def _decoder_model(model: str | None, model_id: bytes) -> str:
  """``--model FILE`` is used as given (a stream of another model is refused by
  ``decode``); otherwise the bundle with the stream's id, in ``--model DIR`` first."""
  from cca_jax.codec import registry
  if model is not None and os.path.isfile(model):
    return model
  if model is not None and not os.path.exists(model):
    path = registry.resolve_name(model)
    if path is None:
      raise OSError(f"{model}: no such model file, directory or model name")
    model = path
  return registry.by_id(model_id, model)


def _at_least(minimum: int):
  """An argparse type: an integer of at least ``minimum``."""
  def parse(text: str) -> int:
    import argparse
    try:
      value = int(text)
    except ValueError:
      raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < minimum:
      raise argparse.ArgumentTypeError(f"must be {minimum} or more, got {value}")
    return value
  return parse


_quality = _at_least(1)


def _enable_compilation_cache() -> None:
  """jax's persistent compilation cache for the codec commands
  (``cca_jax.utils.compilation_cache``: ``$CCA_JAX_CACHE_DIR``, else ``~/.cache/cca_jax/jax``;
  empty turns it off), with the codec's compiled executables (``executables/``:
  ``cca_jax.utils.executable_cache``, so a new process does not trace them again). A
  cached executable is the same program: results do not change. Also the codec's
  XLA:CPU setting (``utils.cli.use_codec_xla_flags``)."""
  from cca_jax.utils import compilation_cache
  from cca_jax.utils.cli import use_codec_xla_flags
  use_codec_xla_flags()
  compilation_cache.enable(executables=True)


def _parser(prog: str, description: str):
  import argparse
  return argparse.ArgumentParser(prog=f"cca-jax {prog}", description=description)


def _multiple(text: str) -> int:
  import argparse
  try:
    value = int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
  if value not in (64, 128, 192, 256):
    raise argparse.ArgumentTypeError(f"must be 64, 128, 192 or 256, got {value}")
  return value


def _compress(argv) -> int:
  p = _parser("compress", "Compress an image (PNG, JPEG, ...) into a .cca stream.")
  p.add_argument("input", help="image file, or - for stdin")
  p.add_argument("output", help="output stream (.cca), or - for stdout")
  g = p.add_mutually_exclusive_group()
  g.add_argument("--model", help="model bundle, directory or name (default: the "
                                 f"shipped models, or ${MODEL_ENV} if it names one "
                                 "bundle)")
  g.add_argument("--quality", type=_quality,
                 help="shipped model 1 (smallest files) .. N (default: the middle one)")
  p.add_argument("--pad-multiple", type=_multiple, default=128,
                 help="pad (zeros, centred) to a multiple of this: 64, 128 (default, "
                      "as the official evaluation), 192 or 256")
  p.add_argument("--optimize", type=_at_least(0), default=0, metavar="STEPS",
                 help="search better latents for this image in STEPS gradient steps "
                      "(e.g. 100: smaller files at equal quality, much slower "
                      "encoding; the stream and decoder are unchanged; default 0)")
  p.add_argument("--quiet", action="store_true", help="no summary line on stderr")
  args = p.parse_args(argv)
  _enable_compilation_cache()

  from cca_jax.codec import encode, load_bundle
  from cca_jax.utils.image_io import read_image
  source = _StdinBytes(sys.stdin.buffer.read()) if args.input == "-" else args.input
  x, notes = read_image(source)
  bundle = load_bundle(_encoder_model(args.model, args.quality))
  for note in notes:
    print(f"note: {note}", file=sys.stderr)
  enc = encode(bundle, x, args.pad_multiple, optimize=args.optimize)
  _write_bytes(args.output, enc.data)
  if not args.quiet:
    h = enc.header
    npix = h.height * h.width
    print(f"{args.input} {h.width}x{h.height} -> {args.output}: {len(enc.data):,} "
          f"bytes, {8 * len(enc.data) / npix:.4f} bpp (z {h.z_length:,} B, "
          f"y {h.y_length:,} B), model {os.path.basename(bundle.path or '?')}",
          file=sys.stderr)
  return 0


def _decompress(argv) -> int:
  p = _parser("decompress", "Decompress a .cca stream into a PNG image.")
  p.add_argument("input", help=".cca stream, or - for stdin")
  p.add_argument("output", help="output PNG, or - for stdout")
  p.add_argument("--model", help="model bundle, directory or name searched first for "
                                 "the stream's model id (then $" + MODEL_ENV +
                                 ", the user's and the shipped models); a file is "
                                 "used as given")
  p.add_argument("--quiet", action="store_true", help="no summary line on stderr")
  args = p.parse_args(argv)
  _enable_compilation_cache()

  from cca_jax.codec import decode, load_bundle
  from cca_jax.codec.format import parse_header
  data = _read_bytes(args.input)
  header = parse_header(data)
  bundle = load_bundle(_decoder_model(args.model, header.model_id))
  dec = decode(bundle, data)
  from cca_jax.utils.image_io import png_bytes
  _write_bytes(args.output, png_bytes(dec.image))
  if not args.quiet:
    print(f"{args.input} -> {args.output}: {header.width}x{header.height}",
          file=sys.stderr)
  return 0


def _info(argv) -> int:
  p = _parser("info", "Describe a .cca stream: header fields, part sizes, checksum.")
  p.add_argument("input", help=".cca stream, or - for stdin")
  p.add_argument("--json", action="store_true", help="print one JSON object")
  args = p.parse_args(argv)

  from cca_jax.codec.format import parse
  from cca_jax.model.cca import DOWNSAMPLING
  data = _read_bytes(args.input)
  h, _, _ = parse(data, DOWNSAMPLING)
  npix = h.height * h.width
  doc = {
      "format_version": h.version, "model_id": h.model_id.hex(),
      "height": h.height, "width": h.width,
      "padded_height": h.padded_height, "padded_width": h.padded_width,
      "padding": {"top": h.padding[0][0], "bottom": h.padding[0][1],
                  "left": h.padding[1][0], "right": h.padding[1][1]},
      "bytes": {"header": h.header_size, "z": h.z_length, "y": h.y_length,
                "total": len(data)},
      "slices": h.num_slices, "index_checks": [f"{c:04x}" for c in h.index_checks],
      "bpp": 8 * len(data) / npix, "bpp_payload": 8 * (h.z_length + h.y_length) / npix,
      "checksum": "ok",
  }
  if args.json:
    import json
    print(json.dumps(doc, sort_keys=True))
    return 0
  pad = doc["padding"]
  print(f"format:    cca-jax stream, version {h.version}")
  print(f"model id:  {doc['model_id']}")
  print(f"image:     {h.width}x{h.height} (padded to {h.padded_width}x{h.padded_height}: "
        f"top {pad['top']}, bottom {pad['bottom']}, left {pad['left']}, "
        f"right {pad['right']})")
  print(f"bytes:     {len(data):,} (header {h.header_size}, z {h.z_length:,}, "
        f"y {h.y_length:,})")
  print(f"slices:    {h.num_slices} (index checks {' '.join(doc['index_checks'])})")
  print(f"bpp:       {doc['bpp']:.4f} (payload {doc['bpp_payload']:.4f})")
  print("checksum:  ok")
  return 0


def _streams(manifest: dict) -> str:
  """``portable`` (version 2: integer entropy parameters) or ``local`` (version 1:
  its streams decode exactly only on the kind of machine that wrote them)."""
  return "portable" if manifest.get("entropy_parameters") == "integer" else "local"


def _models(argv) -> int:
  p = _parser("models", "List the models the codec finds: $" + MODEL_ENV + ", the "
              "per-user model directory, the shipped models (with their quality), "
              "the retired ones (earlier shipped models, for their streams).")
  p.add_argument("--json", action="store_true", help="print one JSON object per line")
  args = p.parse_args(argv)

  from cca_jax.codec import registry
  entries = registry.all_models()
  shipped = [e for e in entries if e.source == "shipped"]
  default = (shipped[registry.default_quality(len(shipped)) - 1].path if shipped
             else None)
  if args.json:
    import json
    for e in entries:
      print(json.dumps({"name": e.name, "source": e.source, "quality": e.quality,
                        "default": e.path == default, "model_id": e.model_id,
                        "lmbda": e.lmbda, "path": e.path,
                        "N": e.manifest.get("model", {}).get("N"),
                        "M": e.manifest.get("model", {}).get("M"),
                        "weights": e.manifest.get("weights", "float32"),
                        "streams": _streams(e.manifest)},
                       sort_keys=True))
    return 0
  print(f"{'quality':<8} {'name':<20} {'model id':<17} {'lambda':>7} {'N/M':>8} "
        f"{'streams':<9} {'source':<8} path")
  for e in entries:
    q = f"{e.quality}{'*' if e.path == default else ''}" if e.quality else "-"
    cfg = e.manifest.get("model", {})
    lm = f"{e.lmbda:g}" if e.lmbda is not None else "-"
    print(f"{q:<8} {e.name:<20} {e.model_id:<17} {lm:>7} "
          f"{str(cfg.get('N', '?')) + '/' + str(cfg.get('M', '?')):>8} "
          f"{_streams(e.manifest):<9} {e.source:<8} {e.path}")
  if not entries:
    print(f"(none: no bundles in {registry.shipped_dir()}, {registry.user_dir()} "
          f"or ${MODEL_ENV})")
  elif default:
    print("* the default of cca-jax compress")
  print(f"user directory: {registry.user_dir()}")
  return 0


_CODEC_COMMANDS = {"compress": _compress, "decompress": _decompress, "info": _info,
                   "models": _models}


def _run_codec_command(cmd: str, argv) -> int:
  from cca_jax.codec.errors import CodecError
  from cca_jax.utils.cli import fail
  from cca_jax.utils.image_io import ImageError
  try:
    return _CODEC_COMMANDS[cmd](argv)
  except SystemExit as e:  # argparse: --help (0) or a usage error (2, already printed)
    return e.code if isinstance(e.code, int) else 2
  except (CodecError, ImageError) as e:
    return fail(e)
  except OSError as e:
    if e.strerror and e.filename:
      return fail(f"{e.filename}: {e.strerror}")
    return fail(e)
  except MemoryError:
    return fail("out of memory")
  except KeyboardInterrupt:
    return fail("interrupted", 130)
  except Exception as e:  # a bug: still one line, still no output file
    return fail(f"internal error ({e.__class__.__name__}: {e}); please report it")


def _run_absl(module, prog: str, argv: list) -> int:
  """Run an absl tool's ``main`` (``--help`` lists its flags)."""
  from absl import app, flags
  for flag in flags.FLAGS.get_key_flags_for_module(module):  # shown by --help
    flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
  app.run(module.main, argv=[prog] + argv)
  return 0


def main(argv=None) -> int:
  from cca_jax.utils.memory import retain_freed_memory
  retain_freed_memory()  # first: before numpy or jax start threads
  argv = list(sys.argv[1:] if argv is None else argv)
  if not argv or argv[0] in ("-h", "--help"):
    print(_usage())
    return 0 if argv else 2
  cmd, rest = argv[0], argv[1:]
  if cmd in _CODEC_COMMANDS:
    return _run_codec_command(cmd, rest)
  if cmd == "train":
    import importlib
    train_main = importlib.import_module("cca_jax.train.__main__")
    return _run_absl(train_main, "cca-jax train", rest)
  if cmd == "export":
    from cca_jax import export
    return export.main(rest)
  if cmd == "summary":
    from cca_jax import summary
    return _run_absl(summary, "cca-jax summary", rest)
  if cmd == "convert-torch":
    from cca_jax import convert_torch
    return convert_torch.main(rest)
  if cmd == "evaluate":
    from cca_jax.eval import evaluate
    return evaluate.main(rest)
  if cmd == "report":
    from cca_jax.eval import report
    return report.main(rest)
  if cmd == "compare":
    from cca_jax.eval import compare
    return compare.main(rest)
  print(f"error: unknown command {cmd!r}\n{_usage()}", file=sys.stderr)
  return 2


if __name__ == "__main__":
  sys.exit(main())
