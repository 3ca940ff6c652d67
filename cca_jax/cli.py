"""The ``cca-jax`` command: one entry point, one sub-command per tool.

  cca-jax summary --config configs/paper.py
  cca-jax convert-torch CHECKPOINT.pth.tar --config configs/paper.py --out DIR [--image IMG]

Exit codes: 0 success, 1 bad input (one-line ``error:`` message), 2 usage error.
"""

from __future__ import annotations

import sys

_COMMANDS = {
    "summary": "parameter counts and channel groups of a config",
    "convert-torch": "import an official PyTorch checkpoint",
}


def _usage() -> str:
  lines = ["usage: cca-jax COMMAND [ARGS]  (cca-jax COMMAND --help for details)", ""]
  lines += [f"  {name:<15} {text}" for name, text in _COMMANDS.items()]
  return "\n".join(lines)


def main(argv=None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  if not argv or argv[0] in ("-h", "--help"):
    print(_usage())
    return 0 if argv else 2
  cmd, rest = argv[0], argv[1:]
  if cmd == "summary":
    from absl import app
    from cca_jax import summary
    app.run(summary.main, argv=["cca-jax summary"] + rest)
    return 0
  if cmd == "convert-torch":
    from cca_jax import convert_torch
    return convert_torch.main(rest)
  print(f"error: unknown command {cmd!r}\n{_usage()}", file=sys.stderr)
  return 2


if __name__ == "__main__":
  sys.exit(main())
