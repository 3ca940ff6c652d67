"""Shared fixtures: small configs, the tiny model, optional torch."""

import atexit
import os
import shutil
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)
SHARED_DATA = os.path.join(ROOT, "..", "shared", "data")
TRAIN_DATA = os.path.join(SHARED_DATA, "train")

# One persistent compilation cache for the session (subprocesses inherit it): the
# tiny model's programs compile once, later tests and subprocesses load them.
os.environ.setdefault("CCA_JAX_CACHE_DIR",
                      os.path.join(tempfile.gettempdir(), "cca_jax_test_cache"))
# The per-user model directory (where export registers bundles) of the session is a
# temporary one: tests never write into the user's home.
os.environ["CCA_JAX_HOME"] = tempfile.mkdtemp(prefix="cca_jax_test_home_")
atexit.register(shutil.rmtree, os.environ["CCA_JAX_HOME"], ignore_errors=True)
os.environ.pop("CCA_JAX_MODEL", None)
from cca_jax.utils import compilation_cache  # noqa: E402
compilation_cache.enable()
KODAK = os.path.join(SHARED_DATA, "kodak")


def load_config(name, arg=None):
  from cca_jax.config import load_config_file
  spec = os.path.join(ROOT, "configs", f"{name}.py") + (f":{arg}" if arg else "")
  return load_config_file(spec)


@pytest.fixture
def no_cli_cache(monkeypatch):
  """In-process commands must not turn on jax's persistent cache for the session
  (``pytestmark = pytest.mark.usefixtures("no_cli_cache")``)."""
  monkeypatch.setenv("CCA_JAX_CACHE_DIR", "")


@pytest.fixture(scope="session")
def tiny_config():
  return load_config("tiny")


@pytest.fixture(scope="session")
def tiny_model(tiny_config):
  from cca_jax.model.cca import CCAModel
  return CCAModel.from_config(tiny_config.model)


@pytest.fixture(scope="session")
def tiny_params(tiny_model):
  from cca_jax.model.cca import init_params
  return init_params(tiny_model, seed=0)


@pytest.fixture(scope="session")
def tiny_workdir(tiny_config, tiny_params, tmp_path_factory):
  """A training workdir at step 0 holding ``tiny_params`` (as convert_torch writes)."""
  from cca_jax.train.checkpointing import start_workdir
  d = str(tmp_path_factory.mktemp("workdir"))
  start_workdir(d, tiny_config, tiny_params)
  return d


@pytest.fixture(scope="session")
def torch_single_thread():
  torch = pytest.importorskip("torch")
  old = torch.get_num_threads()
  torch.set_num_threads(1)
  yield torch
  torch.set_num_threads(old)


def pytest_collection_modifyitems(config, items):
  """The end-to-end training file first: under ``-n 2 --dist loadfile`` (launch/test.sh)
  one worker runs it while the other takes the remaining files, so both finish
  together instead of one waiting for the longest file at the end."""
  first = [i for i in items if i.path.name == "test_train.py"]
  items[:] = first + [i for i in items if i.path.name != "test_train.py"]
