"""Ground-truth datasets: the factor-grid interface, procedural dSprites and region exclusion."""

from disentune.data.ground_truth import Factor, GroundTruthData, Region, training_indices

__all__ = ["Factor", "GroundTruthData", "Region", "training_indices"]
