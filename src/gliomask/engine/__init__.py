"""Training engine: configuration, distributed helpers, checkpoints and the training loop."""
