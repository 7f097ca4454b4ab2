"""An example disentune plugin: the sigma-VAE family and the active-units metric."""
