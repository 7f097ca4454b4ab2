"""disentune: multi-objective search and evaluation of disentangled generative models."""

__version__ = "0.1.0"
