"""Training, evaluation, checkpoints and logging."""
