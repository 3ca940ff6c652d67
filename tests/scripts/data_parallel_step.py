"""One training step on 8 forced host devices vs the same step on one device.

Run by tests/test_train.py in a subprocess (XLA_FLAGS must be set before JAX starts):
prints the largest parameter difference and the loss of both runs as JSON.
"""

import json
import os
import sys

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=8")
os.environ["JAX_PLATFORMS"] = "cpu"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from cca_jax.config import load_config_file  # noqa: E402
from cca_jax.model.cca import CCAModel  # noqa: E402
from cca_jax.train import partitioning  # noqa: E402
from cca_jax.train.state import create_train_state  # noqa: E402
from cca_jax.train.step import make_train_step  # noqa: E402


def main():
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  config = load_config_file(os.path.join(root, "configs", "tiny.py"))
  config.batch_size = 8
  model = CCAModel.from_config(config.model)
  host_state = jax.device_get(create_train_state(config, model))
  x = np.random.RandomState(0).rand(8, 64, 64, 3).astype(np.float32)
  results = {}
  for name, devices in (("8", jax.devices()), ("1", jax.devices()[:1])):
    mesh = partitioning.make_mesh(devices)
    step = partitioning.jit_train_step(make_train_step(config, model), mesh)
    state, metrics = step(partitioning.replicate(host_state, mesh),
                          partitioning.global_batch(x, mesh))
    results[name] = (jax.device_get(state.params), float(metrics["loss"]),
                     len(state.params["g_a"]["down_0"]["kernel"].sharding.device_set))
  diffs = jax.tree.map(lambda a, b: float(np.max(np.abs(a - b))),
                       results["8"][0], results["1"][0])
  moved = jax.tree.map(lambda a, b: float(np.max(np.abs(a - b))),
                       results["1"][0], host_state.params)
  print(json.dumps({
      "num_devices": len(jax.devices()),
      "max_param_diff": max(jax.tree.leaves(diffs)),
      "max_param_update": max(jax.tree.leaves(moved)),
      "loss_8": results["8"][1], "loss_1": results["1"][1],
      "param_devices_8": results["8"][2], "param_devices_1": results["1"][2]}))


if __name__ == "__main__":
  main()
