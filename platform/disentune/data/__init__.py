"""Datasets: the image-data interface, factor grids, procedural renders, readers of the published
files, image collections and the shared conversion cache (``data.importer``, ``data.cache``)."""

from disentune.data.ground_truth import Factor, GroundTruthData, ImageData, Region, training_indices

__all__ = ["Factor", "GroundTruthData", "ImageData", "Region", "training_indices"]
