"""Generator families, one package each: pure torch module, losses, training step."""
