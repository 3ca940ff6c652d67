"""Train a CCA model.

  .venv/bin/python -m cca_jax.train --config configs/cpu.py --workdir workdirs/cpu
  .venv/bin/python -m cca_jax.train --config configs/paper.py:0.85 --workdir W \
      --config.batch_size=16 --config.data.tfds_name=clic

Any config field can be overridden with ``--config.<field>=<value>``. Re-running with
the same ``--workdir`` resumes from its latest checkpoint.

Fine-tuning: ``--config.init_from=W`` starts from the latest checkpoint of training
workdir ``W``; ``--config.init_from=B`` from the weights of model bundle ``B`` (a
``.ccam`` file or a model name such as ``q6``, ``cca-jax models`` lists them; the
auxiliary entropy model, which bundles drop, starts fresh from ``config.seed``).
``--config.init_deepen=True`` with a deeper ``--config.model.ae_layers`` takes a
source with fewer NAF blocks per transform stage: the added blocks start as the
identity, so training starts from the source model's function
(``cca_jax/model/growth.py``).
"""

from __future__ import annotations

import os
import sys

from cca_jax.utils.memory import retain_freed_memory

retain_freed_memory()  # first: before any other thread allocates (utils/memory.py)

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "config file (.py[:arg])",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "directory for checkpoints and logs")
_DISTRIBUTED = flags.DEFINE_enum(
    "distributed", "auto", ["auto", "true", "false"],
    "call jax.distributed.initialize() (auto: when the environment has several "
    "processes: TPU pod slice, SLURM, JAX_COORDINATOR_ADDRESS)")
_VERBOSE = flags.DEFINE_bool("verbose", False, "keep absl INFO logs (orbax, jax)")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not _VERBOSE.value:
    logging.set_verbosity(logging.WARNING)  # orbax logs every save step at INFO
  from cca_jax.codec.bundle import fine_tuning_params
  from cca_jax.codec.errors import CodecError
  from cca_jax.train import partitioning, trainer
  from cca_jax.utils import compilation_cache
  compilation_cache.enable()
  try:
    partitioning.maybe_initialize_distributed(_DISTRIBUTED.value)
    config = _CONFIG.value
    trainer.train_and_evaluate(config, _WORKDIR.value,
                               fine_tuning_params(config.init_from, config.model,
                                                  config.get("init_deepen", False)))
  except (ValueError, FileNotFoundError, CodecError) as e:
    from cca_jax.utils.cli import fail
    sys.exit(fail(e))


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  app.run(main)
