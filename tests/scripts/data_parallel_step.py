"""One training step on 8 forced host devices.

Run by tests/test_train.py in a subprocess (XLA_FLAGS must be set before JAX starts):

    data_parallel_step.py IN.npz OUT.npz --config.field=value ...

IN.npz holds the initial parameters (flattened with '/') and the global batch ``x``;
the config is configs/tiny.py with the given overrides. OUT.npz gets the parameters
after one step of the data-parallel training step over all 8 devices, its loss, and
how many devices hold the parameters. The test compares them with the same step on
one device, computed in its own process (the single-device program is the one the
test's training run compiles anyway, so it compiles once per session).
"""

import os
import sys

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=8")
os.environ["JAX_PLATFORMS"] = "cpu"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import jax  # noqa: E402
import numpy as np  # noqa: E402
from flax import traverse_util  # noqa: E402

from cca_jax.config import load_config_file  # noqa: E402
from cca_jax.model.cca import CCAModel  # noqa: E402
from cca_jax.train import partitioning  # noqa: E402
from cca_jax.train.state import create_train_state  # noqa: E402
from cca_jax.train.step import make_train_step  # noqa: E402


def main(inp, out, *overrides):
  config = load_config_file(os.path.join(ROOT, "configs", "tiny.py"), overrides)
  model = CCAModel.from_config(config.model)
  with np.load(inp) as f:
    arrays = dict(f)
  x = arrays.pop("x")
  params = traverse_util.unflatten_dict(arrays, sep="/")
  mesh = partitioning.make_mesh(jax.devices())
  step = partitioning.jit_train_step(make_train_step(config, model), mesh)
  state, metrics = step(
      partitioning.replicate(jax.device_get(create_train_state(config, params=params)),
                             mesh),
      partitioning.global_batch(x, mesh))
  result = traverse_util.flatten_dict(jax.device_get(state.params), sep="/")
  np.savez(out, **result, loss=np.float64(metrics["loss"]),
           num_devices=len(jax.devices()),
           param_devices=len(state.params["g_a"]["down_0"]["kernel"].sharding.device_set))


if __name__ == "__main__":
  main(*sys.argv[1:])
