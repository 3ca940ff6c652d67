"""One-line errors of the command-line tools (cca_jax.cli_util)."""

from cca_jax.cli_util import fail, fail_with, one_line


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
