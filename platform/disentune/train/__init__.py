"""Per-worker training: the loop Ray Train runs, its session adapter and checkpoints."""
