"""Wall time of the codec commands as new processes: what a user waits for.

  .venv/bin/python benchmarks/cli_startup.py                 # kodim01, 3 rounds
  .venv/bin/python benchmarks/cli_startup.py --rounds 5 --image IMG --quality 7

Each round runs, one new process each, ``cca-jax compress`` then ``cca-jax
decompress`` in three settings, interleaved:

* ``empty``: an empty cache directory (a user's very first call for this image size);
* ``jax cache``: JAX's persistent compilation cache warm, the executable cache off
  (``CCA_JAX_EXECUTABLE_CACHE=0``; every process traces and lowers the 13 programs);
* ``executables``: both warm (the default: the programs are loaded compiled).

Every setting's stream and image are checked against the first ones (byte for byte).
Prints the medians; the in-process encode / decode time of the same image is in
``codec_latency.py``.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETTINGS = ("empty", "jax cache", "executables")


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--image", default=os.path.join(ROOT, "..", "shared", "data", "kodak",
                                                 "kodim01.png"))
  p.add_argument("--quality", type=int, help="shipped model (default: the default one)")
  p.add_argument("--rounds", type=int, default=3)
  args = p.parse_args(argv)
  cli = os.path.join(os.path.dirname(sys.executable), "cca-jax")
  work = tempfile.mkdtemp(prefix="cca_jax_startup_")
  warm = os.path.join(work, "warm")
  times = {(s, c): [] for s in SETTINGS for c in ("compress", "decompress")}
  quality = ["--quality", str(args.quality)] if args.quality else []

  def run(setting, r):
    cache = os.path.join(work, f"empty{r}") if setting == "empty" else warm
    env = dict(os.environ, CCA_JAX_CACHE_DIR=cache,
               CCA_JAX_EXECUTABLE_CACHE="0" if setting == "jax cache" else "1")
    stream = os.path.join(work, f"{setting}{r}.cca".replace(" ", "_"))
    image = stream[:-4] + ".png"
    for command, io in (("compress", [args.image, stream] + quality),
                        ("decompress", [stream, image])):
      t = time.perf_counter()
      subprocess.run([cli, command, *io, "--quiet"], env=env, check=True)
      times[setting, command].append(time.perf_counter() - t)
    return stream, image

  try:
    # Fill the warm cache: one run with the executable cache off (JAX's cache), one on.
    for setting in ("jax cache", "executables"):
      run(setting, "fill")
    reference = None
    times = {k: [] for k in times}
    print(f"{os.path.basename(args.image)}, {os.cpu_count()} CPUs, load "
          f"{os.getloadavg()[0]:.2f} at start", flush=True)
    for r in range(args.rounds):
      for setting in SETTINGS:
        out = run(setting, r)
        if reference is None:
          reference = out
        if not all(filecmp.cmp(a, b, shallow=False) for a, b in zip(out, reference)):
          raise SystemExit(f"error: {setting}: the stream or image differs")
      print(f"round {r + 1}: " + ", ".join(
          f"{s} {times[s, 'compress'][-1]:.2f} / {times[s, 'decompress'][-1]:.2f} s"
          for s in SETTINGS), flush=True)
    print(f"\nmedians of {args.rounds} (compress / decompress, seconds, new processes):")
    for s in SETTINGS:
      print(f"  {s:<12} {statistics.median(times[s, 'compress']):6.2f} / "
            f"{statistics.median(times[s, 'decompress']):6.2f}")
    print("streams and images identical in every setting")
  finally:
    shutil.rmtree(work, ignore_errors=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
