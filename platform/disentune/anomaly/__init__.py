"""Anomaly detection on learned representations: detectors (fit / score) and their metrics.

Array-level cores, no Ray (numpy; the subset scan optionally in float64 torch, on a GPU when asked):

- :mod:`~disentune.anomaly.pvalues`: empirical p-values of test activations against a clean
  background, per node (one- and two-tailed, ties as ranges).
- :mod:`~disentune.anomaly.scan_statistics`: non-parametric scan statistics F(alpha, N_alpha, N)
  (Berk-Jones, Higher Criticism, Kolmogorov-Smirnov).
- :mod:`~disentune.anomaly.subset_scan`: per-sample and group subset scanning over node
  activations (Cintas et al. 2020; McFowland, Speakman & Neill 2013).
- :mod:`~disentune.anomaly.detectors`: Mahalanobis, kNN and subset-scan detectors.
- :mod:`~disentune.anomaly.scoring`: AUROC, AUPR, FPR at 95% TPR, F1 at the contamination rate.

Around them, the model side:

- :mod:`~disentune.anomaly.benchmarks`: benchmark splits whose anomalies are exact (held-out
  factor regions, local defects, creative decodings, one-class digits, user files).
- :mod:`~disentune.anomaly.features`: feature spaces (latent, pixel, activation:<layer>) and model
  scores (reconstruction, negative ELBO, discriminator) of a trained model.
- :mod:`~disentune.anomaly.runner`: one Ray task per (trial, detector, benchmark), writing
  ``anomaly_metrics.parquet`` and ``anomaly_scores.parquet``.
"""
