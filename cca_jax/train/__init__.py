"""Training: train_and_evaluate, the data-parallel step, optimizers and schedules,
checkpointing and the input pipeline."""
