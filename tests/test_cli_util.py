"""One-line errors of the command-line tools (cca_jax.utils.cli)."""

import os

from cca_jax.utils.cli import fail, fail_with, one_line


def test_one_line_picks_the_informative_line():
  assert one_line("no such file\nsecond line") == "no such file"
  # TensorFlow's traced-function errors: the heading, a trace, the error last.
  assert one_line("in user code:\n\n  File \"x.py\", line 3, in f\n\n"
                  "  InvalidArgumentError: bad image") == "InvalidArgumentError: bad image"
  assert one_line("") == "failed"


def test_fail_and_fail_with(capsys):
  assert fail("bad input\ntrace") == 1
  assert capsys.readouterr().err == "error: bad input\n"
  assert fail_with(FileNotFoundError(2, "No such file or directory", "a.png")) == 1
  assert capsys.readouterr().err == "error: a.png: No such file or directory\n"
  assert fail_with(KeyboardInterrupt()) == 130
  assert capsys.readouterr().err == "error: interrupted\n"


def test_codec_xla_flags_are_added_before_jax_starts_and_a_users_win():
  import subprocess
  import sys
  code = ("import os; from cca_jax.utils.cli import use_codec_xla_flags; "
          "use_codec_xla_flags(); print(os.environ.get('XLA_FLAGS', ''))")
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  for given, want in (("", "--xla_cpu_experimental_ynn_fusion_type=individual_dot,"
                           "individual_convolution"),
                      ("--xla_cpu_experimental_ynn_fusion_type=",
                       "--xla_cpu_experimental_ynn_fusion_type=")):
    env = dict(os.environ, XLA_FLAGS=given, JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=root,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == want
